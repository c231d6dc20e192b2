"""The adapter contract: everything a CRM adapter implements, and nothing more.

A consultant adding a CRM reads this module and one existing adapter. An adapter translates
between one CRM and the canonical model (`crm_qualify.connector.model`); the core owns
cursors, diffing, write policies, idempotency, state and audit. Adapters are registered in the
`crm_qualify.adapters` entry-point group; the class has a `settings_model` (a pydantic model
of its `[adapters.<name>]` options, secrets as `SecretStr`) and is built with
`from_config(settings, mapping)`. `crm_qualify.connector.plugins` checks both when it loads
the class.

Rules every adapter follows:
- Read in batches and yield them: the engine never holds more than one batch.
- Never raise for one bad record: return a per-record `WriteResult` / `TaskResult` with the
  CRM's message. Raise `AuthError`, `ConfigError`, `BudgetExhausted` or `AdapterError` only for
  failures of the whole call.
- Hand records to the core untranslated (`ContactBatch.raw`): the core calls each
  `RawContact.translate` and turns any exception into a per-record error, so one bad value
  can never stop a run.
- Never send a create twice blindly: a create whose outcome is unknown (timeout, lost answer,
  5xx after sending) comes back as `TaskResult(uncertain=True)`; the core looks the key up
  (`find_tasks`) before anything is sent again.
- Never log or put secrets in exceptions or reprs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from crm_qualify.connector.model import Contact, PlannedTask, RecordUpdate


class AdapterError(Exception):
    """A whole call failed after the adapter's own retries (network, 5xx storm, bad answer)."""


class AuthError(AdapterError):
    """Credentials are wrong, expired beyond refresh, or lack a permission; `setting` names the
    configuration key to fix. The text names it too, so every place that prints the error (a
    run's log line and record, `runs`, a command's one-line error) tells the admin what to fix;
    `reason` is the text without it."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.setting = setting

    def __str__(self) -> str:
        if self.setting is None or self.setting in self.reason:
            return self.reason
        return f"{self.reason} (check {self.setting})"


class ConfigError(AdapterError):
    """The CRM disagrees with our configuration (missing field, unknown stage value…). From
    `create_tasks` it means the CRM created none of the call's tasks: the core owes them
    again instead of looking them up."""


class BudgetExhausted(AdapterError):
    """The API budget (daily allocation or our reserve) is spent: stop cleanly, resume later."""


class OutcomeUnknown(AdapterError):
    """A call that is not safe to repeat failed in a way that may have reached the CRM (timeout,
    lost answer, 5xx after sending). Raised by `call_with_retries(..., idempotent=False)`;
    adapters turn it into `TaskResult(uncertain=True)` for every task the call carried."""


class TranslationError(ValueError):
    """A CRM value an adapter cannot translate: it names the CRM field, so the engine can
    report the record and field (`RecordError`) while the rest of the batch goes on."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


YEARS_AHEAD = 10
"""The furthest ahead a CRM date is taken: a deal's close or a task's due date can be years
out, but a date past this is a placeholder or a typo (9999-12-31, 2099 for 2029)."""


def plausible_time(moment: datetime, field: str) -> datetime:
    """`moment` as read, unless it is more than `YEARS_AHEAD` years from now: refused naming
    `field`, like text that is no date, so its record fails alone instead of being scored as
    fresh activity for decades (or the date arithmetic of its review overflowing)."""
    now = datetime.now(UTC)
    if moment > now.replace(year=now.year + YEARS_AHEAD):
        raise TranslationError(field, f"{field}: date out of range: {moment.date().isoformat()}")
    return moment


@dataclass(frozen=True)
class CheckResult:
    """One line of `crm-qualify doctor`: what was checked, whether it passed, how to fix it."""

    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    """When it failed: what to change (`check adapters.hubspot.access_token`)."""
    warn: bool = False
    """Passed, with something an admin should know (a text that will be cut): `[warn]`."""

    @classmethod
    def refused(cls, name: str, exc: AuthError) -> CheckResult:
        """A check the CRM refused our credentials for, naming the setting to fix."""
        return cls(name, False, exc.reason, f"check {exc.setting}" if exc.setting else "")


@dataclass(frozen=True)
class FieldInfo:
    """A CRM field as `describe_fields` reports it (for doctor, setup, and the check of
    owned fields a sync makes before it reads: `field_fit.py`)."""

    name: str
    type: str
    """The CRM's own name of the field's type (`enumeration`, `picklist`)."""
    label: str = ""
    writable: bool = True
    options: tuple[str, ...] = ()
    """The values a choice takes (those it can be set to)."""
    kind: str = ""
    """What it holds, in canonical terms: `text` (any text: a restricted choice is not),
    `number`, `choice` (only its `options`), `flag` (yes / no), `datetime`, `date`; "" when
    none of these (a lookup, an id): then only `writable` is judged."""
    length: int | None = None
    """The most characters a text field takes, where the CRM says (Salesforce's describe
    `length`); None when it does not. Longer text is cut to it (`OwnedFields.write`)."""


