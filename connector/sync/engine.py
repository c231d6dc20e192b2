"""One sync run: read -> mirror -> decide -> diff -> write -> record, one batch at a time.

A run reads the records changed since its cursor and updates the mirror with them (records
whose only change is our own write are recognised without a read, `mirror.known_versions`).
Then it re-decides every other mirrored contact from the state store, in chunks: decay,
cooling, re-nurture and overdue follow-ups reach contacts nobody touched, and a rules change
reaches everyone, with no read. Each decision is diffed against the CRM values the mirror
holds, so only real changes are written. A full read every `sync.reconcile_every_days` (or
`sync --full`) drops deleted and merged records from the mirror and catches changes the
incremental reads could not see.

A full read decides nothing while it reads: it mirrors and indexes every record first, and
its records are decided with the rest of the mirror once all are in and those it did not
meet (deleted or merged in the CRM) have left the mirror and the index. A record decided as
its batch came in would be decided without a duplicate that sits in a later batch (the CRM
orders a full read as it likes; Salesforce reads Leads before Contacts and Bulk results
come unordered), and the stage it wrote would stay, since stages only move forward. An
incremental run reads few records and decides them as they come, the next batch read while
one is decided and written.

Every CRM write follows one protocol, the same for every adapter:
1. intend: the batch's field changes (with their old values) and the tasks it owes are
   recorded in the state store, in one transaction, before anything is sent;
2. send: field updates, then task creations (each task key marked `pending` just before);
3. acknowledge: each result is recorded; a task whose outcome is unknown stays `pending`.
A run that dies anywhere leaves intents the next run settles before it plans anything new:
unacknowledged field writes are re-read and marked landed or not, pending task keys are looked
up in the CRM (never blindly resent), and owed tasks are created. A state-store failure stops
the run before its next CRM call, so nothing reaches the CRM that the audit trail lacks.

The engine also owns per-record isolation: it translates each raw record and decides each
contact inside its own guard, so one bad value becomes a per-record error naming the record
and CRM field, and the batch goes on. A record that then needs attention is reported once per
version: met again at the one it failed at (the lookback's overlap), it is not read or counted
again until it changes or its retry is due (`_failed_versions`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import islice, repeat
from typing import Any

from crm_qualify.connector.contract import (
    Adapter,
    AdapterError,
    BudgetExhausted,
    ConfigError,
    ContactBatch,
    Hit,
    RecordError,
    TaskResult,
    WriteResult,
)
from crm_qualify.connector.crm_clock import ClockOffsetError, check_offset
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.duplicates import DuplicateGroup
from crm_qualify.connector.decision.planning import KINDS, MQL_HANDOFF, task_kind
from crm_qualify.connector.decision.review import next_review
from crm_qualify.connector.decision.scoring import compile_rules
from crm_qualify.connector.model import Contact, Decision, PlannedTask, RecordUpdate, Stage
from crm_qualify.connector.ops.allocator import give_back_free_memory
from crm_qualify.connector.ops.logs import counts_sentence, redact, run_context
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.adapter_state import hand_state
from crm_qualify.connector.sync.bulk_calls import bulk_calls
from crm_qualify.connector.sync.concurrency import traffic_of
from crm_qualify.connector.sync.described import Described, check_fit
from crm_qualify.connector.sync.diff import (
    Skip,
    candidates,
    hinges_on_our_writes,
    plan_update,
    same,
)
from crm_qualify.connector.sync.fingerprints import (
    DECIDED_WITH_KEY,
    decision_fingerprint,
)
from crm_qualify.connector.sync.flight import MAX_OPEN, Answer, Flight, Outgoing, Senders
from crm_qualify.connector.sync.full_read import CONTACTS_STREAM, FullRead
from crm_qualify.connector.sync.gc_pause import fewer_collections
from crm_qualify.connector.sync.mirror import AckedWrite, Mirrored
from crm_qualify.connector.sync.people import People, Person, task_person
from crm_qualify.connector.sync.person_decisions import Member, Waiting, decide_persons
from crm_qualify.connector.sync.pipeline import read_ahead
from crm_qualify.connector.sync.records import translate_batch
from crm_qualify.connector.sync.redundant import Closing, close, left_closing, plan_closing
from crm_qualify.connector.sync.redundant import resume as resume_closing
from crm_qualify.connector.sync.settle import (
    finish_writes_in_flight,
    gone_with_their_record,
    rebuild_ledger,
    settle_pending_tasks,
)
from crm_qualify.connector.sync.sources import learn_sources
from crm_qualify.connector.sync.state import (
    RECHECK_KEY,
    TASK_CLOSED,
    TASK_OWED,
    TASK_PENDING,
    WRITE_ACKED,
    WRITE_FAILED,
    AuditWrite,
    StateStore,
    StateStoreError,
    TaskRecord,
)
from crm_qualify.connector.sync.task_answers import (
    owe_to_the_person,
    record_answers,
    sort_answers,
    to_the_person,
)
from crm_qualify.connector.sync.task_lookups import without_gone_follow_ups

log = logging.getLogger(__name__)

RULES_KEY = "rules_version"
READ_KEY = "read"
"""A run's detail: "full" for a run that reads (or goes on reading) every record."""
DEFERRED_PASSES = 3
"""Rounds of re-deciding records whose person moved while their own write was in flight."""
PEOPLE_INDEXED_KEY = "people_indexed_at"
"""Set once every mirrored record is in the identity index (state files older than it)."""
MIRROR_CHUNK = 500
"""Mirrored contacts decided at a time. Deciding a chunk is the mirror phase's working set
(about 5 KB a contact: mirror rows, contacts, decisions, plans), and the arenas it fills
stay partly pinned after it goes: at 100,000 Salesforce records a full sync peaked at
159-161 MB with chunks of 2,000 and 146-147 MB with 500, the same 128 requests; the
rules-change rescore at 50,000 took the same CPU (189-201 µs a contact against 192-193)
and 66 MB against 81 (docs/performance.md, "Mirror chunks of 500")."""
MIRROR_OPEN = MAX_OPEN * 4
"""The mirror phase's chunks waiting for answers: as many contacts as three chunks of 2,000.
With three of 500 the oldest chunk falls due before later ones have filled its last request,
which leaves short (HubSpot 30 days later, 10,000 contacts: 58 contact updates with three
open, 56 with twelve, the minimum; docs/performance.md, "Mirror chunks of 500")."""
TRIM_EVERY_CHUNKS = 10
"""The mirror phase gives its freed heap pages back (`give_back_free_memory`) after this many
chunks, not only at the run's end. A chunk's mirror rows and plans are freed between objects
that outlive it, and glibc keeps the pages in between: at 100,000 Salesforce records a day
later peaked at 153 MB without, 146-147 with a trim every 10 chunks (a trim every chunk did
no better; about 3 ms each; docs/performance.md, "A trim every ten chunks")."""
MIRROR_FIRST_CHUNK = 200
"""The mirror phase's first chunk, each next one twice as large up to `MIRROR_CHUNK`: a run
that reads nothing (30 days later, a rules change) is CPU-bound, and its first writes leave
once 200 contacts are decided instead of 500, so requests fly while the rest is decided (a
read's first batch is short for the same reason: the HubSpot adapter's `FIRST_BATCH`)."""
OWED_RETRY_ATTEMPTS = 5
"""Owed tasks are resent at each run start until the CRM has refused them this many times;
after that only when their contact is decided again (a configuration change or the attention
backoff). An outage counts no refusal (an unknown outcome, a 503, a lock): an owed task is
resent after any outage, however long (five runs of one left a converted Lead's follow-ups
unsent, a re-test)."""


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    limit: int | None = None
    contact_ids: Sequence[tuple[str, str]] | None = None
    now: datetime | None = None
    mode: str = "once"
    full: bool = False
    """Read every record (a reconciliation), whatever the cursor says."""


