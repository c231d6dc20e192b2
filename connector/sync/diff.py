"""Decide what to write: compare a decision with what the CRM holds, under each field's policy.

Only owned fields are written, only when the value really differs (after normalising the CRM's
string forms, so a rerun never rewrites "70" over 70), and never a stage backwards or over a
custom stage a person chose. `highest_stage` never goes down: a CRM value further along is
kept (a value that is no canonical stage counts as none). `scored_at` rides along only with
another change, so a rerun with nothing new writes nothing.

What people set is kept, on the answer to "who set this value" (`Contact.owned_sources`,
asked of the adapter only where a plan hinges on it, `source_questions`). A value equal to
our last acknowledged write is ours, whatever else is said. Then:
- `unless_edited` keeps a value a person set, before our first write too, and any value that
  changed since our last write (cleared included: an empty field is written only before our
  first write to it);
- a stage moved back (or cleared) by anyone but us (we never move one back) stays where it
  was put, until the decision goes past the stage it was moved back from: the furthest of our
  last written stage, the stage before the move (history) and `highest_stage`. The engine
  plans no hand-off for a stage kept so, and no hot-lead call (so no escalation of one) for
  a temperature kept under `unless_edited`: the value kept is not the hot one decided, and
  a call would contradict it.
Automation's values (workflows, calculations, other integrations) are not a person's: under
`unless_edited` they are overwritten unless they changed since our last write.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from crm_qualify.connector.model import (
    Contact,
    Decision,
    FieldSource,
    FieldUpdate,
    RecordUpdate,
    Stage,
)
from crm_qualify.connector.owned_values import is_cut_of
from crm_qualify.connector.settings import FieldPolicy

PASSENGER_FIELDS = frozenset({"scored_at"})
"""Fields written only alongside a real change."""
WHO = {
    "person": "a person",
    "automation": "automation",
    "connector": "crm-qualify",
    "unknown": "someone other than crm-qualify",
}


@dataclass(frozen=True)
class Skip:
    """A change the policies held back, reported so an admin sees why a field did not move.
    `kept`: the value held is one someone else chose (logged with its reason)."""

    field: str
    reason: str
    kept: bool = False


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
    """Whether two values are one as the CRM holds them: equal once normalised, or one text
    the other cut to its field's length (`owned_values.cut`: the CRM holds the cut text we
    wrote, our records the whole; writing it again would write the same characters)."""
    if type(a) is type(b) and a == b:
        return True  # the common case (the mirror echoes what we wrote): no normalising
    a, b = normalise(a), normalise(b)
    if a == b:
        return True
    return type(a) is str and type(b) is str and (is_cut_of(a, b) or is_cut_of(b, a))


def highest(old: Any, new: str) -> str:
    """The further along of the CRM's highest stage and this decision's stage."""
    held = _stage(old)
    return held.value if held is not None and held.rank > _STAGES[new].rank else new


def _stage(value: Any) -> Stage | None:
    """A canonical stage, or None for anything else (custom values, blanks)."""
    return _STAGES.get(str(value)) if value is not None else None


_STAGES = {stage.value: stage for stage in Stage}


Candidate = tuple[str, Any, Any, FieldPolicy]
"""(field, CRM value, decided value, policy) of an owned field whose value differs."""


def candidates(
    contact: Contact, decision: Decision, policies: Mapping[str, FieldPolicy]
) -> list[Candidate]:
    """The owned fields whose decided value differs from the CRM's, before any policy: the
    engine finds them once per record for the questions, the look-up of our last writes and
    the plan (`plan_update`, `source_questions`)."""
    values = decision.field_values()
    found = []
    owned = contact.owned
    for field, new in values.items():
        if field in PASSENGER_FIELDS:
            continue
        policy = policies.get(field)
        if policy is None or not policy.owned:
            continue
        old = owned.get(field)
        if field == "highest_stage":
            new = highest(old, new)
        if (type(old) is not type(new) or old != new) and not same(old, new):
            found.append((field, old, new, policy))
    return found


def hinges_on_our_writes(found: Collection[Candidate]) -> bool:
    """Whether holding any of these changes back depends on our last acknowledged writes:
    a field under `unless_edited`, or the stage (moved back since our write). Only for these
    records does the engine look our last writes up."""
    return any(field == "stage" or policy.policy == "unless_edited" for field, *_, policy in found)


def plan_update(
    contact: Contact,
    decision: Decision,
    policies: Mapping[str, FieldPolicy],
    last_written: Mapping[str, Any],
    writable_stages: Collection[str] | None = None,
    unsure: Mapping[str, str] | None = None,
    found: list[Candidate] | None = None,
) -> tuple[RecordUpdate | None, list[Skip]]:
    """The fields to write for one contact (None when nothing changes) and what was held back.
    `writable_stages`: the canonical stages the CRM has a value for (None: all). `unsure`:
    fields whose setter was asked and could not be learned this run, with why: held back
    until it can be. `found`: the record's `candidates`, when the caller has them."""
    changes: list[FieldUpdate] = []
    skips: list[Skip] = []
    if found is None:
        found = candidates(contact, decision, policies)
    for field, old, new, policy in found:
        held = _held_back(field, old, new, policy, last_written, contact, writable_stages)
        if held is None and unsure and field in unsure:
            held = Skip(field, f"who set it could not be checked ({unsure[field]}); next run")
        if held:
            skips.append(held)
            continue
        changes.append(FieldUpdate(field=field, old=old, new=new))
    if not changes:
        return None, skips
    values = decision.field_values()
    for field in sorted(PASSENGER_FIELDS):
        policy = policies.get(field)
        if policy is not None and policy.owned:
            changes.append(
                FieldUpdate(field=field, old=contact.owned.get(field), new=values[field])
            )
    update = RecordUpdate(contact_id=contact.id, object_type=contact.object_type, changes=changes)
    return update, skips


