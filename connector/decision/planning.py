"""Follow-up tasks per the marketing-sales SLA, each with a key that makes it exist once, ever.

Keys are `crmq:<object>:<id>:<reason>[:<period>]`: a new MQL gets one hand-off
(`...:mql_handoff`), an overdue follow-up that is still open one escalation
(`<its key>:escalation`), a hot lead one call per hot *episode*, and a person held by several
records, when its owner is asked to review them, one review (`...:duplicate_review`, never
escalated: it is housekeeping, not the SLA).

An episode runs from the run that first finds the contact hot to the run that finds it
cooled; the engine keeps its start (`Decision.hot_since`) and gives it back to `decide`. The
call's key carries that start, to the UTC minute (`...:hot_call:20261129T1405`), so one episode
gets one call however many runs, days or calendar weeks it spans, and a contact that cools and
turns hot again gets a new one. While it stays hot, `hot_recall_days` (default 7) calls it
again: slot n >= 1 of the episode is keyed `...:hot_call:20261129T1405:<n>` (slot 0 keeps the
bare start, so changing the setting mid-episode never repeats the first call).

No call is planned while one of our call tasks for the contact is still open (one open call
per person: an overdue one is escalated, not doubled), nor when this slot already has one (the
same key, or any call of ours created since the slot began: tasks keyed by the old ISO-week
scheme count). If the engine lost the episode's start (no `hot_since`) but the contact has an
open call of ours, the episode is taken as ongoing and its start is read back from that task.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from crm_qualify.connector.decision.rules import FollowUpRules
from crm_qualify.connector.model import (
    Contact,
    DuplicateReview,
    ExistingTask,
    PlannedTask,
    Reason,
    Stage,
    Temperature,
)

KEY_PREFIX = "crmq:"
EPISODE_FORMAT = "%Y%m%dT%H%M"
"""How a hot episode's start (UTC, to the minute) is written in a call task's key."""
MQL_HANDOFF = "mql_handoff"
"""The kind of the task that hands a contact reaching MQL (or further) over to its owner."""
KINDS = ("hot_call", MQL_HANDOFF)
"""The follow-ups the SLA measures; an escalation is about one of them."""
REVIEW = "duplicate_review"
"""The reason of a duplicate review task's key."""
ESCALATION = "escalation"
"""The kind of an escalation task, and the end of its key (`<the follow-up's key>:escalation`)."""
OVERDUE_NAMES = {"hot_call": "hot-lead call", MQL_HANDOFF: "MQL hand-off"}
"""What an escalation calls the follow-up it is about: a record with a late call and a late
hand-off gets two escalations, which must not read as one task made twice."""
STAGE_RANK = {stage: rank for rank, stage in enumerate(Stage)}
"""`Stage.rank` as a look-up: the hot path compares ranks for every contact."""
_OPPORTUNITY = STAGE_RANK[Stage.OPPORTUNITY]
_MQL = STAGE_RANK[Stage.MQL]


def task_key(contact: Contact, reason: str, period: str | None = None) -> str:
    key = f"{KEY_PREFIX}{contact.object_type}:{contact.id}:{reason}"
    return f"{key}:{period}" if period else key


def task_kind(key: str | None) -> str | None:
    """`hot_call` or `mql_handoff` for a follow-up crm-qualify created, None for anything else
    (escalations, tasks of other people or tools)."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    parts = key.split(":")
    if ESCALATION in parts[3:]:
        return None
    return next((part for part in parts[3:] if part in KINDS), None)


def escalated(key: str) -> str:
    """The key of the follow-up an escalation's key is about (`<that key>:escalation`); any
    other key as it is."""
    return key.removesuffix(f":{ESCALATION}")


def _calls(contact: Contact) -> list[ExistingTask]:
    return [task for task in contact.tasks if task_kind(task.key) == "hot_call"]


def _episode_of(task: ExistingTask) -> datetime | None:
    """The episode start a call task's key carries (None for the old ISO-week keys)."""
    parts = (task.key or "").split(":")
    try:
        stamp = parts[parts.index("hot_call") + 1]
        return datetime.strptime(stamp, EPISODE_FORMAT).replace(tzinfo=UTC)
    except (ValueError, IndexError):
        return None


