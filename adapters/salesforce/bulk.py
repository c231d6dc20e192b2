"""Bulk API 2.0: jobs created, polled with backoff and read back as CSV, for full reads of
large orgs (and, through `bulk_writes.py`, large write sets).

Every HTTP request of a job goes through `SalesforceClient.call`, so it is retried, re-logs in,
is counted in `usage()` under its own name (`POST jobs/query`, `GET jobs/query/{id}`...) and
against the daily API allocation, as Salesforce counts it: each Bulk request is one API call.
Query jobs also use one of the org's 10,000 daily query jobs, ingest jobs one of its 15,000
daily batches per 10,000 records (`/limits`); `BulkApi.jobs` counts both.

A full read of a Lead or Contact that Salesforce counts at least `bulk_threshold` of (the
first REST page's `totalSize`) reads the rest with one query job. Bulk query takes no
relationship subqueries, so the engagement read with each person comes from one query job per
child relationship (Tasks by `WhoId`, Events, CampaignMembers by `LeadId` / `ContactId`,
OpportunityContactRoles), staged in a temporary SQLite file by person and attached to each
person's row as the REST subquery would (`{"done": true, "records": [...]}`): memory holds one
result set, never the org. Bulk results come unordered, so these records move no cursor: an
interrupted full read resumes where the last ordered position left it (through REST).

Lead-to-account matching on such a read (`BulkReads.accounts`) reads every Account and every
open Opportunity once, by two more query jobs, staged by website domain and normalised name
(Opportunities by Account); each page of Leads is then matched from there, with no request,
by the rule REST matching uses (`accounts.find_accounts`).

CSV values are text: empty is null, child-to-parent columns (`Campaign.Name`) become nested
rows as in REST answers, and translation reads numbers and checkboxes from their text.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import requests
from crm_qualify.adapters.salesforce.accounts import (
    OPPORTUNITY_FIELDS,
    Account,
    AccountMapping,
    Candidates,
    staged_accounts,
)
from crm_qualify.adapters.salesforce.client import SalesforceCallError, SalesforceClient
from crm_qualify.adapters.salesforce.reader import BATCH
from crm_qualify.adapters.salesforce.soql import Engagement
from crm_qualify.adapters.salesforce.staging import Row, Staging
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.decision.identity_keys import normalise_company
from simple_salesforce import Salesforce

log = logging.getLogger(__name__)

RESULT_SET = 10_000
"""Rows asked for per results request (`maxRecords`): a set of child rows is staged before
the next is fetched."""
PEOPLE_SET = BATCH
"""People handed on at a time: one batch for the core (`reader.BATCH`), so no more people
wait in memory, with their child rows attached, than the core works on. They are asked
`RESULT_SET` at a time all the same (parsing a whole set of 10,000 at once held the connector
about 60 MB higher at 40,000 records; asking 2,000 at a time cost 4 requests per 10,000).
Rows being staged (child rows, Accounts, Opportunities) are made as many at a time."""
POLL_FIRST, POLL_MAX = 0.5, 20.0
"""Seconds before the first status check of a job, and the longest wait between two."""
TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})
BY_DOMAIN, BY_NAME, OPEN_DEALS = "Account.domain", "Account.name", "Opportunity.AccountId"
"""Staged Accounts by website domain and by normalised name, open Opportunities by Account."""


def csv_rows(data: bytes) -> Iterator[dict[str, str]]:
    """The rows of a Bulk CSV answer (header first, UTF-8), as text by column. Decoded as
    it is read: the answer is held once, as its bytes (decoded whole and wrapped in a
    `StringIO`, a result set of 10,000 people took about five times its size)."""
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), "utf-8", "replace", newline=""))
    header = next(reader, None)
    if header is None:
        return
    for values in reader:
        if values:
            yield dict(zip(header, values, strict=False))


def nested(flat: dict[str, str]) -> Row:
    """A CSV row as REST shapes it: empty is null, `Campaign.Name` under `Campaign` (null
    when none of the parent's columns holds a value)."""
    row: Row = {}
    for column, value in flat.items():
        node, *path = column.split(".")
        if not path:
            row[column] = value if value != "" else None
            continue
        parent = row.get(node)
        if not isinstance(parent, dict):
            parent = row[node] = {}
        for step in path[:-1]:
            parent = parent.setdefault(step, {})
        parent[path[-1]] = value if value != "" else None
    for key, value in row.items():
        if isinstance(value, dict) and all(v is None for v in value.values()):
            row[key] = None
    return row


@dataclass
class JobState:
    """A job as its last status answer described it."""

    id: str
    state: str
    processed: int = 0
    failed: int = 0
    error: str | None = None

    @classmethod
    def of(cls, info: Any) -> JobState:
        if not isinstance(info, dict) or not isinstance(info.get("id"), str):
            raise AdapterError(f"unreadable Bulk job answer: {str(info)[:120]}")
        return cls(
            info["id"],
            str(info.get("state")),
            int(info.get("numberRecordsProcessed") or 0),
            int(info.get("numberRecordsFailed") or 0),
            info.get("errorMessage"),
        )


class BulkApi:
    """Jobs of Bulk API 2.0 through the client; `sleep` and `clock` are injectable so that
    tests poll without waiting."""

    def __init__(
        self,
        client: SalesforceClient,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.timeout, self.sleep, self.clock = client, timeout, sleep, clock
        self.jobs: Counter[str] = Counter()
        """Jobs created by kind, and ingest batches (`batches`) they used."""

    def request(
        self, what: str, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> requests.Response:
        """One request to `jobs/<path>` on the instance, through the client. A file to
        upload (`data`) is sent from its start at every attempt (a retry, a new login)."""

        def send(sf: Salesforce) -> requests.Response:
            url = f"{sf.base_url}jobs/{path}"
            if hasattr(kwargs.get("data"), "seek"):
                kwargs["data"].seek(0)
            return sf._call_salesforce(method, url, name=what, **kwargs)

        return self.client.call(what, send, idempotent=idempotent)

    def create(self, kind: str, body: dict[str, Any]) -> JobState:
        answer = self.request(f"POST jobs/{kind}", "POST", kind, data=json.dumps(body))
        self.jobs[kind] += 1
        return JobState.of(answer.json())

    def status(self, kind: str, job_id: str) -> JobState:
        answer = self.request(f"GET jobs/{kind}/{{id}}", "GET", f"{kind}/{job_id}")
        return JobState.of(answer.json())

    def set_state(self, kind: str, job_id: str, state: str) -> JobState:
        body = json.dumps({"state": state})
        answer = self.request(f"PATCH jobs/{kind}/{{id}}", "PATCH", f"{kind}/{job_id}", data=body)
        return JobState.of(answer.json())

    def wait(self, kind: str, job_id: str, until: float | None = None) -> JobState:
        """Poll until the job ends: first after `POLL_FIRST` seconds, then twice as long each
        time up to `POLL_MAX`. Past `timeout` the job is aborted (what it did stays done) and
        its state after that returned. Given `until` (a moment on `clock`), a job still running
        then is returned as it is, never aborted: a dead run's (`in_flight.py`)."""
        deadline = self.clock() + self.timeout if until is None else until
        pause = POLL_FIRST
        while True:
            self.sleep(min(pause, max(0.0, deadline - self.clock())))
            job = self.status(kind, job_id)
            if job.state in TERMINAL:
                return job
            if self.clock() >= deadline and until is not None:
                return job
            if self.clock() >= deadline:
                log.warning("Bulk %s job %s still %s after %.0f s: aborting it",
                            kind, job_id, job.state, self.timeout)  # fmt: skip
                return self.abort(kind, job_id)
            pause = min(pause * 2, POLL_MAX)

    def abort(self, kind: str, job_id: str) -> JobState:
        """Abort a job; one that ended meanwhile (INVALIDJOBSTATE) is simply read."""
        try:
            return self.set_state(kind, job_id, "Aborted")
        except SalesforceCallError as exc:
            if exc.code != "INVALIDJOBSTATE":
                raise
            return self.status(kind, job_id)

    def query(
        self,
        soql: str,
        result_set: int = RESULT_SET,
        handed: int | None = None,
        every_row: bool = False,
    ) -> Iterator[list[Row]]:
        """The rows of one query job, `result_set` rows per results request (through
        `Sforce-Locator`), handed on `handed` rows at a time (default: a whole set). A set's
        rows are made from its CSV bytes as they are handed on, so only the bytes (a few MB)
        and the rows handed last are held, however large the set. `every_row`: the queryAll
        operation (deleted and merged records, archived Tasks and Events too)."""
        operation = "queryAll" if every_row else "query"
        job = self.create("query", {"operation": operation, "query": soql})
        done = self.wait("query", job.id)
        if done.state != "JobComplete":
            raise AdapterError(
                f"Bulk query job {job.id} ended {done.state}: {done.error or 'no reason given'}"
            )
        locator: str | None = None
        read = 0
        while True:
            data, expected, locator = self._result_set(job.id, result_set, locator)
            rows = map(nested, csv_rows(data))
            in_set = 0
            while chunk := list(islice(rows, handed or result_set)):
                in_set += len(chunk)
                yield chunk
                del chunk  # handed on: not held while the next slice is made
            del data, rows
            if expected is not None and expected.isdigit() and int(expected) != in_set:
                raise AdapterError(
                    f"Bulk query job {job.id}: a result set announced {expected} records and"
                    f" held {in_set}"
                )
            read += in_set
            if not locator or locator == "null":
                if read != done.processed:
                    log.warning("Bulk query job %s: %d rows read of %d processed",
                                job.id, read, done.processed)  # fmt: skip
                return

    def _result_set(
        self, job_id: str, size: int, locator: str | None
    ) -> tuple[bytes, str | None, str | None]:
        """One results request: its CSV bytes, the number of records it announces and the
        locator of the next."""
        params: dict[str, Any] = {"maxRecords": size}
        if locator:
            params["locator"] = locator
        answer = self.request(
            "GET jobs/query/{id}/results", "GET", f"query/{job_id}/results",
            params=params, headers={"Accept": "text/csv"},
        )  # fmt: skip
        headers = answer.headers
        return answer.content, headers.get("Sforce-NumberOfRecords"), headers.get("Sforce-Locator")


class BulkReads:
    """Full reads through Bulk API 2.0 when an object is large enough to be worth it."""

    def __init__(self, api: BulkApi, threshold: int) -> None:
        self.api, self.threshold = api, threshold

    def worth(self, records: Any) -> bool:
        return bool(self.threshold) and isinstance(records, int) and records >= self.threshold

    def people(
        self, staging: Staging, sobject: str, fields: list[str], where: str,
        kinds: list[Engagement], every_row: bool = False,
    ) -> Iterator[list[Row]]:  # fmt: skip
        """Rows of the people `where` selects, each with its child sets attached (staged by
        `query` jobs: live rows only); `every_row`: by the queryAll operation."""
        for kind in kinds:
            self._stage(staging, kind)
        soql = f"SELECT {', '.join(fields)} FROM {sobject} WHERE {where}"
        for rows in self.api.query(soql, handed=PEOPLE_SET, every_row=every_row):
            _attach(staging, kinds, rows)
            yield rows

    def accounts(self, staging: Staging, mapping: AccountMapping) -> Candidates:
        """Lead-to-account candidates for a full read: every Account and open Opportunity,
        staged by the first page of Leads that asks; each page then costs no request."""

        def candidates(domains: Sequence[str], names: Sequence[str]) -> Iterator[Account]:
            self._stage_accounts(staging, mapping)
            normalised = sorted({n for name in names if (n := normalise_company(name))})
            kinds = (BY_DOMAIN, BY_NAME, OPEN_DEALS)
            yield from staged_accounts(staging, kinds, domains, normalised).values()

        return candidates

    def _stage_accounts(self, staging: Staging, mapping: AccountMapping) -> None:
        """Every Account by its website domain and its normalised name (one query job), and
        every open Opportunity by its Account (one more), once per read."""
        if OPEN_DEALS in staging.kinds:
            return
        soql = f"SELECT {', '.join(mapping.fields())} FROM Account"
        for rows in self.api.query(soql, handed=PEOPLE_SET):
            named = [row for row in rows if isinstance(row.get("Id"), str)]
            staging.add(BY_DOMAIN, ((d, row) for row in named if (d := mapping.domain_of(row))))
            staging.add(BY_NAME, ((n, row) for row in named if (n := mapping.name_of(row))))
        staging.finish(BY_DOMAIN)
        staging.finish(BY_NAME)
        fields = ", ".join(dict.fromkeys(["AccountId", *OPPORTUNITY_FIELDS]))
        soql = f"SELECT {fields} FROM Opportunity WHERE IsClosed = false AND AccountId != null"
        for rows in self.api.query(soql, handed=PEOPLE_SET):
            staging.add(
                OPEN_DEALS, ((row["AccountId"], row) for row in rows if row.get("AccountId"))
            )
        staging.finish(OPEN_DEALS)

    def _stage(self, staging: Staging, kind: Engagement) -> None:
        """Every row of one child relationship, once per read (Tasks serve Leads and
        Contacts alike)."""
        key = _stage_key(kind)
        if key in staging.kinds:
            return
        fields = list(dict.fromkeys([kind.link, *kind.fields]))
        soql = f"SELECT {', '.join(fields)} FROM {kind.sobject} WHERE {kind.link} != null"
        for rows in self.api.query(soql, handed=PEOPLE_SET):
            staging.add(key, ((row[kind.link], row) for row in rows if row.get(kind.link)))
        staging.finish(key)


def _attach(staging: Staging, kinds: list[Engagement], rows: list[Row]) -> None:
    """Each person's staged child rows, in its row as the REST subquery answers them."""
    people = [row["Id"] for row in rows if isinstance(row.get("Id"), str)]
    for kind in kinds:
        found = staging.rows(_stage_key(kind), people)
        for row in rows:
            children = found.get(row.get("Id") or "")
            row[kind.relationship] = (
                {"totalSize": len(children), "done": True, "records": children}
                if children
                else None
            )


def _stage_key(kind: Engagement) -> str:
    return f"{kind.sobject}.{kind.link}"
