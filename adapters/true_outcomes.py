"""The hidden "true" model both simulators seed won and lost deals from.

Calibration (`crm-qualify calibrate`) must find out which signals really precede a won deal.
To test that, the simulators seed people whose outcome is drawn from a model known here and
nowhere else: each signal carried before the deal adds a known amount to the log-odds of
winning, a few profile traits do too, and per-person noise stands for everything a CRM never
records. Strong signals (demo request, meeting) and weak ones (content download, click) are
told apart by their effects, not by how often they occur.

`draw_people` makes the people in canonical terms; each simulator's `seed_outcomes` renders
them as its CRM stores them (HubSpot properties and deals, Salesforce campaign members,
activities and opportunities), and `as_contact` gives the canonical contact a perfect reader
would see (tests of calibration itself, without a simulator). Deterministic for a given RNG.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from crm_qualify.connector.model import Contact, Deal, EngagementEvent, EventType, Origin

E = EventType

SIGNAL_EFFECTS: dict[EventType, float] = {
    E.DEMO_REQUEST: 1.6,
    E.MEETING_BOOKED: 1.3,
    E.EMAIL_REPLY: 0.9,
    E.WEBINAR_ATTENDED: 0.7,
    E.CONTENT_DOWNLOAD: 0.15,
    E.EMAIL_CLICK: 0.1,
    E.WEBINAR_REGISTERED: 0.0,
    E.EMAIL_OPEN: 0.0,
}
"""Log-odds of winning added by carrying the signal before the deal (presence, not count)."""
STRONG = (E.DEMO_REQUEST, E.MEETING_BOOKED)
WEAK = (E.CONTENT_DOWNLOAD, E.EMAIL_CLICK, E.WEBINAR_REGISTERED)

SIGNAL_RATES: dict[EventType, float] = {
    E.DEMO_REQUEST: 0.12,
    E.MEETING_BOOKED: 0.14,
    E.EMAIL_REPLY: 0.2,
    E.WEBINAR_ATTENDED: 0.18,
    E.CONTENT_DOWNLOAD: 0.35,
    E.EMAIL_CLICK: 0.4,
    E.WEBINAR_REGISTERED: 0.3,
    E.EMAIL_OPEN: 0.6,
}
"""Share of people carrying each signal: weak signals are the common ones, as in real funnels."""
REPEATS: dict[EventType, tuple[int, int]] = {E.EMAIL_CLICK: (1, 4), E.EMAIL_OPEN: (1, 8)}

SENIOR_TITLES = ("CTO", "CEO", "VP Marketing", "Head of Sales", "IT Director")
OTHER_TITLES = ("Marketing Manager", "Sales Operations Analyst", "Consultant",
                "Procurement Lead", "Account Executive")  # fmt: skip
INDUSTRIES = ("Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Education")
FIT_EFFECTS = {"senior_title": 0.9, "industry_technology": 0.5, "free_mail": -0.8}
"""Log-odds of profile traits: a senior title, the Technology industry, a free-mail address."""
SENIOR_SHARE, FREE_MAIL_SHARE = 0.3, 0.15
BASE_LOG_ODDS = -3.1
NOISE_SD = 0.6
"""With these, about one labelled person in five wins: a realistic B2B base rate."""
LOST_DEAL_SHARE = 0.35
"""Of the people who do not win, the share who still reached a deal (then lost it)."""
AFTER_DEAL = (E.CALL, E.MEETING_BOOKED)
"""What a sales cycle adds after the deal is opened (calls, meetings): more for winners. A
calibration that looked past the deal's creation would learn the sale itself from them."""


