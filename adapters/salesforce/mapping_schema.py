"""Every key the Salesforce mapping may hold (`mappings/salesforce.toml`), so a mistyped one is
a configuration error naming it rather than a section silently read as empty. Values are
checked where they are used (`translate.py`, `accounts.py`)."""

from __future__ import annotations

from typing import Any

from crm_qualify.connector.mapping import (
    CoreObjectTables,
    Criteria,
    FitTable,
    ProfileTable,
    StrictTable,
    check_object_tables,
)
from pydantic import ValidationInfo, field_validator

PERSON_OBJECTS = ("Lead", "Contact")


class PersonObject(CoreObjectTables):
    where: str = ""
    profile: ProfileTable = ProfileTable()


class People(StrictTable):
    unsubscribed: str | None = None
    hard_bounce: str | None = None
    lead_source: str | None = None
    inbound_sources: list[str] = []
    outbound_sources: list[str] = []
    qualification: Criteria = {}
    qualification_values: dict[str, Any] = {}


class CampaignMemberRule(StrictTable):
    event: str
    type: str | None = None
    status: str | None = None
    name: str | None = None


class TaskRule(StrictTable):
    event: str
    subtype: str | None = None
    subject: str | None = None


class EventRule(StrictTable):
    event: str


class Engagement(StrictTable):
    campaign_members: list[CampaignMemberRule] = []
    tasks: list[TaskRule] = []
    events: EventRule | None = None


class Deals(StrictTable):
    recurring_types: str | None = None


class Accounts(StrictTable):
    match_leads: bool = False
    name: str | None = None
    website: str | None = None
    profile: FitTable = FitTable()


class Tasks(StrictTable):
    key_field: str | None = None


class SalesforceMapping(StrictTable):
    crm: str
    objects: dict[str, PersonObject]
    people: People = People()
    engagement: Engagement = Engagement()
    deals: Deals = Deals()
    accounts: Accounts = Accounts()
    tasks: Tasks = Tasks()

    @field_validator("objects")
    @classmethod
    def _objects_read(
        cls, value: dict[str, PersonObject], info: ValidationInfo
    ) -> dict[str, PersonObject]:
        """Leads and Contacts hold people; the adapter's `objects` option (the validation
        context, once known) says which are read, and each of those needs its table."""
        read = getattr(info.context, "objects", [])
        check_object_tables(value, PERSON_OBJECTS, read, "adapters.salesforce.objects")
        return value
