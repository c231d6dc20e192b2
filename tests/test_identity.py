"""Duplicate detection, fake-contact flags, and the person each record belongs to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.decision.duplicates import find_groups, name_similarity
from crm_qualify.connector.decision.identity_keys import normalise_email, normalise_phone
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.person import merge_person, share_decision
from crm_qualify.connector.decision.validity import validity_flags
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    EngagementEvent,
    EventType,
    ExistingTask,
    Stage,
)
from crm_qualify.connector.ops.duplicates_report import build_duplicates, html_report, text_report
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.state import StateStore

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
RULES = IdentityRules()


def person(cid: str, object_type: str = "contact", days: int = 0, **fields) -> Contact:
    return Contact(id=cid, object_type=object_type, created_at=T0 + timedelta(days=days), **fields)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@ACME.com", "jane.doe@acme.com"),
        ("jane+news@acme.com", "jane+news@acme.com"),  # a company server: + may be a mailbox
        ("j.doe+crm@gmail.com", "jdoe@gmail.com"),
        ("jdoe@googlemail.com", "jdoe@gmail.com"),
        ("no-at-sign", None),
        ("a@b@c", None),
    ],
)
def test_mailboxes_are_normalised_only_where_providers_say_so(raw, expected):
    assert normalise_email(raw, RULES) == expected


def test_phone_numbers_are_read_in_the_records_country():
    assert normalise_phone("(415) 555-0100", None, "US") == normalise_phone(
        "+1 415 555 0100", "United States", "US"
    )
    assert normalise_phone("01 42 68 53 00", "France", "US") == "+33142685300"
    assert normalise_phone("12", "US", "US") is None


@pytest.mark.parametrize("written", ["UK", "gb", "GBR", "United Kingdom"])
def test_the_default_region_reads_as_a_records_country_does(written):
    """`default_region = "UK"` passed the model, and `phonenumbers` rejects UK: every number
    without a country code then matched nothing. It takes what a record's country takes."""
    rules = IdentityRules.model_validate({"phone": {"default_region": written}})
    assert rules.phone.default_region == "GB"
    national = normalise_phone("020 7946 0958", None, rules.phone.default_region)
    assert national == normalise_phone("+44 20 7946 0958", None, "US") == "+442079460958"


def test_a_region_phonenumbers_knows_and_iso_lacks_is_a_region():
    rules = IdentityRules.model_validate({"phone": {"default_region": "XK"}})
    assert rules.phone.default_region == "XK", "Kosovo: refused, with XK as its close match"


@pytest.mark.parametrize(("written", "close"), [("ZZ", "ZA"), ("Untied Kingdom", "GB")])
def test_an_unknown_default_region_is_refused_with_its_close_matches(written, close):
    with pytest.raises(ValueError, match="default_region") as refused:
        IdentityRules.model_validate({"phone": {"default_region": written}})
    assert repr(written) in str(refused.value) and close in str(refused.value)


def test_groups_have_their_rule_confidence_and_oldest_survivor():
    contacts = [
        person("L1", "Lead", 0, email="Jane.Doe@acme.com", first_name="Jane", last_name="Doe"),
        person("L2", "Lead", 1, email="jane.doe@ACME.com", first_name="Jane", last_name="Doe"),
        person("C3", "Contact", 2, email="jane.doe@acme.com", first_name="J", last_name="Doe"),
        person("4", email="j.smith+x@gmail.com", first_name="John", last_name="Smith"),
        person("5", email="jsmith@gmail.com", first_name="John", last_name="Smith"),
        person("6", days=0, email="bob@globex.com", first_name="Robert", last_name="Jones"),
        person("7", days=1, email="bobby@globex.com", first_name="Robert", last_name="Jones"),
        person(
            "8",
            days=0,
            email="pat.lee@yahoo.com",
            first_name="Pat",
            last_name="Lee",
            company="Umbrella",
        ),
        person("9", days=1, email="pat.lee@umbrella.com", first_name="Pat", last_name="Lee"),
        person("10", phone="+1 415 555 0100", first_name="Ann", last_name="Kim"),
        person("11", phone="(415) 555-0100", country="US", first_name="Ann", last_name="Kim"),
    ]
    groups = {tuple(g.members): g for g in find_groups(contacts, RULES)}
    jane = groups[(("Lead", "L1"), ("Lead", "L2"), ("Contact", "C3"))]
    assert jane.survivor == ("Lead", "L1") and "email" in jane.rules and jane.confidence == 0.99
    assert groups[(("contact", "4"), ("contact", "5"))].rules == ["email"]
    robert = groups[(("contact", "6"), ("contact", "7"))]
    assert robert.rules == ["name+company"] and 0.8 <= robert.confidence < 0.99
    assert groups[(("contact", "8"), ("contact", "9"))].rules == ["name+company"]
    assert groups[(("contact", "10"), ("contact", "11"))].rules == ["phone+name"]
    assert len(groups) == 5


