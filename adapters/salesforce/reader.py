"""Where incremental reading stands, which people engagement touched since then, what was
read with each person (the child sets of its row), and batches handed to the core.

`SystemModstamp` on a Lead or Contact alone misses engagement: a campaign response
(CampaignMember), an open or back-dated Task, or an Opportunity moving to won does not touch
the person's record (only a change of its LastActivityDate does). So after the changed people,
a run sweeps the activity objects changed in the same window and reads the people they point
to that it has not read yet. The sweep's position is saved only once it is done, so a run
interrupted during the sweep sweeps again.

Both the people query and the sweep start `lookback_seconds` before where the last run ended,
because a row may commit with a stamp older than the moment it became visible. So that this
overlap costs no reads, what the last run already holds is left out: people whose stamp is the
version the core mirrors (`known`, in the adapter), activity rows (by Id and stamp) that the
last complete run handed on inside their person's own row, and records merged away that it
handed on with their master (`Cursor.held`, kept for the rows stamped in its last
`lookback_seconds`). An Opportunity names no single person, so its rows are never held: one
changed in that window has its contacts read again by the next run.

A person's engagement comes in its own row, one child set per relationship subquery: null
when there is none, `done: true` with every row, or `done: false` when Salesforce cut the set
short (child rows count toward the page, a set carries a few hundred at most); a cut set, or
one in a shape not understood, is read again for those people by an IN list.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_qualify.adapters.salesforce.soql import Engagement, in_chunks, quote, when
from crm_qualify.adapters.salesforce.translate import Related
from crm_qualify.adapters.salesforce.values import parse_time
from crm_qualify.connector.contract import TranslationError

log = logging.getLogger(__name__)

PREFIXES = {"00Q": "Lead", "003": "Contact"}
"""Salesforce key prefixes: a WhoId names a Lead or a Contact by its first three characters."""

Pages = Callable[[str, str], Iterator[list[dict[str, Any]]]]
Rows = dict[str, list[dict[str, Any]]]
"""Related rows by person id."""
BATCH = 1_000
"""People per batch handed to the core: a multiple of the 200 records one collection writes,
so that a batch's updates fill whole collections (pages with subqueries carry fewer people).
Half a query page: a batch with its engagement rows is what the core holds while the next one
is read, and 1,000 instead of 2,000 took the connector's peak RSS from 170 to 159 MB on an
incremental run reading 10,000 of 100,000 people, and from 136 to 122 MB on a full read of
10,000 through Bulk, for the same requests (`bench/salesforce_sync.py`)."""
_MISSING = object()


@dataclass
class Cursor:
    """Per object the last (SystemModstamp, Id) read, the stamp up to which the activity
    objects were swept (None before the first complete run), and the activity rows and
    records merged away the run that swept them handed on with their person, stamped inside
    the next run's lookback (`held`: Id -> SystemModstamp)."""

    positions: dict[str, tuple[str, str]] = field(default_factory=dict)
    activity: str | None = None
    held: dict[str, datetime] = field(default_factory=dict)

    def dump(self) -> str:
        data: dict[str, Any] = {"positions": {k: list(v) for k, v in self.positions.items()}}
        if self.activity:
            data["activity"] = self.activity
        if self.held:
            by_stamp: dict[str, list[str]] = {}
            for row_id, stamp in sorted(self.held.items()):
                by_stamp.setdefault(stamp.isoformat(), []).append(row_id)
            data["held"] = by_stamp
        return json.dumps(data, sort_keys=True)

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            positions = data.get("positions", data)
            return cls(
                positions={
                    k: (str(v[0]), str(v[1]))
                    for k, v in positions.items()
                    if k not in ("activity", "held")
                },
                activity=data.get("activity"),
                held={
                    str(row_id): datetime.fromisoformat(stamp)
                    for stamp, ids in data.get("held", {}).items()
                    for row_id in ids
                },
            )
        except (ValueError, TypeError, IndexError, AttributeError, KeyError):
            log.warning("the saved cursor is unreadable: reading every record again")
            return cls()

    def sweep_from(self) -> str | None:
        """Where the activity sweep starts: None on a first run, which reads everyone anyway."""
        if self.activity:
            return self.activity
        stamps = [stamp for stamp, _ in self.positions.values()]
        return min(stamps) if stamps else None


