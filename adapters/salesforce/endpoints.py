"""Salesforce's API as the core's concurrency needs it: classes of endpoints, their limits,
and how many records one write takes. The core (`connector.sync.concurrency.Traffic`) keeps
the requests in flight under these; `SalesforceClient.call` names the class of each request.

Salesforce sets no short-window rate limit on the REST API: an org has a daily allocation
(`DailyBudget`, from `Sforce-Limit-Info`) and at most 25 long-running requests (20 s and
more) at once. So one class, `api`, with no window, and a few requests in flight: enough to
overlap the writes' latency, few enough that collections updating people under one Account
seldom wait on each other's row locks (UNABLE_TO_LOCK_ROW, retried when it happens). An sObject
Collection takes 200 records. A Bulk API 2.0 ingest job takes many more: up to 10,000 here
(Salesforce cuts an upload into internal batches of 10,000, each counted against the org's
15,000 batches a day), worth it from `bulk_threshold` records (`bulk_writes.py`).
"""

from __future__ import annotations

from crm_qualify.connector.sync.concurrency import EndpointClass, Limits

API = "api"
IN_FLIGHT = 6
COLLECTION = 200
BULK_JOB = 10_000


def limits(bulk_threshold: int) -> Limits:
    """`bulk_threshold` 0: Bulk API never used, so the engine never holds writes for it."""
    return Limits(
        classes={API: EndpointClass(None)},
        in_flight=IN_FLIGHT,
        write_batch=COLLECTION,
        task_batch=COLLECTION,
        bulk_batch=BULK_JOB if bulk_threshold else None,
        bulk_from=bulk_threshold or None,
    )
