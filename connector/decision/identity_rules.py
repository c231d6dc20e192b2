"""The `[identity]` section: when two CRM records are one person, and when a record is no one.

Kept apart from the scoring rules because it decides *who* is scored, not *how*: changing it
regroups people, changing `[rules]` rescores them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from crm_qualify.connector.decision.regions import phone_region
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

ROLE_MAILBOXES = frozenset(
    {
        "info", "contact", "hello", "sales", "support", "admin", "office", "marketing",
        "noreply", "no-reply", "donotreply", "do-not-reply", "postmaster", "webmaster",
        "billing", "team",
    }
)  # fmt: skip
"""Mailbox names that reach a function, not a person (scoring's `role_address` negative)."""
NAME_THRESHOLD_FLOOR = 50.0
"""The lowest `[identity.name] threshold`: names less alike never match."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EmailRule(_Section):
    enabled: bool = Field(
        default=True,
        description="Same normalised email = same person; a role mailbox"
        " (`[identity.validity] role_mailboxes`) matches no one.",
    )
    plus_addressing_domains: list[str] = Field(
        default_factory=lambda: [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "live.com",
            "icloud.com",
            "me.com",
            "fastmail.com",
            "protonmail.com",
            "proton.me",
            "yahoo.com",
        ],
        description="Mail providers that deliver `name+tag@` to `name@`: the tag is dropped"
        " there only (elsewhere `+` may be part of a distinct mailbox). `*` means every"
        " domain.",
    )
    dotless_domains: list[str] = Field(
        default_factory=lambda: ["gmail.com", "googlemail.com"],
        description="Providers that ignore dots in the mailbox name (`j.doe` = `jdoe`).",
    )
    domain_aliases: dict[str, str] = Field(
        default_factory=lambda: {"googlemail.com": "gmail.com"},
        description="Domain -> the domain whose mailboxes it shares (one mailbox behind both).",
    )


class NameRule(_Section):
    enabled: bool = Field(
        default=True,
        description="Same person name at the same company (email domain or company name).",
    )
    threshold: float = Field(
        default=85.0,
        ge=NAME_THRESHOLD_FLOOR,
        le=100,
        description="Similarity (0-100, rapidfuzz) each word of two names needs to match:"
        " 85 takes a typo (Jonathon/Jonathan) and parts Alice from Alicia. A word that only"
        " adds letters to the other's end (Daniel/Daniela) never matches.",
    )
    company_threshold: float = Field(
        default=92.0,
        ge=50,
        le=100,
        description="Similarity two company names need when no business domain is shared.",
    )


def _default_region(text: str) -> str:
    """`regions.phone_region`, its refusal as the configuration error's own words."""
    try:
        return phone_region(text)
    except ValueError as exc:
        raise PydanticCustomError("phone_region", "{reason}", {"reason": str(exc)}) from None


class PhoneRule(_Section):
    enabled: bool = Field(
        default=True,
        description="Same phone number (E.164) = same person, when the names agree or one"
        " record has none (docs/identity.md).",
    )
    default_region: Annotated[str, AfterValidator(_default_region)] = Field(
        default="US",
        description="Region for numbers written without a country code, when the record's"
        " country does not say: ISO 3166 alpha-2, or as a record's country may write it (UK,"
        " GBR, United Kingdom), kept as alpha-2; one phone numbers cannot be read in is"
        " refused.",
    )


class ValidityRules(_Section):
    enabled: bool = Field(
        default=True, description="Flag throw-away, role and invalid addresses, and no-company."
    )
    role_mailboxes: list[str] = Field(
        default_factory=lambda: sorted(ROLE_MAILBOXES),
        description="Mailbox names that reach a function, not a person: flagged, and never"
        " taken as one person's mailbox by the email rule (`name+tag@` too).",
    )
    extra_disposable_domains: list[str] = Field(
        default_factory=list,
        description="Throw-away domains to add to the bundled list (disposable-email-domains).",
    )


class IdentityRules(_Section):
    """How records are grouped into people, and what a group's survivor is."""

    enabled: bool = Field(
        default=True,
        description="Decide once per person: duplicates share one decision on the union of"
        " their engagement, and follow-up tasks go to the survivor only.",
    )
    email: EmailRule = Field(default_factory=EmailRule)
    name: NameRule = Field(default_factory=NameRule)
    phone: PhoneRule = Field(default_factory=PhoneRule)
    survivor: Literal["oldest", "most_complete"] = Field(
        default="oldest",
        description="Which record of a group is suggested to keep (and carries the tasks):"
        " the oldest by creation time, or the one with the most profile fields filled.",
    )
    review_task: bool = Field(
        default=False,
        description="Ask the owner to review each group: one task per person held by several"
        " records, on the survivor, created once ever (its key names the person); due"
        " `[rules.followup] mql_sla_hours` after it is planned.",
    )
    validity: ValidityRules = Field(default_factory=ValidityRules)
