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
here. The engine asks it of every decision it makes, so it works from the sums scoring
gathered per signal for that decision (`Explanation.signals_of`) rather than walking the
events again. Pure, no I/O.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from crm_qualify.connector.decision.planning import KINDS, follow_up_due
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import (
    FUTURE,
    SEEN_AGED,
    SEEN_FRESH,
    SEEN_LAST_AT,
    SEEN_OCCURRENCES,
    SEEN_SHOWN,
    SEEN_TIMING,
    CompiledRules,
    Explanation,
    Seen,
    compile_rules,
    score_contact,
)
from crm_qualify.connector.model import Contact, Decision, EngagementEvent, EventType

DAY = timedelta(days=1)
SAFETY_NET = timedelta(days=7)
"""The longest a decision goes unlooked-at, whatever this module proves about it."""
SAFETY_DAYS = SAFETY_NET.days
OVERDUE = timedelta(seconds=1)
"""A follow-up escalates once its due time plus the grace has passed, not at that instant."""
JUST_AFTER = timedelta(microseconds=1)
"""A window `at + w` still holds at that instant (`>=`); it is left the moment after."""
MARGIN = 1e-9
"""Relative slack on a rounding boundary: the bound and scoring add the same numbers in
another order, so a sum that close to a boundary is taken to cross it now."""


def next_review(contact: Contact, decision: Decision, rules: Rules, now: datetime) -> datetime:
    """The earliest moment after `now` at which deciding `contact` again can give another
    decision, given nothing about it changes in the CRM. A date too near the end of the
    calendar for this arithmetic (a 9999-12-31 placeholder, mirrored before adapters refused
    such dates) makes the record due at every run rather than failing the run."""
    try:
        return _next_review(contact, decision, rules, now)
    except OverflowError:
        return now


def _next_review(contact: Contact, decision: Decision, rules: Rules, now: datetime) -> datetime:
    soonest = now + SAFETY_NET
    events = contact.events
    if events:
        compiled = compile_rules(rules)
        reasons = decision.score.reasons
        signals = (
            reasons.signals_of(events, now, compiled) if type(reasons) is Explanation else None
        )
        if signals is None:  # decided from other events (a person's, shared) or at another time
            signals = score_contact(contact, compiled, now).signals
        soonest = _events_change(events, signals, compiled, now, soonest)
    if contact.tasks or decision.tasks:
        grace = timedelta(hours=rules.followup.escalate_after_hours)
        dues = [follow_up_due(task, rules.followup) for task in contact.tasks if task.is_open]
        dues += [task.due for task in decision.tasks if task.kind in KINDS]
        for due in dues:
            if due is not None and due + grace > now:
                soonest = min(soonest, due + grace + OVERDUE)
    hot_since = decision.hot_since
    if hot_since is not None and (recall := timedelta(days=rules.followup.hot_recall_days)):
        slots = int((now - hot_since) / recall) + 1 if now > hot_since else 1
        soonest = min(soonest, hot_since + slots * recall)
    return soonest


def _events_change(
    events: list[EngagementEvent],
    signals: dict[EventType, Seen],
    rules: CompiledRules,
    now: datetime,
    soonest: datetime,
) -> datetime:
    """The soonest of `soonest` and: an event from the future happening, a fresh occurrence
    leaving the fresh window, the youngest event a trigger or re-nurture looks at leaving its
    window, and a signal's points reaching a rounding boundary. `signals`: what scoring
    gathered from `events` at `now`.

    With `age = now - at`, the first event to turn a day older does so `DAY - max(age % DAY)`
    from now; until k days after that, no occurrence is more than k days older than now. The
    events are walked again only for what the sums cannot say: the moments of fresh or future
    occurrences, and the times of day when a signal's points can move within `SAFETY_NET`."""
    timing = 0
    for entry in signals.values():
        timing |= entry[SEEN_TIMING]
    if timing:
        soonest = _fresh_or_future(events, rules, now, soonest)
    soonest = _window_exits(rules, signals, now, soonest)
    steps = SAFETY_DAYS
    weights = rules.signals
    for kind, entry in signals.items():
        weight, cap, _ = weights[kind]
        if weight == 0 or entry[SEEN_AGED] == 0:
            continue  # nothing decays: only leaving the fresh window moves it
        if weight < 0 or entry[SEEN_TIMING] & FUTURE:
            return min(soonest, now + _first_turn(events, now))
        days = _steady_days(rules.half_lives[kind], weight, cap, entry)
        if days < steps:
            steps = days
            if not steps:
                break
    if steps >= SAFETY_DAYS:
        return soonest
    return min(soonest, now + _first_turn(events, now) + steps * DAY)