def test_near_misses_stay_apart():
    contacts = [
        # different people at one employer with close names
        person("1", email="alice@initech.com", first_name="Alice", last_name="Brown"),
        person("2", email="alicia@initech.com", first_name="Alicia", last_name="Brown"),
        # a switchboard number shared by two people
        person("3", phone="+1 650 555 0199", first_name="Ann", last_name="Kim"),
        person("4", phone="+1 650 555 0199", first_name="Tom", last_name="Wu"),
        # same common name at unrelated companies
        person("5", email="john.smith@acme.com", first_name="John", last_name="Smith"),
        person("6", email="john.smith@globex.com", first_name="John", last_name="Smith"),
        # plus-addressing at a company server is not folded
        person("7", email="sales+eu@initech.com"),
        person("8", email="sales@initech.com"),
    ]
    assert find_groups(contacts, RULES) == []


def test_most_complete_survivor_is_configurable():
    rules = IdentityRules.model_validate({"survivor": "most_complete"})
    sparse = person("1", days=0, email="kim@acme.com")
    full = person("2", days=5, email="KIM@acme.com", first_name="Kim", last_name="Lee", title="CTO")
    [group] = find_groups([sparse, full], rules)
    assert group.survivor == ("contact", "2") and group.id == "contact:1"


@pytest.mark.parametrize(
    ("fields", "rules"),
    [
        ({"email": "x@mailinator.com", "company": "Acme"}, {"disposable"}),
        ({"email": "info@acme.com"}, {"role_address"}),
        ({"email": "no-reply@acme.com"}, {"role_address"}),
        ({"email": "bad@@acme.com", "company": "Acme"}, {"invalid_data"}),
        ({"email": "a@acme.com", "first_name": "asdf"}, {"invalid_data"}),
        ({"email": "joe@gmail.com"}, {"no_company"}),
        ({"email": "joe@gmail.com", "company": "Gmail"}, {"no_company"}),
        ({"email": "joe@gmail.com", "company": "Acme"}, set()),
        ({"email": "joe@acme.com", "first_name": "Joe"}, set()),
    ],
)
def test_records_that_are_no_one_are_flagged_with_a_reason(fields, rules):
    flags = validity_flags(person("1", **fields), RULES.validity)
    assert {flag.rule for flag in flags} == rules
    assert all(flag.reason for flag in flags)


def test_a_person_is_decided_on_the_union_of_its_records():
    lead = person(
        "L1",
        "Lead",
        0,
        email="kim@acme.com",
        stage=Stage.MQL,
        events=[EngagementEvent(type=EventType.DEMO_REQUEST, at=T0)],
        qualification={"need": CriterionStatus.IN_PROGRESS},
    )
    contact = person(
        "C1",
        "Contact",
        3,
        email="kim@acme.com",
        first_name="Kim",
        stage=Stage.SQL,
        events=[
            EngagementEvent(type=EventType.DEMO_REQUEST, at=T0),
            EngagementEvent(type=EventType.WEBINAR_ATTENDED, at=T0),
        ],
        qualification={"need": CriterionStatus.MET},
        tasks=[ExistingTask(id="t1", key="crmq:Lead:L1:hot_call:x")],
    )
    merged = merge_person("Lead:L1", [contact, lead], ("Lead", "L1"))
    assert (merged.object_type, merged.id) == ("Lead", "L1")
    assert merged.first_name == "Kim" and merged.stage == Stage.SQL
    assert len(merged.events) == 2 and merged.qualification["need"] == CriterionStatus.MET
    assert merged.created_at == T0 and [t.id for t in merged.tasks] == ["t1"]


