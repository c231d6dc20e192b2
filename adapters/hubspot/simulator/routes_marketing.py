"""Forms (v3 definitions), form submissions (legacy `form-integrations/v1`) and marketing
events with their participations (`marketing/v3/marketing-events`).

Scopes as HubSpot documents them: `forms` for forms and submissions,
`crm.objects.marketing_events.read` for marketing events. Submissions come newest first, at
most 50 a page (default 20); their `after` cursor names the last row served, so rows submitted
while a client pages cannot shift a page. Marketing event lists and breakdowns page by
position (`limit` at most 100).
"""

from __future__ import annotations

import base64
import bisect
from typing import TYPE_CHECKING, Any

from .errors import ApiError, validation_error
from .marketing import Marketing, newest_first, render_event, render_form, render_participation
from .server import Request, Response, Route

if TYPE_CHECKING:
    from .simulator import HubSpotSimulator

FORMS_SCOPES = ("forms",)
EVENTS_SCOPES = ("crm.objects.marketing_events.read",)


def _limit(req: Request, default: int, high: int) -> int:
    raw = req.arg("limit")
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError as exc:
        raise validation_error(f"limit must be an integer, was {raw!r}") from exc
    if not 1 <= value <= high:
        raise validation_error(f"limit must be between 1 and {high}, was {value}")
    return value


def _offset(req: Request) -> int:
    raw = req.arg("after") or "0"
    if not raw.isdigit():
        raise validation_error(f"Invalid after cursor: {raw!r}")
    return int(raw)


def _page(req: Request, rows: list[Any], path: str, default: int, high: int) -> dict[str, Any]:
    start, limit = _offset(req), _limit(req, default, high)
    body: dict[str, Any] = {"results": rows[start : start + limit]}
    if start + limit < len(rows):
        after = str(start + limit)
        body["paging"] = {"next": {"after": after, "link": f"{req.base_url}{path}?after={after}"}}
    return body


def _marketing(sim: HubSpotSimulator) -> Marketing:
    return sim.store.marketing


# ----- forms --------------------------------------------------------------------------------
def list_forms(sim: HubSpotSimulator, req: Request) -> Response:
    archived = (req.arg("archived") or "false").lower() == "true"
    forms = sorted(
        (f for f in _marketing(sim).forms.values() if f.archived == archived),
        key=lambda f: (f.created, f.id),
    )
    return Response(
        200, _page(req, [render_form(f) for f in forms], "/marketing/v3/forms", 20, 500)
    )


def get_form(sim: HubSpotSimulator, req: Request) -> Response:
    form = _marketing(sim).forms.get(req.params["formId"])
    if form is None:
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Form {req.params['formId']} not found")
    return Response(200, render_form(form))


def _token(row: dict[str, Any]) -> str:
    raw = f"{row['submittedAt']}:{row['conversionId']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        stamp, _, conversion = base64.urlsafe_b64decode(padded).decode().partition(":")
        return int(stamp), conversion
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_error(f"Invalid after cursor: {token!r}") from exc


def form_submissions(sim: HubSpotSimulator, req: Request) -> Response:
    """Newest first; `after` continues strictly after the row it names."""
    guid = req.params["formGuid"]
    form = _marketing(sim).forms.get(guid)
    if form is None:
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Form {guid} not found")
    limit = _limit(req, 20, 50)
    rows = form.submissions
    start = 0
    if req.arg("after"):
        stamp, conversion = _position(req.arg("after") or "")
        start = _after(rows, stamp, conversion)
    page = rows[start : start + limit]
    body: dict[str, Any] = {"results": [dict(row) for row in page]}
    if start + limit < len(rows):
        after = _token(page[-1])
        link = f"{req.base_url}/form-integrations/v1/submissions/forms/{guid}?after={after}"
        body["paging"] = {"next": {"after": after, "link": link}}
    return Response(200, body)


