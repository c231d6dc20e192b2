"""`[adapters.hubspot]`: how to reach a portal and how hard to use its API.

Two ways in: a private app's token (`auth = "private_app"`, the default), or a public
(marketplace) app's OAuth refresh token (`auth = "oauth"`: client_id, client_secret,
refresh_token, and credentials_store, where a rotated refresh token is kept). Each option of
the other way is refused by name, so a half-configured app stops before any API call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from crm_qualify.connector.api_hosts import endpoint_problem
from crm_qualify.connector.ops.token_store import writable_location
from crm_qualify.connector.settings import OptionalSecret, masked_repr_str
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

OAUTH_OPTIONS = ("client_id", "client_secret", "refresh_token", "credentials_store")

HUBSPOT_DOMAINS = ("hubapi.com",)
"""Where HubSpot's API lives (`api.hubapi.com`, the EU's `api-eu1.hubapi.com`): the token is
sent nowhere else unless `allowed_domains` says so."""


class HubSpotSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    __repr_str__ = masked_repr_str

    auth: Literal["private_app", "oauth"] = Field(
        default="private_app",
        description="private_app (access_token) or oauth (a public app's client_id, "
        "client_secret, refresh_token and credentials_store).",
    )
    access_token: OptionalSecret = Field(
        default=None,
        validate_default=True,
        description=(
            "Private-app access token (scopes: crm.objects.contacts.read/write, "
            "crm.objects.deals.read, crm.schemas.contacts.read/write, tasks). Prefer the "
            "environment (CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN) or access_token_file."
        ),
    )
    client_id: str | None = Field(
        default=None, validate_default=True, description="auth = oauth: the public app's client ID."
    )
    client_secret: OptionalSecret = Field(
        default=None,
        validate_default=True,
        description="auth = oauth: the app's client secret (environment or client_secret_file).",
    )
    refresh_token: OptionalSecret = Field(
        default=None,
        validate_default=True,
        description="auth = oauth: the refresh token of the app's installation in the portal. "
        "Only the first of a chain: HubSpot may rotate it, and the current one is kept in "
        "credentials_store. Configure a new one after re-authorising the app.",
    )
    credentials_store: str | None = Field(
        default=None,
        validate_default=True,
        description="auth = oauth: file holding the current (rotated) refresh token, written "
        "0600 and replaced atomically; its directory must be writable (e.g. beside the state "
        "store, never a read-only secrets mount).",
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Hosts or domains besides HubSpot's own (hubapi.com) that base_url may"
        " name: a TLS proxy. The simulator on this machine (127.0.0.1, localhost) needs none.",
    )
    base_url: str = Field(
        default="https://api.hubapi.com",
        description="API root: https:// under hubapi.com or allowed_domains; plain http:// only"
        " to this machine (the simulator's URL in demos).",
    )
    object_type: str = Field(default="contacts", description="The object that holds people.")
    requests_per_10s: int = Field(
        default=150,
        ge=1,
        le=250,
        description="Our share of the portal's burst limit (190 on Pro/Enterprise, shared by "
        "every app in the portal).",
    )
    searches_per_second: int = Field(default=4, ge=1, le=5)
    daily_reserve: float = Field(
        default=0.2, ge=0, lt=1, description="Share of the daily limit left to other apps."
    )
    lookback_seconds: float = Field(
        default=300,
        ge=0,
        description="Re-read this much before the cursor: search shows records late.",
    )
    timeout_seconds: float = Field(default=30, gt=0)
    max_attempts: int = Field(default=6, ge=1, description="Tries per request on 429 / 5xx.")

    @field_validator("access_token")
    @classmethod
    def _token_for_a_private_app(cls, value: Any, info: ValidationInfo) -> Any:
        auth = info.data.get("auth")
        if auth == "private_app" and value is None:
            raise PydanticCustomError(
                "missing",
                "required with auth = 'private_app' (a public app sets auth = 'oauth' with"
                f" {', '.join(OAUTH_OPTIONS)})",
            )
        if auth == "oauth" and value is not None:
            raise PydanticCustomError("unused_option", "not used with auth = 'oauth': remove it")
        return value

    @field_validator(*OAUTH_OPTIONS)
    @classmethod
    def _complete_oauth_set(cls, value: Any, info: ValidationInfo) -> Any:
        auth = info.data.get("auth")
        if auth == "oauth" and not value:
            raise PydanticCustomError(
                "missing", f"required with auth = 'oauth' (as are {', '.join(OAUTH_OPTIONS)})"
            )
        if auth == "private_app" and value:
            raise PydanticCustomError(
                "unused_option", "only used with auth = 'oauth': set auth = 'oauth' or remove it"
            )
        if info.field_name == "credentials_store" and value:
            problem = writable_location(Path(value).expanduser())
            if problem:
                raise PydanticCustomError("credentials_store", "{problem}", {"problem": problem})
        return value

    @field_validator("base_url")
    @classmethod
    def _api_over_https_to_hubspot(cls, value: str, info: ValidationInfo) -> str:
        """Every request carries the token: over plain http, or to a mistyped host, it would
        leave for someone else."""
        problem = endpoint_problem(
            value,
            crm="HubSpot",
            domains=HUBSPOT_DOMAINS,
            extra=info.data.get("allowed_domains", []),
            loopback=True,
        )
        if problem:
            raise PydanticCustomError("endpoint", "{problem}", {"problem": problem})
        return value
