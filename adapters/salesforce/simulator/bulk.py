"""Bulk API 2.0 in the simulated org: query jobs and ingest jobs, as Salesforce serves them.

Routes (under `/services/data/vXX.X/`): `jobs/query` (POST create, GET all), `jobs/query/<id>`
(GET info, PATCH abort, DELETE), `jobs/query/<id>/results` (CSV, `locator` and `maxRecords`,
answered with `Sforce-NumberOfRecords` and `Sforce-Locator`, the string "null" on the last
set); `jobs/ingest` (POST create, GET all), `jobs/ingest/<id>` (GET info, PATCH
`UploadComplete` or `Aborted`, DELETE), `jobs/ingest/<id>/batches` (PUT CSV, 201), and the
`successfulResults` (`sf__Id`, `sf__Created`), `failedResults` (`sf__Id`, `sf__Error` as
`CODE:message:fields --`) and `unprocessedrecords` (also as `unprocessedRecords`) CSVs, each
row followed by the fields as uploaded, header first even when there is no row.

From Salesforce's documentation: a query job is `UploadComplete` when created, an ingest job
`Open`; both go `InProgress` and end `JobComplete`, `Failed` or `Aborted`. Bulk query refuses
parent-to-child subqueries ("Aggregate Relationships not supported in Bulk Query") and takes
child-to-parent paths (`Account.Industry`, a column of that name); the SOQL guide says OFFSET
is not allowed in Bulk API queries (refused here with a modelled text). Results of a query are read
with the API version that created it (409 otherwise). In ingest CSV an empty value leaves a
field as it is and `#N/A` clears it; a column naming no field fails the job ("InvalidBatch :
Field name not found"). Every request counts against the daily API allocation like any other
(the server counts it before routing here); ingest jobs also use one of the 15,000 daily
batches per 10,000 records, query jobs one of the 10,000 daily query jobs, and their results
the daily result storage: `/limits` reports all three.

Get All Jobs (`GET jobs/ingest`, `GET jobs/query`) lists every job of the org, whoever created
it, by a snapshot taken at the first request: up to 1,000 a page, `done`, `records` and
`nextRecordsUrl` (`/services/data/vXX.X/jobs/<kind>?queryLocator=<locator>-<offset>`, null on the
last page). Each job as the documented example shows it: id, operation, object, createdById,
createdDate, systemModstamp (its last change of state), state, concurrencyMode, contentType,
apiVersion, jobType, lineEnding, columnDelimiter. Filters: `jobType` (`V2Ingest`, `Classic`,
`BigObjectIngest`; for query jobs `V2Query`, `V2Ingest`, `Classic`), `concurrencyMode` (only
parallel exists), `isPkChunkingEnabled` (true matches no Bulk API 2.0 job). Jobs of other users
(a person's Data Loader run, another integration) come from `submit`.

A job is processed `delay` seconds (on `clock`, which a test may replace) after it is closed
(ingest) or created (query), at the first request that comes after: any request, so a job
lands whether or not anyone polls it. Records are checked exactly as the REST writes check
them (`writes.py`). Not documented, so modelled: a results set without `maxRecords` holds
every remaining row up to `MAX_SET_BYTES`; locators are the base64 of the next row's offset
(real ones look alike: `MTAwMDA`); a filter value Get All Jobs does not know, or a query
locator it did not give, is refused (400); error texts of requests Salesforce does not document.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import soql
from .ids import full_id
from .org import iso
from .results import Renderer
from .schema import OBJECTS
from .server import ApiError

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

DELIMITERS = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";",
              "TAB": "\t"}  # fmt: skip
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = frozenset({"insert", "update", "upsert", "delete", "hardDelete"})
TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})
MAX_UPLOAD = 150 * 1024 * 1024
"""Bytes of CSV one ingest job takes."""
MAX_SET_BYTES = 100 * 1024 * 1024
RECORDS_PER_BATCH = 10_000
"""Salesforce cuts an ingest job into internal batches of 10,000 records."""
LIST_PAGE = 1000
"""Jobs per Get All Jobs answer."""
OPEN_LISTINGS = 100
"""Get All Jobs snapshots kept for their next page (the oldest goes first, as an expired
locator would)."""
JOB_TYPES = {"ingest": ("V2Ingest", "Classic", "BigObjectIngest"),
             "query": ("V2Query", "V2Ingest", "Classic")}  # fmt: skip
"""The `jobType` values each Get All Jobs takes."""
DAILY = {"DailyBulkApiBatches": 15_000, "DailyBulkV2QueryJobs": 10_000,
         "DailyBulkV2QueryFileStorageMB": 976_562}  # fmt: skip
"""Daily allocations as `/limits` names them (the storage is 1,000,000,000 KB)."""
RESULT_ALIASES = {"unprocessedRecords": "unprocessedrecords"}
"""Other spellings of an ingest results resource that clients send: the guide documents
`unprocessedrecords`, simple-salesforce's `get_unprocessed_records` (and other clients) ask
for `unprocessedRecords`, which Salesforce must answer or their method would never work."""
NULL = "#N/A"
BOOLEANS = {"true": True, "1": True, "yes": True, "y": True,
            "false": False, "0": False, "no": False, "n": False}  # fmt: skip


def _not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def _state_error(message: str) -> ApiError:
    return ApiError(409, "INVALIDJOBSTATE", message)


@dataclass
class Job:
    id: str
    kind: str
    """`ingest` or `query`."""
    operation: str
    object: str
    version: str
    delimiter: str
    line_ending: str
    created: datetime
    created_by: str
    state: str
    modified: datetime | None = None
    """Its last change of state (`systemModstamp`); None: as created."""
    external_id: str | None = None
    query: str = ""
    upload: bytearray = field(default_factory=bytearray)
    due: float | None = None
    """When processing ends (on the bulk clock); None until the job is closed."""
    processed: int = 0
    failed: int = 0
    error: str | None = None
    columns: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    header: str = ""
    lines: list[str] = field(default_factory=list)
    """A query's result rows, each one encoded CSV line."""

    @property
    def job_type(self) -> str:
        return "V2Ingest" if self.kind == "ingest" else "V2Query"

    def move(self, state: str) -> None:
        """A change of state, stamped (`systemModstamp`)."""
        self.state, self.modified = state, datetime.now(UTC)

    def listed(self) -> dict[str, Any]:
        """The job as Get All Jobs lists it."""
        return {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": self.created_by, "createdDate": iso(self.created),
            "systemModstamp": iso(self.modified or self.created), "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.version), "jobType": self.job_type,
            "lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
        }  # fmt: skip

    def info(self, full: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": self.created_by, "createdDate": iso(self.created),
            "systemModstamp": iso(self.modified or self.created), "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.version), "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }  # fmt: skip
        if self.external_id:
            body["externalIdFieldName"] = self.external_id
        if self.kind == "ingest" and self.state == "Open":
            body["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
        if full:
            body["jobType"] = self.job_type
            body["numberRecordsProcessed"] = self.processed
            if self.kind == "ingest":
                body["numberRecordsFailed"] = self.failed
            body |= {"retries": 0, "totalProcessingTime": 0, "apiActiveProcessingTime": 0,
                     "apexProcessingTime": 0}  # fmt: skip
            if self.error:
                body["errorMessage"] = self.error
        return body

    def writer(self, buffer: io.StringIO) -> Any:
        return csv.writer(
            buffer,
            delimiter=DELIMITERS[self.delimiter],
            lineterminator=LINE_ENDINGS[self.line_ending],
            quoting=csv.QUOTE_ALL,
        )


class Bulk:
    """The Bulk API 2.0 jobs of one simulated org (thread-safe)."""

    def __init__(self, sim: SalesforceSimulator, delay: float = 0.5) -> None:
        self.sim = sim
        self.delay = delay
        """Seconds between closing a job and its outcome."""
        self.clock: Callable[[], float] = time.monotonic
        self.jobs: dict[str, Job] = {}
        self.used: Counter[str] = Counter()
        """Today's use of the Bulk allocations, by `/limits` name."""
        self._lock = threading.RLock()
        self._counter = 0
        self.list_page = LIST_PAGE
        """Jobs per Get All Jobs answer (lower it to make a few jobs page)."""
        self._listings: dict[str, list[str]] = {}
        """Get All Jobs snapshots still being paged, by query locator: the jobs' ids."""

    def limits(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                name: {"Max": most, "Remaining": max(0, most - self.used[name])}
                for name, most in DAILY.items()
            }

    # routing ---------------------------------------------------------------------------------
    def route(
        self, method: str, resource: str, query: dict[str, list[str]], raw: bytes,
        version: str, headers: dict[str, str],
    ) -> tuple[int, Any]:  # fmt: skip
        """Answer one `jobs/...` request (`resource` without the version prefix)."""
        self.settle()
        parts = resource.split("/")
        kind = parts[1] if len(parts) > 1 else ""
        if kind not in ("ingest", "query"):
            raise _not_found()
        if len(parts) == 2:
            if method == "POST":
                return 200, self._create(kind, _json(raw), version)
            if method == "GET":
                return 200, self._all(kind, query, version)
            raise _not_found()
        job = self._job(kind, parts[2])
        if len(parts) == 3:
            if method == "GET":
                return 200, job.info()
            if method == "PATCH":
                return 200, self._patch(job, _json(raw))
            if method == "DELETE":
                self._delete(job)
                return 204, None
            raise _not_found()
        tail = "/".join(parts[3:])
        tail = RESULT_ALIASES.get(tail, tail)
        if kind == "ingest" and tail == "batches" and method == "PUT":
            self._upload(job, raw)
            return 201, ""
        if method != "GET":
            raise _not_found()
        if kind == "query" and tail == "results":
            return 200, self._results(job, query, version, headers)
        lists = {"successfulResults": ("sf__Id", "sf__Created"), "failedResults":
                 ("sf__Id", "sf__Error"), "unprocessedrecords": ()}  # fmt: skip
        if kind == "ingest" and tail in lists:
            headers["Content-Type"] = "text/csv"
            return 200, self._ingest_results(job, tail, lists[tail])
        raise _not_found()

    def _job(self, kind: str, job_id: str) -> Job:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise _not_found()
        return job

    def _all(self, kind: str, query: dict[str, list[str]], version: str) -> dict[str, Any]:
        """One page of Get All Jobs: the first of a new snapshot, or the one a query locator
        names."""
        locator = (query.get("queryLocator") or [""])[0]
        with self._lock:
            if locator:
                key, _, offset = locator.rpartition("-")
                listing = self._listings.get(key)
                if listing is None or not offset.isdigit():
                    raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
                start = int(offset)
            else:
                listing, key, start = self._listing(kind, query), "01g5g" + uuid.uuid4().hex[:13], 0
            end = start + self.list_page
            page = [self.jobs[i].listed() for i in listing[start:end] if i in self.jobs]
            done = end >= len(listing)
            if done:
                self._listings.pop(key, None)
            else:
                self._listings[key] = listing
                while len(self._listings) > OPEN_LISTINGS:  # a client that never paged on
                    del self._listings[next(iter(self._listings))]
        more = None if done else f"/services/data/v{version}/jobs/{kind}?queryLocator={key}-{end}"
        return {"done": done, "records": page, "nextRecordsUrl": more}

    def _listing(self, kind: str, query: dict[str, list[str]]) -> list[str]:
        """The ids of the jobs of `kind` the filters select."""
        wanted = {name: values[0] for name, values in query.items() if values and values[0]}
        job_type = wanted.get("jobType")
        if job_type is not None and job_type not in JOB_TYPES[kind]:
            raise ApiError(400, "API_ERROR", f"Invalid jobType: {job_type}")
        mode = wanted.get("concurrencyMode", "parallel").lower()
        chunked = wanted.get("isPkChunkingEnabled", "false").lower()
        if mode not in ("serial", "parallel") or chunked not in ("true", "false"):
            raise ApiError(400, "API_ERROR", "Invalid concurrencyMode or isPkChunkingEnabled")
        if mode == "serial" or chunked == "true":
            return []  # Bulk API 2.0 jobs run in parallel, never PK-chunked
        return [
            job.id
            for job in self.jobs.values()
            if job.kind == kind and job_type in (None, job.job_type)
        ]

    # creating and closing --------------------------------------------------------------------
    def _new_id(self) -> str:
        with self._lock:
            self._counter += 1
            return full_id(f"7505g{self._counter:010d}")

    def submit(
        self, user: str, sobject: str, operation: str, data: bytes, external_id: str | None = None
    ) -> str:
        """An ingest job another user of the org runs (a person's Data Loader, another
        integration): created as `user`, its CSV uploaded and closed, then processed like any.
        Returns its id."""
        body = {"object": sobject, "operation": operation, "externalIdFieldName": external_id}
        job = self.jobs[self._create("ingest", body, self.sim.api_version, user)["id"]]
        self._upload(job, data)
        self._patch(job, {"state": "UploadComplete"})
        return job.id

    def _create(
        self, kind: str, body: dict[str, Any], version: str, user: str | None = None
    ) -> dict[str, Any]:
        delimiter = body.get("columnDelimiter") or "COMMA"
        line_ending = body.get("lineEnding") or "LF"
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        if (body.get("contentType") or "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", "Bulk API 2.0 supports contentType CSV only")
        operation = body.get("operation")
        common = {"id": self._new_id(), "version": version, "delimiter": delimiter,
                  "line_ending": line_ending, "created": datetime.now(UTC),
                  "created_by": user or self.sim.org.integration_user}  # fmt: skip
        if kind == "query":
            job = self._query_job(operation, body.get("query"), common)
        else:
            job = self._ingest_job(operation, body, common)
        with self._lock:
            self.jobs[job.id] = job
        return job.info(full=False)

    def _query_job(self, operation: Any, text: Any, common: dict[str, Any]) -> Job:
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation for a query job: {operation}")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "INVALIDJOB", "query is required")
        parsed = self._parse(text, common["version"])
        with self._lock:
            if self.used["DailyBulkV2QueryJobs"] >= DAILY["DailyBulkV2QueryJobs"]:
                most = DAILY["DailyBulkV2QueryJobs"]
                raise ApiError(400, "API_ERROR", f"Max bulk v2 query jobs ({most}) per 24 hrs"
                               f" has been reached ({most + 1})")  # fmt: skip
            self.used["DailyBulkV2QueryJobs"] += 1
        job = Job(kind="query", operation=operation, object=parsed.sobject,
                  state="UploadComplete", query=text, **common)  # fmt: skip
        job.due = self.clock() + self.delay
        return job

    def _parse(self, text: str, version: str) -> soql.Query:
        try:
            parsed = soql.parse(text, OBJECTS.get, float(version))
        except soql.SoqlError as exc:
            raise ApiError(400, exc.code, str(exc)) from None
        if parsed.subqueries():
            raise ApiError(400, "API_ERROR", "Aggregate Relationships not supported in Bulk Query")
        if parsed.offset:
            raise ApiError(400, "API_ERROR", "OFFSET is not supported in Bulk Query")
        return parsed

    def _ingest_job(self, operation: Any, body: dict[str, Any], common: dict[str, Any]) -> Job:
        sobject = body.get("object")
        if operation not in INGEST_OPERATIONS:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        if sobject not in OBJECTS:
            raise ApiError(
                400, "INVALIDENTITY", f"Entity '{sobject}' is not supported by the Bulk API."
            )
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            spec = OBJECTS[sobject].get(external or "", {})
            if external != "Id" and not spec.get("externalId"):
                raise ApiError(400, "INVALIDJOB", f"Field name provided, {external} does not"
                               f" match an External ID, Salesforce Id, or indexed field for"
                               f" {sobject}")  # fmt: skip
        return Job(kind="ingest", operation=operation, object=sobject, state="Open",
                   external_id=external if operation == "upsert" else None, **common)  # fmt: skip

    def _upload(self, job: Job, raw: bytes) -> None:
        with self._lock:
            if job.state != "Open":
                raise _state_error(f"Job {job.id} is not in state Open: {job.state}")
            if len(job.upload) + len(raw) > MAX_UPLOAD:
                raise ApiError(400, "API_ERROR", "The upload exceeds the 150 MB a job takes")
            job.upload += raw

    def _patch(self, job: Job, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("state")
        with self._lock:
            if wanted == "UploadComplete" and job.kind == "ingest":
                if job.state != "Open":
                    raise _state_error(f"Closing a job in state {job.state} not allowed")
                job.move("UploadComplete")
                job.due = self.clock() + self.delay
            elif wanted == "Aborted":
                if job.state in TERMINAL:
                    done = "Completed" if job.state == "JobComplete" else job.state
                    raise _state_error(f"Aborting already {done} Job not allowed")
                job.move("Aborted")
                if job.kind == "ingest":
                    job.columns, rows = _rows(job)
                    job.unprocessed = rows
            else:
                raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state: {wanted}")
            return job.info(full=False)

    def _delete(self, job: Job) -> None:
        with self._lock:
            if job.state not in TERMINAL | {"UploadComplete"}:
                raise _state_error(f"Deleting a job in state {job.state} not allowed")
            del self.jobs[job.id]

    # processing ------------------------------------------------------------------------------
    def settle(self) -> None:
        """Process every job whose time has come: query jobs run, ingest jobs write."""
        now = self.clock()
        with self._lock:
            due = [job for job in self.jobs.values()
                   if job.state not in TERMINAL and job.due is not None]  # fmt: skip
            for job in due:
                if now < job.due:
                    if job.state != "InProgress":
                        job.move("InProgress")
                    continue
                if job.kind == "query":
                    self._run_query(job)
                else:
                    self._ingest(job)

    def _run_query(self, job: Job) -> None:
        parsed = self._parse(job.query, job.version)
        org = self.sim.org
        with org.lock:
            pool = list(org.queryable(parsed.sobject, job.operation == "queryAll"))
            rows = soql.run(parsed, pool)
            renderer = Renderer(parsed, org.live, self.sim._find, job.version)
            columns = [_column(item) for item in parsed.items]
            buffer = io.StringIO()
            writer = job.writer(buffer)
            writer.writerow(columns)
            job.header = buffer.getvalue()
            for record in rows:
                rendered = renderer.row(parsed, record)
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([_cell(rendered, item, parsed.sobject) for item in parsed.items])
                job.lines.append(buffer.getvalue())
        size = len(job.header) + sum(map(len, job.lines))
        self.used["DailyBulkV2QueryFileStorageMB"] += math.ceil(size / 1024 / 1024)
        job.processed = len(job.lines)
        job.move("JobComplete")

    def _ingest(self, job: Job) -> None:
        job.columns, rows = _rows(job)
        batches = max(1, math.ceil(len(rows) / RECORDS_PER_BATCH))
        self.used["DailyBulkApiBatches"] += batches
        unknown = [c for c in job.columns if not _known_column(job, c)]
        if job.external_id and job.external_id not in job.columns:
            unknown.append(job.external_id)
        if unknown:
            job.unprocessed = rows
            job.move("Failed")
            job.error = f"InvalidBatch : Field name not found : {unknown[0]}"
            return
        sim, sobject = self.sim, job.object
        with sim.org.lock:
            claimed: dict[tuple[str, str, Any], str] = {}
            repeated = Counter(
                _fold(row[job.columns.index(job.external_id)])
                for row in rows
                if job.external_id and job.external_id != "Id"
            )
            sim._planning = {}
            try:
                for row in rows:
                    self._one(job, sobject, row, claimed, repeated)
            finally:
                sim._planning = None
        sim.stats.wrote(len(job.successes))
        job.processed = len(job.successes) + len(job.failures)
        job.failed = len(job.failures)
        job.move("JobComplete")

    def _one(self, job: Job, sobject: str, row: list[str], claimed: dict, repeated: Counter):  # noqa: ANN201
        """Check and save one uploaded row, recording its result."""
        sim = self.sim
        values, problem = _typed(sobject, dict(zip(job.columns, row, strict=False)))
        record_id = values.pop("Id", None)
        existing: str | None = None
        if problem is None and job.operation in ("delete", "hardDelete"):
            hit = sim.org.find(str(record_id or ""))
            if hit is None or hit[0] != sobject or hit[1]["IsDeleted"]:
                problem = _error("ENTITY_IS_DELETED", "entity is deleted")
            else:
                sim.org.delete(sobject, hit[1]["Id"], datetime.now(UTC), sim.org.integration_user)
                job.successes.append([hit[1]["Id"], "false", *row])
                return
        if problem is None and job.operation == "upsert" and job.external_id != "Id":
            record = {**values, "attributes": {"type": sobject}}
            clean, existing, problem = sim._plan_upsert(sobject, job.external_id, record, repeated)
        elif problem is None:
            creating = job.operation == "insert" or (job.operation == "upsert" and not record_id)
            existing = None if creating else record_id
            record = {**values, "attributes": {"type": sobject}}
            if not creating:
                record["id"] = record_id
            clean, problem = sim._check(record, creating, claimed)
        if problem is not None or clean is None:
            job.failures.append([record_id or "", _error_text(problem), *row])
            return
        saved = sim._save(sobject, clean, datetime.now(UTC), existing)
        job.successes.append([saved, "false" if existing else "true", *row])

    # results ---------------------------------------------------------------------------------
    def _results(
        self, job: Job, query: dict[str, list[str]], version: str, headers: dict[str, str]
    ) -> str:
        if version != job.version:
            raise ApiError(409, "API_ERROR", f"Use API version {job.version} to get the"
                           " results of this job")  # fmt: skip
        if job.state != "JobComplete":
            raise _state_error(f"Job {job.id} is not in state JobComplete: {job.state}")
        start = _offset(query.get("locator", [""])[0])
        wanted = (query.get("maxRecords") or [""])[0]
        if wanted and not (wanted.isdigit() and int(wanted) > 0):
            raise ApiError(400, "API_ERROR", f"Invalid maxRecords: {wanted}")
        end, size = start, len(job.header)
        limit = start + int(wanted) if wanted else len(job.lines)
        while end < min(limit, len(job.lines)) and size + len(job.lines[end]) <= MAX_SET_BYTES:
            size += len(job.lines[end])
            end += 1
        end = max(end, min(start + 1, len(job.lines)))
        headers["Content-Type"] = "text/csv"
        headers["Sforce-NumberOfRecords"] = str(end - start)
        headers["Sforce-Locator"] = _locator(end) if end < len(job.lines) else "null"
        return job.header + "".join(job.lines[start:end])

    def _ingest_results(self, job: Job, which: str, prefix: tuple[str, ...]) -> str:
        if job.state not in TERMINAL:
            raise _state_error(f"Job {job.id} is not in a terminal state: {job.state}")
        rows = {"successfulResults": job.successes, "failedResults": job.failures,
                "unprocessedrecords": job.unprocessed}[which]  # fmt: skip
        buffer = io.StringIO()
        writer = job.writer(buffer)
        writer.writerow([*prefix, *job.columns])
        writer.writerows(rows)
        return buffer.getvalue()


def _json(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw) if raw else None
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "expected a JSON object")
    return body


def _rows(job: Job) -> tuple[list[str], list[list[str]]]:
    """The uploaded CSV: its header and rows (an upload is decoded as UTF-8)."""
    text = job.upload.decode("utf-8-sig", "replace")
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=DELIMITERS[job.delimiter],
        lineterminator=LINE_ENDINGS[job.line_ending],
    )
    found = [row for row in reader if row]
    return (found[0], found[1:]) if found else ([], [])


