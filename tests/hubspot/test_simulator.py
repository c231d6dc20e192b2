"""The HubSpot simulator over a real socket: official client, raw HTTP, and the OpenAPI specs.

Expected values come from the simulator's own store (an oracle over the seeded data) or from
the recorded fixtures and specs in /work/shared, never from hard-coded results.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator, main
from crm_qualify.adapters.hubspot.simulator.values import now_ms, parse_ms
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
SPECS, FIXTURES = SHARED / "specs" / "hubspot", SHARED / "fixtures" / "hubspot"
ANCHOR = date(2025, 6, 1)  # a fixed past "today": seeded data is reproducible, writes are later
MakeSim = Callable[..., HubSpotSimulator]


@pytest.fixture
def make_sim() -> Iterator[Callable[..., HubSpotSimulator]]:
    started: list[HubSpotSimulator] = []

    def make(**kw: Any) -> HubSpotSimulator:
        kw = {"contacts": 300, "anchor": ANCHOR, "rate_limit": 10_000, "search_rate": 1_000} | kw
        sim = HubSpotSimulator(**kw)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


class Api:
    """Raw HTTP with the simulator's token (or another one)."""

    def __init__(self, sim: HubSpotSimulator, token: str | None = None) -> None:
        self.base, self.http = sim.base_url, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token or sim.token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base + path, params=params, timeout=5)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.http.post(self.base + path, json=body, timeout=5)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.http.patch(self.base + path, json=body, timeout=5)

    def search(self, object_type: str = "contacts", **body: Any) -> requests.Response:
        return self.post(f"/crm/v3/objects/{object_type}/search", body)


def contacts(sim: HubSpotSimulator) -> dict[str, dict[str, str]]:
    return {i: r["properties"] for i, r in sim.store.objects["contacts"].items()}


def search_all(api: Api, **body: Any) -> list[dict[str, Any]]:
    out, after = [], None
    while True:
        page = api.search(**body, **({"after": after} if after else {}))
        assert page.status_code == 200, page.text
        out += page.json()["results"]
        after = page.json().get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _limit_in(group: str) -> str:
    """The limit a 429's `groupName` names: `publicapi:<caller>-api-calls-<limit>:<ids>`."""
    return group.split(":")[1].partition("-api-calls-")[2]


