"""Who set the values a plan would replace: asked of the adapter, kept in the mirror.

The write policies keep what people set (`sync/diff.py`), so where a plan hinges on who set a
CRM value (`diff.source_questions`) the adapter is asked (`Adapter.field_sources`; HubSpot
reads property history). A record whose CRM names its last change per record, not per field
(Salesforce's creator and last modifier), carries that answer from its read
(`Contact.last_change`), and is answered from it without a request. The others are asked, in
chunks, and each answer is stamped with the value it describes and kept
on the mirrored contact (`owned_sources`): later runs decide on it without asking again, and
an answer about a value since replaced is never applied to the new one. A read of the record
replaces its facts, answers included. A field asked about and not answered is kept as
unknown, so it is not asked again either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm_qualify.connector.contract import AdapterError, AuthError, BudgetExhausted
from crm_qualify.connector.model import Contact, Decision, FieldSource
from crm_qualify.connector.ops.logs import redact
from crm_qualify.connector.settings import FieldPolicy
from crm_qualify.connector.sync.diff import Candidate, source_questions

if TYPE_CHECKING:
    from crm_qualify.connector.sync.state import StateStore

log = logging.getLogger(__name__)

Key = tuple[str, str]
CHUNK = 500
"""Records per `field_sources` call."""


@dataclass(frozen=True)
class Question:
    """One record whose plan needs to know who set some of its values."""

    key: Key
    contact: Contact
    decision: Decision
    fields: list[str]


def learn_sources(
    adapter: Any,
    store: StateStore,
    instance: str,
    pairs: Sequence[tuple[Contact, Decision]],
    policies: Mapping[str, FieldPolicy],
    last_written: dict[Key, dict[str, Any]],
    writable_stages: Collection[str] | None,
    *,
    complete: bool,
    changes: Mapping[Key, list[Candidate]] | None = None,
) -> dict[Key, dict[str, str]]:
    """Ask who set the values these plans hinge on, put the answers on the contacts and in
    the mirror. `last_written`: our last acknowledged writes by record; unless `complete`,
    those of the records with a question are looked up and added to it first (a value that
    is our own write needs no question). Returns, per record, the fields that could not be
    checked and why (the adapter's call failed): the diff holds them back until a run can.
    `changes`: each record's `diff.candidates`, when the caller has them."""
    ask = getattr(adapter, "field_sources", None)
    if ask is None:
        return {}

    def questions(candidates: Sequence[tuple[Contact, Decision]]) -> list[Question]:
        found = []
        for contact, decision in candidates:
            key = (contact.object_type, contact.id)
            fields = source_questions(
                contact,
                decision,
                policies,
                last_written.get(key, {}),
                writable_stages,
                changes.get(key) if changes is not None else None,
            )
            if fields:
                found.append(Question(key, contact, decision, fields))
        return found

    asked = questions(pairs)
    if asked and not complete:
        last_written.update(store.last_written(instance, [q.key for q in asked]))
        asked = questions([(q.contact, q.decision) for q in asked])
    answered: dict[Key, dict[str, FieldSource]] = {}
    unsure: dict[Key, dict[str, str]] = {}
    for q in (q for q in asked if q.contact.last_change is not None):
        _apply(q, dict.fromkeys(q.fields, q.contact.last_change))  # mirrored as read
    asked = [q for q in asked if q.contact.last_change is None]
    for start in range(0, len(asked), CHUNK):
        chunk = asked[start : start + CHUNK]
        try:
            answers = ask([(q.key, q.fields) for q in chunk])
        except (AuthError, BudgetExhausted):
            raise
        except AdapterError as exc:
            why = redact(str(exc))[:200]
            log.warning("who set %d record(s)' values could not be checked: %s", len(chunk), why)
            unsure.update((q.key, dict.fromkeys(q.fields, why)) for q in chunk)
            continue
        for q in chunk:
            answered[q.key] = _apply(q, answers.get(q.key, {}))
    _remember(store, instance, answered)
    return unsure


def _apply(q: Question, found: Mapping[str, FieldSource]) -> dict[str, FieldSource]:
    """An answer onto its contact, each field's stamped with the value it describes."""
    stamped = {field: _stamped(found.get(field), q.contact.owned.get(field)) for field in q.fields}
    q.contact.owned_sources.update(stamped)
    return stamped


def _stamped(source: FieldSource | None, value: Any) -> FieldSource:
    """The answer, with the value it describes: the adapter's when it says (history names
    it), else the one the contact held when asked; no answer is unknown."""
    source = source or FieldSource(by="unknown")
    return source if source.value is not None else source.model_copy(update={"value": value})


def _remember(
    store: StateStore, instance: str, answered: Mapping[Key, Mapping[str, FieldSource]]
) -> None:
    """The answers join their mirrored contacts (a run mirrors what it reads before it plans;
    a dry run's reads are not mirrored, and their answers are not kept)."""
    rows = [
        (
            json.dumps(
                {f: s.model_dump(mode="json", exclude_defaults=True) for f, s in found.items()}
            ),
            instance,
            object_type,
            contact_id,
        )
        for (object_type, contact_id), found in answered.items()
        if found
    ]
    if not rows:
        return
    with store._tx() as conn:
        conn.executemany(
            "UPDATE mirror SET contact = json_set(contact, '$.owned_sources',"
            " json_patch(COALESCE(json_extract(contact, '$.owned_sources'), '{}'), ?))"
            " WHERE instance = ? AND object_type = ? AND contact_id = ?",
            rows,
        )