@dataclass(frozen=True)
class RawContact:
    """One CRM record, not yet translated: the core calls `translate` inside its own guard.

    `record` names it in errors ("contact/123"); `key` is its (object_type, id) when the raw
    record has a usable id, so a failure can be retried by re-reading it. `stamp`: its CRM
    modification stamp as read (`Contact.updated_at` once translated), when the raw record
    has one: a record that fails at a version the core already holds as needing attention
    (a lookback meeting it again) is no new error.
    """

    record: str
    translate: Callable[[], Contact]
    key: tuple[str, str] | None = None
    stamp: datetime | None = None


@dataclass(frozen=True)
class ContactBatch:
    """Contacts read together, and the cursor to store once their writes are acknowledged.

    `cursor` is opaque to the core (the adapter encodes its own position); `None` means the
    batch does not move the cursor (e.g. a re-read of specific ids). Adapters put records in
    `raw` (translated by the core, one guard per record); `contacts` holds records that are
    canonical already (an in-memory adapter, a test).
    """

    contacts: Sequence[Contact] = ()
    cursor: str | None = None
    errors: Sequence[RecordError] = ()
    raw: Sequence[RawContact] = ()


@dataclass(frozen=True)
class RecordError:
    """A record the adapter could not read or translate: named by record and CRM field; the
    batch goes on. `key` (object_type, id), when known, lets the core re-read it next run;
    `transient` says whether that is likely to help (a 207 row on a batch read) or whether
    it needs attention (a value the mapping cannot translate). `gone`: the CRM no longer has
    the record (deleted or merged): it leaves the mirror and is not asked for again. `stamp`:
    the version that failed (`RawContact.stamp`), when known."""

    record: str
    field: str | None
    message: str
    key: tuple[str, str] | None = None
    transient: bool = False
    gone: bool = False
    stamp: datetime | None = None

    def __str__(self) -> str:
        """How runs, logs and rollbacks list it: record, CRM field, what is wrong (a message
        that names the field already, as `TranslationError`s do, is not prefixed again)."""
        field = self.field or "record"
        message = self.message
        if not message.startswith(f"{field}:"):
            message = f"{field}: {message}"
        return f"{self.record}: {message}"


@dataclass(frozen=True)
class WriteResult:
    """One record's write. `retryable` False means the CRM refused the value itself (a
    restricted picklist, a validation rule): it needs attention, not a quick retry. `field`
    names the CRM field the CRM blamed, when it said. `stamp`: the record's modification
    stamp after the write, when the CRM's answer carries it (HubSpot's `updatedAt`), so the
    next run knows that version as ours without reading it. `gone`: the CRM no longer has
    the record (deleted, or merged into another): the core drops it from the mirror, as a full
    read would, instead of retrying a write that cannot land."""

    contact_id: str
    ok: bool
    error: str | None = None
    retryable: bool = True
    field: str | None = None
    stamp: datetime | None = None
    gone: bool = False


SourceQuestions = Sequence[tuple[tuple[str, str], Sequence[str]]]
"""For `Adapter.field_sources`: records ((object_type, id)) and, for each, the canonical owned
fields whose current value the core needs to know the setter of."""


Hit = (
    tuple[tuple[str, str], datetime]
    | tuple[tuple[str, str], datetime, str | None]
    | tuple[tuple[str, str], datetime, str | None, Mapping[str, Any] | None]
)
"""A changed-record hit: (object_type, id), CRM modification stamp, and optionally the digest
of the fields it carries as `Contact.source_digest` holds it and the owned values it carries
as `Contact.owned` holds them (None: not carried)."""


class KnownVersions(Protocol):
    """The core's check, given changed-record hits (`Hit`), of the ones whose version it
    already holds (read before, or our own acknowledged write): an adapter need not read
    those. A stamp alone cannot tell our write from someone's change made after our read
    and before our write (our write's stamp is the later one): a hit with a digest is known
    only while it equals the one read (our writes change none of the fields it covers), and
    a hit with owned values only while they are the ones the core holds after our write.
    `by_others`: the CRM says someone else changed each of these last (Salesforce's
    `LastModifiedById`), so none is our write, whatever its stamp: only the version read
    counts."""

    def __call__(self, hits: Sequence[Hit], *, by_others: bool = False) -> set[tuple[str, str]]: ...


