"""Decide what to write: compare a decision with what the CRM holds, under each field's policy.

Only owned fields are written, only when the value really differs (after normalising the CRM's
string forms, so a rerun never rewrites "70" over 70), and never a stage backwards or over a
custom stage a person chose. `highest_stage` never goes down: a CRM value further along is
kept (a value that is no canonical stage counts as none). `scored_at` rides along only with
another change, so a rerun with nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from crm_qualify.connector.model import Contact, Decision, FieldUpdate, RecordUpdate, Stage
from crm_qualify.connector.settings import FieldPolicy

PASSENGER_FIELDS = frozenset({"scored_at"})
"""Fields written only alongside a real change."""


@dataclass(frozen=True)
class Skip:
    """A change the policies held back, reported so an admin sees why a field did not move."""

    field: str
    reason: str


def normalise(value: Any) -> Any:
    """One comparable form for the ways CRMs echo values back (strings, floats, CRLF)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    text = str(value).replace("\r\n", "\n").strip()
    if text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return float(text)
    except ValueError:
        return text


def same(a: Any, b: Any) -> bool:
    if type(a) is type(b) and a == b:
        return True  # the common case (the mirror echoes what we wrote): no normalising
    return normalise(a) == normalise(b)


def highest(old: Any, new: str) -> str:
    """The further along of the CRM's highest stage and this decision's stage."""
    try:
        held = Stage(str(old)) if old is not None else None
    except ValueError:
        return new
    return held.value if held is not None and held.rank > Stage(new).rank else new


def plan_update(
    contact: Contact,
    decision: Decision,
    policies: Mapping[str, FieldPolicy],
    last_written: Mapping[str, Any],
    writable_stages: Collection[str] | None = None,
) -> tuple[RecordUpdate | None, list[Skip]]:
    """The fields to write for one contact (None when nothing changes) and what was held back.
    `writable_stages`: the canonical stages the CRM has a value for (None: all)."""
    changes: list[FieldUpdate] = []
    skips: list[Skip] = []
    values = decision.field_values()
    for field, new in values.items():
        policy = policies.get(field)
        if policy is None or not policy.owned or field in PASSENGER_FIELDS:
            continue
        old = contact.owned.get(field)
        if field == "highest_stage":
            new = highest(old, new)
        if same(old, new):
            continue
        held = _held_back(field, old, new, policy, last_written, contact, writable_stages)
        if held:
            skips.append(Skip(field, held))
            continue
        changes.append(FieldUpdate(field=field, old=old, new=new))
    if not changes:
        return None, skips
    for field in sorted(PASSENGER_FIELDS):
        policy = policies.get(field)
        if policy is not None and policy.owned:
            changes.append(
                FieldUpdate(field=field, old=contact.owned.get(field), new=values[field])
            )
    update = RecordUpdate(contact_id=contact.id, object_type=contact.object_type, changes=changes)
    return update, skips


def _held_back(
    field: str,
    old: Any,
    new: Any,
    policy: FieldPolicy,
    last_written: Mapping[str, Any],
    contact: Contact,
    writable_stages: Collection[str] | None,
) -> str | None:
    if field == "stage":
        if writable_stages is not None and new not in writable_stages:
            return f"the CRM has no value for stage {new}; the field is left as it is"
        if normalise(old) is not None and contact.stage is None:
            return f"current stage {old!r} is not in the mapping; a person's choice is kept"
        if contact.stage is not None and Stage(new).rank < contact.stage.rank:
            return f"never moves a stage backwards from {contact.stage.value}"
    if policy.policy == "if_empty" and normalise(old) is not None:
        return "policy if_empty and the field has a value"
    if (
        policy.policy == "unless_edited"
        and field in last_written
        and not same(old, last_written[field])
    ):
        return "policy unless_edited and a person changed it since our last write"
    return None
