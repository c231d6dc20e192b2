"""Merging records as Salesforce does (SOAP `merge()`, Apex `Database.merge`), served as the
partner API's `merge` call and offered to tests as `SalesforceSimulator.merge`.

From the SOAP API reference (`merge()`): up to three records of one type (Lead, Contact or
Account) become the master record; the others (the victims) are deleted, and their related
records are reparented to the master. Field values set in the request's `masterRecord`
supersede the master's; otherwise the master's values prevail. Each request is its own
transaction, up to 200 per call. A deleted victim keeps its fields, with `IsDeleted = true` and
`MasterRecordId` naming the master: `queryAll()` finds the records merged since a moment by
`WHERE IsDeleted = true AND MasterRecordId != null AND SystemModstamp > ...`, the way the
reference recommends. Reparented here: Tasks and Events (`WhoId`), campaign memberships
(`LeadId` / `ContactId`; a membership of a campaign the master is already in is deleted, one
person being a member once) and opportunity contact roles; each reparented record's
`SystemModstamp` moves, and so does the master's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from .errors import ApiError
from .org import ACTIVITY_LINKS
from .schema import OBJECTS
from .soap import ENVELOPE

if TYPE_CHECKING:
    from .org import Org
    from .simulator import SalesforceSimulator

MERGEABLE = ("Lead", "Contact", "Account")
MAX_REQUESTS = 200
CHILD_LINKS = {
    **ACTIVITY_LINKS,
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId")),
}
"""What each mergeable object's related records point at it by."""


class MergeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class MergeResult:
    master: str
    merged: list[str]
    updated_related: list[str] = field(default_factory=list)


def merge(
    org: Org,
    master_id: str,
    victim_ids: list[str],
    at: datetime,
    by: str = "",
    fields: dict[str, Any] | None = None,
) -> MergeResult:
    """Merge `victim_ids` (one or two) into `master_id`, stamped `at` by user `by`."""
    master = _live(org, master_id)
    sobject = master[0]
    if sobject not in MERGEABLE:
        raise MergeError("INVALID_TYPE", f"merge is not supported for {sobject}")
    if not 1 <= len(victim_ids) <= 2:
        raise MergeError(
            "INVALID_OPERATION", "merge takes one or two records to merge into the master"
        )
    victims = [_live(org, victim) for victim in victim_ids]
    if any(kind != sobject for kind, _ in victims):
        raise MergeError("INVALID_ID_FIELD", "records to merge must be of the master's type")
    if any(record["Id"] == master[1]["Id"] for _, record in victims):
        raise MergeError("INVALID_ID_FIELD", "the master record cannot be merged into itself")
    if any(record.get("IsConverted") for _, record in (master, *victims)):
        raise MergeError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot merge a converted lead")
    updates = dict(fields or {})
    unknown = [name for name in updates if not OBJECTS[sobject].get(name, {}).get("updateable")]
    if unknown:
        raise MergeError("INVALID_FIELD", f"No such column '{unknown[0]}' on entity {sobject}")
    master_key = master[1]["Id"]
    result = MergeResult(master_key, [record["Id"] for _, record in victims])
    for _, victim in victims:
        result.updated_related += _reparent(org, sobject, victim["Id"], master_key, at, by)
        org.update(sobject, victim["Id"], {"IsDeleted": True, "MasterRecordId": master_key},
                   at, by)  # fmt: skip
    org.update(sobject, master_key, updates, at, by)
    return result


def _live(org: Org, record_id: str) -> tuple[str, dict[str, Any]]:
    found = org.find(record_id)
    if found is None:
        raise MergeError("INVALID_ID_FIELD", f"invalid record id: {record_id}")
    if found[1]["IsDeleted"]:
        raise MergeError("ENTITY_IS_DELETED", "entity is deleted")
    return found