@dataclass(frozen=True)
class SeededPerson:
    """One person with an outcome history, in canonical terms."""

    index: int
    first_name: str
    last_name: str
    company: str
    title: str
    industry: str
    free_mail: bool
    created: datetime
    signals: tuple[tuple[EventType, datetime, int], ...]
    """(signal, when, count) before any deal, oldest first."""
    after_deal: tuple[tuple[EventType, datetime], ...]
    outcome: Literal["won", "lost", "open", "none"]
    """won / lost: a closed deal; open: a deal not closed yet; none: never reached a deal."""
    deal_created: datetime | None
    deal_closed: datetime | None
    true_probability: float

    @property
    def senior(self) -> bool:
        return self.title in SENIOR_TITLES

    @property
    def domain(self) -> str:
        """The company's web domain, which its people's business addresses use."""
        return company_domain(self.company)

    @property
    def email(self) -> str:
        mailbox = f"{self.first_name.lower()}.{self.last_name.lower()}.o{self.index}"
        return f"{mailbox}@{'gmail.com' if self.free_mail else self.domain}"


_FIRST = ("Ada", "Bruno", "Carmen", "Dev", "Elif", "Femi", "Greta", "Hana", "Ivo", "Jade",
          "Kofi", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Stellan",
          "Tamsin", "Ulrich", "Vera", "Wilhelmina", "Xavier", "Yusuf", "Zofia", "Anouk",
          "Bartholomew", "Cyrus", "Delphine", "Emeka", "Fiorella", "Gunnar", "Hiroshi",
          "Isadora", "Jovan", "Katarzyna", "Leopold", "Marisol", "Niamh")  # fmt: skip
_LAST = ("Alvarez", "Berg", "Costa", "Dumont", "Eriksen", "Fujita", "Gallo", "Horvat",
         "Ibsen", "Jankowski", "Kowalczyk", "Lindgren", "Moreau", "Nakamura", "Okonkwo",
         "Petrov", "Quispe", "Rasmussen", "Santoro", "Thorsen", "Underwood", "Varga",
         "Whitaker", "Xenakis", "Yamamoto", "Zielinski", "Abernathy", "Bianchi", "Castellanos",
         "Drummond", "Esposito", "Fairbanks", "Gruenwald", "Hallorann", "Iwasaki", "Jespersen",
         "Kavanagh", "Lombardi", "Mbeki", "Novak")  # fmt: skip
_COMPANY_WORDS = ("Apex", "Birchwood", "Cobalt", "Driftline", "Ember", "Foxglove", "Granite",
                  "Harborview", "Ironbark", "Juniper", "Kestrel", "Lumen", "Meridian",
                  "Nimbus", "Orchard", "Pioneer", "Quarry", "Redfern", "Solstice", "Tidewater",
                  "Umbra", "Vantage", "Wildrose", "Zephyr")  # fmt: skip
_COMPANY_KINDS = ("Systems", "Labs", "Works", "Partners", "Logistics", "Health", "Capital",
                  "Foods")  # fmt: skip
PEOPLE_PER_COMPANY = 3
"""People of one company sit next to each other by index; each has a name of their own, so
the identity rules (same mailbox, same name at one company) find no false duplicates."""


