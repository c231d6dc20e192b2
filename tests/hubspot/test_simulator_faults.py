"""The simulator's fault kinds over raw HTTP: what the client meets, and whether the request
acted. One simulator for the module; faults are selected by request kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.faults import request_names

from tests.hubspot.conftest import FAST

UPDATE = "/crm/v3/objects/contacts/batch/update"


@pytest.fixture(scope="module")
def portal() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=30, seed=2, custom_properties=True, **FAST) as sim:
        yield sim


@pytest.fixture
def sim(portal: HubSpotSimulator) -> Iterator[HubSpotSimulator]:
    portal.faults.clear()
    yield portal
    portal.faults.clear()


def session(sim: HubSpotSimulator) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {sim.token}"
    return http


def update(sim: HubSpotSimulator, contact_id: str, score: str, timeout: float = 5) -> int:
    body = {"inputs": [{"id": contact_id, "properties": {"crmq_score": score}}]}
    return session(sim).post(sim.base_url + UPDATE, json=body, timeout=timeout).status_code


def score(sim: HubSpotSimulator, contact_id: str) -> str | None:
    return sim.store.objects["contacts"][contact_id]["properties"].get("crmq_score")


ROUTES = [
    ("POST", "/crm/v3/objects/{objectType}/batch/create", {"objectType": "0-27"},
     ("batch_create", "tasks.batch_create")),
    ("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
     {"fromObjectType": "contacts", "toObjectType": "deals"},
     ("associations", "contacts.deals.associations")),
    ("GET", "/crm/v3/objects/{objectType}", {"objectType": "contacts"},
     ("list", "contacts.list")),
    ("PATCH", "/crm/v3/objects/{objectType}/{objectId}", {"objectType": "deals"},
     ("update", "deals.update")),
    ("GET", "/crm/v3/owners", {}, ("owners",)),
    ("GET", "/crm/v3/pipelines/{objectType}", {"objectType": "deals"},
     ("pipelines", "deals.pipelines")),
]  # fmt: skip


@pytest.mark.parametrize(("method", "template", "params", "names"), ROUTES)
def test_request_kinds_name_routes_with_and_without_their_object_types(
    method, template, params, names
):
    assert request_names(method, template, params) == names


def test_a_fault_for_one_request_kind_leaves_the_others_alone(sim):
    http = session(sim)
    sim.faults.add("503", request="tasks.search")
    contacts = http.post(sim.base_url + "/crm/v3/objects/contacts/search", json={}, timeout=5)
    assert contacts.status_code == 200 and sim.faults.pending() == 1
    tasks = http.post(sim.base_url + "/crm/v3/objects/tasks/search", json={}, timeout=5)
    assert tasks.status_code == 503 and sim.faults.pending() == 0


@pytest.mark.parametrize("kind", ["reset", "drop"])
def test_a_connection_closed_before_serving_writes_nothing(sim, kind):
    contact_id = sorted(sim.store.objects["contacts"])[0]
    before = score(sim, contact_id)
    sim.faults.add(kind, request="batch_update")
    with pytest.raises(requests.ConnectionError) as caught:
        update(sim, contact_id, "91")
    assert score(sim, contact_id) == before
    assert ("reset" in str(caught.value).lower()) == (kind == "reset")


def test_a_lost_answer_comes_after_the_write(sim):
    contact_id = sorted(sim.store.objects["contacts"])[1]
    sim.faults.add("lost", request="contacts.batch_update")
    with pytest.raises(requests.ConnectionError):
        update(sim, contact_id, "92")
    assert score(sim, contact_id) == "92"


def test_a_timeout_comes_after_the_write(sim):
    contact_id = sorted(sim.store.objects["contacts"])[2]
    sim.faults.add("timeout", request="batch_update", delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        update(sim, contact_id, "93", timeout=0.2)
    assert score(sim, contact_id) == "93"


def test_an_expired_token_answers_401_and_writes_nothing(sim):
    contact_id = sorted(sim.store.objects["contacts"])[3]
    before = score(sim, contact_id)
    sim.faults.add("401", request="batch_update")
    body = {"inputs": [{"id": contact_id, "properties": {"crmq_score": "94"}}]}
    answer = session(sim).post(sim.base_url + UPDATE, json=body, timeout=5)
    assert answer.status_code == 401 and answer.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert score(sim, contact_id) == before


def test_a_gateway_error_is_an_html_page(sim):
    sim.faults.add("502", request="owners")
    answer = session(sim).get(sim.base_url + "/crm/v3/owners", timeout=5)
    assert answer.status_code == 502 and answer.headers["Content-Type"] == "text/html"
    with pytest.raises(ValueError):
        answer.json()


def test_unknown_kinds_are_refused(sim):
    with pytest.raises(ValueError):
        sim.faults.add("418")