def source_questions(
    contact: Contact,
    decision: Decision,
    policies: Mapping[str, FieldPolicy],
    last_written: Mapping[str, Any],
    writable_stages: Collection[str] | None = None,
    found: list[Candidate] | None = None,
) -> list[str]:
    """The fields a write would replace whose setter the plan needs and the contact does not
    carry: a value under `unless_edited` we have no acknowledged write for (its history also
    shows a stage moved back before our first write), and a stage kept where someone moved it
    back (the log names who). Everything else is decided without asking the CRM, so a first
    sync under the default policies reads no history at all."""
    wanted = []
    if found is None:
        found = candidates(contact, decision, policies)
    for field, old, new, policy in found:
        if normalise(old) is None or _source(field, old, contact):
            continue
        held = _held_back(field, old, new, policy, last_written, contact, writable_stages)
        if held is not None:
            if held.kept and field == "stage":
                wanted.append(field)
            continue
        if field not in last_written and policy.policy == "unless_edited":
            wanted.append(field)
    return wanted


def _setter(field: str, old: Any, contact: Contact, last_written: Mapping[str, Any]) -> str:
    """Who set the CRM's value, as far as is known: ours when it is our last acknowledged
    write (whatever an older answer said), else the adapter's answer, else unknown."""
    if field in last_written and same(old, last_written[field]):
        return "connector"
    source = _source(field, old, contact)
    return source.by if source is not None else "unknown"


def _source(field: str, old: Any, contact: Contact) -> FieldSource | None:
    """The answer about the CRM's current value; one about a value since replaced is none."""
    source = contact.owned_sources.get(field)
    return source if source is not None and same(source.value, old) else None


def _when(source: FieldSource | None) -> str:
    return f" on {source.at.date().isoformat()}" if source and source.at else ""


def _held_back(
    field: str,
    old: Any,
    new: Any,
    policy: FieldPolicy,
    last_written: Mapping[str, Any],
    contact: Contact,
    writable_stages: Collection[str] | None,
) -> Skip | None:
    who = _setter(field, old, contact, last_written)
    source = _source(field, old, contact) if who != "connector" else None
    if field == "stage":
        held = _stage_held(old, new, who, source, last_written, contact, writable_stages)
        if held:
            return held
    if policy.policy == "if_empty" and normalise(old) is not None:
        return Skip(field, "policy if_empty and the field has a value")
    if policy.policy != "unless_edited" or who == "connector":
        return None
    if normalise(old) is None:  # empty: kept only when it was cleared after our write
        if field not in last_written:
            return None
        return Skip(
            field, f"policy unless_edited: {WHO[who]} cleared it since our last write", kept=True
        )
    if who == "person":
        return Skip(field, f"policy unless_edited: a person set it{_when(source)}", kept=True)
    if field in last_written:
        return Skip(
            field, f"policy unless_edited: {WHO[who]} changed it since our last write", kept=True
        )
    return None


def _stage_held(
    old: Any,
    new: Any,
    who: str,
    source: FieldSource | None,
    last_written: Mapping[str, Any],
    contact: Contact,
    writable_stages: Collection[str] | None,
) -> Skip | None:
    if writable_stages is not None and new not in writable_stages:
        return Skip("stage", f"the CRM has no value for stage {new}; the field is left as it is")
    if normalise(old) is not None and contact.stage is None:
        why = f"current stage {old!r} is not in the mapping; a person's choice is kept"
        return Skip("stage", why)
    held = contact.stage
    if held is not None and Stage(new).rank < held.rank:
        return Skip("stage", f"never moves a stage backwards from {held.value}")
    if who == "connector":
        return None
    earlier = [_stage(contact.owned.get("highest_stage")), _stage(last_written.get("stage"))]
    if source is not None:
        earlier.append(_stage(source.previous))
    rejected = max((s for s in earlier if s is not None), key=lambda s: s.rank, default=None)
    rank = held.rank if held is not None else -1
    if rejected is None or rejected.rank <= rank or Stage(new).rank > rejected.rank:
        return None
    # An empty stage that held one is a person's first step back (HubSpot moves a stage back
    # only once it is cleared): it stays empty, as a stage moved back stays.
    moved = (
        f"moved the stage back from {rejected.value} to {held.value}"
        if held
        else (f"cleared the stage (it was {rejected.value})")
    )
    return Skip(
        "stage",
        f"{WHO[who]} {moved}{_when(source)}; it stays where they put it until the contact"
        f" goes past {rejected.value}",
        kept=True,
    )
