"""The portal's schema: object types, property definitions, groups and association types.

Only properties HubSpot really has (or the portal's own `qualification_*` and the crm-qualify
`crmq_*` properties) are defined; writing any other name fails with PROPERTY_DOESNT_EXIST just
like HubSpot. Engagement/analytics properties are read-only, as in HubSpot, so an adapter that
tries to write them gets READ_ONLY_VALUE.
"""

from __future__ import annotations

from typing import Any

from . import schema_engagement as activities

TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tasks": "0-27"}
TYPE_IDS |= activities.ENGAGEMENT_TYPE_IDS
_ALIASES = {**{v: k for k, v in TYPE_IDS.items()}, **{k: k for k in TYPE_IDS}}
_ALIASES.update({"contact": "contacts", "company": "companies", "deal": "deals", "task": "tasks"})
_ALIASES.update({v: k for k, v in activities.ENGAGEMENT_SINGULAR.items()})
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "tasks": "task"}
SINGULAR |= activities.ENGAGEMENT_SINGULAR

MODIFIED = {"contacts": "lastmodifieddate"} | {
    t: "hs_lastmodifieddate" for t in TYPE_IDS if t != "contacts"
}
CREATED = {"contacts": "createdate", "companies": "createdate", "deals": "createdate"} | {
    t: "hs_createdate" for t in ("tasks", *activities.ENGAGEMENT_TYPE_IDS)
}
DEFAULT_PROPERTIES = {
    "contacts": ["email", "firstname", "lastname"],
    "companies": ["domain", "name"],
    "deals": ["amount", "closedate", "dealname", "dealstage", "pipeline"],
    "tasks": [],
} | {t: [] for t in activities.ENGAGEMENT_TYPE_IDS}
# Search accepts either modification-date name on every type (the adapter may use either).
SEARCH_ALIASES = {
    "hs_lastmodifieddate": "lastmodifieddate",
    "lastmodifieddate": "hs_lastmodifieddate",
}

# (from, to) -> [(typeId, label or None)]; v3 names for `?associations=` rendering.
ASSOCIATION_TYPES: dict[tuple[str, str], list[tuple[int, str | None]]] = {
    ("contacts", "companies"): [(279, None), (1, "Primary")],
    ("companies", "contacts"): [(280, None), (2, "Primary")],
    ("contacts", "deals"): [(4, None)],
    ("deals", "contacts"): [(3, None)],
    ("contacts", "tasks"): [(203, None)],
    ("tasks", "contacts"): [(204, None)],
    ("deals", "companies"): [(341, None), (5, "Primary")],
    ("companies", "deals"): [(342, None), (6, "Primary")],
    ("deals", "tasks"): [(215, None)],
    ("tasks", "deals"): [(216, None)],
    ("companies", "tasks"): [(191, None)],
    ("tasks", "companies"): [(192, None)],
} | activities.association_types()
INVERSE_TYPE = {1: 2, 279: 280, 4: 3, 203: 204, 5: 6, 341: 342, 215: 216, 191: 192}
INVERSE_TYPE |= {v: k for k, v in INVERSE_TYPE.items()} | activities.inverse_types()
V3_NAMES = {
    1: "contact_to_company",
    279: "contact_to_company_unlabeled",
    2: "company_to_contact",
    280: "company_to_contact_unlabeled",
    4: "contact_to_deal",
    3: "deal_to_contact",
    203: "contact_to_task",
    204: "task_to_contact",
    5: "deal_to_company",
    341: "deal_to_company_unlabeled",
    6: "company_to_deal",
    342: "company_to_deal_unlabeled",
    215: "deal_to_task",
    216: "task_to_deal",
    191: "company_to_task",
    192: "task_to_company",
} | activities.v3_names()

