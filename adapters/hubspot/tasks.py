"""Follow-up tasks: created at most once, found again by their key.

Creation is `POST /crm/v3/objects/tasks/batch/create`, 100 tasks per request (one `create`
call with more is split), each input with `objectWriteTraceId` = the key, the key in the key
property and its task-to-contact association inline (`associations`), so no separate
association request is ever made. It is sent with `idempotent=False`: only a failure that proves
HubSpot never acted (429, connection refused) is retried; after a timeout, a lost answer or a
5xx every task of the request comes back `uncertain`, and the core looks the keys up
(`find_tasks`) before anything is sent again. A 400 means HubSpot created nothing, so the
batch is split until the refused task stands alone. Why not batch upsert by a unique key
property: see README.md ("Tasks exactly once").
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError, classify
from crm_qualify.adapters.hubspot.records import (
    BATCH,
    FILTER_VALUES,
    SEARCH_BODY_LIMIT,
    batch_read,
    context_ids,
    error_text,
    missing_properties,
    next_after,
)
from crm_qualify.adapters.hubspot.setup import missing_properties_error
from crm_qualify.adapters.hubspot.translate import task_input
from crm_qualify.adapters.hubspot.values import objects, record_id, text_value
from crm_qualify.adapters.hubspot.writes import REFUSED, blamed_property
from crm_qualify.connector.contract import ConfigError, OutcomeUnknown, TaskResult
from crm_qualify.connector.model import PlannedTask

SEARCH_PAGE = 200
KEYS_PER_SEARCH = FILTER_VALUES
"""Key look-ups are chunked to HubSpot's 100 values per IN filter and to fit its 3,000-
character search body (`SEARCH_BODY_LIMIT`)."""


class TaskWriter:
    def __init__(self, client: HubSpotClient, key_property: str, association_type: int) -> None:
        self.client = client
        self.key_property = key_property
        self.association_type = association_type

    # creation --------------------------------------------------------------------------------
    def create(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        """Raises `ConfigError` (the portal lacks the key property) only while none of the
        call's tasks was or may have been created: the core then owes them all again."""
        unique = list({task.key: task for task in tasks}.values())
        results = self._in_parts(
            [unique[start : start + BATCH] for start in range(0, len(unique), BATCH)]
        )
        self._mark_gone(unique, results)
        return [
            results.get(t.key)
            or TaskResult(t.key, False, error="HubSpot's answer left this task out", uncertain=True)
            for t in tasks
        ]

    def _in_parts(self, parts: list[list[PlannedTask]]) -> dict[str, TaskResult]:
        """Parts created one request after the other. A `ConfigError` once a task is created,
        or of unknown outcome, would lose that: the part refused and those after it come back
        refused instead (owed, the next request stops the run)."""
        results: dict[str, TaskResult] = {}
        for done, part in enumerate(parts):
            try:
                results.update(self._create(part))
            except ConfigError as exc:
                if all(not (r.ok or r.uncertain) for r in results.values()):
                    raise
                rest = [task for later in parts[done:] for task in later]
                return results | {t.key: TaskResult(t.key, False, error=str(exc)) for t in rest}
        return results

    def _create(self, chunk: list[PlannedTask]) -> dict[str, TaskResult]:
        inputs = [task_input(t, self.key_property, self.association_type) for t in chunk]
        try:
            _, answer = self.client.call(
                "POST tasks/batch/create",
                self.client.batch.create,
                "tasks",
                {"inputs": inputs},
                idempotent=False,
            )
        except OutcomeUnknown as exc:
            return {t.key: TaskResult(t.key, False, error=str(exc), uncertain=True) for t in chunk}
        except HubSpotError as exc:
            return self._refused_batch(chunk, exc)
        return self._results(chunk, answer)

    def _mark_gone(self, tasks: list[PlannedTask], results: dict[str, TaskResult]) -> None:
        """A task refused for good whose contact HubSpot no longer has (deleted or merged since
        it was read) is `gone`, so the core moves it to another record of the person or drops
        it. HubSpot's refusal names no code for that (a VALIDATION_ERROR on the association),
        so the contacts are asked for: one batch read, and only when a task was refused. A
        failed look-up leaves the refusals as they were."""
        refused = [
            task
            for task in tasks
            if (result := results.get(task.key)) is not None
            and not (result.ok or result.uncertain or result.retryable or result.gone)
        ]
        by_type: dict[str, set[str]] = {}
        for task in refused:
            by_type.setdefault(task.object_type, set()).add(task.contact_id)
        gone: set[tuple[str, str]] = set()
        for object_type, ids in by_type.items():
            try:
                rows = batch_read(self.client, object_type, sorted(ids), [])
            except (HubSpotError, OutcomeUnknown):
                return
            gone |= {(object_type, record) for record in rows.gone}
        for task in refused:
            if (task.object_type, task.contact_id) in gone:
                results[task.key] = replace(results[task.key], gone=True)

    def _refused_batch(self, chunk: list[PlannedTask], exc: HubSpotError) -> dict[str, TaskResult]:
        """Nothing was created: a 400 is split down to the refused task; a throttle or a
        refused connection that outlasted the retries can simply be tried again later."""
        if exc.status == 400:
            missing = missing_properties(exc.body)
            if missing:  # the task key property: every task alike, none created
                raise missing_properties_error({}, missing)
            if len(chunk) > 1:
                middle = len(chunk) // 2
                return self._in_parts([chunk[:middle], chunk[middle:]])
            return {chunk[0].key: _refusal(chunk[0].key, exc.body)}
        retryable = classify(exc).transient
        return {t.key: TaskResult(t.key, False, error=str(exc), retryable=retryable) for t in chunk}

    def _results(self, chunk: list[PlannedTask], answer: dict[str, Any]) -> dict[str, TaskResult]:
        sent = {t.key for t in chunk}
        results: dict[str, TaskResult] = {}
        for row in objects(answer.get("results")):
            props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
            key = row.get("objectWriteTraceId") or props.get(self.key_property)
            crm_id = record_id(row)
            if key in sent and crm_id is not None:
                results[key] = TaskResult(key, True, crm_id=crm_id)
        for error in objects(answer.get("errors")):
            missing = missing_properties(error)
            if missing and not results:  # nothing created: no acknowledgement is lost
                raise missing_properties_error({}, missing)
            for key in context_ids(error, "objectWriteTraceId"):
                if key in sent and key not in results:
                    results[key] = _refusal(key, error)
        return results

    # look-ups --------------------------------------------------------------------------------
    def find(self, keys: Sequence[str]) -> dict[str, str]:
        """CRM ids of tasks carrying these keys (the oldest, should a key be on two)."""
        found: dict[str, str] = {}
        for chunk in _search_chunks(list(dict.fromkeys(keys))):
            filters = [{"propertyName": self.key_property, "operator": "IN", "values": chunk}]
            for key, task_id in self._search(filters):
                if key in chunk:
                    found.setdefault(key, task_id)
        return found

    def existing(self) -> Iterator[tuple[str, str]]:
        """Every task carrying a key, by ascending id: keyset paging, so HubSpot's
        10,000-result search window is never reached."""
        after = "0"
        while True:
            filters = [
                {"propertyName": self.key_property, "operator": "HAS_PROPERTY"},
                {"propertyName": "hs_object_id", "operator": "GT", "value": after},
            ]
            page = self._search_page(filters, None)
            rows = objects(page.get("results"))
            yield from self._keys(rows)
            ids = [int(i) for i in (record_id(r) for r in rows) if i and i.isdigit()]
            if len(rows) < SEARCH_PAGE or not ids:
                return
            after = str(max(ids))

    def _search(self, filters: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        after: str | None = None
        while True:
            page = self._search_page(filters, after)
            yield from self._keys(objects(page.get("results")))
            after = next_after(page)
            if not after:
                return

    def _search_page(self, filters: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": [self.key_property],
            "limit": SEARCH_PAGE,
        }
        if after:
            body["after"] = after
        _, page = self.client.call(
            "POST tasks/search", self.client.search_api.do_search, "tasks", body, search=True
        )
        return page

    def _keys(self, rows: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for row in rows:
            props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
            try:
                key = text_value(props.get(self.key_property), self.key_property)
            except ValueError:
                continue  # not a key we could have written
            task_id = record_id(row)
            if key and task_id:
                yield key, task_id

    # rollback --------------------------------------------------------------------------------
    def close(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        """Archive tasks a rolled-back run created (batch archive answers 204; archiving an
        archived task is a no-op, so this keeps ordinary retries)."""
        results = []
        for start in range(0, len(crm_ids), BATCH):
            chunk = list(crm_ids[start : start + BATCH])
            try:
                self.client.call(
                    "POST tasks/batch/archive",
                    self.client.batch.archive,
                    "tasks",
                    {"inputs": [{"id": i} for i in chunk]},
                )
                results += [TaskResult(i, True, crm_id=i) for i in chunk]
            except HubSpotError as exc:
                results += [TaskResult(i, False, crm_id=i, error=str(exc)) for i in chunk]
        return results


def _refusal(key: str, error: dict[str, Any]) -> TaskResult:
    category = str(error.get("category") or "")
    field = blamed_property(error)
    return TaskResult(
        key,
        False,
        error=error_text(error, field),
        retryable=category not in REFUSED,
        field=field,
    )


def _search_chunks(keys: list[str]) -> Iterator[list[str]]:
    """Keys in groups whose search body stays under HubSpot's 3,000-character limit."""
    chunk: list[str] = []
    room = SEARCH_BODY_LIMIT - 400  # the rest of the body: filter, sort, properties
    for key in keys:
        cost = len(json.dumps(key)) + 1
        if chunk and (room - cost < 0 or len(chunk) == KEYS_PER_SEARCH):
            yield chunk
            chunk, room = [], SEARCH_BODY_LIMIT - 400
        chunk.append(key)
        room -= cost
    if chunk:
        yield chunk
