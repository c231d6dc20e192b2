"""The simulator's engagement endpoints against HubSpot's official OpenAPI specs (requests and
answers validated with openapi-core), the legacy form submissions API against its documented
shape, and hubspot-api-client's own calls, over a real socket. One simulator per module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from hubspot import HubSpot
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "hubspot"
HOST = "https://api.hubapi.com"
_LOADED: dict[str, OpenAPI] = {}


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=80, seed=4, rate_limit=10_000, search_rate=1_000) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def http(sim: HubSpotSimulator) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.token}"
    return session


def call(
    sim: HubSpotSimulator,
    http: requests.Session,
    spec: str,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One request, validated (request and answer) against `<spec>.json`; its JSON body."""
    if not SPECS.is_dir():
        pytest.skip("shared HubSpot specs not present")
    if spec not in _LOADED:
        _LOADED[spec] = OpenAPI.from_dict(json.loads((SPECS / f"{spec}.json").read_text()))
    raw = json.dumps(body).encode() if body is not None else None
    answer = http.request(
        method,
        f"{sim.base_url}{path}",
        params=query,
        data=raw,
        headers={"Content-Type": "application/json"} if raw else {},
    )
    request = MockRequest(
        HOST, method.lower(), path, args=query or {}, data=raw, content_type="application/json"
    )
    _LOADED[spec].validate_request(request)
    response = MockResponse(
        answer.content,
        status_code=answer.status_code,
        content_type=answer.headers["Content-Type"].split(";")[0],
    )
    _LOADED[spec].validate_response(request, response)
    return answer.json()


def engaged(sim: HubSpotSimulator, kind: str) -> str:
    """A contact with at least one `kind` linked."""
    return next(
        c
        for c in sorted(sim.store.objects["contacts"])
        if sim.store.associations("contacts", c, kind)
    )


@pytest.mark.parametrize("kind", ["calls", "meetings", "emails", "notes", "communications"])
def test_activity_objects_are_listed_read_searched_and_linked_as_their_specs_say(sim, http, kind):
    spec = f"crm-{kind}-v3"
    page = call(sim, http, spec, "GET", f"/crm/v3/objects/{kind}", {"limit": "5"})
    assert len(page["results"]) == 5 and page["paging"]["next"]["after"]
    contact = engaged(sim, kind)
    ids = sim.store.associations("contacts", contact, kind)
    body = {"inputs": [{"id": i} for i in ids], "properties": ["hs_timestamp"]}
    body["propertiesWithHistory"] = []  # required by the spec's input schema
    read = call(sim, http, spec, "POST", f"/crm/v3/objects/{kind}/batch/read", body=body)
    assert sorted(r["id"] for r in read["results"]) == sorted(ids)
    assert all(r["properties"]["hs_timestamp"] for r in read["results"])
    if kind == "calls":  # the same generated search for every activity type
        search = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}
                    ]
                }
            ],
            "sorts": ["hs_object_id"],
            "properties": ["hs_timestamp"],
            "after": "0",
            "limit": 3,
        }
        found = call(sim, http, spec, "POST", f"/crm/v3/objects/{kind}/search", body=search)
        assert found["total"] == len(sim.store.objects[kind]) and len(found["results"]) == 3
    links = call(
        sim,
        http,
        "crm-associations-v4",
        "POST",
        f"/crm/v4/associations/contacts/{kind}/batch/read",
        body={"inputs": [{"id": contact}]},
    )
    assert sorted(t["toObjectId"] for t in links["results"][0]["to"]) == sorted(ids)
    back = sim.store.associations(kind, ids[0], "contacts")
    assert back == [contact], "linked both ways"