def test_an_activity_counts_once_per_person_and_two_at_one_second_count_twice():
    """Events were merged on what they say (type, time, detail, count): two calls logged at
    the same second on one record counted once in a group, twice alone. An activity the CRM
    names (`source_id`) counts once however many records carry it; events it does not name
    count as often as the record that has most of them has them."""
    call = EngagementEvent(type=EventType.CALL, at=T0, detail="call")
    twice = [call.model_copy(update={"source_id": f"calls/{n}"}) for n in (1, 2)]
    shared = EngagementEvent(type=EventType.MEETING_BOOKED, at=T0, source_id="meetings/7")
    visits = EngagementEvent(type=EventType.PAGE_VIEW, at=T0, count=3)
    a = person("A", events=[*twice, shared, visits, call, call])
    b = person("B", days=1, events=[shared, twice[0], visits, call])
    merged = merge_person("contact:A", [b, a], ("contact", "A"))
    assert sorted(e.source_id or "-" for e in merged.events) == [
        "-", "-", "-", "calls/1", "calls/2", "meetings/7"
    ]  # fmt: skip
    alone = merge_person("contact:Z", [a], ("contact", "A"))
    assert alone.events == a.events, "a record's own events are all its own"


def test_a_campaign_two_records_responded_to_counts_once_dated_by_the_latest():
    """Salesforce names a membership per record: the person's Lead and Contact in one
    campaign are one response of a kind (`Campaign/<id>/<signal>`), whichever comes first."""
    earlier = EngagementEvent(
        type=EventType.WEBINAR_ATTENDED, at=T0, source_id="Campaign/7/webinar_attended"
    )
    later = earlier.model_copy(update={"at": T0 + timedelta(days=3)})
    lead, contact = person("L", events=[earlier]), person("C", days=1, events=[later])
    for order in ([lead, contact], [contact, lead]):
        merged = merge_person("Lead:L", order, ("Lead", "L"))
        assert [e.at for e in merged.events] == [later.at]


