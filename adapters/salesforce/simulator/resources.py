"""REST resources beyond queries and writes: data replication (`sobjects/<type>/updated` and
`/deleted`) and `/composite`, a series of subrequests in one call.

From Salesforce's documentation:
- Get Updated / Get Deleted take `start` and `end` (ISO 8601, UTC; seconds are ignored),
  `start` before `end`; updated records go back at most 30 days, deleted ones 15. Updated
  answers `{"ids": [...], "latestDateCovered"}`, deleted `{"deletedRecords": [{"id",
  "deletedDate"}], "earliestDateAvailable", "latestDateCovered"}`; both go by SystemModstamp.
- Composite runs up to 25 subrequests (`method`, `url`, `referenceId`, `body`) in order, in
  one API call; a later one may quote an earlier answer as `@{ref.field}` or
  `@{ref.records[0].Id}`. The answer is `{"compositeResponse": [{"body", "httpHeaders",
  "httpStatusCode", "referenceId"}]}` and always 200. With `allOrNone` the first failure rolls
  every subrequest back and the others answer 400 PROCESSING_HALTED; without it, a subrequest
  quoting a failed one is not run (400 PROCESSING_HALTED) and the rest are.
Not documented, so modelled: the texts of these errors.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .comparisons import parse_datetime
from .errors import ApiError
from .org import iso
from .schema import OBJECTS

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

UPDATED_DAYS, DELETED_DAYS = 30, 15
MAX_SUBREQUESTS = 25
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
Route = Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any]]
"""(method, resource after /services/data/vXX.X/, query, body) -> (status, body)."""


# replication ---------------------------------------------------------------------------------
def _window(query: dict[str, list[str]], days: int) -> tuple[datetime, datetime]:
    try:
        start, end = (
            parse_datetime(query[name][0]).replace(second=0, microsecond=0)
            for name in ("start", "end")
        )
    except (KeyError, IndexError, ValueError):
        raise ApiError(
            400, "MISSING_ARGUMENT", "start and end are required ISO 8601 date-times"
        ) from None
    if start >= end:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "start must be before end")
    if start < datetime.now(UTC) - timedelta(days=days):
        raise ApiError(400, "INVALID_REPLICATION_DATE", f"start can't be more than {days} days ago")
    return start, end


def _stamped(record: dict[str, Any], start: datetime, end: datetime) -> bool:
    return start <= parse_datetime(record["SystemModstamp"]) <= end


def updated(sim: SalesforceSimulator, sobject: str, query: dict[str, list[str]]) -> dict:
    _known(sobject)
    start, end = _window(query, UPDATED_DAYS)
    ids = [r["Id"] for r in sim.org.live(sobject) if _stamped(r, start, end)]
    return {"ids": ids, "latestDateCovered": iso(end)}


def deleted(sim: SalesforceSimulator, sobject: str, query: dict[str, list[str]]) -> dict:
    _known(sobject)
    start, end = _window(query, DELETED_DAYS)
    gone = [
        {"id": r["Id"], "deletedDate": r["SystemModstamp"]}
        for r in sim.org.records[sobject].values()
        if r["IsDeleted"] and _stamped(r, start, end)
    ]
    earliest = datetime.now(UTC) - timedelta(days=DELETED_DAYS)
    return {
        "deletedRecords": gone,
        "earliestDateAvailable": iso(earliest.replace(second=0, microsecond=0)),
        "latestDateCovered": iso(end),
    }


def _known(sobject: str) -> None:
    if sobject not in OBJECTS:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


# composite -----------------------------------------------------------------------------------
def composite(sim: SalesforceSimulator, body: Any, route: Route) -> dict[str, Any]:
    requests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
    if len(requests) > MAX_SUBREQUESTS:
        raise ApiError(
            400, "LIMIT_EXCEEDED", f"a composite request holds at most {MAX_SUBREQUESTS}"
        )
    for sub in requests:
        if not (isinstance(sub, dict) and sub.get("referenceId") and sub.get("url")
                and sub.get("method")):  # fmt: skip
            raise ApiError(400, "JSON_PARSER_ERROR", "each subrequest needs method, url and"
                           " referenceId")  # fmt: skip
    all_or_none = body.get("allOrNone") is True
    saved = copy.deepcopy(sim.org.records) if all_or_none else None
    answers: dict[str, Any] = {}
    failed: set[str] = set()
    results = []
    for sub in requests:
        quoted = {name for name, _ in REFERENCE.findall(json.dumps(sub))}
        if quoted & failed or (all_or_none and failed):
            results.append(_halted(sub["referenceId"]))
            failed.add(sub["referenceId"])
            continue
        status, answer = _run(sub, answers, route)
        answers[sub["referenceId"]] = answer
        if status >= 400:
            failed.add(sub["referenceId"])
        results.append({"body": answer, "httpHeaders": {}, "httpStatusCode": status,
                        "referenceId": sub["referenceId"]})  # fmt: skip
    if saved is not None and failed:
        for sobject, records in saved.items():
            sim.org.records[sobject].clear()
            sim.org.records[sobject].update(records)
        results = [r if r["httpStatusCode"] >= 400 else _halted(r["referenceId"])
                   for r in results]  # fmt: skip
    return {"compositeResponse": results}


def _halted(reference: str) -> dict[str, Any]:
    error = ApiError(
        400,
        "PROCESSING_HALTED",
        "The transaction was rolled back since another operation in the same transaction failed.",
    )
    return {"body": error.body(), "httpHeaders": {}, "httpStatusCode": 400,
            "referenceId": reference}  # fmt: skip


def _run(sub: dict[str, Any], answers: dict[str, Any], route: Route) -> tuple[int, Any]:
    try:
        url = _resolve_text(sub["url"], answers)
        body = _resolve(sub.get("body"), answers)
        parts = urlsplit(url)
        found = re.match(r"^/services/data/v\d+\.\d+/(.*)$", parts.path)
        if not found:
            raise ApiError(400, "INVALID_URL", f"not a REST API URL: {url[:80]}")
        return route(sub["method"], found.group(1).rstrip("/"), parse_qs(parts.query), body)
    except ApiError as error:
        return error.status, error.body()


def _lookup(reference: str, path: str, answers: dict[str, Any]) -> Any:
    if reference not in answers:
        raise ApiError(400, "INVALID_REFERENCE", f"no subrequest before this one is {reference}")
    value = answers[reference]
    for name, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            message = f"no value for @{{{reference}{path}}}"
            raise ApiError(400, "INVALID_REFERENCE", message) from None
    return value


def _resolve_text(text: str, answers: dict[str, Any]) -> str:
    return REFERENCE.sub(lambda m: str(_lookup(m.group(1), m.group(2), answers)), text)


def _resolve(value: Any, answers: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        return (
            _lookup(whole.group(1), whole.group(2), answers)
            if whole
            else _resolve_text(value, answers)
        )
    if isinstance(value, dict):
        return {k: _resolve(v, answers) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, answers) for v in value]
    return value
