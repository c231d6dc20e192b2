"""Stage and temperature rules (DOMAIN.md): what the evidence says, before never-backwards.

A lead becomes SQL only through the configured framework (or score, where configured), an open
deal makes an opportunity and a won deal a customer. Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    EventType,
    Origin,
    Stage,
    Temperature,
)

_STATUS_RANK = {CriterionStatus.NOT_MET: 0, CriterionStatus.IN_PROGRESS: 1, CriterionStatus.MET: 2}


def missing_criteria(contact: Contact, rules: Rules) -> list[str]:
    """Criteria of the configured framework whose answer is below the least it needs."""
    required = rules.qualification.required
    if not contact.qualification:
        return [criterion for criterion, _ in required]
    missing = []
    for criterion, least in required:
        answer = contact.qualification.get(criterion)
        if answer is None or _STATUS_RANK[answer] < _STATUS_RANK[least]:
            missing.append(criterion)
    return missing


def engagement_stage(contact: Contact, rules: Rules) -> Stage:
    """Target, subscriber or lead, from origin and engagement signs alone."""
    stages = rules.stages
    origin = contact.origin
    if origin is Origin.UNKNOWN:
        origin = Origin(stages.unknown_origin)
    kinds = {event.type for event in contact.events}
    if origin is Origin.INBOUND:
        if kinds and kinds <= {EventType.NEWSLETTER_SIGNUP}:
            return Stage.SUBSCRIBER
        return Stage.LEAD
    if kinds.intersection(stages.outbound_signs):
        return Stage.LEAD
    opens = sum(e.count for e in contact.events if e.type is EventType.EMAIL_OPEN)
    if opens >= stages.outbound_min_opens:
        return Stage.LEAD
    if EventType.NEWSLETTER_SIGNUP in kinds:
        return Stage.SUBSCRIBER
    return Stage.TARGET


def computed_stage(contact: Contact, rules: Rules, total: int, disqualified: bool) -> Stage:
    """The stage the rules give; deals and a human qualification win over the score."""
    if any(deal.status == "won" for deal in contact.deals):
        return Stage.CUSTOMER
    if any(deal.status == "open" for deal in contact.deals):
        return Stage.OPPORTUNITY
    if not missing_criteria(contact, rules):
        return Stage.SQL
    base = engagement_stage(contact, rules)
    if disqualified or base is not Stage.LEAD:
        return base
    thresholds = rules.thresholds
    if thresholds.sql_by_score and total >= thresholds.sql:
        return Stage.SQL
    if total >= thresholds.mql:
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


def _recent(contact: Contact, kinds: list[EventType], now: datetime, days: float) -> bool:
    since = now - timedelta(days=days)
    wanted = set(kinds)
    return any(e.type in wanted and e.at >= since for e in contact.events)


def temperature(
    contact: Contact, rules: Rules, activity: int, disqualified: bool, now: datetime
) -> Temperature:
    """Interest, not profile: bands on engagement + intent points, raised by recent triggers
    (a demo asked this week is hot whatever the score)."""
    if disqualified:
        return Temperature.COLD
    bands = rules.temperature
    if activity >= bands.hot or _recent(contact, bands.hot_triggers, now, bands.hot_within_days):
        return Temperature.HOT
    if activity >= bands.warm or _recent(contact, bands.warm_triggers, now, bands.warm_within_days):
        return Temperature.WARM
    return Temperature.COLD


def needs_renurture(
    stage: Stage, last_activity: datetime | None, rules: Rules, now: datetime
) -> bool:
    """A lead, MQL or SQL gone quiet: flagged for nurturing, never downgraded."""
    if stage not in (Stage.LEAD, Stage.MQL, Stage.SQL) or last_activity is None:
        return False
    return now - last_activity > timedelta(days=rules.stages.renurture_after_days)
