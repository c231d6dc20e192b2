"""Where incremental reading stands, and which people engagement touched since then.

`SystemModstamp` on a Lead or Contact alone misses engagement: a campaign response
(CampaignMember), an open or back-dated Task, or an Opportunity moving to won does not touch
the person's record (only a change of its LastActivityDate does). So after the changed people,
a run sweeps the activity objects changed in the same window and reads the people they point
to that it has not read yet. The sweep's position is saved only once it is done, so a run
interrupted during the sweep sweeps again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_qualify.adapters.salesforce.soql import in_chunks, when

log = logging.getLogger(__name__)

PREFIXES = {"00Q": "Lead", "003": "Contact"}
"""Salesforce key prefixes: a WhoId names a Lead or a Contact by its first three characters."""

Pages = Callable[[str, str], Iterator[list[dict[str, Any]]]]


@dataclass
class Cursor:
    """Per object the last (SystemModstamp, Id) read, and the stamp up to which the activity
    objects were swept (None before the first complete run)."""

    positions: dict[str, tuple[str, str]] = field(default_factory=dict)
    activity: str | None = None

    def dump(self) -> str:
        data: dict[str, Any] = {"positions": {k: list(v) for k, v in self.positions.items()}}
        if self.activity:
            data["activity"] = self.activity
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
                    k: (str(v[0]), str(v[1])) for k, v in positions.items() if k != "activity"
                },
                activity=data.get("activity"),
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
    pages: Pages, since: datetime, until: datetime, task_key: str, deals: bool
) -> dict[str, set[str]]:
    """Lead and Contact ids whose Tasks, Events, campaign responses or (with `deals`)
    opportunities changed in (since, until]. Our own open tasks are left out: creating them
    is not engagement, but a salesperson closing one is."""
    window = f"SystemModstamp > {when(since)} AND SystemModstamp <= {when(until)}"
    people: list[str] = []

    def column(what: str, soql: str, *names: str) -> None:
        for page in pages(what, soql):
            people.extend(
                row[name] for row in page for name in names if isinstance(row.get(name), str)
            )

    column(
        "GET query Task",
        f"SELECT WhoId FROM Task WHERE {window} AND WhoId != null"
        f" AND ({task_key} = null OR IsClosed = true)",
        "WhoId",
    )
    column("GET query Event", f"SELECT WhoId FROM Event WHERE {window} AND WhoId != null", "WhoId")
    column(
        "GET query CampaignMember",
        f"SELECT LeadId, ContactId FROM CampaignMember WHERE {window}",
        "LeadId",
        "ContactId",
    )
    if deals:
        column(
            "GET query OpportunityContactRole",
            f"SELECT ContactId FROM OpportunityContactRole WHERE {window}",
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
