"""Running it: scheduler, health and metrics, logs, progress, reports."""
