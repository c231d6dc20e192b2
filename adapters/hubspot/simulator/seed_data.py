"""Vocabulary and persona profiles for the seeded portal (pure data, no randomness here).

Personas are what make the portal useful for qualification: each one stands for a kind of
contact a scoring rule set must tell apart (hot inbound buyer, dormant good fit, outbound
import, junk sign-up, competitor snooping on pricing, ...).
"""

from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    "james mary robert patricia john jennifer michael linda david elizabeth william barbara "
    "richard susan joseph jessica thomas sarah charles karen daniel nancy matthew lisa "
    "anthony betty mark sandra paul ashley steven kimberly andrew emily joshua donna kevin "
    "michelle brian carol george amanda timothy melissa jason deborah ryan stephanie jacob "
    "rebecca lukas anna leon sofia noah emma mateo lucia hiroshi yuki arjun priya wei mei "
    "olivia liam chloe ethan"
)
LAST_NAMES = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell "
    "carter roberts muller schmidt schneider fischer weber meyer rossi russo dubois moreau "
    "tanaka sato patel sharma chen wang"
)
COMPANY_HEADS = _words(
    "north blue bright iron silver cedar quant nova apex stellar lumen vertex harbor summit "
    "pioneer atlas orbit granite pixel cobalt river maple zenith ember fusion prism vector "
    "echo delta"
)
COMPANY_TAILS = _words(
    "soft data logic works labs systems cloud metrics flow stack point bridge forge wave "
    "grid path scale sense base link"
)
# fmt: off
COMPANY_SUFFIXES = ["", " Inc", " GmbH", " Ltd", " Group", " Technologies", " Solutions", " Co"]
TLDS = ["com", "com", "com", "io", "co", "de", "net", "ai"]
FREE_MAIL = ["gmail.com", "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com",
             "gmx.de"]
DISPOSABLE = ["mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com"]
COMPETITOR = ("RivalCRM", "rivalcrm.io")
COUNTRIES = ["United States"] * 8 + [
    "United Kingdom", "United Kingdom", "Germany", "Germany", "France", "Canada", "Netherlands",
    "Australia", "India", "Brazil", "Spain", "Sweden", "Japan", "Singapore",
]
CITIES = ["New York", "Austin", "London", "Berlin", "Paris", "Toronto", "Amsterdam", "Sydney",
          "Bangalore", "Sao Paulo", "Madrid", "Stockholm", "Tokyo", "Singapore", "Chicago"]
SENIOR_TITLES = ["CEO", "CTO", "CFO", "Founder", "VP of Sales", "VP Marketing",
                 "Chief Revenue Officer", "Head of Revenue Operations", "Director of Sales",
                 "Director of IT", "Head of Growth"]
MID_TITLES = ["Marketing Manager", "Sales Manager", "Operations Manager", "Procurement Manager",
              "Senior Account Executive", "Product Manager", "Team Lead, Sales Ops"]
JUNIOR_TITLES = ["Account Executive", "Marketing Specialist", "Software Engineer", "Data Analyst",
                 "Consultant", "Office Assistant", "Sales Development Representative"]
NON_BUYER_TITLES = ["Student", "Intern", "Job seeker", "Freelancer", "Professor"]

DEMO = ("Demo request", "Pricing quote request", "Free trial signup")
CONTENT = ("Whitepaper: Security Guide", "Whitepaper: Pipeline Forecasting 101",
           "Webinar: Q3 Roadmap (attended)", "Webinar: RevOps Best Practices (attended)",
           "Ebook: The Buyer Journey")
LIGHT = ("Newsletter signup", "Webinar registration: Q3 Roadmap",
         "Webinar registration: RevOps Best Practices", "Blog subscription")
INBOUND_SOURCES = ("ORGANIC_SEARCH", "PAID_SEARCH", "DIRECT_TRAFFIC", "REFERRALS", "SOCIAL_MEDIA",
                   "EMAIL_MARKETING")
DEAL_PRODUCTS = ["Platform", "Growth plan", "Enterprise licence", "Pilot", "Analytics add-on"]
TASK_SUBJECTS = ["Follow up with {name}", "Call {name} about pricing", "Send case study to {name}",
                 "Check in with {name}"]
OWNERS = [("Alex", "Morgan"), ("Priya", "Shah"), ("Jonas", "Becker"), ("Maria", "Lopez"),
          ("Tom", "Nguyen"), ("Sofia", "Rossi"), ("Daniel", "Kim"), ("Emma", "Larsen")]
# fmt: on


@dataclass(frozen=True)
class Persona:
    """A contact archetype: value ranges are (min, max) and days are 'days before today'."""

    name: str
    weight: float
    sources: tuple[str, ...]
    titles: tuple[str, ...]
    page_views: tuple[int, int]
    last_visit_days: tuple[int, int]
    recent: tuple[str, ...]
    first: tuple[str, ...]
    opens: tuple[int, int]
    clicks: tuple[int, int]
    reply_rate: float
    meeting_rate: float
    stages: tuple[str, ...]
    lead_statuses: tuple[str, ...]
    roles: tuple[str, ...]
    qualification: tuple[str, ...]
    owned: float
    free_mail: float = 0.12
    deal: str = ""


_SENIOR = tuple(SENIOR_TITLES)
_MIXED = tuple(SENIOR_TITLES[:6] + MID_TITLES + JUNIOR_TITLES)
_Q_GOOD = ("met", "met", "in_progress", "")
_Q_ANY = ("", "", "", "in_progress", "not_met", "met")

