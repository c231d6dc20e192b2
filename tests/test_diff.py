"""The diff: only owned, changed fields, under each policy; values compared as CRMs echo them."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_qualify.connector.model import (
    Contact,
    Decision,
    FieldSource,
    Score,
    Stage,
    Temperature,
)
from crm_qualify.connector.owned_values import cut
from crm_qualify.connector.settings import FieldPolicy, Settings
from crm_qualify.connector.sync.diff import (
    Skip,
    normalise,
    plan_update,
    same,
    source_questions,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def decision(stage: Stage = Stage.MQL, total: int = 70, **extra) -> Decision:
    return Decision(
        contact_id="1",
        stage=stage,
        computed_stage=stage,
        temperature=Temperature.HOT,
        score=Score(total=total, fit=10, engagement=30, intent=30, grade="B1"),
        rules_version="abc12345",
        scored_at=NOW,
        **extra,
    )


def contact(**owned) -> Contact:
    return Contact(id="1", stage=Stage.LEAD, owned=owned)


def current_values(d: Decision) -> dict:
    return d.field_values()


def test_crm_string_forms_compare_equal():
    assert normalise("70") == normalise(70) == normalise(70.0)
    assert normalise("true") is True and normalise("") is None
    assert normalise("a\r\nb ") == normalise("a\nb")


def test_nothing_changed_means_no_update_not_even_scored_at():
    d = decision()
    values = current_values(d)
    values["score"] = "70.0"
    values["scored_at"] = "2026-01-01T00:00:00Z"
    update, skips = plan_update(contact(**values), d, Settings().fields, {})
    assert update is None and skips == []


def test_scored_at_rides_along_with_a_real_change():
    d = decision()
    values = current_values(d)
    values["score"] = 55
    update, _ = plan_update(contact(**values), d, Settings().fields, {})
    assert update is not None
    assert [c.field for c in update.changes] == ["score", "scored_at"]
    assert update.changes[0].old == 55 and update.changes[0].new == 70


def test_never_writes_a_stage_backwards():
    c = Contact(id="1", stage=Stage.SQL, owned={"stage": "sql"})
    update, skips = plan_update(c, decision(stage=Stage.MQL), Settings().fields, {})
    assert update is not None and "stage" not in update.values()
    assert any("backwards" in skip.reason for skip in skips)


def test_unless_edited_uses_the_audit_trail():
    policies = {**Settings().fields, "grade": FieldPolicy(policy="unless_edited")}
    edited = contact(grade="A4")
    update, skips = plan_update(edited, decision(), policies, {"grade": "C3"})
    assert "grade" not in update.values()
    assert skips[0].field == "grade"
    untouched = contact(grade="C3")
    update, _ = plan_update(untouched, decision(), policies, {"grade": "C3"})
    assert update.values()["grade"] == "B1"


def test_unless_edited_keeps_a_field_cleared_since_our_write_and_fills_one_never_written():
    policies = {**Settings().fields, "grade": FieldPolicy(policy="unless_edited")}
    for blank in (None, ""):
        update, skips = plan_update(contact(grade=blank), decision(), policies, {"grade": "C3"})
        assert update is None or "grade" not in update.values()
        assert [(s.field, s.kept) for s in skips] == [("grade", True)]
        assert "cleared it since our last write" in skips[0].reason
        update, _ = plan_update(contact(grade=blank), decision(), policies, {})
        assert update.values()["grade"] == "B1", "empty before our first write: filled"


# highest_stage, customer_type, disqualified -------------------------------------------------
def planned(c: Contact, d: Decision, policies=None, last_written=None) -> dict:
    update, _ = plan_update(c, d, policies or Settings().fields, last_written or {})
    return update.values() if update else {}


def test_highest_stage_rises_with_the_stage():
    d = decision(stage=Stage.SQL)
    values = {**current_values(d), "stage": "mql", "highest_stage": "mql"}
    c = Contact(id="1", stage=Stage.MQL, owned=values)
    assert planned(c, d)["highest_stage"] == "sql"


def test_highest_stage_never_goes_down():
    d = decision(stage=Stage.LEAD)
    for held in ("customer", "opportunity", "sql"):
        c = Contact(id="1", stage=Stage.LEAD, owned={**current_values(d), "highest_stage": held})
        update, skips = plan_update(c, d, Settings().fields, {})
        assert update is None, f"{held} held: nothing to write"
        assert skips == []
    # and when another field changes, the update still leaves it alone
    values = {**current_values(d), "highest_stage": "customer", "score": 12}
    c = Contact(id="1", stage=Stage.LEAD, owned=values)
    assert "highest_stage" not in planned(c, d) and planned(c, d)["score"] == 70


def test_an_unknown_or_absent_highest_stage_counts_as_none():
    d = decision(stage=Stage.MQL)
    for held in ("evangelist", "Marketing Qualified", None, ""):
        values = {**current_values(d), "highest_stage": held}
        c = Contact(id="1", stage=Stage.MQL, owned=values)
        assert planned(c, d) == {"highest_stage": "mql", "scored_at": "2026-11-22T12:00:00Z"}


def test_customer_type_and_disqualified_are_written_only_when_they_change():
    d = decision(stage=Stage.CUSTOMER, customer_type="mixed", disqualified=True)
    same_values = {**current_values(d), "disqualified": "true"}  # as HubSpot echoes it
    update, _ = plan_update(contact(**same_values), d, Settings().fields, {})
    assert update is None
    changed = {**current_values(d), "customer_type": "one_time", "disqualified": False}
    values = planned(contact(**changed), d)
    assert values["customer_type"] == "mixed" and values["disqualified"] is True
    first = {k: v for k, v in current_values(d).items() if k not in ("disqualified",)}
    assert planned(contact(**first), d) == {
        "disqualified": True,
        "scored_at": "2026-11-22T12:00:00Z",
    }, "a field never written before is written"


def test_a_contact_that_is_no_customer_keeps_its_customer_type():
    d = decision(stage=Stage.MQL)
    assert "customer_type" not in d.field_values()
    values = {**current_values(d), "customer_type": "recurring"}
    update, _ = plan_update(contact(**values), d, Settings().fields, {})
    assert update is None, "never cleared"


def test_policies_apply_to_the_new_fields():
    d = decision(stage=Stage.CUSTOMER, customer_type="recurring", disqualified=True)
    values = {
        **current_values(d),
        "highest_stage": "lead",
        "customer_type": "one_time",
        "disqualified": False,
    }
    c = Contact(id="1", stage=Stage.CUSTOMER, owned=values)
    policies = {
        **Settings().fields,
        "highest_stage": FieldPolicy(policy="if_empty"),
        "customer_type": FieldPolicy(policy="unless_edited"),
        "disqualified": FieldPolicy(owned=False),
    }
    update, skips = plan_update(c, d, policies, {"customer_type": "recurring"})
    assert update is None
    assert {skip.field for skip in skips} == {"highest_stage", "customer_type"}
    # the person's edit is no longer there: unless_edited writes again
    values = planned(c, d, policies, {"customer_type": "one_time"})
    assert values["customer_type"] == "recurring" and "disqualified" not in values
    assert "highest_stage" not in values
    blank = Contact(id="1", stage=Stage.CUSTOMER, owned={**c.owned, "highest_stage": None})
    assert planned(blank, d, policies)["highest_stage"] == "customer", "if_empty fills a blank"


# who set a value: people's edits are kept ---------------------------------------------------
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def sourced(stage: Stage = Stage.LEAD, sources: dict | None = None, **owned) -> Contact:
    return Contact(id="1", stage=stage, owned=owned, owned_sources=sources or {})


def by(who: str, value, previous=None) -> FieldSource:
    return FieldSource(by=who, at=AT, value=value, previous=previous)


def test_unless_edited_keeps_what_a_person_set_before_our_first_write():
    policies = {**Settings().fields, "temperature": FieldPolicy(policy="unless_edited")}
    person = sourced(temperature="cold", sources={"temperature": by("person", "cold")})
    update, skips = plan_update(person, decision(), policies, {})
    assert "temperature" not in update.values()
    assert skips == [
        Skip("temperature", "policy unless_edited: a person set it on 2026-11-20", True)
    ]
    workflow = sourced(temperature="cold", sources={"temperature": by("automation", "cold")})
    assert planned(workflow, decision(), policies)["temperature"] == "hot"
    stale = sourced(temperature="cold", sources={"temperature": by("person", "warm")})
    assert planned(stale, decision(), policies)["temperature"] == "hot", "about another value"
    ours = sourced(temperature="cold", sources={"temperature": by("person", "cold")})
    assert planned(ours, decision(), policies, {"temperature": "cold"})["temperature"] == "hot"


def test_a_stage_moved_back_stays_until_the_contact_goes_past_it():
    moved = sourced(stage=Stage.LEAD, highest_stage="mql")
    moved.owned["stage"] = "lead"
    update, skips = plan_update(moved, decision(stage=Stage.MQL), Settings().fields, {})
    assert update is None or "stage" not in update.values()
    (skip,) = [s for s in skips if s.field == "stage"]
    assert skip.kept and "moved the stage back from mql to lead" in skip.reason
    assert planned(moved, decision(stage=Stage.SQL))["stage"] == "sql", "past it: written"
    first_sight = sourced(stage=Stage.LEAD, sources={"stage": by("person", "lead", "mql")})
    first_sight.owned["stage"] = "lead"
    _, skips = plan_update(first_sight, decision(stage=Stage.MQL), Settings().fields, {})
    assert any(
        "a person moved the stage back from mql to lead on 2026-11-20" in s.reason for s in skips
    )
    nobody = sourced(stage=Stage.LEAD, highest_stage="lead")
    nobody.owned["stage"] = "lead"
    assert planned(nobody, decision(stage=Stage.MQL))["stage"] == "mql"


def test_a_stage_someone_cleared_stays_empty_until_the_contact_goes_past_it():
    """HubSpot moves a stage back only once a person clears it: a run in between must not
    put the old stage back (nor hand the contact over again, see the engine's test)."""
    cleared = Contact(id="1", stage=None, owned={"highest_stage": "sql"})
    update, skips = plan_update(cleared, decision(stage=Stage.SQL), Settings().fields, {})
    assert update is None or "stage" not in update.values()
    (skip,) = [s for s in skips if s.field == "stage"]
    assert skip.kept and "cleared the stage (it was sql)" in skip.reason
    ours = Contact(id="1", stage=None, owned={})
    _, skips = plan_update(ours, decision(stage=Stage.MQL), Settings().fields, {"stage": "mql"})
    assert any("cleared the stage (it was mql)" in s.reason for s in skips)
    assert planned(cleared, decision(stage=Stage.OPPORTUNITY))["stage"] == "opportunity"
    never = Contact(id="1", stage=None, owned={})
    assert planned(never, decision(stage=Stage.SQL))["stage"] == "sql", "never had one"


def test_history_is_asked_for_only_where_the_plan_hinges_on_it():
    lead = sourced(stage=Stage.LEAD, temperature="cold")
    lead.owned["stage"] = "lead"
    always = {**Settings().fields, "temperature": FieldPolicy(policy="always")}
    assert source_questions(lead, decision(), always, {}) == []
    assert source_questions(lead, decision(), Settings().fields, {}) == ["temperature"], (
        "by default a temperature (a rep's Rating) is kept if a person set it: who did?"
    )
    policies = {
        **Settings().fields,
        "stage": FieldPolicy(policy="unless_edited"),
        "temperature": FieldPolicy(policy="unless_edited"),
    }
    assert source_questions(lead, decision(), policies, {}) == ["stage", "temperature"]
    assert source_questions(lead, decision(), policies, {"temperature": "warm"}) == ["stage"]
    moved = sourced(stage=Stage.LEAD, highest_stage="mql")
    moved.owned["stage"] = "lead"
    assert source_questions(moved, decision(), Settings().fields, {}) == ["stage"], "to name who"
    moved.owned_sources["stage"] = by("person", "lead")
    assert source_questions(moved, decision(), Settings().fields, {}) == []


def test_a_value_whose_setter_could_not_be_checked_waits():
    policies = {**Settings().fields, "temperature": FieldPolicy(policy="unless_edited")}
    update, skips = plan_update(
        sourced(temperature="cold"), decision(), policies, {}, None, {"temperature": "HTTP 502"}
    )
    assert "temperature" not in update.values()
    assert skips[0].reason == "who set it could not be checked (HTTP 502); next run"


def test_a_text_the_crm_holds_cut_to_its_field_is_the_text_we_decided():
    """We wrote the whole text, the CRM holds it cut to its field's length ("…" last):
    writing it again would write the same characters, so it is no change (and still ours)."""
    whole = "+40 demo request 2026-11-21\n+15 meeting booked " + "x" * 100
    assert same(cut(whole, 80), whole) and same(whole, cut(whole, 80))
    assert not same(cut(whole, 80), "+40 demo request 2026-11-22" + "x" * 100)
    assert not same("+40 demo…", "+40 demo"), "not longer: not cut from it"
