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
from crm_qualify.connector.model import Contact, Decision

DAY = timedelta(days=1)
OVERDUE = timedelta(seconds=1)
"""A follow-up escalates once its due time plus the grace has passed, not at that instant."""


def next_review(contact: Contact, decision: Decision, rules: Rules, now: datetime) -> datetime:
    """The earliest moment after `now` at which deciding `contact` again can give another
    decision, given nothing about it changes in the CRM."""
    soonest = now + DAY
    windows = [
        timedelta(days=rules.temperature.hot_within_days),
        timedelta(days=rules.temperature.warm_within_days),
        timedelta(days=rules.stages.renurture_after_days),
    ]
    for event in contact.events:
        if event.at > now:
            soonest = min(soonest, event.at)
            continue
        soonest = min(soonest, event.at + ((now - event.at).days + 1) * DAY)
        for window in windows:
            if event.at + window > now:
                soonest = min(soonest, event.at + window)
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
