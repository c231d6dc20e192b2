"""`crm-qualify doctor` for Salesforce: login, object access, every field the adapter reads or
writes, picklist values of the mapping, the task key (External ID and Unique: tasks are
upserted by it), and the daily allocation, each with what to fix.

Describe answers only list the fields the integration user can see, so a field missing here
is either not created or hidden by field-level security; both are named with their type, and
a missing owned field with the way out: create it, or give it up (`owned = false`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crm_qualify.adapters.salesforce.client import SalesforceCallError
from crm_qualify.adapters.salesforce.translate import field_info
from crm_qualify.connector.contract import AuthError, CheckResult
from crm_qualify.connector.field_fit import fit_checks

if TYPE_CHECKING:
    from crm_qualify.adapters.salesforce.adapter import SalesforceAdapter
    from crm_qualify.adapters.salesforce.translate import ObjectMapping

EXPECTED_TYPES = {
    "CRMQ_Score__c": "Number(3, 0)",
    "CRMQ_Fit_Score__c": "Number(3, 0)",
    "CRMQ_Engagement_Score__c": "Number(3, 0)",
    "CRMQ_Intent_Score__c": "Number(3, 0)",
    "CRMQ_Temperature__c": "Picklist: Hot, Warm, Cold",
    "CRMQ_Grade__c": "Text(4)",
    "CRMQ_Reasons__c": "Long Text Area(32768)",
    "CRMQ_Rules_Version__c": "Text(20)",
    "CRMQ_Renurture__c": "Checkbox",
    "CRMQ_Scored_At__c": "Date/Time",
    "CRMQ_Stage__c": "Picklist: Target, Subscriber, Lead, MQL, SQL, Opportunity, Customer",
    "CRMQ_Highest_Stage__c": (
        "Picklist: Target, Subscriber, Lead, MQL, SQL, Opportunity, Customer"
    ),
    "CRMQ_Customer_Type__c": "Picklist: One-time, Recurring, Mixed",
    "CRMQ_Disqualified__c": "Checkbox",
    "CRMQ_Duplicate__c": "Checkbox",
    "CRMQ_Duplicate_Group__c": "Text(80)",
    "CRMQ_Task_Key__c": "Text(255), External ID, Unique",
    "Qualification_Budget__c": "Picklist: Met, In progress, Not met",
    "Qualification_Authority__c": "Picklist: Met, In progress, Not met",
    "Qualification_Need__c": "Picklist: Met, In progress, Not met",
    "Qualification_Timing__c": "Picklist: Met, In progress, Not met",
}

RELATED_FIELDS = {
    "Task": ["WhoId", "Subject", "TaskSubtype", "ActivityDate", "Status", "Priority", "IsClosed"],
    "Event": ["WhoId", "Subject", "ActivityDateTime"],
    "Campaign": ["Name", "Type"],
    "CampaignMember": ["CampaignId", "LeadId", "ContactId", "Status", "FirstRespondedDate"],
    "Opportunity": ["IsClosed", "IsWon", "Amount", "CloseDate", "Type"],
    "OpportunityContactRole": ["OpportunityId", "ContactId"],
}
"""What the adapter reads besides the people themselves (see adapter._related)."""


def run_checks(adapter: SalesforceAdapter) -> list[CheckResult]:
    try:
        adapter.client.login()
    except AuthError as exc:
        return [CheckResult.refused("login", exc)]
    results = [CheckResult("login", True, f"API v{adapter.settings.api_version}")]
    wanted: list[tuple[str, ObjectMapping | None, list[str]]] = [
        (sobject, mapping, adapter.people.read_fields(mapping))
        for sobject, mapping in adapter.objects.items()
    ]
    for sobject, names in RELATED_FIELDS.items():
        if sobject == "Task":
            names = [*names, adapter.people.task_key]
        wanted.append((sobject, None, names))
    described_by_object: dict[str, dict[str, dict[str, Any]]] = {}

    def describe(sobject: str) -> dict[str, dict[str, Any]]:
        if sobject not in described_by_object:
            described_by_object[sobject] = adapter.describe(sobject)
        return described_by_object[sobject]

    for sobject, mapping, names in wanted:
        try:
            described = describe(sobject)
        except (SalesforceCallError, AuthError) as exc:
            results.append(CheckResult(f"{sobject} access", False, str(exc)))
            continue
        fields = {name: field_info(f) for name, f in described.items()}
        missing = [f for f in names if not _readable(describe, sobject, f)]
        owned = {field: name for name, field in mapping.owned.fields.items()} if mapping else {}
        detail = "missing or hidden: " + "; ".join(_missing(f, owned.get(f)) for f in missing)
        results.append(CheckResult(f"{sobject} fields", not missing, detail if missing else "ok"))
        if mapping is not None:
            results += fit_checks(sobject, mapping.owned, fields)
        if sobject == "Task" and adapter.people.task_key in described:
            results.append(_task_key_check(described[adapter.people.task_key]))
    limits = adapter.client.call("GET limits", lambda sf: sf.limits())
    daily = limits.get("DailyApiRequests", {})
    results.append(
        CheckResult("daily API", True, f"{daily.get('Remaining')} of {daily.get('Max')} left")
    )
    return results


def _readable(
    describe: Callable[[str], dict[str, dict[str, Any]]], sobject: str, name: str
) -> bool:
    """Whether the integration user sees `name` on `sobject`: a field, or a path through
    lookups (`Account.Industry`: Contact's lookup whose relationshipName is Account, then the
    parent's field)."""
    *hops, last = name.split(".")
    for hop in hops:
        lookup = next(
            (f for f in describe(sobject).values() if f.get("relationshipName") == hop), None
        )
        targets = (lookup or {}).get("referenceTo") or []
        if len(targets) != 1:
            return False
        try:
            describe(targets[0])
        except (SalesforceCallError, AuthError):
            return False
        sobject = targets[0]
    return last in describe(sobject)


def _missing(field: str, canonical: str | None) -> str:
    """A missing field with its type (or whether it is a custom field, named `__c`, or a
    standard one); for an owned one, the two ways to fix it."""
    kind = EXPECTED_TYPES.get(field) or (
        "custom field" if field.endswith("__c") else "standard field"
    )
    if canonical is None:
        return f"{field} ({kind})"
    fix = f"create it, or set [fields.{canonical}] owned = false"
    return f"{field} ({kind}) for field {canonical}: {fix}"


def _task_key_check(field: dict[str, Any]) -> CheckResult:
    """Tasks are upserted by their key: Salesforce must match on it (External ID) and refuse
    a second task with the same one (Unique)."""
    name = field["name"]
    missing = [flag for flag, key in (("External ID", "externalId"), ("Unique", "unique"))
               if not field.get(key)]  # fmt: skip
    if field.get("type") != "string":
        missing.insert(0, f"Text (it is {field.get('type')})")
    detail = (
        f"{name} must be {', '.join(missing)} ({EXPECTED_TYPES['CRMQ_Task_Key__c']}): tasks are"
        " upserted by this key so that none is ever created twice"
        if missing
        else "External ID, Unique"
    )
    return CheckResult(f"Task.{name} key", not missing, detail)