def person_name(index: int) -> tuple[str, str]:
    """A first and last name spread over all pairs (7,919 is prime to their 1,600), so
    neighbours, who share a company, never share a first name."""
    slot = index * 7_919 % (len(_FIRST) * len(_LAST))
    return _FIRST[slot % len(_FIRST)], _LAST[slot // len(_FIRST)]


def company_of(index: int) -> str:
    """The company of person `index`: a name of its own for every `PEOPLE_PER_COMPANY`."""
    number = index // PEOPLE_PER_COMPANY
    words, kinds = len(_COMPANY_WORDS), len(_COMPANY_KINDS)
    name = f"{_COMPANY_WORDS[number % words]} {_COMPANY_KINDS[number // words % kinds]}"
    return name if number < words * kinds else f"{name} {number // (words * kinds) + 1}"


def company_domain(company: str) -> str:
    return "-".join(company.lower().split()) + ".example"


def company_industry(company: str) -> str:
    """One industry per company, the same whichever of its people asks."""
    return random.Random(company).choice(INDUSTRIES)


def true_log_odds(signals: set[EventType], senior: bool, industry: str, free_mail: bool) -> float:
    """The hidden model, without the per-person noise."""
    value = BASE_LOG_ODDS + sum(SIGNAL_EFFECTS.get(kind, 0.0) for kind in signals)
    value += FIT_EFFECTS["senior_title"] * senior
    value += FIT_EFFECTS["industry_technology"] * (industry == "Technology")
    return value + FIT_EFFECTS["free_mail"] * free_mail


def draw_people(rng: random.Random, count: int, now: datetime) -> list[SeededPerson]:
    """`count` people created over the last two years, their signals in the weeks after, and
    an outcome drawn from the true model: a deal opened days after their last signal and
    closed weeks later (still open if that is after `now`), or no deal at all."""
    people = []
    for index in range(count):
        created = now - timedelta(days=rng.uniform(30, 730))
        signals = []
        for kind, rate in SIGNAL_RATES.items():
            if rng.random() < rate:
                at = created + timedelta(days=rng.uniform(0.1, 40))
                low, high = REPEATS.get(kind, (1, 1))
                signals.append((kind, min(at, now - timedelta(hours=1)), rng.randint(low, high)))
        signals.sort(key=lambda item: item[1])
        title = rng.choice(SENIOR_TITLES if rng.random() < SENIOR_SHARE else OTHER_TITLES)
        company = company_of(index)
        industry = company_industry(company)
        free_mail = rng.random() < FREE_MAIL_SHARE
        odds = true_log_odds({s[0] for s in signals}, title in SENIOR_TITLES, industry, free_mail)
        probability = 1 / (1 + math.exp(-(odds + rng.gauss(0, NOISE_SD))))
        won = rng.random() < probability
        deal = won or rng.random() < LOST_DEAL_SHARE
        last = signals[-1][1] if signals else created
        opened = last + timedelta(days=rng.uniform(2, 30)) if deal else None
        if opened is not None and opened >= now - timedelta(days=1):
            opened, deal = None, False
        closed = opened + timedelta(days=rng.uniform(15, 120)) if opened else None
        outcome: Literal["won", "lost", "open", "none"] = "none"
        if deal:
            outcome = "open" if closed and closed > now else ("won" if won else "lost")
        after = []
        if opened is not None:
            end = min(closed or now, now)
            for kind in AFTER_DEAL:
                if rng.random() < (0.9 if won else 0.3):
                    after.append((kind, opened + (end - opened) * rng.uniform(0.05, 0.95)))
        first_name, last_name = person_name(index)
        people.append(
            SeededPerson(
                index=index,
                first_name=first_name,
                last_name=last_name,
                company=company,
                title=title,
                industry=industry,
                free_mail=free_mail,
                created=created,
                signals=tuple(signals),
                after_deal=tuple(after),
                outcome=outcome,
                deal_created=opened,
                deal_closed=closed if outcome in ("won", "lost") else None,
                true_probability=probability,
            )
        )
    return people


def as_contact(person: SeededPerson) -> Contact:
    """The canonical contact a reader that missed nothing would give for `person`."""
    events = [EngagementEvent(type=k, at=at, count=n) for k, at, n in person.signals]
    events += [EngagementEvent(type=k, at=at) for k, at in person.after_deal]
    deals = []
    if person.deal_created is not None:
        status: Literal["open", "won", "lost"] = (
            "open" if person.outcome == "open" else person.outcome  # type: ignore[assignment]
        )
        deals.append(
            Deal(
                id=f"deal-{person.index}",
                status=status,
                created_at=person.deal_created,
                closed_at=person.deal_closed,
            )
        )
    return Contact(
        id=f"o{person.index}",
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        company=person.company,
        title=person.title,
        industry=person.industry,
        origin=Origin.INBOUND,
        created_at=person.created,
        events=sorted(events, key=lambda e: e.at),
        deals=deals,
    )
