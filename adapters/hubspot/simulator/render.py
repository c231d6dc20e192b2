"""`SimplePublicObject` rendering shared by object, batch and search endpoints.

List/read omit unset properties, search returns `null` for requested-but-unset ones
(fixtures/hubspot/search_deals_200.json), writes answer with every set property
(fixtures/hubspot/update_contact_200.json).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schema import CREATED, DEFAULT_PROPERTIES, MODIFIED, TYPE_IDS, V3_NAMES

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator
    from .store import Record

ALL = ["*"]  # render every set property (write responses)
INLINE_ASSOCIATIONS = 100
"""Links of one type a record carries inline (`associations=` on list / read); past that
HubSpot pages them (`paging.next.after`, changelog "Announcing a change to how v3 CRM APIs
return association data", January 2021) and the rest are read through the associations API."""


def render(
    sim: HubSpotSimulator,
    object_type: str,
    oid: str,
    props: dict[str, str],
    wanted: list[str] | None,
    *,
    nulls: bool = False,
    archived_at: str | None = None,
) -> dict[str, Any]:
    """One `SimplePublicObject`; the create/modify dates and hs_object_id always come along."""
    created, modified = CREATED[object_type], MODIFIED[object_type]
    names = sorted(props) if wanted is ALL else (wanted or DEFAULT_PROPERTIES[object_type])
    out = {n: props.get(n) for n in names if nulls or props.get(n) is not None}
    out.update({n: props[n] for n in (created, modified, "hs_object_id") if n in props})
    result: dict[str, Any] = {
        "id": oid,
        "properties": dict(sorted(out.items())),
        "createdAt": props.get(created),
        "updatedAt": props.get(modified),
        "archived": archived_at is not None,
    }
    if archived_at:
        result["archivedAt"] = archived_at
    path = (
        f"tasks/{sim.hub_id}/view/all/task/{oid}"
        if object_type == "tasks"
        else f"contacts/{sim.hub_id}/record/{TYPE_IDS[object_type]}/{oid}"
    )
    result["url"] = f"https://app.hubspot.com/{path}"
    return result


def render_record(
    sim: HubSpotSimulator,
    object_type: str,
    record: Record,
    wanted: list[str] | None,
    history: list[str] | None = None,
) -> dict[str, Any]:
    out = render(
        sim,
        object_type,
        record["id"],
        record["properties"],
        wanted,
        archived_at=record.get("archivedAt") if record["archived"] else None,
    )
    if history:
        out["propertiesWithHistory"] = sim.store.history(object_type, record, history)
    return out


def with_associations(
    sim: HubSpotSimulator,
    object_type: str,
    record: Record,
    wanted: list[str] | None,
    assoc: list[str],
    history: list[str] | None = None,
    base_url: str = "",
) -> dict[str, Any]:
    """A record with the links of each `assoc` type inline: at most 100 of a type, ascending
    by id, then a `paging.next` cursor (the v4 association page's: the next id)."""
    out = render_record(sim, object_type, record, wanted, history)
    links = {}
    for to_type in assoc:
        found = sorted(sim.store.association_types(object_type, record["id"], to_type))
        if found:
            shown = found[:INLINE_ASSOCIATIONS]
            links[to_type] = {
                "results": [
                    {"id": to_id, "type": V3_NAMES[t]} for to_id, types in shown for t in types
                ]
            }
            if len(found) > INLINE_ASSOCIATIONS:
                after = found[INLINE_ASSOCIATIONS][0]
                link = (
                    f"{base_url}/crm/v4/objects/{object_type}/{record['id']}"
                    f"/associations/{to_type}?after={after}"
                )
                links[to_type]["paging"] = {"next": {"after": after, "link": link}}
    if links:
        out["associations"] = links
    return out
