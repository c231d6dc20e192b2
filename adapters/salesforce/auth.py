"""The OAuth token request for each login flow of a connected app: username-password, client
credentials, refresh token, and the JWT bearer flow.

The JWT bearer flow is the server-to-server login: no password, no secret and no refresh
token to keep, only a private key whose certificate the connected app holds. The assertion
(RS256, signed with PyJWT) names the connected app (`iss`, its consumer key), the user to log
in as (`sub`), the login server (`aud`) and an expiry (`exp`) three minutes ahead, the longest
Salesforce accepts; a new one is made for every login.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

if TYPE_CHECKING:
    from crm_qualify.adapters.salesforce.settings import SalesforceSettings

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(minutes=3)
PRODUCTION, SANDBOX = "https://login.salesforce.com", "https://test.salesforce.com"


def private_key(pem: str) -> RSAPrivateKey:
    """The RSA private key in a PEM text (unencrypted), or ValueError saying what is wrong."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if isinstance(exc, TypeError) else "not a PEM private key"
        raise ValueError(f"the private key cannot be read: {reason}") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("the private key must be an RSA key (Salesforce verifies RS256)")
    return key


def audience(settings: SalesforceSettings) -> str:
    """`aud`: the option when set; otherwise test.salesforce.com for a sandbox login host
    (test.salesforce.com, `*.sandbox.my.salesforce.com`, a `name--sandbox` My Domain) and
    login.salesforce.com for everything else."""
    if settings.jwt_audience:
        return settings.jwt_audience
    host = (urlsplit(settings.login_url).hostname or "").lower()
    sandbox = host == "test.salesforce.com" or ".sandbox." in host or "--" in host
    return SANDBOX if sandbox else PRODUCTION


def assertion(settings: SalesforceSettings, now: datetime | None = None) -> str:
    """A signed JWT for one login as `settings.username`."""
    if settings.private_key is None:
        raise ValueError("auth = 'jwt' needs private_key")
    moment = now or datetime.now(UTC)
    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": audience(settings),
        "exp": int((moment + ASSERTION_LIFETIME).timestamp()),
    }
    key = private_key(settings.private_key.get_secret_value())
    return jwt.encode(claims, key, algorithm="RS256")


def token_form(settings: SalesforceSettings) -> dict[str, str]:
    """The form of one token request for the configured flow."""
    if settings.auth == "jwt":
        return {"grant_type": JWT_BEARER, "assertion": assertion(settings)}
    secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
    form = {"grant_type": settings.auth, "client_id": settings.client_id, "client_secret": secret}
    if settings.auth == "password" and settings.password:
        token = settings.security_token.get_secret_value() if settings.security_token else ""
        form |= {
            "username": settings.username or "",
            "password": settings.password.get_secret_value() + token,
        }
    elif settings.auth == "refresh_token" and settings.refresh_token:
        form["refresh_token"] = settings.refresh_token.get_secret_value()
    return form