def episode_start(
    contact: Contact,
    temperature: Temperature,
    hot_since: datetime | None,
    now: datetime,
    followup: FollowUpRules,
) -> datetime | None:
    """When the contact's current hot episode began: None when it is not hot, `hot_since`
    when the engine knows it, `now` when the CRM last held another temperature for it (it
    cooled, and is hot again), else (the engine lost it: a new state file, an upgrade) the
    start carried by a call task of ours that is open or was created within the re-contact
    interval (7 days when it is 0): the episode is taken as going on rather than risk a
    second call; else `now` (it has just turned hot)."""
    if temperature is not Temperature.HOT:
        return None
    if hot_since is not None:
        return hot_since
    held = contact.owned.get("temperature")
    if held is not None and held != Temperature.HOT:
        return now
    recent = now - timedelta(days=followup.hot_recall_days or 7)
    starts = [
        _episode_of(task) or task.created_at
        for task in _calls(contact)
        if task.is_open or (task.created_at is not None and task.created_at >= recent)
    ]
    known = [start for start in starts if start is not None]
    return max(known) if known else now


def _episode_text(start: datetime) -> str:
    """An episode's start as a call key writes it; a start in UTC written once per run that
    found contacts hot (most starts are a run's `now`, shared by many contacts)."""
    if start.tzinfo is UTC:
        return _utc_minute(start)
    return start.astimezone(UTC).strftime(EPISODE_FORMAT)


@lru_cache(maxsize=4_096)
def _utc_minute(start: datetime) -> str:
    return start.strftime(EPISODE_FORMAT)


def _hot_call_period(
    contact: Contact, followup: FollowUpRules, start: datetime, now: datetime
) -> str | None:
    """The period of the call due in this slot of the episode, None when none is due."""
    slot = 0
    interval = timedelta(days=followup.hot_recall_days)
    if followup.hot_recall_days > 0 and now > start:
        slot = int((now - start) / interval)
    period = _episode_text(start) + (f":{slot}" if slot else "")
    key = task_key(contact, "hot_call", period)
    slot_began = start + slot * interval
    for call in _calls(contact):
        if (
            call.key == key
            or call.is_open
            or (call.created_at is not None and call.created_at >= slot_began)
        ):
            return None
    return period


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


def display_name(contact: Contact) -> str:
    """How a salesperson knows the contact: the name, else the email, else the record."""
    first, last = contact.first_name, contact.last_name
    name = f"{first} {last}" if first and last else first or last
    return name or contact.email or contact.label


def _who(contact: Contact) -> str:
    who = display_name(contact)
    company = contact.company
    return f"{who} ({company})" if company else who


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
    hot_since: datetime | None = None,
) -> list[PlannedTask]:
    """The follow-ups due for `contact` now. `hot_since`: the start of its hot episode as
    `episode_start` gives it (None while hot: it turned hot now)."""
    if disqualified:
        return []
    rank = STAGE_RANK[stage]
    in_funnel = rank < _OPPORTUNITY
    call_period = None
    if temperature is Temperature.HOT and in_funnel and followup.hot_call:
        call_period = _hot_call_period(contact, followup, hot_since or now, now)
    hot_call = call_period is not None
    handoff = (
        in_funnel
        and rank >= _MQL
        and (contact.stage is None or STAGE_RANK[contact.stage] < _MQL)
        and followup.mql_handoff
    )
    escalate = contact.tasks and followup.escalate and in_funnel  # past it, a deal is worked
    review = contact.duplicate_review
    if review is not None and not _review_due(contact):
        review = None
    if not (hot_call or handoff or escalate or review is not None):
        return []  # the common case: skip the owner, which only tasks need
    owner = assign_owner(contact, followup)
    who = _who(contact) if hot_call or handoff else ""
    tasks = []
    if hot_call:
        tasks.append(
            _task(
                contact,
                key=task_key(contact, "hot_call", call_period),
                kind="hot_call",
                subject=f"Call hot lead {who} within {followup.hot_call_hours:g} h",
                body=reasons,  # written when read: most planned tasks exist already
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
                key=task_key(contact, MQL_HANDOFF),
                kind=MQL_HANDOFF,
                subject=f"New {stage.upper()}: take over {who}",
                body=reasons,
                owner_id=owner,
                due=now + timedelta(hours=followup.mql_sla_hours),
                priority="high" if temperature is Temperature.HOT else "medium",
                task_type="todo",
            )
        )
    if review is not None:
        tasks.append(_review_task(contact, review, followup, owner, now))
    if escalate:
        tasks.extend(_escalations(contact, followup, owner, now))
    return tasks


