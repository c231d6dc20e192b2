"""`[adapters.salesforce]`: how to log in to an org and how much of its API to use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


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
    def _credentials_for_the_flow(self) -> SalesforceSettings:
        if self.auth == "password" and not (self.username and self.password):
            raise ValueError("auth = 'password' needs username and password (and security_token)")
        if self.auth == "refresh_token" and not self.refresh_token:
            raise ValueError("auth = 'refresh_token' needs refresh_token")
        return self
