"""Simulator fidelity (issue 11): decoded paths, search lag, property history, the v4 association
and pipeline endpoints. Each goes through the official client over a real socket, and the raw
answers are validated against HubSpot's OpenAPI specs in /work/shared.

One simulator serves the module; tests that write use their own records so order is free.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.cli import DEFAULT_SEARCH_LAG, parser
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    PublicAssociationMultiPost,
    PublicObjectId,
)
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.hubspot.conftest import FAST, make_adapter

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / ".." / "shared" / "specs" / "hubspot"
ANCHOR = date(2025, 6, 1)


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(
        contacts=300, anchor=ANCHOR, rate_limit=10_000, search_rate=1_000
    ) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def client(sim: HubSpotSimulator) -> HubSpot:
    return HubSpot(access_token=sim.token, host=sim.base_url)


@pytest.fixture(scope="module")
def http(sim: HubSpotSimulator) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.token}"
    return session


_SPECS: dict[str, OpenAPI] = {}


def conforms(spec: str, method: str, path: str, answer: requests.Response) -> dict[str, Any]:
    """Validate a raw answer against `crm-{spec}.json` and return its JSON body."""
    if not SPECS.is_dir():
        pytest.skip("shared HubSpot specs not present")
    if spec not in _SPECS:
        _SPECS[spec] = OpenAPI.from_dict(json.loads((SPECS / f"crm-{spec}.json").read_text()))
    response = MockResponse(
        answer.content,
        status_code=answer.status_code,
        content_type=answer.headers["Content-Type"].split(";")[0],
    )
    _SPECS[spec].validate_response(MockRequest("https://api.hubapi.com", method, path), response)
    return answer.json()


def live_contacts(sim: HubSpotSimulator) -> list[str]:
    return sorted(i for i, r in sim.store.objects["contacts"].items() if not r["archived"])


# ----- 1. percent-encoded path values ----------------------------------------------------
def test_email_id_in_the_path_is_decoded(sim: HubSpotSimulator, client: HubSpot) -> None:
    created = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"email": "x+tag@y.org", "firstname": "Encoded"}
        )
    )
    found = client.crm.contacts.basic_api.get_by_id("x+tag@y.org", id_property="email")
    assert found.id == created.id and found.properties["firstname"] == "Encoded"
    updated = client.crm.contacts.basic_api.update(
        "x+tag@y.org",
        SimplePublicObjectInput(properties={"jobtitle": "Decoded"}),
        id_property="email",
    )
    assert updated.id == created.id
    assert sim.store.objects["contacts"][created.id]["properties"]["jobtitle"] == "Decoded"
    seeded = sim.store.objects["contacts"][live_contacts(sim)[0]]["properties"]["email"]
    assert (
        client.crm.contacts.basic_api.get_by_id(seeded, id_property="email").properties["email"]
        == seeded
    )
    with pytest.raises(ApiException) as missing:
        client.crm.contacts.basic_api.get_by_id("nobody@y.org", id_property="email")
    assert missing.value.status == 404


# ----- 2. search lag, on by default in the CLI -----------------------------------------
def test_cli_search_lag_hides_fresh_writes_until_it_passes() -> None:
    assert parser().parse_args([]).search_lag_seconds == DEFAULT_SEARCH_LAG > 0
    with pytest.raises(SystemExit):
        parser().parse_args(["--search-lag-seconds", "-1"])
    code = "import sys; from adapters.hubspot.simulator import main; sys.exit(main())"
    args = ["simulate", "hubspot", "--contacts", "20", "--search-lag-seconds", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("base_url=")
        token = proc.stdout.readline().strip().removeprefix("token=")
        client = HubSpot(access_token=token, host=url)
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "lag@y.org"})
        )
        written = time.monotonic()
        query = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="email", operator="EQ", value="lag@y.org")]
                )
            ],
            properties=["email"],
        )
        first = client.crm.contacts.search_api.do_search(query)
        assert time.monotonic() - written < 0.5 and first.total == 0
        time.sleep(max(0.0, 0.55 - (time.monotonic() - written)))
        later = client.crm.contacts.search_api.do_search(query)
        assert later.total == 1 and later.results[0].properties["email"] == "lag@y.org"
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


# ----- 3. propertiesWithHistory ----------------------------------------------------------
def test_properties_with_history_on_get_list_and_batch_read(
    sim: HubSpotSimulator, client: HubSpot, http: requests.Session
) -> None:
    api = client.crm.contacts
    oid = live_contacts(sim)[5]
    props = sim.store.objects["contacts"][oid]["properties"]
    created_at, email = props["createdate"], props["email"]
    api.basic_api.update(oid, SimplePublicObjectInput(properties={"jobtitle": "First"}))
    api.basic_api.update(oid, SimplePublicObjectInput(properties={"jobtitle": "Second"}))
    sim.touch(oid, {"jobtitle": "By hand"})

    got = api.basic_api.get_by_id(oid, properties_with_history=["jobtitle", "email", "no_such"])
    history = got.properties_with_history
    assert set(history) == {"jobtitle", "email"}  # unknown names are ignored
    titles = [(h.value, h.source_type) for h in history["jobtitle"]]
    assert titles[:3] == [
        ("By hand", "CRM_UI"),
        ("Second", "INTEGRATION"),
        ("First", "INTEGRATION"),
    ]
    newest, ours = history["jobtitle"][0], history["jobtitle"][1]
    owner = sim.store.owners[0]["userId"]
    assert newest.updated_by_user_id == owner and newest.source_id == f"userId:{owner}"
    assert ours.source_id == str(sim.auth.app_id)
    stamps = [h.timestamp for h in history["jobtitle"]]
    assert stamps == sorted(stamps, reverse=True)
    assert [(h.value, h.source_type) for h in history["email"]] == [(email, "IMPORT")]
    assert history["email"][0].timestamp.isoformat().startswith(created_at[:19])

    page = api.basic_api.get_page(limit=100, properties_with_history=["email"])
    assert len(page.results) == 50 and page.paging.next.after  # HubSpot's cap with history
    assert all(r.properties_with_history["email"][0].value for r in page.results)

    batch = api.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=oid)],
            properties=["jobtitle"],
            properties_with_history=["jobtitle"],
        )
    )
    assert [h.value for h in batch.results[0].properties_with_history["jobtitle"]][:2] == [
        "By hand",
        "Second",
    ]
    without = api.basic_api.get_by_id(oid)
    assert without.properties_with_history is None

    base = sim.base_url
    path = f"/crm/v3/objects/contacts/{oid}"
    raw = http.get(base + path, params={"propertiesWithHistory": "jobtitle"}, timeout=5)
    assert conforms("contacts-v3", "get", path, raw)["propertiesWithHistory"]["jobtitle"]
    raw = http.get(
        base + "/crm/v3/objects/contacts",
        params={"propertiesWithHistory": "email", "limit": 3},
        timeout=5,
    )
    conforms("contacts-v3", "get", "/crm/v3/objects/contacts", raw)
    body = {"inputs": [{"id": oid}], "properties": [], "propertiesWithHistory": ["jobtitle"]}
    raw = http.post(base + "/crm/v3/objects/contacts/batch/read", json=body, timeout=5)
    conforms("contacts-v3", "post", "/crm/v3/objects/contacts/batch/read", raw)


# ----- 4. v4 associations ----------------------------------------------------------------
def test_v4_get_page_create_default_and_batch_create(
    sim: HubSpotSimulator, client: HubSpot, http: requests.Session
) -> None:
    v4, store = client.crm.associations.v4, sim.store
    ids = live_contacts(sim)
    with_deals = next(i for i in ids if len(store.associations("contacts", i, "deals")) >= 2)
    page = v4.basic_api.get_page("contacts", with_deals, "deals")
    assert (
        sorted(r.to_object_id for r in page.results)
        == sorted(store.associations("contacts", with_deals, "deals"))
        and page.paging is None
    )
    assert all(
        [(t.category, t.type_id) for t in r.association_types] == [("HUBSPOT_DEFINED", 4)]
        for r in page.results
    )
    seen, after = [], None
    while True:  # paging with limit=1 walks every association once
        one = v4.basic_api.get_page(
            "0-1", with_deals, "deals", limit=1, **({"after": after} if after else {})
        )
        seen += [r.to_object_id for r in one.results]
        if one.paging is None:
            break
        after = one.paging.next.after
    assert seen == sorted(store.associations("contacts", with_deals, "deals"))

    contact = next(i for i in ids if not store.associations("contacts", i, "companies"))
    company = sorted(store.objects["companies"])[0]
    made = v4.basic_api.create_default("contacts", contact, "companies", company)
    assert made.status == "COMPLETE" and {
        (r._from.id, r.to.id, r.association_spec.association_type_id) for r in made.results
    } == {(contact, company, 279), (company, contact, 280)}
    assert store.associations("contacts", contact, "companies") == [company]
    assert contact in store.associations("companies", company, "contacts")

    lonely = next(i for i in ids if not store.associations("contacts", i, "deals"))
    deals = sorted(store.objects["deals"])[:2]

    def post(to_id: str, type_id: int) -> PublicAssociationMultiPost:
        spec = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)
        return PublicAssociationMultiPost(
            _from=PublicObjectId(id=lonely), to=PublicObjectId(id=to_id), types=[spec]
        )

    created = v4.batch_api.create(
        "contacts",
        "deals",
        BatchInputPublicAssociationMultiPost(inputs=[post(d, 4) for d in deals]),
    )
    assert created.status == "COMPLETE" and not getattr(created, "errors", None)
    assert {(r.from_object_id, r.to_object_id, r.from_object_type_id) for r in created.results} == {
        (lonely, d, "0-1") for d in deals
    }
    assert sorted(store.associations("contacts", lonely, "deals")) == deals
    partial = v4.batch_api.create(
        "contacts",
        "deals",
        BatchInputPublicAssociationMultiPost(inputs=[post("999", 4), post(deals[0], 1)]),
    )
    assert partial.num_errors == 2 and partial.results == []

    base, spec = sim.base_url, "associations-v4"
    path = f"/crm/v4/objects/contacts/{with_deals}/associations/deals"
    conforms(spec, "get", path, http.get(base + path, timeout=5))
    path = f"/crm/v4/objects/contacts/{contact}/associations/default/companies/{company}"
    conforms(spec, "put", path, http.put(base + path, timeout=5))
    path = "/crm/v4/associations/contacts/deals/batch/create"
    body = {
        "inputs": [
            {
                "from": {"id": lonely},
                "to": {"id": d},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 4}],
            }
            for d in [*deals, "999"]
        ]
    }
    answer = http.post(base + path, json=body, timeout=5)
    assert answer.status_code == 207
    conforms(spec, "post", path, answer)
    body["inputs"] = body["inputs"][:2]
    answer = http.post(base + path, json=body, timeout=5)
    assert answer.status_code == 201
    conforms(spec, "post", path, answer)


# ----- 5. pipelines and stages -----------------------------------------------------------
def test_pipelines_and_stages_for_deals_contacts_and_tickets(
    sim: HubSpotSimulator, client: HubSpot, http: requests.Session
) -> None:
    pipes = client.crm.pipelines
    for pipeline in sim.store.pipelines:
        stages = pipes.pipeline_stages_api.get_all("deals", pipeline["id"]).results
        assert [s.id for s in stages] == [s["id"] for s in pipeline["stages"]]
        first = pipes.pipeline_stages_api.get_by_id("deals", pipeline["id"], stages[0].id)
        assert first.label == pipeline["stages"][0]["label"]
    contacts = pipes.pipelines_api.get_all("contacts").results
    options = sim.store.definitions["contacts"]["lifecyclestage"]["options"]
    assert len(contacts) == 1 and [s.id for s in contacts[0].stages] == [
        o["value"] for o in options
    ]
    tickets = pipes.pipelines_api.get_all("tickets").results
    assert [(s.id, s.metadata["ticketState"]) for s in tickets[0].stages][-1] == ("4", "CLOSED")
    assert pipes.pipelines_api.get_by_id("0-5", "0").label == tickets[0].label
    assert len(pipes.pipeline_stages_api.get_all("tickets", "0").results) == 4
    with pytest.raises(Exception) as missing:
        pipes.pipeline_stages_api.get_all("deals", "nope")
    assert getattr(missing.value, "status", None) == 404

    base = sim.base_url
    for path in (
        "/crm/v3/pipelines/contacts",
        "/crm/v3/pipelines/tickets",
        "/crm/v3/pipelines/tickets/0",
        "/crm/v3/pipelines/deals/default/stages",
        "/crm/v3/pipelines/contacts/contacts-lifecycle-pipeline/stages",
        "/crm/v3/pipelines/deals/default/stages/closedwon",
    ):
        answer = http.get(base + path, timeout=5)
        assert answer.status_code == 200, path
        conforms("pipelines-v3", "get", path, answer)


# ----- 6. paged links ----------------------------------------------------------------------
def test_links_are_paged_inline_past_100_and_in_v4_batch_reads_past_500(
    sim: HubSpotSimulator, http: requests.Session
) -> None:
    """HubSpot pages a record's inline links (`associations=`) past 100 (changelog, January
    2021) and each record of a v4 batch read past 500, with `after` to continue from."""
    store, base = sim.store, sim.base_url
    stage = store.pipelines[0]["stages"][0]["id"]
    with store.lock:
        owner = store.create("contacts", {"email": "links@example.org"}, 1)
        for _ in range(620):
            deal = store.create("deals", {"dealname": "Many", "dealstage": stage}, 1)
            store.associate("contacts", owner["id"], "deals", deal["id"], [4])
    linked = sorted(store.associations("contacts", owner["id"], "deals"))

    path = "/crm/v3/objects/contacts"
    answer = http.get(
        base + path,
        params={"limit": 1, "after": owner["id"], "associations": "deals"},
        timeout=5,
    )
    (row,) = conforms("contacts-v3", "get", path, answer)["results"]
    inline = row["associations"]["deals"]
    assert [r["id"] for r in inline["results"]] == linked[:100]
    rest = http.get(inline["paging"]["next"]["link"], timeout=5).json()
    assert [r["toObjectId"] for r in rest["results"]] == linked[100:600]

    v4 = "/crm/v4/associations/contacts/deals/batch/read"
    answer = http.post(base + v4, json={"inputs": [{"id": owner["id"]}]}, timeout=5)
    (first,) = conforms("associations-v4", "post", v4, answer)["results"]
    assert [t["toObjectId"] for t in first["to"]] == linked[:500]
    after = first["paging"]["next"]["after"]
    answer = http.post(base + v4, json={"inputs": [{"id": owner["id"], "after": after}]}, timeout=5)
    (second,) = conforms("associations-v4", "post", v4, answer)["results"]
    assert [t["toObjectId"] for t in second["to"]] == linked[500:] and "paging" not in second


# ----- 7. search lag: the adapter's lookback catches what search showed late ---------------
def test_the_lookback_reads_a_change_search_showed_after_the_run() -> None:
    """A change made just before a run is invisible to that run's search (HubSpot's index
    trails writes); the next run finds it only because it looks back before its cursor."""
    with HubSpotSimulator(
        contacts=30, seed=8, custom_properties=True, search_index_lag=60, **FAST
    ) as lagging:
        caught, blind = make_adapter(lagging), make_adapter(lagging, lookback_seconds=0)
        cursors = {}
        for name, adapter in (("caught", caught), ("blind", blind)):
            *_, last = adapter.read_changed(None, until=datetime.now(UTC))  # the full walk
            cursors[name] = last.cursor
        changed = sorted(lagging.store.objects["contacts"])[3]
        lagging.touch(changed, {"jobtitle": "Changed just before the run"})
        for name, adapter in (("caught", caught), ("blind", blind)):
            ids, cursors[name] = changed_ids(adapter, cursors[name])
            assert changed not in ids, "search has not indexed the change yet"
        with lagging.store.lock:
            lagging.store.index.settle()  # the lag has passed
        assert changed in changed_ids(caught, cursors["caught"])[0]
        assert changed not in changed_ids(blind, cursors["blind"])[0]


def changed_ids(adapter: Any, cursor: str | None) -> tuple[list[str], str | None]:
    ids: list[str] = []
    for batch in adapter.read_changed(cursor, until=datetime.now(UTC)):
        ids += [item.key[1] for item in batch.raw]
        cursor = batch.cursor or cursor
    return ids, cursor


# ----- 8. setup's property definitions, as the properties spec requires them --------------
def test_setup_sends_property_groups_and_options_as_the_properties_spec_requires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = OpenAPI.from_dict(json.loads((SPECS / "crm-properties-v3.json").read_text()))
    with HubSpotSimulator(contacts=5, seed=8, **FAST) as bare:
        adapter = make_adapter(bare)
        sent: list[tuple[str, dict[str, Any]]] = []
        for api, suffix in ((adapter.client.properties, ""), (adapter.client.groups, "/groups")):
            create = api.create

            def record(object_type, body, *args, _create=create, _suffix=suffix, **kwargs):
                sent.append((f"/crm/v3/properties/{object_type}{_suffix}", body))
                return _create(object_type, body, *args, **kwargs)

            monkeypatch.setattr(api, "create", record)
        assert all(result.ok for result in adapter.setup())
    options = [o for _, body in sent for o in body.get("options", [])]
    assert options and all(o["hidden"] is False for o in options)
    assert {path for path, _ in sent} == {
        "/crm/v3/properties/contacts",
        "/crm/v3/properties/contacts/groups",
        "/crm/v3/properties/tasks",
        "/crm/v3/properties/tasks/groups",
    }
    for path, body in sent:
        request = MockRequest(
            "https://api.hubapi.com",
            "post",
            path,
            data=json.dumps(body).encode(),
            content_type="application/json",
        )
        spec.validate_request(request)


# ----- 9. batch read of archived records (`archived` in crm-contacts-v3.json) -------------
def test_batch_read_serves_archived_records_when_asked(
    sim: HubSpotSimulator, client: HubSpot, http: requests.Session
) -> None:
    api = client.crm.contacts
    gone, kept = live_contacts(sim)[-2:]
    api.basic_api.archive(gone)
    ask = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=gone), SimplePublicObjectId(id=kept)], properties=[]
    )
    archived = api.batch_api.read(ask, archived=True)
    assert [(r.id, r.archived) for r in archived.results] == [(gone, True)]
    assert archived.results[0].archived_at is not None
    assert archived.errors[0].context == {"ids": [kept]}  # only archived records, as asked
    live = api.batch_api.read(ask)
    assert [r.id for r in live.results] == [kept] and live.errors[0].context == {"ids": [gone]}
    path = "/crm/v3/objects/contacts/batch/read"
    raw = http.post(
        sim.base_url + path, params={"archived": "true"}, json={"inputs": [{"id": gone}]}, timeout=5
    )
    assert conforms("contacts-v3", "post", path, raw)["results"][0]["archived"] is True


# ----- 10. search through associations (`associations.company`, HubSpot's search guide) ----
def test_search_filters_on_associated_records(sim: HubSpotSimulator, client: HubSpot) -> None:
    store = sim.store
    companies = [
        c
        for c in sorted(store.objects["companies"])
        if store.associations("companies", c, "contacts")
    ]
    first, second = companies[:2]

    def found(*filters: Filter) -> set[str]:
        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=list(filters))], limit=200
        )
        return {r.id for r in client.crm.contacts.search_api.do_search(request).results}

    staff = set(store.associations("companies", first, "contacts"))
    assert found(Filter(property_name="associations.company", operator="EQ", value=first)) == staff
    both = staff | set(store.associations("companies", second, "contacts"))
    assert (
        found(Filter(property_name="associations.company", operator="IN", values=[first, second]))
        == both
    )
    email = store.objects["contacts"][min(staff)]["properties"]["email"]
    narrowed = found(
        Filter(property_name="associations.company", operator="EQ", value=first),
        Filter(property_name="email", operator="EQ", value=email),
    )
    assert narrowed == {min(staff)}


# ----- 11. a refused inline association is quoted as the JSON that was sent ---------------
def test_an_invalid_inline_association_is_quoted_as_json(client: HubSpot) -> None:
    wrong = {"to": {"id": "1"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                           "associationTypeId": 999}]}  # fmt: skip
    with pytest.raises(ApiException) as refused:
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"firstname": "A"}, associations=[wrong])
        )
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 400 and json.dumps(wrong) in message and "{'" not in message
