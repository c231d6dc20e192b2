"""Asking who set a value: only the records whose plan hinges on it, answers stamped with the
value they describe and kept in the mirror, a failed call holding those fields for the run."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.model import Contact, FieldSource, Stage
from crm_qualify.connector.settings import FieldPolicy, Settings
from crm_qualify.connector.sync.sources import learn_sources
from crm_qualify.connector.sync.state import StateStore

from tests.test_diff import decision

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICIES = {**Settings().fields, "temperature": FieldPolicy(policy="unless_edited")}


class Asked:
    """An adapter's `field_sources`: records what it was asked, answers or fails."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list = []
        self.fail = fail

    def field_sources(self, wanted):
        self.asked.append(list(wanted))
        if self.fail:
            raise AdapterError("POST contacts/batch/read (history): HTTP 502")
        return {key: {"temperature": FieldSource(by="person", at=NOW)} for key, _ in wanted}


def people() -> list[Contact]:
    edited = Contact(id="1", stage=Stage.LEAD, owned={"temperature": "cold"})
    blank = Contact(id="2", stage=Stage.LEAD, owned={})
    ours = Contact(id="3", stage=Stage.LEAD, owned={"temperature": "warm"})
    return [edited, blank, ours]


def test_only_records_whose_plan_hinges_on_it_are_asked_and_answers_are_kept(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    contacts = people()
    store.mirror.upsert("default", contacts, NOW)
    adapter = Asked()
    pairs = [(c, decision()) for c in contacts]
    written = {("contact", "3"): {"temperature": "warm"}}
    unsure = learn_sources(adapter, store, "default", pairs, POLICIES, written, None, complete=True)
    assert unsure == {}
    assert adapter.asked == [[(("contact", "1"), ["temperature"])]]
    source = contacts[0].owned_sources["temperature"]
    assert (source.by, source.value) == ("person", "cold"), "stamped with the value asked about"
    (mirrored,) = [c for chunk in store.mirror.contacts("default") for c in chunk if c.id == "1"]
    assert mirrored.owned_sources["temperature"].by == "person"
    again = Asked()
    learn_sources(
        again, store, "default", [(mirrored, decision())], POLICIES, {}, None, complete=True
    )
    assert again.asked == [], "kept: not asked again"
    store.close()


def test_a_failed_call_holds_those_fields_for_the_run(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    contacts = people()
    pairs = [(c, decision()) for c in contacts]
    unsure = learn_sources(
        Asked(fail=True), store, "default", pairs, POLICIES, {}, None, complete=True
    )
    assert set(unsure) == {("contact", "1"), ("contact", "3")}
    assert "HTTP 502" in unsure[("contact", "1")]["temperature"]
    assert contacts[0].owned_sources == {}
    store.close()


def test_a_record_read_with_its_last_change_is_answered_without_asking(tmp_path):
    """Salesforce names the last change per record: read with the record, it answers every
    question about the record's values, stamped with each; the mirror keeps it with the
    contact, so a later run answers from it again. A record mirrored without it is asked."""
    store = StateStore(tmp_path / "state.sqlite")
    by_rep = FieldSource(by="person", at=NOW)
    read = Contact(id="1", stage=Stage.LEAD, owned={"temperature": "cold"}, last_change=by_rep)
    older = Contact(id="2", stage=Stage.LEAD, owned={"temperature": "cold"})
    store.mirror.upsert("default", [read, older], NOW)
    adapter = Asked()
    pairs = [(c, decision()) for c in (read, older)]
    learn_sources(adapter, store, "default", pairs, POLICIES, {}, None, complete=True)
    assert adapter.asked == [[(("contact", "2"), ["temperature"])]]
    source = read.owned_sources["temperature"]
    assert (source.by, source.at, source.value) == ("person", NOW, "cold")
    (mirrored,) = [c for chunk in store.mirror.contacts("default") for c in chunk if c.id == "1"]
    assert mirrored.last_change == by_rep and mirrored.owned_sources == {}
    again = Asked()
    learn_sources(
        again, store, "default", [(mirrored, decision())], POLICIES, {}, None, complete=True
    )
    assert again.asked == [] and mirrored.owned_sources["temperature"].by == "person"
    store.close()