def test_people_keep_their_person_through_a_merge_in_the_crm(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    people = People(store, RULES)
    a = person("A", days=0, email="kim@acme.com", first_name="Kim", last_name="Lee")
    b = person("B", days=1, email="KIM@acme.com", first_name="Kim", last_name="Lee")
    other = person("Z", days=0, email="zed@acme.com", first_name="Zed", last_name="Ng")
    people.index("i", [a, b, other])
    resolved = people.resolve("i", [b, other])
    assert resolved[("contact", "B")].key == "contact:A"
    assert resolved[("contact", "B")].members == (("contact", "A"), ("contact", "B"))
    assert resolved[("contact", "Z")].key == "contact:Z"
    # A is merged into B in the CRM: B now carries A's tasks and A is gone from the mirror
    people.forget("i", [("contact", "A")])
    merged_b = b.model_copy(
        update={"tasks": [ExistingTask(id="t", key="crmq:contact:A:hot_call:20260301T0900")]}
    )
    people.index("i", [merged_b])
    assert people.resolve("i", [merged_b])[("contact", "B")].key == "contact:A"
    # a record merged before it was ever grouped inherits through the CRM's merge trail
    c = person("C", days=2, email="new@acme.com", merged_ids=["Z"])
    people.index("i", [c])
    assert people.resolve("i", [c])[("contact", "C")].key == "contact:Z"
    store.close()


def test_the_survivor_alone_gets_the_persons_tasks():
    from crm_qualify.connector.decision.decide import decide
    from crm_qualify.connector.decision.rules import Rules

    hot = person(
        "L1",
        "Lead",
        0,
        email="kim@acme.com",
        first_name="Kim",
        last_name="Lee",
        company="Acme",
        events=[EngagementEvent(type=EventType.DEMO_REQUEST, at=T0, count=1)]
        + [EngagementEvent(type=EventType.PRICING_PAGE_VIEW, at=T0, count=3)],
    )
    twin = person("C1", "Contact", 1, email="kim@acme.com", first_name="Kim", last_name="Lee")
    merged = merge_person("Lead:L1", [hot, twin], ("Lead", "L1"))
    decision = decide(merged, Rules(), T0 + timedelta(hours=1))
    assert decision.tasks, "the merged person should be hot enough to plan a follow-up"
    on_survivor = share_decision(decision, hot, ("Lead", "L1"))
    on_twin = share_decision(decision, twin, ("Lead", "L1"))
    assert on_twin.tasks == [] and on_twin.stage == on_survivor.stage
    assert all(t.key.startswith("crmq:Lead:L1:") for t in on_survivor.tasks)
    assert {(t.object_type, t.contact_id) for t in on_survivor.tasks} == {("Lead", "L1")}


def test_the_report_lists_groups_and_flags():
    contacts = [
        person("1", days=0, email="kim@acme.com", first_name="Kim", last_name="Lee"),
        person("2", days=1, email="Kim@Acme.com", first_name="Kim", last_name="Lee"),
        person("3", email="info@acme.com"),
    ]
    report = build_duplicates([contacts], RULES)
    assert report.summary()["groups"] == 1 and report.summary()["flagged_by_rule"] == {
        "role_address": 1
    }
    text = text_report(report)
    assert "keep contact:1" in text and "role address info@" in text
    assert "<h1>Duplicates" in html_report(report)
    assert report.as_dict()["groups"][0]["survivor"] == {"object_type": "contact", "id": "1"}


def test_records_gone_from_the_mirror_leave_the_identity_index(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    people = People(store, RULES)
    kept = person("A", days=0, email="kim@acme.com", first_name="Kim", last_name="Lee")
    gone = person("B", days=1, email="KIM@acme.com", first_name="Kim", last_name="Lee")
    store.mirror.upsert("i", [kept], T0)
    people.index("i", [kept, gone])
    assert people.resolve("i", [kept])[("contact", "A")].members == (
        ("contact", "A"),
        ("contact", "B"),
    )
    people.prune("i")  # B was never mirrored (or left it at a full read)
    assert people.resolve("i", [kept])[("contact", "A")].members == (("contact", "A"),)
    store.close()


def test_a_record_whose_write_was_in_flight_takes_its_persons_later_decision(tmp_path):
    """A read first, with its write still waiting, when its duplicate B (a demo request) is
    read in a later batch: A cannot be written with B's batch, so it is decided again once
    its write is answered, in the same run. Both end with the person's decision."""
    from crm_qualify.connector.settings import Settings
    from crm_qualify.connector.sync.concurrency import Limits, Traffic
    from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

    from tests.memory_adapter import MemoryAdapter

    now = T0 + timedelta(days=2)
    a = person("A", days=0, email="kim@acme.com", first_name="Kim", last_name="Lee")
    b = person("B", days=1, email="KIM@acme.com", first_name="Kim", last_name="Lee")
    b.events = [EngagementEvent(type=EventType.DEMO_REQUEST, at=now - timedelta(hours=2))]
    a.updated_at, b.updated_at = now - timedelta(hours=5), now - timedelta(hours=4)
    adapter = MemoryAdapter([a, b], batch_size=1)
    # A's write waits for the next batch's, so it is in flight while B's batch is decided
    adapter.traffic = Traffic(Limits(in_flight=2, write_batch=100, task_batch=100))
    store = StateStore(tmp_path / "state.sqlite")
    summary = SyncEngine(adapter, Settings(), store).run(RunOptions(now=now))
    assert summary.status == "ok"
    owned = {cid: adapter.records[cid].owned for cid in ("A", "B")}
    assert owned["B"]["score"] == owned["A"]["score"], owned
    assert owned["B"]["temperature"] == owned["A"]["temperature"] == "hot"
    calls = [task for task in adapter.tasks.values() if task.kind == "hot_call"]
    assert [task.contact_id for task in calls] == ["A"], "the person's call, on its survivor"
    rerun = SyncEngine(adapter, Settings(), store).run(RunOptions(now=now))
    assert rerun.counts["fields_written"] == 0
    store.close()


def test_a_record_left_behind_by_its_duplicate_is_decided_alone_in_the_same_run(tmp_path):
    """Two records of one person (the same mailbox); a person edits the survivor into
    someone else. The record left behind kept the group's flag, its group id and the group's
    score until the next full read, and got no call of its own though it was hot alone."""
    from crm_qualify.connector.settings import Settings
    from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

    from tests.memory_adapter import MemoryAdapter

    now = T0 + timedelta(days=2)
    a = person("A", days=0, email="kim@acme.com", first_name="Kim", last_name="Lee")
    b = person("B", days=1, email="KIM@acme.com", first_name="Kim", last_name="Lee")
    b.events = [EngagementEvent(type=EventType.DEMO_REQUEST, at=now - timedelta(hours=2))]
    adapter = MemoryAdapter([a, b])
    store = StateStore(tmp_path / "state.sqlite")
    settings = Settings(fields={"duplicate": {"owned": True}, "duplicate_group": {"owned": True}})
    assert SyncEngine(adapter, settings, store).run(RunOptions(now=now)).status == "ok"
    assert adapter.records["B"].owned["duplicate"] is True
    assert [t.contact_id for t in adapter.tasks.values() if t.kind == "hot_call"] == ["A"]

    adapter.edit("A", email="zed@acme.com", first_name="Zed")
    later = SyncEngine(adapter, settings, store).run(RunOptions(now=now + timedelta(minutes=2)))

    assert later.status == "ok"
    left = adapter.records["B"].owned
    assert left["duplicate"] is False and not left.get("duplicate_group"), left
    assert left["temperature"] == "hot"
    calls = sorted(t.contact_id for t in adapter.tasks.values() if t.kind == "hot_call")
    assert calls == ["A", "B"], "B, hot alone, gets its own call"
    store.close()


def test_an_older_record_joining_a_group_takes_the_groups_person(tmp_path):
    """A trio's group id (its person) was renamed after an older record that joined it, in
    every record's duplicate_group, while its tasks kept the old name."""
    store = StateStore(tmp_path / "state.sqlite")
    people = People(store, RULES)
    trio = [
        person(cid, days=days, email="ros@vantrell.example", first_name="Ros", last_name="A")
        for cid, days in (("T1", 5), ("T2", 6), ("T3", 7))
    ]
    people.index("i", trio)
    assert people.resolve("i", trio)[("contact", "T1")].key == "contact:T1"
    older = person("OLD", days=0, email="someone@else.example", first_name="Ro", last_name="B")
    people.index("i", [older])
    people.resolve("i", [older])
    joined = older.model_copy(
        update={"email": "ros@vantrell.example", "first_name": "Ros", "last_name": "A"}
    )
    people.index("i", [joined])
    resolved = people.resolve("i", [joined])[("contact", "OLD")]
    assert resolved.key == "contact:T1" and len(resolved.members) == 4
    assert resolved.survivor == ("contact", "OLD"), "the oldest record still survives"
    store.close()


def test_the_duplicates_report_names_a_group_as_its_records_carry_it():
    """The report named a group after its oldest record while the CRM's duplicate_group held
    the group's person (after an older record joined, or a converted Lead): a list view
    filtered on the report's id found nothing."""
    from crm_qualify.connector.ops.duplicates_report import named_as_written

    a = person("A", days=0, email="kim@acme.com", first_name="Kim", last_name="Lee")
    b = person("B", days=1, email="KIM@acme.com", first_name="Kim", last_name="Lee")
    report = build_duplicates([[a, b]], RULES)
    (group,) = report.groups
    assert group.id == "contact:A"
    named_as_written(report, {("contact", "A"): "contact:B", ("contact", "B"): "contact:B"})
    assert report.groups[0].id == "contact:B"
    assert "contact:B" in text_report(report)


CORVANA_SWITCHBOARD = "+1 415 555 0100"


def corvana(cid: str, first: str | None, last: str | None, **fields) -> Contact:
    email = f"{first}.{last}@corvana.com".lower() if first and last else None
    return person(cid, email=email, first_name=first, last_name=last, company="Corvana", **fields)


def test_a_nameless_record_on_a_switchboard_joins_no_one():
    """Alice and Bob share the switchboard and stay apart; a record with no name and the same
    number matched each of them equally (phone, 0.70) and joined all three into one group."""
    alice = corvana("A", "Alice", "Brown", phone=CORVANA_SWITCHBOARD)
    bob = corvana("B", "Bob", "Stone", phone=CORVANA_SWITCHBOARD)
    nameless = person("N", phone="(415) 555-0100", company="Corvana")
    assert find_groups([alice, bob, nameless], RULES) == []
    [alone] = find_groups([alice, nameless], RULES)  # one person on the number: the docs' rule
    assert alone.rules == ["phone"] and alone.confidence == 0.7
    mailbox = nameless.model_copy(update={"email": "ALICE.BROWN@corvana.com"})
    [group] = find_groups([alice, bob, mailbox], RULES)  # the stronger match decides
    assert group.members == [("contact", "A"), ("contact", "N")] and group.confidence == 0.99


def test_a_name_that_only_adds_letters_to_another_is_another_person():
    """Daniel and Daniela Meyer at one employer were one person (ratio 92): one hot call."""
    contacts = [
        person("1", email="daniel.meyer@halvorsen.no", first_name="Daniel", last_name="Meyer"),
        person("2", email="daniela.meyer@halvorsen.no", first_name="Daniela", last_name="Meyer"),
        person("3", email="paul.ng@halvorsen.no", first_name="Paul", last_name="Ng"),
        person("4", email="paula.ng@halvorsen.no", first_name="Paula", last_name="Ng"),
    ]
    assert find_groups(contacts, RULES) == []


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("jonathan smith", "jonathon smith", True),  # a typo
        ("garcia sofia", "garcia sofia", True),
        ("brien liam o", "liam obrien", True),  # O'Brien / OBrien
        ("john smith", "john michael smith", True),  # a middle name
        ("daniel meyer", "daniela meyer", False),
        ("meyer paul", "meyer paula", False),
        ("alice brown", "alicia brown", False),
        ("ann lee", "lee mary", False),
        ("lee mary", "ann lee maryanne", False),  # the extra word is not the missing one
    ],
)
def test_names_agree_word_by_word(a, b, same):
    assert (name_similarity(a, b) >= RULES.name.threshold) is same
    assert name_similarity(a, b) == name_similarity(b, a)


