"""HubSpot's error envelope, so adapters meet the same bodies as against the real API.

Bodies follow the `Error` schema of the CRM specs plus the `"status": "error"` key that real
responses carry. Property-validation messages embed a compact JSON list exactly like the
documented 400 example (fixtures/hubspot/docs_error_400_validation.json).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    """An HTTP error answer; raised anywhere in request handling and rendered by the server."""

    status: int
    category: str
    message: str
    errors: list[dict[str, Any]] | None = None
    context: dict[str, list[str]] | None = None
    sub_category: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
        }
        if self.errors is not None:
            out["errors"] = self.errors
        if self.context is not None:
            out["context"] = self.context
        out["category"] = self.category
        if self.sub_category is not None:
            out["subCategory"] = self.sub_category
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class PropertyProblem:
    """One invalid property value; HubSpot reports these as a JSON list inside the message."""

    name: str
    code: str
    message: str


def validation_error(message: str, **context: list[str]) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, context=context or None)


def invalid_json(detail: str) -> ApiError:
    return validation_error(f"Invalid input JSON on line 1, column 1: {detail}")


def property_message(problems: list[PropertyProblem], portal_id: int) -> str:
    """The `Property values were not valid: [...]` text HubSpot uses for 400s and 207 rows."""
    items = [
        {
            "isValid": False,
            "message": p.message,
            "error": p.code,
            "name": p.name,
            "localizedErrorMessage": p.message,
            "portalId": portal_id,
        }
        for p in problems
    ]
    return "Property values were not valid: " + json.dumps(items, separators=(",", ":"))


def property_error(problems: list[PropertyProblem], portal_id: int) -> ApiError:
    details = [
        {"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}}
        for p in problems
    ]
    return ApiError(400, "VALIDATION_ERROR", property_message(problems, portal_id), errors=details)


def row_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """A per-row entry of a 207 `errors[]` list (the spec's `StandardError`)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


GROUP_OF_POLICY = {"TEN_SECONDLY_ROLLING": "ten-secondly"}
"""The limit's name inside `groupName` where it differs from the policy's: the recorded 429
says `...-api-calls-ten-secondly:<hub>` for policy TEN_SECONDLY_ROLLING."""


def rate_limit_body(policy: str, message: str, hub_id: int) -> dict[str, Any]:
    """429 body as recorded in fixtures/hubspot/error_429_ten_secondly_rolling.json."""
    group = GROUP_OF_POLICY.get(policy, policy.lower())
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "groupName": f"publicapi:private-app-api-calls-{group}:{hub_id}",
    }
