"""Deterministic portal generation: the same seed and anchor day give byte-identical data.

Timestamps are relative to `anchor_ms` (by default today's UTC midnight) so recency-based
scoring stays meaningful whatever day the demo runs. Ids follow creation time, like HubSpot.
Two imports give large blocks of contacts with one identical `createdate`/`lastmodifieddate`
(at least 10,500 for portals of 20,000+ contacts) so adapters must cope with >10,000 ties in
search. Generation is one pass with plain dicts and shared strings, and nothing in it grows
faster than the data: a portal of 100k contacts with its engagement and labelled duplicates
seeds in about 25 s on a shared 2-core machine.
"""

from __future__ import annotations

import bisect
import random
from typing import Any

from . import seed_data as D
from .schema import INDUSTRIES
from .seed_meta import bucket, stage_ids
from .store import ID_BASE, Store
from .values import DAY_MS, format_ms, parse_ms

HOUR_MS = 3_600_000
_INDUSTRY_KEYS = sorted(INDUSTRIES)
_CAPS = {name: name.capitalize() for name in D.FIRST_NAMES + D.LAST_NAMES}
_NUM = [str(i) for i in range(1000)]  # shared strings for small counts


class PortalBuilder:
    """Fills a `Store` with owners, companies, contacts, deals and tasks from one RNG."""

    def __init__(self, store: Store, rng: random.Random, anchor_ms: int) -> None:
        self.store, self.rng, self.anchor = store, rng, anchor_ms
        self.owner_ids = [o["id"] for o in store.owners]
        self.emails: set[str] = set()

    def ts(self, days_ago: float) -> int:
        return self.anchor - int(days_ago * DAY_MS) - int(self.rng.random() * DAY_MS / 4)

    def build(self, n_contacts: int) -> None:
        companies = self.companies(max(10, n_contacts // 8))
        contacts = self.contacts(n_contacts, companies)
        self.deals_and_tasks(contacts, companies)

    # ----- companies -------------------------------------------------------------------
    def companies(self, count: int) -> list[dict[str, Any]]:
        rng, seen, rows = self.rng, set(), []
        for i in range(count):
            if i == 0:
                name, domain = D.COMPETITOR
            else:
                stem = rng.choice(D.COMPANY_HEADS) + rng.choice(D.COMPANY_TAILS)
                name = stem.capitalize() + rng.choice(D.COMPANY_SUFFIXES)
                domain = f"{stem}.{rng.choice(D.TLDS)}"
                if domain in seen:
                    domain = f"{stem}{i}.{rng.choice(D.TLDS)}"
            seen.add(domain)
            size = int(rng.lognormvariate(4.0, 1.6)) + 1
            created = self.ts(rng.uniform(400, 2000))
            props = {
                "name": name,
                "domain": domain,
                "industry": rng.choice(_INDUSTRY_KEYS),
                "numberofemployees": str(size),
                "country": rng.choice(D.COUNTRIES),
                "city": rng.choice(D.CITIES),
                "annualrevenue": str(size * rng.randrange(80, 300) * 1000),
            }
            if rng.random() < 0.7:
                props["hubspot_owner_id"] = rng.choice(self.owner_ids)
            rows.append((created, props))
        return self._insert("companies", rows)

    # ----- contacts --------------------------------------------------------------------
    def contacts(
        self, n: int, companies: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], D.Persona]]:
        rng = self.rng
        block1 = min(int(n * 0.6), max(int(n * 0.12), 10_500 if n >= 20_000 else 0))
        block2 = int(n * 0.03)
        imports = [(block1, self.ts(200)), (block2, self.ts(45))]
        total = sum(p.weight for p in D.PERSONAS)
        cumulative, acc = [], 0.0
        for persona in D.PERSONAS:
            acc += persona.weight / total
            cumulative.append(acc)
        outbound = next(p for p in D.PERSONAS if p.name == "outbound")
        competitors = max(1, n // 2000)
        rows: list[tuple[int, dict[str, str], D.Persona, dict[str, Any] | None]] = []
        for i in range(n):
            if i < block1 + block2:
                persona, stamp = outbound, imports[0][1] if i < block1 else imports[1][1]
            elif i < block1 + block2 + competitors:
                persona, stamp = D.COMPETITOR_PERSONA, 0
            else:
                pick = bisect.bisect_left(cumulative, rng.random())
                persona, stamp = D.PERSONAS[min(pick, len(D.PERSONAS) - 1)], 0
            employer = (
                companies[0]
                if persona is D.COMPETITOR_PERSONA
                else companies[self.between(1, len(companies) - 1)]
            )
            created, props, company = self.contact(persona, employer, stamp)
            rows.append((created, props, persona, company))
        rows.sort(key=lambda row: row[0])
        inserted = self._insert("contacts", [(row[0], row[1]) for row in rows])
        for record, (_, _, _, company) in zip(inserted, rows, strict=True):
            if company is not None:
                self.store.associate("contacts", record["id"], "companies", company["id"], (1, 279))
        return [(record, row[2]) for record, row in zip(inserted, rows, strict=True)]

    def contact(
        self, persona: D.Persona, company: dict[str, Any] | None, import_ms: int
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """One contact's properties; returns the company only when the email is its domain."""
        rand, pick = self.rng.random, self.pick
        first, last = pick(D.FIRST_NAMES), pick(D.LAST_NAMES)
        cprops = company["properties"] if company else {}
        roll = rand()
        if persona.name == "junk" and roll < 0.3:
            domain, company = pick(D.DISPOSABLE), None
        elif roll < persona.free_mail:
            domain, company = pick(D.FREE_MAIL), None
        else:
            domain = cprops["domain"]
        props = {
            "firstname": _CAPS[first],
            "lastname": _CAPS[last],
            "email": self._email(first, last, domain),
            "hs_analytics_source": pick(persona.sources),
        }
        title = pick(persona.titles)
        if title:
            props["jobtitle"] = title
        if company is not None or rand() < 0.4:
            props["company"] = cprops["name"]
            props["industry"] = INDUSTRIES[cprops["industry"]]
            props["numemployees"] = bucket(int(cprops["numberofemployees"]))
        props["country"] = cprops["country"] if company is not None else pick(D.COUNTRIES)
        if rand() < persona.owned:
            props["hubspot_owner_id"] = pick(self.owner_ids)
        for key, choices in (
            ("lifecyclestage", persona.stages),
            ("hs_lead_status", persona.lead_statuses),
            ("hs_buying_role", persona.roles),
            ("qualification_need", persona.qualification),
            ("qualification_budget", persona.qualification),
            ("qualification_timing", persona.qualification),
        ):
            value = pick(choices)
            if value:
                props[key] = value
        if import_ms:
            created = last_modified = import_ms
        else:
            created, last_modified = self._engagement(persona, props)
        if persona.name in ("junk", "cold") and rand() < 0.06:
            props["hs_email_hard_bounce_reason_enum"] = pick(("UNKNOWN_USER", "MAILBOX_FULL"))
        props["createdate"] = format_ms(created)
        props["lastmodifieddate"] = format_ms(last_modified)
        return created, props, company

    def pick(self, seq: tuple[str, ...] | list[str]) -> str:
        """`random.choice` without its overhead (called millions of times when seeding)."""
        return seq[int(self.rng.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low + 1)) if high > low else low

    def _engagement(self, persona: D.Persona, props: dict[str, str]) -> tuple[int, int]:
        """Fill analytics/email/conversion history, all between `createdate` and the persona's
        last activity; returns (createdate, lastmodifieddate)."""
        rand, between = self.rng.random, self.between
        last_days = persona.last_visit_days[0] + rand() * (
            persona.last_visit_days[1] - persona.last_visit_days[0]
        )
        created = self.ts(last_days + 5 + rand() * 700)
        active = self.ts(last_days)
        stamps = [created + HOUR_MS]
        if persona.name != "outbound":
            views = between(*persona.page_views)
            if views:
                props["hs_analytics_num_page_views"] = _NUM[views]
                props["hs_analytics_last_visit_timestamp"] = format_ms(active)
                stamps.append(active)
            if persona.recent:
                recent = max(created, active - between(0, 2 * HOUR_MS))
                first = between(created, recent)
                props["first_conversion_event_name"] = self.pick(persona.first or persona.recent)
                props["first_conversion_date"] = format_ms(first)
                props["recent_conversion_event_name"] = self.pick(persona.recent)
                props["recent_conversion_date"] = format_ms(recent)
                props["num_conversion_events"] = _NUM[between(1, 6)]
                stamps.append(recent)
            props["hs_email_optout"] = "true" if rand() < 0.03 else "false"
            opens, clicks = between(*persona.opens), between(*persona.clicks)
            recently = max(created, active - 10 * DAY_MS)
            if opens:
                props["hs_email_open"] = _NUM[opens]
                props["hs_email_click"] = _NUM[min(clicks, opens)]
                stamps.append(between(recently, active))
                props["hs_email_last_open_date"] = format_ms(stamps[-1])
                if clicks:
                    stamps.append(between(recently, stamps[-1]))
                    props["hs_email_last_click_date"] = format_ms(stamps[-1])
            for key, rate in (
                ("hs_sales_email_last_replied", persona.reply_rate),
                ("engagements_last_meeting_booked", persona.meeting_rate),
            ):
                if rand() < rate:
                    stamps.append(between(recently, active))
                    props[key] = format_ms(stamps[-1])
        return created, min(self.anchor - 1, max(stamps) + between(0, 60_000))

    def _email(self, first: str, last: str, domain: str) -> str:
        email = f"{first}.{last}@{domain}"
        n = 1
        while email in self.emails:
            n += 1
            email = f"{first}.{last}{n}@{domain}"
        self.emails.add(email)
        return email

    # ----- deals and tasks -------------------------------------------------------------
    def deals_and_tasks(
        self, contacts: list[tuple[dict[str, Any], D.Persona]], companies: list[dict[str, Any]]
    ) -> None:
        rng, pipes = self.rng, [stage_ids(p) for p in self.store.pipelines]
        deal_rows, links, task_rows, task_links = [], [], [], []
        for record, persona in contacts:
            props = record["properties"]
            kinds = [persona.deal] if persona.deal else []
            if persona.deal == "won" and rng.random() < 0.2:
                kinds.append("won")
            for nth, kind in enumerate(kinds):
                p = 0 if rng.random() < 0.7 else 1
                created = rng.randint(parse_ms(record["createdAt"]) or 0, self.anchor - DAY_MS)
                buyer = props.get("company", props["lastname"])
                amount = rng.randrange(20, 1500) * 100
                deal = {
                    "dealname": f"{buyer} - {rng.choice(D.DEAL_PRODUCTS)}",
                    "pipeline": self.store.pipelines[p]["id"],
                    "dealstage": rng.choice(pipes[p][kind]),
                    "amount": str(amount) if rng.random() < 0.6 else f"{amount}.00",
                    "dealtype": "existingbusiness" if nth else "newbusiness",
                }
                close = (
                    rng.randint(created, self.anchor - 1)
                    if kind != "open"
                    else (self.anchor + rng.randrange(10, 120) * DAY_MS)
                )
                deal["closedate"] = format_ms(close)
                touched = max(created + rng.randrange(0, DAY_MS), close if kind != "open" else 0)
                deal["hs_lastmodifieddate"] = format_ms(min(touched, self.anchor - 1))
                if kind == "won" and rng.random() < 0.45:
                    deal["hs_mrr"] = str(round(amount / 12, 2))
                if "hubspot_owner_id" in props:
                    deal["hubspot_owner_id"] = props["hubspot_owner_id"]
                deal_rows.append((created, deal))
                links.append(record)
            if persona.name in ("hot", "warm", "opportunity") and rng.random() < 0.06:
                due = self.anchor + rng.randrange(-5, 10) * DAY_MS
                done = rng.random() < 0.3
                task = {
                    "hs_task_subject": rng.choice(D.TASK_SUBJECTS).format(name=props["firstname"]),
                    "hs_task_type": rng.choice(("CALL", "EMAIL", "TODO")),
                    "hs_task_status": "COMPLETED" if done else "NOT_STARTED",
                    "hs_task_priority": rng.choice(("NONE", "LOW", "MEDIUM", "HIGH")),
                    "hs_timestamp": format_ms(due),
                    "hs_task_is_completed": "1" if done else "0",
                }
                if "hubspot_owner_id" in props:
                    task["hubspot_owner_id"] = props["hubspot_owner_id"]
                task_rows.append((self.anchor - rng.randrange(1, 30) * DAY_MS, task))
                task_links.append(record)
        self._link("deals", deal_rows, links, 3)
        self._link("tasks", task_rows, task_links, 204)

    def _link(
        self,
        object_type: str,
        rows: list[tuple[int, dict[str, str]]],
        owners_: list[dict[str, Any]],
        type_id: int,
    ) -> None:
        order = sorted(range(len(rows)), key=lambda i: rows[i][0])
        inserted = self._insert(object_type, [rows[i] for i in order])
        for record, i in zip(inserted, order, strict=True):
            contact = owners_[i]
            self.store.associate(object_type, record["id"], "contacts", contact["id"], (type_id,))
            if object_type == "deals":
                cprops = contact["properties"]
                cprops["num_associated_deals"] = str(
                    int(cprops.get("num_associated_deals", "0")) + 1
                )
                if (
                    record["createdAt"] > cprops["lastmodifieddate"]
                ):  # same format: text order is time order
                    cprops["lastmodifieddate"] = contact["updatedAt"] = record["createdAt"]
                for company_id in self.store.associations("contacts", contact["id"], "companies"):
                    self.store.associate("deals", record["id"], "companies", company_id, (5, 341))

    def _insert(
        self, object_type: str, rows: list[tuple[int, dict[str, str]]]
    ) -> list[dict[str, Any]]:
        """Assign ascending ids (with gaps, as in a real portal) in creation order."""
        created_key = "hs_createdate" if object_type == "tasks" else "createdate"
        modified_key = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        next_id, out = ID_BASE[object_type] + 1000, []
        for created, props in rows:
            next_id += self.between(1, 3)
            oid = str(next_id)
            props.setdefault(created_key, format_ms(created))
            props.setdefault(
                modified_key,
                format_ms(
                    created + self.rng.randrange(0, DAY_MS)
                    if object_type != "contacts"
                    else created
                ),
            )
            props["hs_object_id"] = oid
            record = {
                "id": oid,
                "properties": props,
                "createdAt": props[created_key],
                "updatedAt": props[modified_key],
                "archived": False,
            }
            self.store.insert(object_type, record)
            out.append(record)
        return out
