"""Portal metadata and auth endpoints: owners, pipelines, properties, v4 associations, OAuth."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import seed_meta
from .errors import ApiError, invalid_json, row_error, validation_error
from .routes_objects import CONTACT_SCOPED
from .schema import ASSOCIATION_TYPES, INVERSE_TYPE, SINGULAR, TYPE_IDS, definition, options
from .server import Request, Response, Route
from .values import format_ms, now_ms

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator

MAX_ASSOCIATION_INPUTS = 1000
V4_PAGE = 500
"""Links of one record per v4 answer, as the v4 per-record read documents ("Limit 500 per
call"); the batch read pages each record the same way: `paging.next.after` on its result, given
back beside the id (`{"id", "after"}`) in a later request."""
PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
FIELD_TYPES = {
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
    "html",
    "phonenumber",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _schema_scopes(write: bool) -> Any:
    def needed(params: dict[str, str]) -> tuple[str, ...]:
        owner = "contacts" if params["objectType"] in CONTACT_SCOPED else params["objectType"]
        verb = "write" if write else "read"
        return (f"crm.schemas.{owner}.{verb}",) + (() if write else (f"crm.objects.{owner}.read",))

    return needed


# ----- owners and pipelines --------------------------------------------------------------
def list_owners(sim: HubSpotSimulator, req: Request) -> Response:
    try:
        limit = int(req.arg("limit") or 100)
        offset = int(req.arg("after") or 0)
    except ValueError as exc:
        raise validation_error("limit and after must be integers") from exc
    if not 1 <= limit <= 500:
        raise validation_error(f"limit must be between 1 and 500, was {limit}")
    archived = (req.arg("archived") or "false").lower() == "true"
    email = (req.arg("email") or "").lower()
    owners = [
        o
        for o in sim.store.owners
        if o["archived"] == archived and (not email or o["email"].lower() == email)
    ]
    body: dict[str, Any] = {"results": owners[offset : offset + limit]}
    if offset + limit < len(owners):
        after = str(offset + limit)
        body["paging"] = {
            "next": {"after": after, "link": f"{req.base_url}/crm/v3/owners?after={after}"}
        }
    return Response(200, body)


def get_owner(sim: HubSpotSimulator, req: Request) -> Response:
    owner = next((o for o in sim.store.owners if o["id"] == req.params["ownerId"]), None)
    if owner is None:
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Owner {req.params['ownerId']} not found")
    return Response(200, owner)


def _pipelines(sim: HubSpotSimulator, object_type: str) -> list[dict[str, Any]]:
    if object_type == "deals":
        return sim.store.pipelines
    if object_type == "tickets":
        return [seed_meta.TICKET_PIPELINE]
    if object_type == "contacts":
        # The lifecycle stage pipeline follows the portal's (customisable) lifecyclestage options.
        opts = sim.store.definitions["contacts"]["lifecyclestage"]["options"]
        return [seed_meta.lifecycle_pipeline([(o["value"], o["label"]) for o in opts])]
    return []


def _pipeline(sim: HubSpotSimulator, req: Request) -> dict[str, Any]:
    pid = req.params["pipelineId"]
    found = next((p for p in _pipelines(sim, req.params["objectType"]) if p["id"] == pid), None)
    if found is None:
        raise ApiError(
            404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pid}", context={"id": [pid]}
        )
    return found


def list_pipelines(sim: HubSpotSimulator, req: Request) -> Response:
    return Response(200, {"results": _pipelines(sim, req.params["objectType"])})


def get_pipeline(sim: HubSpotSimulator, req: Request) -> Response:
    return Response(200, _pipeline(sim, req))


def list_stages(sim: HubSpotSimulator, req: Request) -> Response:
    return Response(200, {"results": _pipeline(sim, req)["stages"]})


def get_stage(sim: HubSpotSimulator, req: Request) -> Response:
    sid = req.params["stageId"]
    found = next((s for s in _pipeline(sim, req)["stages"] if s["id"] == sid), None)
    if found is None:
        raise ApiError(
            404, "OBJECT_NOT_FOUND", f"Unable to find stage {sid}", context={"id": [sid]}
        )
    return Response(200, found)


# ----- properties ------------------------------------------------------------------------
def list_properties(sim: HubSpotSimulator, req: Request) -> Response:
    if (req.arg("archived") or "false").lower() == "true":
        return Response(200, {"results": []})
    return Response(
        200, {"results": list(sim.store.definitions[req.params["objectType"]].values())}
    )


def get_property(sim: HubSpotSimulator, req: Request) -> Response:
    name = req.params["propertyName"]
    found = sim.store.definitions[req.params["objectType"]].get(name)
    if found is None:
        raise ApiError(
            404,
            "OBJECT_NOT_FOUND",
            f"Property {name} does not exist",
            context={"propertyName": [name]},
        )
    return Response(200, found)


def create_property(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, body = req.params["objectType"], req.json()
    if not isinstance(body, dict):
        raise invalid_json("Cannot build PropertyCreate from a non-object body")
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise invalid_json(
            f"Cannot build PropertyCreate, some of required attributes are not set {missing}"
        )
    name, kind, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
    if not _NAME.match(name):
        raise validation_error(
            f"Property name {name!r} must be lowercase letters, digits and underscores."
        )
    if kind not in PROPERTY_TYPES or field_type not in FIELD_TYPES:
        raise validation_error(f"Invalid type/fieldType combination: {kind}/{field_type}")
    if name in sim.store.definitions[object_type]:
        raise ApiError(
            409,
            "OBJECT_ALREADY_EXISTS",
            f"A property named '{name}' already exists.",
            context={"name": [name]},
            sub_category="Properties.OBJECT_ALREADY_EXISTS",
        )
    group = str(body["groupName"])
    if group not in sim.store.groups[object_type]:
        raise validation_error(f"Property group {group} does not exist.", groupName=[group])
    opts = body.get("options") or []
    if kind == "bool" and not opts:
        opts = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
    if kind == "enumeration" and not opts:
        raise validation_error("Enumeration properties need at least one option.")
    try:
        normalized = options([(str(o["value"]), str(o["label"])) for o in opts])
    except (KeyError, TypeError) as exc:
        raise validation_error("Each option needs a label and a value.") from exc
    created = definition(
        name,
        str(body["label"]),
        kind,
        field_type,
        group,
        opts=normalized,
        hubspot_defined=False,
        created_at=format_ms(now_ms()),
        description=str(body.get("description") or ""),
    )
    sim.store.definitions[object_type][name] = created
    return Response(201, created, wrote=True)


def list_groups(sim: HubSpotSimulator, req: Request) -> Response:
    return Response(200, {"results": list(sim.store.groups[req.params["objectType"]].values())})


def create_group(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, body = req.params["objectType"], req.json()
    if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
        raise invalid_json(
            "Cannot build PropertyGroupCreate, some of required attributes are not set "
            "[name, label]"
        )
    name = str(body["name"])
    if name in sim.store.groups[object_type]:
        raise ApiError(
            409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
        )
    created = sim.store.add_group(
        object_type, name, str(body["label"]), int(body.get("displayOrder", -1))
    )
    return Response(201, created, wrote=True)


# ----- associations v4 -------------------------------------------------------------------
def read_associations(sim: HubSpotSimulator, req: Request) -> Response:
    """v4 batch read. Inputs without associations come back as 207 NO_ASSOCIATIONS_FOUND rows,
    as HubSpot does; unlabeled types carry no `label` (the spec has no null for it)."""
    from_type, to_type = req.params["fromObjectType"], req.params["toObjectType"]
    body, started = req.json(), format_ms(now_ms())
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or any(
        not isinstance(i, dict) or not i.get("id") for i in inputs
    ):
        raise invalid_json(
            "Cannot build BatchInputPublicFetchAssociationsBatchRequest, some of "
            "required attributes are not set [inputs]"
        )
    if len(inputs) > MAX_ASSOCIATION_INPUTS:
        raise validation_error(
            f"Batch input of {len(inputs)} items exceeds the limit of {MAX_ASSOCIATION_INPUTS}."
        )
    labels = dict(ASSOCIATION_TYPES.get((from_type, to_type), []))
    results, errors = [], []
    asked = dict.fromkeys((str(i["id"]), str(i.get("after") or "")) for i in inputs)
    for key, after in asked:
        found = sorted(sim.store.association_types(from_type, key, to_type))
        if not found:
            errors.append(
                row_error(
                    "OBJECT_NOT_FOUND",
                    f"No {SINGULAR[to_type]} is associated with {SINGULAR[from_type]} {key}.",
                    {"fromObjectId": [key]},
                )
                | {"subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND"}
            )
            continue
        rest = [link for link in found if link[0] >= after]
        to = [
            {
                "toObjectId": to_id,
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": t}
                    | ({"label": labels[t]} if labels.get(t) else {})
                    for t in types
                ],
            }
            for to_id, types in rest[:V4_PAGE]
        ]
        result: dict[str, Any] = {"from": {"id": key}, "to": to}
        if len(rest) > V4_PAGE:
            nxt = rest[V4_PAGE][0]
            link = f"{req.base_url}/crm/v4/objects/{from_type}/{key}/associations/{to_type}"
            result["paging"] = {"next": {"after": nxt, "link": f"{link}?after={nxt}"}}
        results.append(result)
    body_out: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body_out |= {"numErrors": len(errors), "errors": errors}
    body_out |= {"startedAt": started, "completedAt": format_ms(now_ms())}
    return Response(207 if errors else 200, body_out)


def _type_specs(from_type: str, to_type: str, type_ids: Any) -> list[dict[str, Any]]:
    labels = dict(ASSOCIATION_TYPES.get((from_type, to_type), []))
    return [
        {"category": "HUBSPOT_DEFINED", "typeId": t}
        | ({"label": labels[t]} if labels.get(t) else {})
        for t in type_ids
    ]


def association_page(sim: HubSpotSimulator, req: Request) -> Response:
    """v4 `get_page`: one record's associations of a type, ascending by id, cursor = next id."""
    from_type, oid, to_type = (
        req.params["objectType"],
        req.params["objectId"],
        req.params["toObjectType"],
    )
    raw = req.arg("limit")
    try:
        limit = 500 if raw in (None, "") else int(raw)
    except ValueError as exc:
        raise validation_error(f"limit must be an integer, was {raw!r}") from exc
    if not 1 <= limit <= 500:
        raise validation_error(f"limit must be between 1 and 500, was {limit}")
    after = req.arg("after") or ""
    found = sorted(
        (to_id, types)
        for to_id, types in sim.store.association_types(from_type, oid, to_type)
        if to_id >= after
    )
    results = [
        {"toObjectId": to_id, "associationTypes": _type_specs(from_type, to_type, types)}
        for to_id, types in found[:limit]
    ]
    body: dict[str, Any] = {"results": results}
    if len(found) > limit:
        nxt = found[limit][0]
        link = (
            f"{req.base_url}/crm/v4/objects/{from_type}/{oid}/associations/{to_type}"
            f"?limit={limit}&after={nxt}"
        )
        body["paging"] = {"next": {"after": nxt, "link": link}}
    return Response(200, body)


def _default_type(from_type: str, to_type: str) -> int:
    types = ASSOCIATION_TYPES.get((from_type, to_type))
    if not types:
        raise validation_error(
            f"There is no default association type from {from_type} to {to_type}."
        )
    return next(t for t, label in types if label is None)


def _require(sim: HubSpotSimulator, object_type: str, oid: str) -> None:
    if sim.store.get(object_type, oid) is None:
        raise validation_error(
            f"One or more associations are invalid: no {SINGULAR[object_type]} with id {oid}."
        )


def create_default_association(sim: HubSpotSimulator, req: Request) -> Response:
    """v4 `create_default`: the unlabeled default type, answered for both directions."""
    started = format_ms(now_ms())
    from_type, from_id = req.params["fromObjectType"], req.params["fromObjectId"]
    to_type, to_id = req.params["toObjectType"], req.params["toObjectId"]
    type_id = _default_type(from_type, to_type)
    _require(sim, from_type, from_id)
    _require(sim, to_type, to_id)
    sim.store.associate(from_type, from_id, to_type, to_id, [type_id])
    results = [
        {
            "from": {"id": a},
            "to": {"id": b},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t},
        }
        for a, b, t in ((from_id, to_id, type_id), (to_id, from_id, INVERSE_TYPE[type_id]))
    ]
    body = {"status": "COMPLETE", "results": results, "startedAt": started}
    return Response(200, body | {"completedAt": format_ms(now_ms())}, wrote=True)


