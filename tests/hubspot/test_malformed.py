"""Malformed HubSpot values never crash a read: each is a per-record error naming the record
and the HubSpot property, or a documented harmless normalisation (`why`), and the other
records of the batch still come through.

Every case is injected into the simulator's store (any JSON value, as a proxy or a broken
import could send), read back over a real socket by the adapter, and translated by calling
`translate()` on the adapter's `RawContact`s, each in its own guard as the engine does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.reader import ChangeReader, Cursor, epoch_ms
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.contract import RecordError
from crm_qualify.connector.crm_clock import CrmClock
from crm_qualify.connector.model import Contact, CriterionStatus, EventType, Origin

from tests.hubspot.conftest import FAST, contact_properties_only, make_adapter, translate_all

WHEN = "2025-05-01T10:00:00.000Z"
WHEN_MS = 1_746_093_600_000  # the same instant in epoch milliseconds
SCRIPT = "<script>alert('x')</script>"


@dataclass(frozen=True)
class Case:
    """Property values put on one contact, and what reading it must give: an error naming
    `error` (a HubSpot property), or a contact that passes `check` for the reason `why`."""

    name: str
    values: dict[str, Any]
    error: str | None = None
    check: Callable[[Contact], bool] | None = None
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def event(contact: Contact, kind: EventType) -> Any:
    return next((e for e in contact.events if e.type is kind), None)


def err(name: str, prop: str, value: Any, **extra: Any) -> Case:
    return Case(name, {prop: value, **extra}, error=prop)


def ok(name: str, values: dict[str, Any], check: Callable[[Contact], bool], why: str) -> Case:
    return Case(name, values, check=check, why=why)


OPEN = {"hs_email_last_open_date": WHEN}
CASES = [
    # engagement counters
    ok("counter as an integer", {"hs_email_open": 7, **OPEN},
       lambda c: event(c, EventType.EMAIL_OPEN).count == 7, "a JSON number is read as its value"),
    ok("counter as a float string", {"hs_email_open": "3.0", **OPEN},
       lambda c: event(c, EventType.EMAIL_OPEN).count == 3, "HubSpot numbers may carry '.0'"),
    ok("negative counter", {"hs_email_open": "-4", **OPEN},
       lambda c: event(c, EventType.EMAIL_OPEN) is None, "a negative counter counts nothing"),
    err("non-numeric counter", "hs_email_open", "lots", **OPEN),
    err("counter beyond a float", "hs_email_open", "1e400", **OPEN),
    err("implausibly large counter", "hs_email_open", "99999999999", **OPEN),
    err("20-digit integer counter", "hs_analytics_num_page_views", 10**20),
    err("boolean counter", "hs_email_click", True),
    err("object as a counter", "hs_email_click", {"n": 1}),
    err("list as a counter", "hs_analytics_num_page_views", [1, 2]),
    err("NaN counter", "hs_email_open", "nan", **OPEN),
    err("infinite counter", "hs_email_open", "Infinity", **OPEN),
    # timestamps
    ok("integer epoch timestamp", {"hs_email_open": "2", "hs_email_last_open_date": WHEN_MS},
       lambda c: event(c, EventType.EMAIL_OPEN).at == datetime(2025, 5, 1, 10, tzinfo=UTC),
       "an integer datetime is epoch milliseconds"),
    ok("naive ISO timestamp", {"hs_sales_email_last_replied": "2025-05-01T10:00:00"},
       lambda c: event(c, EventType.EMAIL_REPLY).at.tzinfo is not None, "read as UTC"),
    ok("date without time", {"hs_sales_email_last_replied": "2025-05-01"},
       lambda c: event(c, EventType.EMAIL_REPLY).at.day == 1, "midnight UTC"),
    ok("integer last-modified date", {"lastmodifieddate": WHEN_MS},
       lambda c: c.updated_at.year == 2025, "an integer datetime is epoch milliseconds"),
    err("20-digit epoch string", "hs_email_last_open_date", "12345678901234567890"),
    err("20-digit epoch integer", "hs_sales_email_last_replied", 12345678901234567890),
    err("words as a date", "hs_email_last_open_date", "last tuesday"),
    err("impossible date", "hs_email_last_click_date", "2024-13-45T00:00:00Z"),
    err("end-of-calendar placeholder", "engagements_last_meeting_booked", "9999-12-31T00:00:00Z"),
    err("a date decades ahead", "hs_email_last_open_date", "2099-06-01T00:00:00Z"),
    err("epoch of 9999-12-31", "hs_sales_email_last_replied", "253402214400000"),
    err("epoch with a fraction", "engagements_last_meeting_booked", "1700000000000.5"),
    err("negative epoch string", "hs_sales_email_last_replied", "-1000"),
    err("boolean date", "hs_analytics_last_visit_timestamp", False),
    err("object as a date", "recent_conversion_date", {"at": WHEN}),
    err("full-width digits as a date", "first_conversion_date", "１７００００"),
    err("bad create date", "createdate", "yesterday"),
    # company size
    ok("integer employee count", {"numemployees": 250}, lambda c: c.employees == 250,
       "a count where HubSpot has a bucket is that size"),
    ok("integral float employee count", {"numemployees": 12.0}, lambda c: c.employees == 12,
       "a count where HubSpot has a bucket is that size"),
    err("unknown bucket", "numemployees", "lots"),
    err("text after a count", "numemployees", "250 or so"),
    err("implausibly large employee count", "numemployees", "9" * 22),
    ok("open-ended bucket", {"numemployees": "1000+"}, lambda c: c.employees == 1000,
       "a bucket's lower bound"),
    ok("bucket with separators", {"numemployees": "1,000-5,000"}, lambda c: c.employees == 1000,
       "a bucket's lower bound"),
    err("fractional employee count", "numemployees", 12.5),
    err("negative employee count", "numemployees", -3),
    err("boolean employee count", "numemployees", True),
    err("list as employee count", "numemployees", ["100-500"]),
    # buying role and qualification
    ok("integer buying role", {"hs_buying_role": 5}, lambda c: "authority" not in c.qualification,
       "a number is no known role"),
    ok("unknown role beside a known one", {"hs_buying_role": "DECISION_MAKER;ALIEN"},
       lambda c: c.qualification.get("authority") is CriterionStatus.MET,
       "roles not in the mapping are ignored"),
    err("list as buying role", "hs_buying_role", ["DECISION_MAKER"]),
    err("unknown qualification answer", "qualification_need", "maybe"),
    err("integer qualification answer", "qualification_budget", 1),
    err("boolean qualification answer", "qualification_timing", True),
    # enumerations
    ok("custom lifecycle stage", {"lifecyclestage": "evangelist"},
       lambda c: c.stage is None and c.owned["stage"] == "evangelist",
       "a stage not in the mapping is kept as the CRM's text and never overwritten"),
    ok("integer lifecycle stage", {"lifecyclestage": 3}, lambda c: c.stage is None,
       "a number is no known stage"),
    err("object as lifecycle stage", "lifecyclestage", {"value": "lead"}),
    ok("unknown traffic source", {"hs_analytics_source": "ALIENS"},
       lambda c: c.origin is Origin.UNKNOWN, "sources not in the mapping are unknown"),
    err("list as traffic source", "hs_analytics_source", ["ORGANIC_SEARCH"]),
    err("yes as opt-out", "hs_email_optout", "yes"),
    ok("boolean opt-out", {"hs_email_optout": True}, lambda c: c.unsubscribed,
       "a JSON boolean is its value"),
    ok("upper-case opt-out", {"hs_email_optout": "TRUE"}, lambda c: c.unsubscribed,
       "true/false in any case"),
    ok("number as bounce reason", {"hs_email_hard_bounce_reason_enum": 0},
       lambda c: c.hard_bounced, "any value of the bounce property is a bounce"),
    # text
    ok("script in a first name", {"firstname": SCRIPT}, lambda c: c.first_name == SCRIPT,
       "names are text: kept verbatim, never rendered as HTML"),
    ok("quotes in a last name", {"lastname": "O'Brien \"the\" `x`"},
       lambda c: c.last_name == "O'Brien \"the\" `x`", "kept verbatim"),
    ok("huge first name", {"firstname": "A" * 100_000}, lambda c: len(c.first_name) == 100_000,
       "kept whole; task subjects are cut at 255"),
    ok("number as a first name", {"firstname": 42}, lambda c: c.first_name == "42",
       "a JSON number is read as its text"),
    ok("null email", {"email": None}, lambda c: c.email is None, "null is no value"),
    err("object as a first name", "firstname", {"first": "Ann"}),
    err("boolean company", "company", False),
    ok("number as a conversion name", {"recent_conversion_event_name": 123,
                                       "recent_conversion_date": WHEN},
       lambda c: event(c, EventType.FORM_SUBMISSION).detail == "123", "read as its text"),
    ok("script in a conversion name", {"recent_conversion_event_name": SCRIPT + " demo",
                                       "recent_conversion_date": WHEN},
       lambda c: event(c, EventType.DEMO_REQUEST) is not None, "matched as text"),
    # owned values
    ok("score as text", {"crmq_score": "17"}, lambda c: c.owned["score"] == "17",
       "HubSpot's own text is kept, so a rollback restores it exactly"),
    ok("score as an integer", {"crmq_score": 17}, lambda c: c.owned["score"] == "17",
       "a JSON number is read as HubSpot's text"),
    ok("score as an integral float", {"crmq_score": 17.0}, lambda c: c.owned["score"] == "17",
       "integral numbers render without '.0'"),
    ok("huge finite score", {"crmq_fit_score": "1e300"},
       lambda c: c.owned["fit_score"] == "1e300", "kept; the next write replaces it"),
    err("non-numeric score", "crmq_score", "abc"),
    err("infinite score", "crmq_intent_score", "1e999"),
    ok("unknown temperature", {"crmq_temperature": "tepid"},
       lambda c: c.owned["temperature"] == "tepid", "kept as the CRM's text"),
    err("maybe as re-nurture", "crmq_renurture", "maybe"),
    err("garbage scored-at", "crmq_scored_at", "garbage"),
    ok("integer scored-at", {"crmq_scored_at": WHEN_MS},
       lambda c: c.owned["scored_at"] == WHEN, "an integer datetime is epoch milliseconds"),
]  # fmt: skip


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[HubSpotSimulator, HubSpotAdapter, list[str]]]:
    with HubSpotSimulator(contacts=len(CASES) + 20, seed=4, custom_properties=True, **FAST) as sim:
        ids = sorted(sim.store.objects["contacts"])
        for contact_id in ids:
            reset(sim, contact_id)
        yield sim, make_adapter(sim, contact_properties_only()), ids


def reset(sim: HubSpotSimulator, contact_id: str, **values: Any) -> None:
    """A plain contact (so checks do not depend on seeded data) with `values` on top."""
    sim.store.objects["contacts"][contact_id]["properties"] = {
        "email": f"c{contact_id}@example.com",
        "createdate": "2024-01-01T00:00:00.000Z",
        "lastmodifieddate": WHEN,
        "hs_object_id": contact_id,
        **values,
    }


def read(adapter: HubSpotAdapter, ids: list[str]) -> tuple[dict[str, Contact], list[RecordError]]:
    contacts, errors = translate_all(adapter.read_contacts([("contacts", i) for i in ids]))
    return {c.id: c for c in contacts}, errors


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_malformed_value_is_a_named_error_or_a_documented_normalisation(portal, case):
    sim, adapter, ids = portal
    target, neighbours = ids[20 + CASES.index(case)], ids[:2]
    reset(sim, target, **case.values)
    contacts, errors = read(adapter, [neighbours[0], target, neighbours[1]])
    assert set(neighbours) <= set(contacts), "the other records come through"
    if case.error:
        (error,) = errors
        assert (error.record, error.field) == (f"contacts/{target}", case.error)
        assert target not in contacts
    else:
        assert not errors, errors
        assert case.check(contacts[target]), case.why


def test_all_cases_in_one_batch_each_record_on_its_own(portal):
    sim, adapter, ids = portal
    targets = dict(zip(ids[20:], CASES, strict=False))
    for contact_id, case in targets.items():
        reset(sim, contact_id, **case.values)
    contacts, errors = read(adapter, ids)
    failed = {e.record.split("/")[1]: e.field for e in errors}
    assert failed == {i: c.error for i, c in targets.items() if c.error}
    assert set(contacts) == set(ids) - set(failed)
    assert len(CASES) >= 55


def test_a_row_without_id_and_a_repeated_row_fail_only_their_records(portal):
    """A batch-read row without `id` is ignored and a repeated row is read once (the first
    wins): the ids left without an answer are transient errors, re-read next run."""
    sim, adapter, ids = portal
    plain = ids[2:6]
    for contact_id in plain:
        reset(sim, contact_id)
    records = sim.store.objects["contacts"]
    records[plain[1]]["id"] = None
    records[plain[2]]["id"] = plain[3]
    try:
        contacts, errors = read(adapter, plain)
    finally:
        records[plain[1]]["id"], records[plain[2]]["id"] = plain[1], plain[2]
    assert set(contacts) == {plain[0], plain[3]}
    assert {e.record for e in errors} == {f"contacts/{plain[1]}", f"contacts/{plain[2]}"}
    assert all(e.transient and e.key == ("contacts", e.record.split("/")[1]) for e in errors)


def test_unreadable_deal_and_task_values_leave_the_contact_readable(portal):
    """Deals and tasks are context: an unreadable amount, date or key is left out."""
    sim, adapter, _ = portal
    contact_id = next(
        i
        for i in sorted(sim.store.objects["contacts"])
        if sim.store.associations("contacts", i, "deals")
    )
    reset(sim, contact_id)  # the corpus may have spoiled it: only its deal is spoiled here
    deal_id = sim.store.associations("contacts", contact_id, "deals")[0]
    deal = sim.store.objects["deals"][deal_id]["properties"]
    saved = dict(deal)
    deal.update(amount="a lot", closedate="soon", hs_mrr=[1], dealstage={"x": 1})
    try:
        contacts, errors = read(adapter, [contact_id])
    finally:
        deal.clear()
        deal.update(saved)
    assert not errors
    (read_deal,) = [d for d in contacts[contact_id].deals if d.id == deal_id]
    assert (read_deal.amount, read_deal.closed_at, read_deal.status) == (None, None, "open")


class Pages:
    """A client stand-in that answers searches with scripted pages (rows HubSpot's own search
    would not produce, so the simulator cannot serve them)."""

    def __init__(self, *pages: list[dict[str, Any]]) -> None:
        self.pages = list(pages)
        self.search_api = SimpleNamespace(do_search=None)
        self.crm_clock = CrmClock()

    def call(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"results": self.pages.pop(0) if self.pages else []}


def test_odd_rows_in_a_search_page_never_stop_or_rewind_the_reader():
    """Rows without a numeric id are skipped (pages go by id); a row with an unreadable
    `lastmodifieddate` is read all the same, and the finished search moves the cursor to
    the end of its window."""
    rows = [
        {"id": "11", "properties": {"lastmodifieddate": WHEN}},
        {"properties": {"lastmodifieddate": WHEN}},
        {"id": "x7", "properties": {"lastmodifieddate": WHEN}},
        {"id": "12", "properties": {"lastmodifieddate": "garbage"}},
        {"id": "13", "properties": None},
        "not a row",
    ]
    reader = ChangeReader(Pages(rows), "contacts", 0)
    (first, last) = list(reader.changed(Cursor(since=0), datetime(2026, 1, 1, tzinfo=UTC)))
    until_ms = epoch_ms(datetime(2026, 1, 1, tzinfo=UTC))
    assert first == (["11", "12", "13"], Cursor(since=until_ms, activity=0))
    assert last[0] == [] and last[1].since > WHEN_MS


@pytest.mark.parametrize(
    ("value", "says"),
    [(-40, "a company size cannot be negative: -40"), (12.5, "not a whole number: 12.5")],
)
def test_a_bad_company_size_says_what_is_wrong_with_it(portal, value, says):
    sim, adapter, ids = portal
    reset(sim, ids[10], numemployees=value)
    _, (error,) = read(adapter, [ids[10]])
    assert (error.field, error.message) == ("numemployees", f"numemployees: {says}")
