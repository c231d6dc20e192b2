"""`[calibrate]`: who counts as a win or a loss, how much data a proposal needs, its bounds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CalibrateSettings(BaseModel):
    """Defaults follow Salesforce Einstein Lead Scoring's minimum (1,000 leads, 120
    conversions): a model of twenty-odd points fitted on less tells noise from signal badly."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    window_days: float = Field(
        default=730, gt=0, description="Outcomes this many days before --until (no --since)."
    )
    horizon_days: float = Field(
        default=180,
        gt=0,
        description="A person with no deal this long after being created counts as a loss.",
    )
    opportunity_is_win: bool = Field(
        default=False, description="Count reaching an open deal (opportunity) as a win too."
    )
    cutoff_days: float = Field(
        default=1,
        ge=0,
        description="Facts count up to this many days before the deal was created, so the"
        " sale's own activity is never learnt from.",
    )
    assumed_cycle_days: float = Field(
        default=60,
        ge=0,
        description="When the CRM does not say when a deal was created: taken as this many"
        " days before it closed.",
    )
    holdout_share: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="The latest outcomes kept out of the fit to evaluate current vs proposed.",
    )
    min_people: int = Field(
        default=1000, ge=1, description="People with an outcome needed for a proposal."
    )
    min_conversions: int = Field(default=120, ge=1, description="Wins needed for a proposal.")
    min_holdout_conversions: int = Field(
        default=30, ge=1, description="Wins needed among the held-out people to evaluate."
    )
    min_carriers: int = Field(
        default=30,
        ge=1,
        description="People carrying a signal or trait before it is re-weighted; below, it"
        " keeps its current points and is flagged.",
    )
    min_carrier_conversions: int = Field(
        default=5, ge=0, description="Wins among a signal's carriers before it is re-weighted."
    )
    points_per_doubling: float = Field(
        default=15,
        gt=0,
        description="Points that stand for twice the odds of winning: the scale that turns"
        " the fitted model back into points.",
    )
    max_weight: int = Field(default=50, ge=1, le=100, description="Most points per occurrence.")
    max_fit_points: int = Field(
        default=40, ge=1, le=100, description="Most points (either sign) of one profile trait."
    )
    mql_target_share: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Suggest the MQL threshold that hands this share of people to sales;"
        " default: the share the current rules hand over.",
    )
    mql_target_precision: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Instead: the lowest MQL threshold whose hand-offs win at least this often.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> CalibrateSettings:
        if self.mql_target_share is not None and self.mql_target_precision is not None:
            raise ValueError("set mql_target_share or mql_target_precision, not both")
        return self