def create_associations(sim: HubSpotSimulator, req: Request) -> Response:
    """v4 batch `create`: 201 with one `LabelsBetweenObjectPair` per input, or 207 with
    per-row errors for missing records or types that do not link the two object types."""
    from_type, to_type = req.params["fromObjectType"], req.params["toObjectType"]
    body, started = req.json(), format_ms(now_ms())
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or any(
        not isinstance(i, dict)
        or not (i.get("from") or {}).get("id")
        or not (i.get("to") or {}).get("id")
        or not isinstance(i.get("types"), list)
        for i in inputs
    ):
        raise invalid_json(
            "Cannot build BatchInputPublicAssociationMultiPost, some of required attributes "
            "are not set [from, to, types]"
        )
    if len(inputs) > MAX_ASSOCIATION_INPUTS:
        raise validation_error(
            f"Batch input of {len(inputs)} items exceeds the limit of {MAX_ASSOCIATION_INPUTS}."
        )
    labels = dict(ASSOCIATION_TYPES.get((from_type, to_type), []))
    results, errors = [], []
    for item in inputs:
        from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
        types = [t for t in item["types"] if isinstance(t, dict)]
        type_ids = [t.get("associationTypeId") for t in types]
        missing = [
            f"{SINGULAR[kind]} {oid}"
            for kind, oid in ((from_type, from_id), (to_type, to_id))
            if sim.store.get(kind, oid) is None
        ]
        if missing or not type_ids or any(t not in labels for t in type_ids):
            reason = (
                f"No such record: {', '.join(missing)}."
                if missing
                else f"Association types {type_ids} do not link {from_type} to {to_type}."
            )
            errors.append(
                row_error(
                    "VALIDATION_ERROR" if not missing else "OBJECT_NOT_FOUND",
                    reason,
                    {"fromObjectId": [from_id], "toObjectId": [to_id]},
                )
            )
            continue
        sim.store.associate(from_type, from_id, to_type, to_id, type_ids)
        results.append(
            {
                "fromObjectTypeId": TYPE_IDS[from_type],
                "fromObjectId": from_id,
                "toObjectTypeId": TYPE_IDS[to_type],
                "toObjectId": to_id,
                "labels": [labels[t] for t in dict.fromkeys(type_ids) if labels[t]],
            }
        )
    out: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        out |= {"numErrors": len(errors), "errors": errors}
    out |= {"startedAt": started, "completedAt": format_ms(now_ms())}
    return Response(207 if errors else 201, out, wrote=bool(results))


