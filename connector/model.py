"""Canonical data model: what every adapter translates its CRM into, and what the engine decides.

The core reasons only in these types; an adapter converts CRM payloads into a `Contact` at its
edge and converts `RecordUpdate` / `PlannedTask` back. Nothing vendor-specific lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


class Stage(StrEnum):
    """Lifecycle stages in funnel order (see DOMAIN.md); the order is the rank."""

    TARGET = "target"
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"

    @property
    def rank(self) -> int:
        return _STAGE_ORDER.index(self)


_STAGE_ORDER = list(Stage)


class Temperature(StrEnum):
    COLD = "cold"
    WARM = "warm"
    HOT = "hot"


class EventType(StrEnum):
    """Canonical engagement vocabulary that mappings translate CRM activity into."""

    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_REGISTERED = "webinar_registered"
    WEBINAR_ATTENDED = "webinar_attended"
    DEMO_REQUEST = "demo_request"
    QUOTE_REQUEST = "quote_request"
    TRIAL_START = "trial_start"
    PRICING_PAGE_VIEW = "pricing_page_view"
    PRODUCT_PAGE_VIEW = "product_page_view"
    PAGE_VIEW = "page_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_REPLY = "email_reply"
    FORM_SUBMISSION = "form_submission"
    MEETING_BOOKED = "meeting_booked"
    CALL = "call"
    NEWSLETTER_SIGNUP = "newsletter_signup"
    SOCIAL_INTERACTION = "social_interaction"
    EVENT_BADGE_SCAN = "event_badge_scan"


class CriterionStatus(StrEnum):
    """A salesperson's answer to one qualification criterion (BANT's budget, MEDDIC's champion…)."""

    MET = "met"
    IN_PROGRESS = "in_progress"
    NOT_MET = "not_met"


class Origin(StrEnum):
    """Inbound contacts become leads by their own action; outbound ones need an engagement sign."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    UNKNOWN = "unknown"


def _standard_time(value: Any) -> Any:
    """ISO text parsed by the standard library. pydantic's own parse gives each time a tzinfo
    that Python asks for its offset through a method call, on every subtraction and
    comparison: deciding a contact does dozens, about ten times slower. Same instant, same
    offset, same text; anything `fromisoformat` refuses goes to pydantic as before."""
    if type(value) is str:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_standard_time)]
"""A time with its offset (naive times are refused), as every canonical model keeps them."""
EDIT_GRACE = timedelta(minutes=1)
"""How long after a task's creation a change still counts as part of creating it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class EngagementEvent(_Model):
    """One engagement signal. CRMs that only expose counters send one event with `count` > 1
    dated at the most recent occurrence."""

    type: EventType
    at: Moment
    count: int = Field(default=1, ge=1)
    detail: str | None = None
    source_id: str | None = None
    """The CRM activity this event is (a HubSpot engagement, a Salesforce Task), where the
    CRM names one: one activity on several records of a person counts once for it
    (`decision/person.py`). None for counters and summaries."""


class Deal(_Model):
    id: str
    status: Literal["open", "won", "lost"]
    amount: float | None = None
    recurring: bool = False
    closed_at: Moment | None = None
    created_at: Moment | None = None
    """When the deal was opened: calibration counts a person's facts from before it."""


class ExistingTask(_Model):
    """A task already in the CRM for this contact; `key` is set when crm-qualify created it.
    `created_at` and `completed_at` are the CRM's own times (None where it does not say):
    they measure the follow-up SLA, and an open task is one neither completed nor closed."""

    id: str
    key: str | None = None
    due: Moment | None = None
    due_is_day: bool = False
    """The CRM keeps only the due date (Salesforce's ActivityDate): `due` is the end of that
    day, UTC, and a follow-up of ours still due that day is due when crm-qualify set it."""
    completed: bool = False
    created_at: Moment | None = None
    completed_at: Moment | None = None
    modified_at: Moment | None = None
    """The CRM's time of the task's last change, where it says (a rollback keeps a task
    someone changed after it was created)."""

    @property
    def is_open(self) -> bool:
        return not self.completed and self.completed_at is None

    @property
    def changed_since_created(self) -> bool:
        """Changed in the CRM after its creation (notes added, due moved): the CRM stamps a
        creation's own follow-up steps within seconds, so a minute's grace."""
        created, modified = self.created_at, self.modified_at
        return created is not None and modified is not None and modified - created > EDIT_GRACE