LIFECYCLE_STAGES = [
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
]
LEAD_STATUSES = [
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
]
SOURCES = [
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "PAID_SOCIAL",
    "OFFLINE",
]
EMPLOYEE_BUCKETS = ["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"]
BUYING_ROLES = ["BUDGET_HOLDER", "CHAMPION", "DECISION_MAKER", "END_USER", "INFLUENCER"]
QUALIFICATION = [("met", "Met"), ("in_progress", "In progress"), ("not_met", "Not met")]
INDUSTRIES = {
    "COMPUTER_SOFTWARE": "Computer Software",
    "INFORMATION_TECHNOLOGY_AND_SERVICES": "IT Services",
    "FINANCIAL_SERVICES": "Financial Services",
    "HOSPITAL_HEALTH_CARE": "Hospital & Health Care",
    "MARKETING_AND_ADVERTISING": "Marketing and Advertising",
    "RETAIL": "Retail",
    "HIGHER_EDUCATION": "Higher Education",
    "MACHINERY": "Machinery",
    "TELECOMMUNICATIONS": "Telecommunications",
    "LOGISTICS_AND_SUPPLY_CHAIN": "Logistics",
    "INSURANCE": "Insurance",
    "NONPROFIT_ORGANIZATION_MANAGEMENT": "Non-profit",
}
TASK_STATUSES = ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]
TASK_PRIORITIES = ["NONE", "LOW", "MEDIUM", "HIGH"]
TASK_TYPES = ["EMAIL", "CALL", "TODO"]
BOUNCE_REASONS = ["UNKNOWN_USER", "MAILBOX_FULL", "DOMAIN_NOT_FOUND", "OTHER"]

DEFINED_AT = "2019-08-06T02:41:52.000Z"


def resolve_type(name: str) -> str | None:
    return _ALIASES.get(name.lower())


def options(pairs: list[tuple[str, str]] | list[str]) -> list[dict[str, Any]]:
    out = []
    for order, item in enumerate(pairs):
        value, label = item if isinstance(item, tuple) else (item, item.replace("_", " ").title())
        out.append(
            {
                "label": label,
                "value": value,
                "displayOrder": order,
                "hidden": False,
                "description": "",
            }
        )
    return out


def definition(
    name: str,
    label: str,
    kind: str,
    field_type: str,
    group: str,
    *,
    opts: list[dict[str, Any]] | None = None,
    read_only: bool = False,
    hubspot_defined: bool = True,
    created_at: str = DEFINED_AT,
    description: str = "",
) -> dict[str, Any]:
    """A property definition in the shape of the properties API (`Property` model)."""
    return {
        "updatedAt": created_at,
        "createdAt": created_at,
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": opts or [],
        "displayOrder": -1,
        "calculated": read_only and kind == "number",
        "externalOptions": False,
        "hasUniqueValue": name in ("email", "hs_object_id"),
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "formField": not read_only,
        "dataSensitivity": "non_sensitive",
    }