def _known_column(job: Job, column: str) -> bool:
    return column == "Id" or column in OBJECTS[job.object]


def _typed(sobject: str, values: dict[str, str]) -> tuple[dict[str, Any], dict | None]:
    """CSV text -> field values: empty leaves a field alone, `#N/A` clears it, numbers and
    checkboxes are read as their type (a value that is not one fails the record)."""
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if value == "":
            continue
        if name == "Id":
            typed[name] = value
            continue
        if value == NULL:
            typed[name] = None
            continue
        kind = OBJECTS[sobject][name]["type"]
        try:
            if kind in ("double", "currency", "percent"):
                typed[name] = float(value)
            elif kind == "int":
                typed[name] = int(value)
            elif kind == "boolean":
                typed[name] = BOOLEANS[value.lower()]
            else:
                typed[name] = value
        except (ValueError, KeyError):
            message = f"{name}: value not of required type: {value}"
            return typed, _error("INVALID_TYPE_ON_FIELD_IN_RECORD", message, [name])
    return typed, None


def _error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


def _error_text(error: dict[str, Any] | None) -> str:
    """`sf__Error` as Salesforce writes it: `CODE:message:Field1,Field2 --`."""
    error = error or _error("UNKNOWN_EXCEPTION", "unknown error")
    return f"{error['statusCode']}:{error['message']}:{','.join(error['fields'] or [])} --"


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _column(item: soql.Path | soql.Query) -> str:
    assert isinstance(item, soql.Path)
    return ".".join([hop[0] for hop in item.hops] + [item.field])


def _cell(row: dict[str, Any], item: soql.Path | soql.Query, sobject: str) -> str:
    """One value as Bulk CSV writes it: empty for null, true/false, datetimes in UTC `Z`."""
    assert isinstance(item, soql.Path)
    node: Any = row
    for relationship, _, target in item.hops:
        node = node.get(relationship) if isinstance(node, dict) else None
        sobject = target
    value = node.get(item.field) if isinstance(node, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if OBJECTS[sobject].get(item.field, {}).get("type") == "datetime" and isinstance(value, str):
        return value.replace("+0000", "Z")
    return str(value)


def _locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str) -> int:
    if not locator:
        return 0
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4)).decode()
        if text.isdigit():
            return int(text)
    except ValueError:
        pass
    raise ApiError(400, "API_ERROR", f"Invalid locator: {locator[:40]}")