def _review_due(contact: Contact) -> bool:
    """A review is asked for and no record of the person carries one of ours, whatever person
    its key names: a merge in the CRM moves tasks to the surviving record, which may take the
    person of another record merged into it. The task ledger stops a second create of a key."""
    if contact.duplicate_review is None:
        return False
    suffix = f":{REVIEW}"
    return not any(
        task.key and task.key.startswith(KEY_PREFIX) and task.key.endswith(suffix)
        for task in contact.tasks
    )


def _review_task(
    contact: Contact,
    review: DuplicateReview,
    followup: FollowUpRules,
    owner: str | None,
    now: datetime,
) -> PlannedTask:
    """One task for the person's owner to review its records and merge them in the CRM."""
    records = "\n".join(
        f"- {record}" + (" (suggested survivor: keep this one)" if n == 0 else "")
        for n, record in enumerate(review.records)
    )
    matched = ""
    if review.rules:
        matched = f"\nMatched by {', '.join(review.rules)}"
        confidence = review.confidence
        matched += f" (confidence {confidence:g})." if confidence is not None else "."
    return _task(
        contact,
        key=task_key(contact, REVIEW),
        kind=REVIEW,
        subject=f"Review possible duplicates: {len(review.records)} records of {_who(contact)}",
        body=(
            "crm-qualify takes these records for one person and decides once for all of them."
            f" Merge them in the CRM if they are one person:\n{records}{matched}"
        ),
        owner_id=owner,
        due=now + timedelta(hours=followup.mql_sla_hours),
        priority="low",
        task_type="todo",
    )


def _escalations(
    contact: Contact, followup: FollowUpRules, owner: str | None, now: datetime
) -> list[PlannedTask]:
    """One escalation per follow-up crm-qualify created that is still open (not completed,
    no completion time) and past its due time plus the grace, if it is the latest of its kind
    on the record: an older one is superseded (a merge in the CRM brings another record's
    call along; a new hot episode has its own call). A task whose due time the CRM did not
    give is due its kind's SLA hours after its creation."""
    late = now - timedelta(hours=followup.escalate_after_hours)
    escalations = []
    for kind, (existing, due) in _latest_of_each_kind(contact, followup).items():
        if not existing.is_open or due >= late:
            continue
        overdue = OVERDUE_NAMES[kind]
        escalations.append(
            _task(
                contact,
                key=f"{existing.key}:{ESCALATION}",
                kind=ESCALATION,
                subject=f"Overdue {overdue}: {_who(contact)}",
                body=(
                    f"The {overdue} task {existing.id} was due {due:%Y-%m-%d %H:%M} UTC"
                    " and is still open."
                ),
                owner_id=followup.manager_owner_id or owner,
                due=now + timedelta(hours=followup.escalation_hours),
                priority="high",
                task_type="todo",
            )
        )
    return escalations


def _latest_of_each_kind(
    contact: Contact, followup: FollowUpRules
) -> dict[str, tuple[ExistingTask, datetime]]:
    """Our follow-up due last of each kind on the record, with its due time, by kind."""
    latest: dict[str, tuple[ExistingTask, datetime]] = {}
    for existing in contact.tasks:
        kind = task_kind(existing.key)
        due = follow_up_due(existing, followup)
        if kind is None or due is None:
            continue
        held = latest.get(kind)
        if held is None or (due, existing.key or "") > (held[1], held[0].key or ""):
            latest[kind] = (existing, due)
    return latest


def sla_hours(kind: str, followup: FollowUpRules) -> float:
    """The hours a follow-up of `kind` is given (the configured SLA)."""
    return followup.hot_call_hours if kind == "hot_call" else followup.mql_sla_hours


def follow_up_due(task: ExistingTask, followup: FollowUpRules) -> datetime | None:
    """When a follow-up is due: the CRM's due time, else its kind's SLA hours after its
    creation (None for a task that is not ours or carries neither). A CRM that keeps the due
    date only gives the end of that day: while the SLA's time falls on that day, the SLA's
    time it is (a person who moves the date moves it), or read-backs would put escalations
    up to a day later than the run that created the task planned them."""
    due = task.due
    if due is not None and not task.due_is_day:
        return due
    kind = task_kind(task.key)
    if kind is None or task.created_at is None:
        return due
    planned = task.created_at + timedelta(hours=sla_hours(kind, followup))
    if due is None or due - timedelta(days=1) <= planned < due:
        return planned
    return due
