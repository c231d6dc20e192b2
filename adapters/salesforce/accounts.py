"""Lead-to-account matching (mapping `[accounts]`): a Lead is linked to the existing Account
its business email domain or its company names, so it scores and qualifies as the Contact it
would become.

The candidates come from one of two places, and the match is the same for both
(`find_accounts`). Over REST, one query per page of Leads read (more only when the page's
values overflow one request's URI): the Accounts whose Website contains one of the page's
business email domains (`LIKE '%acme.com%'`) or whose Name equals a Lead's Company or starts
with its normalised form (`LIKE 'acme%'`), each with its open Opportunities by subquery. The
query is broad on purpose, since Websites are typed by hand (`https://www.acme.com/`). On a
full read through Bulk API 2.0, every Account and every open Opportunity, read once by two
query jobs and staged (`bulk.BulkReads.accounts`). The match itself is exact, in Python: the
Website's host without `www.` equals the email domain, or the Account Name and the Company are
the same once normalised (case, accents, punctuation and legal suffixes gone:
`normalise_company`). Free-mail domains never match. The domain decides before the name; two
Accounts equally matched are a guess, and the Lead stays unlinked.

A linked Lead takes from its Account only the fit fields it lacks (`[accounts.profile]`),
the Account's open Opportunities as its open deals (the person is in an active cycle), and
the Account's id (`Contact.account_id`, for reports). An unreadable Account value is left
out: the Account is context, not the record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

from crm_qualify.adapters.salesforce.soql import MAX_QUERY_URI, quote
from crm_qualify.adapters.salesforce.values import number, parse_time, text, whole
from crm_qualify.connector.contract import TranslationError
from crm_qualify.connector.decision.identity_keys import (
    email_domain,
    is_free_mail,
    normalise_company,
)
from crm_qualify.connector.model import Contact, Deal

SECTION = "accounts"
FIELDS = ("industry", "employees", "country")
"""Canonical fit fields an Account can give a Lead."""
_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_LIKE_SAFE = re.compile(r"[a-z0-9 ]+")
Pages = Callable[[str, str], Iterator[list[dict[str, Any]]]]
OPPORTUNITY_FIELDS = ("Id", "IsClosed", "IsWon", "Amount", "Type", "CreatedDate")
"""What an open Opportunity gives a linked Lead (`_open_deal`)."""


@dataclass(frozen=True)
class AccountMapping:
    match_leads: bool = False
    name: str = "Name"
    website: str = "Website"
    profile: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> AccountMapping:
        section = document.get(SECTION, {})
        profile = dict(section.get("profile", {}))
        unknown = sorted(set(profile) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"accounts.profile: {', '.join(unknown)} cannot come from an Account; "
                f"known: {', '.join(FIELDS)}"
            )
        return cls(
            match_leads=bool(section.get("match_leads", False)),
            name=section.get("name", "Name"),
            website=section.get("website", "Website"),
            profile=profile,
        )

    def fields(self) -> list[str]:
        """The Account fields read: its id, what it is matched by and what it gives."""
        return list(dict.fromkeys(["Id", self.name, self.website, *self.profile.values()]))

    def select(self) -> str:
        opportunities = (
            f"(SELECT {', '.join(OPPORTUNITY_FIELDS)} FROM Opportunities WHERE IsClosed = false)"
        )
        return f"SELECT {', '.join([*self.fields(), opportunities])} FROM Account WHERE "

    def domain_of(self, row: dict[str, Any]) -> str | None:
        """The website domain an Account row is matched by."""
        return website_domain(_text(row, self.website))

    def name_of(self, row: dict[str, Any]) -> str | None:
        """The normalised name an Account row is matched by."""
        return normalise_company(_text(row, self.name))


@dataclass(frozen=True)
class Account:
    id: str
    row: dict[str, Any]
    opportunities: list[dict[str, Any]]


def website_domain(website: str | None) -> str | None:
    """The host a Website names (`https://www.Acme.com/about` -> `acme.com`)."""
    if not website:
        return None
    address = website.strip().lower()
    host = urlsplit(address if "//" in address else f"//{address}").hostname or ""
    host = host.removeprefix("www.")
    return host if _DOMAIN.fullmatch(host) else None


def business_domain(email: str | None) -> str | None:
    domain = email_domain(email)
    return domain if domain and _DOMAIN.fullmatch(domain) and not is_free_mail(domain) else None


def statements(mapping: AccountMapping, domains: Sequence[str], names: Sequence[str]) -> list[str]:
    """The Account queries for these domains and company names, as few as fit the URI: a
    name whose normalised form starts it (`Acme Inc`: `acme%`) needs no `Name =` of its own."""
    normalised = {n for name in names if (n := normalise_company(name)) and _LIKE_SAFE.fullmatch(n)}
    conditions = [f"{mapping.website} LIKE {quote(f'%{d}%')}" for d in sorted(set(domains))]
    conditions += [f"{mapping.name} LIKE {quote(f'{n}%')}" for n in sorted(normalised)]
    conditions += [
        f"{mapping.name} = {quote(n)}" for n in sorted(set(names)) if not _by_prefix(n, normalised)
    ]
    base = mapping.select()
    found, chunk, length = [], [], len(quote_plus(base))
    for condition in conditions:
        cost = len(quote_plus(f" OR {condition}"))
        if chunk and length + cost > MAX_QUERY_URI:
            found.append(base + " OR ".join(chunk))
            chunk, length = [], len(quote_plus(base))
        chunk.append(condition)
        length += cost
    if chunk:
        found.append(base + " OR ".join(chunk))
    return found


def _by_prefix(name: str, normalised: set[str]) -> bool:
    """Whether `Name LIKE '<normalised>%'` already finds an Account named `name`."""
    plain = normalise_company(name)
    return plain in normalised and name.lower().startswith(plain or "")


Candidates = Callable[[Sequence[str], Sequence[str]], Iterable[Account]]
"""(business email domains, company names) -> at least every Account that matches one of
them, with its open Opportunities (more are harmless: `find_accounts` matches exactly)."""


REMEMBERED_ACCOUNTS = 10_000
"""Accounts one `queried` keeps for later pages (what the match and the Lead take, a few
hundred bytes each); past it, it starts over, so a read of every Lead over REST stays bounded."""


def queried(pages: Pages, mapping: AccountMapping) -> Candidates:
    """Candidates through REST: the `statements` for a page of Leads, less the domains and
    company names an earlier page of the same read asked already (a company's Leads spread
    over pages). The Accounts a query matches exactly are kept for them, with only the fields
    the match and the Lead take; the query's other rows are left (asked for, they are found
    again)."""
    matched: dict[tuple[str, str], dict[str, Account]] = {}  # (kind, value) -> id -> Account
    asked: set[tuple[str, str]] = set()  # ("domain", domain) | ("name", company as given)
    fields = mapping.fields()
    kept = 0

    def candidates(domains: Sequence[str], names: Sequence[str]) -> list[Account]:
        nonlocal kept
        if kept > REMEMBERED_ACCOUNTS:
            matched.clear()
            asked.clear()
            kept = 0
        new_domains = [d for d in domains if ("domain", d) not in asked]
        new_names = [n for n in names if ("name", n) not in asked]
        wanted = {("domain", d) for d in new_domains}
        wanted |= {("name", n) for name in new_names if (n := normalise_company(name))}
        for statement in statements(mapping, new_domains, new_names):
            for page in pages("GET query Account", statement):
                for row in page:
                    slim = None
                    for kind, value in (
                        ("domain", mapping.domain_of(row)),
                        ("name", mapping.name_of(row)),
                    ):
                        if value and (kind, value) in wanted:
                            slim = slim or _slim(row, fields)
                            if slim is not None:
                                matched.setdefault((kind, value), {})[slim.id] = slim
                                kept += 1
        asked.update(("domain", d) for d in new_domains)
        asked.update(("name", n) for n in new_names)
        keys = [("domain", d) for d in domains]
        keys += [("name", n) for name in names if (n := normalise_company(name))]
        given = {i: a for key in keys for i, a in matched.get(key, {}).items()}
        return [given[i] for i in sorted(given)]

    return candidates


def _slim(row: dict[str, Any], fields: list[str]) -> Account | None:
    """An Account row of a REST answer (`_account`) with only the fields the match and the
    Lead take, kept for later pages."""
    if (found := _account(row)) is None:
        return None
    kept = {name: found.row[name] for name in fields if name in found.row}
    deals = [{n: r[n] for n in OPPORTUNITY_FIELDS if n in r} for r in found.opportunities]
    return Account(found.id, kept, deals)


def find_accounts(
    candidates: Candidates, mapping: AccountMapping, email_field: str, company_field: str,
    leads: list[dict[str, Any]],
) -> dict[str, Account]:  # fmt: skip
    """Lead id -> the Account it is linked to, for a page of Lead rows."""
    domains = {row["Id"]: d for row in leads if (d := business_domain(_text(row, email_field)))}
    companies = {row["Id"]: c for row in leads if (c := _text(row, company_field))}
    if not mapping.match_leads or not (domains or companies):
        return {}
    by_domain: dict[str, list[Account]] = {}
    by_name: dict[str, list[Account]] = {}
    for found in candidates(sorted(set(domains.values())), sorted(set(companies.values()))):
        if d := mapping.domain_of(found.row):
            by_domain.setdefault(d, []).append(found)
        if n := mapping.name_of(found.row):
            by_name.setdefault(n, []).append(found)
    linked: dict[str, Account] = {}
    for row in leads:
        lead = row.get("Id")
        candidates_of = by_domain.get(domains.get(lead, ""), []) or by_name.get(
            normalise_company(companies.get(lead)) or "", []
        )
        if len({a.id for a in candidates_of}) == 1:
            linked[lead] = candidates_of[0]
    return linked


def with_account(
    contact: Contact, account: Account, mapping: AccountMapping, recurring: re.Pattern
) -> Contact:
    """The Lead with what its Account gives: fit fields it lacks, open deals, the link."""
    update: dict[str, Any] = {"account_id": account.id}
    for name, account_field in mapping.profile.items():
        if getattr(contact, name) is not None:
            continue
        try:
            value = (
                whole(account.row, account_field)
                if name == "employees"
                else text(account.row, account_field, "Account")
            )
        except TranslationError:
            continue
        if value is not None:
            update[name] = value
    known = {deal.id for deal in contact.deals}
    deals = [_open_deal(row, recurring) for row in account.opportunities]
    update["deals"] = [*contact.deals, *(d for d in deals if d and d.id not in known)]
    return contact.model_copy(update=update)


def _open_deal(row: dict[str, Any], recurring: re.Pattern) -> Deal | None:
    """An open Opportunity of the Account (the subquery reads only open ones)."""
    try:
        return Deal(
            id=row["Id"],
            status="open",
            amount=number(row, "Amount", "Opportunity"),
            recurring=bool(recurring.search(text(row, "Type", "Opportunity") or "")),
            created_at=parse_time(row.get("CreatedDate"), "Opportunity.CreatedDate"),
        )
    except (TranslationError, KeyError, ValueError):
        return None


def _account(row: dict[str, Any]) -> Account | None:
    """An Account row of a REST answer, its open Opportunities from the subquery."""
    children = row.get("Opportunities")
    return account(row, children.get("records") if isinstance(children, dict) else None)


def account(row: dict[str, Any], opportunities: list[Any] | None) -> Account | None:
    """An Account row with its Opportunities; None without an id. Only open ones are kept
    (`IsClosed` true from REST, "true" from a Bulk CSV: closed)."""
    account_id = row.get("Id")
    if not isinstance(account_id, str):
        return None
    kept = [
        r
        for r in opportunities or []
        if isinstance(r, dict)
        and isinstance(r.get("Id"), str)
        and r.get("IsClosed") not in (True, "true")
    ]
    return Account(account_id, row, kept)


def _text(row: dict[str, Any], name: str) -> str | None:
    try:
        return text(row, name)
    except TranslationError:
        return None
