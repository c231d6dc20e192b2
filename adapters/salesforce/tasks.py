"""Follow-up tasks: created at most once, found again by their key, deleted by a rollback.

A task is upserted by its key (an External ID + Unique field), never inserted blindly:
`PATCH composite/sobjects/Task/<key field>`, retried only when Salesforce certainly did not
act on it (429, a refused connection, a rolled-back lock). After any other failure (5xx, a
reset, a lost or late answer) its tasks come back `uncertain` and the core looks their keys up
before sending anything again. Even a resend cannot make a second task: Salesforce matches the
key and updates the one it has (`created: false`). The upsert sends no Status (Salesforce
defaults it on create), so such an update never reopens a closed task. A task key Salesforce
says is already held (DUPLICATE_VALUE: two upserts of one key racing) is uncertain: looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from crm_qualify.adapters.salesforce.client import SalesforceCallError, SalesforceClient
from crm_qualify.adapters.salesforce.translate import task_record
from crm_qualify.adapters.salesforce.values import is_id
from crm_qualify.adapters.salesforce.writes import COLLECTION, Row, rows_of, send_collection
from crm_qualify.connector.contract import TaskResult
from crm_qualify.connector.model import PlannedTask

Query = Callable[[str, str], Iterator[list[dict[str, Any]]]]
"""The adapter's query: pages of rows of one SOQL statement."""
QueryIn = Callable[[str, str, Sequence[str]], list[dict[str, Any]]]
"""The adapter's IN-list query: every row of a template run over ids in URI-sized chunks."""


class TaskWriter:
    def __init__(self, client: SalesforceClient, key: str, query: Query, query_in: QueryIn) -> None:
        self.client, self.key, self.query, self.query_in = client, key, query, query_in

    def create(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        """Upsert by key; a key planned twice in one call is sent once (Salesforce would
        refuse both copies) and both get its result."""
        results: list[TaskResult] = []
        path = f"composite/sobjects/Task/{self.key}"
        for start in range(0, len(tasks), COLLECTION):
            chunk = tasks[start : start + COLLECTION]
            index: dict[str, int] = {}
            records = []
            for task in chunk:
                if task.key.casefold() not in index:
                    index[task.key.casefold()] = len(records)
                    records.append(task_record(task, self.key))
            rows = send_collection(
                self.client, "PATCH composite/sobjects/Task", path, records,
                idempotent=False, key_field=self.key,
            )  # fmt: skip
            results += [task_result(t.key, rows[index[t.key.casefold()]]) for t in chunk]
        return results

    def find(self, keys: Sequence[str]) -> dict[str, str]:
        key = self.key
        wanted = {k.casefold(): k for k in keys}
        rows = self.query_in(
            "GET query Task", f"SELECT Id, {key} FROM Task WHERE {key} IN ({{values}})", keys
        )
        return {
            wanted[row[key].casefold()]: row["Id"]
            for row in rows
            if isinstance(row.get(key), str)
            and row[key].casefold() in wanted
            and is_id(row.get("Id"))
        }

    def existing(self) -> Iterator[tuple[str, str]]:
        key = self.key
        soql = f"SELECT Id, {key} FROM Task WHERE {key} != null ORDER BY Id"
        for page in self.query("GET query Task", soql):
            for row in page:
                if isinstance(row.get(key), str) and is_id(row.get("Id")):
                    yield row[key], row["Id"]

    def close(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        """Delete (rollback); a task already deleted counts as done."""
        results: list[TaskResult] = []
        for start in range(0, len(crm_ids), COLLECTION):
            chunk = list(crm_ids[start : start + COLLECTION])
            try:
                answer = self.client.restful(
                    "DELETE composite/sobjects",
                    "composite/sobjects",
                    "DELETE",
                    params={"ids": ",".join(chunk), "allOrNone": "false"},
                )
            except SalesforceCallError as exc:
                results += [
                    TaskResult(i, False, crm_id=i, error=str(exc), retryable=exc.transient)
                    for i in chunk
                ]
                continue
            for task_id, row in zip(chunk, rows_of(answer, len(chunk)), strict=True):
                gone = row.ok or row.gone
                results.append(
                    TaskResult(task_id, gone, crm_id=task_id, error=None if gone else row.detail)
                )
        return results


def task_result(key: str, row: Row) -> TaskResult:
    """An upsert refused with DUPLICATE_VALUE means the key is already held (a concurrent
    upsert of it won the race): the task exists, so it is looked up rather than reported."""
    if row.ok:
        return TaskResult(key, True, crm_id=row.detail)
    held = (row.detail or "").startswith("DUPLICATE_VALUE")
    return TaskResult(
        key,
        False,
        error=row.detail,
        uncertain=row.uncertain or held,
        retryable=row.retryable or held,
        field=row.field,
        gone=row.gone,
    )
