"""Engagement from HubSpot's own objects, deals and companies (issue 11), through the adapter
and the engine over a real socket against the simulator: the brief's 10 + 20 + 40 example,
a deal closing, a contact whose fit comes from its company, a logged meeting, and a portal
that refuses the forms and marketing events scopes.

One simulator and one state store serve the module: the first sync runs once (`synced`); each
test then changes its own contacts and runs an incremental sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.reader import Cursor
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.auth import DEFAULT_SCOPES
from crm_qualify.adapters.hubspot.simulator.values import DAY_MS, now_ms
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import compile_rules, score_contact
from crm_qualify.connector.model import EventType
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST, make_adapter, translate_all


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(contacts=120, seed=5, custom_properties=True, **FAST) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def engine(sim: HubSpotSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = StateStore(tmp_path_factory.mktemp("engagement") / "state.sqlite")
    engine = SyncEngine(make_adapter(sim), Settings(crm=CrmSettings(adapter="hubspot")), store)
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    yield engine
    store.close()


def run(engine: Any) -> Any:
    """A sync that starts a moment after the changes a test made (the portal stamps
    milliseconds: a change in the run's own first millisecond is the next run's)."""
    summary = engine.run(RunOptions(now=datetime.now(UTC) + timedelta(milliseconds=5)))
    assert summary.status == "ok", summary.errors
    return summary


def new_contact(sim: HubSpotSimulator, email: str, at: int | None = None, **props: str) -> str:
    with sim.store.lock:
        base = {"email": email, "firstname": "Dana", "hs_analytics_source": "ORGANIC_SEARCH"}
        return sim.store.create("contacts", base | props, at or now_ms())["id"]


def props(sim: HubSpotSimulator, contact_id: str) -> dict[str, str]:
    return sim.store.objects["contacts"][contact_id]["properties"]


def test_the_briefs_download_webinar_and_demo_score_70_and_hot(sim, engine):
    contact = new_contact(sim, "dana.brief@northwind-labs.com", lifecyclestage="lead")
    now = now_ms()
    sim.submit_form("Whitepaper: Security Guide", contact, at=now - 3 * DAY_MS)
    sim.record_participation("Q3 Roadmap", contact, "ATTENDED", at=now - 2 * DAY_MS)
    sim.submit_form("Demo request", contact, at=now - 3_600_000)
    run(engine)
    written = props(sim, contact)
    assert written["crmq_score"] == "70"
    assert written["crmq_temperature"] == "hot"
    reasons = written["crmq_reasons"]
    assert "+40" in reasons and "+20" in reasons and "+10" in reasons
    assert "form submission" not in reasons, "each submission is counted once, as its form"


def test_a_deal_closing_makes_its_contact_a_customer_on_the_next_run(sim, engine):
    won = next(
        s["id"]
        for p in sim.store.pipelines
        for s in p["stages"]
        if s["metadata"]["isClosed"] == "true" and float(s["metadata"]["probability"]) >= 1
    )
    contact = new_contact(sim, "sam.buyer@acme-metrics.io", lifecyclestage="opportunity")
    with sim.store.lock:
        deal = sim.store.create(
            "deals",
            {"dealname": "Acme", "pipeline": "default", "dealstage": "appointmentscheduled"},
            now_ms(),
        )
        sim.store.associate("deals", deal["id"], "contacts", contact, (3,))
    run(engine)
    assert props(sim, contact)["lifecyclestage"] == "opportunity"
    stamp = props(sim, contact)["lastmodifieddate"]
    with sim.store.lock:
        sim.store.update("deals", deal["id"], {"dealstage": won}, now_ms(), human=True)
    assert props(sim, contact)["lastmodifieddate"] == stamp, "the contact itself is untouched"
    run(engine)
    assert props(sim, contact)["lifecyclestage"] == "customer"


def test_a_contact_without_company_fields_gets_its_fit_from_its_primary_company(sim):
    with sim.store.lock:
        company = sim.store.create(
            "companies",
            {
                "name": "Quantsoft",
                "industry": "COMPUTER_SOFTWARE",
                "numberofemployees": "250",
                "country": "Germany",
            },
            now_ms(),
        )["id"]
        other = sim.store.create("companies", {"name": "Side Gig", "industry": "RETAIL"}, now_ms())
    contact = new_contact(sim, "lena.cto@quantsoft.de", jobtitle="CTO")
    with sim.store.lock:
        sim.store.associate("contacts", contact, "companies", other["id"], (279,))
        sim.store.associate("contacts", contact, "companies", company, (1, 279))
    adapter = make_adapter(sim)
    (read,), errors = translate_all(adapter.read_contacts([("contacts", contact)]))
    assert not errors
    assert (read.company, read.industry, read.employees, read.country) == (
        "Quantsoft",
        "Computer Software",
        250,
        "Germany",
    )
    rules = Rules.model_validate(
        {
            "fit": {
                "industries": {"Computer Software": 15},
                "countries": {"Germany": 5},
                "company_size": [{"min": 50, "max": 5000, "points": 10}],
            }
        }
    )
    assert score_contact(read, compile_rules(rules), datetime.now(UTC)).score.fit == 30
    own = new_contact(sim, "kim@quantsoft.de", industry="Retail")
    with sim.store.lock:
        sim.store.associate("contacts", own, "companies", company, (1, 279))
    (kept,), _ = translate_all(adapter.read_contacts([("contacts", own)]))
    assert kept.industry == "Retail" and kept.country == "Germany", "its own value stays"


def test_a_meeting_logged_on_an_unchanged_contact_is_read_by_the_next_incremental_read(sim):
    adapter = make_adapter(sim, lookback_seconds=0)
    since = now_ms()
    contact = new_contact(sim, "omar@harborgrid.com", at=since - 60_000)
    stamp = props(sim, contact)["lastmodifieddate"]
    meeting = sim.log_activity(
        "meetings", contact, {"hs_meeting_outcome": "SCHEDULED", "hs_timestamp": str(since)}
    )
    sim.log_activity("calls", contact, {"hs_call_status": "NO_ANSWER", "hs_timestamp": str(since)})
    assert props(sim, contact)["lastmodifieddate"] == stamp
    cursor = Cursor(since=since - 1, activity=since - 1).dump()
    until = datetime.now(UTC) + timedelta(milliseconds=5)
    found, errors = translate_all(adapter.read_changed(cursor, until=until))
    assert not errors
    read = next(c for c in found if c.id == contact)
    kinds = [e.type for e in read.events]
    assert kinds == [EventType.MEETING_BOOKED], "an unanswered call is the rep's, not the contact's"
    assert sim.store.associations("meetings", meeting, "contacts") == [contact]


def test_a_portal_without_the_forms_and_events_scopes_falls_back_to_the_contact_summaries():
    scopes = [s for s in DEFAULT_SCOPES]
    with HubSpotSimulator(contacts=40, seed=8, scopes=scopes, **FAST) as narrow:
        adapter = make_adapter(narrow)
        checks = {c.name: c for c in adapter.check()}
        assert not checks["source forms"].ok and "forms scope" in checks["source forms"].detail
        assert not checks["source marketing_events"].ok
        assert checks["source calls"].ok
        contacts, errors = translate_all(adapter.read_changed(None, until=datetime.now(UTC)))
        assert not errors
        converted = [c for c in contacts if props(narrow, c.id).get("recent_conversion_event_name")]
        assert converted, "the seed has contacts with conversions"
        for contact in converted:
            names = {e.detail for e in contact.events}
            assert props(narrow, contact.id)["recent_conversion_event_name"] in names


def test_doctor_asks_each_stream_for_one_row_not_its_history(sim):
    """Doctor checks that the portal serves forms and marketing events with a one-row page of
    each and of its first form's submissions or event's participations; reading every
    form's history is a sync's job (into the state file's index), not a health check's."""
    adapter = make_adapter(sim)
    checks = {c.name: c for c in adapter.check()}
    assert checks["source forms"].ok and checks["source marketing_events"].ok
    used = adapter.usage().requests
    for endpoint in (
        "GET forms",
        "GET form submissions",
        "GET marketing events",
        "GET marketing event participations",
    ):
        assert used.get(endpoint) == 1, (endpoint, used)
