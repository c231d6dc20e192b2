"""The custom properties crm-qualify writes, created by `crm-qualify setup hubspot` (checked by
`doctor.py`).

Option lists carry `hidden`, which the properties spec's `OptionInput` requires."""

from __future__ import annotations

from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError
from crm_qualify.adapters.hubspot.translate import ContactMapping, field_info
from crm_qualify.adapters.hubspot.values import objects
from crm_qualify.connector.contract import CheckResult, ConfigError
from crm_qualify.connector.field_fit import fit_checks

GROUP = {"name": "crm_qualify", "label": "crm-qualify", "displayOrder": -1}

_NUMBER = {"type": "number", "fieldType": "number"}
_TEXT = {"type": "string", "fieldType": "text"}
_CHECKBOX = {
    "type": "bool",
    "fieldType": "booleancheckbox",
    "options": [
        {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
        {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
    ],
}


def _select(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {
        "type": "enumeration",
        "fieldType": "select",
        "options": [
            {"label": label, "value": value, "displayOrder": order, "hidden": False}
            for order, (value, label) in enumerate(pairs)
        ],
    }


HIGHEST_STAGES = (
    ("target", "Target"),
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("mql", "MQL"),
    ("sql", "SQL"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
)
CUSTOMER_TYPES = (("one_time", "One-time"), ("recurring", "Recurring"), ("mixed", "Mixed"))
CONTACT_PROPERTIES: dict[str, dict[str, Any]] = {
    "crmq_score": {"label": "crm-qualify score", **_NUMBER},
    "crmq_fit_score": {"label": "crm-qualify fit score", **_NUMBER},
    "crmq_engagement_score": {"label": "crm-qualify engagement score", **_NUMBER},
    "crmq_intent_score": {"label": "crm-qualify intent score", **_NUMBER},
    "crmq_temperature": {
        "label": "crm-qualify temperature",
        "type": "enumeration",
        "fieldType": "select",
        "options": [
            {"label": label, "value": label.lower(), "displayOrder": order, "hidden": False}
            for order, label in enumerate(("Cold", "Warm", "Hot"))
        ],
    },
    "crmq_grade": {"label": "crm-qualify grade", **_TEXT},
    "crmq_rules_version": {"label": "crm-qualify rules version", **_TEXT},
    "crmq_reasons": {"label": "crm-qualify reasons", "type": "string", "fieldType": "textarea"},
    "crmq_scored_at": {"label": "crm-qualify scored at", "type": "datetime", "fieldType": "date"},
    "crmq_renurture": {"label": "crm-qualify re-nurture", **_CHECKBOX},
    "crmq_disqualified": {"label": "crm-qualify disqualified", **_CHECKBOX},
    "crmq_highest_stage": {"label": "crm-qualify highest stage", **_select(HIGHEST_STAGES)},
    "crmq_customer_type": {"label": "crm-qualify customer type", **_select(CUSTOMER_TYPES)},
    "crmq_duplicate": {"label": "crm-qualify duplicate", **_CHECKBOX},
    "crmq_duplicate_group": {"label": "crm-qualify duplicate group", **_TEXT},
}


def create_properties(
    client: HubSpotClient, mapping: ContactMapping, task_key: str
) -> list[CheckResult]:
    """Create the group and the properties the mapping owns that do not exist yet (a field
    given up, `owned = false`, is not created); never changes existing ones, but names each
    existing one that cannot hold what crm-qualify writes (`field_fit`), with its fix."""
    results: list[CheckResult] = []
    misfits: list[CheckResult] = []
    owned = {
        p: CONTACT_PROPERTIES[p] for p in mapping.owned.fields.values() if p in CONTACT_PROPERTIES
    }
    for target, wanted in (
        (mapping.object_type, owned),
        ("tasks", {task_key: {"label": "crm-qualify task key", **_TEXT}}),
    ):
        _, existing = client.call("GET properties", client.properties.get_all, target)
        names = {row["name"] for row in existing.get("results", [])}
        if target == mapping.object_type:
            described = {i.name: i for i in map(field_info, objects(existing.get("results")))}
            misfits = [c for c in fit_checks(target, mapping.owned, described) if not c.ok]
        _, groups = client.call("GET property groups", client.groups.get_all, target)
        if GROUP["name"] not in {g["name"] for g in groups.get("results", [])}:
            try:
                client.call("POST property group", client.groups.create, target, GROUP)
            except HubSpotError as exc:
                if not _created_already(exc):
                    raise
        for name, definition in wanted.items():
            if name in names:
                results.append(CheckResult(f"{target}.{name}", True, "exists"))
                continue
            body = {"name": name, "groupName": GROUP["name"], **definition}
            try:
                client.call("POST property", client.properties.create, target, body)
                results.append(CheckResult(f"{target}.{name}", True, "created"))
            except HubSpotError as exc:
                if _created_already(exc):
                    results.append(CheckResult(f"{target}.{name}", True, "created"))
                else:
                    results.append(CheckResult(f"{target}.{name}", False, str(exc)))
    return results + misfits


def _created_already(error: HubSpotError) -> bool:
    """A 409 on a create of something absent when setup looked: it exists now, made by our
    own attempt whose answer was lost (the client sent the create again) or by another setup
    meanwhile; `doctor` checks its definition either way."""
    return error.status == 409 and error.category == "OBJECT_ALREADY_EXISTS"


def missing_properties_error(owned: dict[str, str], missing: list[str]) -> ConfigError:
    """A write refused because the portal lacks properties it carries (never set up, or one
    deleted since): the run stops at that first refusal, naming each and the fix, instead of
    splitting every batch down to each record (two requests a record, every record an
    error). `owned`: canonical field -> property (the mapping's)."""
    field_of = {prop: name for name, prop in owned.items()}
    named = ", ".join(f"{p} (field {field_of[p]})" if p in field_of else p for p in missing)
    fixes = []
    if any(p in CONTACT_PROPERTIES or p not in field_of for p in missing):
        fixes.append("run crm-qualify setup hubspot")
    theirs = [p for p in missing if p in field_of and p not in CONTACT_PROPERTIES]
    if theirs:
        fixes.append(f"create {', '.join(theirs)} in HubSpot")
    fixes += [f"set [fields.{field_of[p]}] owned = false" for p in missing if p in field_of]
    return ConfigError(
        f"HubSpot has no property {named}; the run stopped at the first write carrying it."
        f" Fix: {' or '.join(fixes)}"
    )
