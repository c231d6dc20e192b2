"""Logins and sessions of the simulated org: the OAuth token endpoint (password, client
credentials, refresh token, JWT bearer), the identity URL and OpenID Connect userinfo, SOAP
`login()`, and the session ids every API request must carry.

From Salesforce's documentation:
- Client credentials may come in the form body (`client_id`, `client_secret`) or as HTTP Basic
  (`Authorization: Basic base64(id:secret)`, how simple-salesforce sends them); both at once is
  refused (RFC 6749 2.3: one method per request).
- The JWT bearer flow (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion`)
  takes an RS256 JWT signed with the key of the certificate uploaded to the connected app:
  `iss` the consumer key, `sub` the username, `aud` the login host
  (https://login.salesforce.com, https://test.salesforce.com, or the org's own), `exp` in the
  future. Refusals: `invalid_client_id` (unknown `iss`), `invalid_grant` with "invalid
  assertion" (bad signature or claims), "audience is invalid", "expired authorization code"
  (a past `exp`), "user hasn't approved this consumer" (a `sub` the app is not approved for).
  Its answer has no `signature` or `issued_at` (no refresh token either).
- Every other token answer carries `issued_at` (milliseconds) and `signature`: the Base64
  HMAC-SHA256, keyed with the consumer secret, of the identity URL followed by `issued_at`,
  so a client can check the answer came from Salesforce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from . import soap
from .errors import ApiError
from .ids import ORG_ID
from .server import IDENTITY

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
"""Audiences every org accepts; the simulator accepts its own login URL as well."""
GRANTS = ("password", "client_credentials", "refresh_token")


def refusal(error: str, description: str) -> tuple[int, dict[str, str]]:
    return 400, {"error": error, "error_description": description}


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(client id, secret) from `Authorization: Basic ...` (each URL-decoded, RFC 6749
    2.3.1), or None when the header is not Basic or does not decode."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = pair.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if colon else None


def signature(identity_url: str, issued_at: str, secret: str) -> str:
    """Base64 HMAC-SHA256 of identity URL + issued_at, keyed with the consumer secret."""
    digest = hmac.new(secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


class Auth:
    """Sessions and logins; the credentials are the simulator's (`sim.username`...)."""

    def __init__(self, sim: SalesforceSimulator) -> None:
        self.sim = sim
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()
        self.certificates: list[RSAPublicKey] = []
        """Public keys of the certificates uploaded to the connected app (JWT bearer flow)."""

    # sessions --------------------------------------------------------------------------------
    def issue(self) -> str:
        token = ORG_ID[:15] + "!" + secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = time.time() + self.sim.session_ttl
        return token

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def authenticate(self, header: str) -> None:
        token = header.split(" ", 1)[1] if " " in header else ""
        with self._lock:
            expiry = self._sessions.get(token)
        if expiry is None or expiry < time.time():
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    # the token endpoint ----------------------------------------------------------------------
    def register_certificate(self, pem: bytes) -> None:
        """Upload a certificate (PEM) to the connected app: JWTs signed with its key log in."""
        key = x509.load_pem_x509_certificate(pem).public_key()
        if not isinstance(key, RSAPublicKey):
            raise ValueError("the JWT bearer flow signs with RS256: an RSA certificate")
        self.certificates.append(key)

    def token(
        self, form: dict[str, list[str]], authorization: str = "", instance_url: str | None = None
    ) -> tuple[int, Any]:
        """One token request; `instance_url` overrides the org's own in the answer (a fault)."""
        sim = self.sim
        value = {k: v[0] for k, v in form.items()}
        grant = value.get("grant_type")
        if grant == JWT_BEARER:
            return self._jwt_bearer(value.get("assertion", ""), instance_url)
        if grant not in GRANTS:
            return refusal("unsupported_grant_type", "grant type not supported")
        basic = basic_credentials(authorization)
        if basic and ("client_id" in value or "client_secret" in value):
            return refusal("invalid_request", "client credentials given twice")
        client = basic or (value.get("client_id"), value.get("client_secret"))
        if client[0] != sim.client_id:
            return refusal("invalid_client_id", "client identifier invalid")
        if client[1] != sim.client_secret:
            return refusal("invalid_client", "invalid client credentials")
        ok = {
            "password": (value.get("username"), value.get("password"))
            == (sim.username, sim.password + sim.security_token),
            "client_credentials": True,
            "refresh_token": value.get("refresh_token") == sim.refresh_token,
        }[grant]
        if not ok:
            return refusal("invalid_grant", "authentication failure")
        issued_at = str(int(time.time() * 1000))
        identity = sim.identity_url()
        return 200, {
            "access_token": self.issue(),
            "instance_url": instance_url or sim.instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature(identity, issued_at, sim.client_secret),
            "scope": "api refresh_token",
        }

    def _jwt_bearer(self, assertion: str, instance_url: str | None) -> tuple[int, Any]:
        sim = self.sim
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            if jwt.get_unverified_header(assertion).get("alg") != "RS256":
                raise jwt.InvalidTokenError("not RS256")
        except jwt.InvalidTokenError:
            return refusal("invalid_grant", "invalid assertion")
        if claims.get("iss") != sim.client_id:
            return refusal("invalid_client_id", "client identifier invalid")
        if not any(self._signed_by(assertion, key) for key in self.certificates):
            return refusal("invalid_grant", "invalid assertion")
        if str(claims.get("aud", "")).rstrip("/") not in (*AUDIENCES, sim.login_url):
            return refusal("invalid_grant", "audience is invalid")
        try:
            expires = float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            return refusal("invalid_grant", "invalid assertion")
        if expires <= time.time():
            return refusal("invalid_grant", "expired authorization code")
        if claims.get("sub") != sim.username:
            return refusal("invalid_grant", "user hasn't approved this consumer")
        return 200, {
            "access_token": self.issue(),
            "scope": "api",
            "instance_url": instance_url or sim.instance_url,
            "id": sim.identity_url(),
            "token_type": "Bearer",
        }

    @staticmethod
    def _signed_by(assertion: str, key: RSAPublicKey) -> bool:
        """Whether the assertion's RS256 signature verifies with this key (claims are checked
        one by one after, each with Salesforce's own refusal)."""
        try:
            jwt.decode(
                assertion, key, algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iss": False},
            )  # fmt: skip
        except jwt.InvalidTokenError:
            return False
        return True

    # who is calling --------------------------------------------------------------------------
    def identity(self, header: str, path: str) -> tuple[int, Any]:
        """GET the identity URL or OpenID Connect `/services/oauth2/userinfo`: who the session
        is. A session that is not valid, or another user's identity URL, answers 403
        `Bad_OAuth_Token` (plain text), as Salesforce does."""
        sim = self.sim
        user = sim.org.records["User"][sim.org.integration_user]
        found = IDENTITY.match(path)
        try:
            self.authenticate(header)
        except ApiError:
            return 403, "Bad_OAuth_Token"
        if found and (found.group(1)[:15], found.group(2)[:15]) != (ORG_ID[:15], user["Id"][:15]):
            return 403, "Bad_OAuth_Token"
        who = {
            "user_id": user["Id"], "organization_id": ORG_ID, "email": user["Email"],
            "active": True, "user_type": "STANDARD",
        }  # fmt: skip
        if found:
            return 200, {
                "id": sim.identity_url(), "asserted_user": True, **who,
                "username": sim.username, "display_name": user["Name"],
                "nick_name": user["Name"].split()[0],
            }  # fmt: skip
        return 200, {
            "sub": sim.identity_url(), **who, "preferred_username": sim.username,
            "name": user["Name"], "nickname": user["Name"].split()[0], "email_verified": True,
        }  # fmt: skip

    def soap_login(self, body: str) -> tuple[int, str]:
        """Partner API `login()`: the password carries the security token appended."""
        sim = self.sim
        if soap.credentials(body) != (sim.username, sim.password + sim.security_token):
            return 500, soap.login_fault()
        user = sim.org.integration_user
        return 200, soap.login_response(self.issue(), sim.instance_url, sim.api_version, user)
