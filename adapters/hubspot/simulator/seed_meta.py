"""Seeded owners and deal pipelines (the default one as recorded in
fixtures/hubspot/pipelines_deals_200.json, plus a custom one whose stage ids are numeric)."""

from __future__ import annotations

import random
from typing import Any

from . import seed_data as D
from .values import DAY_MS, format_ms

_BUCKETS = (
    (5, "1-5"),
    (25, "5-25"),
    (50, "25-50"),
    (100, "50-100"),
    (500, "100-500"),
    (1000, "500-1000"),
)


def owners(rng: random.Random, portal_domain: str) -> list[dict[str, Any]]:
    ids = sorted(rng.sample(range(10_000_000, 99_999_999), len(D.OWNERS)))
    out = []
    for oid, (first, last) in zip(ids, D.OWNERS, strict=True):
        stamp = format_ms(1_577_836_800_000 + rng.randrange(0, 1000) * DAY_MS)
        out.append(
            {
                "id": str(oid),
                "email": f"{first}.{last}@{portal_domain}".lower(),
                "type": "PERSON",
                "firstName": first,
                "lastName": last,
                "userId": oid,
                "userIdIncludingInactive": oid,
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
            }
        )
    return out


def pipelines(rng: random.Random) -> list[dict[str, Any]]:
    """The default deal pipeline (as recorded) and a custom one with numeric stage ids."""
    epoch = "1970-01-01T00:00:00Z"
    default = [
        ("appointmentscheduled", "Appointment Scheduled", "false", "0.2"),
        ("qualifiedtobuy", "Qualified To Buy", "false", "0.4"),
        ("presentationscheduled", "Presentation Scheduled", "false", "0.6"),
        ("decisionmakerboughtin", "Decision Maker Bought-In", "false", "0.8"),
        ("contractsent", "Contract Sent", "false", "0.9"),
        ("closedwon", "Closed Won", "true", "1.0"),
        ("closedlost", "Closed Lost", "true", "0.0"),
    ]
    base = rng.randrange(70_000_000, 90_000_000)
    custom = [
        (str(base + i + 1), label, closed, prob)
        for i, (label, closed, prob) in enumerate(
            [
                ("Discovery", "false", "0.1"),
                ("Technical evaluation", "false", "0.3"),
                ("Negotiation", "false", "0.7"),
                ("Signed", "true", "1.0"),
                ("Disqualified", "true", "0.0"),
            ]
        )
    ]

    def build(
        pid: str, label: str, order: int, stages: list[tuple[str, ...]], stamp: str
    ) -> dict[str, Any]:
        return {
            "label": label,
            "displayOrder": order,
            "id": pid,
            "stages": [
                {
                    "label": s_label,
                    "displayOrder": i,
                    "metadata": {"isClosed": closed, "probability": prob},
                    "id": sid,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    "archived": False,
                }
                for i, (sid, s_label, closed, prob) in enumerate(stages)
            ],
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }

    return [
        build("default", "Sales Pipeline", 0, default, epoch),
        build(str(base), "Enterprise Pipeline", 1, custom, "2023-02-14T10:12:40.512Z"),
    ]


_EPOCH = "1970-01-01T00:00:00Z"


def _stage(sid: str, label: str, order: int, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "label": label,
        "displayOrder": order,
        "metadata": metadata,
        "id": sid,
        "createdAt": _EPOCH,
        "updatedAt": _EPOCH,
        "archived": False,
    }


# HubSpot's default ticket pipeline ("0", stages "1".."4"; metadata carries `ticketState`).
TICKET_PIPELINE: dict[str, Any] = {
    "label": "Support Pipeline",
    "displayOrder": 0,
    "id": "0",
    "stages": [
        _stage(sid, label, i, {"ticketState": state, "isClosed": str(state == "CLOSED").lower()})
        for i, (sid, label, state) in enumerate(
            [
                ("1", "New", "OPEN"),
                ("2", "Waiting on contact", "OPEN"),
                ("3", "Waiting on us", "OPEN"),
                ("4", "Closed", "CLOSED"),
            ]
        )
    ],
    "createdAt": _EPOCH,
    "updatedAt": _EPOCH,
    "archived": False,
}


def lifecycle_pipeline(stages: list[tuple[str, str]]) -> dict[str, Any]:
    """The contacts pipeline: the portal's lifecycle stages, in order (id = internal value)."""
    return {
        "label": "Lifecycle Stage Pipeline",
        "displayOrder": 0,
        "id": "contacts-lifecycle-pipeline",
        "stages": [
            _stage(value, label, i, {"isClosed": "false"})
            for i, (value, label) in enumerate(stages)
        ],
        "createdAt": _EPOCH,
        "updatedAt": _EPOCH,
        "archived": False,
    }


def stage_ids(pipeline: dict[str, Any]) -> dict[str, list[str]]:
    """Open, won and lost stage ids of one pipeline, resolved from metadata like an adapter."""
    out: dict[str, list[str]] = {"open": [], "won": [], "lost": []}
    for stage in pipeline["stages"]:
        meta = stage["metadata"]
        kind = (
            "open"
            if meta["isClosed"] == "false"
            else ("won" if meta["probability"] == "1.0" else "lost")
        )
        out[kind].append(stage["id"])
    return out


def bucket(employees: int) -> str:
    return next((label for top, label in _BUCKETS if employees <= top), "1000+")
