"""Bulk ingest jobs a dead run left being applied: waited for before a rerun reads anything.

Salesforce applies a Bulk API 2.0 ingest job after it is closed (`UploadComplete`), in its own
time. A run that died after closing one left its field intents open; the rerun settles them by
reading the records, decides and writes again, and the old job, applied only then, would put
back the older values over the rerun's (and over a person's edit made in between). So before
anything is read the engine asks `finish_writes_in_flight`, which lists the org's ingest jobs
(Get All Jobs: `GET jobs/ingest?jobType=V2Ingest`, up to 1,000 a page through
`nextRecordsUrl`) and waits for each one still `UploadComplete` or `InProgress` that this
integration's user created on an object the adapter writes, polling it as any job is polled
(`BulkApi.wait`), all of them within one `bulk_timeout_seconds`.

A job still running then is not aborted (aborting stops the rest of a job, not what it already
applied): the run ends naming it, nothing read, and the next run waits again. An `Open` job is
left alone: its data never reached `UploadComplete`, and Salesforce never processes an open job.
The user is the one the client logs in as (`SalesforceClient.integration_user`); when Salesforce
will not name it, every user's unfinished jobs on those objects are waited for (slower, never
wrong). Every page and status check is one API call, counted like any Bulk request: with no
unfinished job in the org's first thousand, the whole check is one request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from crm_qualify.adapters.salesforce.bulk import TERMINAL, BulkApi
from crm_qualify.connector.contract import AdapterError

log = logging.getLogger(__name__)

UNFINISHED = frozenset({"UploadComplete", "InProgress"})
"""Closed, not yet applied: what Salesforce will still write."""
NEXT_JOBS = re.compile(r"/services/data/v[\d.]+/jobs/ingest/?\?([\w.~%=&-]+)")
"""A Get All Jobs `nextRecordsUrl`: its query (the locator) is sent on this instance."""


@dataclass(frozen=True)
class ListedJob:
    """An ingest job as Get All Jobs lists it."""

    id: str
    object: str
    created_by: str
    state: str


def unfinished_jobs(api: BulkApi, objects: frozenset[str]) -> list[ListedJob]:
    """The org's Bulk API 2.0 ingest jobs on `objects` that are closed and not yet applied,
    every page of them."""
    found: list[ListedJob] = []
    path, what = "ingest?jobType=V2Ingest", "GET jobs/ingest"
    while True:
        page = api.request(what, "GET", path).json()
        if not isinstance(page, dict) or not isinstance(page.get("records"), list):
            raise AdapterError(f"{what}: unreadable answer {str(page)[:120]}")
        found += _unfinished(page["records"], objects)
        next_url = page.get("nextRecordsUrl")
        if page.get("done", True) or not next_url:
            return found
        matched = NEXT_JOBS.fullmatch(next_url) if isinstance(next_url, str) else None
        if matched is None:
            raise AdapterError(f"{what}: unexpected nextRecordsUrl {str(next_url)[:80]!r}")
        path, what = f"ingest?{matched.group(1)}", "GET jobs/ingest (more)"


def _unfinished(records: Iterable[object], objects: frozenset[str]) -> Iterable[ListedJob]:
    for info in records:
        if not isinstance(info, dict) or not isinstance(info.get("id"), str):
            continue
        if info.get("state") in UNFINISHED and info.get("object") in objects:
            created_by = info.get("createdById")
            yield ListedJob(info["id"], info["object"], str(created_by or ""), info["state"])


def same_user(created_by: str, user: str) -> bool:
    """Ids compared on their 15 case-sensitive characters (an 18-character id adds a
    checksum)."""
    return created_by[:15] == user[:15]


def finish_writes_in_flight(
    api: BulkApi, integration_user: Callable[[], str | None], objects: frozenset[str]
) -> int:
    """Wait for this integration's unfinished ingest jobs on `objects`; returns how many it
    waited for, raises `AdapterError` naming those still running after `api.timeout`."""
    unfinished = unfinished_jobs(api, objects)
    if not unfinished:
        return 0
    user = integration_user()
    if user is None:
        log.warning("the integration user is unknown: waiting for every user's Bulk ingest jobs")
    ours = [job for job in unfinished if user is None or same_user(job.created_by, user)]
    until = api.clock() + api.timeout
    running: list[str] = []
    for job in ours:
        log.info("waiting for Bulk ingest job %s (%s, %s) that a dead run closed",
                 job.id, job.object, job.state)  # fmt: skip
        ended = api.wait("ingest", job.id, until=until)
        if ended.state not in TERMINAL:
            running.append(f"{job.id} ({ended.state})")
    if running:
        raise AdapterError(
            f"Bulk ingest job(s) {', '.join(running)} that a dead run closed are still being"
            f" applied after {api.timeout:.0f} s (adapters.salesforce.bulk_timeout_seconds):"
            " nothing is read until they end; the next run waits for them again"
        )
    return len(ours)