def test_a_record_matching_two_people_apart_joins_neither():
    """Ann Lee and Mary Lee at one employer are two people; Mary Ann Lee matched both (the
    shorter names' words are all hers) and chained the three into one group."""
    ann = person("1", email="ann.lee@quillstone.com", first_name="Ann", last_name="Lee")
    mary_ann = person(
        "2", email="maryann.lee@quillstone.com", first_name="Mary Ann", last_name="Lee"
    )
    mary = person("3", email="mary.lee@quillstone.com", first_name="Mary", last_name="Lee")
    assert find_groups([ann, mary_ann, mary], RULES) == []
    [middle_name] = find_groups([mary_ann, mary], RULES)  # alone, a middle name still groups
    assert middle_name.members == [("contact", "2"), ("contact", "3")]
    again = person("4", email="mlee@quillstone.com", first_name="Mary", last_name="Lee")
    [pair] = find_groups([ann, mary_ann, mary, again], RULES)  # the unambiguous pair stays
    assert pair.members == [("contact", "3"), ("contact", "4")]


def test_a_group_never_holds_two_records_the_names_tell_apart():
    """A nameless record with Alice's mailbox and Bob's direct number: it is Alice (the
    stronger match), and Bob, whose name is not hers, stays out of the group."""
    alice = person("A", email="alice@gmail.com", first_name="Alice", last_name="Brown")
    bob = person("B", phone="+1 650 555 0123", first_name="Bob", last_name="Stone")
    bridge = person("N", email="Alice@gmail.com", phone="(650) 555-0123")
    [group] = find_groups([alice, bob, bridge], RULES)
    assert group.members == [("contact", "A"), ("contact", "N")] and group.rules == ["email"]