@dataclass
class BatchReport:
    """What one batch decided and did; dry runs print it, the daemon counts it."""

    read: int = 0
    """Records the batch read from the CRM, or took from the mirror in phase two."""
    scored: int = 0
    decisions: list[Decision] = field(default_factory=list)
    """Kept only for an engine made with `keep_decisions` (the demo prints them): a batch
    waits for its answers with its report, and a bulk write gathers 10,000 records' worth."""
    updates: list[RecordUpdate] = field(default_factory=list)
    tasks: list[PlannedTask] = field(default_factory=list)
    skips: list[tuple[str, Skip]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    written: list[RecordUpdate] = field(default_factory=list)
    tasks_created: list[PlannedTask] = field(default_factory=list)
    closing: list[Closing] = field(default_factory=list)
    """Follow-ups a merge in the CRM doubled, removed (or, dry, to remove) with the batch."""


@dataclass
class RunSummary:
    run_id: str
    status: str
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class _Problems:
    """Per-record failures of one batch, sorted by what the next run does about them."""

    retry: list[tuple[str, str, str]] = field(default_factory=list)
    attention: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    versions: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """The CRM stamp each record of `attention` failed at, where known (`RecordError.stamp`)."""
    gone: list[tuple[str, str]] = field(default_factory=list)
    """Records the CRM no longer has (a read or a write answered `gone`): they leave the
    mirror and the retry lists."""

    def add(
        self, key: tuple[str, str] | None, transient: bool, field: str | None, why: str
    ) -> None:
        if key is None:
            return
        if transient:
            if all(entry[:2] != key for entry in self.retry):  # one per record (two tasks)
                self.retry.append((*key, why))
        elif all(entry[:2] != key for entry in self.attention):
            self.attention.append((*key, field, why))


Review = tuple[tuple[str, str], datetime | None, datetime | None]
"""A decided record's key, hot episode start and next review moment (`_reviews`; None: due
at the next run)."""


@dataclass(eq=False)
class _Planned(Outgoing):
    """A batch's writes, and its decided records' hot episodes and review moments: should a
    request fail as a whole and leave the batch open, its answered part is acknowledged
    with them (`_landed`)."""

    decided: list[Review] = field(default_factory=list)


class SyncEngine:
    """Runs syncs of one adapter instance against one state store."""

    def __init__(
        self,
        adapter: Adapter,
        settings: Settings,
        store: StateStore,
        *,
        on_batch: Callable[[BatchReport], None] | None = None,
        on_read: Callable[[list[Contact]], None] | None = None,
        stop: threading.Event | None = None,
        keep_decisions: bool = False,
    ) -> None:
        self.adapter = adapter
        self.keep_decisions = keep_decisions
        self.settings = settings
        self.store = store
        self.people = People(store, settings.identity)
        """Who is who across records: one decision per person (see `sync/people.py`)."""
        self._redeciding = False
        """Deciding mirrored records nobody changed: their persons are as last resolved."""
        self._decided_persons: set[str] | None = None
        """Persons of several records decided in this pass over the mirror (`decide_persons`)."""
        self._bereft: list[tuple[str, str]] = []
        """Records of persons a record of the batch being read was (one the read found gone,
        or merged into a record read): regrouped and decided with the batch, without it
        (`_persons`). Kept until the next full read, their decision went on counting it."""
        self._persons_to_look_up: list[tuple[str, str]] = []
        """The records of the mirror chunk being decided that are not their own person alone:
        only their persons are looked up (`_persons`)."""
        self._reviews_held: dict[tuple[str, str], tuple[datetime | None, datetime | None]] = {}
        """What the review rows of the mirror chunk being decided hold (hot episode start,
        review moment): a decision that gives the same is not recorded again (`_reviews`)."""
        self._groups: dict[str, DuplicateGroup] = {}
        """How the persons a full read grouped matched (rules, confidence), by person: their
        review tasks say it; the people table keeps who is who, not why."""
        self.instance = settings.crm.instance
        self.on_batch = on_batch
        self.on_read = on_read
        """Sees each batch's contacts as they come in (read, or from the mirror), before they
        are decided; `on_batch` sees what was decided and done once it is acknowledged."""
        self.stop = stop or threading.Event()
        self.traffic = traffic_of(adapter)
        """The adapter's requests in flight and rate budgets: writes go through its pool."""
        self._unacked: set[tuple[str, str]] = set()
        """Contacts of batches whose writes are not acknowledged yet."""
        self._owed_listed: frozenset[str] = frozenset()
        """A dry run's owed tasks (`_follow_up_of`), listed at its start as the real run
        would create them then: not listed again when planned."""
        self._held_tasks: dict[str, None] | None = None
        """The mirror phase's task keys not sent yet, in plan order: its tasks wait in the
        ledger, owed, until they fill a call (`_release_held_tasks`). In the flight they
        would leave a short request every other batch, or, with a bulk API, a job per
        `bulk_batch` records decided (about 2,000 tasks, where a job takes 10,000)."""
        self._held_updates: dict[tuple[str, str], None] | None = None
        """With a bulk API, the mirror phase's records whose updates are not sent yet: their
        intents wait in the audit trail until one object's fill a bulk call
        (`_release_held_updates`). In the flight, a bulk call held the updates of `bulk_batch`
        records decided, split per object: 12 update jobs where 10 would do, and a
        collection per call for the few Leads, at 100,000 people 30 days later."""
        self._deferred: dict[tuple[str, str], datetime | None] = {}
        """Records whose person was decided while their own write was in flight, or waits for
        its survivor's (with their hot episode start): decided again once it has landed, at
        the end of the run."""
        self._open_intents: dict[tuple[str, str], list[AuditWrite]] = {}
        self.described = Described(adapter, settings)
        """The CRM's description of each object type, asked once a run (made anew by each)."""
        self._run_id = ""
        self._episodes: dict[tuple[str, str], datetime | None] = {}
        self.full_read = FullRead(store, self.instance, settings)
        """This run's view of the full read (made anew by each run): whether it reads
        everyone, since when, and what it found gone (`sync/full_read.py`)."""
        self._unless_edited = any(
            policy.owned and policy.policy == "unless_edited" for policy in settings.fields.values()
        )
        """Only `unless_edited` needs our last writes: without it no batch asks the trail."""

    # the run -----------------------------------------------------------------------------
    def run(self, options: RunOptions | None = None) -> RunSummary:
        """One run. Once it is recorded as started it never raises for a CRM, state or
        programming error: it ends `failed` (or `stopped` when the API budget is spent) with
        its reason recorded. A state store that cannot even record the start raises
        `StateStoreError` before any CRM call."""
        options = options or RunOptions()
        now = options.now or datetime.now(UTC)
        read_before = datetime.now(UTC)
        run_id = self.store.start_run(self.instance, mode=options.mode, dry_run=options.dry_run)
        summary = RunSummary(run_id=run_id, status="ok", dry_run=options.dry_run)
        self._run_id = run_id
        self._dry_run = options.dry_run
        self._dry_read: dict[tuple[str, str], Contact] = {}
        self._dry_merged_away: set[tuple[str, str]] = set()
        self._dry_failed: set[tuple[str, str]] = set()
        """Records a dry run failed to read or decide: the real run keeps them (retried or
        needing attention), so a dry full read does not find them gone."""
        self._dry_gone: set[tuple[str, str]] = set()
        """Records a dry run's reads or answers found gone: counted once, as the real run's
        mirror forgets them once."""
        self._dry_planned: dict[tuple[str, str], dict[str, Any]] = {}
        """A dry run's planned values per record: they stand for the writes a real run's
        later decisions in the same run find landed (`_as_planned`)."""
        self._dry_tasks: set[str] = set()
        """Task keys a dry run listed: a real run's ledger holds them once created."""
        self._not_landed: dict[tuple[str, str], dict[str, Any]] = {}
        """A real run's planned values per record that the CRM did not take (refused, or
        failed for now): a later decision of the record in the run is diffed against them,
        as a dry run's against all it planned (`_as_planned`). From the mirror, which holds
        only what landed, it would plan, send and count the refused changes again, and the
        real run's planned counts would leave the dry run's."""
        self._decided_first: set[tuple[str, str]] = set()
        """Mirrored records decided before the mirror phase with the records read (their
        duplicates, or those a read record left): the mirror phase leaves them out, as it
        leaves out those read. Decided there again, their person would be decided twice,
        and a dry run, whose mirror still holds the old values, would plan its changes
        twice."""
        self._follow_up_reviews: dict[tuple[str, str], datetime] = {}
        self._errored: set[tuple[str, str]] = set()
        """Records whose error this run reported: one read again by id first and met again
        among the changed ones is reported (and counted) once, and so is one whose write is
        refused again after a later decision in the run; no later batch of the run finds
        them clean (`_record_problems`)."""
        self._held_back: set[tuple[tuple[str, str], str]] = set()
        """(record, field) of the changes this run held back: a record decided twice in a run
        (with its person's other record, again once its own write landed) has each counted
        and logged once, or the count would depend on how the run's batches fell."""
        self._failed_at: dict[tuple[str, str], datetime] = {}
        """Records needing attention whose retry is not due, by the CRM stamp they failed at
        (`_failed_versions`)."""
        self._deferred.clear()
        self._bereft = []
        self.people.hidden = frozenset()
        self._held_tasks = None
        self._clock_checked = False
        self.full_read = FullRead(self.store, self.instance, self.settings)
        with run_context(run_id):
            log.info("run started (%s%s)", options.mode, ", dry run" if options.dry_run else "")
            try:
                hand_state(self.adapter, self.store, self.instance, read_only=options.dry_run)
                self._prepare(options, summary, now)
                with fewer_collections():  # both phases: a batch's objects are acyclic too
                    remaining = self._run_batches(options, now, summary)
                    if options.contact_ids is None and not self.stop.is_set():
                        if self.full_read.started and options.dry_run:
                            self._decide_dry_read(options, now, summary)
                        self._redecide_mirror(options, now, summary, read_before, remaining)
                self.full_read.finish(whole=self._read_whole(options), dry_run=options.dry_run)
            except BudgetExhausted as exc:
                self._end(summary, "stopped", f"{type(exc).__name__}: {exc}")
            except (AdapterError, StateStoreError, ClockOffsetError) as exc:
                self._end(summary, "failed", f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                log.exception("run failed on an unexpected error")
                self._end(summary, "failed", f"unexpected {type(exc).__name__}: {exc}")
            if summary.status == "ok" and summary.errors:
                summary.status = "partial"
            if self.stop.is_set() and summary.status in ("ok", "partial"):
                summary.status = "interrupted"
            try:
                self.store.finish_run(
                    run_id, summary.status, dict(summary.counts), summary.errors, summary.details
                )
                if summary.status in ("ok", "partial") and not options.dry_run:
                    self.store.set_meta(self.instance, RULES_KEY, summary.details[RULES_KEY])
            except StateStoreError as exc:
                log.error("the run's end could not be recorded: %s", exc)
                summary.status = "failed"
                summary.errors.append(f"StateStoreError: {exc}")
            log.info(
                "run %s: %s",
                summary.status,
                counts_sentence(summary.counts),
                extra={"status": summary.status, "counts": dict(summary.counts)},
            )
        give_back_free_memory()  # the next run, or the daemon's wait, starts lower
        return summary

    @staticmethod
    def _end(summary: RunSummary, status: str, reason: str) -> None:
        summary.status = status
        summary.errors.append(redact(reason))
        log.error("run %s: %s", status, redact(reason))

    def _prepare(self, options: RunOptions, summary: RunSummary, now: datetime) -> None:
        """Before planning anything new: crashed runs named, the task ledger known, what a
        dead run left in flight settled."""
        here = (self.adapter, self.store, self.instance)
        delay = timedelta(seconds=self.settings.sync.lookup_delay_seconds)
        self.described = Described(self.adapter, self.settings)
        self._owed_listed = frozenset()
        self._groups = {}
        self._note_rules_version(summary)
        check_fit(self.described, self.store, self.instance, self.settings, dry_run=self._dry_run)
        if not options.dry_run:
            crashed = self.store.mark_crashed_runs(self.instance, except_run=summary.run_id)
            if crashed:
                log.warning(
                    "marked %d run(s) left running by a dead process as crashed", len(crashed)
                )
        rebuild_ledger(*here, summary.counts)
        self._index_people()
        self._open_intents = self.store.open_intents(self.instance)
        dead_run_writes = self._open_intents or self.store.count_tasks(self.instance, TASK_PENDING)
        if dead_run_writes and not options.dry_run:
            finish_writes_in_flight(self.adapter, summary.counts)
        owed = self.store.tasks_in(self.instance, TASK_OWED, below_attempts=OWED_RETRY_ATTEMPTS)
        if options.dry_run:
            # The real run would send these first; the dry run lists them, sends nothing.
            owed += settle_pending_tasks(*here, delay, summary.counts, dry_run=True)
            owed = without_gone_follow_ups(owed, *here, summary.counts, dry_run=True)
            owed += to_the_person(self.people, self.instance, gone_with_their_record(*here))
            left = left_closing(self.store, self.instance)  # the real run sends them again
            summary.counts["tasks_to_close"] += len(left)
            if owed or left:
                report = BatchReport(tasks=owed, closing=left)
                summary.counts["tasks_planned"] += len(owed)
                self._owed_listed = frozenset(_follow_up_of(task.key) for task in owed)
                if self.on_batch:
                    self.on_batch(report)
            return
        settle_pending_tasks(*here, delay, summary.counts)
        summary.errors += resume_closing(*here, summary.counts)
        owe_to_the_person(
            self.store, self.people, self.instance, gone_with_their_record(*here), summary.counts
        )
        self.store.delete_meta(self.instance, RECHECK_KEY)
        owed = self.store.tasks_in(self.instance, TASK_OWED, below_attempts=OWED_RETRY_ATTEMPTS)
        if owed:
            log.info("creating %d owed task(s) left by earlier runs", len(owed))
            self._create_owed(owed, summary, now)

    def _index_people(self) -> None:
        """Once per state file: records mirrored before the identity index existed join it."""
        if self.store.get_meta(self.instance, PEOPLE_INDEXED_KEY):
            return
        for chunk in self.store.mirrored_contacts(self.instance, MIRROR_CHUNK):
            self.people.index(self.instance, chunk)
        self.store.set_meta(self.instance, PEOPLE_INDEXED_KEY, datetime.now(UTC).isoformat())

    def _note_rules_version(self, summary: RunSummary) -> None:
        """The run records its rules version, and the one before when they differ: a rules
        change re-decides everyone from the mirror, and the runs list says why."""
        version = compile_rules(self.settings.rules).version
        summary.details[RULES_KEY] = version
        previous = self.store.get_meta(self.instance, RULES_KEY)
        if previous and previous != version:
            summary.details["previous_rules_version"] = previous
            log.info(
                "rules changed (%s -> %s): every mirrored contact is re-decided", previous, version
            )
        self.store.note_run_details(summary.run_id, summary.details)

    # reading ------------------------------------------------------------------------------
    def _to_read_again(self, options: RunOptions, now: datetime) -> list[tuple[str, str]]:
        """Records read by id before the changed ones: a dead run's open intents, failed
        writes, records needing attention whose retry is due."""
        if options.contact_ids is not None:
            return []
        again = list(self._open_intents)
        types = {record.object_type for record in self.store.attention(self.instance)}
        fingerprints = {
            object_type: self.described.fingerprint(object_type) for object_type in types
        }
        retries = self.store.retries(self.instance, fingerprints=fingerprints, now=now)
        self._failed_at = self._failed_versions(set(retries))
        again += [key for key in retries if key not in self._open_intents]
        return again[: self.settings.sync.max_retry_records]

    def _failed_versions(self, due: set[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        """Records needing attention, not `due` for their retry, by the version they failed
        at. Met again at it (a lookback's overlap, a sweep, a full read), a record is not read
        again and its error is no new one: it stays listed with its retry, and no run reports
        or counts it until someone changes it or its retry is due (an attempt)."""
        versions = self.store.failed_versions(self.instance)
        return {key: stamp for key, stamp in versions.items() if key not in due}

    def _batches(
        self,
        options: RunOptions,
        now: datetime,
        cursor: str | None,
        again: list[tuple[str, str]],
    ) -> Iterator[ContactBatch]:
        if options.contact_ids is not None:
            yield from boundary.read_contacts(self.adapter, options.contact_ids)
            return
        if again:
            log.info("re-reading %d record(s): failed writes, open intents, attention", len(again))
            yield from boundary.read_contacts(self.adapter, again)
        known = None if self.full_read.started else self._known_versions
        yield from boundary.read_changed(self.adapter, cursor, until=now, known=known)
        self.full_read.read_to_end = True

    def _known_versions(
        self, hits: Sequence[Hit], *, by_others: bool = False
    ) -> set[tuple[str, str]]:
        known = self.store.mirror.known_versions(self.instance, hits, by_others=by_others)
        known |= {hit[0] for hit in hits if self._failed_at.get(hit[0]) == hit[1]}
        return {key for key in known if key not in self._open_intents}

    def _read_whole(self, options: RunOptions) -> bool:
        """Whether this run's read could reach its end: no `limit`, no stop."""
        return options.limit is None and not self.stop.is_set()

    def _hide_unseen(self, options: RunOptions, summary: RunSummary) -> None:
        """A dry full read that reached its end finds gone what the real run would drop
        (`FullRead.drop_unseen`), and changes neither the mirror nor the index: those records
        are left out of every group while it decides (`People.hidden`) and out of its mirror
        phase, and counted as the real run counts them, so it plans what the real run
        writes."""
        unseen = self.full_read.unseen(whole=self._read_whole(options))
        unseen -= self._dry_read.keys() | self._dry_merged_away | self._dry_failed
        self.people.hidden |= unseen
        self._dry_merged_away |= unseen
        summary.counts["records_gone"] += len(unseen)
        if unseen:
            log.info(
                "dry full read: %d record(s) no longer in the CRM would leave the mirror",
                len(unseen),
            )

    def _count_dry_problems(self, problems: _Problems, counts: Counter[str]) -> None:
        """A dry run's batch failures, counted as the real run counts them when it records
        them (`_record_problems`), which a dry run does not: records needing attention, and
        records found gone that the mirror holds, each once."""
        counts["records_needing_attention"] += len(problems.attention)
        self._dry_failed.update((obj, cid) for obj, cid, *_ in problems.attention)
        self._dry_failed.update((obj, cid) for obj, cid, _ in problems.retry)
        gone = [key for key in dict.fromkeys(problems.gone) if key not in self._dry_gone]
        if gone:
            self._dry_gone.update(gone)
            counts["records_gone"] += len(self.store.mirror.held(self.instance, gone))

    def _run_batches(self, options: RunOptions, now: datetime, summary: RunSummary) -> int | None:
        """Phase one: the records the CRM reports changed. Later batches are read while a
        batch is decided, and its writes fly while the next ones are (`Flight`); a batch's
        cursor is saved once its writes and every earlier batch's are acknowledged. A full
        read only mirrors and indexes here (`_index_only`). Returns what is left of `limit`."""
        remaining = options.limit
        flight = self._flight(summary, now)
        cursor = None
        if options.contact_ids is None:
            cursor = self.full_read.start(full=options.full, dry_run=options.dry_run)
        if self.full_read.started:
            summary.details[READ_KEY] = "full"  # `crm-qualify runs` tells it from incremental
            self.store.note_run_details(summary.run_id, summary.details)
        again = self._to_read_again(options, now)
        first, reread = set(again), set[tuple[str, str]]()
        batches = read_ahead(
            self._batches(options, now, cursor, again),
            until=self.stop,  # a stop gives up the read under way: it is not kept
            abandon=self.traffic.abandon_reads,
        )
        try:
            for batch in batches:
                self._check_clock(options)  # before anything read is kept
                report = BatchReport()
                problems = _Problems()
                contacts = self._translate(batch, report, problems)
                read_cursor = batch.cursor
                del batch  # its raw records: only the contacts are decided and held for writes
                if first:  # read again first, they may come with the changed ones too: once
                    contacts = [c for c in contacts if _once(_key(c), first, reread)]
                if remaining is not None:
                    contacts = contacts[:remaining]
                    remaining -= len(contacts)
                report.read = len(contacts)
                summary.counts["read"] += len(contacts)
                summary.counts["read_errors"] += len(report.errors)
                saves = read_cursor is not None and options.limit is None and not options.dry_run
                cursor = read_cursor if saves else None
                if self.full_read.started:
                    self._index_only(contacts, now, options, summary, report, problems, cursor)
                else:
                    self._bereft = self._ingest(contacts, options, gone=problems.gone)
                    self._dispatch(
                        flight, contacts, now, options, summary, report, problems, cursor
                    )
                del contacts  # handed on: not held while the next batch is taken
                if remaining is not None and remaining <= 0:
                    break
                if self.stop.is_set():
                    log.info("stop requested: checkpoint saved, ending the run")
                    break
            flight.drain()
        except BaseException:
            flight.abandon()
            raise
        finally:
            batches.close()
        if self.full_read.started and not options.dry_run:
            if not self.stop.is_set():  # grouped once everyone is indexed (`People.regroup`)
                gone = self.full_read.drop_unseen(self.people, whole=self._read_whole(options))
                summary.counts["records_gone"] += gone  # and no one gone is
                self._groups = self.people.regroup(self.instance)
            return options.limit  # what a full read took in is decided in phase two
        if self.full_read.started:
            self._hide_unseen(options, summary)
        return remaining

    def _dispatch(
        self,
        flight: Flight,
        contacts: list[Contact],
        now: datetime,
        options: RunOptions,
        summary: RunSummary,
        report: BatchReport,
        problems: _Problems,
        cursor: str | None,
    ) -> None:
        """Plan one batch (read, or from the mirror) and hand its writes to the flight; once
        they are answered (after every earlier batch's): acknowledged, then the cursor (None
        for the mirror), errors and report. What waits for the answers is the batch's keys and
        review moments, not its contacts, so batches gathered for a bulk write stay small."""
        if self.on_read:
            self.on_read(contacts)
        deferred_before = set(self._deferred)
        contacts = self._without_busy(contacts)
        pairs = self._plan_batch(contacts, now, options, summary, report, problems)
        batch = [_key(contact) for contact in contacts]
        keys = set(batch)  # and the persons' records decided with them
        decided = self._reviews(pairs or (), now, keys)
        # due now, acknowledged after their own write: a run that stops first leaves them due
        decided += [
            (key, since, now) for key, since in self._deferred.items() if key not in deferred_before
        ]
        planned = pairs is not None  # `then` must not hold the contacts: only what it records

        def then(out: Outgoing) -> None:
            if planned:
                self._acknowledge(out, batch, decided, now, summary, report, problems)
            else:
                self._count_dry_problems(problems, summary.counts)
            self._unacked -= keys
            if cursor is not None:
                self.store.set_cursor(self.instance, CONTACTS_STREAM, cursor)
            summary.errors.extend(report.errors)
            if self.on_batch:
                self.on_batch(report)

        self._unacked |= keys
        tasks = report.tasks
        if planned and self._held_tasks is not None:  # owed in the ledger: leave in full calls
            self._held_tasks.update(dict.fromkeys(task.key for task in tasks))
            tasks = []
        if planned and self._held_updates is not None:  # intended in the audit trail: the same
            # (the batch's `then` records review moments; the updates are acknowledged apart)
            self._held_updates.update(dict.fromkeys(update.key for update in report.updates))
            report.updates = []
        if not planned:
            flight.add(Outgoing((), (), then, records=len(batch)))
        else:
            flight.add(_Planned(report.updates, tasks, then, len(batch), decided=decided))
        self._release_held_updates(flight, summary, now, rest=False)
        self._release_held_tasks(flight, summary, now, rest=False)

    def _as_planned(self, contact: Contact) -> None:
        """A dry run's record as a real run would hold it now: with the values this run
        planned for it, as if they had landed (`owned_patch`: a written stage is its stage).
        A real run's record: with those of its values this run planned and the CRM did not
        take (`_not_landed`), so it is planned and counted once, as in the dry run."""
        planned = self._dry_planned if self._dry_run else self._not_landed
        values = planned.get(_key(contact))
        if values:
            contact.owned.update(values)
            if values.get("stage") is not None:
                contact.stage = Stage(values["stage"])

    def _without_busy(self, contacts: list[Contact]) -> list[Contact]:
        """The contacts but those read again while our earlier write to them flies (a person's
        record read earlier in the run decided them with it). What was read of their owned
        fields predates that write, so they are decided again from the mirror once it has
        landed (`_decide_waiting`), as a busy member of a person is: the facts just read
        are mirrored already, and the writes in flight need not be drained for them (a drain
        sends what gathers for a bulk call in short requests)."""
        if not self._unacked:
            return contacts
        kept = []
        for contact in contacts:
            key = _key(contact)
            if key in self._unacked:
                self._deferred[key] = self._episodes.get(key)
            else:
                kept.append(contact)
        return kept

    def _reviews(
        self,
        pairs: list[tuple[Contact, Decision]] | tuple[()],
        now: datetime,
        keys: set[tuple[str, str]],
    ) -> list[tuple[tuple[str, str], datetime | None, datetime]]:
        """Each decided record's key (added to `keys`), hot episode start and next review
        moment, left out where its review row holds both already (a rules change moves few
        of them): nothing to record. The chunk's rows are used once (`_reviews_held`).

        A record decided twice in a run (a person's other record, in a later chunk) may be
        decided the second time before the follow-up the first decision planned is created
        and joined to it: the review that follow-up's due time gave is kept for the run."""
        rules = self.settings.rules
        held, self._reviews_held = self._reviews_held, {}
        decided = []
        planned = self._follow_up_reviews
        for contact, decision in pairs:
            key = _key(contact)
            keys.add(key)
            moment = next_review(contact, decision, rules, now)
            if decision.tasks:
                planned[key] = min(moment, planned.get(key, moment))
            moment = min(moment, planned.get(key, moment))
            review = (decision.hot_since, moment)
            if held.get(key) != review:
                decided.append((key, *review))
        return decided

    def _index_only(
        self,
        contacts: list[Contact],
        now: datetime,
        options: RunOptions,
        summary: RunSummary,
        report: BatchReport,
        problems: _Problems,
        cursor: str | None,
    ) -> None:
        """A full read's batch: mirrored and indexed, left due; it is grouped with everyone
        once the read is over (`People.regroup`) and decided from the mirror (phase two). The
        cursor moves at once: what it passes is in the mirror, due until decided."""
        self._ingest(contacts, options, due=True, gone=problems.gone)
        if options.dry_run:
            self._count_dry_problems(problems, summary.counts)
        else:
            with self.store.transaction():
                self._record_problems([], report, problems, now, summary.counts)
                if cursor is not None:
                    self.store.set_cursor(self.instance, CONTACTS_STREAM, cursor)
        summary.errors.extend(report.errors)
        if self.on_batch:
            self.on_batch(report)

    def _check_clock(self, options: RunOptions) -> None:
        """Before anything the run read is kept or decided, once its reads have heard the
        CRM's clock: a run that does not say its moment (`RunOptions.now`) decides on ours
        (`check_offset`). Called as each read batch arrives and before the mirror phase:
        every decision comes after one of the two."""
        if self._clock_checked or options.now is not None:
            return
        offset = getattr(self.adapter, "clock_offset", lambda: None)()
        if offset is None:
            return
        self._clock_checked = True
        try:
            warning = check_offset(offset, self.settings.sync.max_clock_offset_minutes)
        except ClockOffsetError:
            self.full_read.forget_start()
            raise
        if warning:
            log.warning(warning)

    def _decide_dry_read(self, options: RunOptions, now: datetime, summary: RunSummary) -> None:
        """A dry full read mirrors nothing: what it read is decided from memory, as the real
        run decides it from the mirror, once everyone is indexed."""
        read = list(self._dry_read.values())
        flight = self._flight(summary, now)
        self._decided_persons = set()
        try:
            for start in range(0, len(read), MIRROR_CHUNK):
                contacts = read[start : start + MIRROR_CHUNK]
                keys = [_key(c) for c in contacts]
                self._episodes = self.store.mirror.episodes(self.instance, keys)
                report, problems = BatchReport(), _Problems()
                self._dispatch(flight, contacts, now, options, summary, report, problems, None)
            flight.drain()
        finally:
            self._decided_persons = None

    def _ingest(
        self,
        contacts: list[Contact],
        options: RunOptions,
        *,
        due: bool = False,
        gone: Sequence[tuple[str, str]] = (),
    ) -> list[tuple[str, str]]:
        """Read records settle a dead run's intents and replace their mirrored facts. `gone`:
        records the read found gone (deleted, or a Salesforce lead converted into a contact
        of this batch): they leave the identity index before the batch is decided, so no
        person takes them in, and a dry run never decides them from the mirror it leaves as
        is; so do the records merged into one read. Returns the other records of the persons
        those were (`People.forget`): grouped and decided again without them."""
        keys = [_key(c) for c in contacts]
        self._episodes = self.store.mirror.episodes(self.instance, keys)
        left: list[tuple[str, str]] = []
        dry = options.dry_run  # forgets nothing: the real run after it must find whose they were
        if gone:
            left += self.people.forget(self.instance, list(gone), persist=not dry)
            if dry:
                self._dry_merged_away.update(gone)
        self.people.index(self.instance, contacts)  # derived, no CRM fact: a dry run too
        merged_away = [(c.object_type, gone) for c in contacts for gone in c.merged_ids]
        if merged_away:  # their person lives on in the record they were merged into
            left += self.people.forget(self.instance, merged_away, persist=not dry)
        if options.dry_run:
            for contact in contacts:
                self._as_planned(contact)
            self._dry_read.update(zip(keys, contacts, strict=True))
            self._dry_merged_away.update(merged_away)  # left in the mirror, never decided
            return left
        self._settle_intents(contacts)
        self.store.mirror.upsert(self.instance, contacts, datetime.now(UTC), due=due)
        if merged_away:
            self.store.mirror.forget(self.instance, merged_away)
        return left

    def _redecide_mirror(
        self,
        options: RunOptions,
        now: datetime,
        summary: RunSummary,
        read_before: datetime,
        remaining: int | None,
    ) -> None:
        """Phase two: every mirrored contact this run did not read (a full read: and every one
        it read) nor decide with one it read (`_decided_first`), decided again from the state
        store in chunks (`_chunk_sizes`); records with a dead run's open intents or waiting
        for a re-read are left to the read that settles them."""
        if remaining is not None and remaining <= 0:
            return
        self._check_clock(options)
        # what a dry run read is decided from memory, not from the mirror it left unchanged
        exclude = set(self._open_intents) | self._dry_read.keys() | self._dry_merged_away
        exclude |= self._dry_failed  # as the real run leaves its failed records to a retry
        exclude |= self._decided_first
        decided_with = decision_fingerprint(self.settings)
        before = self.store.get_meta(self.instance, DECIDED_WITH_KEY)
        everyone = before != decided_with
        if everyone and before:
            log.info("configuration or rules changed: every mirrored contact is decided again")
        complete = True
        self._redeciding = True
        self._decided_persons = set()
        if self._task_call() and not options.dry_run:
            self._held_tasks = {}
        if self.traffic.limits.bulk_from and not options.dry_run:
            self._held_updates = {}
        flight = self._flight(summary, now, MIRROR_OPEN)
        try:
            self._decide_waiting(flight, options, now, summary)  # the read phase's: landed
            chunks = self.store.mirror.chunks(
                self.instance,
                read_before=read_before,
                exclude=exclude,
                due_by=None if everyone else now,
                size=_chunk_sizes(),
                read_now=self.full_read.started is not None and not options.dry_run,
            )
            for number, chunk in enumerate(chunks, start=1):
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                self._redecide_chunk(flight, chunk, options, now, summary)
                del chunk  # handed on: not held while the next chunk is read
                if number % TRIM_EVERY_CHUNKS == 0:
                    give_back_free_memory()
                if (remaining is not None and remaining <= 0) or self.stop.is_set():
                    complete = False
                    break
            flight.drain()
            self._release_held_updates(flight, summary, now, rest=True)
            self._held_updates = None  # later passes write what they decide, in the flight
            self._redecide_deferred(flight, options, now, summary)
            self._release_held_tasks(flight, summary, now, rest=True)
        except BaseException:
            flight.abandon()
            raise
        finally:
            self._redeciding = False
            self._decided_persons = None
            self._held_tasks = None
            self._held_updates = None
        if everyone and complete and not options.dry_run:
            self.store.set_meta(self.instance, DECIDED_WITH_KEY, decided_with)

    def _redecide_deferred(
        self, flight: Flight, options: RunOptions, now: datetime, summary: RunSummary
    ) -> None:
        """What waited for writes of the mirror phase's own, once they have landed. A few
        passes at most: a pass of more than one chunk can defer again; what is left stays due
        for the next run."""
        for _ in range(DEFERRED_PASSES):
            self._decided_persons = set()  # a new pass: the waiting persons are decided now
            if not self._deferred:
                return
            self._decide_waiting(flight, options, now, summary)
            flight.drain()

    def _decide_waiting(
        self, flight: Flight, options: RunOptions, now: datetime, summary: RunSummary
    ) -> None:
        """The records that waited for their own write while their person was decided
        (`_members`) or while they were read again (`_without_busy`), decided again from the
        mirror once it has landed: a record read early in a run takes what its duplicates read
        later made of the person. Those of the read phase go first in the mirror phase's own
        flight, so their writes gather with its writes."""
        keys = sorted(set(self._deferred) - set(self._open_intents))
        self._deferred.clear()
        if not keys or self.stop.is_set():
            return
        mirrored = list(self.store.mirror.by_keys(self.instance, keys).values())
        for start in range(0, len(mirrored), MIRROR_CHUNK):
            chunk = mirrored[start : start + MIRROR_CHUNK]
            self._redecide_chunk(flight, chunk, options, now, summary)

    def _redecide_chunk(
        self,
        flight: Flight,
        chunk: list[Mirrored],
        options: RunOptions,
        now: datetime,
        summary: RunSummary,
    ) -> None:
        """Mirrored records decided again, their writes handed to the flight."""
        contacts = [m.contact for m in chunk]
        keys = [_key(contact) for contact in contacts]
        self._episodes = {key: m.hot_since for key, m in zip(keys, chunk, strict=True)}
        self._persons_to_look_up = [key for key, m in zip(keys, chunk, strict=True) if not m.alone]
        self._reviews_held = {
            key: (m.hot_since, m.recheck_at)
            for key, m in zip(keys, chunk, strict=True)
            if m.recheck_at is not None
        }
        taken = sum(not m.fresh for m in chunk)  # a full read's own records are counted read
        report, problems = BatchReport(read=taken), _Problems()
        summary.counts["redecided"] += taken
        self._dispatch(flight, contacts, now, options, summary, report, problems, None)

    def _translate(
        self, batch: ContactBatch, report: BatchReport, problems: _Problems
    ) -> list[Contact]:
        contacts, errors = translate_batch(batch)
        for error in errors:
            if self._failing_as_before(error):
                continue  # needing attention at this very version: no new error
            if error.key is not None and not error.gone:
                if error.key in self._errored:
                    continue
                self._errored.add(error.key)
            self._record_error(report, problems, error)
        self.full_read.met(map(_key, contacts), (error.key for error in errors))
        return contacts

    def _failing_as_before(self, error: RecordError) -> bool:
        """Whether `error` is a record needing attention met again at the version it failed
        at (`_failed_versions`)."""
        if error.key is None or error.stamp is None:
            return False
        return self._failed_at.get(error.key) == error.stamp

    @staticmethod
    def _record_error(report: BatchReport, problems: _Problems, error: RecordError) -> None:
        """A record the CRM no longer has is no error (a full read would drop it as well):
        logged, and it leaves the mirror; the others are the batch's errors."""
        if error.gone and error.key is not None:
            log.info("%s: it leaves the mirror", error)
            problems.gone.append(error.key)
            return
        report.errors.append(str(error))
        problems.add(error.key, error.transient, error.field, error.message)
        if error.key is not None and error.stamp is not None and not error.transient:
            problems.versions[error.key] = error.stamp

    # one batch -----------------------------------------------------------------------------
    def _plan_batch(
        self,
        contacts: list[Contact],
        now: datetime,
        options: RunOptions,
        summary: RunSummary,
        report: BatchReport,
        problems: _Problems,
    ) -> list[tuple[Contact, Decision]] | None:
        """Decide and diff one batch and record its intents; None on a dry run."""
        counts = summary.counts
        pairs = self._decide_all(contacts, now, report, problems)
        counts["scored"] += len(pairs)
        self._plan(pairs, report)
        self._close_redundant(pairs, options, counts, report)
        if self._held_tasks is None:  # else looked up as they leave, a full call at a time
            report.tasks = without_gone_follow_ups(
                report.tasks, self.adapter, self.store, self.instance, counts, options.dry_run
            )
        counts["fields_planned"] += sum(len(u.changes) for u in report.updates)
        counts["tasks_planned"] += len(report.tasks)
        counts["fields_held_back"] += len(report.skips)
        _count_moves(counts, report.updates, "moving")
        if options.dry_run:
            return None
        if report.updates or report.tasks:
            self.store.record_intents(summary.run_id, self.instance, report.updates, report.tasks)
        return pairs

    def _close_redundant(
        self,
        pairs: list[tuple[Contact, Decision]],
        options: RunOptions,
        counts: Counter[str],
        report: BatchReport,
    ) -> None:
        """Follow-ups a merge in the CRM doubled on a decided record: all but one of each
        kind removed (`sync/redundant.py`), before the batch's escalations are looked up, so
        none is made for a follow-up just removed. A dry run lists and counts them."""
        closing = plan_closing([contact for contact, _ in pairs], self.store, self.instance)
        report.closing = closing
        if options.dry_run:
            counts["tasks_to_close"] += len(closing)
            return
        report.errors += close(self.adapter, self.store, self.instance, closing, counts)

    def _acknowledge(
        self,
        out: Outgoing,
        batch: list[tuple[str, str]],
        decided: Sequence[Review],
        now: datetime,
        summary: RunSummary,
        report: BatchReport,
        problems: _Problems,
    ) -> None:
        """A batch whose writes are all answered: its acknowledgements in one commit.
        `decided`: each decided record's key, hot episode start and next review moment."""
        counts = summary.counts
        acked, outcomes = self._write(report, out.update_answers, counts, problems)
        landed = sort_answers(out.tasks, out.task_answers, problems.gone)
        report.tasks_created += [task for task, _ in landed.created]
        for task, result in landed.refused:
            self._task_failed(task, result, report, problems)
        problems.gone += landed.gone
        counts["tasks_uncertain"] += landed.uncertain
        counts["task_errors"] += len(landed.refused)
        with self.store.transaction():  # each acknowledged record's mirror row: once
            self.store.settle_writes(summary.run_id, self.instance, outcomes, remember=False)
            record_answers(self.store, self.instance, landed, counts)
            self.store.mirror.record_batch(self.instance, acked, landed.created, decided, now)
            self._record_problems(batch, report, problems, now, counts)
            owe_to_the_person(
                self.store, self.people, self.instance, landed.dropped, counts, landed.moved
            )

    def _settle_intents(self, contacts: list[Contact]) -> None:
        """A dead run's field intents for these records: landed if the CRM holds the value."""
        outcomes: list[tuple[AuditWrite, bool]] = []
        for contact in contacts:
            writes = self._open_intents.pop((contact.object_type, contact.id), [])
            outcomes += [(w, same(contact.owned.get(w.field), w.new)) for w in writes]
        if outcomes:
            self.store.settle_intent_fields(self.instance, outcomes)

    def _decide_all(
        self, contacts: list[Contact], now: datetime, report: BatchReport, problems: _Problems
    ) -> list[tuple[Contact, Decision]]:
        """One decision per person: a record's duplicates (from the mirror) share it, and
        are written with the batch when nothing of theirs is still in flight."""
        rules = self.settings.rules
        pairs = []
        if self._not_landed and not self._dry_run:  # a dry run's read ones are (`_ingest`)
            for contact in contacts:
                self._as_planned(contact)
        persons = self._persons(contacts)
        taken = {_key(contact) for contact in contacts}
        contacts = contacts + self._left_behind(persons, taken)
        for contact, decision in decide_persons(
            contacts,
            persons,
            self._episodes,
            self._members,
            lambda person, hot_since: decide(person, rules, now, hot_since=hot_since),
            self._decided_persons,
        ):
            if isinstance(decision, Waiting):  # decided with its survivor, once that landed
                self._deferred[_key(contact)] = self._episodes.get(_key(contact))
                continue
            if not self._redeciding and _key(contact) not in taken:
                self._decided_first.add(_key(contact))
            if isinstance(decision, Exception):
                why = f"cannot score: {type(decision).__name__}: {decision}"
                self._record_error(
                    report, problems, RecordError(contact.label, None, why, key=_key(contact))
                )
                continue
            report.scored += 1
            if self.keep_decisions:
                report.decisions.append(decision)
            pairs.append((contact, decision))
        return pairs

    def _persons(self, contacts: list[Contact]) -> dict[tuple[str, str], Person]:
        """Records read now are regrouped, and so are the records of persons the read found
        a record of gone (`_bereft`); mirrored records keep the persons last resolved (their
        groups change only when one of their records does, which is read). A record that is
        its own person alone is left out: `decide_persons` decides it by itself."""
        if self._redeciding:
            keys = self._persons_to_look_up
            stored = self.people.stored(self.instance, keys) if keys else {}
            if not self._groups:
                return stored
            return {
                key: replace(person, group=self._groups.get(person.key))
                for key, person in stored.items()
            }
        bereft, self._bereft = self._bereft, []
        return self.people.resolve(self.instance, contacts, persist=not self._dry_run, also=bereft)

    def _left_behind(
        self, persons: dict[tuple[str, str], Person], given: set[tuple[str, str]]
    ) -> list[Contact]:
        """The records a contact of the batch left (its person changed): decided with the
        batch from the mirror, alone or with their new group, as the docs promise that a
        changed record brings its group into the run. One with a write in flight is decided
        again once that is answered. `given`: the batch's own records."""
        left = [key for key in persons if key not in given]
        if not left:
            return []
        members = self._members(left)
        self._episodes.update((key, member.hot_since) for key, member in members.items())
        return [member.contact for member in members.values() if member.writable]

    def _members(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Member]:
        """A person's other records, as mirrored; one with writes in flight or open intents
        lends its facts but is written by a later run."""
        writing = self._unacked | (self._held_updates or {}).keys()
        busy = writing | set(self._open_intents)
        members = {
            key: Member(mirrored.contact, mirrored.hot_since, key not in busy)
            for key, mirrored in self.store.mirror.by_keys(self.instance, keys).items()
        }
        for key in keys:  # a dry run mirrors nothing: what it read so far stands in
            if key in self._dry_read:
                since = members[key].hot_since if key in members else None
                members[key] = Member(self._dry_read[key], since, True)
            if key in members:
                self._as_planned(members[key].contact)
        self._deferred.update(
            (key, member.hot_since)
            for key, member in members.items()
            if not member.writable and key in writing
        )
        return members

    def _plan(self, pairs: list[tuple[Contact, Decision]], report: BatchReport) -> None:
        policies = self.settings.fields
        found = {
            _key(contact): candidates(contact, decision, policies) for contact, decision in pairs
        }
        # our last writes, for the records whose changes may be held back on them
        hinging = [key for key, changes in found.items() if hinges_on_our_writes(changes)]
        last_written = (
            self.store.last_written(self.instance, hinging)
            if self._unless_edited and hinging
            else {}
        )
        stages = getattr(self.adapter, "writable_stages", None)
        unsure = learn_sources(
            self.adapter,
            self.store,
            self.instance,
            pairs,
            policies,
            last_written,
            stages,
            complete=self._unless_edited,
            changes=found,
        )
        planned: dict[str, PlannedTask] = {}
        for contact, decision in pairs:
            key = _key(contact)
            update, skips = plan_update(
                contact,
                decision,
                policies,
                last_written.get(key, {}),
                stages,
                unsure.get(key),
                found[key],
            )
            if update:
                report.updates.append(update)
            report.skips.extend((contact.label, skip) for skip in self._first_held(contact, skips))
            tasks = decision.tasks
            kept = {skip.field for skip in skips if skip.kept}
            if "stage" in kept:  # kept where someone moved it back: no hand-off
                tasks = [task for task in tasks if task.kind != MQL_HANDOFF]
            if "temperature" in kept:  # kept, so not the hot one decided: no call
                tasks = [task for task in tasks if task.kind != "hot_call"]
            planned.update((task.key, task) for task in tasks)
        known = self.store.tasks_by_key(self.instance, list(planned))
        held = self._held_tasks or {}
        listed = self._owed_listed
        # New keys and keys still owed; a pending key waits for its look-up, never resent; a
        # held one (a person decided again in this phase) is planned once, and so is one a
        # dry run listed as owed at its start (the real run would have created it then).
        report.tasks = [
            task
            for key, task in planned.items()
            if (key not in known or known[key].status == TASK_OWED or _anew(known[key]))
            and key not in held
            and _follow_up_of(key) not in listed
            and key not in self._dry_tasks
        ]
        report.tasks = self._not_waiting(report.tasks, known)
        if self._dry_run:  # what the real run's later decisions would find landed
            self._dry_tasks.update(task.key for task in report.tasks)
            for update in report.updates:
                self._dry_planned.setdefault(update.key, {}).update(update.values())

    def _first_held(self, contact: Contact, skips: list[Skip]) -> list[Skip]:
        """The record's changes held back that this run has not reported yet (`_held_back`);
        a value someone else chose is logged with why it is kept."""
        key = _key(contact)
        first = [skip for skip in skips if (key, skip.field) not in self._held_back]
        for skip in first:
            self._held_back.add((key, skip.field))
            if skip.kept:
                log.info("%s: %s kept: %s", contact.label, skip.field, skip.reason)
        return first

    def _not_waiting(
        self, tasks: list[PlannedTask], known: Mapping[str, TaskRecord]
    ) -> list[PlannedTask]:
        """The tasks but new follow-ups of a kind their record already has on its way under
        another key (owed, or sent with its answer lost): a task owed to a Contact its Lead
        was converted into carries the Lead's key, and the Contact's own decision, keyed by
        the Contact, planned a second call beside it."""
        new = [t for t in tasks if t.key not in known and t.kind in KINDS]
        if not new:
            return tasks
        waiting = self.store.waiting_follow_ups(
            self.instance,
            [(t.object_type, t.contact_id) for t in new],
            below_attempts=OWED_RETRY_ATTEMPTS,  # one no longer resent holds nothing back
        )
        doubled = {
            t.key
            for t in new
            if any(
                kind == t.kind and key != t.key
                for kind, key in waiting.get((t.object_type, t.contact_id), ())
            )
        }
        if doubled:
            log.info("%d follow-up(s) left out: their record has one on its way", len(doubled))
        return [t for t in tasks if t.key not in doubled]

    # writing --------------------------------------------------------------------------------
    def _flight(self, summary: RunSummary, now: datetime, open_batches: int = MAX_OPEN) -> Flight:
        """Writes of one run phase, through the adapter's pool: each task key is marked
        `pending` just before its request leaves; if a request fails as a whole (or its
        answer is not one result per item, in order: `boundary`), what the others
        acknowledged is recorded before the error ends the run (`_landed`)."""
        senders = Senders(
            functools.partial(boundary.write_updates, self.adapter),
            functools.partial(boundary.create_tasks, self.adapter),
            lambda tasks: self.store.mark_tasks_pending(self.instance, self._run_id, tasks),
            self._tasks_refused,
        )
        # One request at a time: nothing to overlap, so each batch ends before the next one
        # is decided (a stop or an error lands where it did before concurrency).
        waiting = open_batches if self.traffic.limits.in_flight > 1 else 0

        def landed(batches: Sequence[Outgoing]) -> None:
            self._landed(batches, now, summary)

        return Flight(self.traffic, senders, landed, max_open=waiting)

    def _tasks_refused(self, tasks: Sequence[PlannedTask], error: ConfigError) -> None:
        """A create refused as a whole for our configuration created none of its tasks: owed
        again, not an attempt of theirs, so the run after the fix (`setup`) creates them at its
        start; left `pending`, they would wait `sync.lookup_delay_seconds` to be looked up."""
        failed = [(task.key, redact(str(error))) for task in tasks]
        self.store.mark_tasks_owed(self.instance, failed, attempt=False)

    def _landed(self, batches: Sequence[Outgoing], now: datetime, summary: RunSummary) -> None:
        """The answers that came back for batches a failure left open, acknowledged as a
        complete batch's are: values on the mirror (else the next run, which knows those
        versions as our own and need not read them, would decide from the old ones), audit
        trail, counts, task results, hot episodes (a follow-up still owed keys its episode).
        The unanswered stay intents, or pending tasks, for the next run to settle; no cursor
        moves, and the batches' records are due again until their decisions land whole
        (and keep their retries: the batches' own per-record errors are not at hand here)."""
        for out in batches:
            decided = out.decided if isinstance(out, _Planned) else []
            due = [(key, since, None) for key, since, _ in decided]
            self._acknowledge_apart(_answered(out), now, summary, due)
        self._unacked.clear()

    def _write(
        self,
        report: BatchReport,
        answers: Sequence[Answer[WriteResult] | None],
        counts: Counter[str],
        problems: _Problems,
    ) -> tuple[list[AckedWrite], list[tuple[RecordUpdate, str]]]:
        """The batch's field updates as answered: what was acknowledged, and each update's
        outcome for the audit trail (recorded by the caller, with the rest of the batch)."""
        outcomes = []
        acked = []
        for update, answer in zip(report.updates, answers, strict=True):
            assert answer is not None, "a batch is acknowledged only once fully answered"
            result = answer.result
            outcomes.append((update, WRITE_ACKED if result.ok else WRITE_FAILED))
            key = update.key
            if result.ok:
                report.written.append(update)
                acked.append(AckedWrite(update, answer.sent_at, answer.acked_at, result.stamp))
                if key in self._not_landed:  # the mirror holds these now
                    for name in update.values():
                        self._not_landed[key].pop(name, None)
                continue
            if result.gone:
                problems.gone.append(key)
                continue
            self._not_landed.setdefault(key, {}).update(update.values())
            if key in self._errored:  # reported with its first refusal in this run
                continue
            self._errored.add(key)
            label = f"{update.object_type}/{update.contact_id}"
            where = result.field or "write"
            report.errors.append(str(RecordError(label, where, result.error or "write failed")))
            counts["write_errors"] += 1
            problems.add(key, result.retryable, result.field, result.error or "write failed")
        counts["records_written"] += len(report.written)
        counts["fields_written"] += sum(len(u.changes) for u in report.written)
        _count_moves(counts, report.written, "moved")
        return acked, outcomes

    def _create_owed(self, tasks: list[PlannedTask], summary: RunSummary, now: datetime) -> None:
        """Owed tasks left by earlier runs, created before anything new is planned."""
        flight = self._flight(summary, now)
        try:
            self._send_apart(flight, [], self._without_gone(tasks, summary), summary, now)
            flight.drain()
        except BaseException:
            flight.abandon()
            raise

    def _without_gone(self, tasks: list[PlannedTask], summary: RunSummary) -> list[PlannedTask]:
        """Owed tasks about to leave, but escalations of follow-ups no longer in the CRM."""
        return without_gone_follow_ups(
            tasks, self.adapter, self.store, self.instance, summary.counts
        )

    def _task_call(self) -> int | None:
        """The most tasks one call takes: a bulk call's, else a request's (None: the adapter
        cuts each batch's tasks itself)."""
        limits = self.traffic.limits
        return limits.bulk_batch if limits.bulk_from else limits.task_batch

    def _release_held_tasks(
        self, flight: Flight, summary: RunSummary, now: datetime, *, rest: bool
    ) -> None:
        """Held tasks that fill a call leave, read back from the ledger (one created or sent
        meanwhile is not); `rest`: the phase's end, the remainder too, unless the run is
        stopping (they stay owed: the next run's start creates them). With a bulk API they
        leave only at the end: 10,000 tasks would take the flight's whole memory bound from
        the updates gathering beside them."""
        held, size = self._held_tasks, self._task_call()
        if held is None or size is None or (self.traffic.limits.bulk_from and not rest):
            return
        if rest and held and self.stop.is_set():
            log.info("stop requested: %d planned task(s) stay owed for the next run", len(held))
            return
        while len(held) >= size or (rest and held):
            keys = list(islice(held, size))
            for key in keys:
                del held[key]
            still_owed = self.store.owed_tasks(self.instance, keys)
            owed = self._without_gone(still_owed, summary)
            # planned in this run: one found gone is not counted planned (as in a dry run)
            summary.counts["tasks_planned"] -= len(still_owed) - len(owed)
            if owed:
                self._send_apart(flight, [], owed, summary, now)
            if rest:  # one bulk call's tasks in memory at a time
                flight.drain()

    def _release_held_updates(
        self, flight: Flight, summary: RunSummary, now: datetime, *, rest: bool
    ) -> None:
        """Held updates leave once one object's fill a bulk call, read back from the audit
        trail; the flight's bound keeps one call in memory while the phase goes on. `rest`:
        the phase's end, the remainders too, several objects' in one call where they fit
        (`bulk_calls`), one call at a time; unless the run is stopping: they stay intended,
        and the next run reads their records again to settle them, as after a crash."""
        held, limits = self._held_updates, self.traffic.limits
        if not held or not limits.bulk_batch:
            return
        if rest and self.stop.is_set():
            log.info("stop requested: %d record(s)' updates stay intended", len(held))
            return
        for call in bulk_calls(held, limits.bulk_batch, limits.bulk_from or 0, rest=rest):
            for key in call:
                del held[key]
            updates = self.store.intended_updates(self._run_id, self.instance, call)
            self._send_apart(flight, updates, [], summary, now, whole=True)
            if rest:
                flight.drain()

    def _send_apart(
        self,
        flight: Flight,
        updates: list[RecordUpdate],
        tasks: list[PlannedTask],
        summary: RunSummary,
        now: datetime,
        *,
        whole: bool = False,
    ) -> None:
        """Updates intended and tasks owed, handed to the flight apart from any batch (`whole`:
        a call packed to leave as one, `Outgoing.whole`), each task key marked `pending` just
        before its request leaves. Once answered, as a batch's: acknowledged values on the
        mirror and in the audit trail, failures retried or needing attention, created tasks
        recorded and joined to their contact in the mirror (an open follow-up its SLA is
        measured on), definite task failures still owed, an unknown outcome left `pending`
        for the next run's look-up."""

        def then(out: Outgoing) -> None:
            self._acknowledge_apart(out, now, summary)

        if updates or tasks:
            flight.add(Outgoing(updates, tasks, then, whole=whole))

    def _acknowledge_apart(
        self,
        out: Outgoing,
        now: datetime,
        summary: RunSummary,
        decided: Sequence[Review] = (),
    ) -> None:
        """Answered writes acknowledged apart from the batch's own `then` (no cursor moves):
        the same mirror, audit trail and counts as a batch's."""
        report, problems = BatchReport(updates=list(out.updates)), _Problems()
        self._acknowledge(out, [], decided, now, summary, report, problems)
        summary.errors.extend(report.errors)
        if self.on_batch:
            self.on_batch(report)

    @staticmethod
    def _task_failed(
        task: PlannedTask, result: TaskResult, report: BatchReport, problems: _Problems
    ) -> None:
        label = f"{task.object_type}/{task.contact_id}"
        where = result.field or f"task {task.kind}"  # a record's two refused tasks told apart
        report.errors.append(str(RecordError(label, where, result.error or "refused")))
        key = (task.object_type, task.contact_id)
        problems.add(key, result.retryable, where, result.error or "refused")

    def _record_problems(
        self,
        batch: list[tuple[str, str]],
        report: BatchReport,
        problems: _Problems,
        now: datetime,
        counts: Counter[str],
    ) -> None:
        """Transient failures are re-read next run; the others need attention; every record
        that went through cleanly leaves both lists, and a record the CRM no longer has
        leaves the mirror and the identity index too (a full read would drop it); the other
        records of its person are due, to be decided without it by the next run."""
        if problems.gone:
            held = self.store.mirror.open_follow_ups(self.instance, problems.gone)
            self.store.to_recheck(self.instance, held)
            left = self.store.mirror.forget(self.instance, problems.gone)
            counts["records_gone"] += left
            # their persons were decided with the gone records' facts: again by the next run
            self.store.mirror.mark_due(
                self.instance, self.people.forget(self.instance, problems.gone)
            )
            self.store.clear_retries(self.instance, problems.gone)
            if left:  # a converted lead is named with its contact at every read of it
                log.info("%d record(s) no longer in the CRM left the mirror", left)
        troubled = {(obj, cid) for obj, cid, _ in problems.retry}
        troubled |= {(obj, cid) for obj, cid, _, _ in problems.attention}
        self.store.add_retries(self.instance, problems.retry)
        fingerprints = {obj: self.described.fingerprint(obj) for obj, *_ in problems.attention}
        self.store.add_attention(
            self.instance, problems.attention, fingerprints, now, problems.versions
        )
        counts["records_needing_attention"] += len(problems.attention)
        troubled |= self._errored  # failed earlier in the run: not cleared by a later batch
        clean = [k for k in batch if k not in troubled]
        self.store.clear_retries(self.instance, clean)


def _count_moves(counts: Counter[str], updates: Sequence[RecordUpdate], tense: str) -> None:
    """Stages and temperatures among `updates`: `moving` when planned, `moved` when the CRM
    acknowledged them (the sync's impact line)."""
    for update in updates:
        fields = {change.field for change in update.changes}
        counts[f"stages_{tense}"] += "stage" in fields
        counts[f"temperatures_{tense}"] += "temperature" in fields


def _anew(task: TaskRecord) -> bool:
    """A hot-lead call a rollback removed, planned again: its key names the start of its
    episode to the minute, and a contact found hot again in that minute (a sync right after
    the rollback, which ended the episode) starts its new episode under the same key."""
    return task.status == TASK_CLOSED and task.kind == "hot_call"


def _answered(out: Outgoing) -> Outgoing:
    """The items of a batch a failure left open that did get their answer."""
    updates = [
        (u, a) for u, a in zip(out.updates, out.update_answers, strict=True) if a is not None
    ]
    tasks = [(t, a) for t, a in zip(out.tasks, out.task_answers, strict=True) if a is not None]
    part = replace(out, updates=[u for u, _ in updates], tasks=[t for t, _ in tasks])
    part.update_answers = [a for _, a in updates]
    part.task_answers = [a for _, a in tasks]
    return part


def _key(contact: Contact) -> tuple[str, str]:
    return (contact.object_type, contact.id)


def _follow_up_of(key: str) -> str:
    """A follow-up's person and kind, else the task key: an owed hot call keys the episode
    a dead run saw begin, and the real run, once it has created it, decides the same episode
    from it; a dry run, which creates nothing, would key a new one."""
    kind = task_kind(key)
    return f"{task_person(key)}:{kind}" if kind else key


def _once(key: tuple[str, str], first: set[tuple[str, str]], reread: set[tuple[str, str]]) -> bool:
    """Whether a record read is new to this run's read phase: one read again by id first
    (`first`) may come with the changed ones too, while its first read is still being decided
    (the read runs ahead), and is then left out; `reread`: those of `first` met so far."""
    if key in reread:
        return False
    if key in first:
        reread.add(key)
    return True


def _chunk_sizes() -> Iterator[int]:
    """`MIRROR_FIRST_CHUNK`, doubling up to `MIRROR_CHUNK`, then `MIRROR_CHUNK` on."""
    size = MIRROR_FIRST_CHUNK
    while size < MIRROR_CHUNK:
        yield size
        size *= 2
    yield from repeat(MIRROR_CHUNK)


__all__ = ["BatchReport", "RunOptions", "RunSummary", "SyncEngine"]
