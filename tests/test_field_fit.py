"""The core's rule for whether a CRM field can hold what crm-qualify writes to it, on fields
described in canonical terms (`FieldInfo.kind`); the same for every adapter."""

from __future__ import annotations

from crm_qualify.adapters.hubspot.setup import CONTACT_PROPERTIES
from crm_qualify.adapters.hubspot.translate import ContactMapping, field_info
from crm_qualify.adapters.salesforce.translate import field_info as salesforce_field
from crm_qualify.connector.contract import FieldInfo
from crm_qualify.connector.decision.scoring import GRADES
from crm_qualify.connector.field_fit import fit_checks, misfit_error, misfits
from crm_qualify.connector.mapping import load_mapping

OWNED = ContactMapping.from_document(load_mapping("hubspot"), "contacts").owned
STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
          "customer", "evangelist", "other")  # fmt: skip


def portal(**changed: FieldInfo) -> dict[str, FieldInfo]:
    """The properties `setup` creates, lifecyclestage, and `changed` in their place."""
    fields = {
        name: field_info({"name": name, **definition})
        for name, definition in CONTACT_PROPERTIES.items()
    }
    fields["lifecyclestage"] = FieldInfo(
        "lifecyclestage", "enumeration", options=STAGES, kind="choice"
    )
    return fields | {info.name: info for info in changed.values()}


def test_the_properties_setup_creates_hold_everything_written():
    assert misfits("contacts", OWNED, portal()) == []
    (check,) = fit_checks("contacts", OWNED, portal())
    assert check.ok and check.name == "contacts owned fields fit"


def test_an_enumeration_without_our_values_is_named_with_its_options_and_the_fix():
    abc = FieldInfo("crmq_temperature", "enumeration", options=("a", "b", "c"), kind="choice")
    (misfit,) = misfits("contacts", OWNED, portal(t=abc))
    assert misfit.line() == (
        "objects.contacts.fields.temperature = crmq_temperature: enumeration with options"
        " a, b, c; crm-qualify writes one of cold, warm, hot (cold, warm, hot: no option)"
    )
    assert misfit.fix.startswith("add the option(s) cold, warm, hot to crmq_temperature")
    assert misfit.fix.endswith("or set [fields.temperature] owned = false")


def test_a_read_only_field_and_one_of_another_kind_are_named():
    read_only = FieldInfo("crmq_grade", "string", writable=False, kind="text")
    number = FieldInfo("crmq_reasons", "number", kind="number")
    dated = FieldInfo("crmq_scored_at", "date", kind="date")
    found = {m.name: m for m in misfits("contacts", OWNED, portal(a=read_only, b=number, c=dated))}
    assert set(found) == {"grade", "reasons", "scored_at"}
    assert found["grade"].holds == "string, read-only"
    assert found["grade"].fix == (
        "map grade to a field crm-qualify can write, or set [fields.grade] owned = false"
    )
    assert (found["reasons"].holds, found["reasons"].writes) == ("number", "text")
    assert found["reasons"].fix.startswith("map reasons to a text field")
    assert found["scored_at"].writes == "date and time"
    error = str(misfit_error(list(found.values())))
    assert "nothing was read or written" in error and "objects.contacts.fields.reasons" in error


def test_text_holds_any_value_and_a_choice_holds_the_values_it_lists():
    fits = portal(
        score=FieldInfo("crmq_score", "string", kind="text"),
        grade=FieldInfo("crmq_grade", "enumeration", options=GRADES, kind="choice"),
        flag=FieldInfo("crmq_renurture", "enumeration", options=("true", "false"), kind="choice"),
        lookup=FieldInfo("crmq_reasons", "object_coordinates"),
    )
    assert misfits("contacts", OWNED, fits) == []
    numbers = FieldInfo("crmq_score", "enumeration", options=("1", "2"), kind="choice")
    (misfit,) = misfits("contacts", OWNED, portal(s=numbers))
    assert misfit.writes == "number" and misfit.fix.startswith("map score to a number field")