# ----- reading ---------------------------------------------------------------------------
def test_official_client_pages_to_the_end(make_sim: MakeSim) -> None:
    sim = make_sim(contacts=250)
    client = HubSpot(access_token=sim.token, host=sim.base_url)
    seen, after = [], None
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=100, after=after, properties=["email"])
        seen += [c.id for c in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == sorted(sim.store.objects["contacts"])
    assert all(c.properties["email"] for c in page.results)
    assert sim.stats.by_endpoint["GET /crm/v3/objects/contacts"] == 3


def test_list_shape_properties_and_associations(make_sim: MakeSim) -> None:
    sim = make_sim()
    with_deal = next(
        i
        for i in sorted(sim.store.objects["contacts"])
        if sim.store.associations("contacts", i, "deals")
    )
    page = (
        Api(sim)
        .get(
            "/crm/v3/objects/contacts",
            limit=1,
            after=with_deal,
            properties="email,hs_email_hard_bounce_reason_enum,crmq_score",
            associations="deals",
        )
        .json()
    )
    record = page["results"][0]
    assert record["id"] == with_deal and set(record) >= {
        "id",
        "properties",
        "createdAt",
        "updatedAt",
        "archived",
    }
    props = contacts(sim)[with_deal]
    assert record["properties"] == {k: props[k] for k in record["properties"]}
    assert "crmq_score" not in record["properties"]  # unset properties are omitted when listing
    deals = sim.store.associations("contacts", with_deal, "deals")
    assert record["associations"]["deals"]["results"] == [
        {"id": d, "type": "contact_to_deal"} for d in deals
    ]
    assert page["paging"]["next"]["after"] > with_deal


def test_search_filters_sorts_and_totals(make_sim: MakeSim) -> None:
    sim = make_sim(contacts=600)
    api, data = Api(sim), contacts(sim)
    results = search_all(
        api,
        limit=50,
        properties=["hs_analytics_num_page_views"],
        sorts=[{"propertyName": "hs_analytics_num_page_views", "direction": "DESCENDING"}],
        filterGroups=[
            {
                "filters": [
                    {
                        "propertyName": "lifecyclestage",
                        "operator": "IN",
                        "values": ["lead", "marketingqualifiedlead"],
                    },
                    {
                        "propertyName": "hs_analytics_num_page_views",
                        "operator": "GT",
                        "value": "10",
                    },
                ]
            }
        ],
    )
    expected = {
        i
        for i, p in data.items()
        if p.get("lifecyclestage") in ("lead", "marketingqualifiedlead")
        and float(p.get("hs_analytics_num_page_views", 0)) > 10
    }
    views = [float(r["properties"]["hs_analytics_num_page_views"]) for r in results]
    assert {r["id"] for r in results} == expected and views == sorted(views, reverse=True)

    either = search_all(
        api,
        limit=200,
        filterGroups=[
            {"filters": [{"propertyName": "country", "operator": "EQ", "value": "germany"}]},
            {"filters": [{"propertyName": "hs_email_optout", "operator": "EQ", "value": "true"}]},
        ],
    )
    assert {r["id"] for r in either} == {
        i
        for i, p in data.items()
        if p.get("country") == "Germany" or p.get("hs_email_optout") == "true"
    }
    assert [r["id"] for r in either] == sorted(r["id"] for r in either)  # default sort: id

    gmail = search_all(
        api,
        limit=200,
        filterGroups=[
            {
                "filters": [
                    {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@gmail.com"}
                ]
            }
        ],
    )
    assert {r["id"] for r in gmail} == {
        i for i, p in data.items() if p["email"].endswith("@gmail.com")
    }

    low, high = sorted(p["createdate"] for p in data.values())[100::300][:2]
    iso = api.search(
        limit=1,
        filterGroups=[
            {
                "filters": [
                    {
                        "propertyName": "createdate",
                        "operator": "BETWEEN",
                        "value": low,
                        "highValue": high,
                    }
                ]
            }
        ],
    ).json()
    millis = api.search(
        limit=1,
        filterGroups=[
            {
                "filters": [
                    {
                        "propertyName": "createdate",
                        "operator": "BETWEEN",
                        "value": str(parse_ms(low)),
                        "highValue": str(parse_ms(high)),
                    }
                ]
            }
        ],
    ).json()
    assert (
        iso["total"]
        == millis["total"]
        == sum(low <= p["createdate"] <= high for p in data.values())
    )

    owned = api.search(
        limit=1,
        filterGroups=[
            {"filters": [{"propertyName": "hubspot_owner_id", "operator": "HAS_PROPERTY"}]}
        ],
    ).json()["total"]
    unowned = api.search(
        limit=1,
        filterGroups=[
            {"filters": [{"propertyName": "hubspot_owner_id", "operator": "NOT_HAS_PROPERTY"}]}
        ],
    ).json()["total"]
    assert owned + unowned == len(data) and 0 < unowned < owned


def test_search_returns_null_for_unset_requested_properties(
    make_sim: MakeSim,
) -> None:
    """fixtures/hubspot/search_deals_200.json: HubSpot answers `"closedate": null`."""
    sim = make_sim()
    body = Api(sim).search(limit=5, properties=["email", "crmq_score"]).json()
    assert all(r["properties"]["crmq_score"] is None for r in body["results"])
    assert set(fixture("search_deals_200.json")) == set(body) == {"total", "results", "paging"}


def test_search_limits(make_sim: MakeSim) -> None:
    api = Api(make_sim())
    f = {"propertyName": "firstname", "operator": "HAS_PROPERTY"}
    bad = [
        {"limit": 201},
        {"filterGroups": [{"filters": [f]}] * 6},
        {"filterGroups": [{"filters": [f] * 7}]},
        {"filterGroups": [{"filters": [f] * 4}] * 5},
        {"query": "x" * 3001},
        {"after": "9900", "limit": 200},
        {"sorts": ["email", "firstname"]},
    ]
    for body in bad:
        answer = api.search(**body)
        assert answer.status_code == 400, body
        assert answer.json()["category"] == "VALIDATION_ERROR"
    assert api.search(after="9800", limit=200).status_code == 200


def test_tie_heavy_import_block_and_the_10k_window(
    make_sim: MakeSim,
) -> None:
    sim = make_sim(contacts=20_000, engagement=0)  # contacts are searched; activities are not
    api = Api(sim)
    stamp, ties = Counter(p["lastmodifieddate"] for p in contacts(sim).values()).most_common(1)[0]
    assert ties >= 10_500
    on_stamp = {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(parse_ms(stamp))}
    first = api.search(limit=200, after="9800", filterGroups=[{"filters": [on_stamp]}]).json()
    assert first["total"] == ties and first["paging"]["next"]["after"] == "10000"
    beyond = api.search(limit=200, after="10000", filterGroups=[{"filters": [on_stamp]}])
    assert beyond.status_code == 400 and "10000" in beyond.json()["message"]

    seen, last = [], "0"  # what an adapter must do: page through the ties by id
    while True:
        page = api.search(
            limit=200,
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            filterGroups=[
                {
                    "filters": [
                        on_stamp,
                        {"propertyName": "hs_object_id", "operator": "GT", "value": last},
                    ]
                }
            ],
        ).json()
        if not page["results"]:
            break
        seen += [r["id"] for r in page["results"]]
        last = seen[-1]
    assert len(seen) == len(set(seen)) == ties


# ----- batches ---------------------------------------------------------------------------
def test_batch_caps(make_sim: MakeSim) -> None:
    sim = make_sim()
    api, ids = Api(sim), sorted(sim.store.objects["contacts"])
    many = [{"id": i, "properties": {"firstname": "x"}} for i in (ids * 2)[:101]]
    for path in ("read", "update", "create", "archive"):
        answer = api.post(f"/crm/v3/objects/contacts/batch/{path}", {"inputs": many})
        assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    assoc = api.post(
        "/crm/v4/associations/contacts/deals/batch/read",
        {"inputs": [{"id": i} for i in (ids * 4)[:1001]]},
    )
    assert assoc.status_code == 400
    assert sim.stats.writes == 0


def test_unknown_property_fails_the_whole_batch(make_sim: MakeSim) -> None:
    sim = make_sim()
    ids = sorted(sim.store.objects["contacts"])[:2]
    before = [dict(contacts(sim)[i]) for i in ids]
    answer = Api(sim).post(
        "/crm/v3/objects/contacts/batch/update",
        {
            "inputs": [
                {"id": ids[0], "properties": {"firstname": "A"}},
                {"id": ids[1], "properties": {"testproperty": "B"}},
            ]
        },
    )
    expected = fixture("docs_error_400_validation.json")
    body = answer.json()
    assert answer.status_code == 400 and set(body) == set(expected)
    assert body["category"] == expected["category"]
    assert body["errors"][0]["code"] == expected["errors"][0]["code"]
    assert body["errors"][0]["context"] == expected["errors"][0]["context"]
    assert body["message"].startswith("Property values were not valid: ")
    assert [contacts(sim)[i] for i in ids] == before


def test_refused_values_are_worded_as_hubspot_words_them(make_sim: MakeSim) -> None:
    """The documented 400 (fixtures/hubspot/docs_error_400_validation.json): each refused
    property in `errors[]` and in the JSON list the message embeds, with the same keys. An
    option list is HubSpot's own order, as a recorded INVALID_OPTION shows ("reports was not
    one of the allowed options: [PRODUCT_ISSUE, BILLING_ISSUE, FEATURE_REQUEST, ...]")."""
    sim = make_sim(custom_properties=True)
    record = sorted(sim.store.objects["contacts"])[0]
    answer = Api(sim).post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": record, "properties": {"crmq_temperature": "tepid"}}]},
    )
    body, documented = answer.json(), fixture("docs_error_400_validation.json")
    listed = json.loads(body["message"].split("Property values were not valid: ", 1)[1])
    shown = documented["message"].replace("{HubId}", "0")
    example = json.loads(shown.split("Property values were not valid: ", 1)[1])
    assert answer.status_code == 400 and [set(p) for p in listed] == [set(example[0])]
    options = sim.store.definitions["contacts"]["crmq_temperature"]["options"]
    message = (
        f"tepid was not one of the allowed options: [{', '.join(o['value'] for o in options)}]"
    )
    assert (listed[0]["error"], listed[0]["message"]) == ("INVALID_OPTION", message)
    assert body["errors"] == [
        {
            "message": message,
            "code": "INVALID_OPTION",
            "context": {"propertyName": ["crmq_temperature"]},
        }
    ]


def test_207_partial_failures(make_sim: MakeSim) -> None:
    sim = make_sim(custom_properties=True)
    ids = sorted(sim.store.objects["contacts"])[:3]
    sim.faults.add("207", ids=[ids[1]])
    client = HubSpot(access_token=sim.token, host=sim.base_url)
    out = client.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=i, properties={"crmq_score": "50"}) for i in ids
            ]
        )
    )
    assert type(out).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert out.num_errors == 1 and out.errors[0].context == {"id": [ids[1]]}
    assert out.errors[0].category == "VALIDATION_ERROR" and out.errors[0].status == "error"
    assert {r.id for r in out.results} == {ids[0], ids[2]}
    assert "crmq_score" not in contacts(sim)[ids[1]]

    sim.faults.add("207", ids=["trace-b"])
    due = {"hs_timestamp": "2025-07-01T09:00:00Z", "hs_task_subject": "Call"}
    answer = Api(sim).post(
        "/crm/v3/objects/tasks/batch/create",
        {
            "inputs": [
                {"properties": due, "associations": [], "objectWriteTraceId": f"trace-{k}"}
                for k in "abc"
            ]
            + [
                {
                    "properties": {"hs_task_status": "LATER", **due},
                    "associations": [],
                    "objectWriteTraceId": "trace-d",
                }
            ]
        },
    )
    body, shape = answer.json(), fixture("docs_batch_create_207_multistatus.json")
    assert answer.status_code == 207 and set(body) == set(shape)
    assert sorted(e["context"]["objectWriteTraceId"][0] for e in body["errors"]) == [
        "trace-b",
        "trace-d",
    ]
    assert all(set(e) >= set(shape["errors"][0]) for e in body["errors"])
    assert sorted(r["objectWriteTraceId"] for r in body["results"]) == ["trace-a", "trace-c"]


