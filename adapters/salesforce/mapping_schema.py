"""Every key the Salesforce mapping may hold (`mappings/salesforce.toml`), so a mistyped one is
a configuration error naming it rather than a section silently read as empty. Event types,
answers and regular expressions are checked here too, so a wrong one is named by its key with
the valid values; field names are checked against the org (`doctor`)."""

from __future__ import annotations

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
from crm_qualify.connector.model import CriterionStatus, EventType
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
    qualification_values: dict[str, CriterionStatus] = {}


class CampaignMemberRule(StrictTable):
    event: EventType
    type: Pattern | None = None
    status: Pattern | None = None
    name: Pattern | None = None


class TaskRule(StrictTable):
    event: EventType
    subtype: str | None = None
    subject: Pattern | None = None


class EventRule(StrictTable):
    event: EventType


class Engagement(StrictTable):
    campaign_members: list[CampaignMemberRule] = []
    tasks: list[TaskRule] = []
    events: EventRule | None = None


class Deals(StrictTable):
    recurring_types: Pattern | None = None


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

    def facts_read(self) -> dict[str, dict[str, str]]:
        """Per object, the fields read as facts (`connector.mapping.written_facts`): its
        profile and what `[people]` reads from Leads and Contacts alike."""
        people = named_fields(self.people, "people")
        people |= {f"people.qualification.{k}": v for k, v in self.people.qualification.items()}
        return {
            name: named_fields(table.profile, f"objects.{name}.profile") | people
            for name, table in self.objects.items()
        }
