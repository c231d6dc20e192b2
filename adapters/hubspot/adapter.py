"""The HubSpot adapter: the core's contract (`crm_qualify.connector.contract.Adapter`)
over HubSpot's CRM v3/v4 API, through the official `hubspot-api-client`.

Reads are batched: per 500 contacts, batch reads of the mapped properties, one v4
association read each for deals and tasks, and batch reads of those deals and tasks. Records
go to the core untranslated (`RawContact`): the core translates each in its own guard.
Writes: `writes.py` (owned fields) and `tasks.py` (follow-up tasks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError
from crm_qualify.adapters.hubspot.reader import ChangeReader, Cursor, Known, epoch_ms
from crm_qualify.adapters.hubspot.records import (
    ContactRows,
    Links,
    Rows,
    associated,
    batch_read,
    next_after,
)
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.setup import create_properties, property_checks, task_checks
from crm_qualify.adapters.hubspot.tasks import TaskWriter
from crm_qualify.adapters.hubspot.translate import (
    ContactMapping,
    Related,
    deal_stages,
    to_deal,
    translate_contact,
)
from crm_qualify.adapters.hubspot.typed import lenient, objects, parse_time, record_id
from crm_qualify.adapters.hubspot.writes import FieldWriter
from crm_qualify.connector.contract import (
    ApiUsage,
    AuthError,
    CheckResult,
    ContactBatch,
    FieldInfo,
    KnownVersions,
    Outcome,
    RawContact,
    RecordError,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.model import PlannedTask, RecordUpdate

log = logging.getLogger(__name__)

READ_BATCH = 500
"""Contacts read together: one association request serves up to 1,000 of them."""
DEAL_PROPERTIES = ["dealstage", "pipeline", "amount", "closedate", "hs_mrr"]
TASK_PROPERTIES = ["hs_timestamp", "hs_task_status", "hs_createdate", "hs_task_completion_date"]


class HubSpotAdapter:
    name = "hubspot"
    settings_model = HubSpotSettings

    def __init__(
        self, settings: HubSpotSettings, mapping: dict[str, Any], client: HubSpotClient
    ) -> None:
        self.settings = settings
        self.client = client
        self.object_type = settings.object_type
        self.contacts = ContactMapping.from_document(mapping, self.object_type)
        self.writable_stages = frozenset(self.contacts.stages)
        tasks = mapping.get("tasks", {})
        self.task_key_property = tasks.get("key_property", "crmq_task_key")
        deals = mapping.get("deals", {})
        self.recurring_property = deals.get("recurring_property", "hs_mrr")
        self.reader = ChangeReader(
            client, self.object_type, int(settings.lookback_seconds * 1000), self.task_key_property
        )
        self.fields = FieldWriter(client, self.contacts, self.object_type)
        self.tasks = TaskWriter(
            client, self.task_key_property, int(tasks.get("contact_association_type", 204))
        )
        self._deal_stages: dict[str, tuple[bool, bool]] | None = None

    @classmethod
    def from_config(cls, settings: HubSpotSettings, mapping: dict[str, Any]) -> HubSpotAdapter:
        return cls(settings, mapping, HubSpotClient(settings))

    def __repr__(self) -> str:
        return f"HubSpotAdapter(base_url={self.settings.base_url!r})"

    # checks and schema -----------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        try:
            fields = self.describe_fields(self.object_type)
        except AuthError as exc:
            return [CheckResult("credentials", False, str(exc))]
        except HubSpotError as exc:
            return [CheckResult("connectivity", False, str(exc))]
        results = [CheckResult("credentials", True, f"read {len(fields)} contact properties")]
        results += property_checks(self.contacts, fields)
        try:
            results += task_checks(self.describe_fields("tasks"), self.task_key_property)
            self._stages()
            results.append(CheckResult("deal pipelines", True, "closed and won stages known"))
        except (AuthError, HubSpotError) as exc:
            results.append(CheckResult("tasks and deal pipelines", False, str(exc)))
        return results

    def setup(self) -> list[CheckResult]:
        return create_properties(self.client, self.object_type, self.task_key_property)

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        _, body = self.client.call(
            "GET properties", self.client.properties.get_all, object_type, archived=False
        )
        fields = {}
        for row in objects(body.get("results")):
            meta = row.get("modificationMetadata") or {}
            fields[str(row.get("name"))] = FieldInfo(
                name=str(row.get("name")),
                label=str(row.get("label") or ""),
                type=str(row.get("type") or ""),
                writable=not meta.get("readOnlyValue", False),
                options=tuple(str(o.get("value")) for o in objects(row.get("options"))),
            )
        return fields

    # reads -----------------------------------------------------------------------------------
    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        try:
            position = Cursor.load(cursor)
        except ValueError:
            log.warning("the saved cursor is unreadable: walking the whole portal again")
            position = None
        pending: list[str] = []
        last: Cursor | None = None
        for ids, after in self.reader.changed(position, until, self._known(known)):
            pending += ids
            last = after
            if len(pending) >= READ_BATCH:
                yield self._batch(pending, last.dump())
                pending, last = [], None
        if last is not None:
            yield self._batch(pending, last.dump())

    def _known(self, known: KnownVersions | None) -> Known | None:
        """The core's check in the reader's terms (ids and epoch ms)."""
        if known is None:
            return None
        object_type = self.object_type

        def check(rows: list[tuple[str, int]]) -> set[str]:
            hits = [
                ((object_type, oid), datetime.fromtimestamp(ms / 1000, UTC)) for oid, ms in rows
            ]
            return {oid for _, oid in known(hits)}

        return check

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        wanted = list(dict.fromkeys(record for _, record in ids))
        for start in range(0, len(wanted), READ_BATCH):
            yield self._batch(wanted[start : start + READ_BATCH], None)

    def _batch(self, ids: list[str], cursor: str | None) -> ContactBatch:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return ContactBatch(cursor=cursor)
        read = self._read(ids)
        stages = self._stages() if read.deals.found else {}
        raw, errors = [], []
        for record in ids:
            label, key = f"{self.object_type}/{record}", (self.object_type, record)
            problem = read.problem(record)
            if record in read.contacts.gone:
                errors.append(RecordError(label, None, "not found: deleted or merged"))
            elif problem:
                errors.append(RecordError(label, None, problem, key=key, transient=True))
            else:
                related = Related(
                    read.deal_rows(record),
                    read.task_rows(record),
                    stages,
                    self.recurring_property,
                    self.task_key_property,
                )
                row = read.contacts.found[record]
                translate = partial(translate_contact, self.contacts, row, related)
                raw.append(RawContact(label, translate, key))
        return ContactBatch(cursor=cursor, errors=errors, raw=raw)

    def _read(self, ids: list[str]) -> ContactRows:
        """Batch reads of the contacts, their deal and task links, and those deals and tasks."""
        contacts = batch_read(self.client, self.object_type, ids, self.contacts.properties)
        live = [i for i in ids if i in contacts.found]
        deal_links = associated(self.client, self.object_type, live, "deals")
        task_links = associated(self.client, self.object_type, live, "tasks")
        task_properties = [*TASK_PROPERTIES, self.task_key_property]
        return ContactRows(
            contacts,
            deal_links,
            self._related("deals", deal_links, DEAL_PROPERTIES),
            task_links,
            self._related("tasks", task_links, task_properties),
        )

    def _related(self, object_type: str, links: Links, properties: list[str]) -> Rows:
        ids = sorted({linked for targets in links.linked.values() for linked in targets})
        return batch_read(self.client, object_type, ids, properties) if ids else Rows()

    def _stages(self) -> dict[str, tuple[bool, bool]]:
        if self._deal_stages is None:
            _, body = self.client.call(
                "GET pipelines/deals", self.client.pipelines.get_all, "deals"
            )
            self._deal_stages = deal_stages(body)
        return self._deal_stages

    # writes ----------------------------------------------------------------------------------
    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        return self.fields.write(updates)

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        return self.tasks.create(tasks)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        return self.tasks.find(keys)

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        return self.tasks.existing()

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        return self.tasks.close(crm_ids)

    # outcomes --------------------------------------------------------------------------------
    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        stages = self._stages()
        closed_ids = [s for s, (closed, _) in stages.items() if closed]
        if not closed_ids:
            return
        after = "0"
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "dealstage", "operator": "IN", "values": closed_ids},
                            {
                                "propertyName": "closedate",
                                "operator": "GTE",
                                "value": str(epoch_ms(since)),
                            },
                        ]
                    }
                ],
                "properties": ["dealstage", "amount", "closedate"],
                "limit": 100,
                "after": after,
            }
            _, page = self.client.call(
                "POST deals/search", self.client.search_api.do_search, "deals", body, search=True
            )
            rows = [r for r in objects(page.get("results")) if record_id(r)]
            ids = [str(record_id(r)) for r in rows]
            links = associated(self.client, "deals", ids, self.object_type).linked
            for row, deal_id in zip(rows, ids, strict=True):
                yield _outcome(row, deal_id, stages, links.get(deal_id, []))
            after = next_after(page)
            if not after or not rows:
                return

    def usage(self) -> ApiUsage:
        return self.client.usage()


def _outcome(
    row: dict[str, Any], deal_id: str, stages: dict[str, tuple[bool, bool]], contacts: list[str]
) -> Outcome:
    """A closed deal found by search (its stage is closed by the filter)."""
    deal = to_deal(row, stages, "hs_mrr")
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    return Outcome(
        deal_id=deal_id,
        won=deal.status == "won",
        closed_at=lenient(parse_time, props.get("closedate"), "closedate"),
        contact_ids=tuple(contacts),
        amount=deal.amount,
    )
