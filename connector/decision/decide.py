"""One contact in, one decision out: score -> stage -> temperature -> tasks. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime

from crm_qualify.connector.decision.planning import STAGE_RANK, episode_start, plan_tasks
from crm_qualify.connector.decision.qualification import (
    computed_stage,
    customer_type,
    needs_renurture,
    temperature,
)
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import compile_rules, score_contact
from crm_qualify.connector.model import Contact, Decision, Temperature


def decide(
    contact: Contact, rules: Rules, now: datetime, *, hot_since: datetime | None = None
) -> Decision:
    """What the rules say about `contact` at `now`.

    The stage never moves backwards: a stage the CRM already holds further along (set by a
    person or by a deal) is kept, and a quiet contact is flagged for re-nurture instead.
    `hot_since` is the start of the contact's hot episode as the previous decision gave it
    (`Decision.hot_since`, None if it was not hot); the decision gives back the start of the
    current one (that start while still hot, `now` when it has just turned hot, None once it
    has cooled), and one episode gets one call (planning.py).
    """
    compiled = compile_rules(rules)
    result = score_contact(contact, compiled, now)
    score = result.score
    disqualified = result.disqualified
    computed = computed_stage(contact, compiled, result)
    stage = computed
    held = contact.stage
    if held is not None and STAGE_RANK[held] > STAGE_RANK[computed]:
        stage = held
    heat = temperature(compiled, result, now)
    followup = rules.followup
    episode = (
        episode_start(contact, heat, hot_since, now, followup) if heat is Temperature.HOT else None
    )
    return Decision(
        contact_id=contact.id,
        object_type=contact.object_type,
        stage=stage,
        computed_stage=computed,
        temperature=heat,
        score=score,
        rules_version=compiled.version,
        renurture=needs_renurture(stage, result.last_activity, compiled, now),
        disqualified=disqualified,
        customer_type=customer_type(contact) if contact.deals else None,
        tasks=plan_tasks(contact, stage, heat, disqualified, score.reasons, followup, now, episode),
        scored_at=now,
        hot_since=episode,
    )
