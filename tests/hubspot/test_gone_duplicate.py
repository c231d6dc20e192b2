"""A person's contact deleted in HubSpot: the run that learns it is gone decides the person's
contact left without it, in that run (its form no longer counts)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import DAY_MS, now_ms
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

from tests.hubspot.conftest import FAST, make_adapter


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=40, seed=3, custom_properties=True, **FAST) as simulator:
        yield simulator


def new_contact(sim: HubSpotSimulator, email: str, at: int) -> str:
    person = {"email": email, "firstname": "Dana", "lastname": "Okafor",
              "company": "Northwind Labs", "lifecyclestage": "lead"}  # fmt: skip
    with sim.store.lock:
        return sim.store.create("contacts", person, at)["id"]


def delete(sim: HubSpotSimulator, contact_id: str) -> None:
    """A rep's script: `DELETE /crm/v3/objects/contacts/{id}`."""
    session = requests.Session()
    session.trust_env = False
    answer = session.delete(
        f"{sim.base_url}/crm/v3/objects/contacts/{contact_id}",
        headers={"Authorization": f"Bearer {sim.token}"},
    )
    assert answer.status_code == 204, answer.text


@pytest.mark.parametrize("learnt_by", ["full read", "read by id"])
def test_a_deleted_duplicates_demo_request_leaves_the_score_of_the_contact_left(
    sim, store, settings, learnt_by
):
    """The run that finds the contact gone (`sync --once --full`, or `sync --once --contact
    contacts/<id>`) decides the one left without it, though it was not asked for."""
    earlier = now_ms() - 30 * DAY_MS
    kept = new_contact(sim, "dana@northwind-labs.com", earlier)
    asked = new_contact(sim, "dana.okafor@northwind-labs.com", earlier + DAY_MS)
    sim.submit_form("Demo request", asked, at=now_ms() - 3_600_000)
    assert SyncEngine(make_adapter(sim), settings, store).run(RunOptions()).status == "ok"
    props = sim.store.objects["contacts"][kept]["properties"]
    with_demo, temperature = int(props["crmq_score"]), props["crmq_temperature"]
    assert "demo request" in props["crmq_reasons"], props["crmq_reasons"]

    delete(sim, asked)
    by_id = RunOptions(contact_ids=[("contacts", asked)])
    options = RunOptions(full=True) if learnt_by == "full read" else by_id
    dry = SyncEngine(make_adapter(sim), settings, store).run(replace(options, dry_run=True))
    run = SyncEngine(make_adapter(sim), settings, store).run(options)

    assert run.status == "ok", run.errors
    assert run.counts["records_gone"] == 1
    assert dry.counts["fields_planned"] == run.counts["fields_written"] > 0, "a dry run plans it"
    if learnt_by == "full read":  # a dry read by id does not count what it finds gone (yet)
        assert dry.counts["records_gone"] == 1
    props = sim.store.objects["contacts"][kept]["properties"]
    assert "demo request" not in props.get("crmq_reasons", ""), props
    assert int(props["crmq_score"]) < with_demo
    assert props["crmq_temperature"] != temperature, "the demo request made the person hot"
