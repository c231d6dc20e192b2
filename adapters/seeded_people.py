"""People held by several CRM records, near-misses that are not, and records that are no one:
the labelled seed both simulators render, so duplicate detection can be measured on it.

Real CRMs collect duplicates the same few ways: one person signs up with a Gmail address
written two ways (dots, `+tag`, `googlemail.com`), a rep types a name with a typo at the same
company, a list import brings the company's name where the form brought its domain, a phone
number comes back in another format. And they hold people who only look alike: colleagues with
close names, a switchboard number, a common name at two employers (even two whose names
differ by a letter), a shared mailbox with a `+tag` at a company server (which may well be
another mailbox). Each case here is one of those, written out by hand so that every label is
known: `expected_groups` and
`expected_rules` say which records are one person and by which rule, `near_misses` which
records look alike and are not, `expected_flags` which records are no one and why.

Two people are hot on purpose (a recent demo request on each of their records): the one held
by three records (on Salesforce a Contact and the two Leads that duplicate it) must get one
call, not three, and the pair is the one a test merges in the CRM.

`seeded_people(crm)` gives the records for one CRM (HubSpot keeps one contact per email,
case-insensitively, so the case-only duplicates are Salesforce's), in canonical terms; each
simulator's `seed_people.py` renders them as its CRM stores them. Deterministic: dates are
days before the simulator's anchor day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from typing import Literal

from crm_qualify.connector.model import EventType

E = EventType
Crm = Literal["hubspot", "salesforce"]
Kind = Literal["lead", "contact"]


@dataclass(frozen=True)
class SeededRecord:
    """One CRM record. `person` is shared by the records of one person; `kind` is the
    Salesforce object (a HubSpot portal holds every record as a contact)."""

    label: str
    person: str
    kind: Kind
    first_name: str | None
    last_name: str
    email: str | None
    company: str
    domain: str | None = None
    """The employer's website (a Salesforce Contact's Account), when it has one."""
    phone: str | None = None
    country: str | None = None
    title: str | None = None
    created_days_ago: float = 200
    signals: tuple[tuple[EventType, float], ...] = ()
    """(signal, days ago)."""
    flags: frozenset[str] = frozenset()
    """The validity rules this record must be flagged by (empty: a real person)."""

    def created(self, now: datetime) -> datetime:
        return now - timedelta(days=self.created_days_ago)

    def signal_times(self, now: datetime) -> list[tuple[EventType, datetime]]:
        return [(kind, now - timedelta(days=days)) for kind, days in self.signals]


@dataclass(frozen=True)
class SeededPeople:
    """The records of one CRM's seed and what a perfect duplicate detector says of them."""

    records: tuple[SeededRecord, ...]
    expected_rules: dict[str, frozenset[str]]
    """Person -> rules of which at least these must name its group."""
    near_misses: tuple[tuple[str, ...], ...]
    """Labels of records that look alike and are different people."""
    hot_trio: str = "trio"
    hot_pair: str = "pair"

    @property
    def expected_groups(self) -> dict[str, tuple[str, ...]]:
        """Person -> the labels of its records, for every person held by two or more."""
        by_person: dict[str, list[str]] = defaultdict(list)
        for record in self.records:
            by_person[record.person].append(record.label)
        return {person: tuple(labels) for person, labels in by_person.items() if len(labels) > 1}

    @property
    def expected_flags(self) -> dict[str, frozenset[str]]:
        return {r.label: r.flags for r in self.records if r.flags}

    def true_pairs(self) -> set[frozenset[str]]:
        """Every pair of records that are one person (what pairwise recall counts)."""
        return {
            frozenset(pair)
            for labels in self.expected_groups.values()
            for pair in combinations(labels, 2)
        }


_HOT = ((E.DEMO_REQUEST, 3),)