class FieldSource(_Model):
    """Who set a field's current value in the CRM, and when: the same question answered for
    every CRM (HubSpot from property history, Salesforce from field history or the record's
    last modifier). `by`: a person (UI, mobile app, import), crm-qualify itself (the
    connector), automation (workflows, calculated values, forms, other integrations), or
    unknown. `previous`: the value before it, canonical, where the CRM's history says.
    `value`: the value the answer is about; the core fills it in when it keeps the answer, so
    an answer about a value since replaced is never applied to the new one."""

    by: Literal["person", "connector", "automation", "unknown"]
    at: Moment | None = None
    previous: Any = None
    value: Any = None


class DuplicateReview(_Model):
    """The records of one person, for its owner to review and merge in the CRM (`[identity]
    review_task`). Set by the connector on the person it decides, never read from a CRM."""

    records: list[str] = Field(description="The person's records (`Lead/00Q...`), survivor first.")
    rules: list[str] = Field(default_factory=list, description="The rules that matched them.")
    confidence: float | None = Field(default=None, description="The group's confidence.")


class Contact(_Model):
    """A person as the engine sees it, whatever CRM object holds it (HubSpot contact,
    Salesforce Lead or Contact)."""

    id: str
    object_type: str = "contact"
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    industry: str | None = None
    employees: int | None = Field(default=None, ge=0)
    country: str | None = None
    owner_id: str | None = None
    merged_ids: list[str] = Field(
        default_factory=list,
        description="Ids of records the CRM merged into this one (HubSpot's"
        " `hs_merged_object_ids`, Salesforce's `MasterRecordId` trail), same object type.",
    )
    account_id: str | None = Field(
        default=None,
        description="The Salesforce Account or HubSpot company a person filed without one was"
        " matched to by email domain or company name (lead-to-account matching), for reports.",
    )
    origin: Origin = Origin.UNKNOWN
    created_at: Moment | None = None
    updated_at: Moment | None = None
    stage: Stage | None = Field(
        default=None, description="The CRM's current lifecycle stage, mapped to canonical."
    )
    unsubscribed: bool = False
    hard_bounced: bool = False
    qualification: dict[str, CriterionStatus] = Field(
        default_factory=dict,
        description="Answers per criterion name (need, authority, timing, budget, champion…).",
    )
    events: list[EngagementEvent] = Field(default_factory=list)
    deals: list[Deal] = Field(default_factory=list)
    tasks: list[ExistingTask] = Field(default_factory=list)
    owned: dict[str, Any] = Field(
        default_factory=dict,
        description="Current CRM values of the fields crm-qualify owns, by canonical name.",
    )
    owned_sources: dict[str, FieldSource] = Field(
        default_factory=dict,
        description="Who set the current value of owned fields, by canonical name, where it"
        " was asked (`Adapter.field_sources`): the write policies keep what people set.",
    )
    last_change: FieldSource | None = Field(
        default=None,
        description="Who last changed the record as read, where the CRM names it per record"
        " (Salesforce's `LastModifiedById`, `CreatedById`) and not per field: answers who set"
        " its owned values without asking (`sync/sources.py`).",
    )
    duplicate_review: DuplicateReview | None = Field(
        default=None,
        description="Set on a person held by several records when their owner is to review"
        " them: planning gives it one review task, on the survivor.",
    )
    source_digest: str | None = Field(
        default=None,
        description="An opaque digest of the CRM record's fields as read, those the connector"
        " writes and the modification stamps left out (the adapter's, when it has one): a"
        " changed-record hit stamped as our own write but with another digest was changed by"
        " someone else too, and is read (`mirror.known_versions`).",
    )

    @property
    def label(self) -> str:
        """How logs and errors name a record: object and id, never personal data."""
        return f"{self.object_type}/{self.id}"