def _reparent(org: Org, sobject: str, victim: str, master: str, at: datetime, by: str) -> list[str]:
    moved = []
    for child, link in CHILD_LINKS[sobject]:
        campaigns = {
            row["CampaignId"] for row in org.live(child) if row.get(link) == master
        } if child == "CampaignMember" else set()  # fmt: skip
        for row in list(org.live(child)):
            if row.get(link) != victim:
                continue
            if child == "CampaignMember" and row["CampaignId"] in campaigns:
                org.update(child, row["Id"], {"IsDeleted": True}, at, by)
                continue
            org.update(child, row["Id"], {link: master}, at, by)
            moved.append(row["Id"])
    return moved


# the partner API's `merge` call -------------------------------------------------------------
def _tag(name: str) -> str:
    return rf"<(?:\w+:)?{name}\b[^>]*>(.*?)</(?:\w+:)?{name}>"


def session_id(body: str) -> str:
    found = re.search(_tag("sessionId"), body, re.DOTALL)
    return unescape(found.group(1).strip()) if found else ""


def is_merge(body: str) -> bool:
    return re.search(r"<(?:\w+:)?merge\b", body) is not None


def requests(body: str) -> list[tuple[str | None, str | None, list[str], dict[str, str]]]:
    """Each `MergeRequest` as (type, master id, ids to merge, fields to supersede)."""
    found = []
    for request in re.findall(_tag("request"), body, re.DOTALL):
        master = re.search(_tag("masterRecord"), request, re.DOTALL)
        values = dict(
            (name, unescape(value))
            for name, value in re.findall(
                r"<(?:\w+:)?(\w+)(?:\s[^>]*)?>([^<]*)</(?:\w+:)?\1>", master.group(1)
            )
        ) if master else {}  # fmt: skip
        victims = [unescape(v.strip()) for v in re.findall(_tag("recordToMergeIds"), request)]
        sobject, record_id = values.pop("type", None), values.pop("Id", None)
        values.pop("fieldsToNull", None)
        found.append((sobject, record_id, victims, values))
    return found


def response(results: list[MergeResult | MergeError]) -> str:
    parts = []
    for result in results:
        if isinstance(result, MergeError):
            parts.append(
                f"<result><errors><message>{escape(result.message)}</message><statusCode>"
                f'{result.code}</statusCode></errors><id xsi:nil="true"/>'
                "<success>false</success></result>"
            )
            continue
        merged = "".join(f"<mergedRecordIds>{i}</mergedRecordIds>" for i in result.merged)
        related = "".join(
            f"<updatedRelatedIds>{i}</updatedRelatedIds>" for i in result.updated_related
        )
        parts.append(
            f"<result><id>{result.master}</id>{merged}<success>true</success>{related}</result>"
        )
    return ENVELOPE.format(f"<mergeResponse>{''.join(parts)}</mergeResponse>")


def fault(code: str, message: str) -> str:
    return ENVELOPE.format(
        f"<soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: "
        f"{escape(message)}</faultstring></soapenv:Fault>"
    )


def call(sim: SalesforceSimulator, body: str) -> tuple[int, str]:
    """`merge()` over SOAP: the session from the SessionHeader, one result per request, each
    request on its own (stamped by the API user)."""
    try:
        sim.authenticate(f"Bearer {session_id(body)}")
        sim.count_api_call()
    except ApiError as error:
        return 500, fault(error.code, error.message)
    wanted = requests(body)
    if not wanted or len(wanted) > MAX_REQUESTS:
        return 500, fault("INVALID_OPERATION", f"merge takes 1 to {MAX_REQUESTS} requests")
    results: list[MergeResult | MergeError] = []
    with sim.org.lock:
        for sobject, master, victims, fields in wanted:
            try:
                if not master or (sobject and sobject not in MERGEABLE):
                    raise MergeError("INVALID_TYPE", f"merge is not supported for {sobject}")
                now, api_user = datetime.now(UTC), sim.org.integration_user
                results.append(merge(sim.org, master, victims, now, api_user, fields))
            except MergeError as error:
                results.append(error)
    return 200, response(results)
