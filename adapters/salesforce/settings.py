"""`[adapters.salesforce]`: how to log in to an org and how much of its API to use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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
    host = host.lower().rstrip(".")
    return any(
        host == domain or host.endswith("." + domain)
        for domain in (*SALESFORCE_DOMAINS, *(d.lower().strip(".") for d in extra))
    )


class SalesforceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth: Literal["password", "client_credentials", "refresh_token"] = Field(
        default="password",
        description="OAuth flow of the connected app: username-password (with security "
        "token), client credentials, or a refresh token.",
    )
    login_url: str = Field(
        default="https://login.salesforce.com",
        description="OAuth host: login.salesforce.com, test.salesforce.com or My Domain.",
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Hosts or domains besides Salesforce's own (salesforce.com, force.com, "
        "cloudforce.com, salesforce-setup.com, database.com, salesforce.mil) that login_url and "
        "the login answer's instance_url may name: a TLS proxy, the simulator (127.0.0.1).",
    )
    client_id: str = Field(description="The connected app's consumer key.")
    client_secret: SecretStr = Field(description="The connected app's consumer secret.")
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = Field(
        default=None, description="Appended to the password for the username-password flow."
    )
    refresh_token: SecretStr | None = None
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

    @model_validator(mode="after")
    def _login_over_https_to_salesforce(self) -> SalesforceSettings:
        parts = urlsplit(self.login_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("login_url must be an https:// URL")
        if not allowed_host(parts.hostname, self.allowed_domains):
            raise ValueError(
                f"login_url host {parts.hostname!r} is not a Salesforce domain: add it to"
                " allowed_domains if it really is your org's login host"
            )
        return self

    @model_validator(mode="after")
    def _credentials_for_the_flow(self) -> SalesforceSettings:
        if self.auth == "password" and not (self.username and self.password):
            raise ValueError("auth = 'password' needs username and password (and security_token)")
        if self.auth == "refresh_token" and not self.refresh_token:
            raise ValueError("auth = 'refresh_token' needs refresh_token")
        return self
