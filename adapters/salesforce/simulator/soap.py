"""SOAP `login()` of the partner API, the way `simple-salesforce` logs in with a password.

Only the login call is served: the connector itself speaks REST, but a consultant's script
(or `SalesforceLogin(scratch_url=...)`) may log in through SOAP. A wrong password answers
500 with a `LoginFault`, whose `sf:exceptionCode` the client raises.
"""

from __future__ import annotations

import re
from html import unescape
from xml.sax.saxutils import escape

from .ids import ORG_ID

ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope'
    ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns="urn:partner.soap.sforce.com" xmlns:sf="urn:fault.partner.soap.sforce.com"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{}</soapenv:Body>'
    "</soapenv:Envelope>"
)
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def credentials(body: str) -> tuple[str, str]:
    """(username, password+token) from a login request; empty strings when absent."""
    found = [
        re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", body, re.DOTALL)
        for tag in ("username", "password")
    ]
    user, password = (unescape(m.group(1)) if m else "" for m in found)
    return user, password


def login_response(session_id: str, instance_url: str, version: str, user_id: str) -> str:
    server = f"{instance_url}/services/Soap/u/{version}/{ORG_ID[:15]}"
    result = (
        f"<metadataServerUrl>{escape(instance_url)}/services/Soap/m/{version}/{ORG_ID[:15]}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{escape(server)}</serverUrl><sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{user_id}</userId><userInfo><organizationId>{ORG_ID}"
        "</organizationId></userInfo>"
    )
    return ENVELOPE.format(f"<loginResponse><result>{result}</result></loginResponse>")


def login_fault() -> str:
    return ENVELOPE.format(
        "<soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>"
        f"<faultstring>INVALID_LOGIN: {INVALID_LOGIN}</faultstring><detail>"
        '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN'
        f"</sf:exceptionCode><sf:exceptionMessage>{INVALID_LOGIN}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault>"
    )