def _records(crm: Crm) -> list[SeededRecord]:
    hubspot = crm == "hubspot"
    r = SeededRecord
    records = [
        # the same mailbox: Gmail ignores dots and drops `+tag`
        r("gmail.1", "gmail", "lead", "Marguerite", "Okafor", "marguerite.okafor@gmail.com",
          "Brightwave Analytics", title="Head of Data", country="United States",
          created_days_ago=320, signals=((E.WEBINAR_ATTENDED, 60),)),
        r("gmail.2", "gmail", "lead", "Marguerite", "Okafor",
          "margueriteokafor+webinars@gmail.com", "Brightwave Analytics", title="Head of Data",
          created_days_ago=45, signals=((E.CONTENT_DOWNLOAD, 20),)),
        # the same mailbox behind googlemail.com and gmail.com
        r("alias.1", "alias", "lead", "Theo", "Lindqvist", "theo.lindqvist@googlemail.com",
          "Fjordline Freight", title="Logistics Manager", created_days_ago=400),
        r("alias.2", "alias", "contact", "Theo", "Lindqvist", "TheoLindqvist@gmail.com",
          "Fjordline Freight AB", domain="fjordline-freight.example", country="Sweden",
          title="Logistics Manager", created_days_ago=90, signals=((E.EMAIL_REPLY, 12),)),
        # a typo in the name (and the address) at one company domain
        r("typo.1", "typo", "lead", "Siobhan", "Fairweather", "s.fairweather@halcyon-labs.example",
          "Halcyon Labs", domain="halcyon-labs.example", title="CTO", created_days_ago=250),
        r("typo.2", "typo", "contact", "Siobhan", "Fairwether",
          "siobhan.fairwether@halcyon-labs.example", "Halcyon Labs", domain="halcyon-labs.example",
          title="CTO", created_days_ago=30, signals=((E.MEETING_BOOKED, 25),)),
        # a spelling variant of the first name at one company domain
        r("variant.1", "variant", "contact", "Jonathan", "Pemberton",
          "jpemberton@ashgrove-capital.example", "Ashgrove Capital",
          domain="ashgrove-capital.example", title="CFO", created_days_ago=500),
        r("variant.2", "variant", "lead", "Jonathon", "Pemberton",
          "jonathon.pemberton@ashgrove-capital.example", "Ashgrove Capital",
          domain="ashgrove-capital.example", title="CFO", created_days_ago=15),
        # a free-mail sign-up naming the company, and the work address at its domain
        r("company.1", "company", "lead", "Ottilie", "Brandvold", "ottilie.b@yahoo.com",
          "Quillfeather Systems Ltd", title="VP Marketing", country="Norway",
          created_days_ago=210, signals=((E.CONTENT_DOWNLOAD, 150),)),
        r("company.2", "company", "contact", "Ottilie", "Brandvold",
          "ottilie.brandvold@quillfeather-systems.example", "Quillfeather Systems",
          domain="quillfeather-systems.example", country="Norway", title="VP Marketing",
          created_days_ago=35),
        # one US number written two ways
        r("phone.1", "phone", "lead", "Darnell", "Whitfield", "darnell@whitfield-design.example",
          "Whitfield Design", domain="whitfield-design.example", phone="(312) 555-0148",
          country="United States", title="Founder", created_days_ago=280),
        r("phone.2", "phone", "lead", "Darnell", "Whitfield", "darnell.whitfield@gmail.com",
          "Whitfield Design Studio", phone="+1 312-555-0148", country="US", title="Founder",
          created_days_ago=70),
        # one London number, international and national
        r("uk.1", "uk", "contact", "Ngozi", "Adeyemi", "ngozi.adeyemi@harbourline.example",
          "Harbourline", domain="harbourline.example", phone="020 7946 0321", country="UK",
          title="Procurement Lead", created_days_ago=330),
        r("uk.2", "uk", "lead", "Ngozi", "Adeyemi", "n.adeyemi@outlook.com", "Harbourline Ltd",
          phone="+44 20 7946 0321", country="United Kingdom", title="Procurement Lead",
          created_days_ago=50),
        # near-misses: colleagues with close names (token-sort similarity 89 and 81)
        r("colleague.1", "colleague.1", "lead", "Alice", "Brennan",
          "alice.brennan@meridian-health.example", "Meridian Health",
          domain="meridian-health.example", title="IT Director", created_days_ago=120),
        r("colleague.2", "colleague.2", "lead", "Alicia", "Brennan",
          "alicia.brennan@meridian-health.example", "Meridian Health",
          domain="meridian-health.example", title="Consultant", created_days_ago=110),
        r("colleague.3", "colleague.3", "contact", "Priya", "Raman",
          "priya.raman@meridian-health.example", "Meridian Health",
          domain="meridian-health.example", title="Marketing Manager", created_days_ago=300),
        r("colleague.4", "colleague.4", "lead", "Priya", "Ramanathan",
          "p.ramanathan@meridian-health.example", "Meridian Health",
          domain="meridian-health.example", title="CTO", created_days_ago=20),
        # near-misses: two people behind one switchboard number
        r("switchboard.1", "switchboard.1", "lead", "Helga", "Thorsen",
          "helga.thorsen@kestrel-legal.example", "Kestrel Legal", domain="kestrel-legal.example",
          phone="+1 (617) 555-0123", country="United States", title="Head of Sales",
          created_days_ago=140),
        r("switchboard.2", "switchboard.2", "lead", "Bertrand", "Mbeki",
          "b.mbeki@kestrel-legal.example", "Kestrel Legal", domain="kestrel-legal.example",
          phone="617-555-0123", country="United States", title="Consultant",
          created_days_ago=100),
        # near-misses: one common name at two employers
        r("namesake.1", "namesake.1", "lead", "David", "Miller",
          "david.miller@northfield-logistics.example", "Northfield Logistics",
          domain="northfield-logistics.example", title="Procurement Lead", created_days_ago=230),
        r("namesake.2", "namesake.2", "contact", "David", "Miller",
          "dmiller@pinecrest-dental.example", "Pinecrest Dental",
          domain="pinecrest-dental.example", title="CFO", created_days_ago=60),
        # near-misses: one common name at two employers whose names differ by a letter
        r("namesake.3", "namesake.3", "lead", "Sarah", "Collins",
          "sarah.collins@vertex-systems.example", "Vertex Systems",
          domain="vertex-systems.example", title="VP Marketing", created_days_ago=190),
        r("namesake.4", "namesake.4", "contact", "Sarah", "Collins",
          "scollins@vortex-systems.example", "Vortex Systems", domain="vortex-systems.example",
          title="Head of Sales", created_days_ago=80),
        # near-misses: `+tag` at a company server may be another mailbox
        r("plus.1", "plus.1", "lead", "Mariana", "Carvalho", "desk+emea@corvane.example",
          "Corvane", domain="corvane.example", title="Sales Operations Analyst",
          created_days_ago=170),
        r("plus.2", "plus.2", "lead", "Oskar", "Lindgren", "desk@corvane.example", "Corvane",
          domain="corvane.example", title="Account Executive", created_days_ago=160),
        # no one: a throw-away domain, a role address, a placeholder, a free-mail "company"
        r("noone.disposable", "noone.disposable", "lead", "Kevin", "Marsh",
          "kmarsh@mailinator.com", "Marsh Consulting", created_days_ago=10,
          flags=frozenset({"disposable"})),
        r("noone.role", "noone.role", "lead", None, "Larkspur Interiors",
          "info@larkspur-interiors.example", "Larkspur Interiors",
          domain="larkspur-interiors.example", created_days_ago=40,
          flags=frozenset({"role_address"})),
        r("noone.placeholder", "noone.placeholder", "lead", "Test", "Test",
          "test.test@quarry-works.example", "Quarry Works", domain="quarry-works.example",
          created_days_ago=5, flags=frozenset({"invalid_data"})),
        r("noone.freemail", "noone.freemail", "lead", "Bao", "Tran", "bao.tran1987@gmail.com",
          "Gmail", created_days_ago=25, flags=frozenset({"no_company"})),
    ]  # fmt: skip
    records += _hot(hubspot)
    if not hubspot:
        # the same address in another case (HubSpot keeps one contact per email)
        records += [
            r("case.1", "case", "contact", "Hannelore", "Wexler",
              "hannelore.wexler@pinnacle-optics.example", "Pinnacle Optics",
              domain="pinnacle-optics.example", country="Germany", title="IT Director",
              created_days_ago=600, signals=((E.WEBINAR_REGISTERED, 40),)),
            r("case.2", "case", "lead", "Hannelore", "Wexler",
              "Hannelore.Wexler@Pinnacle-Optics.example", "Pinnacle Optics GmbH",
              country="Germany", title="IT Director", created_days_ago=25),
        ]  # fmt: skip
    return records