def test_only_the_fields_the_configuration_owns_are_judged():
    no_mql = FieldInfo("lifecyclestage", "enumeration", options=("lead",), kind="choice")
    assert [m.name for m in misfits("contacts", OWNED, portal(s=no_mql))] == ["stage"]
    owned = {"score", "temperature"}
    assert misfits("contacts", OWNED, portal(s=no_mql), owned) == []


def test_a_salesforce_picklist_that_is_not_restricted_takes_any_text():
    values = [{"value": "Hot", "active": True}, {"value": "Warm", "active": False}]
    field = {"name": "Rating", "type": "picklist", "updateable": True, "picklistValues": values}
    assert salesforce_field(field).kind == "text"
    restricted = salesforce_field({**field, "restrictedPicklist": True})
    assert (restricted.kind, restricted.options) == ("choice", ("Hot",))


def test_a_text_field_shorter_than_our_text_is_a_warning_naming_key_field_and_length():
    """The write lands, cut to the field's length (Salesforce's describe `length`): doctor
    warns, the sync does not stop; a field long enough, or of unknown length, says nothing."""
    short = salesforce_field(
        {"name": "crmq_reasons", "type": "textarea", "length": 80, "updateable": True}
    )
    assert short.length == 80 and short.kind == "text"
    assert misfits("contacts", OWNED, portal(r=short)) == []
    checks = fit_checks("contacts", OWNED, portal(r=short))
    assert [c.ok for c in checks] == [True, True]
    note = checks[1]
    assert note.warn and note.name == "objects.contacts.fields.reasons = crmq_reasons"
    assert note.detail == (
        "textarea of 80 characters: a longer reasons text is cut to 80 characters, ending in …"
    )
    grade = salesforce_field(
        {"name": "crmq_grade", "type": "string", "length": 4, "updateable": True}
    )
    assert len(fit_checks("contacts", OWNED, portal(g=grade))) == 1, "grades fit in 4"


def test_text_is_written_cut_to_its_field_length_ending_in_an_ellipsis():
    owned = ContactMapping.from_document(load_mapping("hubspot"), "contacts").owned
    owned.learn(portal(r=FieldInfo("crmq_reasons", "string", kind="text", length=10)))
    written = owned.write({"reasons": "x" * 40, "grade": "A1"}, "HubSpot property")
    assert written["crmq_reasons"] == "x" * 9 + "…" and written["crmq_grade"] == "A1"
    assert owned.write({"reasons": "short"}, "p")["crmq_reasons"] == "short"


def test_fields_the_crm_lacks_are_named_together_with_one_fix():
    """Before `setup` every owned field is missing: the stop names each with its mapping key
    and says the fix once, beside the misfits that have fixes of their own."""
    fields = portal(t=FieldInfo("crmq_score", "string", writable=False, kind="text"))
    for gone in ("crmq_grade", "crmq_reasons", "crmq_renurture"):
        del fields[gone]
    found = misfits("contacts", OWNED, fields, missing=True, setup="hubspot")
    error = str(misfit_error(found))
    assert (
        "no such field: objects.contacts.fields.grade = crmq_grade,"
        " objects.contacts.fields.reasons = crmq_reasons,"
        " objects.contacts.fields.renurture = crmq_renurture (fix: create them"
        " (`crm-qualify setup hubspot` creates ours)"
    ) in error
    assert error.count("creates ours") == 1 and error.count("no such field") == 1
    assert "objects.contacts.fields.score = crmq_score: string, read-only" in error
    assert "(fix: map score to a field crm-qualify can write" in error

    fields = portal()
    del fields["crmq_grade"]
    (alone,) = misfits("contacts", OWNED, fields, missing=True)
    assert "objects.contacts.fields.grade = crmq_grade: no such field (fix: create it (a CRM" in (
        str(misfit_error([alone]))
    )
