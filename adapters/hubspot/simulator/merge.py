"""Merging two contacts (`POST /crm/v3/objects/contacts/merge`), as HubSpot merges them today.

From HubSpot's developer changelog ("Updated merge functionality for contacts and companies")
and knowledge base ("Merge records"):
- the merge makes a *new* contact with a new id; both ids it was made from point to it, so
  reading either (GET by id, batch read) answers the merged contact under its new id, while
  lists and search no longer show them. The simulator keeps them archived, and resolves an old
  id on reads only (a write to it is refused as for any archived contact);
- the primary's values win; the secondary fills the properties the primary has no value for;
  exceptions: the email stays the primary's and the secondary's is kept as an additional
  email, the lifecycle stage furthest down the funnel is kept, form submissions add up, and
  the merged contact keeps the older creation date;
- `hs_merged_object_ids` lists every id merged into it (`;`-separated), earlier merges too;
- every association (deals, tasks, companies, engagements) of both moves to the merged contact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ApiError, invalid_json, validation_error
from .render import ALL, render_record
from .server import Request, Response, Route
from .values import format_ms, now_ms, parse_ms

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator
    from .store import Record, Store

MERGED_IDS = "hs_merged_object_ids"
ADDITIONAL_EMAILS = "hs_additional_emails"
SUMMED = ("num_conversion_events",)


def merge_contacts(store: Store, primary_id: str, secondary_id: str, now: int) -> Record:
    """Merge `secondary_id` into `primary_id`: the new merged contact (KeyError: an id is no
    live contact; ValueError: the same contact twice)."""
    primary, secondary = (_live(store, oid) for oid in (primary_id, secondary_id))
    if primary["id"] == secondary["id"]:
        raise ValueError("a contact cannot be merged with itself")
    props = _merged_properties(store, primary["properties"], secondary["properties"])
    new_id = store.next_id("contacts")
    stamp = format_ms(now)
    props |= {"hs_object_id": new_id, "lastmodifieddate": stamp}
    record = {
        "id": new_id,
        "properties": props,
        "createdAt": props["createdate"],
        "updatedAt": stamp,
        "archived": False,
    }
    store.index.before_change("contacts", new_id)
    store.insert("contacts", record)
    for old in (primary, secondary):
        store.archive("contacts", old["id"], now)
        store.move_links("contacts", old["id"], new_id)
        aliases = store.merged_into["contacts"]
        for alias, target in list(aliases.items()):
            if target == old["id"]:
                aliases[alias] = new_id
        aliases[old["id"]] = new_id
    store.emails_changed()
    store.index.after_change("contacts", new_id, now)
    return record


def resolve(store: Store, object_type: str, object_id: str) -> Record | None:
    """The live record an id merged away now is (None when it was never merged)."""
    target = store.merged_into.get(object_type, {}).get(object_id)
    return store.get(object_type, target) if target else None


def _live(store: Store, object_id: str) -> Record:
    record = store.get("contacts", object_id) or resolve(store, "contacts", object_id)
    if record is None:
        raise KeyError(object_id)
    return record


def _merged_properties(
    store: Store, primary: dict[str, str], secondary: dict[str, str]
) -> dict[str, str]:
    props = {**secondary, **{k: v for k, v in primary.items() if v not in (None, "")}}
    stages = [p.get("lifecyclestage") for p in (primary, secondary) if p.get("lifecyclestage")]
    if stages:
        props["lifecyclestage"] = max(stages, key=store.lifecycle_rank)
    emails = [e for p in (primary, secondary) for e in _split(p.get(ADDITIONAL_EMAILS))]
    if secondary.get("email") and secondary.get("email") != primary.get("email"):
        emails.append(secondary["email"])
    if emails:
        props[ADDITIONAL_EMAILS] = ";".join(dict.fromkeys(emails))
    for name in SUMMED:
        if name in primary or name in secondary:
            props[name] = str(sum(int(float(p.get(name) or 0)) for p in (primary, secondary)))
    created = [p["createdate"] for p in (primary, secondary) if p.get("createdate")]
    props["createdate"] = min(created, key=parse_ms)
    merged = [
        oid for p in (primary, secondary) for oid in (*_split(p.get(MERGED_IDS)), p["hs_object_id"])
    ]
    props[MERGED_IDS] = ";".join(sorted(set(merged), key=int))
    return props


def _split(value: Any) -> list[str]:
    return [part for part in str(value or "").split(";") if part]


def merge(sim: HubSpotSimulator, req: Request) -> Response:
    """`POST /crm/v3/objects/{objectType}/merge` (`PublicMergeInput`): 200 and the merged
    contact; 404 for an id that is no contact."""
    object_type, body = req.params["objectType"], req.json()
    fields = ("objectIdToMerge", "primaryObjectId")
    if not isinstance(body, dict) or any(not body.get(name) for name in fields):
        raise invalid_json(
            "Cannot build PublicMergeInput, some of required attributes are not set"
            f" [{', '.join(fields)}]"
        )
    if object_type != "contacts":
        raise validation_error(f"Merging {object_type} is not supported by this portal.")
    try:
        record = merge_contacts(
            sim.store, str(body["primaryObjectId"]), str(body["objectIdToMerge"]), now_ms()
        )
    except KeyError as missing:
        raise ApiError(
            404,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
            context={"id": [str(missing.args[0])]},
        ) from None
    except ValueError as same:
        raise validation_error(str(same)) from None
    return Response(200, render_record(sim, object_type, record, ALL), wrote=True)


ROUTES = [
    Route(
        "POST",
        "/crm/v3/objects/{objectType}/merge",
        merge,
        scopes=lambda _params: ("crm.objects.contacts.write",),
    )
]
