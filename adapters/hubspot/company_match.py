"""Company matching by email domain (mapping `[companies] match_domain`): a contact with no
associated company, whose business email domain is an existing company's `domain`, takes
that company's firmographics as if it were associated (`companies.fill`: only the fields the
contact lacks), and the company's id (`Contact.account_id`, for reports).

HubSpot itself associates a contact with the company of its email domain when the portal's
"automatically create and associate companies" setting is on; this covers portals where it is
off, and contacts imported or created before a company existed. Free-mail domains never
match; a domain two companies hold is a guess, and the contact stays unmatched. Asked once
per read batch: one companies search, `domain IN (...)` (HubSpot takes 100 values per filter
and a 3,000-character body: one search more per ~100 such contacts), with the company
properties `[companies.profile]` reads. Only contacts read with their company links are
looked at (`fill_missing = true`), so a contact whose links could not be read is never
matched by guess. A search HubSpot refuses leaves the batch unmatched (logged), never
unread: the match is context, and the contact's next read tries again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError
from crm_qualify.adapters.hubspot.companies import COMPANIES
from crm_qualify.adapters.hubspot.records import (
    FILTER_VALUES,
    SEARCH_BODY_LIMIT,
    ContactRows,
    next_after,
)
from crm_qualify.adapters.hubspot.values import objects, properties_of, record_id
from crm_qualify.connector.decision.identity_keys import email_domain, is_free_mail
from crm_qualify.connector.model import Contact

log = logging.getLogger(__name__)
SEARCH_PAGE = 200


@dataclass(frozen=True)
class DomainMatch:
    enabled: bool = False
    domain_property: str = "domain"

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> DomainMatch:
        section = document.get(COMPANIES, {})
        return cls(
            enabled=bool(section.get("match_domain", False)),
            domain_property=section.get("domain_property", "domain"),
        )


def find_companies(
    client: HubSpotClient,
    match: DomainMatch,
    read: ContactRows,
    email_property: str,
    properties: list[str],
) -> dict[str, dict[str, Any]]:
    """Contact id -> the company row its email domain names, for the batch's contacts that
    were read with their company links and have none."""
    company_links = read.others.get(COMPANIES)
    if not match.enabled or company_links is None:
        return {}
    links = company_links[0]
    wanted: dict[str, str] = {}
    for contact, row in read.contacts.found.items():
        if contact in links.failed or links.linked.get(contact):
            continue
        domain = email_domain(properties_of(row).get(email_property))
        if domain and not is_free_mail(domain):
            wanted[contact] = domain
    if not wanted:
        return {}
    fields = list(dict.fromkeys([match.domain_property, *properties]))
    by_domain: dict[str, list[dict[str, Any]]] = {}
    try:
        for domains in _chunks(sorted(set(wanted.values())), match.domain_property, fields):
            for row in _search(client, match.domain_property, domains, fields):
                domain = _domain(properties_of(row).get(match.domain_property))
                if domain:
                    by_domain.setdefault(domain, []).append(row)
    except HubSpotError as exc:
        log.warning("companies by email domain not matched in this batch: %s", exc)
        return {}
    return {
        contact: found[0]
        for contact, domain in wanted.items()
        if len(found := by_domain.get(domain, [])) == 1
    }


def linked(translate: Callable[[], Contact], company_id: str) -> Contact:
    """The contact translated with its matched company, and the company's id."""
    return translate().model_copy(update={"account_id": company_id})


def _search(
    client: HubSpotClient, prop: str, domains: list[str], fields: list[str]
) -> Iterator[dict[str, Any]]:
    after: str | None = "0"
    while after:
        body = _body(prop, domains, fields) | {"after": after}
        _, page = client.call(
            "POST companies/search", client.search_api.do_search, COMPANIES, body, search=True
        )
        rows = [row for row in objects(page.get("results")) if record_id(row)]
        yield from rows
        after = next_after(page) if rows else None


def _body(prop: str, domains: list[str], fields: list[str]) -> dict[str, Any]:
    return {
        "filterGroups": [
            {"filters": [{"propertyName": prop, "operator": "IN", "values": domains}]}
        ],
        "properties": fields,
        "limit": SEARCH_PAGE,
    }


def _chunks(domains: list[str], prop: str, fields: list[str]) -> Iterator[list[str]]:
    """Domains in groups of at most 100 whose search body stays under 3,000 characters."""
    room = SEARCH_BODY_LIMIT - len(json.dumps(_body(prop, [], fields))) - 40  # + "after"
    chunk: list[str] = []
    left = room
    for domain in domains:
        cost = len(json.dumps(domain)) + 2
        if chunk and (cost > left or len(chunk) == FILTER_VALUES):
            yield chunk
            chunk, left = [], room
        chunk.append(domain)
        left -= cost
    if chunk:
        yield chunk


def _domain(value: Any) -> str | None:
    """A company's domain as comparable text (`www.` and case gone)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower().removeprefix("www.")