def test_what_the_docs_promise_to_group_still_groups():
    """The user's checks on the HubSpot simulator: mailbox variants, UK numbers written three
    ways, accents, a personal address beside a work one; and what stays apart."""
    contacts = [
        person("A1", first_name="Hannah", last_name="Okafor", email="h.okafor@gmail.com",
               company="Tidewell Analytics"),
        person("A2", first_name="Hannah", last_name="Okafor",
               email="hannahokafor+events@gmail.com", company="Tidewell Analytics"),
        person("A3", first_name="Hannah", last_name="Okafor",
               email=" Hannah.Okafor@GoogleMail.com ", company="Tidewell Analytics"),
        person("B1", first_name="Liam", last_name="O'Brien", email="liam.obrien@brightwave.co.uk",
               phone="+44 20 7946 0958", country="United Kingdom", company="Brightwave Ltd"),
        person("B2", first_name="Liam", last_name="O'Brien", email="lobrien77@hotmail.com",
               phone="020 7946 0958 ext. 204", country="United Kingdom", company="Brightwave"),
        person("B3", first_name="Liam", last_name="OBrien", phone="(020) 7946-0958",
               country="UK"),
        person("C1", first_name="Sofía", last_name="García", email="sofia.garcia@nordlicht.de",
               company="Nordlicht GmbH"),
        person("C2", first_name="Sofia", last_name="Garcia", email="s.garcia@nordlicht.de",
               company="Nordlicht"),
        person("D1", first_name="Marcus", last_name="Chen", email="marcus.chen@quantix.io",
               company="Quantix Inc"),
        person("D2", first_name="Marcus", last_name="Chen", email="marcus.chen.home@yahoo.com",
               company="Quantix"),
        corvana("E1", "Alice", "Brown", phone=CORVANA_SWITCHBOARD),
        corvana("E2", "Bob", "Stone", phone=CORVANA_SWITCHBOARD),
        corvana("E3", "Alicia", "Brown"),
        person("F1", first_name="John", last_name="Smith", email="john.smith@gmail.com",
               company="Fernhill Co"),
        person("F2", first_name="John", last_name="Smith", email="jsmith@outlook.com",
               company="Pelican Partners"),
        person("G1", first_name="Anna", last_name="Bell", email="a.bell@outlook.com",
               company="Orbix"),
        person("G2", first_name="Annette", last_name="Bell", email="abell@outlook.com",
               company="Kestrel"),
    ]  # fmt: skip
    groups = {tuple(cid for _, cid in group.members) for group in find_groups(contacts, RULES)}
    assert groups == {("A1", "A2", "A3"), ("B1", "B2", "B3"), ("C1", "C2"), ("D1", "D2")}


