"""The portal's activity objects (calls, meetings, emails, notes, communications): type ids,
association types to contacts, and the properties HubSpot defines on them.

Type ids and association type ids are HubSpot's (objects guide, "Object type IDs"; v4
associations guide, "Association type IDs"). The properties are the HubSpot-defined ones the
engagement guides list for each activity, with their documented option values.
"""

from __future__ import annotations

from typing import Any

ENGAGEMENT_TYPE_IDS = {
    "calls": "0-48",
    "meetings": "0-47",
    "emails": "0-49",
    "notes": "0-46",
    "communications": "0-18",
}
ENGAGEMENT_SINGULAR = {
    "calls": "call",
    "meetings": "meeting",
    "emails": "email",
    "notes": "note",
    "communications": "communication",
}
# (contact -> activity type id, activity -> contact type id), HUBSPOT_DEFINED, unlabeled
CONTACT_LINK_TYPES = {
    "calls": (193, 194),
    "emails": (197, 198),
    "meetings": (199, 200),
    "notes": (201, 202),
    "communications": (81, 82),
}
CALL_STATUSES = ["BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING"]
CALL_STATUSES += ["FAILED", "IN_PROGRESS", "NO_ANSWER", "QUEUED", "RINGING"]
CALL_DIRECTIONS = ["INBOUND", "OUTBOUND"]
MEETING_OUTCOMES = ["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"]
EMAIL_DIRECTIONS = ["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]
EMAIL_STATUSES = ["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"]
CHANNELS = ["SMS", "WHATS_APP", "LINKEDIN_MESSAGE", "PHYSICAL_MAIL", "CUSTOM_CHANNEL_CONVERSATION"]


def association_types() -> dict[tuple[str, str], list[tuple[int, str | None]]]:
    links: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
    for kind, (to_activity, to_contact) in CONTACT_LINK_TYPES.items():
        links[("contacts", kind)] = [(to_activity, None)]
        links[(kind, "contacts")] = [(to_contact, None)]
    return links


def inverse_types() -> dict[int, int]:
    pairs = {a: b for a, b in CONTACT_LINK_TYPES.values()}
    return pairs | {b: a for a, b in pairs.items()}


def v3_names() -> dict[int, str]:
    names = {}
    for kind, (to_activity, to_contact) in CONTACT_LINK_TYPES.items():
        names[to_activity] = f"contact_to_{ENGAGEMENT_SINGULAR[kind]}"
        names[to_contact] = f"{ENGAGEMENT_SINGULAR[kind]}_to_contact"
    return names


def engagement_properties(
    make: dict[str, Any], owners: dict[str, Any], system: Any
) -> dict[str, list[dict[str, Any]]]:
    """Definitions per activity type; `make` holds schema.py's builders (text, number,
    datetime, enumeration, textarea) so the shapes stay those of the properties API."""
    t, dt, e, area = make["text"], make["datetime"], make["enum"], make["textarea"]
    ro = {"read_only": True}

    def common(group: str) -> list[dict[str, Any]]:
        return [dt("hs_timestamp", "Activity date", group), owners, *system(group)]

    return {
        "calls": [
            t("hs_call_title", "Call Title", "call"),
            area("hs_call_body", "Call notes", "call"),
            e("hs_call_status", "Call status", "call", CALL_STATUSES),
            e("hs_call_direction", "Call direction", "call", CALL_DIRECTIONS),
            t("hs_call_disposition", "Call outcome", "call"),
            make["number"]("hs_call_duration", "Call duration", "call"),
            *common("call"),
        ],
        "meetings": [
            t("hs_meeting_title", "Meeting name", "meeting"),
            area("hs_meeting_body", "Meeting description", "meeting"),
            e("hs_meeting_outcome", "Meeting outcome", "meeting", MEETING_OUTCOMES),
            dt("hs_meeting_start_time", "Start time", "meeting"),
            dt("hs_meeting_end_time", "End time", "meeting"),
            *common("meeting"),
        ],
        "emails": [
            t("hs_email_subject", "Email subject", "email"),
            area("hs_email_text", "Email body", "email"),
            e("hs_email_direction", "Email direction", "email", EMAIL_DIRECTIONS),
            e("hs_email_status", "Email send status", "email", EMAIL_STATUSES),
            *common("email"),
        ],
        "notes": [area("hs_note_body", "Note body", "note"), *common("note")],
        "communications": [
            e("hs_communication_channel_type", "Channel type", "communication", CHANNELS),
            t("hs_communication_logged_from", "Logged from", "communication", **ro),
            area("hs_communication_body", "Body", "communication"),
            *common("communication"),
        ],
    }


ENGAGEMENT_GROUPS = {
    kind: [(ENGAGEMENT_SINGULAR[kind], f"{ENGAGEMENT_SINGULAR[kind].title()} information")]
    for kind in ENGAGEMENT_TYPE_IDS
}