# What the engine produces is built only by the engine, millions of times a day: plain slotted
# dataclasses, ten times cheaper to create than validated models (see bench/score_throughput.py).


@dataclass(slots=True, kw_only=True)
class Reason:
    """One line of the explanation a salesperson reads: '+40 demo request 2026-11-18'.
    Engagement and intent reasons are in whole points; a profile reason shows the configured
    points (to 0.1)."""

    signal: str
    family: Literal["fit", "engagement", "intent", "negative"]
    points: float
    why: str


@dataclass(slots=True, kw_only=True)
class Score:
    total: int
    """0..100: fit + engagement + intent, clamped."""
    fit: int
    """Profile and negative points, -100..100."""
    engagement: int
    """0..100: the sum of the engagement reasons' points, capped at 100."""
    intent: int
    """0..100: the sum of the intent reasons' points, capped at 100."""
    grade: str
    """Fit grade A..D and engagement level 1..4, e.g. 'A1'."""
    reasons: Sequence[Reason] = field(default_factory=list)
    """Scoring fills it with a sequence that writes the texts on first use."""


class _WrittenOnRead:
    """A task's `body`: set to text, or to a decision's reasons, which are written to their
    text (`format_reasons`) when the body is first read. Most follow-ups a decision plans
    exist already (the ledger knows their keys) and are never sent, and writing a hand-off's
    reasons took a fifth of `decide` (`bench/score_throughput.py`: 43,000 decisions a second,
    52,000 without it). A dataclass field whose default is a descriptor is set and read
    through it (Python's "descriptor-typed fields")."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._stored = f"_{name}"

    def __get__(self, task: object, owner: type | None = None) -> str:
        if task is None:
            return ""  # the field's default
        body = getattr(task, self._stored)
        if not isinstance(body, str):
            body = format_reasons(body)
            setattr(task, self._stored, body)
        return body

    def __set__(self, task: object, body: str | Sequence[Reason]) -> None:
        setattr(task, self._stored, body)


@dataclass(kw_only=True)
class PlannedTask:
    """A follow-up the engine wants to exist exactly once; `key` makes creation idempotent.
    Not slotted: its `body` is written on first read (`_WrittenOnRead`)."""

    key: str
    contact_id: str
    object_type: str = "contact"
    kind: Literal["hot_call", "mql_handoff", "escalation", "duplicate_review"]
    subject: str
    body: str = _WrittenOnRead()  # type: ignore[assignment]
    owner_id: str | None = None
    due: datetime
    priority: Literal["high", "medium", "low"] = "medium"
    task_type: Literal["call", "email", "todo"] = "todo"

    def to_json(self) -> dict[str, Any]:
        """Its fields as JSON values, in field order. Read one by one: `asdict` deep-copies
        each value, ten times the cost, and the ledger saves a payload per task planned."""
        document = {name: getattr(self, name) for name in _TASK_FIELDS}
        document["due"] = self.due.isoformat()
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> PlannedTask:
        return cls(**{**document, "due": datetime.fromisoformat(document["due"])})


_TASK_FIELDS = tuple(task_field.name for task_field in fields(PlannedTask))


@dataclass(slots=True, kw_only=True)
class Decision:
    contact_id: str
    object_type: str = "contact"
    stage: Stage
    computed_stage: Stage
    """What the rules alone say, before never-backwards."""
    temperature: Temperature
    score: Score
    rules_version: str
    renurture: bool = False
    disqualified: bool = False
    customer_type: Literal["one_time", "recurring", "mixed"] | None = None
    """For customers, from their won deals: one-time, recurring (subscriptions) or mixed."""
    tasks: list[PlannedTask] = field(default_factory=list)
    scored_at: datetime
    hot_since: datetime | None = None
    """When the current hot episode began (None: not hot); the engine keeps it per contact
    and gives it back to `decide`, so one episode gets one call (see planning.py)."""
    duplicate: bool = False
    """The person is held by more than one CRM record (a duplicate group)."""
    duplicate_group: str | None = None
    """The group's id, the person's key (`Lead:00Q...`): stable while the group changes;
    None for a record alone, so a record that leaves a group is cleared."""

    def field_values(self) -> dict[str, Any]:
        """The canonical owned fields this decision sets, before write policies apply.
        `highest_stage` is this decision's stage: the diff never plans it below what the CRM
        holds. `customer_type` is set only for customers (a contact whose won deals are not
        read keeps the type it has)."""
        stage = str(self.stage)  # the value: `.value` is a Python-level property, slow here
        values: dict[str, Any] = {
            "stage": stage,
            "highest_stage": stage,
            "temperature": str(self.temperature),
            "score": self.score.total,
            "fit_score": self.score.fit,
            "engagement_score": self.score.engagement,
            "intent_score": self.score.intent,
            "grade": self.score.grade,
            "reasons": format_reasons(self.score.reasons),
            "rules_version": self.rules_version,
            "renurture": self.renurture,
            "disqualified": self.disqualified,
            "scored_at": _moment_text(self.scored_at),
            "duplicate": self.duplicate,
            "duplicate_group": self.duplicate_group,
        }
        if self.customer_type is not None:
            values["customer_type"] = self.customer_type
        return values


@dataclass(slots=True, kw_only=True)
class FieldUpdate:
    """One owned field's change. A plain slotted class, like `Decision`: the diff makes one
    per field per record (about 25 per record on a first sync), and a pydantic model costs
    three times the memory while writes wait to be gathered."""

    field: str
    old: Any = None
    new: Any = None


@dataclass(slots=True, kw_only=True)
class RecordUpdate:
    """All field changes for one record, sent to the adapter in one write."""

    contact_id: str
    object_type: str = "contact"
    changes: list[FieldUpdate]

    @property
    def key(self) -> tuple[str, str]:
        """(object_type, contact_id): how the state store names the record."""
        return self.object_type, self.contact_id

    def values(self) -> dict[str, Any]:
        return {change.field: change.new for change in self.changes}


_LAST_MOMENT: list[tuple[datetime | None, str]] = [(None, "")]
"""The last moment written by `_moment_text`, that very object, and its text."""


def _moment_text(moment: datetime) -> str:
    """A decision's `scored_at` as the CRM gets it ('...Z' for UTC). A run decides every
    contact at one `now`, so its text is written once, not once per contact. Kept by
    identity: an equal moment in another offset writes other text."""
    known, text = _LAST_MOMENT[0]
    if known is not moment:
        text = moment.isoformat().replace("+00:00", "Z")
        _LAST_MOMENT[0] = (moment, text)
    return text


def format_reasons(reasons: Sequence[Reason]) -> str:
    """One reason per line, strongest first, as a salesperson reads them in the CRM. Points are
    whole for engagement and intent, so the text changes only when the points a salesperson
    reads change, not every day as decay moves them by fractions. Scoring's reasons write this
    text themselves (`text()`), without building a `Reason` per line."""
    text = getattr(reasons, "text", None)
    if text is not None:
        return text()
    ordered = sorted(reasons, key=lambda reason: -abs(reason.points))
    return "\n".join(reason.why for reason in ordered)


OWNED_FIELDS: tuple[str, ...] = (
    "stage",
    "temperature",
    "score",
    "fit_score",
    "engagement_score",
    "intent_score",
    "grade",
    "reasons",
    "rules_version",
    "renurture",
    "scored_at",
    "highest_stage",
    "customer_type",
    "disqualified",
    "duplicate",
    "duplicate_group",
)
"""Canonical names of every field crm-qualify can write; configuration says which it owns."""

OPT_IN_FIELDS: frozenset[str] = frozenset({"duplicate", "duplicate_group"})
"""Owned fields written only when the configuration says `owned = true`: an optional feature
whose CRM fields a portal need not have."""

CUSTOMER_TYPES: tuple[str, ...] = ("one_time", "recurring", "mixed")
"""Canonical values of `customer_type`."""
