"""What happens in the org besides the API: a person's edit in the UI, a day of engagement, a
lead converted. Each stamps the UI user (`org.ui_user`), never the API user."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from .conversion import convert
from .org import Org, iso


def touch(org: Org, record_id: str, fields: dict[str, Any]) -> None:
    """A person's edit in the UI (any field, even read-only ones), stamped now."""
    with org.lock:
        sobject, _ = org.find(record_id) or (None, None)
        if sobject is None:
            raise KeyError(record_id)
        org.update(sobject, record_id, fields, datetime.now(UTC))


def convert_lead(
    org: Org, lead_id: str, *, account_id: str | None = None, opportunity: bool | str = False
) -> dict[str, Any]:
    """A salesperson converts a lead now (see `conversion.py`); returns the converted lead."""
    with org.lock:
        found = org.find(lead_id)
        if found is None or found[0] != "Lead":
            raise KeyError(lead_id)
        return convert(
            org, found[1]["Id"], datetime.now(UTC), account_id=account_id, opportunity=opportunity
        )


def simulate_engagement(org: Org, rng: random.Random, n: int) -> list[str]:
    """A day of new engagement on `n` people: campaign responses, replies, meetings."""
    with org.lock:
        people = [
            r["Id"] for s in ("Lead", "Contact") for r in org.live(s) if not r.get("IsConverted")
        ]
        chosen = sorted(rng.sample(people, min(n, len(people))))
        campaigns = list(org.live("Campaign"))
        at = datetime.now(UTC)
        for person_id in chosen:
            roll = rng.random()
            if roll < 0.5:
                campaign = rng.choice(campaigns)
                member = {
                    "CampaignId": campaign["Id"],
                    "Status": "Responded",
                    "HasResponded": True,
                    "FirstRespondedDate": at.date().isoformat(),
                }
                member["LeadId" if person_id.startswith("00Q") else "ContactId"] = person_id
                org.insert("CampaignMember", member, at - timedelta(minutes=5))
            elif roll < 0.85:
                org.insert(
                    "Task",
                    {
                        "WhoId": person_id,
                        "Subject": "Re: follow-up",
                        "TaskSubtype": "Email",
                        "Status": "Completed",
                        "IsClosed": True,
                        "ActivityDate": at.date().isoformat(),
                    },
                    at - timedelta(minutes=5),
                )
            else:
                org.insert(
                    "Event",
                    {
                        "WhoId": person_id,
                        "Subject": "Demo meeting",
                        "ActivityDateTime": iso(at),
                        "Type": "Meeting",
                    },
                    at,
                )
            sobject = "Lead" if person_id.startswith("00Q") else "Contact"
            org.update(sobject, person_id, {}, at)
    return chosen