def test_list_pages_carry_activity_and_primary_company_links_inline(sim, http):
    kinds = "calls,meetings,emails,notes,communications,companies"
    page = call(
        sim,
        http,
        "crm-contacts-v3",
        "GET",
        "/crm/v3/objects/contacts",
        {"limit": "100", "associations": kinds},
    )
    linked = [r for r in page["results"] if "companies" in r.get("associations", {})]
    assert linked
    types = {e["type"] for r in linked for e in r["associations"]["companies"]["results"]}
    assert types == {"contact_to_company", "contact_to_company_unlabeled"}
    company = linked[0]["associations"]["companies"]["results"][0]["id"]
    body = {"inputs": [{"id": company}], "properties": ["industry"], "propertiesWithHistory": []}
    read = call(
        sim, http, "crm-companies-v3", "POST", "/crm/v3/objects/companies/batch/read", body=body
    )
    assert read["results"][0]["properties"]["industry"]


def test_forms_and_marketing_events_answer_as_their_specs_say(sim, http):
    forms = call(sim, http, "marketing-forms-v3", "GET", "/marketing/v3/forms", {"limit": "5"})
    assert forms["results"] and forms["results"][0]["formType"] == "hubspot"
    events = call(
        sim, http, "marketing-events-v3", "GET", "/marketing/marketing-events/v3", {"limit": "10"}
    )
    webinar = next(e for e in events["results"] if e["registrants"] + e["attendees"] > 3)
    path = f"/marketing/v3/marketing-events/participations/{webinar['objectId']}/breakdown"
    first = call(sim, http, "marketing-events-v3", "GET", path, {"limit": "2"})
    assert first["total"] == webinar["registrants"] + webinar["attendees"]
    after = first["paging"]["next"]["after"]
    second = call(sim, http, "marketing-events-v3", "GET", path, {"limit": "2", "after": after})
    assert {r["id"] for r in first["results"]}.isdisjoint(r["id"] for r in second["results"])
    attended = call(
        sim, http, "marketing-events-v3", "GET", path, {"state": "ATTENDED", "limit": "100"}
    )
    assert attended["total"] == webinar["attendees"]
    assert {r["properties"]["attendanceState"] for r in attended["results"]} <= {"ATTENDED"}


def test_form_submissions_page_newest_first_as_the_legacy_api_documents(sim, http):
    form = max(sim.store.marketing.forms.values(), key=lambda f: len(f.submissions))
    url = f"{sim.base_url}/form-integrations/v1/submissions/forms/{form.id}"
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        answer = http.get(url, params={"limit": 50, **({"after": after} if after else {})})
        assert answer.status_code == 200
        page = answer.json()
        for row in page["results"]:
            assert set(row) == {"conversionId", "submittedAt", "values", "pageUrl"}
            assert isinstance(row["submittedAt"], int)
            assert {"name", "value"} <= set(row["values"][0])
        seen += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    stamps = [row["submittedAt"] for row in seen]
    assert stamps == sorted(stamps, reverse=True) and len(seen) == len(form.submissions)
    assert http.get(url, params={"limit": 51}).status_code == 400
    narrow = HubSpotSimulator(contacts=5, seed=4, scopes=["crm.objects.contacts.read"])
    with narrow:
        refused = requests.get(
            f"{narrow.base_url}/marketing/v3/forms",
            headers={"Authorization": f"Bearer {narrow.token}"},
        )
    assert refused.status_code == 403 and refused.json()["category"] == "MISSING_SCOPES"


def test_the_official_client_reads_activities_forms_and_participations(sim):
    client = HubSpot(access_token=sim.token, host=sim.base_url)
    calls = client.crm.objects.basic_api.get_page("calls", limit=3, properties=["hs_call_status"])
    assert len(calls.results) == 3 and calls.results[0].properties["hs_call_status"]
    forms = client.marketing.forms.forms_api.get_page(limit=3)
    assert forms.results[0].name
    events = client.marketing.events.basic_api.get_all(limit=10)
    event_id = next(e.object_id for e in events.results if e.registrants + e.attendees)
    api = client.marketing.events.retrieve_participant_state_api
    breakdown = api.get_participations_breakdown_by_marketing_event_id(int(event_id), limit=5)
    assert breakdown.total > 0 and breakdown.results[0].associations.contact.contact_id