def _hot(hubspot: bool) -> list[SeededRecord]:
    """The two hot people: each record has a recent demo request of its own (each record
    alone would get a call), the rest of the engagement is split between the records."""
    r = SeededRecord
    if hubspot:
        trio = [
            # the work address, the same name at the domain, and a Gmail with the same phone
            r("trio.1", "trio", "contact", "Rosalind", "Achterberg",
              "rosalind.achterberg@vantrell.example", "Vantrell GmbH", domain="vantrell.example",
              phone="+49 30 901820", country="Germany", title="Head of Sales",
              created_days_ago=380, signals=(*_HOT, (E.WEBINAR_ATTENDED, 30))),
            r("trio.2", "trio", "contact", "Rosalind", "Achterberg",
              "r.achterberg@vantrell.example", "Vantrell", domain="vantrell.example",
              country="Germany", title="Head of Sales",
              created_days_ago=95, signals=((E.DEMO_REQUEST, 6), (E.EMAIL_REPLY, 8))),
            r("trio.3", "trio", "contact", "Rosalind", "Achterberg",
              "rosalind.achterberg@gmail.com", "Vantrell", phone="030 901820", country="Germany",
              title="Head of Sales", created_days_ago=12,
              signals=((E.DEMO_REQUEST, 2), (E.MEETING_BOOKED, 4))),
        ]  # fmt: skip
        pair = [
            r("pair.1", "pair", "lead", "Ferdinand", "Oyelaran", "ferdinand.oyelaran@gmail.com",
              "Corbelle", country="France", title="CEO", created_days_ago=150,
              signals=((E.DEMO_REQUEST, 5),)),
            r("pair.2", "pair", "lead", "Ferdinand", "Oyelaran",
              "ferdinandoyelaran+trial@gmail.com", "Corbelle", country="France", title="CEO",
              created_days_ago=9, signals=((E.DEMO_REQUEST, 1), (E.EMAIL_REPLY, 2))),
        ]  # fmt: skip
        return trio + pair
    trio = [
        # a Contact, then a Lead from a form in another case, then a Lead from an import
        r("trio.1", "trio", "contact", "Rosalind", "Achterberg",
          "rosalind.achterberg@vantrell.example", "Vantrell GmbH", domain="vantrell.example",
          phone="+49 30 901820", country="Germany", title="Head of Sales", created_days_ago=380,
          signals=(*_HOT, (E.WEBINAR_ATTENDED, 30))),
        r("trio.2", "trio", "lead", "Rosalind", "Achterberg",
          "Rosalind.Achterberg@Vantrell.example", "Vantrell", phone="030 901820",
          country="Germany", title="Head of Sales", created_days_ago=95,
          signals=((E.DEMO_REQUEST, 6), (E.EMAIL_REPLY, 8))),
        r("trio.3", "trio", "lead", "Rosalind", "Achterberg",
          "rosalind.achterberg@vantrell.example", "Vantrell GmbH", country="Germany",
          title="Head of Sales", created_days_ago=12,
          signals=((E.DEMO_REQUEST, 2), (E.MEETING_BOOKED, 4))),
    ]  # fmt: skip
    pair = [
        # two Leads of one person: the kind of records a rep merges
        r("pair.1", "pair", "lead", "Ferdinand", "Oyelaran", "Ferdinand.Oyelaran@corbelle.example",
          "Corbelle", country="France", title="CEO", created_days_ago=150,
          signals=((E.DEMO_REQUEST, 5),)),
        r("pair.2", "pair", "lead", "Ferdinand", "Oyelaran", "ferdinand.oyelaran@corbelle.example",
          "Corbelle SAS", country="France", title="CEO", created_days_ago=9,
          signals=((E.DEMO_REQUEST, 1), (E.EMAIL_REPLY, 2))),
    ]  # fmt: skip
    return trio + pair


