"""Who we are to HubSpot: a private app's fixed token, or a public app's OAuth tokens.

A public app holds a refresh token and trades it at `POST /oauth/v1/token`
(`grant_type=refresh_token`, `client_id`, `client_secret`, `refresh_token`, form-encoded in
the body, never the URL) for an access token that lasts `expires_in` seconds (1,800).
HubSpot's advice is to follow `expires_in` rather than wait for a 401, so the access token is
renewed `margin` seconds before it runs out. The answer's `refresh_token` replaces ours when
it differs (rotation) and is saved in the token store before the new access token is used:
if HubSpot has voided the old one, the only copy of the new one is on disk.

A 401 anyway (a token revoked early) earns one renewal; the client retries the call once and a
second 401 is an `AuthError` naming the setting. A refresh HubSpot refuses
(`BAD_REFRESH_TOKEN`, `BAD_CLIENT_ID`, `BAD_CLIENT_SECRET`) is an `AuthError` naming the key to
fix. Tokens go to the log masker as they arrive and appear in no repr or message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.contract import AdapterError, AuthError
from crm_qualify.connector.ops.logs import register_secrets
from crm_qualify.connector.ops.token_store import TokenStore, TokenStoreError

PREFIX = "adapters.hubspot."
MARGIN_SECONDS = 300.0
"""Renew this long before expiry (a sixth of HubSpot's 30 minutes): a long request or a clock
step never meets an expired token."""

TokenCall = Callable[[dict[str, str]], dict[str, Any]]
"""Sends the token request's form and returns HubSpot's JSON answer (raises on errors)."""

_REFUSALS = {
    "BAD_REFRESH_TOKEN": ("refresh_token", "re-authorise the app and configure its new token"),
    "BAD_CLIENT_ID": ("client_id", "check the app's client ID"),
    "BAD_CLIENT_SECRET": ("client_secret", "check the app's client secret"),
}


class Credentials(Protocol):
    setting: str
    """The configuration key to fix when HubSpot rejects us."""

    def bearer(self) -> str:
        """The access token to send now."""
        ...

    def renew(self, rejected: str) -> bool:
        """After a 401 with `rejected`: whether a new access token is ready to try."""
        ...


class PrivateApp:
    """A private app's token: it never changes, so a 401 is final."""

    setting = PREFIX + "access_token"

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "PrivateApp()"

    def bearer(self) -> str:
        return self._token

    def renew(self, rejected: str) -> bool:
        return False


class OAuthApp:
    """A public app's installation: access tokens from its refresh token, renewed ahead of
    expiry and once after an unexpected 401. Thread-safe: the read-ahead thread and the
    writers share it, and only one of them refreshes."""

    setting = PREFIX + "refresh_token"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        seed: str,
        store: TokenStore,
        request: TokenCall,
        clock: Callable[[], float],
        margin: float = MARGIN_SECONDS,
    ) -> None:
        self._client_id, self._client_secret, self._seed = client_id, client_secret, seed
        self.store, self._request, self._clock, self._margin = store, request, clock, margin
        self._access: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0
        self.rotations = 0

    def __repr__(self) -> str:
        return f"OAuthApp(store={str(self.store.path)!r}, refreshes={self.refreshes})"

    def bearer(self) -> str:
        with self._lock:
            if self._access is None or self._clock() >= self._renew_at:
                self._refresh()
            assert self._access is not None
            return self._access

    def renew(self, rejected: str) -> bool:
        with self._lock:
            if self._access == rejected:  # else another thread has renewed it already
                self._refresh()
            return True

    def _refresh(self) -> None:
        try:
            with self.store.exclusive():
                refresh = self.store.current(self._seed)
                answer = self._trade(refresh)
                rotated = str(answer.get("refresh_token") or refresh)
                register_secrets([str(answer.get("access_token") or ""), rotated])
                if rotated != refresh:
                    self.store.save(self._seed, rotated)
                    self.rotations += 1
        except TokenStoreError as exc:
            raise AuthError(f"HubSpot OAuth: {exc}", setting=PREFIX + "credentials_store") from None
        access, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(access, str) or not access or not isinstance(lifetime, int | float):
            raise AdapterError("POST oauth/v1/token: answer without access_token / expires_in")
        self._access = access
        self._renew_at = self._clock() + max(0.0, lifetime - min(self._margin, lifetime / 2))
        self.refreshes += 1

    def _trade(self, refresh: str) -> dict[str, Any]:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": refresh,
        }
        try:
            return self._request(form)
        except AuthError:
            raise
        except AdapterError as exc:
            body = getattr(exc, "body", None) or {}
            status = getattr(exc, "status", None)
            refusal = _REFUSALS.get(str(body.get("status") or ""))
            if status != 400 or refusal is None:  # retried already by the token call
                raise AdapterError(f"HubSpot OAuth refresh failed: {exc}") from None
            key, advice = refusal
            raise AuthError(
                f"HubSpot refused the OAuth refresh ({body['status']}): {advice}",
                setting=PREFIX + key,
            ) from None


def credentials(
    settings: HubSpotSettings, request: TokenCall, clock: Callable[[], float]
) -> Credentials:
    """The settings' way in; `request` sends a token request (used by OAuth only)."""
    if settings.auth == "private_app":
        assert settings.access_token is not None  # the settings require it
        return PrivateApp(settings.access_token.get_secret_value())
    assert settings.client_id and settings.client_secret and settings.refresh_token
    assert settings.credentials_store
    return OAuthApp(
        settings.client_id,
        settings.client_secret.get_secret_value(),
        settings.refresh_token.get_secret_value(),
        TokenStore(Path(settings.credentials_store).expanduser()),
        request,
        clock,
    )