def test_each_person_on_a_shared_number_or_with_a_close_name_gets_its_own_hot_call(tmp_path):
    """The user's three cases in one sync: every record that asked for a demo is a person of
    its own, decided alone, with its own call (the chained groups gave one call to each)."""
    from crm_qualify.connector.settings import Settings
    from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

    from tests.memory_adapter import MemoryAdapter

    now = T0 + timedelta(days=2)
    demo = [EngagementEvent(type=EventType.DEMO_REQUEST, at=now - timedelta(hours=2))]
    hot = {"events": demo}
    contacts = [
        corvana("E1", "Alice", "Brown", phone=CORVANA_SWITCHBOARD, **hot),
        corvana("E2", "Bob", "Stone", phone=CORVANA_SWITCHBOARD, **hot),
        person("E4", days=1, phone="(415) 555-0100", company="Corvana"),
        person("K1", email="daniel.meyer@halvorsen.no", first_name="Daniel", last_name="Meyer",
               company="Halvorsen AS", **hot),
        person("K2", email="daniela.meyer@halvorsen.no", first_name="Daniela",
               last_name="Meyer", company="Halvorsen AS", **hot),
        person("L1", email="ann.lee@quillstone.com", first_name="Ann", last_name="Lee",
               company="Quillstone", **hot),
        person("L2", email="maryann.lee@quillstone.com", first_name="Mary Ann",
               last_name="Lee", company="Quillstone"),
        person("L3", email="mary.lee@quillstone.com", first_name="Mary", last_name="Lee",
               company="Quillstone", **hot),
    ]  # fmt: skip
    adapter = MemoryAdapter(contacts)
    store = StateStore(tmp_path / "state.sqlite")
    settings = Settings(
        fields={"duplicate": {"owned": True}, "duplicate_group": {"owned": True}},
        identity={"review_task": True},
    )
    assert SyncEngine(adapter, settings, store).run(RunOptions(now=now)).status == "ok"
    calls = sorted(t.contact_id for t in adapter.tasks.values() if t.kind == "hot_call")
    assert calls == ["E1", "E2", "K1", "K2", "L1", "L3"]
    assert not [t for t in adapter.tasks.values() if t.kind == "duplicate_review"]
    assert not any(record.owned.get("duplicate") for record in adapter.records.values())
    store.close()


