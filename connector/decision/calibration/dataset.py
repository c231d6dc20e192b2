"""Who won and who did not, with each person's facts as they were before the outcome.

A person's outcome is the first deal they were on (by creation): won is a win; lost is a
loss; open is a win only when `opportunity_is_win`, otherwise unknown yet. A person with no
deal `horizon_days` after being created is a loss too. The facts are the contact with only
the events from before the cut-off, scored at that moment: `cutoff_days` before the deal was
created, so the model never learns the sale itself; for a loss without a deal, `cutoff_days`
after their last activity in the horizon, the moment a deal would have come. Both are judged
as they stood when sales would have acted: judging the one at the end of the horizon, after
months of decay, would teach the model that having a deal is a signal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from crm_qualify.connector.contract import Outcome
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.model import Contact, Deal

Kind = Literal["won", "opportunity", "lost", "stale"]


@dataclass(frozen=True)
class Example:
    """One person with a known outcome: `facts` is the contact at `cutoff`."""

    facts: Contact
    won: bool
    kind: Kind
    cutoff: datetime
    outcome_at: datetime
    """When the outcome became known: the time-based split orders people by it."""


@dataclass
class Dataset:
    examples: list[Example]
    source: Literal["mirror", "adapter"]
    since: datetime
    until: datetime
    skipped: dict[str, int]
    """People left out, by reason (no outcome yet, outside the window, no date to cut at)."""
    api_requests: int = 0

    @property
    def conversions(self) -> int:
        return sum(1 for example in self.examples if example.won)

    def counts(self) -> dict[str, int]:
        counts = {"won": 0, "opportunity": 0, "lost": 0, "stale": 0}
        for example in self.examples:
            counts[example.kind] += 1
        return counts


def deals_from_outcomes(outcomes: Iterable[Outcome]) -> dict[str, list[Deal]]:
    """Closed deals by contact id, from the adapter's `fetch_outcomes`."""
    deals: dict[str, list[Deal]] = {}
    for outcome in outcomes:
        deal = Deal(
            id=outcome.deal_id,
            status="won" if outcome.won else "lost",
            amount=outcome.amount,
            closed_at=outcome.closed_at,
            created_at=outcome.created_at,
        )
        for contact_id in outcome.contact_ids:
            deals.setdefault(contact_id, []).append(deal)
    return deals


def build_dataset(
    contacts: Iterable[Contact],
    settings: CalibrateSettings,
    since: datetime,
    until: datetime,
    source: Literal["mirror", "adapter"],
    closed_deals: dict[str, list[Deal]] | None = None,
) -> Dataset:
    """Examples for the people whose outcome fell in [since, until). `closed_deals` (by
    contact id, from `fetch_outcomes`) are joined to each contact's own deals, and win over
    them for the same deal id."""
    examples: list[Example] = []
    skipped = {"no outcome yet": 0, "outside the window": 0, "no date to cut at": 0}
    for contact in contacts:
        deals = contact.deals
        if closed_deals is not None:
            merged = {deal.id: deal for deal in deals}
            merged.update((deal.id, deal) for deal in closed_deals.get(contact.id, []))
            deals = list(merged.values())
        labelled = _label(contact, deals, settings)
        if labelled is None:
            skipped["no outcome yet" if deals or contact.created_at else "no date to cut at"] += 1
            continue
        kind, cutoff, outcome_at = labelled
        if not since <= outcome_at < until:
            skipped["outside the window"] += 1
            continue
        examples.append(
            Example(
                facts=as_of(contact, cutoff),
                won=kind in ("won", "opportunity"),
                kind=kind,
                cutoff=cutoff,
                outcome_at=outcome_at,
            )
        )
    examples.sort(key=lambda example: (example.outcome_at, example.facts.id))
    return Dataset(examples, source, since, until, {k: v for k, v in skipped.items() if v})


def _label(
    contact: Contact, deals: list[Deal], settings: CalibrateSettings
) -> tuple[Kind, datetime, datetime] | None:
    """(kind, cut-off, when the outcome was known), or None while it is not known."""
    cutoff_gap = timedelta(days=settings.cutoff_days)
    cycle = timedelta(days=settings.assumed_cycle_days)
    dated = []
    for deal in deals:
        opened = deal.created_at or (deal.closed_at - cycle if deal.closed_at else None)
        if opened is not None:
            dated.append((opened, deal))
    if dated:
        opened, first = min(dated, key=lambda item: item[0])
        if first.status == "open":
            if not settings.opportunity_is_win:
                return None
            return "opportunity", opened - cutoff_gap, opened
        known = first.closed_at or opened
        return ("won" if first.status == "won" else "lost"), opened - cutoff_gap, known
    if deals or contact.created_at is None:
        return None
    end = contact.created_at + timedelta(days=settings.horizon_days)
    active = [event.at for event in contact.events if event.at < end]
    judged = max(active, default=contact.created_at) + cutoff_gap
    return "stale", min(judged, end), end


def as_of(contact: Contact, cutoff: datetime) -> Contact:
    """The contact with only what was known before `cutoff`: its events until then, and none
    of what the outcome brought (deals, stage, our own written values, tasks)."""
    return contact.model_copy(
        update={
            "events": [event for event in contact.events if event.at < cutoff],
            "deals": [],
            "tasks": [],
            "owned": {},
            "stage": None,
        }
    )