EXPECTED_RULES: dict[str, frozenset[str]] = {
    "gmail": frozenset({"email"}),
    "alias": frozenset({"email"}),
    "typo": frozenset({"name+company"}),
    "variant": frozenset({"name+company"}),
    "company": frozenset({"name+company"}),
    "phone": frozenset({"phone+name"}),
    "uk": frozenset({"phone+name"}),
    "case": frozenset({"email"}),
    "pair": frozenset({"email"}),
}
NEAR_MISSES = (
    ("colleague.1", "colleague.2"),
    ("colleague.3", "colleague.4"),
    ("switchboard.1", "switchboard.2"),
    ("namesake.1", "namesake.2"),
    ("namesake.3", "namesake.4"),
    ("plus.1", "plus.2"),
)


def seeded_people(crm: Crm) -> SeededPeople:
    """The labelled seed for one CRM."""
    records = tuple(_records(crm))
    trio = frozenset({"name+company", "phone+name"}) if crm == "hubspot" else frozenset({"email"})
    persons = {record.person for record in records}
    rules = {p: r for p, r in {**EXPECTED_RULES, "trio": trio}.items() if p in persons}
    return SeededPeople(records=records, expected_rules=rules, near_misses=NEAR_MISSES)


@dataclass
class PairScore:
    """Pairwise precision and recall of found groups against the seed's labels."""

    true_positives: int
    found: int
    expected: int
    false_pairs: list[tuple[str, str]] = field(default_factory=list)
    missed_pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_positives / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.expected if self.expected else 1.0


def score_pairs(seed: SeededPeople, found_groups: list[list[str]]) -> PairScore:
    """Pairs of found groups that hold a seeded record (labels; other records as their own
    names) against the seed's true pairs: records outside the seed are out of scope unless
    a seeded record was grouped with them, which counts as a false pair."""
    labels = {record.label for record in seed.records}
    found = {
        frozenset(pair)
        for group in found_groups
        for pair in combinations(group, 2)
        if labels & set(pair)
    }
    truth = seed.true_pairs()
    return PairScore(
        true_positives=len(found & truth),
        found=len(found),
        expected=len(truth),
        false_pairs=sorted(tuple(sorted(p)) for p in found - truth),
        missed_pairs=sorted(tuple(sorted(p)) for p in truth - found),
    )
