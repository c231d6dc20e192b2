"""The custom properties crm-qualify writes: checked by `doctor`, created by `setup`.

Option lists carry `hidden`, which the properties spec's `OptionInput` requires."""

from __future__ import annotations

from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient, HubSpotError
from crm_qualify.adapters.hubspot.translate import ContactMapping
from crm_qualify.connector.contract import CheckResult, ConfigError, FieldInfo

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


def property_checks(mapping: ContactMapping, fields: dict[str, FieldInfo]) -> list[CheckResult]:
    """Every mapped property exists and the owned ones are writable; stage values are known,
    and so are the options of the owned enumerations."""
    missing = [p for p in mapping.properties if p not in fields]
    results = [
        CheckResult(
            "mapped properties",
            not missing,
            "all present" if not missing else _missing_detail(mapping, missing),
        )
    ]
    read_only = [p for p in mapping.owned.fields.values() if p in fields and not fields[p].writable]
    results.append(
        CheckResult(
            "owned properties writable",
            not read_only,
            "all writable" if not read_only else f"read-only: {', '.join(read_only)}",
        )
    )
    stage_prop = mapping.owned.fields.get("stage")
    if stage_prop in fields:
        unknown = [v for v in mapping.owned.stages.values() if v not in fields[stage_prop].options]
        results.append(
            CheckResult(
                "stage values",
                not unknown,
                "all known" if not unknown else f"not in {stage_prop}: {', '.join(unknown)}",
            )
        )
    for name, values in mapping.owned.options.to_crm.items():
        prop = mapping.owned.fields.get(name)
        if prop in fields and fields[prop].options:
            unknown = [v for v in values.values() if v not in fields[prop].options]
            results.append(
                CheckResult(
                    f"{prop} options",
                    not unknown,
                    "all known" if not unknown else f"not an option: {', '.join(unknown)}",
                )
            )
    return results


def _missing_detail(mapping: ContactMapping, missing: list[str]) -> str:
    """What is missing and how to fix it: an owned property is created by `setup` (or made by
    hand when it is not ours) or given up in the configuration; the portal's other mapped
    properties are its own to create."""
    owned = {prop: name for name, prop in mapping.owned.fields.items()}
    parts = []
    for prop in missing:
        name = owned.get(prop)
        if name is None:
            parts.append(prop)
            continue
        create = "run crm-qualify setup hubspot" if prop in CONTACT_PROPERTIES else "create it"
        parts.append(f"{prop} for field {name}: {create}, or set [fields.{name}] owned = false")
    return "missing: " + "; ".join(parts)


def task_checks(fields: dict[str, FieldInfo], key_property: str) -> list[CheckResult]:
    """The task key property exists and is text, so `find_tasks` can search it."""
    found = fields.get(key_property)
    if found is None:
        detail = f"missing: tasks.{key_property} (crm-qualify setup)"
    elif found.type != "string":
        detail = f"tasks.{key_property} is {found.type}, expected string"
    else:
        detail = f"tasks.{key_property} present"
    return [CheckResult("task key property", found is not None and found.type == "string", detail)]


def create_properties(
    client: HubSpotClient, mapping: ContactMapping, task_key: str
) -> list[CheckResult]:
    """Create the group and the properties the mapping owns that do not exist yet (a field
    given up, `owned = false`, is not created); never changes existing ones."""
    results = []
    owned = {
        p: CONTACT_PROPERTIES[p] for p in mapping.owned.fields.values() if p in CONTACT_PROPERTIES
    }
    for target, wanted in (
        (mapping.object_type, owned),
        ("tasks", {task_key: {"label": "crm-qualify task key", **_TEXT}}),
    ):
        _, existing = client.call("GET properties", client.properties.get_all, target)
        names = {row["name"] for row in existing.get("results", [])}
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
    return results


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
