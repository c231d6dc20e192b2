"""Batch reads of records and their associations, with HubSpot's per-row answers sorted out.

A batch read answers 200 or 207: rows it found, and error rows naming the ids it could not
serve. Those are kept apart: `gone` (OBJECT_NOT_FOUND: deleted or merged, re-reading cannot
help) and `failed` (any other error row, or an id the answer left out: worth reading again).
Result rows without a usable id, rows for ids we did not ask for, and repeated rows are
ignored (the first row of an id wins), so one odd row never stops a batch.

Links come two ways: inline on list pages (`associations=deals,tasks`), where HubSpot pages
each record's links past 100 (`associations.<type>.paging.next`: changelog "Announcing a
change to how v3 CRM APIs return association data", January 2021) and `inline_links` says
which records' links are complete; and v4 batch reads, which page per record too (`after`
beside the id in the next request's input), followed here to the end.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.values import objects, record_id

BATCH = 100
ASSOCIATION_BATCH = 1000
SEARCH_BODY_LIMIT = 3000
"""HubSpot refuses search bodies over 3,000 characters."""
FILTER_VALUES = 100
"""Values in one IN / NOT_IN search filter."""
NOT_FOUND = "OBJECT_NOT_FOUND"
NO_SUCH_PROPERTY = "PROPERTY_DOESNT_EXIST"
PROPERTY_LIST = "Property values were not valid: "
"""How HubSpot's message on refused property values starts, a JSON list after it."""
ERROR_TEXT = 300
"""The longest error line kept (an option list can run to hundreds of values)."""
NO_ASSOCIATIONS = "NO_ASSOCIATIONS_FOUND"
MERGED_IDS = "hs_merged_object_ids"
PRIMARY = "Primary"
"""The label of HubSpot's primary association (contact to company, type 1)."""
KEPT = 25_000
"""Records of a type shared by many contacts (companies) kept for the rest of a run, at most:
about 0.5 KB each (the asked properties only). Past it, those used leave as other types' do."""


@dataclass
class Rows:
    """One object type's batch-read answer, by id."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def has(self, row_id: str) -> bool:
        return row_id in self.found or row_id in self.gone

    def copy(self, row_id: str, to: Rows) -> bool:
        """Give `to` one id's answer and keep it too; False when there is none."""
        if row_id in self.found:
            to.found[row_id] = self.found[row_id]
            return True
        if row_id in self.gone:
            to.gone.add(row_id)
            return True
        return False

    def move(self, row_id: str, to: Rows) -> bool:
        """Hand one id's answer (a row, or gone) over to `to`; False when there is none."""
        if row_id in self.found:
            to.found[row_id] = self.found.pop(row_id)
            return True
        if row_id in self.gone:
            self.gone.discard(row_id)
            to.gone.add(row_id)
            return True
        return False


@dataclass
class Links:
    """v4 association reads: linked ids per record, and records whose links are unknown.
    `primary`: the record linked with the "Primary" label (a contact's primary company)."""

    linked: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    primary: dict[str, str] = field(default_factory=dict)


def next_after(page: dict[str, Any]) -> str | None:
    """The `paging.next.after` cursor of a page, if it has a usable one."""
    paging = page.get("paging")
    following = paging.get("next") if isinstance(paging, dict) else None
    after = following.get("after") if isinstance(following, dict) else None
    return str(after) if after not in (None, "") else None