def test_tasks_with_associations_and_validation(make_sim: MakeSim) -> None:
    sim = make_sim(custom_properties=True)
    api, contact = Api(sim), sorted(sim.store.objects["contacts"])[5]
    link = [
        {
            "to": {"id": contact},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
        }
    ]
    props = {
        "hs_task_subject": "Follow up",
        "hs_task_type": "CALL",
        "hs_task_priority": "HIGH",
        "hs_timestamp": "2025-07-01T09:00:00Z",
        "hs_task_status": "NOT_STARTED",
        "crmq_task_key": "k-1",
    }
    created = api.post("/crm/v3/objects/tasks", {"properties": props, "associations": link})
    expected = fixture("create_task_201.json")
    assert created.status_code == 201 and set(created.json()) == set(expected)
    task = created.json()
    assert {k: task["properties"][k] for k in props} == props
    assert sim.store.associations("contacts", contact, "tasks") == [task["id"]]
    assert sim.store.associations("tasks", task["id"], "contacts") == [contact]
    listed = api.get(f"/crm/v3/objects/tasks/{task['id']}", associations="contacts").json()
    assert listed["associations"]["contacts"]["results"] == [
        {"id": contact, "type": "task_to_contact"}
    ]
    for bad in (
        {**props, "hs_task_status": "DONE"},
        {**props, "hs_task_priority": "URGENT"},
        {**props, "hs_task_type": "MEETING"},
        {"hs_task_subject": "no due date"},
    ):
        assert api.post("/crm/v3/objects/tasks", {"properties": bad}).status_code == 400
    wrong_type = [
        {
            "to": {"id": contact},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 203}],
        }
    ]
    assert (
        api.post(
            "/crm/v3/objects/tasks", {"properties": props, "associations": wrong_type}
        ).status_code
        == 400
    )


