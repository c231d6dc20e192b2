"""When a decision can next change with the clock alone, so a run re-decides only the mirrored
contacts whose decision may have moved (and everyone after a rules change).

What moves with time, and when:
- decayed points: ages count in whole days, so a signal's points change only when one of its
  occurrences turns a day older (`at` + n days);
- hot and warm triggers, and re-nurture: they expire a set number of days after an event;
- an escalation: an open follow-up becomes overdue at its due time plus the grace;
- a hot lead's re-contact: the next slot of its episode.
The answer is never later than a day away, a safety net for anything time-dependent not
listed here. Pure, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from crm_qualify.connector.decision.planning import follow_up_due
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import CompiledRules, compile_rules
from crm_qualify.connector.model import Contact, Decision

DAY = timedelta(days=1)
ZERO = timedelta(0)
OVERDUE = timedelta(seconds=1)
"""A follow-up escalates once its due time plus the grace has passed, not at that instant."""


def next_review(contact: Contact, decision: Decision, rules: Rules, now: datetime) -> datetime:
    """The earliest moment after `now` at which deciding `contact` again can give another
    decision, given nothing about it changes in the CRM."""
    soonest = now + DAY
    if contact.events:
        soonest = min(soonest, _events_change(contact, compile_rules(rules), now))
    if contact.tasks:
        grace = timedelta(hours=rules.followup.escalate_after_hours)
        for task in contact.tasks:
            due = follow_up_due(task, rules.followup) if task.is_open else None
            if due is not None and due + grace > now:
                soonest = min(soonest, due + grace + OVERDUE)
    recall = timedelta(days=rules.followup.hot_recall_days)
    if decision.hot_since is not None and recall:
        slots = int((now - decision.hot_since) / recall) + 1 if now > decision.hot_since else 1
        soonest = min(soonest, decision.hot_since + slots * recall)
    return soonest


def _events_change(contact: Contact, rules: CompiledRules, now: datetime) -> datetime:
    """The soonest of: an event from the future happening, an event turning a day older, and
    an event leaving a trigger or re-nurture window. With `age = now - at`, an event turns
    `days + 1` days old at `at + (days + 1) * DAY = now + DAY - age % DAY`, and leaves a
    window `w` at `at + w = now + w - age`: the soonest is the oldest age still inside it."""
    ages = [now - event.at for event in contact.events]
    past = [age for age in ages if age >= ZERO]
    soonest = now + DAY
    if len(past) < len(ages):
        soonest = now - max(age for age in ages if age < ZERO)
    if past:
        soonest = min(soonest, now + DAY - max(age % DAY for age in past))
        for window in (rules.hot_within, rules.warm_within, rules.renurture_after):
            inside = [age for age in past if age < window]
            if inside:
                soonest = min(soonest, now + window - max(inside))
    return soonest
