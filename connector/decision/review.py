"""When a decision can next change with the clock alone, so a run re-decides only the mirrored
contacts whose decision may have moved (and everyone after a rules change).

What moves with time, and when:
- a signal's points: ages count in whole days, and what a signal shows is its decayed sum
  rounded to whole points (and whether the cap or decay takes some away). The sum is bounded
  below for the days ahead (every decaying occurrence of a signal loses the same share per
  day; fresh ones count in full until they leave the fresh window), so the review is the day
  the bound first reaches a rounding boundary: with the default 90-day half-life a few
  points' signal holds for weeks. An occurrence leaving the fresh window is a moment too;
- hot and warm triggers and re-nurture: the youngest event they look at leaving its window;
- an escalation: an open follow-up becomes overdue at its due time plus the grace, the
  follow-ups this decision plans too (they join the contact once created);
- a hot lead's re-contact: the next slot of its episode.
The answer is never later than `SAFETY_NET` away, for anything time-dependent not listed
here. Pure, no I/O.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from crm_qualify.connector.decision.planning import KINDS, follow_up_due
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import TABLE_DAYS, CompiledRules, compile_rules
from crm_qualify.connector.model import Contact, Decision, EventType

DAY = timedelta(days=1)
ZERO = timedelta(0)
SAFETY_NET = timedelta(days=7)
"""The longest a decision goes unlooked-at, whatever this module proves about it."""
OVERDUE = timedelta(seconds=1)
"""A follow-up escalates once its due time plus the grace has passed, not at that instant."""
JUST_AFTER = timedelta(microseconds=1)
"""A window `at + w` still holds at that instant (`>=`); it is left the moment after."""
MARGIN = 1e-9
"""Relative slack on a rounding boundary: the bound and scoring add the same numbers in
another order, so a sum that close to a boundary is taken to cross it now."""


def next_review(contact: Contact, decision: Decision, rules: Rules, now: datetime) -> datetime:
    """The earliest moment after `now` at which deciding `contact` again can give another
    decision, given nothing about it changes in the CRM."""
    soonest = now + SAFETY_NET
    if contact.events:
        soonest = min(soonest, _events_change(contact, compile_rules(rules), now))
    if contact.tasks or decision.tasks:
        grace = timedelta(hours=rules.followup.escalate_after_hours)
        dues = [follow_up_due(task, rules.followup) for task in contact.tasks if task.is_open]
        dues += [task.due for task in decision.tasks if task.kind in KINDS]
        for due in dues:
            if due is not None and due + grace > now:
                soonest = min(soonest, due + grace + OVERDUE)
    recall = timedelta(days=rules.followup.hot_recall_days)
    if decision.hot_since is not None and recall:
        slots = int((now - decision.hot_since) / recall) + 1 if now > decision.hot_since else 1
        soonest = min(soonest, decision.hot_since + slots * recall)
    return soonest


def _events_change(contact: Contact, rules: CompiledRules, now: datetime) -> datetime:
    """The soonest of: an event from the future happening, a fresh occurrence leaving the
    fresh window, a signal's points reaching a rounding boundary, and the youngest event a
    trigger or re-nurture looks at leaving its window.

    With `age = now - at`, the first event to turn a day older does so `DAY - max(age % DAY)`
    from now; until k days after that, no occurrence is more than k days older than now."""
    fresh_days = rules.fresh_days
    leaves_fresh = (math.floor(fresh_days) + 1) * DAY
    tables = rules.decay
    signals: dict[EventType, list] = {}
    """Per signal: [fresh occurrences, decayed occurrences, an event in the future?, the
    latest event's time]."""
    soonest = now + SAFETY_NET
    phase = 0
    """max(age % DAY) in microseconds: one integer compare per event."""
    for event in contact.events:
        kind, at = event.type, event.at
        age = now - at
        days = age.days
        entry = signals.get(kind)
        if entry is None:
            entry = signals[kind] = [0.0, 0.0, False, at]
        elif at > entry[3]:
            entry[3] = at
        if days < 0:
            entry[2] = True
            soonest = min(soonest, at)
            continue
        if days <= fresh_days:
            entry[0] += event.count
            soonest = min(soonest, at + leaves_fresh)
        else:
            factor = tables[kind][days] if days < TABLE_DAYS else rules.factor(kind, days)
            entry[1] += factor * event.count
        part = age.seconds * 1_000_000 + age.microseconds
        if part > phase:
            phase = part
    soonest = min(soonest, _window_exits(rules, signals, now))
    steps = SAFETY_NET.days
    for kind, (fresh, decayed, future, _) in signals.items():
        steps = min(steps, _steady_days(rules, kind, fresh, decayed, future))
        if not steps:
            break
    if steps >= SAFETY_NET.days:
        return soonest
    turn = DAY - timedelta(microseconds=phase)
    return min(soonest, now + turn + steps * DAY)


def _window_exits(rules: CompiledRules, signals: dict[EventType, list], now: datetime) -> datetime:
    """When a hot or warm trigger's latest occurrence leaves its window, or the last activity
    the re-nurture window (the first moment the rule reads otherwise)."""
    soonest = now + SAFETY_NET
    for kinds, window in (
        (rules.hot_triggers, rules.hot_within),
        (rules.warm_triggers, rules.warm_within),
        (signals, rules.renurture_after),
    ):
        last = max((signals[kind][3] for kind in kinds if kind in signals), default=None)
        if last is not None and last + window >= now:
            soonest = min(soonest, last + window + JUST_AFTER)
    return soonest


def _steady_days(
    rules: CompiledRules, kind: EventType, fresh: float, decayed: float, future: bool
) -> int:
    """How many whole days every decaying occurrence of `kind` can age before the points it
    shows (or its "(capped)" mark) can change; 0 when that cannot be shown."""
    weight, cap, _ = rules.signals[kind]
    if weight == 0 or decayed == 0:
        return SAFETY_NET.days  # nothing decays: only leaving the fresh window moves it
    if weight < 0 or future:
        return 0
    points = weight * (fresh + decayed)
    shown = round(cap if points > cap else points)
    # Above the cap, the "(capped)" mark goes first: when the sum rounds to what is shown.
    boundary = shown + 0.5 if round(points) > shown else shown - 0.5
    needed = (boundary + MARGIN * (1 + abs(boundary))) / weight - fresh
    if needed <= 0:
        return SAFETY_NET.days
    if decayed <= needed:
        return 0
    days = math.ceil(rules.half_lives[kind] * math.log2(decayed / needed)) - 1
    return max(0, min(days, SAFETY_NET.days))