def _association_write_scopes(params: dict[str, str]) -> tuple[str, ...]:
    owner = "contacts" if params["fromObjectType"] in CONTACT_SCOPED else params["fromObjectType"]
    return (f"crm.objects.{owner}.write",)


def _association_scopes(params: dict[str, str]) -> tuple[str, ...]:
    owners = {
        "contacts" if t in CONTACT_SCOPED else t
        for t in (params["fromObjectType"], params["toObjectType"])
    }
    return tuple(sorted(f"crm.objects.{t}.read" for t in owners))


# ----- OAuth -----------------------------------------------------------------------------
def oauth_token(sim: HubSpotSimulator, req: Request) -> Response:
    """The form body; v1 also takes `client_secret` and `refresh_token` in the query."""
    query = {k: v[-1] for k, v in req.query.items() if k in ("client_secret", "refresh_token")}
    form = {k: v[-1] for k, v in parse_qs(req.raw.decode("utf-8", "replace")).items()}
    return Response(200, sim.auth.issue(query | form))


def access_token_info(sim: HubSpotSimulator, req: Request) -> Response:
    return Response(200, sim.auth.access_token_info(req.params["token"]))


def refresh_token_info(sim: HubSpotSimulator, req: Request) -> Response:
    return Response(200, sim.auth.refresh_token_info(req.params["token"]))


