"""The objects and fields the simulated org has, as `describe` reports them.

Picklists with values are restricted (a value outside them is refused); `default` is the value
a create without the field gets (Lead Status, Task Status and Priority: the picklist's default
entry; false for a checkbox such as `CRMQ_Disqualified__c`, which is never null and not
nillable); `required` marks a field no record may be without (not nillable in describe: a
create that leaves it empty with no default to fill it, or an update that clears it, fails
with REQUIRED_FIELD_MISSING); `externalId` + `unique` mark a
field upserts match on and no two live records share (compared case-insensitively, the
default for a Unique text field).

Lookups carry `referenceTo` and `relationshipName` as describe reports them: a child-to-parent
path (`Opportunity.IsWon` on OpportunityContactRole) follows a lookup with one target; a
polymorphic one (`Who`, `What`, a Lead's `Owner`) is listed but not followed by the simulator.
`CHILD_RELATIONSHIPS` names the parent-to-child relationships a subquery can select (`Tasks`
on Lead and Contact...): describe lists them under `childRelationships`.

A number field holds so many digits before the point: an `int` its `digits` (Lead and Account
`NumberOfEmployees`, Number(8, 0)), a double, currency or percent its `precision` less its
`scale` (our scores, Number(3, 0) as the adapter's README has them created; Opportunity
`Amount`, 18 and 2), as describe reports them (Salesforce's field reference gives each standard
field's digits, precision and scale: developer.salesforce.com/docs/platform/field-reference).
`label` is a field's label where it is not its name (`Employees`).
"""

from __future__ import annotations

from typing import Any

QUALIFICATION = ["Met", "In progress", "Not met"]
STAGES = ["Target", "Subscriber", "Lead", "MQL", "SQL", "Opportunity", "Customer"]
CUSTOMER_TYPES = ["One-time", "Recurring", "Mixed"]
LEAD_STATUS = [
    "Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted",
]  # fmt: skip
TASK_STATUS = ["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"]

PREFIX = {
    "User": "005", "Account": "001", "Contact": "003", "Lead": "00Q", "Task": "00T",
    "Event": "00U", "Opportunity": "006", "OpportunityContactRole": "00K", "Campaign": "701",
    "CampaignMember": "00v",
}  # fmt: skip


def _f(kind: str, updateable: bool = True, custom: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "updateable": updateable,
        "createable": updateable,
        "custom": custom,
        **extra,
    }


def _ref(
    targets: list[str], relationship: str, updateable: bool = True, **extra: Any
) -> dict[str, Any]:
    """A lookup to `targets` (several: polymorphic), followed in SOQL as `relationship`."""
    return _f("reference", updateable, referenceTo=targets, relationshipName=relationship, **extra)


SYSTEM = {
    "Id": _f("id", False),
    "CreatedDate": _f("datetime", False),
    "LastModifiedDate": _f("datetime", False),
    "SystemModstamp": _f("datetime", False),
    "IsDeleted": _f("boolean", False),
    "CreatedById": _ref(["User"], "CreatedBy", False),
    "LastModifiedById": _ref(["User"], "LastModifiedBy", False),
}
PERSON = {
    "FirstName": _f("string"), "LastName": _f("string", required=True), "Email": _f("email"),
    "Phone": _f("phone"),
    "Title": _f("string"), "OwnerId": _ref(["User"], "Owner"), "HasOptedOutOfEmail": _f("boolean"),
    "EmailBouncedDate": _f("datetime"), "LeadSource": _f("picklist", picklist=[
        "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other", "Outbound",
    ]),
}  # fmt: skip
CRMQ = {
    "CRMQ_Score__c": _f("double", custom=True, precision=3, scale=0),
    "CRMQ_Fit_Score__c": _f("double", custom=True, precision=3, scale=0),
    "CRMQ_Engagement_Score__c": _f("double", custom=True, precision=3, scale=0),
    "CRMQ_Intent_Score__c": _f("double", custom=True, precision=3, scale=0),
    "CRMQ_Temperature__c": _f("picklist", custom=True, picklist=["Hot", "Warm", "Cold"]),
    "CRMQ_Grade__c": _f("string", custom=True, length=4),
    "CRMQ_Reasons__c": _f("textarea", custom=True, length=32_768),
    "CRMQ_Rules_Version__c": _f("string", custom=True, length=20),
    "CRMQ_Renurture__c": _f("boolean", custom=True),
    "CRMQ_Scored_At__c": _f("datetime", custom=True),
    "CRMQ_Stage__c": _f("picklist", custom=True, picklist=STAGES),
    "CRMQ_Highest_Stage__c": _f("picklist", custom=True, picklist=STAGES),
    "CRMQ_Customer_Type__c": _f("picklist", custom=True, picklist=CUSTOMER_TYPES),
    "CRMQ_Disqualified__c": _f("boolean", custom=True, default=False),  # a checkbox: never null
    "CRMQ_Duplicate__c": _f("boolean", custom=True, default=False),
    "CRMQ_Duplicate_Group__c": _f("string", custom=True, length=80),
    **{
        f"Qualification_{name}__c": _f("picklist", custom=True, picklist=QUALIFICATION)
        for name in ("Budget", "Authority", "Need", "Timing")
    },
}