@dataclass(frozen=True)
class TaskResult:
    """One task's create. `uncertain`: the create may or may not have landed; the core looks
    the key up before it sends anything again. `retryable` and `field` as for `WriteResult`.
    `gone`: refused because the record it is for is no longer in the CRM (deleted, merged or
    converted since it was read): the core forgets the record and owes the task, under the
    same key, to another record of the person. A task refused in a batch whose update of its record
    answered `gone` is taken as gone too (HubSpot refuses an association to a deleted contact
    without saying so)."""

    key: str
    ok: bool
    crm_id: str | None = None
    error: str | None = None
    uncertain: bool = False
    retryable: bool = True
    field: str | None = None
    gone: bool = False
    moved_to: tuple[str, str] | None = None
    """With `gone`, where the CRM says the record lives on (a Salesforce lead converted into
    a Contact since it was read): the task is owed to that record, which may not be mirrored
    yet, instead of to another record of the person."""


@dataclass(frozen=True)
class Outcome:
    """A closed deal and the contacts on it, for calibrating weights against what really won."""

    deal_id: str
    won: bool
    closed_at: datetime | None
    contact_ids: tuple[str, ...] = ()
    amount: float | None = None
    created_at: datetime | None = None
    """When the deal was opened, if the CRM says: the facts before it are what calibration
    learns from, never the sale itself."""


@dataclass
class ApiUsage:
    """Requests made and throttles met, for metrics and the demo summary."""

    requests: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    daily_remaining: int | None = None


