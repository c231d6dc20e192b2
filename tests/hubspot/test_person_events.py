"""A person's activities counted once each, over a real socket against the simulator: two
calls logged at the same second on one record of a duplicate group are two calls, an
engagement associated with both records is one, and so after a merge in HubSpot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.schema_engagement import CONTACT_LINK_TYPES
from crm_qualify.adapters.hubspot.simulator.values import now_ms
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.hubspot.conftest import FAST, make_adapter

PERSON = {"firstname": "Birte", "lastname": "Halvorsen", "phone": "+47 22 33 44 55"}


def contact(sim: HubSpotSimulator, email: str) -> str:
    with sim.store.lock:
        return sim.store.create("contacts", {"email": email, **PERSON}, now_ms())["id"]


def log_twice(sim: HubSpotSimulator, kind: str, contact_id: str, props: dict, at: int) -> None:
    """Two activities of one kind logged at the same second."""
    for _ in range(2):
        sim.log_activity(kind, contact_id, props | {"hs_timestamp": str(at)})


def scored(sim: HubSpotSimulator, contact_id: str) -> tuple[str, str]:
    props = sim.store.objects["contacts"][contact_id]["properties"]
    return props.get("crmq_score"), props.get("crmq_reasons")


def test_two_calls_at_one_second_count_twice_on_a_record_of_a_group(tmp_path):
    with HubSpotSimulator(contacts=20, seed=4, custom_properties=True, **FAST) as sim:
        b1 = contact(sim, "birte@fjordline.example")
        b2 = contact(sim, "b.halvorsen@gmail.com")
        at = (now_ms() - 3_600_000) // 1000 * 1000
        log_twice(sim, "meetings", b1, {"hs_meeting_outcome": "SCHEDULED"}, at)
        log_twice(sim, "emails", b2, {"hs_email_direction": "INCOMING_EMAIL"}, at)
        log_twice(sim, "calls", b2, {"hs_call_status": "COMPLETED"}, at)
        note = sim.log_activity(
            "notes", b1, {"hs_note_body": "Badge scan at booth 4", "hs_timestamp": str(at)}
        )
        with sim.store.lock:  # one note about the person, filed on both records
            sim.store.associate("notes", note, "contacts", b2, (CONTACT_LINK_TYPES["notes"][1],))
        store = StateStore(tmp_path / "state.sqlite")
        engine = SyncEngine(make_adapter(sim), Settings(crm=CrmSettings(adapter="hubspot")), store)
        assert (run := engine.run(RunOptions())).status == "ok", run.errors

        for record in (b1, b2):
            score, reasons = scored(sim, record)
            assert score == "65", reasons
            assert "+10 call x2" in reasons and "+20 email reply x2" in reasons
            assert "+30 meeting booked x2" in reasons
            assert "+5 event badge scan" in reasons and "badge scan x" not in reasons

        merged = sim.merge_contacts(b1, b2)
        later = datetime.now(UTC) + timedelta(milliseconds=5)
        assert (run := engine.run(RunOptions(now=later))).status == "ok", run.errors
        score, reasons = scored(sim, merged)
        assert score == "65", f"the merged contact carries the same activities: {reasons}"
        assert "+10 call x2" in reasons and "badge scan x" not in reasons
        store.close()
