"""Lead-to-account matching (mapping `[accounts]`): a Lead is linked to the existing Account
its business email domain or its company names, so it scores and qualifies as the Contact it
would become.

The candidates come from one of two places, and the match is the same for both
(`find_accounts`). Over REST, one query per page of Leads read (more only when the page's
values overflow one request's URI; a domain or name an earlier page of the read asked is
not asked again, its Accounts staged on disk): the Accounts whose Website contains one of
the page's business email domains (`LIKE '%acme.com%'`) or whose Name equals a Lead's
Company or starts with its normalised form (`LIKE 'acme%'`), each with its open
Opportunities by subquery. The query is broad on purpose, since Websites are typed by hand
(`https://www.acme.com/`). On a full read through Bulk API 2.0, every Account and every open
Opportunity, read once by two query jobs and staged (`bulk.BulkReads.accounts`). The match
itself is exact, in Python: the Website's host without `www.` equals the email domain, or the
Account Name and the Company are the same once normalised (case, accents, punctuation and
legal suffixes gone: `normalise_company`). Free-mail domains never match. The domain decides
before the name; two Accounts equally matched are a guess, and the Lead stays unlinked.

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
from crm_qualify.adapters.salesforce.staging import Staging
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


ASKED_DOMAIN, ASKED_NAME, ASKED_DEALS = "asked.domain", "asked.name", "asked.deals"
"""Staged by a REST read (`queried`): the Accounts its look-ups matched exactly, by domain and
by normalised name, and their open Opportunities."""


def queried(pages: Pages, mapping: AccountMapping, staging: Staging | None = None) -> Candidates:
    """Candidates through REST: the `statements` for a page of Leads. With the read's
    `staging`, less the domains and company names an earlier page of the read asked already
    (a company's Leads spread over pages): the Accounts each query matched exactly are staged
    for them, on disk, and its other rows left."""
    asked_domains: set[str] = set()
    asked_names: set[str] = set()  # company names as given

    def candidates(domains: Sequence[str], names: Sequence[str]) -> list[Account]:
        new_domains = [d for d in domains if d not in asked_domains]
        new_names = [n for n in names if n not in asked_names]
        found: dict[str, Account] = {}
        for statement in statements(mapping, new_domains, new_names):
            for page in pages("GET query Account", statement):
                found.update((a.id, a) for row in page if (a := _account(row)) is not None)
        if staging is None:
            return list(found.values())
        _stage(staging, mapping, found.values(), new_domains, new_names)
        asked_domains.update(new_domains)
        asked_names.update(new_names)
        fresh_domains, fresh_names = set(new_domains), set(new_names)
        earlier_domains = [d for d in domains if d not in fresh_domains]
        earlier_names = {
            n for name in names if name not in fresh_names and (n := normalise_company(name))
        }
        asked_kinds = (ASKED_DOMAIN, ASKED_NAME, ASKED_DEALS)
        found.update(staged_accounts(staging, asked_kinds, earlier_domains, sorted(earlier_names)))
        return [found[i] for i in sorted(found)]

    return candidates


def _stage(
    staging: Staging,
    mapping: AccountMapping,
    found: Iterable[Account],
    domains: Sequence[str],
    names: Sequence[str],
) -> None:
    """The Accounts among `found` whose domain or normalised name was asked for, with only
    the fields the match and the Lead take."""
    asked_domains = set(domains)
    asked_names = {n for name in names if (n := normalise_company(name))}
    fields = mapping.fields()
    by_domain, by_name, deals = [], [], []
    for hit in found:
        row = {field: hit.row[field] for field in fields if field in hit.row}
        domain, name = mapping.domain_of(row), mapping.name_of(row)
        if domain in asked_domains:
            by_domain.append((domain, row))
        if name in asked_names:
            by_name.append((name, row))
        if domain in asked_domains or name in asked_names:
            deals += [(hit.id, _deal_fields(r)) for r in hit.opportunities]
    for kind, rows in ((ASKED_DOMAIN, by_domain), (ASKED_NAME, by_name), (ASKED_DEALS, deals)):
        staging.add(kind, rows)
        staging.finish(kind)


def _deal_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in OPPORTUNITY_FIELDS if name in row}


def staged_accounts(
    staging: Staging, kinds: tuple[str, str, str], domains: Sequence[str], names: Sequence[str]
) -> dict[str, Account]:
    """The Accounts staged under `kinds` (by website domain, by normalised name, and their
    open Opportunities by Account) that match these domains or normalised names, by id."""
    by_domain, by_name, open_deals = kinds
    rows: dict[str, dict[str, Any]] = {}
    for kind, wanted in ((by_domain, domains), (by_name, names)):
        if wanted and kind in staging.kinds:
            for matches in staging.rows(kind, list(wanted)).values():
                rows.update((row["Id"], row) for row in matches)
    deals = staging.rows(open_deals, list(rows)) if rows else {}
    return {i: a for i, row in rows.items() if (a := account(row, deals.get(i))) is not None}


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
