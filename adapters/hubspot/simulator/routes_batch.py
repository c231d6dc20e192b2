"""Batch endpoints (`/crm/v3/objects/{objectType}/batch/...`): read, update, create, archive.

At most 100 inputs (50 for a read with `propertiesWithHistory`). A read with `?archived=true`
answers only archived records (the spec's "Whether to return only results that have been
archived"), the others as not found. Results come back in no
particular order, as with HubSpot: match them by `id` or `objectWriteTraceId`. Per-row
failures answer 207 with `errors[]`; a bad property in an update fails the whole batch with 400
(fixtures/hubspot/docs_error_400_validation.json).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import merge
from .errors import (
    PropertyProblem,
    invalid_json,
    property_error,
    property_message,
    row_error,
    validation_error,
)
from .render import ALL, render_record
from .routes_objects import OBJECT, check_unique_emails, lookup, parse_associations, scopes
from .schema import SINGULAR
from .server import Request, Response, Route
from .values import format_ms, now_ms

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator

MAX_BATCH = 100
MAX_WITH_HISTORY = 50
"""Inputs of a batch read that asks for `propertiesWithHistory` (HubSpot's own message)."""


def _inputs(req: Request, required: tuple[str, ...], schema: str) -> list[dict[str, Any]]:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise invalid_json(
            f"Cannot build {schema}, some of required attributes are not set [inputs]"
        )
    inputs = body["inputs"]
    if len(inputs) > MAX_BATCH:
        raise validation_error(
            f"Batch input of {len(inputs)} items exceeds the limit of {MAX_BATCH}."
        )
    for item in inputs:
        missing = [k for k in required if not isinstance(item, dict) or item.get(k) is None]
        if missing:
            raise invalid_json(
                f"Cannot build {schema} input, some of required attributes are not "
                f"set [{', '.join(missing)}]"
            )
    return inputs


def _failing(req: Request, keys: list[str]) -> set[str]:
    """Rows the `207` fault makes fail: the fault's ids, or the first input when it has none."""
    if req.fault is None or req.fault.kind != "207" or not keys:
        return set()
    return set(req.fault.ids & set(keys)) if req.fault.ids is not None else {keys[0]}


def _fault_row(
    sim: HubSpotSimulator, key: str, context: dict[str, list[str]], props: dict[str, Any]
) -> dict[str, Any]:
    name = next(iter(props), "hs_object_id")
    problem = PropertyProblem(name, "INVALID_VALUE", f"Simulated validation failure for {key}")
    return row_error("VALIDATION_ERROR", property_message([problem], sim.hub_id), context)


def _batch_body(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"], body["completedAt"] = started, format_ms(now_ms())
    return body


def batch_read(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, started = req.params["objectType"], format_ms(now_ms())
    inputs = _inputs(req, ("id",), "BatchReadInputSimplePublicObjectId")
    body = req.json()
    wanted, id_property = body.get("properties") or None, body.get("idProperty")
    history = [str(n) for n in body.get("propertiesWithHistory") or []]
    if history and len(inputs) > MAX_WITH_HISTORY:
        raise validation_error(
            "The maximum number of inputs supported in a batch request for property histories"
            f" is {MAX_WITH_HISTORY}. Please reduce the number of items and try again"
        )
    archived = (req.arg("archived") or "false").lower() == "true"
    keys = [str(item["id"]) for item in inputs]
    failing = _failing(req, keys)
    results, missing, errors = [], [], []
    answered: set[str] = set()
    for key in dict.fromkeys(keys):
        record = lookup(sim, object_type, key, id_property, archived)
        if record is None and not archived and id_property in (None, "", "hs_object_id"):
            record = merge.resolve(sim.store, object_type, key)  # merged away: its merge
        if key in failing:
            errors.append(_fault_row(sim, key, {"id": [key]}, {}))
        elif record is None:
            missing.append(key)
        elif record["id"] not in answered:
            answered.add(record["id"])
            results.append(render_record(sim, object_type, record, wanted, history))
    if missing:
        errors.append(
            row_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some {SINGULAR[object_type].upper()} objects, they "
                "may be deleted or not exist. Check that ids are valid.",
                {"ids": missing},
            )
        )
    sim.shuffle(results)
    return Response(207 if errors else 200, _batch_body(results, errors, started))


def batch_update(sim: HubSpotSimulator, req: Request) -> Response:
    object_type, started = req.params["objectType"], format_ms(now_ms())
    inputs = _inputs(req, ("id", "properties"), "BatchInputSimplePublicObjectBatchInput")
    keys = [str(item["id"]) for item in inputs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise validation_error(
            f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique"
        )
    checked = [sim.store.check(object_type, item["properties"]) for item in inputs]
    problems = [p for _, found in checked for p in found]
    if problems:
        raise property_error(list(dict.fromkeys(problems)), sim.hub_id)
    failing, now = _failing(req, keys), now_ms()
    results, errors = [], []
    for item, key, (clean, _) in zip(inputs, keys, checked, strict=True):
        trace = item.get("objectWriteTraceId")
        record = lookup(sim, object_type, key, item.get("idProperty"))
        if key in failing:
            context = {"id": [key]} | ({"objectWriteTraceId": [str(trace)]} if trace else {})
            errors.append(_fault_row(sim, key, context, item["properties"]))
        elif record is None:
            errors.append(
                row_error("OBJECT_NOT_FOUND", f"Object not found. objectId: {key}", {"ids": [key]})
            )
        else:
            record = sim.store.update(object_type, record["id"], clean, now)
            result = render_record(sim, object_type, record, ALL)
            if trace:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
    sim.shuffle(results)
    return Response(
        207 if errors else 200, _batch_body(results, errors, started), wrote=bool(results)
    )


def batch_create(sim: HubSpotSimulator, req: Request) -> Response:
    """Per-row 207 validation needs an `objectWriteTraceId` on every input; otherwise any bad
    input fails the whole batch with 400, as HubSpot documents."""
    object_type, started = req.params["objectType"], format_ms(now_ms())
    inputs = _inputs(req, ("properties",), "BatchInputSimplePublicObjectBatchInputForCreate")
    traces = [str(i["objectWriteTraceId"]) if i.get("objectWriteTraceId") else "" for i in inputs]
    per_row = bool(inputs) and all(traces)
    if per_row and len(set(traces)) != len(traces):
        raise validation_error("objectWriteTraceId values must be unique within a batch.")
    rows, errors = [], []
    for position, (item, trace) in enumerate(zip(inputs, traces, strict=True)):
        clean, problems = sim.store.check(object_type, item["properties"], creating=True)
        links, bad = parse_associations(sim, object_type, item.get("associations") or [])
        if (problems or bad) and not per_row:
            raise property_error(problems, sim.hub_id) if problems else validation_error(bad)
        if problems or bad:
            message = property_message(problems, sim.hub_id) if problems else bad
            errors.append(row_error("VALIDATION_ERROR", message, {"objectWriteTraceId": [trace]}))
        else:
            rows.append((trace or f"#{position}", item, clean, links))
    check_unique_emails(sim, object_type, [row[2] for row in rows])
    failing, now, results = _failing(req, [row[0] for row in rows]), now_ms(), []
    for key, item, clean, links in rows:
        context = {} if key.startswith("#") else {"objectWriteTraceId": [key]}
        if key in failing:
            errors.append(_fault_row(sim, key, context, item["properties"]))
            continue
        record = sim.store.create(object_type, clean, now)
        for to_type, to_id, type_ids in links:
            sim.store.associate(object_type, record["id"], to_type, to_id, type_ids)
        result = render_record(sim, object_type, record, ALL)
        if context:
            result["objectWriteTraceId"] = key
        results.append(result)
    sim.shuffle(results)
    return Response(
        207 if errors else 201, _batch_body(results, errors, started), wrote=bool(results)
    )


def batch_archive(sim: HubSpotSimulator, req: Request) -> Response:
    object_type = req.params["objectType"]
    inputs, now, wrote = _inputs(req, ("id",), "BatchInputSimplePublicObjectId"), now_ms(), False
    for item in inputs:
        if sim.store.get(object_type, str(item["id"])) is not None:
            sim.store.archive(object_type, str(item["id"]), now)
            wrote = True
    return Response(204, wrote=wrote)


ROUTES = [
    Route("POST", OBJECT + "/batch/read", batch_read, scopes=scopes(False)),
    Route("POST", OBJECT + "/batch/update", batch_update, scopes=scopes(True)),
    Route("POST", OBJECT + "/batch/create", batch_create, scopes=scopes(True)),
    Route("POST", OBJECT + "/batch/archive", batch_archive, scopes=scopes(True)),
]
