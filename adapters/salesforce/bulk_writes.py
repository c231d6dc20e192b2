"""Large write sets through Bulk API 2.0 ingest jobs: field updates by record id, follow-up
tasks upserted by their key, one result per record as the REST collections give them
(`writes.py`, `tasks.py`).

A job's life: create, upload the CSV, close (`UploadComplete`), poll until it ends, then read
back `failedResults` (`sf__Error`: `CODE:message:fields --`, routed like a REST record error,
naming the field), `unprocessedrecords` (rows Salesforce never touched: safe to send again)
and, for tasks, `successfulResults` (`sf__Id` of each key's task). In the CSV an empty value
leaves a field alone and `#N/A` clears it.

The write protocol holds: a job whose data never reached `UploadComplete` is never processed
(nothing happened: retryable). Once closed, only its results say what happened; a record they
do not account for (the job cannot be polled or read back) has an unknown outcome: an update is
simply retried (writing the same values by id is idempotent), a task comes back `uncertain`
and the core looks its key up before anything is sent again. Upserting by the key, an External
ID + Unique field, never makes a second task whatever happens in between.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from crm_qualify.adapters.salesforce.bulk import BulkApi, JobState, csv_rows
from crm_qualify.adapters.salesforce.client import SalesforceCallError
from crm_qualify.adapters.salesforce.tasks import task_result
from crm_qualify.adapters.salesforce.translate import ObjectMapping, task_record
from crm_qualify.adapters.salesforce.writes import (
    COLLECTION,
    RETRYABLE_CODES,
    Row,
    translate_updates,
)
from crm_qualify.connector.contract import (
    AdapterError,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import PlannedTask, RecordUpdate

log = logging.getLogger(__name__)
NULL = "#N/A"
UNKNOWN = Row(False, "the Bulk job's outcome is unknown", retryable=True, uncertain=True)


JOB_REQUESTS = 4
"""An ingest job's requests at the least: create, upload, close, one poll."""


def fewer_in_collections(records: int) -> bool:
    """Whether sObject Collections of 200 take fewer requests than one ingest job."""
    return math.ceil(records / COLLECTION) < JOB_REQUESTS


Records = Callable[[], Iterable[dict[str, Any]]]
"""A job's records, made anew for each pass over them (its keys, its columns, its rows)."""


@contextmanager
def csv_file(records: Records) -> Iterator[BinaryIO]:
    """Records as one ingest CSV in UTF-8, in an anonymous temporary file read from the start
    (it streams to the upload with its length, and is gone when closed or the process dies):
    a job of 10,000 updates with their reasons is 12 MB, which held in memory was the largest
    block of a 100,000-record run (`docs/performance.md`). A column per field any record
    sets; a record without it leaves it alone (empty), a None clears it (`#N/A`)."""
    columns = list(dict.fromkeys(name for record in records() for name in record))
    with tempfile.TemporaryFile() as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        for record in records():
            writer.writerow([_cell(record, name) for name in columns])
        text.flush()
        text.detach()
        spool.seek(0)
        yield spool


def _cell(record: dict[str, Any], name: str) -> str:
    if name not in record:
        return ""
    value = record[name]
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def failure(error: str | None) -> Row:
    """A `sf__Error` as a REST collection row: code, message and the first field it names."""
    text = (error or "UNKNOWN:no error given").removesuffix(" --").removesuffix("--")
    code, _, rest = text.partition(":")
    message, _, fields = rest.rpartition(":")
    if not message:
        message, fields = rest, ""
    named = [f for f in fields.split(",") if f]
    detail = f"{code}: {message}" + (f" ({', '.join(named)})" if named else "")
    return Row(False, detail, retryable=code in RETRYABLE_CODES, field=named[0] if named else None)


@dataclass
class Ingest:
    """One ingest job's records, keyed by the column that names them (`Id`, or the external
    id field compared case-insensitively), and the row each ends with."""

    sobject: str
    operation: str
    key: str
    records: Records
    """Made for each pass: a job's tasks are not held again as 10,000 dicts beside them."""
    external_id: str | None = None

    def keyed(self, value: str) -> str:
        return value.casefold() if self.external_id else value


