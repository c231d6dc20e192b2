"""Every key the HubSpot mapping may hold (`mappings/hubspot.toml`), so a mistyped one is a
configuration error naming it rather than a section silently read as empty. Event types,
activity objects, sources and regular expressions are checked here too, so a wrong one is
named by its key with the valid values; property names are checked against the portal
(`doctor`)."""

from __future__ import annotations

from typing import Annotated, Literal

from crm_qualify.adapters.hubspot.engagement import ACTIVITY_TYPES, FORMS, MARKETING_EVENTS
from crm_qualify.connector.mapping import (
    CoreObjectTables,
    Criteria,
    FitTable,
    Pattern,
    ProfileTable,
    StrictTable,
    check_object_tables,
    named_fields,
)
from crm_qualify.connector.model import EventType
from pydantic import BeforeValidator, ValidationInfo, field_validator

ActivityObject = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
Source = Literal[(*ACTIVITY_TYPES, FORMS, MARKETING_EVENTS)]  # type: ignore[valid-type]
"""What `fallback_for` names: a source of `[engagement]` whose reading replaces a summary."""


class ContactProfile(ProfileTable):
    merged_ids: str | None = None
    """The ids HubSpot merged into a contact (`hs_merged_object_ids`)."""
    additional_emails: str | None = None
    """The contact's other addresses (`hs_additional_emails`): its form submissions under
    them are its own."""


class Origin(StrictTable):
    property: str | None = None
    inbound: list[str] = []
    outbound: list[str] = []


class Consent(StrictTable):
    unsubscribed: str | None = None
    hard_bounce: str | None = None


class Authority(StrictTable):
    property: str | None = None
    roles: list[str] = []


class Counter(StrictTable):
    event: EventType
    count: str
    at: str
    fallback_for: Source | None = None


class DateSignal(StrictTable):
    event: EventType
    at: str
    fallback_for: Source | None = None


class Conversions(StrictTable):
    fallback_for: Source | None = None
    pairs: list[tuple[str, str]] = []
    rules: list[tuple[Pattern, EventType]] = []


class ContactObject(CoreObjectTables):
    profile: ContactProfile = ContactProfile()
    origin: Origin = Origin()
    consent: Consent = Consent()
    qualification: Criteria = {}
    authority: Authority = Authority()
    counters: list[Counter] = []
    dates: list[DateSignal] = []
    conversions: Conversions = Conversions()

    def facts_read(self, prefix: str) -> dict[str, str]:
        """Every contact property read as a fact, by its key (`prefix.profile.email`)."""
        read = named_fields(self.profile, f"{prefix}.profile")
        read |= named_fields(self.consent, f"{prefix}.consent")
        read |= {f"{prefix}.qualification.{k}": v for k, v in self.qualification.items()}
        for key, table in (("origin", self.origin), ("authority", self.authority)):
            if table.property:
                read[f"{prefix}.{key}.property"] = table.property
        for n, counter in enumerate(self.counters):
            read |= {f"{prefix}.counters[{n}].count": counter.count}
            read |= {f"{prefix}.counters[{n}].at": counter.at}
        read |= {f"{prefix}.dates[{n}].at": date.at for n, date in enumerate(self.dates)}
        for n, pair in enumerate(self.conversions.pairs):
            read |= {f"{prefix}.conversions.pairs[{n}][{i}]": name for i, name in enumerate(pair)}
        return read


class Activity(StrictTable):
    object: ActivityObject
    event: EventType
    at: str | None = None
    where: dict[str, Pattern] = {}


class FormRule(StrictTable):
    form: Pattern
    event: EventType


class MarketingEventRule(StrictTable):
    event: EventType
    type: Pattern | None = None
    state: Pattern | None = None


class Engagement(StrictTable):
    forms_default: Annotated[EventType | None, BeforeValidator(lambda text: text or None)] = None
    """The event of forms no rule names; "" leaves them out."""
    activities: list[Activity] = []
    forms: list[FormRule] = []
    marketing_events: list[MarketingEventRule] = []


class Companies(StrictTable):
    fill_missing: bool = False
    match_domain: bool = False
    domain_property: str | None = None
    profile: FitTable = FitTable()


class Sources(StrictTable):
    person: list[str] = []
    automation: list[str] = []


class Deals(StrictTable):
    recurring_property: str | None = None


class Tasks(StrictTable):
    key_property: str | None = None
    contact_association_type: int | None = None


class HubSpotMapping(StrictTable):
    crm: str
    objects: dict[str, ContactObject]
    engagement: Engagement = Engagement()
    companies: Companies = Companies()
    sources: Sources = Sources()
    deals: Deals = Deals()
    tasks: Tasks = Tasks()

    @field_validator("objects")
    @classmethod
    def _the_object_read(
        cls, value: dict[str, ContactObject], info: ValidationInfo
    ) -> dict[str, ContactObject]:
        """One object holds people, `object_type`'s (contacts): known once the adapter's
        options are (the validation context)."""
        read = getattr(info.context, "object_type", None)
        if read is not None:
            check_object_tables(value, [read], [read], "adapters.hubspot.object_type")
        return value

    def facts_read(self) -> dict[str, dict[str, str]]:
        """Per object, the properties read as facts (`connector.mapping.written_facts`)."""
        return {name: table.facts_read(f"objects.{name}") for name, table in self.objects.items()}
