"""Follow-up tasks per the marketing-sales SLA, each with a key that makes it exist once, ever.

Keys are `crmq:<object>:<id>:<reason>[:<period>]`: a hot lead gets one call task per ISO week
while it stays hot, a new MQL one hand-off, an overdue follow-up one escalation.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from crm_qualify.connector.decision.rules import FollowUpRules
from crm_qualify.connector.model import (
    Contact,
    PlannedTask,
    Reason,
    Stage,
    Temperature,
    format_reasons,
)

KEY_PREFIX = "crmq:"


def task_key(contact: Contact, reason: str, period: str | None = None) -> str:
    key = f"{KEY_PREFIX}{contact.object_type}:{contact.id}:{reason}"
    return f"{key}:{period}" if period else key


def assign_owner(contact: Contact, followup: FollowUpRules) -> str | None:
    """The contact's owner, else the default owner, else a stable pick from the round-robin
    pool (the same contact always lands on the same person, across runs and processes)."""
    if contact.owner_id:
        return contact.owner_id
    if followup.default_owner_id:
        return followup.default_owner_id
    if followup.round_robin:
        slot = zlib.crc32(f"{contact.object_type}:{contact.id}".encode()) % len(
            followup.round_robin
        )
        return followup.round_robin[slot]
    return None


def _who(contact: Contact) -> str:
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    who = name or contact.email or contact.label
    return f"{who} ({contact.company})" if contact.company else who


def _task(contact: Contact, **fields: object) -> PlannedTask:
    return PlannedTask(contact_id=contact.id, object_type=contact.object_type, **fields)


def plan_tasks(
    contact: Contact,
    stage: Stage,
    temperature: Temperature,
    disqualified: bool,
    reasons: list[Reason],
    followup: FollowUpRules,
    now: datetime,
) -> list[PlannedTask]:
    if disqualified:
        return []
    in_funnel = stage.rank < Stage.OPPORTUNITY.rank
    hot_call = followup.hot_call and temperature is Temperature.HOT and in_funnel
    became_mql = contact.stage is None or contact.stage.rank < Stage.MQL.rank
    handoff = followup.mql_handoff and in_funnel and stage.rank >= Stage.MQL.rank and became_mql
    escalate = followup.escalate and contact.tasks
    if not (hot_call or handoff or escalate):
        return []  # the common case: skip owner and body, which only tasks need
    owner = assign_owner(contact, followup)
    body = format_reasons(reasons)
    tasks = []
    if hot_call:
        year, week, _ = now.isocalendar()
        tasks.append(
            _task(
                contact,
                key=task_key(contact, "hot_call", f"{year}-W{week:02d}"),
                kind="hot_call",
                subject=f"Call hot lead {_who(contact)} within {followup.hot_call_hours:g} h",
                body=body,
                owner_id=owner,
                due=now + timedelta(hours=followup.hot_call_hours),
                priority="high",
                task_type="call",
            )
        )
    if handoff:
        tasks.append(
            _task(
                contact,
                key=task_key(contact, "mql_handoff"),
                kind="mql_handoff",
                subject=f"New {stage.value.upper()}: take over {_who(contact)}",
                body=body,
                owner_id=owner,
                due=now + timedelta(hours=followup.mql_sla_hours),
                priority="high" if temperature is Temperature.HOT else "medium",
                task_type="todo",
            )
        )
    if escalate:
        tasks.extend(_escalations(contact, followup, owner, now))
    return tasks


def _escalations(
    contact: Contact, followup: FollowUpRules, owner: str | None, now: datetime
) -> list[PlannedTask]:
    """One escalation per overdue, open follow-up that crm-qualify created."""
    late = now - timedelta(hours=followup.escalate_after_hours)
    escalations = []
    for existing in contact.tasks:
        key = existing.key
        if (
            not key
            or not key.startswith(KEY_PREFIX)
            or key.endswith(":escalation")
            or existing.completed
            or existing.due is None
            or existing.due >= late
        ):
            continue
        escalations.append(
            _task(
                contact,
                key=f"{key}:escalation",
                kind="escalation",
                subject=f"Overdue follow-up on {_who(contact)}",
                body=(
                    f"The follow-up task {existing.id} was due {existing.due:%Y-%m-%d %H:%M} UTC"
                    " and is still open."
                ),
                owner_id=followup.manager_owner_id or owner,
                due=now + timedelta(hours=followup.escalation_hours),
                priority="high",
                task_type="todo",
            )
        )
    return escalations