def test_a_record_that_makes_a_group_a_guess_splits_it_in_the_same_run(tmp_path):
    """Alice and a nameless record on her number were one person; Bob, read later on the same
    number, makes the nameless record a guess. Alice and the nameless record kept the group's
    flag (and its shared decision) until a full read: neither was read, so neither was
    decided again."""
    from crm_qualify.connector.settings import Settings
    from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

    from tests.memory_adapter import MemoryAdapter

    now = T0 + timedelta(days=2)
    alice = corvana("E1", "Alice", "Brown", phone=CORVANA_SWITCHBOARD)
    nameless = person("E4", days=1, phone="(415) 555-0100", company="Corvana")
    adapter = MemoryAdapter([alice, nameless])
    store = StateStore(tmp_path / "state.sqlite")
    settings = Settings(fields={"duplicate": {"owned": True}, "duplicate_group": {"owned": True}})
    assert SyncEngine(adapter, settings, store).run(RunOptions(now=now)).status == "ok"
    assert adapter.records["E4"].owned["duplicate_group"] == "contact:E1"

    bob = corvana("E2", "Bob", "Stone", phone=CORVANA_SWITCHBOARD)
    adapter.records["E2"] = bob.model_copy(update={"updated_at": now + timedelta(minutes=1)})
    later = SyncEngine(adapter, settings, store).run(RunOptions(now=now + timedelta(minutes=2)))

    assert later.status == "ok"
    for cid in ("E1", "E2", "E4"):
        owned = adapter.records[cid].owned
        assert owned["duplicate"] is False and not owned.get("duplicate_group"), (cid, owned)
    store.close()


ZELTWERK_INFO = "info@zeltwerk.example"


def zeltwerk(cid: str, first: str, last: str, email: str = ZELTWERK_INFO, **fields) -> Contact:
    return person(
        cid, email=email, first_name=first, last_name=last, company="Zeltwerk GmbH", **fields
    )


def test_a_role_mailbox_is_no_evidence_of_one_person():
    """Anna Schmidt and Peter Braun both wrote info@: the email rule made one person of them
    (0.99) although their names disagree. A role mailbox (`+tag` or not) joins no one; the
    same name at the same company still does."""
    anna = zeltwerk("1", "Anna", "Schmidt")
    peter = zeltwerk("2", "Peter", "Braun", days=1)
    lena = person("3", email="office+de@gmail.com", first_name="Lena", last_name="Vogel")
    tim = person("4", email="Office@gmail.com", first_name="Tim", last_name="Roth")
    assert find_groups([anna, peter, lena, tim], RULES) == []
    again = zeltwerk("5", "Anna", "Schmidt", days=2)
    [group] = find_groups([anna, peter, again], RULES)
    assert group.members == [("contact", "1"), ("contact", "5")]
    assert group.rules == ["name+company"] and group.confidence < 0.99
    report = build_duplicates([[anna, peter]], RULES)
    assert report.summary()["groups"] == 0
    assert report.summary()["flagged_by_rule"] == {"role_address": 2}


def test_the_role_mailboxes_are_those_configured():
    rules = IdentityRules.model_validate({"validity": {"role_mailboxes": ["kontakt"]}})
    anna = zeltwerk("1", "Anna", "Schmidt", email="kontakt@zeltwerk.example")
    peter = zeltwerk("2", "Peter", "Braun", email="Kontakt@Zeltwerk.example")
    assert find_groups([anna, peter], rules) == []
    info = [zeltwerk("3", "Anna", "Schmidt"), zeltwerk("4", "A", "Schmidt")]
    [mailbox] = find_groups(info, rules)
    assert mailbox.rules == ["email"], "info@ is a person's mailbox where it is not a role"


def test_people_sharing_a_role_mailbox_are_each_decided_alone(tmp_path):
    """The user's check on the Salesforce simulator: Anna's demo request made Peter, who shares
    info@ with her, hot; the call went to him alone, both were flagged duplicates and the owner
    was told to merge them."""
    from crm_qualify.connector.settings import Settings
    from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

    from tests.memory_adapter import MemoryAdapter

    now = T0 + timedelta(days=2)
    demo = [EngagementEvent(type=EventType.DEMO_REQUEST, at=now - timedelta(hours=2))]
    peter = zeltwerk("P", "Peter", "Braun", object_type="Lead")
    anna = zeltwerk("A", "Anna", "Schmidt", object_type="Lead", days=1, events=demo)
    adapter = MemoryAdapter([peter, anna])
    store = StateStore(tmp_path / "state.sqlite")
    settings = Settings(
        fields={"duplicate": {"owned": True}, "duplicate_group": {"owned": True}},
        identity={"review_task": True},
    )
    assert SyncEngine(adapter, settings, store).run(RunOptions(now=now)).status == "ok"
    calls = [t.contact_id for t in adapter.tasks.values() if t.kind == "hot_call"]
    assert calls == ["A"]
    assert not [t for t in adapter.tasks.values() if t.kind == "duplicate_review"]
    assert not any(record.owned.get("duplicate") for record in adapter.records.values())
    store.close()