def people_touched(
    pages: Pages,
    since: datetime,
    until: datetime,
    task_key: str,
    deals: bool,
    held: dict[str, datetime] | None = None,
    ours: str | None = None,
) -> dict[str, set[str]]:
    """Lead and Contact ids whose Tasks, Events, campaign responses or (with `deals`)
    opportunities changed in (since, until]. Our own open tasks are left out: creating them
    is not engagement, but a salesperson closing one is, and so is one changing it (a new
    due date: it is not late then) when `ours`, the integration user, is known. So are the
    rows `held` names with their current stamp: the last run handed them on with their
    person."""
    window = f"SystemModstamp > {when(since)} AND SystemModstamp <= {when(until)}"
    worked_on = f" OR LastModifiedById != {quote(ours)}" if ours else ""
    people: list[str] = []
    kept = held or {}

    def column(what: str, soql: str, *names: str) -> None:
        for page in pages(what, soql):
            people.extend(
                row[name]
                for row in page
                if not _held(row, kept)
                for name in names
                if isinstance(row.get(name), str)
            )

    column(
        "GET query Task",
        f"SELECT Id, SystemModstamp, WhoId FROM Task WHERE {window} AND WhoId != null"
        f" AND ({task_key} = null OR IsClosed = true{worked_on})",
        "WhoId",
    )
    column(
        "GET query Event",
        f"SELECT Id, SystemModstamp, WhoId FROM Event WHERE {window} AND WhoId != null",
        "WhoId",
    )
    column(
        "GET query CampaignMember",
        f"SELECT Id, SystemModstamp, LeadId, ContactId FROM CampaignMember WHERE {window}",
        "LeadId",
        "ContactId",
    )
    if deals:
        column(
            "GET query OpportunityContactRole",
            f"SELECT Id, SystemModstamp, ContactId FROM OpportunityContactRole WHERE {window}",
            "ContactId",
        )
        opportunities = [
            row["Id"]
            for page in pages("GET query Opportunity", f"SELECT Id FROM Opportunity WHERE {window}")
            for row in page
        ]
        for statement in in_chunks(
            "SELECT ContactId FROM OpportunityContactRole WHERE OpportunityId IN ({values})",
            opportunities,
        ):
            column("GET query OpportunityContactRole", statement, "ContactId")
    touched: dict[str, set[str]] = {}
    for person in people:
        sobject = PREFIXES.get(person[:3])
        if sobject:
            touched.setdefault(sobject, set()).add(person)
    return touched


HELD = ("Tasks", "Events", "CampaignMembers", "OpportunityContactRoles")
"""The child sets whose rows each name one person (their `WhoId`, `LeadId` or `ContactId`):
handed on in that person's row, the person holds them."""


def _stamp(value: Any) -> datetime | None:
    try:
        return parse_time(value, "SystemModstamp")
    except TranslationError:
        return None


def _held(row: dict[str, Any], held: dict[str, datetime]) -> bool:
    """Whether a swept row is one the last run handed on, at this very stamp."""
    row_id = row.get("Id")
    return (
        isinstance(row_id, str)
        and row_id in held
        and held[row_id] == _stamp(row.get("SystemModstamp"))
    )


@dataclass
class Holding:
    """The rows a read hands on with their person, stamped after `since`: activity rows inside
    the person's row (`HELD`), and records merged away, with their master (`merged_ids`). The
    next run's lookback meets them again, and need not read their people for them. `before`:
    what the last complete run held."""

    since: datetime
    before: dict[str, datetime] = field(default_factory=dict)
    rows: dict[str, datetime] = field(default_factory=dict)
    _floor: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._floor = when(self.since)[:19]  # compared as text first: most rows are far older

    def add(self, found: dict[str, Rows]) -> None:
        for relationship in HELD:
            for person_rows in found.get(relationship, {}).values():
                for row in person_rows:
                    self.hold(row)

    def hold(self, row: dict[str, Any]) -> None:
        """One row handed on with its person, if stamped inside the next run's lookback."""
        text, row_id = row.get("SystemModstamp"), row.get("Id")
        if not (isinstance(text, str) and isinstance(row_id, str)) or text[:19] < self._floor:
            return
        if (stamp := _stamp(text)) and stamp > self.since:
            self.rows[row_id] = stamp

    def held_before(self, row: dict[str, Any]) -> bool:
        """Whether the last complete run handed this row on, at its current stamp."""
        return _held(row, self.before)

    def cursor_rows(self) -> dict[str, datetime]:
        """What the next run's cursor holds: these rows and those the last run held, still
        inside the next run's lookback (a held row stays held until its stamp moves)."""
        rows = {k: v for k, v in self.before.items() if v > self.since}
        rows.update(self.rows)
        return rows


