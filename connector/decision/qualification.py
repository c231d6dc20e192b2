"""Stage and temperature rules (DOMAIN.md): what the evidence says, before never-backwards.

A lead becomes SQL only through the configured framework (or score, where configured), an open
deal makes an opportunity and a won deal a customer. Engagement is read from what scoring
gathered per signal (`ScoreResult.signals`), so the events are walked once per decision.
Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import datetime

from crm_qualify.connector.decision.scoring import (
    ANSWER_RANK,
    SEEN_COUNT,
    SEEN_LAST_AT,
    CompiledRules,
    ScoreResult,
    Seen,
)
from crm_qualify.connector.model import Contact, EventType, Origin, Stage, Temperature

_NURTURED = frozenset({Stage.LEAD, Stage.MQL, Stage.SQL})


def qualified(contact: Contact, rules: CompiledRules) -> bool:
    """Whether every criterion of the configured framework has at least the answer it needs."""
    answers = contact.qualification
    if not answers:
        return not rules.required  # the common case: nobody answered yet
    for criterion, least in rules.required:
        answer = answers.get(criterion)
        if answer is None or ANSWER_RANK[answer] < least:
            return False
    return True


def engagement_stage(
    contact: Contact, rules: CompiledRules, signals: dict[EventType, Seen]
) -> Stage:
    """Target, subscriber or lead, from origin and engagement signs alone."""
    origin = contact.origin
    if origin is Origin.INBOUND or (origin is Origin.UNKNOWN and rules.inbound_by_default):
        if len(signals) == 1 and EventType.NEWSLETTER_SIGNUP in signals:
            return Stage.SUBSCRIBER
        return Stage.LEAD
    if not rules.outbound_signs.isdisjoint(signals):
        return Stage.LEAD
    opens = signals.get(EventType.EMAIL_OPEN)
    if opens is not None and opens[SEEN_COUNT] >= rules.outbound_min_opens:
        return Stage.LEAD
    if EventType.NEWSLETTER_SIGNUP in signals:
        return Stage.SUBSCRIBER
    return Stage.TARGET


def computed_stage(contact: Contact, rules: CompiledRules, result: ScoreResult) -> Stage:
    """The stage the rules give; deals and a human qualification win over the score."""
    deals = contact.deals
    if deals:
        statuses = {deal.status for deal in deals}
        if "won" in statuses:
            return Stage.CUSTOMER
        if "open" in statuses:
            return Stage.OPPORTUNITY
    if qualified(contact, rules):
        return Stage.SQL
    base = engagement_stage(contact, rules, result.signals)
    if result.disqualified or base is not Stage.LEAD:
        return base
    total = result.score.total
    if rules.sql_by_score and total >= rules.sql:
        return Stage.SQL
    if total >= rules.mql:
        return Stage.MQL
    return base


def customer_type(contact: Contact) -> str | None:
    """From the won deals: 'one_time', 'recurring' (subscriptions) or 'mixed' (both kinds);
    None without a won deal."""
    if not contact.deals:
        return None
    kinds = {deal.recurring for deal in contact.deals if deal.status == "won"}
    if not kinds:
        return None
    if len(kinds) == 2:
        return "mixed"
    return "recurring" if True in kinds else "one_time"


def _recent(signals: dict[EventType, Seen], kinds: tuple[EventType, ...], since: datetime) -> bool:
    """Whether one of `kinds` happened at or after `since` (its latest occurrence did)."""
    for kind in kinds:
        seen = signals.get(kind)
        if seen is not None and seen[SEEN_LAST_AT] >= since:
            return True
    return False


def temperature(rules: CompiledRules, result: ScoreResult, now: datetime) -> Temperature:
    """Interest, not profile: bands on engagement + intent points, raised by recent triggers
    (a demo asked this week is hot whatever the score)."""
    if result.disqualified:
        return Temperature.COLD
    score = result.score
    activity = score.engagement + score.intent
    signals = result.signals
    if activity >= rules.hot or (
        signals and _recent(signals, rules.hot_triggers, now - rules.hot_within)
    ):
        return Temperature.HOT
    if activity >= rules.warm or (
        signals and _recent(signals, rules.warm_triggers, now - rules.warm_within)
    ):
        return Temperature.WARM
    return Temperature.COLD


def needs_renurture(
    stage: Stage, last_activity: datetime | None, rules: CompiledRules, now: datetime
) -> bool:
    """A lead, MQL or SQL gone quiet: flagged for nurturing, never downgraded."""
    if stage not in _NURTURED or last_activity is None:
        return False
    return now - last_activity > rules.renurture_after
