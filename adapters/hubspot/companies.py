"""Firmographics from the contact's primary company (mapping `[companies]`).

Industry, size and country usually live on the company, not on the person. With
`fill_missing = true`, a contact's empty profile fields (`[companies.profile]`: canonical
field -> company property) are taken from its primary company (the association labelled
"Primary", type 1; the first company when none is labelled). A value the contact has is never
replaced. A dropdown company property (HubSpot's `industry` holds `COMPUTER_SOFTWARE`) gives
its option's label ("Computer Software"), the text contacts hold and fit rules name; the
labels come from one read of the company properties per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.records import Links
from crm_qualify.adapters.hubspot.values import (
    company_size,
    lenient,
    objects,
    properties_of,
    text_value,
)
from crm_qualify.connector.model import Contact

COMPANIES = "companies"
PRIMARY_V3 = "contact_to_company"
"""How a list page's inline links name the primary company (the unlabelled link is
`contact_to_company_unlabeled`)."""
FIELDS = ("company", "industry", "employees", "country")
"""Canonical profile fields a company can fill."""


@dataclass(frozen=True)
class CompanyMapping:
    fill_missing: bool = False
    profile: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> CompanyMapping:
        section = document.get(COMPANIES, {})
        profile = dict(section.get("profile", {}))
        unknown = sorted(set(profile) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"companies.profile: {', '.join(unknown)} cannot come from a company; "
                f"known: {', '.join(FIELDS)}"
            )
        return cls(bool(section.get("fill_missing", False)) and bool(profile), profile)

    @property
    def properties(self) -> list[str]:
        return list(dict.fromkeys(["name", *self.profile.values()]))


def primary_only(links: Links) -> Links:
    """Each contact's primary company (else its first), the one its firmographics come from."""
    chosen = Links(failed=dict(links.failed), primary=dict(links.primary))
    for record, ids in links.linked.items():
        chosen.linked[record] = pick(ids, links.primary.get(record))
    return chosen


def pick(ids: list[str], primary: str | None) -> list[str]:
    """The one company of a contact's `ids` that is read: the primary, else the first."""
    chosen = primary or (ids[0] if ids else None)
    return [chosen] if chosen else []


class OptionLabels:
    """Option value -> label of the company's dropdown properties, read once per process."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self._labels: dict[str, dict[str, str]] | None = None

    def get(self) -> dict[str, dict[str, str]]:
        if self._labels is None:
            _, body = self.client.call(
                "GET properties", self.client.properties.get_all, COMPANIES, archived=False
            )
            self._labels = {
                str(row.get("name")): {
                    str(o.get("value")): str(o.get("label") or o.get("value"))
                    for o in objects(row.get("options"))
                }
                for row in objects(body.get("results"))
                if row.get("type") == "enumeration"
            }
        return self._labels


def fill(
    mapping: CompanyMapping,
    contact: Contact,
    company: dict[str, Any] | None,
    labels: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """The profile values the company gives this contact (only fields the contact lacks);
    an unreadable company value is left out: the company is context, not the record."""
    if company is None or not mapping.fill_missing:
        return {}
    props = properties_of(company)
    found: dict[str, Any] = {}
    for name, prop in mapping.profile.items():
        if getattr(contact, name) is not None:
            continue
        if name == "employees":
            value: Any = lenient(company_size, props.get(prop), prop)
        else:
            text = lenient(text_value, props.get(prop), prop)
            value = labels.get(prop, {}).get(text, text) if text else None
        if value is not None:
            found[name] = value
    return found
