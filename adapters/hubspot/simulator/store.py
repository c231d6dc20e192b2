"""In-memory portal state: objects, associations, property definitions, owners, pipelines.

Ids are fixed-width numeric strings, so string order equals numeric order and each type keeps
one sorted id list: `after` paging is a bisect, and new objects append (ids only grow, as in
HubSpot). Every write goes through `create`/`update`/`archive`, which bump the modification
date and tell the search index, so search lag and sorting stay consistent with the store.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import PropertyProblem
from .marketing import Marketing
from .schema import (
    ASSOCIATION_TYPES,
    CREATED,
    CRMQ_GROUP,
    INVERSE_TYPE,
    MODIFIED,
    STANDARD_GROUPS,
    TYPE_IDS,
    crmq_properties,
    standard_properties,
)
from .search import SearchIndex
from .values import format_ms, normalize

Record = dict[str, Any]
Source = dict[str, Any]
# Where seeded values came from in `propertiesWithHistory`: a portal's data predates us.
SEEDED_SOURCE: Source = {"sourceType": "IMPORT", "sourceLabel": "Import"}
ID_BASE = {
    "contacts": 101_000_000_000,
    "companies": 201_000_000_000,
    "deals": 301_000_000_000,
    "tasks": 401_000_000_000,
    "calls": 501_000_000_000,
    "meetings": 502_000_000_000,
    "emails": 503_000_000_000,
    "notes": 504_000_000_000,
    "communications": 505_000_000_000,
}


class Store:
    """All portal data behind one re-entrant lock (handlers run under it; they are short)."""

    def __init__(
        self,
        hub_id: int,
        owners: list[dict[str, Any]],
        pipelines: list[dict[str, Any]],
        search_index_lag: float,
    ) -> None:
        self.lock = threading.RLock()
        self.hub_id = hub_id
        self.owners = owners
        self.pipelines = pipelines
        self.objects: dict[str, dict[str, Record]] = {t: {} for t in TYPE_IDS}
        self._ids: dict[str, list[str]] = {t: [] for t in TYPE_IDS}
        self._links: dict[tuple[str, str], dict[str, dict[str, tuple[int, ...]]]] = {
            pair: {} for pair in ASSOCIATION_TYPES
        }
        self._emails: dict[str, str] | None = None
        self.merged_into: dict[str, dict[str, str]] = {t: {} for t in TYPE_IDS}
        """Per type, the id of a record merged away -> the record it now is (merge.py)."""
        self.definitions: dict[str, dict[str, dict[str, Any]]] = {
            t: {d["name"]: d for d in defs}
            for t, defs in standard_properties([o["id"] for o in owners], pipelines).items()
        }
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            t: {name: group(name, label, i) for i, (name, label) in enumerate(pairs)}
            for t, pairs in STANDARD_GROUPS.items()
        }
        self.index = SearchIndex(self, search_index_lag)
        self.marketing = Marketing()  # forms, submissions, marketing events, participations
        # `propertiesWithHistory` sources: API writes (the simulator sets the app id) and UI edits
        self.api_source: Source = {"sourceType": "INTEGRATION"}
        self.ui_source: Source = {"sourceType": "CRM_UI"}

    # ----- reading -------------------------------------------------------------------------
    def get(self, object_type: str, object_id: str, archived: bool = False) -> Record | None:
        record = self.objects[object_type].get(object_id)
        if record is None or record["archived"] != archived:
            return None
        return record

    def iter_from(self, object_type: str, after: str | None) -> Iterator[Record]:
        """Records in ascending id order starting at id `after` (HubSpot's list cursor)."""
        ids = self._ids[object_type]
        start = bisect.bisect_left(ids, after) if after else 0
        table = self.objects[object_type]
        for i in range(start, len(ids)):
            yield table[ids[i]]

    def associations(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Ids of `to_type` records associated with one record (for tests and the demo)."""
        links = self._links.get((from_type, to_type), {}).get(from_id, {})
        return [to_id for to_id in links if not self.objects[to_type][to_id]["archived"]]

    def association_types(
        self, from_type: str, from_id: str, to_type: str
    ) -> list[tuple[str, tuple[int, ...]]]:
        links = self._links.get((from_type, to_type), {}).get(from_id, {})
        return [(i, t) for i, t in links.items() if not self.objects[to_type][i]["archived"]]

    def find_by_email(self, email: str) -> Record | None:
        if self._emails is None:
            self._emails = {
                r["properties"]["email"].lower(): r["id"]
                for r in self.objects["contacts"].values()
                if r["properties"].get("email") and not r["archived"]
            }
        found = self._emails.get(email.lower())
        return self.get("contacts", found) if found else None

    def history(self, object_type: str, record: Record, names: Iterable[str]) -> dict[str, Any]:
        """`propertiesWithHistory`: newest first, each `{value, timestamp, sourceType, ...}`.
        Properties never written since seeding (or creation) have one entry, their value at
        creation; names the record never had are left out, as HubSpot does."""
        out: dict[str, Any] = {}
        kept = record.get("history") or {}
        for name in dict.fromkeys(names):
            entries = kept.get(name)
            if entries is None:
                entries = self._baseline(object_type, record, name)
            if entries:
                out[name] = [dict(e) for e in entries]
        return out

    def _baseline(self, object_type: str, record: Record, name: str) -> list[dict[str, Any]]:
        props = record["properties"]
        value = props.get(name)
        if value is None:
            return []
        created = props.get(CREATED[object_type]) or record["createdAt"]
        stamp = value if name == MODIFIED[object_type] else created
        source = (
            self.api_source if props.get("hs_object_source") == "INTEGRATION" else SEEDED_SOURCE
        )
        return [{"value": value, "timestamp": stamp, **source}]

    def _remember(
        self,
        object_type: str,
        record: Record,
        changes: dict[str, str],
        stamp: str,
        source: Source,
    ) -> None:
        """Keep a value history for written properties (before they are applied)."""
        history = record.setdefault("history", {})
        for name, value in changes.items():
            if record["properties"].get(name, "") == value:
                continue
            entries = history.get(name)
            if entries is None:
                entries = history[name] = self._baseline(object_type, record, name)
            entries.insert(0, {"value": value, "timestamp": stamp, **source})

    def lifecycle_rank(self, stage: str) -> int:
        opts = self.definitions["contacts"]["lifecyclestage"]["options"]
        return next((o["displayOrder"] for o in opts if o["value"] == stage), -1)

    # ----- validation ----------------------------------------------------------------------
    def check(
        self, object_type: str, raw: Any, creating: bool = False
    ) -> tuple[dict[str, str], list[PropertyProblem]]:
        """Validate written properties like HubSpot: unknown names, read-only, bad values."""
        defs = self.definitions[object_type]
        clean: dict[str, str] = {}
        problems: list[PropertyProblem] = []
        for name, value in (raw or {}).items():
            definition = defs.get(name)
            if definition is None:
                msg = f'Property "{name}" does not exist'
                problems.append(PropertyProblem(name, "PROPERTY_DOESNT_EXIST", msg))
                continue
            if definition["modificationMetadata"]["readOnlyValue"]:
                msg = f'"{name}" is a read only property; its value cannot be set.'
                problems.append(PropertyProblem(name, "READ_ONLY_VALUE", msg))
                continue
            normalized, problem = normalize(definition, value)
            if problem:
                problems.append(problem)
            else:
                clean[name] = normalized
        if creating and object_type == "tasks" and not clean.get("hs_timestamp"):
            problems.append(
                PropertyProblem(
                    "hs_timestamp", "REQUIRED_PROPERTY", 'Property "hs_timestamp" is required'
                )
            )
        return clean, problems

    # ----- writing -------------------------------------------------------------------------
    def next_id(self, object_type: str) -> str:
        ids = self._ids[object_type]
        return str(int(ids[-1]) + 1 if ids else ID_BASE[object_type])

    def insert(self, object_type: str, record: Record) -> None:
        """Add a fully built record (seeding and creates); ids must be ascending."""
        self.objects[object_type][record["id"]] = record
        self._ids[object_type].append(record["id"])

    def create(self, object_type: str, props: dict[str, str], now: int) -> Record:
        stamp = format_ms(now)
        object_id = self.next_id(object_type)
        self.index.before_change(object_type, object_id)
        properties = {k: v for k, v in props.items() if v != ""}
        properties.update(
            {
                CREATED[object_type]: stamp,
                MODIFIED[object_type]: stamp,
                "hs_object_id": object_id,
                "hs_object_source": "INTEGRATION",
                "hs_object_source_label": "INTEGRATION",
            }
        )
        if object_type == "tasks":
            properties.setdefault("hs_task_status", "NOT_STARTED")
            properties.setdefault("hs_task_priority", "NONE")
            properties.setdefault("hs_task_type", "TODO")
            self._derive_task(properties, stamp)
        record = {
            "id": object_id,
            "properties": properties,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self.insert(object_type, record)
        if object_type == "contacts" and self._emails is not None and properties.get("email"):
            self._emails[properties["email"].lower()] = object_id
        self.index.after_change(object_type, object_id, now)
        return record

    def update(
        self,
        object_type: str,
        object_id: str,
        props: dict[str, str],
        now: int,
        *,
        human: bool = False,
        source: Source | None = None,
    ) -> Record:
        """Apply a write. API writes cannot move `lifecyclestage` backwards: as in HubSpot the
        stage must be cleared first, so a backwards value is silently ignored (UI edits may)."""
        record = self.objects[object_type][object_id]
        current = record["properties"]
        self.index.before_change(object_type, object_id)
        changes = dict(props)
        stage = changes.get("lifecyclestage")
        if (
            stage
            and current.get("lifecyclestage")
            and not human
            and (self.lifecycle_rank(stage) < self.lifecycle_rank(current["lifecyclestage"]))
        ):
            del changes["lifecyclestage"]
        if object_type == "contacts" and "email" in changes and self._emails is not None:
            self._emails.pop(current.get("email", "").lower(), None)
            if changes["email"]:
                self._emails[changes["email"].lower()] = object_id
        stamp = format_ms(now)
        if source is None:
            source = self.ui_source if human else self.api_source
        self._remember(object_type, record, changes, stamp, source)
        for name, value in changes.items():
            if value == "":
                current.pop(name, None)
            else:
                current[name] = value
        if object_type == "tasks":
            self._derive_task(current, stamp)
        current[MODIFIED[object_type]] = stamp
        record["updatedAt"] = stamp
        self.index.after_change(object_type, object_id, now)
        return record

    def archive(self, object_type: str, object_id: str, now: int) -> None:
        record = self.objects[object_type][object_id]
        self.index.before_change(object_type, object_id)
        record["archived"] = True
        record["archivedAt"] = format_ms(now)
        if object_type == "contacts" and self._emails is not None:
            self._emails.pop(record["properties"].get("email", "").lower(), None)
        self.index.after_change(object_type, object_id, now)

    @staticmethod
    def _derive_task(props: dict[str, str], stamp: str) -> None:
        done = props.get("hs_task_status") == "COMPLETED"
        props["hs_task_is_completed"] = "1" if done else "0"
        if done:
            props.setdefault("hs_task_completion_date", stamp)
        else:
            props.pop("hs_task_completion_date", None)

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: Iterable[int]
    ) -> None:
        """Link two records in both directions (HubSpot stores the inverse type too)."""
        ids = tuple(sorted(type_ids))
        inverse = tuple(sorted(INVERSE_TYPE[i] for i in ids))
        for table, key, other, types in (
            (self._links[(from_type, to_type)], from_id, to_id, ids),
            (self._links[(to_type, from_type)], to_id, from_id, inverse),
        ):
            links = table.get(key)
            if links is None:
                table[key] = {other: types}
            else:
                known = links.get(other)
                links[other] = types if known is None else tuple(sorted(set(known + types)))

    def move_links(self, object_type: str, from_id: str, to_id: str) -> None:
        """Every association of one record, moved to another (a merge), both directions."""
        for (one, other), table in self._links.items():
            if one != object_type or from_id not in table:
                continue
            for other_id, types in table.pop(from_id).items():
                self._links[(other, one)].get(other_id, {}).pop(from_id, None)
                if other_id != to_id:
                    self.associate(one, to_id, other, other_id, types)

    def emails_changed(self) -> None:
        """Contacts' emails moved outside create/update/archive: look-ups rebuild their map."""
        self._emails = None

    # ----- properties API ------------------------------------------------------------------
    def provision_crmq(self, stamp: str) -> None:
        """Create the crm-qualify group and properties (the `custom_properties=True` portal)."""
        for object_type, defs in crmq_properties(stamp).items():
            self.add_group(object_type, *CRMQ_GROUP)
            for definition in defs:
                self.definitions[object_type][definition["name"]] = definition

    def add_group(self, object_type: str, name: str, label: str, order: int = -1) -> dict[str, Any]:
        created = group(name, label, order)
        self.groups[object_type][name] = created
        return created


def group(name: str, label: str, order: int) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": order, "archived": False}
