"""Lead conversion as Salesforce performs it (`convertLead()`), for the seeded history and for
tests: the lead becomes a Contact under an Account, optionally with an Opportunity, and keeps
only a pointer to them.

From Salesforce's documentation and help: standard fields map to the new records (name, email,
title, owner, lead source, email opt-out, phone to the Contact; company, industry, employees,
country and website to a new Account; company and lead source to the Opportunity), custom
fields only where an admin mapped them (none here: the CRMQ_* values stay on the lead); the
lead's open and closed activities move to the contact (their `WhoId` changes), and its campaign
memberships stay, the member now naming the contact too (`ContactId` set, `LeadId` kept). A new
Opportunity gets the contact as its primary contact role; converting into an existing one adds
no role. The lead is then `IsConverted`, in a converted status, with `ConvertedContactId`,
`ConvertedAccountId`, `ConvertedOpportunityId` and `ConvertedDate`, and can no longer be
updated nor named by a task's `WhoId` (CANNOT_UPDATE_CONVERTED_LEAD, `writes.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .org import Org

CONVERTED_STATUS = "Closed - Converted"
TO_CONTACT = ("FirstName", "LastName", "Email", "Phone", "Title", "OwnerId", "LeadSource",
              "HasOptedOutOfEmail")  # fmt: skip
TO_ACCOUNT = {"Company": "Name", "Industry": "Industry", "NumberOfEmployees": "NumberOfEmployees",
              "Country": "BillingCountry", "Website": "Website", "OwnerId": "OwnerId"}  # fmt: skip


def convert(
    org: Org,
    lead_id: str,
    at: datetime,
    *,
    account_id: str | None = None,
    opportunity: bool | str = False,
    by: str = "",
    children: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Convert one lead (into `account_id`, or a new Account); `opportunity`: True for a new
    one, an Opportunity id to convert into an existing one. `children`: the Tasks, Events and
    CampaignMembers that may point at the lead (default: every live one; the seeding passes
    the lead's own, as a scan per lead would be quadratic). Returns the converted lead."""
    lead = org.records["Lead"][lead_id]
    if lead.get("IsConverted"):
        raise ValueError(f"lead {lead_id} is already converted")
    if account_id is None:
        fields = {target: lead.get(source) for source, target in TO_ACCOUNT.items()
                  if source in lead}  # fmt: skip
        account_id = org.insert("Account", fields, at, by)["Id"]
    contact = org.insert(
        "Contact",
        {**{name: lead.get(name) for name in TO_CONTACT if name in lead}, "AccountId": account_id},
        at,
        by,
    )
    opportunity_id = opportunity if isinstance(opportunity, str) else None
    if opportunity is True:
        deal = org.insert("Opportunity", {
            "Name": f"{lead.get('Company') or lead.get('LastName')}-", "AccountId": account_id,
            "StageName": "Prospecting", "IsClosed": False, "IsWon": False,
            "CloseDate": at.date().isoformat(), "LeadSource": lead.get("LeadSource"),
        }, at, by)  # fmt: skip
        opportunity_id = deal["Id"]
        org.insert("OpportunityContactRole", {"OpportunityId": opportunity_id,
                                              "ContactId": contact["Id"]}, at, by)  # fmt: skip
    if children is None:
        children = [r for s in ("Task", "Event", "CampaignMember") for r in org.live(s)]
    for child in list(children):
        sobject, _ = org.find(child["Id"]) or ("", None)
        if sobject in ("Task", "Event") and child.get("WhoId") == lead_id:
            org.update(sobject, child["Id"], {"WhoId": contact["Id"]}, at, by)
        elif sobject == "CampaignMember" and child.get("LeadId") == lead_id:
            org.update(sobject, child["Id"], {"ContactId": contact["Id"]}, at, by)
    org.update("Lead", lead_id, {
        "IsConverted": True, "Status": CONVERTED_STATUS, "ConvertedContactId": contact["Id"],
        "ConvertedAccountId": account_id, "ConvertedOpportunityId": opportunity_id,
        "ConvertedDate": at.date().isoformat(),
    }, at, by)  # fmt: skip
    return lead
