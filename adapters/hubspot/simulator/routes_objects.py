"""Single-object endpoints and search (`/crm/v3/objects/{objectType}[/{objectId}|/search]`).

Writes validate like HubSpot (unknown / read-only properties, bad option values, missing task
`hs_timestamp`, duplicate contact emails -> 409) and bump the modification date.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import merge
from .errors import ApiError, invalid_json, property_error, validation_error
from .query import parse_query
from .render import ALL, render, render_record, with_associations
from .schema import ASSOCIATION_TYPES, SINGULAR, resolve_type
from .server import Request, Response, Route
from .values import now_ms

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator
    from .store import Record

# HubSpot serves at most 50 records per list page when property history is asked for
# ("usage of this parameter will reduce the maximum number of contacts ... by a single request").
MAX_WITH_HISTORY = 50
CONTACT_SCOPED = {"tasks", "calls", "meetings", "emails", "notes", "communications"}
"""Activity objects read and written under the contacts scopes, as their specs say."""
_TYPE_OF_ASSOCIATION = {tid: pair for pair, types in ASSOCIATION_TYPES.items() for tid, _ in types}


def scopes(write: bool) -> Any:
    def needed(params: dict[str, str]) -> tuple[str, ...]:
        owner = params["objectType"]
        owner = "contacts" if owner in CONTACT_SCOPED else owner
        return (f"crm.objects.{owner}.{'write' if write else 'read'}",)

    return needed


def _int_arg(req: Request, name: str, default: int, high: int) -> int:
    raw = req.arg(name)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError as exc:
        raise validation_error(f"{name} must be an integer, was {raw!r}") from exc
    if not 1 <= value <= high:
        raise validation_error(f"{name} must be between 1 and {high}, was {value}")
    return value


def _assoc_arg(req: Request) -> list[str]:
    return [t for t in (resolve_type(n) for n in req.arg_list("associations") or []) if t]


def lookup(
    sim: HubSpotSimulator,
    object_type: str,
    oid: str,
    id_property: str | None,
    archived: bool = False,
) -> Record | None:
    if id_property in (None, "", "hs_object_id"):
        return sim.store.get(object_type, oid, archived)
    if object_type == "contacts" and id_property == "email":
        return None if archived else sim.store.find_by_email(oid)
    raise validation_error(f"{id_property} is not a unique identifier property for {object_type}")


def _not_found(object_type: str, oid: str) -> ApiError:
    return ApiError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [oid]},
    )


# ----- single-object endpoints -----------------------------------------------------------
def list_objects(sim: HubSpotSimulator, req: Request) -> Response:
    object_type = req.params["objectType"]
    limit = _int_arg(req, "limit", 10, 100)
    history = req.arg_list("propertiesWithHistory")
    if history:
        limit = min(limit, MAX_WITH_HISTORY)
    archived = (req.arg("archived") or "false").lower() == "true"
    after = req.arg("after") or None
    if after is not None and not after.isdigit():
        raise validation_error(f"Invalid paging cursor: {after}")
    wanted, assoc = req.arg_list("properties"), _assoc_arg(req)
    results, next_after = [], None
    for record in sim.store.iter_from(object_type, after):
        if record["archived"] != archived:
            continue
        if len(results) == limit:
            next_after = record["id"]
            break
        results.append(
            with_associations(sim, object_type, record, wanted, assoc, history, req.base_url)
        )
    body: dict[str, Any] = {"results": results}
    if next_after:
        link = f"{req.base_url}/crm/v3/objects/{object_type}?limit={limit}&after={next_after}"
        body["paging"] = {"next": {"after": next_after, "link": link}}
    return Response(200, body)


def get_object(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, oid = req.params["objectType"], req.params["objectId"]
    archived = (req.arg("archived") or "false").lower() == "true"
    record = lookup(sim, object_type, oid, req.arg("idProperty"), archived)
    if record is None and not archived:
        record = merge.resolve(sim.store, object_type, oid)  # an id merged away: its merge
    if record is None:
        raise _not_found(object_type, oid)
    return Response(
        200,
        with_associations(
            sim,
            object_type,
            record,
            req.arg_list("properties"),
            _assoc_arg(req),
            req.arg_list("propertiesWithHistory"),
            req.base_url,
        ),
    )


def create_object(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, body = req.params["objectType"], req.json()
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise invalid_json(
            "Cannot build SimplePublicObjectInputForCreate, some of required "
            "attributes are not set [properties]"
        )
    clean, problems = sim.store.check(object_type, body["properties"], creating=True)
    if problems:
        raise property_error(problems, sim.hub_id)
    links, bad = parse_associations(sim, object_type, body.get("associations") or [])
    if bad:
        raise validation_error(bad)
    check_unique_emails(sim, object_type, [clean])
    record = sim.store.create(object_type, clean, now_ms())
    for to_type, to_id, type_ids in links:
        sim.store.associate(object_type, record["id"], to_type, to_id, type_ids)
    return Response(201, render_record(sim, object_type, record, ALL), wrote=True)


def update_object(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, oid, body = req.params["objectType"], req.params["objectId"], req.json()
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise invalid_json(
            "Cannot build SimplePublicObjectInput, some of required attributes "
            "are not set [properties]"
        )
    record = lookup(sim, object_type, oid, req.arg("idProperty"))
    if record is None:
        raise _not_found(object_type, oid)
    clean, problems = sim.store.check(object_type, body["properties"])
    if problems:
        raise property_error(problems, sim.hub_id)
    record = sim.store.update(object_type, record["id"], clean, now_ms())
    return Response(200, render_record(sim, object_type, record, ALL), wrote=True)


def archive_object(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, oid = req.params["objectType"], req.params["objectId"]
    if sim.store.get(object_type, oid) is None:
        return Response(204)
    sim.store.archive(object_type, oid, now_ms())
    return Response(204, wrote=True)


def search(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, body = req.params["objectType"], req.json()
    if not isinstance(body, dict):
        raise invalid_json("Cannot build PublicObjectSearchRequest from a non-object body")
    query = parse_query(sim.store, object_type, body, len(req.raw))
    total, page = sim.store.index.search(object_type, query, now_ms())
    out: dict[str, Any] = {
        "total": total,
        "results": [
            render(sim, object_type, oid, props, query.properties, nulls=True)
            for oid, props in page
        ],
    }
    if query.offset + query.limit < total:
        out["paging"] = {"next": {"after": str(query.offset + query.limit)}}
    return Response(200, out)


def parse_associations(
    sim: HubSpotSimulator, from_type: str, raw: Any
) -> tuple[list[tuple[str, str, tuple[int, ...]]], str]:
    """Associations given at creation -> [(to_type, to_id, typeIds)], or an error message."""
    links = []
    for assoc in raw if isinstance(raw, list) else [None]:
        to_id = str(((assoc or {}).get("to") or {}).get("id", ""))
        types = (assoc or {}).get("types") or []
        pairs = {
            _TYPE_OF_ASSOCIATION.get(t.get("associationTypeId"))
            for t in types
            if isinstance(t, dict)
        }
        if not to_id or len(pairs) != 1 or None in pairs or next(iter(pairs))[0] != from_type:
            return (
                [],
                f"Invalid association for {from_type}: {json.dumps(assoc)}. "
                "Check to.id and associationTypeId.",
            )
        if any(t.get("associationCategory") != "HUBSPOT_DEFINED" for t in types):
            return [], "Only HUBSPOT_DEFINED association types exist in this portal."
        to_type = next(iter(pairs))[1]
        if sim.store.get(to_type, to_id) is None:
            return (
                [],
                f"One or more associations are invalid: no {SINGULAR[to_type]} with id {to_id}.",
            )
        links.append((to_type, to_id, tuple(int(t["associationTypeId"]) for t in types)))
    return links, ""


def check_unique_emails(
    sim: HubSpotSimulator, object_type: str, rows: list[dict[str, str]]
) -> None:
    """409 CONFLICT like fixtures/hubspot/error_409_conflict_contact_exists.json."""
    if object_type != "contacts":
        return
    seen: set[str] = set()
    for props in rows:
        email = props.get("email", "").lower()
        if not email:
            continue
        existing = sim.store.find_by_email(email)
        if existing is not None or email in seen:
            found = existing["id"] if existing else "(same batch)"
            raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {found}")
        seen.add(email)


OBJECT = "/crm/v3/objects/{objectType}"
ROUTES = [
    Route("GET", OBJECT, list_objects, scopes=scopes(False)),
    Route("POST", OBJECT, create_object, scopes=scopes(True)),
    Route("POST", OBJECT + "/search", search, kind="search", scopes=scopes(False)),
    Route("GET", OBJECT + "/{objectId}", get_object, scopes=scopes(False)),
    Route("PATCH", OBJECT + "/{objectId}", update_object, scopes=scopes(True)),
    Route("DELETE", OBJECT + "/{objectId}", archive_object, scopes=scopes(True)),
]