def _after(rows: list[dict[str, Any]], stamp: int, conversion: str) -> int:
    """Where the page after the row (`stamp`, `conversion`) starts: right after that row, or
    (gone) at the first older row. Rows are newest first, so a bisect finds the instant: a
    scan made paging a form of N submissions cost N²."""
    first = bisect.bisect_left(rows, -stamp, key=newest_first)
    end = bisect.bisect_right(rows, -stamp, first, key=newest_first)
    found = (i for i in range(first, end) if rows[i]["conversionId"] == conversion)
    return next(found, end - 1) + 1


# ----- marketing events ----------------------------------------------------------------------
def list_events(sim: HubSpotSimulator, req: Request) -> Response:
    events = sorted(_marketing(sim).events.values(), key=lambda e: int(e.object_id))
    return Response(200, _page(req, [render_event(e) for e in events], req.path, 10, 100))


def get_event(sim: HubSpotSimulator, req: Request) -> Response:
    event = _marketing(sim).events.get(req.params["objectId"])
    if event is None:
        raise ApiError(
            404, "OBJECT_NOT_FOUND", f"Marketing event {req.params['objectId']} not found"
        )
    return Response(200, render_event(event))


def _matching(req: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state = (req.arg("state") or "").upper()
    who = (req.arg("contactIdentifier") or "").lower()
    return [
        row
        for row in rows
        if (not state or row["state"] == state)
        and (not who or who in (row["contactId"], row["email"].lower()))
    ]


def event_breakdown(sim: HubSpotSimulator, req: Request) -> Response:
    event = _marketing(sim).events.get(req.params["marketingEventId"])
    if event is None:
        raise ApiError(
            404, "OBJECT_NOT_FOUND", f"Marketing event {req.params['marketingEventId']} not found"
        )
    rows = sorted(event.participations.values(), key=lambda r: (r["createdAt"], r["id"]))
    found = _matching(req, rows)
    body = _page(req, found, req.path, 10, 100)  # the page's rows only are rendered
    body["results"] = [render_participation(event, row) for row in body["results"]]
    return Response(200, {"total": len(found), **body})


def contact_breakdown(sim: HubSpotSimulator, req: Request) -> Response:
    who = req.params["contactIdentifier"].lower()
    found = [
        render_participation(event, row)
        for event in sorted(_marketing(sim).events.values(), key=lambda e: int(e.object_id))
        for row in event.participations.values()
        if who in (row["contactId"], row["email"].lower())
        and (not req.arg("state") or row["state"] == (req.arg("state") or "").upper())
    ]
    body = _page(req, found, req.path, 10, 100)
    return Response(200, {"total": len(found), **body})


def _scopes(names: tuple[str, ...]) -> Any:
    return lambda _params: names


EVENTS = "/marketing/v3/marketing-events"
PARTICIPATIONS = EVENTS + "/participations"
ROUTES = [
    Route("GET", "/marketing/v3/forms", list_forms, scopes=_scopes(FORMS_SCOPES)),
    Route("GET", "/marketing/v3/forms/{formId}", get_form, scopes=_scopes(FORMS_SCOPES)),
    Route(
        "GET",
        "/form-integrations/v1/submissions/forms/{formGuid}",
        form_submissions,
        scopes=_scopes(FORMS_SCOPES),
    ),
    # The spec lists events at /marketing/marketing-events/v3; hubspot-api-client asks
    # /marketing/v3/marketing-events/ (trailing slash, stripped by the server): both serve.
    Route("GET", "/marketing/marketing-events/v3", list_events, scopes=_scopes(EVENTS_SCOPES)),
    Route("GET", EVENTS, list_events, scopes=_scopes(EVENTS_SCOPES)),
    Route(
        "GET",
        PARTICIPATIONS + "/contacts/{contactIdentifier}/breakdown",
        contact_breakdown,
        scopes=_scopes(EVENTS_SCOPES),
    ),
    Route(
        "GET",
        PARTICIPATIONS + "/{marketingEventId}/breakdown",
        event_breakdown,
        scopes=_scopes(EVENTS_SCOPES),
    ),
    Route("GET", EVENTS + "/{objectId}", get_event, scopes=_scopes(EVENTS_SCOPES)),
]
