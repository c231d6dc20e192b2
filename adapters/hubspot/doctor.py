"""`crm-qualify doctor` for HubSpot: the token, every mapped contact property (an owned one
can hold what crm-qualify writes), the task key property, the deal pipelines' closed stages
and the engagement sources the mapping reads, each with what to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_qualify.adapters.hubspot.client import HubSpotError
from crm_qualify.adapters.hubspot.setup import CONTACT_PROPERTIES
from crm_qualify.adapters.hubspot.translate import ContactMapping
from crm_qualify.connector.contract import AuthError, CheckResult, FieldInfo
from crm_qualify.connector.field_fit import fit_checks

if TYPE_CHECKING:
    from crm_qualify.adapters.hubspot.adapter import HubSpotAdapter


def run_checks(adapter: HubSpotAdapter) -> list[CheckResult]:
    """Every check, each with what to fix; a refused login ends the list."""
    try:
        fields = adapter.describe_fields(adapter.object_type)
    except AuthError as exc:
        return [CheckResult.refused("credentials", exc)]
    except HubSpotError as exc:
        return [CheckResult("connectivity", False, str(exc))]
    results = [CheckResult("credentials", True, f"read {len(fields)} contact properties")]
    results += property_checks(adapter.contacts, fields)
    try:
        results += task_checks(adapter.describe_fields("tasks"), adapter.task_key_property)
        adapter.pipeline_stages()
        results.append(CheckResult("deal pipelines", True, "closed and won stages known"))
    except (AuthError, HubSpotError) as exc:
        results.append(CheckResult("tasks and deal pipelines", False, str(exc)))
    results += adapter.engagement.checks()
    return results


def property_checks(mapping: ContactMapping, fields: dict[str, FieldInfo]) -> list[CheckResult]:
    """Every mapped property exists, and each owned one can hold what crm-qualify writes
    (`field_fit`: writable, of the right type, our values among its options)."""
    missing = [p for p in mapping.properties if p not in fields]
    results = [
        CheckResult(
            "mapped properties",
            not missing,
            "all present" if not missing else _missing_detail(mapping, missing),
        )
    ]
    return results + fit_checks(mapping.object_type, mapping.owned, fields)


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
