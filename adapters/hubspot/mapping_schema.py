"""Every key the HubSpot mapping may hold (`mappings/hubspot.toml`), so a mistyped one is a
configuration error naming it rather than a section silently read as empty. Values are
checked where they are used (`translate.py`, `engagement.py`, `companies.py`...)."""

from __future__ import annotations

from crm_qualify.connector.mapping import (
    CoreObjectTables,
    Criteria,
    FitTable,
    ProfileTable,
    StrictTable,
    check_object_tables,
)
from pydantic import ValidationInfo, field_validator


class ContactProfile(ProfileTable):
    merged_ids: str | None = None
    """The ids HubSpot merged into a contact (`hs_merged_object_ids`)."""


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
    event: str
    count: str
    at: str
    fallback_for: str | None = None


class DateSignal(StrictTable):
    event: str
    at: str
    fallback_for: str | None = None


class Conversions(StrictTable):
    fallback_for: str | None = None
    pairs: list[list[str]] = []
    rules: list[list[str]] = []


class ContactObject(CoreObjectTables):
    profile: ContactProfile = ContactProfile()
    origin: Origin = Origin()
    consent: Consent = Consent()
    qualification: Criteria = {}
    authority: Authority = Authority()
    counters: list[Counter] = []
    dates: list[DateSignal] = []
    conversions: Conversions = Conversions()


class Activity(StrictTable):
    object: str
    event: str
    at: str | None = None
    where: dict[str, str] = {}


class FormRule(StrictTable):
    form: str
    event: str


class MarketingEventRule(StrictTable):
    event: str
    type: str | None = None
    state: str | None = None


class Engagement(StrictTable):
    forms_default: str | None = None
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
