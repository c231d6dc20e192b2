"""Private-app token, OAuth refresh flow (with optional refresh-token rotation), token
introspection and scope checks.

Bodies follow HubSpot: CRM 401s use the standard error envelope (INVALID_AUTHENTICATION /
EXPIRED_AUTHENTICATION). `POST /oauth/v1/token` (auth-oauth-v1.json) takes its parameters
form-encoded in the body (the spec also allows `client_secret` and `refresh_token` in the
query) and answers an `AccessTokenResponse`: `access_token`, `refresh_token`, `expires_in`,
`token_type`, `token_use`, plus `hub_id` and `scopes`. Its 400s carry HubSpot's OAuth status
(`BAD_REFRESH_TOKEN`, `BAD_CLIENT_ID`, ...) beside the spec's required `category`, `message`
and `correlationId` (a UUID). Token info answers use the documented field names
(`/oauth/v1/access-tokens/{token}` and `/oauth/v1/refresh-tokens/{token}` snake_case,
private-app info camelCase).

Rotation (`rotate=True`): every refresh answers a new refresh token and voids the one it was
given, the strictest behaviour a client can meet (HubSpot's docs only promise a
`refresh_token` in each answer). Time comes from `clock` (seconds, wall-clock-like), so a test
can live through hours of token expiry without sleeping.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

DEFAULT_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "crm.objects.owners.read",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.companies.read",
    "crm.schemas.deals.read",
)
NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: OAuth calls get no daily rate-limit headers."""

    oauth: bool
    scopes: frozenset[str]


class OAuthError(Exception):
    """A 400 from `/oauth/v1/token`: HubSpot's OAuth `status` and the spec's Error fields."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.body = {
            "status": status,
            "message": message,
            "category": "BAD_REQUEST",
            "correlationId": str(uuid.uuid4()),
        }


class Auth:
    def __init__(
        self,
        token: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        ttl: float,
        scopes: tuple[str, ...],
        hub_id: int,
        user: dict[str, Any],
        *,
        rotate: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token, self.client_id, self.client_secret = token, client_id, client_secret
        self.ttl, self.hub_id, self.user, self.rotate = ttl, hub_id, user, rotate
        self.clock = clock
        self.scopes = frozenset(scopes)
        self.app_id = hub_id % 1_000_000 + 1_000_000
        self._issued: dict[str, float] = {}  # access token -> expiry (clock())
        self._refresh: str | None = refresh_token
        """The installation's one valid refresh token; None once revoked."""
        self.refreshes = 0
        self._lock = threading.Lock()

    @property
    def refresh_token(self) -> str | None:
        """The valid refresh token now (rotation replaces it)."""
        with self._lock:
            return self._refresh

    def authenticate(self, header: str | None) -> Principal:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "INVALID_AUTHENTICATION", NO_CREDENTIALS)
        value = value.strip()
        if value == self.token:
            return Principal(False, self.scopes)
        with self._lock:
            expires = self._issued.get(value)
        if expires is None:
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. The access token is unknown.",
            )
        left = expires - self.clock()
        if left <= 0:
            ago = int(-left)
            when = f"{ago // 86_400} day(s)" if ago >= 86_400 else f"{ago} second(s)"
            raise ApiError(
                401,
                "EXPIRED_AUTHENTICATION",
                f"The OAuth token used to make this call expired {when} ago.",
            )
        return Principal(True, self.scopes | {"oauth"})

    def issue(self, form: dict[str, str]) -> dict[str, Any]:
        """`POST /oauth/v1/token` with grant_type=refresh_token (the only grant a daemon uses)."""
        grant = form.get("grant_type", "")
        if grant != "refresh_token":
            if grant == "authorization_code":
                raise OAuthError("BAD_AUTH_CODE", "missing or unknown auth code")
            raise OAuthError("BAD_GRANT_TYPE", f"unsupported grant_type: {grant or '(missing)'}")
        if form.get("client_id") != self.client_id:
            raise OAuthError("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.client_secret:
            raise OAuthError("BAD_CLIENT_SECRET", "missing or invalid client secret")
        given = form.get("refresh_token", "")
        access = "sim-oat-" + secrets.token_urlsafe(32)
        with self._lock:
            if not given or given != self._refresh:
                raise OAuthError("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
            if self.rotate:
                self._refresh = "sim-refresh-" + secrets.token_urlsafe(24)
            answered = self._refresh
            self._issued[access] = self.clock() + self.ttl
            self.refreshes += 1
        return {
            "token_type": "bearer",
            "token_use": "access_token",
            "refresh_token": answered,
            "access_token": access,
            "expires_in": int(self.ttl),
            "hub_id": self.hub_id,
            "user_id": self.user["userId"],
            "scopes": sorted(self.scopes | {"oauth"}),
        }

    def expire_all(self) -> None:
        """Revoke every issued access token now (the `expire_token` fault)."""
        with self._lock:
            now = self.clock()
            self._issued = {t: min(exp, now) for t, exp in self._issued.items()}

    def revoke_refresh_token(self, token: str) -> bool:
        """`DELETE /oauth/v1/refresh-tokens/{token}` (an uninstall): later refreshes fail."""
        with self._lock:
            known = token == self._refresh
            if known:
                self._refresh = None
            return known

    def access_token_info(self, token: str) -> dict[str, Any]:
        with self._lock:
            expires = self._issued.get(token)
        if expires is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", "Token not found")
        return {
            "token": token,
            "user": self.user["email"],
            "hub_domain": f"sim-{self.hub_id}.hubspot.com",
            "scopes": sorted(self.scopes | {"oauth"}),
            "hub_id": self.hub_id,
            "app_id": self.app_id,
            "expires_in": max(0, int(expires - self.clock())),
            "user_id": self.user["userId"],
            "token_type": "access",
        }

    def refresh_token_info(self, token: str) -> dict[str, Any]:
        with self._lock:
            known = token == self._refresh
        if not known:
            raise ApiError(404, "OBJECT_NOT_FOUND", "Token not found")
        return {
            "token": token,
            "user": self.user["email"],
            "hub_domain": f"sim-{self.hub_id}.hubspot.com",
            "scopes": sorted(self.scopes | {"oauth"}),
            "hub_id": self.hub_id,
            "client_id": self.client_id,
            "user_id": self.user["userId"],
            "token_type": "refresh",
        }

    def private_app_info(self, token_key: Any) -> dict[str, Any]:
        if token_key != self.token:
            raise ApiError(
                401, "INVALID_AUTHENTICATION", "The token key is not a valid private app token."
            )
        return {
            "userId": self.user["userId"],
            "hubId": self.hub_id,
            "appId": self.app_id,
            "scopes": sorted(self.scopes),
        }


def require_scopes(principal: Principal, any_of: tuple[str, ...]) -> None:
    """403 MISSING_SCOPES, shaped like HubSpot's, when none of the accepted scopes is granted."""
    if not any_of or principal.scopes.intersection(any_of):
        return
    raise ApiError(
        403,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about "
        "required scopes here: https://developers.hubspot.com/scopes.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": list(any_of)},
            }
        ],
        extra={"links": {"scopes": "https://developers.hubspot.com/scopes"}},
    )