# ----- limits and auth -------------------------------------------------------------------
def test_burst_limit_429_and_headers(make_sim: MakeSim) -> None:
    sim = make_sim(rate_limit=5)
    api = Api(sim)
    answers = [api.get("/crm/v3/owners") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers[:5]] == [
        "4",
        "3",
        "2",
        "1",
        "0",
    ]
    first = answers[0].headers
    assert first["X-HubSpot-RateLimit-Max"] == "5"
    assert first["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert {
        "X-HubSpot-RateLimit-Daily",
        "X-HubSpot-RateLimit-Daily-Remaining",
        "X-HubSpot-RateLimit-Secondly",
        "X-HubSpot-RateLimit-Secondly-Remaining",
    } <= set(first)
    limited = answers[-1]
    assert "Retry-After" not in limited.headers
    assert set(limited.json()) == set(fixture("error_429_ten_secondly_rolling.json"))
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    recorded = fixture("error_429_ten_secondly_rolling.json")["groupName"]
    assert _limit_in(limited.json()["groupName"]) == _limit_in(recorded) == "ten-secondly"
    assert api.search(limit=1).status_code == 200  # search has its own limit
    assert sim.stats.throttled == 1 and sim.stats.by_status[429] == 1


def test_search_and_daily_limits(make_sim: MakeSim) -> None:
    api = Api(make_sim(search_rate=2))
    codes = [api.search(limit=1) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[-1].json()["policyName"] == "SECONDLY"
    daily = Api(make_sim(daily_limit=2))
    codes = [daily.get("/crm/v3/owners") for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[-1].json()["policyName"] == "DAILY"


def test_oauth_refresh_expiry_and_token_info(make_sim: MakeSim) -> None:
    sim = make_sim(access_token_ttl=0.4, scopes=["crm.objects.contacts.read"])
    client = HubSpot(host=sim.base_url)
    token = client.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id="sim-client",
        client_secret="sim-secret",
        refresh_token="sim-refresh",
    )
    assert token.token_type == "bearer" and token.refresh_token == "sim-refresh"
    assert isinstance(token.expires_in, int)
    info = client.oauth.access_tokens_api.get(token.access_token)
    assert info.hub_id == sim.hub_id and "crm.objects.contacts.read" in info.scopes
    oauth = Api(sim, token.access_token).get("/crm/v3/objects/contacts")
    assert oauth.status_code == 200 and "X-HubSpot-RateLimit-Daily" not in oauth.headers
    time.sleep(0.5)
    expired = Api(sim, token.access_token).get("/crm/v3/objects/contacts")
    assert expired.status_code == 401 and expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    bad = requests.post(
        sim.base_url + "/oauth/v1/token",
        timeout=5,
        data={
            "grant_type": "refresh_token",
            "client_id": "sim-client",
            "client_secret": "sim-secret",
            "refresh_token": "nope",
        },
    )
    assert bad.status_code == 400 and bad.json()["status"] == "BAD_REFRESH_TOKEN"
    missing = requests.get(sim.base_url + "/crm/v3/objects/contacts", timeout=5)
    assert missing.status_code == 401 and missing.json()["category"] == "INVALID_AUTHENTICATION"
    app = requests.post(
        sim.base_url + "/oauth/v2/private-apps/get/access-token-info",
        json={"tokenKey": sim.token},
        timeout=5,
    ).json()
    assert set(app) == {"userId", "hubId", "appId", "scopes"}
    assert app["scopes"] == ["crm.objects.contacts.read"]
    denied = Api(sim).get("/crm/v3/owners")
    assert denied.status_code == 403 and denied.json()["category"] == "MISSING_SCOPES"


def test_expire_token_fault_revokes_the_current_access_token(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    form = {
        "grant_type": "refresh_token",
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "refresh_token": "sim-refresh",
    }
    token = requests.post(sim.base_url + "/oauth/v1/token", data=form, timeout=5).json()
    api = Api(sim, token["access_token"])
    assert api.get("/crm/v3/owners").status_code == 200
    sim.faults.add("expire_token")
    assert api.get("/crm/v3/owners").json()["category"] == "EXPIRED_AUTHENTICATION"
    fresh = requests.post(sim.base_url + "/oauth/v1/token", data=form, timeout=5).json()
    assert Api(sim, fresh["access_token"]).get("/crm/v3/owners").status_code == 200


# ----- schema ----------------------------------------------------------------------------
def test_properties_api(make_sim: MakeSim) -> None:
    sim = make_sim()
    api, contact = Api(sim), sorted(sim.store.objects["contacts"])[0]
    write = {"inputs": [{"id": contact, "properties": {"crmq_score": "12"}}]}
    assert api.post("/crm/v3/objects/contacts/batch/update", write).status_code == 400
    stage = api.get("/crm/v3/properties/contacts/lifecyclestage").json()
    assert stage["type"] == "enumeration" and [o["value"] for o in stage["options"]] == [
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ]
    new = {
        "name": "crmq_score",
        "label": "Score",
        "type": "number",
        "fieldType": "number",
        "groupName": "crm_qualify",
    }
    assert api.post("/crm/v3/properties/contacts", new).status_code == 400  # no such group yet
    group = api.post(
        "/crm/v3/properties/contacts/groups", {"name": "crm_qualify", "label": "crm-qualify"}
    )
    assert group.status_code == 201
    assert api.post("/crm/v3/properties/contacts", new).status_code == 201
    assert api.post("/crm/v3/properties/contacts", new).status_code == 409
    assert api.get("/crm/v3/properties/contacts/crmq_score").json()["groupName"] == "crm_qualify"
    assert api.post("/crm/v3/objects/contacts/batch/update", write).status_code == 200
    assert contacts(sim)[contact]["crmq_score"] == "12"
    provisioned = make_sim(custom_properties=True)
    names = {
        p["name"] for p in Api(provisioned).get("/crm/v3/properties/contacts").json()["results"]
    }
    assert {
        "crmq_score",
        "crmq_temperature",
        "crmq_reasons",
        "crmq_scored_at",
        "crmq_renurture",
        "crmq_highest_stage",
        "crmq_customer_type",
        "crmq_disqualified",
    } <= names
    assert Api(provisioned).get("/crm/v3/properties/tasks/crmq_task_key").status_code == 200


def test_deterministic_seeding() -> None:
    first, second = (HubSpotSimulator(contacts=500, seed=11, anchor=ANCHOR) for _ in range(2))
    other = HubSpotSimulator(contacts=500, seed=12, anchor=ANCHOR)
    assert first.store.objects == second.store.objects and first.store.owners == second.store.owners
    assert first.store.pipelines == second.store.pipelines
    assert first.store.objects["contacts"] != other.store.objects["contacts"]
    data = contacts(first)
    domains = {p["email"].rsplit("@", 1)[1] for p in data.values()}
    assert {"gmail.com", "rivalcrm.io"} <= domains and domains & {
        "mailinator.com",
        "yopmail.com",
        "guerrillamail.com",
        "10minutemail.com",
    }
    with_deals = sum(bool(first.store.associations("contacts", i, "deals")) for i in data)
    assert 0.05 <= with_deals / len(data) <= 0.12
    assert {p["hs_analytics_source"] for p in data.values()} >= {"OFFLINE", "ORGANIC_SEARCH"}
    assert all(v is not None and isinstance(v, str) for p in data.values() for v in p.values())


# ----- writes ----------------------------------------------------------------------------
def test_writes_bump_lastmodifieddate(make_sim: MakeSim) -> None:
    sim = make_sim()
    api, ids = Api(sim), sorted(sim.store.objects["contacts"])[:4]
    started = now_ms()
    patched = api.patch(
        f"/crm/v3/objects/contacts/{ids[0]}", {"properties": {"firstname": "Updated"}}
    )
    assert patched.status_code == 200 and set(patched.json()) == set(
        fixture("update_contact_200.json")
    )
    batch = api.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": ids[1], "properties": {"jobtitle": "CTO"}}]},
    )
    sim.touch(ids[2], {"jobtitle": "Head of Data"})
    engaged = sim.simulate_engagement(3, seed=4)
    for oid in ids[:3] + engaged:
        record = sim.store.objects["contacts"][oid]
        assert parse_ms(record["properties"]["lastmodifieddate"]) >= started
        assert record["updatedAt"] == record["properties"]["lastmodifieddate"]
    assert (
        batch.json()["results"][0]["properties"]["lastmodifieddate"]
        == contacts(sim)[ids[1]]["lastmodifieddate"]
    )
    recent = search_all(
        api,
        limit=100,
        filterGroups=[
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": str(started),
                    }
                ]
            }
        ],
    )
    assert {r["id"] for r in recent} == set(ids[:3] + engaged)
    assert contacts(sim)[ids[3]]["lastmodifieddate"] < contacts(sim)[ids[0]]["lastmodifieddate"]