def _t(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return definition(name, label, "string", "text", group, **kw)


def _n(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return definition(name, label, "number", "number", group, **kw)


def _dt(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return definition(name, label, "datetime", "date", group, **kw)


def _e(
    name: str, label: str, group: str, opts: list[Any], field: str = "select", **kw: Any
) -> dict[str, Any]:
    return definition(name, label, "enumeration", field, group, opts=options(opts), **kw)


def _system(created: str, modified: str, group: str) -> list[dict[str, Any]]:
    return [
        _dt(created, "Create Date", group, read_only=True),
        _dt(modified, "Last Modified Date", group, read_only=True),
        _n("hs_object_id", "Record ID", group, read_only=True),
        _t("hs_object_source", "Record source", group, read_only=True),
        _t("hs_object_source_label", "Record source detail", group, read_only=True),
    ]


def standard_properties(
    owner_ids: list[str], pipelines: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """HubSpot-defined and portal-defined properties per object type."""
    owners = _e("hubspot_owner_id", "Owner", "sales_properties", [(o, o) for o in owner_ids])
    ci, an, cv, em, sp = (
        "contactinformation",
        "analyticsinformation",
        "conversioninformation",
        "emailinformation",
        "sales_properties",
    )
    ro = {"read_only": True}
    contacts = [
        _t("email", "Email", ci),
        _t("firstname", "First Name", ci),
        _t("lastname", "Last Name", ci),
        _t("phone", "Phone Number", ci),
        _t("company", "Company Name", ci),
        _t("jobtitle", "Job Title", ci),
        _t("industry", "Industry", ci),
        _t("country", "Country/Region", ci),
        _e("numemployees", "Number of Employees", ci, EMPLOYEE_BUCKETS),
        owners,
        _e("lifecyclestage", "Lifecycle Stage", ci, LIFECYCLE_STAGES, "radio"),
        _e("hs_lead_status", "Lead Status", sp, LEAD_STATUSES, "radio"),
        _e("hs_analytics_source", "Original Traffic Source", an, SOURCES, **ro),
        _n("hs_analytics_num_page_views", "Number of Pageviews", an, **ro),
        _dt("hs_analytics_last_visit_timestamp", "Time of Last Session", an, **ro),
        _n("num_conversion_events", "Number of Form Submissions", cv, **ro),
        _t("recent_conversion_event_name", "Recent Conversion", cv, **ro),
        _dt("recent_conversion_date", "Recent Conversion Date", cv, **ro),
        _t("first_conversion_event_name", "First Conversion", cv, **ro),
        _dt("first_conversion_date", "First Conversion Date", cv, **ro),
        _n("hs_email_open", "Marketing emails opened", em, **ro),
        _n("hs_email_click", "Marketing emails clicked", em, **ro),
        _dt("hs_email_last_open_date", "Last marketing email open date", em, **ro),
        _dt("hs_email_last_click_date", "Last marketing email click date", em, **ro),
        definition(
            "hs_email_optout",
            "Unsubscribed from all email",
            "bool",
            "booleancheckbox",
            em,
            opts=options([("true", "Yes"), ("false", "No")]),
            read_only=True,
        ),
        _e(
            "hs_email_hard_bounce_reason_enum", "Email hard bounce reason", em, BOUNCE_REASONS, **ro
        ),
        _dt("hs_sales_email_last_replied", "Recent Sales Email Replied Date", sp, **ro),
        _dt("engagements_last_meeting_booked", "Date of last meeting booked", sp, **ro),
        _e("hs_buying_role", "Buying Role", sp, BUYING_ROLES, "checkbox"),
        *(
            _e(
                f"qualification_{part}",
                f"Qualification: {part}",
                ci,
                QUALIFICATION,
                hubspot_defined=False,
            )
            for part in ("need", "budget", "timing")
        ),
        _n("num_associated_deals", "Number of Associated Deals", "deal_information", **ro),
        _t("hs_merged_object_ids", "Merged Contact IDs", ci, **ro),  # `;`-separated (merge.py)
        _t("hs_additional_emails", "Additional email addresses", ci, **ro),
        *_system("createdate", "lastmodifieddate", ci),
    ]
    co = "companyinformation"
    companies = [
        _t("name", "Name", co),
        _t("domain", "Company Domain Name", co),
        _e("industry", "Industry", co, list(INDUSTRIES.items())),
        _n("numberofemployees", "Number of Employees", co),
        _t("country", "Country/Region", co),
        _t("city", "City", co),
        _n("annualrevenue", "Annual Revenue", co),
        owners,
        *_system("createdate", "hs_lastmodifieddate", co),
    ]
    di = "dealinformation"
    stages = [(s["id"], s["label"]) for p in pipelines for s in p["stages"]]
    deals = [
        _t("dealname", "Deal Name", di),
        _e("dealstage", "Deal Stage", di, stages, "radio"),
        _e("pipeline", "Pipeline", di, [(p["id"], p["label"]) for p in pipelines]),
        _n("amount", "Amount", di),
        _dt("closedate", "Close Date", di),
        _n("hs_mrr", "Monthly recurring revenue", di),
        _e(
            "dealtype",
            "Deal Type",
            di,
            [("newbusiness", "New Business"), ("existingbusiness", "Existing Business")],
        ),
        owners,
        *_system("createdate", "hs_lastmodifieddate", di),
    ]
    tk = "task"
    tasks = [
        _t("hs_task_subject", "Task Title", tk),
        definition("hs_task_body", "Notes", "string", "textarea", tk),
        _e("hs_task_status", "Task Status", tk, TASK_STATUSES),
        _e("hs_task_priority", "Priority", tk, TASK_PRIORITIES),
        _e("hs_task_type", "Task Type", tk, TASK_TYPES),
        _dt("hs_timestamp", "Due date", tk),
        owners,
        _dt("hs_task_completion_date", "Completed at", tk, **ro),
        _n("hs_task_is_completed", "Count of completed tasks", tk, **ro),
        *_system("hs_createdate", "hs_lastmodifieddate", tk),
    ]
    make = {
        "text": _t,
        "number": _n,
        "datetime": _dt,
        "enum": _e,
        "textarea": lambda n, label, g: definition(n, label, "string", "textarea", g),
    }
    engagement = activities.engagement_properties(
        make, owners, lambda g: _system("hs_createdate", "hs_lastmodifieddate", g)
    )
    return {
        "contacts": contacts,
        "companies": companies,
        "deals": deals,
        "tasks": tasks,
    } | engagement


STANDARD_GROUPS = {
    "contacts": [
        ("contactinformation", "Contact information"),
        ("analyticsinformation", "Web analytics history"),
        ("conversioninformation", "Conversion information"),
        ("emailinformation", "Email information"),
        ("sales_properties", "Sales properties"),
        ("deal_information", "Deal information"),
    ],
    "companies": [
        ("companyinformation", "Company information"),
        ("sales_properties", "Sales properties"),
    ],
    "deals": [("dealinformation", "Deal information"), ("sales_properties", "Sales properties")],
    "tasks": [("task", "Task information"), ("sales_properties", "Sales properties")],
} | {
    kind: [*groups, ("sales_properties", "Sales properties")]
    for kind, groups in activities.ENGAGEMENT_GROUPS.items()
}
CRMQ_GROUP = ("crm_qualify", "crm-qualify")
CRMQ_STAGES = [
    ("target", "Target"),
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("mql", "MQL"),
    ("sql", "SQL"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
]
CUSTOMER_TYPES = [("one_time", "One-time"), ("recurring", "Recurring"), ("mixed", "Mixed")]


def crmq_properties(created_at: str) -> dict[str, list[dict[str, Any]]]:
    """The properties crm-qualify owns; present only when the portal was provisioned."""
    g, kw = CRMQ_GROUP[0], {"hubspot_defined": False, "created_at": created_at}
    contacts = [
        *(
            _n(f"crmq_{n}", f"crm-qualify {n.replace('_', ' ')}", g, **kw)
            for n in ("score", "fit_score", "engagement_score", "intent_score")
        ),
        _e(
            "crmq_temperature",
            "crm-qualify temperature",
            g,
            [("cold", "Cold"), ("warm", "Warm"), ("hot", "Hot")],
            **kw,
        ),
        _t("crmq_grade", "crm-qualify grade", g, **kw),
        _t("crmq_rules_version", "crm-qualify rules version", g, **kw),
        definition("crmq_reasons", "crm-qualify reasons", "string", "textarea", g, **kw),
        _dt("crmq_scored_at", "crm-qualify scored at", g, **kw),
        *(
            definition(
                f"crmq_{n}",
                f"crm-qualify {label}",
                "bool",
                "booleancheckbox",
                g,
                opts=options([("true", "Yes"), ("false", "No")]),
                **kw,
            )
            for n, label in (
                ("renurture", "re-nurture"),
                ("disqualified", "disqualified"),
                ("duplicate", "duplicate"),
            )
        ),
        _e("crmq_highest_stage", "crm-qualify highest stage", g, CRMQ_STAGES, **kw),
        _e("crmq_customer_type", "crm-qualify customer type", g, CUSTOMER_TYPES, **kw),
        _t("crmq_duplicate_group", "crm-qualify duplicate group", g, **kw),
    ]
    return {"contacts": contacts, "tasks": [_t("crmq_task_key", "crm-qualify task key", g, **kw)]}