@runtime_checkable
class Adapter(Protocol):
    """What the engine calls. Implementations also provide, on the class:

        settings_model: type[pydantic.BaseModel]

        @classmethod
        def from_config(cls, settings: <settings_model>, mapping: dict[str, Any]) -> Adapter

    where `settings` is the validated `[adapters.<name>]` table and `mapping` the parsed
    mapping TOML for this CRM (`crm_qualify.connector.mapping.load_mapping`).

    Optional: `mapping_schema: type[pydantic.BaseModel]`, every key the mapping may hold
    (`mapping.StrictTable`): a mistyped one is then a configuration error naming it;
    `setup(self) -> list[CheckResult]` creates the custom fields the mapping needs
    where the CRM's API allows it (`crm-qualify setup <crm>`), reporting what it created; and
    `writable_stages: frozenset[str]`, the canonical stages the CRM has a value for (HubSpot
    has none for `target`): the engine then never plans a stage write the CRM cannot take;
    `owned_fields: Mapping[str, owned_values.OwnedFields]`, the owned fields of each object
    type it writes people to, as its mapping says: before it reads, a run
    checks them against `describe_fields` (`field_fit.py`) and stops, naming each, if one
    cannot hold what crm-qualify writes (read-only, of another kind, a choice without our
    values; describe fields in canonical terms, `FieldInfo.kind`, and a text field's
    `FieldInfo.length` where the CRM has one: `OwnedFields.learn` takes it, and a longer
    text is written cut to it, `field_fit.learn_lengths`);
    and `field_sources(self, wanted: SourceQuestions) -> dict[(object_type, id), dict[str,
    FieldSource]]`: who set the current value of these owned fields (canonical names) of
    these records, and when (`model.FieldSource`: person, connector, automation, unknown,
    and the value before it where the CRM keeps history). The core asks only about records
    whose plan hinges on the answer (a value it has no acknowledged write for, which a write
    would replace), keeps the answers in the mirror, and applies the write policies on them
    (`sync/diff.py`). A field the adapter cannot answer is left out (unknown); a failure of
    the whole call raises as any call does. Without the method every source is unknown.

    Optional too: `use_state(self, state: connector.sync.adapter_state.AdapterState) ->
    None`, for an adapter that derives an index of its own from the CRM (data that cannot be
    read per record, topped up with what is new): the engine calls it at the start of every
    run with the rows the core keeps for this adapter and portal in the state store (read-only
    in a dry run), so a new process reads only what is new. Write there only what was really
    read, never a secret; clear and rebuild on a full read (`read_changed(None, ...)`).

    Optional as well: `finish_writes_in_flight(self) -> int`, for a CRM that applies some
    writes after it has accepted them (Salesforce's closed Bulk ingest jobs): waits until
    every such write this integration handed over has been applied, and returns how many it
    waited for; raises `AdapterError` if some are still being applied when its patience ends.
    The engine calls it before anything else when a run died with writes open: a job landing
    after the rerun had read and written the record would put back the older values.

    Optional: `answered_criteria: frozenset[str]`, the qualification criteria the mapping
    lets the adapter read an answer for, and `criteria_table: str`, the mapping table that
    maps a criterion to its field (`people.qualification`): `config check` and `doctor` then
    warn when the configured framework needs a criterion it does not answer (SQL out of reach
    by the framework; `commands.doctor.unanswered_criteria`).

    Optional: `clock_offset(self) -> float | None`, the seconds the CRM's clock is ahead of
    ours (negative: behind) by its latest answer (`connector.crm_clock.CrmClock.offset`), None
    before any. Before deciding, a run that does not say its moment logs an offset over a
    minute and stops beyond `sync.max_clock_offset_minutes`. Without it, no check.
    """

    name: str

    def check(self) -> list[CheckResult]:
        """Connectivity, credentials, permissions, fields and stage values; never writes."""
        ...

    def describe_fields(self, object_type: str) -> dict[str, FieldInfo]:
        """The CRM's fields of one object type, by CRM name."""
        ...

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        """Contacts changed since `cursor` (all of them when None), up to `until` (the run's
        start), with their engagement, deals and tasks. Batches come in cursor order.

        `known`: where the adapter sees a changed record's stamp before reading it in full,
        it asks `known` and skips the records it returns (their cursor still moves). An
        adapter may instead leave out records whose last change is its own write in its own
        query (Salesforce's `LastModifiedById`). None means a full read: every record is
        read and none is left out, so the core can tell deleted records from unchanged ones.
        """
        ...

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        """Specific records by (object_type, id): retries, `sync --contact`, rollback checks.
        An empty object_type means the user gave a bare id: the adapter resolves it."""
        ...

    def write_updates(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write canonical field values (the adapter maps names and values); one result per
        update, in order, with its update's `contact_id` (the core refuses the call's answer
        otherwise: `sync/boundary.py`)."""
        ...

    def create_tasks(self, tasks: Sequence[PlannedTask]) -> list[TaskResult]:
        """Create tasks carrying their idempotency key; one result per task, in order, with
        its task's `key` (the core refuses the call's answer otherwise)."""
        ...

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """CRM ids of tasks that carry one of these keys now (for uncertain creations, and
        before escalating a follow-up: a deleted or archived task is not answered)."""
        ...

    def existing_task_keys(self) -> Iterator[tuple[str, str]]:
        """(key, CRM id) of every task in the CRM that carries a crm-qualify key, so a new or
        empty state store rebuilds its ledger before planning anything."""
        ...

    def close_tasks(self, crm_ids: Sequence[str]) -> list[TaskResult]:
        """Remove tasks we created (rollback, follow-ups a merge doubled): delete or archive
        them, so that no read finds them again (the core drops them from the mirror and may
        plan their follow-up anew); one removed already counts as removed; `key` of each
        result is the CRM id."""
        ...

    def fetch_outcomes(self, since: datetime) -> Iterator[Outcome]:
        """Deals closed since `since`, with their contacts."""
        ...

    def usage(self) -> ApiUsage:
        """Requests made so far by this adapter instance."""
        ...


@dataclass
class DemoEnvironment:
    """A running simulator that `crm-qualify demo` syncs against.

    A CRM package offers one through the `crm_qualify.demos` entry-point group: a function
    `demo_environment(contacts: int, seed: int) -> ContextManager[DemoEnvironment]` that starts
    its simulator on loopback and stops it on exit.
    """

    adapter: str
    """Entry-point name of the adapter to sync with (`crm_qualify.adapters`)."""
    options: dict[str, Any]
    """The `[adapters.<adapter>]` table that points the adapter at the simulator."""
    simulate_day: Callable[[], int]
    """Adds a day of new engagement to some contacts; returns how many were touched."""
    api_usage: Callable[[], dict[str, Any]]
    """Requests served, throttled and the limits, as the simulator counted them."""


REQUIRED_METHODS: tuple[str, ...] = (
    "check",
    "describe_fields",
    "read_changed",
    "read_contacts",
    "write_updates",
    "create_tasks",
    "find_tasks",
    "existing_task_keys",
    "close_tasks",
    "fetch_outcomes",
    "usage",
    "from_config",
)


def missing_methods(adapter_class: type) -> list[str]:
    """Names of contract methods an adapter class lacks (used when loading plugins)."""
    return [name for name in REQUIRED_METHODS if not callable(getattr(adapter_class, name, None))]


__all__ = [
    "Adapter",
    "AdapterError",
    "ApiUsage",
    "AuthError",
    "BudgetExhausted",
    "CheckResult",
    "ConfigError",
    "ContactBatch",
    "DemoEnvironment",
    "FieldInfo",
    "Hit",
    "KnownVersions",
    "Outcome",
    "OutcomeUnknown",
    "RawContact",
    "RecordError",
    "REQUIRED_METHODS",
    "SourceQuestions",
    "TaskResult",
    "TranslationError",
    "WriteResult",
    "missing_methods",
]