def test_lifecycle_stage_cannot_move_backwards_via_api(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    api = Api(sim)
    customer = next(i for i, p in contacts(sim).items() if p.get("lifecyclestage") == "customer")

    def set_stage(value: str) -> str:
        api.patch(f"/crm/v3/objects/contacts/{customer}", {"properties": {"lifecyclestage": value}})
        return contacts(sim)[customer].get("lifecyclestage", "")

    assert set_stage("lead") == "customer"
    assert set_stage("") == ""
    assert set_stage("lead") == "lead"
    assert (
        api.patch(
            f"/crm/v3/objects/contacts/{customer}", {"properties": {"lifecyclestage": "hot"}}
        ).status_code
        == 400
    )


def test_search_index_lag(make_sim: MakeSim) -> None:
    sim = make_sim(search_index_lag=0.3)
    api, contact = Api(sim), sorted(sim.store.objects["contacts"])[0]
    api.patch(f"/crm/v3/objects/contacts/{contact}", {"properties": {"jobtitle": "Lag Tester"}})
    api.post(
        "/crm/v3/objects/tasks",
        {"properties": {"hs_task_subject": "Lagging", "hs_timestamp": "2025-07-01T09:00:00Z"}},
    )
    title = {
        "filterGroups": [
            {"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": "Lag Tester"}]}
        ]
    }
    subject = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_task_subject", "operator": "EQ", "value": "Lagging"}]}
        ]
    }
    assert (
        api.search(**title).json()["total"] == 0
        and api.search("tasks", **subject).json()["total"] == 0
    )
    time.sleep(0.35)
    assert (
        api.search(**title).json()["total"] == 1
        and api.search("tasks", **subject).json()["total"] == 1
    )