def child_sets(
    people: list[dict[str, Any]], kinds: list[Engagement]
) -> tuple[dict[str, Rows], dict[str, list[str]]]:
    """The child sets taken out of each person's row (keyed by its `Id`): rows by kind and
    person, and by kind the people whose set is to be read again by IN list (cut short, or
    not a query result)."""
    rows: dict[str, Rows] = {kind.relationship: {} for kind in kinds}
    again: dict[str, list[str]] = {kind.relationship: [] for kind in kinds}
    for person in people:
        for kind in kinds:
            found = person.pop(kind.relationship, _MISSING)
            if found is None:
                continue
            readable = isinstance(found, dict) and found.get("done") is True
            records = found.get("records") if readable else None
            if not isinstance(records, list):
                again[kind.relationship].append(person["Id"])
            elif records:
                found_rows = [r for r in records if isinstance(r, dict)]
                if found_rows:
                    rows[kind.relationship][person["Id"]] = found_rows
    return rows, again


def related(rows: dict[str, Rows]) -> Related:
    """What translation takes: the campaigns come with their members, the opportunities with
    their contact roles (a role whose opportunity cannot be seen is no deal)."""
    members = rows.get("CampaignMembers", {})
    campaigns = {
        member["CampaignId"]: member["Campaign"]
        for found in members.values()
        for member in found
        if isinstance(member.get("CampaignId"), str) and isinstance(member.get("Campaign"), dict)
    }
    deals = {
        person: opportunities
        for person, roles in rows.get("OpportunityContactRoles", {}).items()
        if (opportunities := [r["Opportunity"] for r in roles if _deal(r)])
    }
    return Related(
        tasks=rows.get("Tasks", {}),
        events=rows.get("Events", {}),
        members=members,
        campaigns=campaigns,
        deals=deals,
    )


def _deal(role: dict[str, Any]) -> bool:
    return isinstance(role.get("OpportunityId"), str) and isinstance(role.get("Opportunity"), dict)


@dataclass
class Pending:
    """Records read and not yet handed to the core, in reading order, each with the position
    (SystemModstamp, Id) it moves its object's cursor to: a batch's cursor never claims a
    record the batch does not carry, whatever page the batch was cut from."""

    state: Cursor
    entries: list[tuple[str, dict[str, Any] | None, tuple[str, str] | None]] = field(
        default_factory=list
    )
    count: int = 0

    def add(
        self, sobject: str, record: dict[str, Any] | None, position: tuple[str, str] | None
    ) -> None:
        """A record (None: only a position, of a record left out or an object read to its
        end) to hand on."""
        self.entries.append((sobject, record, position))
        self.count += record is not None

    def holds(self, sobject: str, record_id: str) -> bool:
        """Whether a record of this id is read and not yet handed on."""
        return any(
            obj == sobject and record is not None and record.get("Id") == record_id
            for obj, record, _ in self.entries
        )

    def take(self, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """The next `limit` records (all when None) by object, the cursor moved past them."""
        taken: dict[str, list[dict[str, Any]]] = {}
        used = done = 0
        for sobject, record, position in self.entries:
            if record is not None:
                if limit is not None and used == limit:
                    break
                taken.setdefault(sobject, []).append(record)
                used += 1
            if position:
                self.state.positions[sobject] = position
            done += 1
        del self.entries[:done]
        self.count -= used
        return taken
