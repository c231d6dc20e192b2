"""`[adapters.salesforce]`: how to log in to an org and how much of its API to use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from crm_qualify.adapters.salesforce.auth import private_key
from crm_qualify.connector.api_hosts import endpoint_problem, under_domains
from crm_qualify.connector.settings import (
    OptionalMultilineSecret,
    OptionalSecret,
    masked_repr_str,
)
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

SALESFORCE_DOMAINS = (
    "salesforce.com",
    "force.com",
    "cloudforce.com",
    "salesforce-setup.com",
    "database.com",
    "salesforce.mil",
)
"""Salesforce's own domains, where logins and instances live (My Domain
`*.my.salesforce.com`, sandboxes `*.sandbox.my.salesforce.com`, legacy instances
`na1.salesforce.com`, Government Cloud Plus `*.my.salesforce.mil`)."""


def allowed_host(host: str, extra: Iterable[str]) -> bool:
    """Whether `host` is one of Salesforce's domains, or one of `extra`, or under one."""
    return under_domains(host, (*SALESFORCE_DOMAINS, *extra))


FLOW_OPTIONS = {
    "password": ("client_secret", "username", "password"),
    "client_credentials": ("client_secret",),
    "refresh_token": ("client_secret", "refresh_token"),
    "jwt": ("username", "private_key"),
}
"""The options each login flow needs besides client_id (security_token is optional: an org
may trust the integration's IP range instead)."""


class SalesforceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    __repr_str__ = masked_repr_str

    auth: Literal["password", "client_credentials", "refresh_token", "jwt"] = Field(
        default="password",
        description="OAuth flow of the connected app: username-password (with security "
        "token), client credentials, a refresh token, or the JWT bearer flow (a private key "
        "whose certificate the app holds; the server-to-server login).",
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Hosts or domains besides Salesforce's own (salesforce.com, force.com, "
        "cloudforce.com, salesforce-setup.com, database.com, salesforce.mil) that login_url and "
        "the login answer's instance_url may name: a TLS proxy, the simulator (127.0.0.1).",
    )
    login_url: str = Field(
        default="https://login.salesforce.com",
        description="OAuth host: login.salesforce.com, test.salesforce.com or My Domain.",
    )
    client_id: str = Field(description="The connected app's consumer key.")
    client_secret: OptionalSecret = Field(
        default=None,
        validate_default=True,
        description="The connected app's consumer secret (every flow but jwt).",
    )
    username: str | None = Field(default=None, validate_default=True)
    password: OptionalSecret = Field(default=None, validate_default=True)
    security_token: OptionalSecret = Field(
        default=None, description="Appended to the password for the username-password flow."
    )
    refresh_token: OptionalSecret = Field(default=None, validate_default=True)
    private_key: OptionalMultilineSecret = Field(
        default=None,
        validate_default=True,
        description="PEM RSA private key of the JWT bearer flow (auth = 'jwt'), from a file:"
        " private_key_file = '/run/secrets/sf_key.pem'.",
    )
    jwt_audience: str | None = Field(
        default=None,
        description="`aud` of the JWT bearer flow; default https://test.salesforce.com for a"
        " sandbox login_url, https://login.salesforce.com otherwise.",
    )
    api_version: str = Field(default="59.0", pattern=r"^\d+\.\d$")
    ca_bundle: str | None = Field(
        default=None,
        description="PEM bundle of a private CA to trust (a TLS proxy's, the simulator's); "
        "verification is never turned off.",
    )
    objects: list[Literal["Lead", "Contact"]] = Field(default_factory=lambda: ["Lead", "Contact"])
    daily_reserve: float = Field(
        default=0.2, ge=0, lt=1, description="Share of the org's daily API allocation left."
    )
    lookback_seconds: float = Field(default=300, ge=0, description="Re-read before the cursor.")
    timeout_seconds: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=5, ge=1, description="Tries per call on 5xx / lock errors.")
    bulk_threshold: int = Field(
        default=2000,
        ge=0,
        description="Records from which Bulk API 2.0 is used: a full read of an object holding"
        " at least this many, and a batch writing at least this many records or tasks (Salesforce"
        " recommends Bulk above about 2,000). 0: never.",
    )
    bulk_timeout_seconds: float = Field(
        default=1800,
        gt=0,
        description="How long to wait for one Bulk job before aborting it; what it did by then "
        "is read back, the rest is retried. Also how long a run waits, before reading anything,"
        " for the ingest jobs a dead run closed (never aborted: past it the run ends, naming"
        " them).",
    )

    @field_validator("login_url")
    @classmethod
    def _login_over_https_to_salesforce(cls, value: str, info: ValidationInfo) -> str:
        problem = endpoint_problem(
            value,
            crm="Salesforce",
            domains=SALESFORCE_DOMAINS,
            extra=info.data.get("allowed_domains", []),
        )
        if problem:
            raise PydanticCustomError("endpoint", "{problem}", {"problem": problem})
        return value

    @field_validator("client_secret", "username", "password", "refresh_token", "private_key")
    @classmethod
    def _credentials_for_the_flow(cls, value: Any, info: ValidationInfo) -> Any:
        """Each missing option is named by its own key ("missing", as a required one is:
        `config check` reports a secret not set yet as a warning, like HubSpot's token)."""
        auth = info.data.get("auth")
        if auth is None:  # auth itself is invalid, and named
            return value
        if not value and info.field_name in FLOW_OPTIONS[auth]:
            raise PydanticCustomError("missing", "required with auth = '{auth}'", {"auth": auth})
        if info.field_name == "private_key" and auth == "jwt" and value is not None:
            try:
                private_key(value.get_secret_value())
            except ValueError as exc:
                raise PydanticCustomError(
                    "private_key", "{problem}", {"problem": str(exc)}
                ) from None
        return value
