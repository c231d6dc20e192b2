"""`[adapters.hubspot]`: how to reach a portal and how hard to use its API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class HubSpotSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(
        description=(
            "Private-app access token (scopes: crm.objects.contacts.read/write, "
            "crm.objects.deals.read, crm.schemas.contacts.read/write, tasks). Prefer the "
            "environment (CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN) or access_token_file."
        )
    )
    base_url: str = Field(
        default="https://api.hubapi.com", description="API root; the simulator's URL in demos."
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