def digest(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """A short digest of a record's `names` properties as a row carries them (search hit,
    list page or batch read alike): an empty value counts as absent, as HubSpot leaves an
    unset property out of one answer and sends it as null or "" in another."""
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    values = [
        [name, value if isinstance(value, str) else json.dumps(value)]
        for name in names
        if (value := props.get(name)) not in (None, "")
    ]
    return hashlib.blake2b(json.dumps(values).encode(), digest_size=8).hexdigest()


def property_problems(error: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(property, code, message) of each property a HubSpot error names: a 400's
    `errors[].context.propertyName`, else the JSON list its message embeds (a 207 row's only
    account: "Property values were not valid: [{...}]")."""
    problems = [
        (name, str(detail.get("code") or ""), str(detail.get("message") or ""))
        for detail in objects(error.get("errors"))
        for name in context_ids(detail, "propertyName")
    ]
    if problems:
        return list(dict.fromkeys(problems))
    message = str(error.get("message") or "")
    if PROPERTY_LIST not in message:
        return []
    try:
        listed = json.loads(message.split(PROPERTY_LIST, 1)[1])
    except ValueError:
        return []
    problems = [
        (item["name"], str(item.get("error") or ""), str(item.get("message") or ""))
        for item in objects(listed)
        if isinstance(item.get("name"), str)
    ]
    return list(dict.fromkeys(problems))


def missing_properties(error: dict[str, Any]) -> list[str]:
    """The properties a refusal says the portal does not have: no record's value is at fault,
    every write carrying them is refused alike (`MissingProperties`)."""
    return [name for name, code, _ in property_problems(error) if code == NO_SUCH_PROPERTY]


def error_text(error: dict[str, Any], field: str | None = None) -> str:
    """A HubSpot error as one readable line: each property it names with its code and
    HubSpot's message for it (`crmq_grade: PROPERTY_DOESNT_EXIST: Property "crmq_grade" does
    not exist`), else the category and message; cut at a word past `ERROR_TEXT`, and a JSON
    list that cannot be read is left out, never shown cut off. `field`: the property the
    caller reports beside the text (a result's `field`), left out of it so it reads once."""
    problems = property_problems(error)
    if problems:
        text = "; ".join(
            ": ".join(part for part in (name if name != field else "", code, message) if part)
            for name, code, message in problems
        )
    else:
        message = str(error.get("message") or "")
        if PROPERTY_LIST in message:
            message = message.split(PROPERTY_LIST, 1)[0] + PROPERTY_LIST.rstrip(": ")
        text = f"{error.get('category') or 'ERROR'}: {message}"
    return _short(" ".join(text.split()))


def _short(text: str) -> str:
    if len(text) <= ERROR_TEXT:
        return text
    cut = text.rfind(" ", 0, ERROR_TEXT)
    return text[: cut if cut > 0 else ERROR_TEXT] + " …"


def context_ids(error: dict[str, Any], *names: str) -> list[str]:
    """Ids an error row names in its `context` (lists of strings, in HubSpot's shape)."""
    context = error.get("context") if isinstance(error.get("context"), dict) else {}
    ids = []
    for name in names:
        values = context.get(name)
        if isinstance(values, list):
            ids += [str(v) for v in values if isinstance(v, str | int)]
    return ids


def batch_read(
    client: HubSpotClient, object_type: str, ids: Sequence[str], properties: list[str]
) -> Rows:
    """POST batch/read, 100 ids at a time (never a long GET query string: HTTP 414)."""
    rows = Rows()
    if object_type == "contacts":  # tells an id merged away from an answer left out
        properties = list(dict.fromkeys([*properties, MERGED_IDS]))
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        body = {"properties": properties, "inputs": [{"id": i} for i in chunk]}
        _, page = client.call(
            f"POST {object_type}/batch/read", client.batch.read, object_type, body
        )
        _sort_answer(rows, chunk, page)
    return rows


def read_linked(
    client: HubSpotClient,
    object_type: str,
    needed: Sequence[str],
    properties: list[str],
    held: Rows,
    ahead: Iterable[str],
    keep: bool = False,
) -> Rows:
    """Batch reads of the records linked to one read batch (`needed`), each id once. Those
    `held` from an earlier batch's requests are taken from there; the last request's spare
    room (short of 100) is filled with ids from `ahead` (linked to the contacts read next),
    whose answers wait in `held` for their batch. So a walk reads each batch's deals and
    tasks in full requests of 100, not one short request per batch. `keep`: the type's records
    are shared by many contacts (companies), so what is read stays in `held` for the rest of
    the run (up to `KEPT`) and is read once a run, not once a batch."""
    rows = Rows()
    keep = keep and len(held.found) + len(held.gone) < KEPT
    take = held.copy if keep else held.move
    missing = [i for i in dict.fromkeys(needed) if not take(i, rows)]
    if not missing:
        return rows
    extra: list[str] = []
    room = -len(missing) % BATCH
    if room:
        taken = set(missing)
        for row_id in ahead:
            if row_id not in taken and not held.has(row_id):
                taken.add(row_id)
                extra.append(row_id)
                if len(extra) == room:
                    break
    fetched = batch_read(client, object_type, missing + extra, properties)
    for row_id in missing:
        if keep and row_id in fetched.found:
            held.found[row_id] = _slim(fetched.found[row_id], properties)
        elif keep and row_id in fetched.gone:
            held.gone.add(row_id)
        if not fetched.move(row_id, rows):
            rows.failed[row_id] = fetched.failed.get(row_id, "HubSpot's answer left it out")
    for row_id in extra:
        fetched.move(row_id, held)  # a failed one is read again with its own batch
    return rows


def hold_back(
    order: Sequence[str],
    links: Mapping[str, Links],
    held: Mapping[str, Rows],
    ahead: Mapping[str, Iterable[str]],
    movable: Callable[[str], bool],
) -> set[str]:
    """The contacts of a read batch (`order`) to read with a later batch instead, so that no
    request for their linked records leaves short: for each type whose unread records (not
    `held`) end in a short request that the records linked to the contacts read next
    (`ahead`) cannot fill, the contacts owning the last of them, from the end of the batch,
    until that type's requests are full (or it needs none). Those contacts' records then fill
    the last request, or wait with them. Sparse types (tasks: about one in 100 contacts) so
    collect a full request over several batches instead of one short request per batch. A
    contact that is not `movable` (it has waited long enough) stays; when a type cannot be
    made full without it, nobody waits: the short request is made."""
    needs = {
        kind: {r: [i for i in found.linked.get(r, []) if not held[kind].has(i)] for r in order}
        for kind, found in links.items()
    }
    unread = {kind: Counter(i for ids in per.values() for i in ids) for kind, per in needs.items()}
    spare: dict[str, int] = {}
    for kind, ids in ahead.items():
        seen: set[str] = set()
        for i in ids:
            if i not in unread[kind] and i not in seen and not held[kind].has(i):
                seen.add(i)
                if len(seen) == BATCH:
                    break
        spare[kind] = len(seen)

    def short(kind: str) -> bool:
        return -len(unread[kind]) % BATCH > spare[kind]

    open_kinds = {kind for kind in needs if short(kind)}
    waiting: set[str] = set()
    for record in reversed(order):
        if not open_kinds:
            break
        if not any(needs[kind][record] for kind in open_kinds) or not movable(record):
            continue
        waiting.add(record)
        for kind, per in needs.items():
            for i in per[record]:
                unread[kind][i] -= 1
                if not unread[kind][i]:
                    del unread[kind][i]
                    spare[kind] += 1  # waits with its contact: it can fill the last request
        open_kinds = {kind for kind in open_kinds if short(kind)}
    return set() if open_kinds else waiting


def _slim(row: dict[str, Any], properties: list[str]) -> dict[str, Any]:
    """A row kept for the run: its id and the asked properties, nothing else."""
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    return {"id": row.get("id"), "properties": {k: props[k] for k in properties if k in props}}


def _sort_answer(rows: Rows, chunk: list[str], page: dict[str, Any]) -> None:
    wanted = set(chunk)
    for row in objects(page.get("results")):
        row_id = record_id(row)
        if row_id in wanted and row_id not in rows.found:
            rows.found[row_id] = row
        elif row_id not in wanted:
            # HubSpot answers an id merged away with the merged record, under its new id:
            # the id asked for is gone (the merged record is read as itself).
            merged = str((row.get("properties") or {}).get(MERGED_IDS) or "").split(";")
            rows.gone.update(wanted & {part.strip() for part in merged} - set(rows.found))
    for error in objects(page.get("errors")):
        for row_id in context_ids(error, "ids", "id"):
            if row_id not in wanted or row_id in rows.found:
                continue
            if error.get("category") == NOT_FOUND:
                rows.gone.add(row_id)
            else:
                rows.failed[row_id] = error_text(error)
    for row_id in chunk:
        if row_id not in rows.found and row_id not in rows.gone:
            rows.failed.setdefault(row_id, "HubSpot's answer left this record out")


def associated(client: HubSpotClient, from_type: str, ids: Sequence[str], to_type: str) -> Links:
    """v4 batch association read, 1,000 ids per request. Ids without links come back as 207
    NO_ASSOCIATIONS_FOUND rows (no links); any other error row leaves the links unknown. A
    record whose links go on (`paging.next.after`) is asked again from there, with the next
    request's other ids."""
    links = Links()
    inputs: list[dict[str, str]] = [{"id": i} for i in dict.fromkeys(ids)]
    followed: set[tuple[str, str]] = set()  # a cursor served twice is not followed again
    while inputs:
        chunk, inputs = inputs[:ASSOCIATION_BATCH], inputs[ASSOCIATION_BATCH:]
        _, page = client.call(
            f"POST associations/{from_type}/{to_type}/batch/read",
            client.associations.get_page,
            from_type,
            to_type,
            {"inputs": chunk},
        )
        asked = {item["id"] for item in chunk}
        for row in objects(page.get("results")):
            source = record_id(row.get("from"))
            if source is None or source not in asked:
                continue
            targets = [record_id({"id": to.get("toObjectId")}) for to in objects(row.get("to"))]
            for to, target in zip(objects(row.get("to")), targets, strict=True):
                if target and any(
                    t.get("label") == PRIMARY for t in objects(to.get("associationTypes"))
                ):
                    links.primary.setdefault(source, target)
            known = links.linked.setdefault(source, [])
            seen = set(known)
            known += [t for t in dict.fromkeys(targets) if t is not None and t not in seen]
            after = next_after(row)
            if after and (source, after) not in followed:
                followed.add((source, after))
                inputs.append({"id": source, "after": after})
        for error in objects(page.get("errors")):
            if NO_ASSOCIATIONS in str(error.get("subCategory") or ""):
                continue
            for source in context_ids(error, "fromObjectId", "ids", "id"):
                links.failed.setdefault(source, error_text(error))
    return links


def inline_links(row: dict[str, Any], to_type: str) -> list[str] | None:
    """The ids of `to_type` a list-page row carries inline (asked with `associations=`), or
    None when they are incomplete (HubSpot paged them past 100) or unreadable: those records'
    links are read with `associated`. No entry for the type means no links."""
    inline = row.get("associations")
    if inline is None:
        return []
    if not isinstance(inline, dict):
        return None
    collection = inline.get(to_type)
    if collection is None:
        return []
    if not isinstance(collection, dict) or not isinstance(collection.get("results"), list):
        return None
    paging = collection.get("paging")
    if paging is not None and (not isinstance(paging, dict) or paging.get("next")):
        return None  # paged: more links than this page shows
    ids = [record_id(entry) for entry in collection["results"]]
    if any(i is None for i in ids):
        return None
    return list(dict.fromkeys(i for i in ids if i is not None))


def inline_primary(row: dict[str, Any], to_type: str, primary_type: str) -> str | None:
    """The id a list-page row links with the primary type (v3 name, e.g. contact_to_company)."""
    inline = row.get("associations")
    collection = inline.get(to_type) if isinstance(inline, dict) else None
    entries = collection.get("results") if isinstance(collection, dict) else None
    for entry in objects(entries):
        if entry.get("type") == primary_type:
            return record_id(entry)
    return None


@dataclass
class ContactRows:
    """One batch of contacts as read: their rows, links, deals and tasks, and the other linked
    types the mapping reads (activities, companies) in `others`, by type."""

    contacts: Rows
    deal_links: Links
    deals: Rows
    task_links: Links
    tasks: Rows
    others: dict[str, tuple[Links, Rows]] = field(default_factory=dict)

    def problem(self, record: str) -> str | None:
        """Why a record cannot be translated completely this time (None: it can). A record
        whose deals, tasks, activities or company are unknown is not translated without
        them: it is read again."""
        if record in self.contacts.failed:
            return self.contacts.failed[record]
        pairs = [(self.deal_links, self.deals), (self.task_links, self.tasks)]
        for links, rows in pairs + list(self.others.values()):
            if record in links.failed:
                return f"its associations could not be read: {links.failed[record]}"
            missing = [rows.failed[i] for i in links.linked.get(record, []) if i in rows.failed]
            if missing:
                return f"an associated record could not be read: {missing[0]}"
        return None

    def deal_rows(self, record: str) -> list[dict[str, Any]]:
        return _linked_rows(record, self.deal_links, self.deals)

    def task_rows(self, record: str) -> list[dict[str, Any]]:
        return _linked_rows(record, self.task_links, self.tasks)

    def other_rows(self, record: str) -> dict[str, list[dict[str, Any]]]:
        return {kind: _linked_rows(record, *pair) for kind, pair in self.others.items()}


def _linked_rows(record: str, links: Links, rows: Rows) -> list[dict[str, Any]]:
    return [rows.found[i] for i in links.linked.get(record, []) if i in rows.found]