# ----- faults, latency, CLI --------------------------------------------------------------
def test_injected_faults(make_sim: MakeSim) -> None:
    sim = make_sim()
    api, ids = Api(sim), sorted(sim.store.objects["contacts"])
    for kind in ("500", "502", "503", "429"):
        sim.faults.add(kind, path_contains="/owners")
        assert api.get("/crm/v3/objects/contacts", limit=1).status_code == 200
        assert api.get("/crm/v3/owners").status_code == int(kind)
    assert api.get("/crm/v3/owners").status_code == 200
    sim.faults.add("500", ids=[ids[7]])
    read = "/crm/v3/objects/contacts/batch/read"
    assert api.post(read, {"inputs": [{"id": ids[1]}]}).status_code == 200
    assert api.post(read, {"inputs": [{"id": ids[7]}]}).status_code == 500
    sim.faults.add("drop")
    with pytest.raises(requests.ConnectionError):
        api.get("/crm/v3/owners")
    sim.faults.add("slow")
    with pytest.raises(requests.ReadTimeout):
        api.http.get(sim.base_url + "/crm/v3/owners", timeout=0.3)

    def statuses(seeded: HubSpotSimulator) -> list[int]:
        return [Api(seeded).get("/crm/v3/owners").status_code for _ in range(25)]

    first = statuses(make_sim(fault_rate=0.4, seed=5))
    assert first == statuses(make_sim(fault_rate=0.4, seed=5))
    assert 200 in first and set(first) - {200} <= {429, 500, 502, 503} and set(first) != {200}