OBJECTS: dict[str, dict[str, dict[str, Any]]] = {
    "User": {**SYSTEM, "Name": _f("string", False), "Email": _f("email", False),
             "IsActive": _f("boolean", False)},
    "Account": {**SYSTEM, "Name": _f("string", required=True), "Industry": _f("picklist"),
                "NumberOfEmployees": _f("int", digits=8, label="Employees"),
                "BillingCountry": _f("string"),
                "Website": _f("url"), "MasterRecordId": _ref(["Account"], "MasterRecord", False)},
    "Lead": {**SYSTEM, **PERSON, **CRMQ, "Company": _f("string", required=True),
             "Industry": _f("picklist"),
             "NumberOfEmployees": _f("int", digits=8, label="Employees"), "Country": _f("string"),
             "Status": _f("picklist", picklist=LEAD_STATUS, default=LEAD_STATUS[0],
                          required=True),
             "Rating": _f("picklist", picklist=["Hot", "Warm", "Cold"]),
             "OwnerId": _ref(["Group", "User"], "Owner"),
             "IsConverted": _f("boolean", False),
             "ConvertedContactId": _ref(["Contact"], "ConvertedContact", False),
             "ConvertedOpportunityId": _ref(["Opportunity"], "ConvertedOpportunity", False),
             "ConvertedAccountId": _ref(["Account"], "ConvertedAccount", False),
             "ConvertedDate": _f("date", False), "Website": _f("url"),
             "MasterRecordId": _ref(["Lead"], "MasterRecord", False)},
    "Contact": {**SYSTEM, **PERSON, **CRMQ, "AccountId": _ref(["Account"], "Account"),
                "MasterRecordId": _ref(["Contact"], "MasterRecord", False)},
    "Task": {**SYSTEM, "WhoId": _ref(["Contact", "Lead"], "Who"),
             "WhatId": _ref(["Account", "Opportunity", "Campaign"], "What"),
             "OwnerId": _ref(["Group", "User"], "Owner"), "Subject": _f("string", length=255),
             "ActivityDate": _f("date"),
             "Status": _f("picklist", picklist=TASK_STATUS, default="Not Started",
                          required=True),
             "Priority": _f("picklist", picklist=["High", "Normal", "Low"], default="Normal",
                            required=True),
             "TaskSubtype": _f("picklist", picklist=["Task", "Email", "Call", "ListEmail"]),
             "Description": _f("textarea", length=32_000), "IsClosed": _f("boolean", False),
             "CompletedDateTime": _f("datetime", False),
             "IsArchived": _f("boolean", False, default=False),
             "CRMQ_Task_Key__c": _f("string", custom=True, length=255, externalId=True,
                                    unique=True)},
    "Event": {**SYSTEM, "WhoId": _ref(["Contact", "Lead"], "Who"), "Subject": _f("string"),
              "ActivityDateTime": _f("datetime"), "Type": _f("picklist"),
              "IsArchived": _f("boolean", False, default=False)},
    "Opportunity": {**SYSTEM, "Name": _f("string", required=True),
                    "AccountId": _ref(["Account"], "Account"),
                    "StageName": _f("picklist", required=True), "IsClosed": _f("boolean", False),
                    "IsWon": _f("boolean", False), "CloseDate": _f("date", required=True),
                    "Amount": _f("currency", precision=18, scale=2),
                    "LeadSource": PERSON["LeadSource"],
                    "Type": _f("picklist", picklist=[
                        "New Business", "Existing Business", "Renewal", "Subscription"])},
    "OpportunityContactRole": {**SYSTEM,
                               "OpportunityId": _ref(["Opportunity"], "Opportunity"),
                               "ContactId": _ref(["Contact"], "Contact"),
                               "Role": _f("picklist")},
    "Campaign": {**SYSTEM, "Name": _f("string", required=True), "Type": _f("picklist", picklist=[
        "Webinar", "Content", "Email", "Conference", "Advertisement"])},
    "CampaignMember": {**SYSTEM, "CampaignId": _ref(["Campaign"], "Campaign"),
                       "LeadId": _ref(["Lead"], "Lead"), "ContactId": _ref(["Contact"], "Contact"),
                       "Status": _f("picklist", picklist=[
                           "Sent", "Registered", "Attended", "Responded", "Downloaded"]),
                       "HasResponded": _f("boolean", False),
                       "FirstRespondedDate": _f("date", False)},
}  # fmt: skip

