"""The diff: only owned, changed fields, under each policy; values compared as CRMs echo them."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_qualify.connector.model import Contact, Decision, Score, Stage, Temperature
from crm_qualify.connector.settings import FieldPolicy, Settings
from crm_qualify.connector.sync.diff import normalise, plan_update

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def decision(stage: Stage = Stage.MQL, total: int = 70) -> Decision:
    return Decision(
        contact_id="1",
        stage=stage,
        computed_stage=stage,
        temperature=Temperature.HOT,
        score=Score(total=total, fit=10, engagement=30, intent=30, grade="B1"),
        rules_version="abc12345",
        scored_at=NOW,
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