def delete_refresh_token(sim: HubSpotSimulator, req: Request) -> Response:
    if not sim.auth.revoke_refresh_token(req.params["token"]):
        raise ApiError(404, "OBJECT_NOT_FOUND", "Token not found")
    return Response(204, wrote=True)


def private_app_info(sim: HubSpotSimulator, req: Request) -> Response:
    body = req.json()
    return Response(
        200, sim.auth.private_app_info(body.get("tokenKey") if isinstance(body, dict) else None)
    )


PROPS = "/crm/v3/properties/{objectType}"
PIPELINES = "/crm/v3/pipelines/{objectType}"
V4 = "/crm/v4/associations/{fromObjectType}/{toObjectType}"


def _pipeline_scopes(_params: dict[str, str]) -> tuple[str, ...]:
    return ("crm.objects.deals.read", "crm.schemas.deals.read", "crm.objects.contacts.read")


ROUTES = [
    Route("POST", "/oauth/v1/token", oauth_token, kind="oauth"),
    Route("GET", "/oauth/v1/access-tokens/{token}", access_token_info, kind="oauth"),
    Route("GET", "/oauth/v1/refresh-tokens/{token}", refresh_token_info, kind="oauth"),
    Route("DELETE", "/oauth/v1/refresh-tokens/{token}", delete_refresh_token, kind="oauth"),
    Route("POST", "/oauth/v2/private-apps/get/access-token-info", private_app_info, kind="oauth"),
    Route("GET", "/crm/v3/owners", list_owners, scopes=lambda _: ("crm.objects.owners.read",)),
    Route(
        "GET", "/crm/v3/owners/{ownerId}", get_owner, scopes=lambda _: ("crm.objects.owners.read",)
    ),
    *[
        Route("GET", PIPELINES + suffix, handler, scopes=_pipeline_scopes)
        for suffix, handler in (
            ("", list_pipelines),
            ("/{pipelineId}", get_pipeline),
            ("/{pipelineId}/stages", list_stages),
            ("/{pipelineId}/stages/{stageId}", get_stage),
        )
    ],
    Route("GET", PROPS, list_properties, scopes=_schema_scopes(False)),
    Route("POST", PROPS, create_property, scopes=_schema_scopes(True)),
    Route("GET", PROPS + "/groups", list_groups, scopes=_schema_scopes(False)),
    Route("POST", PROPS + "/groups", create_group, scopes=_schema_scopes(True)),
    Route("GET", PROPS + "/{propertyName}", get_property, scopes=_schema_scopes(False)),
    Route("POST", V4 + "/batch/read", read_associations, scopes=_association_scopes),
    Route("POST", V4 + "/batch/create", create_associations, scopes=_association_write_scopes),
    Route(
        "GET",
        "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}",
        association_page,
        scopes=lambda p: _association_scopes(
            {"fromObjectType": p["objectType"], "toObjectType": p["toObjectType"]}
        ),
    ),
    Route(
        "PUT",
        "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/"
        "{toObjectType}/{toObjectId}",
        create_default_association,
        scopes=_association_write_scopes,
    ),
]