CHILD_RELATIONSHIPS = {
    ("Task", "WhoId"): "Tasks",
    ("Event", "WhoId"): "Events",
    ("CampaignMember", "LeadId"): "CampaignMembers",
    ("CampaignMember", "ContactId"): "CampaignMembers",
    ("CampaignMember", "CampaignId"): "CampaignMembers",
    ("OpportunityContactRole", "ContactId"): "OpportunityContactRoles",
    ("OpportunityContactRole", "OpportunityId"): "OpportunityContactRoles",
    ("Contact", "AccountId"): "Contacts",
    ("Opportunity", "AccountId"): "Opportunities",
}
"""(child object, its lookup field) -> the relationship name on each object the lookup may
point at: `SELECT Id, (SELECT Subject FROM Tasks) FROM Lead`."""


def _children() -> dict[str, dict[str, tuple[str, str]]]:
    children: dict[str, dict[str, tuple[str, str]]] = {}
    for (child, field), name in CHILD_RELATIONSHIPS.items():
        for parent in OBJECTS[child][field]["referenceTo"]:
            if parent in OBJECTS:
                children.setdefault(parent, {})[name] = (child, field)
    return children


def _parents() -> dict[str, dict[str, tuple[str, str | None]]]:
    parents: dict[str, dict[str, tuple[str, str | None]]] = {}
    for sobject, fields in OBJECTS.items():
        for field, spec in fields.items():
            if spec.get("relationshipName"):
                targets = spec["referenceTo"]
                target = targets[0] if len(targets) == 1 else None
                parents.setdefault(sobject, {})[spec["relationshipName"]] = (field, target)
    return parents


CHILDREN = _children()
"""object -> child relationship name -> (child object, the child's lookup field)."""
PARENTS = _parents()
"""object -> relationship name -> (lookup field, parent object; None when polymorphic)."""


def _object_summary(sobject: str, version: str) -> dict[str, Any]:
    """One object as describe global and basic information list it."""
    base = f"/services/data/v{version}/sobjects/{sobject}"
    system = sobject in ("User",)
    return {
        "activateable": False, "createable": not system, "custom": False,
        "customSetting": False, "deletable": not system, "deprecatedAndHidden": False,
        "feedEnabled": not system, "hasSubtypes": False, "isSubtype": False,
        "keyPrefix": PREFIX[sobject], "label": sobject, "labelPlural": f"{sobject}s",
        "layoutable": True, "mergeable": sobject in ("Account", "Contact", "Lead"),
        "mruEnabled": True, "name": sobject, "queryable": True, "replicateable": True,
        "retrieveable": True, "searchable": True, "triggerable": True,
        "undeletable": not system, "updateable": not system,
        "urls": {
            "sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}",
        },
    }  # fmt: skip


def describe_global(version: str) -> dict[str, Any]:
    """`GET sobjects`: the org's encoding, the query batch size, and every object."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_object_summary(name, version) for name in sorted(OBJECTS)],
    }


def basic_info(sobject: str, version: str) -> dict[str, Any]:
    """`GET sobjects/<type>`: the object's summary and its recently viewed records (none)."""
    return {"objectDescribe": _object_summary(sobject, version), "recentItems": []}


def label(name: str, spec: dict[str, Any]) -> str:
    """A field's label, as describe and error messages give it."""
    return spec.get("label") or name.removesuffix("__c").replace("_", " ")


def describe(sobject: str, version: str) -> dict[str, Any]:
    fields = []
    for name, spec in OBJECTS[sobject].items():
        fields.append(
            {
                "name": name,
                "label": label(name, spec),
                "type": spec["type"],
                "updateable": spec["updateable"],
                "createable": spec["createable"],
                "custom": spec["custom"],
                "length": spec.get("length", 255 if spec["type"] == "string" else 0),
                "digits": spec.get("digits", 0),
                "precision": spec.get("precision", 0),
                "scale": spec.get("scale", 0),
                "nillable": not spec.get("required") and spec["type"] not in ("id", "boolean"),
                "externalId": spec.get("externalId", False),
                "unique": spec.get("unique", False),
                "caseSensitive": False,
                "idLookup": name == "Id" or spec.get("externalId", False),
                "restrictedPicklist": bool(spec.get("picklist")),
                "defaultValue": spec.get("default"),
                "referenceTo": spec.get("referenceTo", []),
                "relationshipName": spec.get("relationshipName"),
                "defaultedOnCreate": "default" in spec,
                "picklistValues": [
                    {
                        "value": v,
                        "label": v,
                        "active": True,
                        "defaultValue": v == spec.get("default"),
                    }
                    for v in spec.get("picklist", [])
                ],
            }
        )
    return {
        "name": sobject,
        "label": sobject,
        "custom": False,
        "queryable": True,
        "updateable": True,
        "keyPrefix": PREFIX[sobject],
        "fields": fields,
        "childRelationships": [
            {
                "childSObject": child,
                "field": field,
                "relationshipName": name,
                "cascadeDelete": False,
                "restrictedDelete": False,
                "deprecatedAndHidden": False,
            }
            for name, (child, field) in sorted(CHILDREN.get(sobject, {}).items())
        ],
        "urls": {"sobject": f"/services/data/v{version}/sobjects/{sobject}"},
    }
