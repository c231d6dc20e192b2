"""The sync machinery: engine, diff, state store, rollback, rate limits, retries."""