def test_latency_overlaps_concurrent_clients(make_sim: MakeSim) -> None:
    sim = make_sim(latency_ms=200)
    codes: list[int] = []
    workers = [
        threading.Thread(target=lambda: codes.append(Api(sim).get("/crm/v3/owners").status_code))
        for _ in range(5)
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert codes == [200] * 5 and 0.2 <= time.monotonic() - started < 0.7


def test_cli_serves_until_sigterm() -> None:
    code = "import sys; from adapters.hubspot.simulator import main; sys.exit(main())"
    args = ["simulate", "hubspot", "--contacts", "50", "--rate-limit", "100/10s", "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        url = proc.stdout.readline().strip().removeprefix("base_url=")
        token = proc.stdout.readline().strip().removeprefix("token=")
        answer = requests.get(
            url + "/crm/v3/owners", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert answer.status_code == 200 and answer.headers["X-HubSpot-RateLimit-Max"] == "100"
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    with pytest.raises(SystemExit):
        main(["--rate-limit", "100/1m"])


# ----- metadata and spec conformance -----------------------------------------------------
def test_pipelines_owners_and_association_reads(make_sim: MakeSim) -> None:
    sim = make_sim()
    api = Api(sim)
    pipelines = api.get("/crm/v3/pipelines/deals").json()["results"]
    won = [
        s
        for p in pipelines
        for s in p["stages"]
        if s["metadata"]["isClosed"] == "true" and s["metadata"]["probability"] == "1.0"
    ]
    assert {s["id"] for s in won} >= {"closedwon"} and any(s["id"].isdigit() for s in won)
    owners, after = [], None
    while True:
        page = api.get("/crm/v3/owners", limit=3, **({"after": after} if after else {})).json()
        owners += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert [o["id"] for o in owners] == [o["id"] for o in sim.store.owners] and len(owners) == 8
    with_deals = [
        i
        for i in sorted(sim.store.objects["contacts"])
        if sim.store.associations("contacts", i, "deals")
    ]
    without = next(i for i in sorted(sim.store.objects["contacts"]) if i not in with_deals)
    answer = api.post(
        "/crm/v4/associations/contacts/deals/batch/read",
        {"inputs": [{"id": i} for i in with_deals[:3] + [without]]},
    )
    body = answer.json()
    assert answer.status_code == 207 and body["errors"][0]["context"] == {"fromObjectId": [without]}
    by_from = {r["from"]["id"]: r["to"] for r in body["results"]}
    assert {k: [t["toObjectId"] for t in v] for k, v in by_from.items()} == {
        i: sim.store.associations("contacts", i, "deals") for i in with_deals[:3]
    }
    assert all(
        t["associationTypes"] == [{"category": "HUBSPOT_DEFINED", "typeId": 4}]
        for v in by_from.values()
        for t in v
    )
    assert api.get("/crm/v3/nothing").status_code == 404
    assert api.get("/crm/v3/objects/widgets").json()["category"] == "VALIDATION_ERROR"


def test_responses_match_the_openapi_specs(make_sim: MakeSim) -> None:
    if not SPECS.is_dir():
        pytest.skip("shared HubSpot specs not present")
    specs = {
        n: OpenAPI.from_dict(json.loads((SPECS / f"crm-{n}.json").read_text()))
        for n in (
            "contacts-v3",
            "deals-v3",
            "tasks-v3",
            "owners-v3",
            "pipelines-v3",
            "associations-v4",
        )
    }
    sim = make_sim(custom_properties=True)
    api, ids = Api(sim), sorted(sim.store.objects["contacts"])
    with_deals = [i for i in ids if sim.store.associations("contacts", i, "deals")][:3]
    always = ["email", "firstname", "lastname", "hs_analytics_source"]
    due = {"hs_timestamp": "2025-07-01T09:00:00Z", "hs_task_subject": "Call"}
    checks = [
        (
            "contacts-v3",
            "get",
            "/crm/v3/objects/contacts",
            api.get("/crm/v3/objects/contacts", limit=5, associations="deals,companies"),
        ),
        (
            "contacts-v3",
            "post",
            "/crm/v3/objects/contacts/search",
            api.search(limit=5, properties=always),
        ),
        (
            "deals-v3",
            "post",
            "/crm/v3/objects/0-3/search",
            api.search(
                "0-3",
                limit=5,
                properties=["dealname", "amount", "dealstage", "pipeline", "closedate"],
            ),
        ),
        (
            "contacts-v3",
            "post",
            "/crm/v3/objects/contacts/batch/read",
            api.post(
                "/crm/v3/objects/contacts/batch/read",
                {
                    "inputs": [{"id": i} for i in ids[:3]],
                    "properties": always,
                    "propertiesWithHistory": [],
                },
            ),
        ),
        (
            "contacts-v3",
            "post",
            "/crm/v3/objects/contacts/batch/update",
            api.post(
                "/crm/v3/objects/contacts/batch/update",
                {"inputs": [{"id": i, "properties": {"crmq_score": "3"}} for i in ids[:3]]},
            ),
        ),
        (
            "contacts-v3",
            "post",
            "/crm/v3/objects/contacts/batch/update",
            api.post(
                "/crm/v3/objects/contacts/batch/update",
                {"inputs": [{"id": i, "properties": {"nope": "3"}} for i in ids[:3]]},
            ),
        ),
        (
            "tasks-v3",
            "post",
            "/crm/v3/objects/tasks",
            api.post("/crm/v3/objects/tasks", {"properties": due}),
        ),
        ("pipelines-v3", "get", "/crm/v3/pipelines/deals", api.get("/crm/v3/pipelines/deals")),
        ("owners-v3", "get", "/crm/v3/owners", api.get("/crm/v3/owners", limit=2)),
        (
            "associations-v4",
            "post",
            "/crm/v4/associations/contacts/deals/batch/read",
            api.post(
                "/crm/v4/associations/contacts/deals/batch/read",
                {"inputs": [{"id": i} for i in with_deals]},
            ),
        ),
    ]
    sim.faults.add("207", ids=[ids[1]])
    checks.append(
        (
            "contacts-v3",
            "post",
            "/crm/v3/objects/contacts/batch/update",
            api.post(
                "/crm/v3/objects/contacts/batch/update",
                {"inputs": [{"id": i, "properties": {"crmq_score": "4"}} for i in ids[:3]]},
            ),
        )
    )
    statuses = []
    for spec, method, path, answer in checks:
        statuses.append(answer.status_code)
        if answer.status_code >= 400:  # `default: */*` in the specs: check the Error schema itself
            document = json.loads((SPECS / f"crm-{spec}.json").read_text())
            jsonschema.validate(answer.json(), {**document, "$ref": "#/components/schemas/Error"})
            continue
        request = MockRequest("https://api.hubapi.com", method, path)
        response = MockResponse(
            answer.content,
            status_code=answer.status_code,
            content_type=answer.headers["Content-Type"].split(";")[0],
        )
        specs[spec].validate_response(request, response)
    assert statuses == [200, 200, 200, 200, 200, 400, 201, 200, 200, 200, 207]
