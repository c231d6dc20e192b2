"""What applying a proposal would change: every mirrored person decided with the current rules
and with the proposed ones, at the same moment, compared. Decisions only, no writes: the
same `decide` a run and a dry run use, on the same persons (a person's records merged into
one, `sources.mirrored_people`). A decision's stage falling below the current one is no move:
a run never moves a stage back (`stages_kept`). What a run also keeps and this cannot see is a
value a person set under a write policy (`unless_edited`, `if_empty`): the dry run with the
proposal shows exactly what lands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import Contact, Stage


@dataclass
class Impact:
    contacts: int = 0
    stage_changes: int = 0
    stages_kept: int = 0
    """Contacts the proposal decides at a lower stage: a run keeps their stage."""
    temperature_changes: int = 0
    moves: Counter[str] = field(default_factory=Counter)
    """'lead -> mql': how many contacts each stage or temperature move concerns."""
    mql_or_above: tuple[int, int] = (0, 0)
    """Contacts at MQL or beyond: current rules, then proposed rules as a run applies them
    (a stage kept, never moved back)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "stage_changes": self.stage_changes,
            "stages_kept": self.stages_kept,
            "temperature_changes": self.temperature_changes,
            "moves": dict(self.moves.most_common()),
            "mql_or_above": {"current": self.mql_or_above[0], "proposed": self.mql_or_above[1]},
        }


def impact(
    people: Iterable[tuple[Contact, int]], current: Rules, proposed: Rules, now: datetime
) -> Impact:
    """`people`: each person as one contact, and how many records carry its decision."""
    result = Impact()
    above = [0, 0]
    for contact, records in people:
        before, after = decide(contact, current, now), decide(contact, proposed, now)
        result.contacts += records
        above[0] += records * (before.stage.rank >= Stage.MQL.rank)
        above[1] += records * (max(before.stage.rank, after.stage.rank) >= Stage.MQL.rank)
        if after.stage.rank < before.stage.rank:
            result.stages_kept += records
        elif before.stage is not after.stage:
            result.stage_changes += records
            result.moves[f"{before.stage.value} -> {after.stage.value}"] += records
        if before.temperature is not after.temperature:
            result.temperature_changes += records
            result.moves[f"{before.temperature.value} -> {after.temperature.value}"] += records
    result.mql_or_above = (above[0], above[1])
    return result