class BulkWrites:
    def __init__(
        self, api: BulkApi, objects: Mapping[str, ObjectMapping], task_key: str, threshold: int
    ) -> None:
        self.api, self.objects, self.task_key, self.threshold = api, objects, task_key, threshold

    def worth(self, records: int) -> bool:
        return bool(self.threshold) and records >= self.threshold

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        results, translated = translate_updates(self.objects, updates)
        by_object: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for position, update, fields in translated:
            fields["Id"] = update.contact_id  # the translation is ours: no copy of 10,000
            by_object.setdefault(update.object_type, []).append((position, fields))
        for sobject, entries in by_object.items():
            job = Ingest(sobject, "update", "Id", lambda e=entries: (r for _, r in e))
            rows = self.run(job)
            for position, record in entries:
                row = rows[record["Id"]]
                results[position] = WriteResult(
                    record["Id"], row.ok, None if row.ok else row.detail,
                    retryable=row.retryable, field=row.field, gone=row.gone,
                )  # fmt: skip
        return [results[position] for position in range(len(updates))]

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        """Upsert by key in one job; a key planned twice is sent once, both get its result.
        Each task's record is made as it is written out (`Ingest.records`)."""
        first: dict[str, PlannedTask] = {}
        for task in tasks:
            first.setdefault(task.key.casefold(), task)

        def records() -> Iterator[dict[str, Any]]:
            for task in first.values():
                record = task_record(task, self.task_key)
                del record["attributes"]
                yield record

        job = Ingest("Task", "upsert", self.task_key, records, self.task_key)
        rows = self.run(job)
        return [task_result(task.key, rows[task.key.casefold()]) for task in tasks]

    # one job ---------------------------------------------------------------------------------
    def run(self, job: Ingest) -> dict[str, Row]:
        """The row of every record of `job`, by key."""
        keys = [job.keyed(str(record[job.key])) for record in job.records()]
        body = {"object": job.sobject, "operation": job.operation, "contentType": "CSV",
                "lineEnding": "LF", "columnDelimiter": "COMMA"}  # fmt: skip
        if job.external_id:
            body["externalIdFieldName"] = job.external_id
        try:
            with csv_file(job.records) as data:  # first: a disk that fails leaves no open job
                created = self.api.create("ingest", body)
                self._upload(created.id, data)
        except (AdapterError, OSError) as exc:
            unsent = Row(False, f"not sent: {exc}", retryable=True)
            return dict.fromkeys(keys, unsent)
        try:
            self._close(created.id)
            ended = self.api.wait("ingest", created.id)
        except AdapterError as exc:
            log.warning("Bulk ingest job %s: outcome unknown: %s", created.id, exc)
            return dict.fromkeys(keys, UNKNOWN)
        self.api.jobs["batches"] += max(1, -(-len(keys) // 10_000))
        return self._outcome(job, keys, ended)

    def _upload(self, job_id: str, data: BinaryIO) -> None:
        """Upload the data; if the upload may have failed half-way, the job is aborted (and
        an open job is never processed anyway), so nothing of it can land."""
        try:
            self.api.request(
                "PUT jobs/ingest/{id}/batches", "PUT", f"ingest/{job_id}/batches",
                data=data, headers={"Content-Type": "text/csv"}, idempotent=False,
            )  # fmt: skip
        except AdapterError:
            try:
                self.api.abort("ingest", job_id)
            except AdapterError:
                log.warning("Bulk ingest job %s left open (it is never processed)", job_id)
            raise

    def _close(self, job_id: str) -> None:
        """`UploadComplete`, retried like any idempotent call: a retry that finds the job no
        longer open (INVALIDJOBSTATE) follows a first close whose answer was lost."""
        try:
            self.api.set_state("ingest", job_id, "UploadComplete")
        except SalesforceCallError as exc:
            if exc.code != "INVALIDJOBSTATE":
                raise

    def _outcome(self, job: Ingest, keys: list[str], ended: JobState) -> dict[str, Row]:
        """What the job's results say of each record; one they do not account for is
        unknown. A complete job that failed nothing wrote every update."""
        rows: dict[str, Row] = {}
        complete = ended.state == "JobComplete" and ended.processed == len(keys)
        try:
            if ended.failed:
                for flat in self._results(ended.id, "failedResults"):
                    rows[job.keyed(flat.get(job.key, ""))] = failure(flat.get("sf__Error"))
            if not complete:
                why = f"not processed: the Bulk job ended {ended.state}"
                for flat in self._results(ended.id, "unprocessedrecords"):
                    rows[job.keyed(flat.get(job.key, ""))] = Row(False, why, retryable=True)
            if job.external_id or not complete:
                for flat in self._results(ended.id, "successfulResults"):
                    rows[job.keyed(flat.get(job.key, ""))] = Row(True, flat.get("sf__Id"))
        except AdapterError as exc:
            log.warning("Bulk ingest job %s: results unreadable: %s", ended.id, exc)
        everyone_else = Row(True, None) if complete and not job.external_id else UNKNOWN
        outcome = {key: rows.get(key, everyone_else) for key in keys}
        if ended.error:
            log.warning("Bulk ingest job %s ended %s: %s", ended.id, ended.state, ended.error)
        return outcome

    def _results(self, job_id: str, which: str) -> Iterator[dict[str, str]]:
        """The rows of one results CSV, made one at a time from its bytes (the successful
        results of 10,000 task upserts repeat every column sent)."""
        answer = self.api.request(
            f"GET jobs/ingest/{{id}}/{which}", "GET", f"ingest/{job_id}/{which}",
            headers={"Accept": "text/csv"},
        )  # fmt: skip
        yield from csv_rows(answer.content)