# fmt: off
PERSONAS = [
    Persona("hot", 0.06, ("ORGANIC_SEARCH", "PAID_SEARCH", "DIRECT_TRAFFIC", "REFERRALS"),
            _SENIOR + tuple(MID_TITLES[:3]), (25, 120), (0, 7), DEMO, CONTENT + LIGHT, (5, 30),
            (2, 10), 0.5, 0.3, ("lead", "marketingqualifiedlead", "marketingqualifiedlead", ""),
            ("NEW", "OPEN", "IN_PROGRESS"), ("DECISION_MAKER", "BUDGET_HOLDER", "CHAMPION"),
            _Q_GOOD, 0.95),
    Persona("warm", 0.16, INBOUND_SOURCES, _MIXED, (8, 40), (3, 30), CONTENT, LIGHT + CONTENT,
            (3, 20), (1, 5), 0.1, 0.05, ("lead", "lead", "marketingqualifiedlead", "subscriber"),
            ("NEW", "OPEN", "ATTEMPTED_TO_CONTACT"), ("INFLUENCER", "CHAMPION", "END_USER", ""),
            _Q_ANY, 0.8),
    Persona("cold", 0.30, ("EMAIL_MARKETING", "SOCIAL_MEDIA", "ORGANIC_SEARCH", "REFERRALS"),
            _MIXED, (0, 6), (30, 400), LIGHT, LIGHT, (0, 5), (0, 1), 0.0, 0.0,
            ("subscriber", "subscriber", "lead", ""), ("NEW", "", ""), ("", "", "END_USER"),
            ("", "", "", "not_met"), 0.5, free_mail=0.25),
    Persona("dormant_fit", 0.08, INBOUND_SOURCES, _SENIOR, (10, 60), (120, 700), CONTENT + DEMO,
            CONTENT, (2, 15), (1, 6), 0.05, 0.02, ("lead", "marketingqualifiedlead"),
            ("BAD_TIMING", "UNQUALIFIED", "OPEN"), ("DECISION_MAKER", "BUDGET_HOLDER", ""),
            _Q_ANY, 0.8, free_mail=0.05),
    Persona("outbound", 0.12, ("OFFLINE",), _MIXED, (0, 0), (0, 0), (), (), (0, 0), (0, 0), 0.0,
            0.0, ("lead", "lead", ""), ("NEW", "ATTEMPTED_TO_CONTACT", ""), ("",), ("",), 0.9,
            free_mail=0.0),
    Persona("junk", 0.06, INBOUND_SOURCES, (*NON_BUYER_TITLES, ""), (0, 4), (10, 300),
            (*LIGHT, "Free trial signup"), LIGHT, (0, 2), (0, 1), 0.0, 0.0,
            ("subscriber", "lead", ""), ("UNQUALIFIED", "NEW", ""), ("",), ("", "not_met"), 0.2,
            free_mail=0.55),
    Persona("opportunity", 0.04, (*INBOUND_SOURCES, "OFFLINE"), _SENIOR + tuple(MID_TITLES),
            (15, 80), (0, 20), DEMO + CONTENT, CONTENT, (5, 25), (2, 8), 0.6, 0.6, ("opportunity",),
            ("OPEN_DEAL", "CONNECTED"), ("DECISION_MAKER", "BUDGET_HOLDER", "CHAMPION"),
            ("met", "in_progress"), 1.0, free_mail=0.02, deal="open"),
    Persona("customer", 0.05, (*INBOUND_SOURCES, "OFFLINE"), _MIXED, (5, 60), (0, 90),
            CONTENT + LIGHT, DEMO, (3, 30), (1, 10), 0.3, 0.2,
            ("customer", "customer", "evangelist"), ("CONNECTED", ""),
            ("DECISION_MAKER", "CHAMPION", "END_USER", ""), ("met",), 1.0, free_mail=0.02,
            deal="won"),
    Persona("lost", 0.02, INBOUND_SOURCES, _MIXED, (5, 40), (20, 200), CONTENT + DEMO, CONTENT,
            (2, 15), (1, 5), 0.2, 0.2, ("lead", "marketingqualifiedlead"),
            ("BAD_TIMING", "UNQUALIFIED"), ("DECISION_MAKER", "INFLUENCER", ""),
            ("not_met", "in_progress"), 1.0, free_mail=0.02, deal="lost"),
    Persona("human_advanced", 0.03, (*INBOUND_SOURCES, "OFFLINE"), _MIXED, (1, 25), (5, 120),
            CONTENT + LIGHT, LIGHT, (1, 10), (0, 4), 0.2, 0.1,
            ("salesqualifiedlead", "salesqualifiedlead", "opportunity", "other"),
            ("CONNECTED", "IN_PROGRESS"), ("CHAMPION", "INFLUENCER", ""), _Q_ANY, 1.0,
            free_mail=0.05),
]
# Engaged like a hot buyer but from the competitor's domain (they read the pricing page).
COMPETITOR_PERSONA = Persona(
    "competitor", 0.0, ("ORGANIC_SEARCH", "DIRECT_TRAFFIC"), tuple(MID_TITLES), (20, 90), (0, 10),
    DEMO, CONTENT, (2, 10), (1, 4), 0.0, 0.0, ("lead", "subscriber"), ("NEW",), ("",), ("",), 0.5,
    free_mail=0.0,
)
# fmt: on