def _fresh_or_future(
    events: list[EngagementEvent], rules: CompiledRules, now: datetime, soonest: datetime
) -> datetime:
    """The soonest of `soonest`, an event from the future happening and a fresh occurrence
    leaving the fresh window."""
    fresh_days = rules.fresh_days
    leaves_fresh = (math.floor(fresh_days) + 1) * DAY
    for event in events:
        at = event.at
        days = (now - at).days
        if days < 0:
            soonest = min(soonest, at)
        elif days <= fresh_days:
            soonest = min(soonest, at + leaves_fresh)
    return soonest


def _first_turn(events: list[EngagementEvent], now: datetime) -> timedelta:
    """How long until the first event (not from the future) turns a day older."""
    phase = 0
    """max(age % DAY) in microseconds."""
    for event in events:
        age = now - event.at
        if age.days >= 0:
            part = age.seconds * 1_000_000 + age.microseconds
            if part > phase:
                phase = part
    return DAY - timedelta(microseconds=phase)


def _window_exits(
    rules: CompiledRules, signals: dict[EventType, Seen], now: datetime, soonest: datetime
) -> datetime:
    """The soonest of `soonest` and when a hot or warm trigger's latest occurrence leaves its
    window, or the last activity the re-nurture window (the first moment the rule reads
    otherwise). A contact quiet for longer than every window is in none of them."""
    last = None
    for entry in signals.values():
        if last is None or entry[SEEN_LAST_AT] > last:
            last = entry[SEEN_LAST_AT]
    if last is None or last + rules.longest_window < now:
        return soonest
    for kinds, window in (
        (rules.hot_triggers, rules.hot_within),
        (rules.warm_triggers, rules.warm_within),
    ):
        latest = None
        for kind in kinds:
            entry = signals.get(kind)
            if entry is not None and (latest is None or entry[SEEN_LAST_AT] > latest):
                latest = entry[SEEN_LAST_AT]
        if latest is not None and latest + window >= now:
            soonest = min(soonest, latest + window + JUST_AFTER)
    if last + rules.renurture_after >= now:
        soonest = min(soonest, last + rules.renurture_after + JUST_AFTER)
    return soonest


def _steady_days(half_life: float, weight: float, cap: float, entry: Seen) -> int:
    """How many whole days the decaying occurrences of a signal with a positive `weight` (as
    scoring gathered them, `entry`) can age before the points it shows (or its "(capped)"
    mark) can change; 0 when that cannot be shown."""
    fresh, decayed = entry[SEEN_FRESH], entry[SEEN_AGED]
    if entry[SEEN_TIMING]:
        points = weight * (fresh + decayed)
        shown = round(cap if points > cap else points)
    else:  # all decayed: the sum is scoring's own, added in the same order, and so its points
        points = weight * entry[SEEN_OCCURRENCES]
        shown = entry[SEEN_SHOWN]
    # Above the cap, the "(capped)" mark goes first: when the sum rounds to what is shown.
    boundary = shown + 0.5 if points > cap and round(points) > shown else shown - 0.5
    needed = (boundary + MARGIN * (1 + abs(boundary))) / weight - fresh
    if needed <= 0:
        return SAFETY_DAYS
    if decayed <= needed:
        return 0
    days = math.ceil(half_life * math.log2(decayed / needed)) - 1
    return SAFETY_DAYS if days > SAFETY_DAYS else (days if days > 0 else 0)
