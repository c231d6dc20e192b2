"""Funnel, conversion, time in stage, scores, hot leads to call and follow-up SLAs.

Two sources, and the report says which one counts what:
- the **audit trail** (default, no API call): every field crm-qualify wrote. It knows the
  contacts crm-qualify changed, and a contact's stage only if crm-qualify wrote it; a contact
  whose stage was already right is counted under "stage not written by crm-qualify". Time in
  stage comes only from here (from the write that moved a contact into a stage to the one
  that moved it out).
- the **CRM** (`report --from-crm`, one full read): every contact's current stage,
  temperature, score and name, including stages set by people or deals, and whether each of
  our follow-up tasks is done. The stage table then shows both columns and why they differ.

Hot leads to call: hot, not yet an opportunity, and no call task done; from the trail, less
the leads the mirror (the CRM as the last run read it) shows cooled or cleared, moved on or
called. Names, company and owner come from the CRM, or from the call task crm-qualify created
(its subject names the person).

Follow-up SLA, measured for real from the CRM as `--from-crm` just read it, else from the
**mirror** (every contact as the last read or our own task creation left it, no API call):
each hot call and MQL hand-off crm-qualify created counts as on time when the CRM shows it
completed by the due time crm-qualify gave it (the task ledger's: the configured
`rules.followup.hot_call_hours` / `mql_sla_hours` as they were at its creation), late when
completed after it, missed when still open past it; one still open before it is pending and
left out of the share. A change of those hours applies to new tasks only: the report says
which SLA each group of tasks had.
The task ledger adds what the mirror cannot know: tasks owed but not in the CRM yet, tasks a
rollback closed (not counted), and escalations.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.decision.planning import (
    ESCALATION,
    KINDS,
    display_name,
    escalated,
    follow_up_due,
    sla_hours,
    task_kind,
)
from crm_qualify.connector.decision.rules import FollowUpRules
from crm_qualify.connector.model import Contact, ExistingTask, PlannedTask, Stage
from crm_qualify.connector.sync import boundary
from crm_qualify.connector.sync.diff import normalise
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.records import translate_batch
from crm_qualify.connector.sync.state import (
    ROLLBACK_MODE,
    TASK_CLOSED,
    TASK_CREATED,
    TASK_GONE,
    TASK_OWED,
    TASK_PENDING,
    RunRecord,
    StateStore,
)

FUNNEL = [Stage.LEAD, Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER]
STAGES = list(Stage)
SLA_NAMES = {"hot_call": "hot lead called", "mql_handoff": "MQL taken over"}
HOT_KEPT = 100
"""Hot leads kept in the report (the longest list a person reads), best first."""
REASONS_SHOWN = 3
NO_STAGE = "stage not written by crm-qualify"

NO_STAGE_CRM = "no stage"
SLA_MEASURE = (
    "A follow-up crm-qualify created is on time when the CRM shows it completed by the due"
    " time crm-qualify gave it at its creation (the configured hours then: a change of them"
    " applies to the tasks created after it, and a due date moved in the CRM does not move"
    " the SLA); completed later it is late, still open past it it is missed; still open"
    " before it it is pending and left out of the share. Task states are as crm-qualify last"
    " read them."
)


@dataclass
class HotLead:
    """A hot lead not yet an opportunity, with what a caller needs."""

    record: str
    name: str | None = None
    company: str | None = None
    owner: str | None = None
    score: float | None = None
    reasons: list[str] = field(default_factory=list)
    waiting_since: datetime | None = None
    """When it turned hot (crm-qualify's write), or its oldest call task still open."""
    call_due: datetime | None = None
    call: str = "no call task yet"

    def waited(self, now: datetime) -> timedelta | None:
        return now - self.waiting_since if self.waiting_since else None

    def as_dict(self, now: datetime) -> dict:
        waited = self.waited(now)
        return {
            **asdict(self),
            "waiting_since": self.waiting_since.isoformat() if self.waiting_since else None,
            "call_due": self.call_due.isoformat() if self.call_due else None,
            "waited_hours": round(waited.total_seconds() / 3600, 1) if waited else None,
        }


@dataclass
class Report:
    instance: str
    generated_at: datetime
    contacts: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    no_stage: int = 0
    """Contacts in `contacts` with no stage in this view (so the stage rows add up)."""
    reached: Counter[str] = field(default_factory=Counter)
    conversions: list[tuple[str, str, float | None]] = field(default_factory=list)
    median_days: dict[str, float | None] = field(default_factory=dict)
    entered: Counter[str] = field(default_factory=Counter)
    """Contacts crm-qualify moved into each stage (the trail), for time-in-stage wording."""
    scores: list[tuple[str, int]] = field(default_factory=list)
    unscored: int = 0
    temperatures: Counter[str] = field(default_factory=Counter)
    no_temperature: int = 0
    sla: dict[str, dict[str, float | int | str | None]] = field(default_factory=dict)
    call_hours: float = field(default_factory=lambda: FollowUpRules().hot_call_hours)
    """The configured hours a hot lead is to be called within (`rules.followup`)."""
    runs: int = 0
    """Syncs that wrote (dry runs left out)."""
    written_gone: int = 0
    """Without the CRM: records crm-qualify wrote that the CRM no longer holds (converted,
    merged away, deleted: the mirror has let them go), left out of every count."""
    rules: str | None = None
    """The rules version the last sync decided with, and since when: `rules_since`."""
    rules_since: str | None = None
    """When a sync first decided with `rules`, and with which version before (the report's
    stages and temperatures mix what both decided until everyone was re-decided)."""
    source: str = "audit trail"
    attention: list[dict] = field(default_factory=list)
    """Records whose last error was not transient (`crm-qualify errors`)."""
    hot: list[HotLead] = field(default_factory=list)
    hot_total: int = 0
    hot_called: int | None = None
    """With the CRM: hot leads whose latest call task is done (not listed)."""
    hot_past_funnel: int = 0
    """With the CRM: hot contacts that are opportunities or customers already."""
    hot_unplaced: int = 0
    """Without the CRM: hot contacts left off the list because the trail cannot tell whether
    they are past the funnel (no stage written, no call task planned)."""
    hot_same_person: int = 0
    """Hot records left off as other records of a listed person (they share its decision;
    the follow-ups go to one record)."""
    hot_changed: int = 0
    """Without the CRM: hot leads as written, left off because the CRM as last read (the
    mirror) says otherwise: a person cooled them or cleared their temperature, moved them on,
    or the call is done."""
    hot_gone: int = 0
    """Without the CRM: hot leads as written that the CRM as last read no longer holds."""
    trail_stages: Counter[str] | None = None
    """With the CRM: the stages as crm-qualify last wrote them, for the side-by-side column."""
    trail_no_stage: int = 0
    reconciliation: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    """Which source counts what, and why two views differ: read before the numbers."""

    def as_dict(self) -> dict:
        return {
            "instance": self.instance,
            "generated_at": self.generated_at.isoformat(),
            "contacts": self.contacts,
            "runs": self.runs,
            "written_gone": self.written_gone,
            "rules_version": self.rules,
            "rules_since": self.rules_since,
            "source": self.source,
            "notes": self.notes,
            "stages": dict(self.stages),
            "no_stage": self.no_stage,
            "stages_from_audit_trail": (
                dict(self.trail_stages) if self.trail_stages is not None else None
            ),
            "reconciliation": self.reconciliation,
            "reached": dict(self.reached),
            "conversions": [{"from": a, "to": b, "rate": rate} for a, b, rate in self.conversions],
            "median_days_in_stage": self.median_days,
            "median_days_explained": {s: median_note(self, s) for s in self.median_days},
            "score_distribution": dict(self.scores),
            "unscored": self.unscored,
            "temperatures": dict(self.temperatures),
            "no_temperature": self.no_temperature,
            "follow_up_sla": self.sla,
            "follow_up_sla_measure": SLA_MEASURE,
            "hot_leads_to_call": [lead.as_dict(self.generated_at) for lead in self.hot],
            "hot_leads_total": self.hot_total,
            "hot_leads_called": self.hot_called,
            "hot_past_funnel": self.hot_past_funnel,
            "hot_not_placed": self.hot_unplaced,
            "hot_changed_since_written": self.hot_changed,
            "hot_no_longer_in_crm": self.hot_gone,
            "hot_other_records_of_a_person": self.hot_same_person,
            "records_needing_attention": self.attention,
        }


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _name_of(contact: Contact) -> str | None:
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    return name or contact.email


def _reason_lines(value: object) -> list[str]:
    text = "" if value is None else str(value)
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


@dataclass
class CrmSnapshot:
    """Every contact's current stage, temperature and score, and the hot leads with their
    names and call tasks, as the CRM holds them now."""

    keys: set[tuple[str, str]] = field(default_factory=set)
    stages: dict[tuple[str, str], str] = field(default_factory=dict)
    temperatures: dict[tuple[str, str], str] = field(default_factory=dict)
    scores: dict[tuple[str, str], float] = field(default_factory=dict)
    hot: dict[tuple[str, str], HotLead] = field(default_factory=dict)
    hot_called: set[tuple[str, str]] = field(default_factory=set)
    hot_past_funnel: int = 0
    """Hot contacts that are opportunities or customers already (not to call as leads)."""
    open_call_due: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """The due time of each hot lead's oldest call task still open."""
    follow_ups: list[Contact] = field(default_factory=list)
    """The contacts read with one of our follow-ups, with only their tasks: the SLA is
    measured on this read, not on the mirror (completions a person made since the last run)."""

    def add(self, contacts: Iterable[Contact]) -> None:
        for contact in contacts:
            key = (contact.object_type, contact.id)
            self.keys.add(key)
            ours = [task for task in contact.tasks if task_kind(task.key)]
            if ours:
                self.follow_ups.append(
                    Contact(id=contact.id, object_type=contact.object_type, tasks=ours)
                )
            if contact.stage is not None:
                self.stages[key] = contact.stage.value
            if contact.owned.get("temperature"):
                self.temperatures[key] = str(contact.owned["temperature"])
            score = normalise(contact.owned.get("score"))
            if isinstance(score, float):
                self.scores[key] = score
            if self.temperatures.get(key) != "hot":
                continue
            # a custom stage reads as none: the highest stage we wrote still tells a customer
            if _in_funnel(self.stages.get(key)) and _in_funnel(contact.owned.get("highest_stage")):
                self._hot(key, contact, score if isinstance(score, float) else None)
            else:
                self.hot_past_funnel += 1

    def _hot(self, key: tuple[str, str], contact: Contact, score: float | None) -> None:
        calls = _calls(contact)
        if calls and calls[-1].completed:
            self.hot_called.add(key)
            return
        open_calls = [t for t in calls if not t.completed and t.due]
        lead = HotLead(
            record=contact.label,
            name=_name_of(contact),
            company=contact.company,
            owner=contact.owner_id,
            score=score,
            reasons=_reason_lines(contact.owned.get("reasons"))[:REASONS_SHOWN],
        )
        if open_calls:
            self.open_call_due[key] = open_calls[0].due  # type: ignore[assignment]
            lead.call_due = open_calls[-1].due
            lead.call = "call task open in the CRM"
        self.hot[key] = lead


def _in_funnel(stage: str | None) -> bool:
    return stage not in {s.value for s in STAGES if s.rank >= Stage.OPPORTUNITY.rank}


def crm_snapshot(
    adapter: Adapter, now: datetime, progress: Callable[[int], None] | None = None
) -> CrmSnapshot:
    """One full read of the CRM (it costs what a full sync's reads cost); `progress` is told
    how many contacts each batch brought."""
    snapshot = CrmSnapshot()
    for batch in boundary.read_changed(adapter, None, until=now):
        contacts = translate_batch(batch)[0]
        snapshot.add(contacts)
        if progress:
            progress(len(contacts))
    return snapshot


def _keep(values: dict, key: tuple[str, str], value: object) -> None:
    """The latest written value; a write back to empty (a rollback) forgets the contact."""
    if value is None:
        values.pop(key, None)
    else:
        values[key] = value


_CALL_SUBJECT = re.compile(r"^Call hot lead (?P<who>.+?) within [\d.]+ h$")
_HANDOFF_SUBJECT = re.compile(r"^New \w+: take over (?P<who>.+)$")
_WHO_COMPANY = re.compile(r"^(?P<name>.+?) \((?P<company>.+)\)$")
"""A company keeps its own brackets ("Acme (UK) Ltd"): they are commoner than a name's."""


def who_from_subject(subject: str, record: str) -> tuple[str | None, str | None]:
    """(name, company) from the subject of a task crm-qualify created: the task ledger is
    where the audit trail keeps how a person is called."""
    match = _CALL_SUBJECT.match(subject) or _HANDOFF_SUBJECT.match(subject)
    if not match:
        return None, None
    who = match["who"]
    company = None
    split = _WHO_COMPANY.match(who)
    if split:
        who, company = split["name"], split["company"]
    return (None if who == record else who), company


@dataclass
class _Trail:
    """What the audit trail says, per contact (latest values) and per stage (durations)."""

    stage: dict[tuple[str, str], str] = field(default_factory=dict)
    highest: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, list[float]] = field(default_factory=lambda: {s.value: [] for s in Stage})
    entered: Counter[str] = field(default_factory=Counter)
    score: dict[tuple[str, str], float] = field(default_factory=dict)
    temperature: dict[tuple[str, str], str] = field(default_factory=dict)
    hot_since: dict[tuple[str, str], datetime] = field(default_factory=dict)
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)


def _read_trail(store: StateStore, instance: str) -> _Trail:
    trail = _Trail()
    entered_at: dict[tuple[str, str], datetime] = {}
    stages = set(Stage)
    for write in store.writes(instance, ["stage", "score", "temperature", "reasons"]):
        key = (write.object_type, write.contact_id)
        if write.field == "score":
            _keep(trail.score, key, None if write.new in (None, "") else float(write.new))
        elif write.field == "reasons":
            _keep(trail.reasons, key, str(write.new) if write.new else None)
        elif write.field == "temperature":
            _keep(trail.temperature, key, str(write.new) if write.new else None)
            if write.new == "hot":
                trail.hot_since.setdefault(key, _time(write.at))
            else:
                trail.hot_since.pop(key, None)
        elif write.field == "stage" and write.new in stages:
            at = _time(write.at)
            if key in entered_at and key in trail.stage:
                trail.durations[trail.stage[key]].append(
                    (at - entered_at[key]).total_seconds() / 86_400
                )
            trail.stage[key], entered_at[key] = write.new, at
            trail.entered[write.new] += 1
            ranks = [Stage(write.new).rank]
            if write.old in stages:
                ranks.append(Stage(write.old).rank)
            trail.highest[key] = max(trail.highest.get(key, 0), *ranks)
    return trail


def build_report(
    store: StateStore,
    instance: str,
    now: datetime | None = None,
    crm: CrmSnapshot | None = None,
    followup: FollowUpRules | None = None,
) -> Report:
    """The report from the audit trail, or with `crm` from the CRM's current values (time in
    stage still comes from the trail, the follow-up SLA from the mirror). `followup`: the
    configured follow-up rules (`rules.followup`) the SLA is measured against."""
    now = now or datetime.now(UTC)
    followup = followup or FollowUpRules()
    runs = [run for run in store.runs(instance, limit=1_000_000) if not run.dry_run]
    rolled_back = {run.mode.removeprefix(ROLLBACK_MODE) for run in runs if _is_rollback(run)}
    syncs = [run for run in runs if not _is_rollback(run)]
    report = Report(instance, now, runs=len(syncs))
    report.rules, report.rules_since = _rules_versions(syncs, rolled_back)
    report.call_hours = followup.hot_call_hours
    report.attention = [record.__dict__ for record in store.attention(instance)]
    trail = _read_trail(store, instance)
    stage, score, temperature = trail.stage, trail.score, trail.temperature
    highest = dict(trail.highest)
    keys = set(stage) | set(score) | set(temperature)
    if crm is None:
        keys, report.written_gone = _still_in_crm(store, instance, keys)
        stage, score, temperature, highest = (
            {k: v for k, v in values.items() if k in keys}
            for values in (stage, score, temperature, highest)
        )
    if crm is not None:
        report.source = "CRM (current values) and audit trail (time in stage, follow-ups)"
        report.trail_stages = Counter(stage.values())
        report.trail_no_stage = len(keys - set(stage))
        report.reconciliation = _reconcile(stage, crm)
        stage, score, temperature = crm.stages, crm.scores, crm.temperatures
        keys = set(crm.keys) | set(stage) | set(score) | set(temperature)
        for key, value in stage.items():
            highest[key] = max(highest.get(key, 0), Stage(value).rank)
    report.contacts = len(keys)
    report.stages = Counter(stage.values())
    report.no_stage = len(keys - set(stage))
    report.entered = trail.entered
    for rank in highest.values():
        for s in FUNNEL:
            if rank >= s.rank:
                report.reached[s.value] += 1
    for before, after in zip(FUNNEL, FUNNEL[1:], strict=False):
        base = report.reached[before.value]
        report.conversions.append(
            (
                before.value,
                after.value,
                round(report.reached[after.value] / base, 3) if base else None,
            )
        )
    report.median_days = {
        name: round(statistics.median(values), 1) if values else None
        for name, values in trail.durations.items()
    }
    buckets = Counter(min(int(value // 10), 9) for value in score.values())
    report.scores = [(f"{b * 10}-{b * 10 + 9 if b < 9 else 100}", buckets[b]) for b in range(10)]
    report.unscored = len(keys - set(score))
    report.temperatures = Counter(temperature.values())
    report.no_temperature = len(keys - set(temperature))
    report.sla = _sla(store, instance, now, followup, crm)
    if crm is None:
        ledger = _ledger(store, instance)
        carried = _carried(store, instance, trail)
        written = _hot_from_trail(trail, ledger, carried, followup.hot_call_hours)
        report.hot_unplaced = sum(1 for v in trail.temperature.values() if v == "hot")
        report.hot_unplaced -= len(written)
        hot, report.hot_gone = _still_hot_as_last_read(store, instance, written)
        report.hot_changed = len(written) - len(hot) - report.hot_gone
    else:
        hot = _hot_from_crm(crm, trail, followup.hot_call_hours)
        report.hot_called = len(crm.hot_called)
        report.hot_past_funnel = crm.hot_past_funnel
    listed = len(hot)
    hot = _one_per_person(store, instance, hot)
    report.hot_same_person = listed - len(hot)
    hot.sort(key=lambda lead: (-(lead.score or 0), lead.waiting_since or now, lead.record))
    report.hot_total, report.hot = len(hot), hot[:HOT_KEPT]
    report.notes = _notes(report, crm is not None)
    return report


def _still_in_crm(
    store: StateStore, instance: str, written: set[tuple[str, str]]
) -> tuple[set[tuple[str, str]], int]:
    """The records crm-qualify wrote that the CRM still holds as the mirror (the last read)
    knows it, and how many it no longer holds: a lead converted into a contact, a record
    merged into another or deleted would count twice, or for someone who is gone. A state
    file without a mirror keeps them all."""
    mirrored = store.mirror.keys(instance)
    if not mirrored:
        return written, 0
    kept = written & mirrored
    return kept, len(written) - len(kept)


def _reconcile(trail_stage: dict[tuple[str, str], str], crm: CrmSnapshot) -> dict[str, int]:
    """Why the CRM's stage counts differ from what crm-qualify wrote, contact by contact."""
    agree = changed = gone = 0
    for key, value in trail_stage.items():
        if key not in crm.keys:
            gone += 1
        elif crm.stages.get(key) == value:
            agree += 1
        else:
            changed += 1
    return {
        "same_as_written": agree,
        "changed_since_written": changed,
        "written_but_not_in_crm": gone,
        "in_crm_never_written": len(set(crm.stages) - set(trail_stage)),
    }


def _notes(report: Report, with_crm: bool) -> list[str]:
    if not with_crm:
        gone = (
            f" {plural(report.written_gone, 'record')} it wrote the CRM no longer holds"
            " (a lead converted into a contact, merged into another record or deleted, as the"
            " last read found) are left out."
            if report.written_gone
            else ""
        )
        return [
            "Counted from the audit trail: the contacts crm-qualify changed. A contact's stage"
            " is known here only if crm-qualify wrote it; "
            f"{plural(report.no_stage, 'contact')} whose stage was already right are under"
            f" '{NO_STAGE}'.{gone} `report --from-crm` counts every contact in the CRM instead.",
        ]
    rec = report.reconciliation or {}
    notes = [
        f"Counted from the CRM: all {report.contacts} contacts and their current stage,"
        " including stages set by people, deals or before crm-qualify ran. The audit-trail"
        " column counts only the stages crm-qualify itself wrote.",
        f"Of the stages crm-qualify wrote, {rec.get('same_as_written', 0)} still hold,"
        f" {rec.get('changed_since_written', 0)} were changed since (a person or a deal moved"
        f" the contact), and {rec.get('written_but_not_in_crm', 0)} belong to contacts no"
        " longer in the CRM (deleted or merged);"
        f" {rec.get('in_crm_never_written', 0)} contacts have a stage crm-qualify never wrote.",
    ]
    return notes


@dataclass
class _Ledger:
    """Our follow-up tasks not closed by a rollback, from the task ledger."""

    by_record: dict[tuple[str, str], list[PlannedTask]] = field(default_factory=dict)
    """By the record each was planned for."""
    by_key: dict[str, PlannedTask] = field(default_factory=dict)

    def of(self, record: tuple[str, str], carried: Iterable[str]) -> list[PlannedTask]:
        """The record's follow-ups, earliest due first: those planned for it, and those it
        carries as the CRM was last read (`carried`: their keys). A merge in the CRM moves
        every task onto the merged record, where the engine finds the person's follow-ups."""
        tasks = {task.key: task for task in self.by_record.get(record, [])}
        tasks.update((key, self.by_key[key]) for key in carried if key in self.by_key)
        return sorted(tasks.values(), key=lambda t: t.due)


def _ledger(store: StateStore, instance: str) -> _Ledger:
    ledger = _Ledger()
    for status in (TASK_CREATED, TASK_OWED, TASK_PENDING):
        for task in store.tasks_in(instance, status):
            ledger.by_record.setdefault((task.object_type, task.contact_id), []).append(task)
            ledger.by_key[task.key] = task
    return ledger


def _carried(store: StateStore, instance: str, trail: _Trail) -> dict[tuple[str, str], list[str]]:
    """The keys of our tasks each record the trail wrote hot carries in the mirror (the CRM
    as the last run read it, with the tasks it created since)."""
    hot = [key for key, heat in trail.temperature.items() if heat == "hot"]
    return {
        key: [task.key for task in entry.contact.tasks if task.key]
        for key, entry in store.mirror.by_keys(instance, hot).items()
    }


def _hot_from_trail(
    trail: _Trail,
    ledger: _Ledger,
    carried: Mapping[tuple[str, str], list[str]],
    call_hours: float,
) -> list[HotLead]:
    """Hot contacts the trail places in the funnel: a stage crm-qualify wrote before
    opportunity, or a call task it planned that the record holds (it plans none past the
    funnel). A hot contact with neither is probably an opportunity already: the trail cannot
    tell, `--from-crm` can."""
    hot = []
    for key, heat in trail.temperature.items():
        if heat != "hot":
            continue
        tasks = ledger.of(key, carried.get(key, []))
        calls = [t for t in tasks if t.kind == "hot_call"]
        known = trail.stage.get(key)
        if not _in_funnel(known) or (known is None and not calls):
            continue
        record = f"{key[0]}/{key[1]}"
        lead = HotLead(record=record, score=trail.score.get(key))
        lead.reasons = _reason_lines(trail.reasons.get(key))[:REASONS_SHOWN]
        lead.waiting_since = trail.hot_since.get(key)
        for task in tasks:
            name, company = who_from_subject(task.subject, record)
            lead.name = lead.name or name
            lead.company = lead.company or company
            lead.owner = lead.owner or task.owner_id
            if not lead.reasons:
                lead.reasons = _reason_lines(task.body)[:REASONS_SHOWN]
        if calls:
            lead.call_due = calls[-1].due
            lead.call = "call task created"
            if lead.waiting_since is None:
                lead.waiting_since = calls[0].due - timedelta(hours=call_hours)
        hot.append(lead)
    return hot


def _still_hot_as_last_read(
    store: StateStore, instance: str, leads: list[HotLead]
) -> tuple[list[HotLead], int]:
    """The hot leads as crm-qualify wrote them, less those the mirror (the CRM as the last
    run read it, no API call) shows otherwise: a temperature a person changed since, a stage
    past the funnel, or the latest call task done; and less those it no longer holds (deleted
    or merged away), counted apart. A state file from before the mirror keeps them all."""
    keys = _keys_of(leads)
    mirrored = store.mirror.by_keys(instance, keys)
    mirror_kept = bool(mirrored) or store.mirror.count(instance) > 0
    kept, gone = [], 0
    for lead, key in zip(leads, keys, strict=True):
        entry = mirrored.get(key)
        if entry is None:
            if mirror_kept:
                gone += 1
            else:
                kept.append(lead)
        elif not _moved_on(entry.contact):
            _as_last_read(lead, entry.contact)
            kept.append(lead)
    return kept, gone


def _as_last_read(lead: HotLead, contact: Contact) -> None:
    """The name, company and owner the CRM held at the last read, over those our call task
    kept from its creation: a person renamed or reassigned since shows so, and a record a
    merge made shows its own owner (as `--from-crm` does). A record read with neither name
    nor email keeps the subject's name, one read without an owner the task's."""
    name = display_name(contact)
    if name != contact.label:
        lead.name, lead.company = name, contact.company
    lead.owner = contact.owner_id or lead.owner


def _keys_of(leads: list[HotLead]) -> list[tuple[str, str]]:
    """(object_type, id) of each lead's record (`HotLead.record` is `type/id`)."""
    return [
        (kind, record_id) for kind, _, record_id in (lead.record.partition("/") for lead in leads)
    ]


def _moved_on(contact: Contact) -> bool:
    """Whether a lead the trail wrote hot is no longer one to call, as the CRM was last read.
    The mirror holds our acknowledged writes, so a temperature other than hot, or none (an
    empty field is left out of `owned`), was set since by someone else: a cleared one is a
    person's value too, kept under `unless_edited`, and the engine plans no call for it."""
    if str(contact.owned.get("temperature")) != "hot":
        return True
    if contact.stage is not None and not _in_funnel(contact.stage.value):
        return True
    calls = _calls(contact)
    return bool(calls) and calls[-1].completed


def _calls(contact: Contact) -> list[ExistingTask]:
    """Our call tasks on the contact, the latest due last."""
    return sorted(
        (t for t in contact.tasks if task_kind(t.key) == "hot_call"),
        key=lambda t: t.due or datetime.min.replace(tzinfo=UTC),
    )


def _one_per_person(store: StateStore, instance: str, leads: list[HotLead]) -> list[HotLead]:
    """One lead per person (the identity index's): the record with our call task, else the
    survivor, which the follow-ups go to; the person's other records share its decision, hot
    too, but are never called apart."""
    keys = _keys_of(leads)
    persons = People(store).stored(instance, keys)
    best: dict[str, tuple[tuple[bool, bool], HotLead]] = {}
    for lead, key in zip(leads, keys, strict=True):
        person = persons.get(key)
        name = person.key if person is not None else lead.record
        rank = (lead.call_due is not None, person is None or person.survivor == key)
        if name not in best or rank > best[name][0]:
            best[name] = (rank, lead)
    return [lead for _, lead in best.values()]


def _hot_from_crm(crm: CrmSnapshot, trail: _Trail, call_hours: float) -> list[HotLead]:
    hot = []
    for key, lead in crm.hot.items():
        since = trail.hot_since.get(key)
        if key in crm.open_call_due:
            lead.call_due = crm.open_call_due[key]
            opened = lead.call_due - timedelta(hours=call_hours)
            since = max(since, opened) if since else opened
        lead.waiting_since = since
        if not lead.reasons:
            lead.reasons = _reason_lines(trail.reasons.get(key))[:REASONS_SHOWN]
        hot.append(lead)
    return hot


def follow_up_sla(
    contacts: Iterable[Contact],
    followup: FollowUpRules,
    now: datetime,
    *,
    ignore: Container[str] = (),
    dues: Mapping[str, datetime] | None = None,
) -> dict[str, dict]:
    """Per follow-up kind, how crm-qualify's tasks on these contacts met their SLA, each
    judged on its own due time (`task_deadline`): a change of `rules.followup` hours applies
    to the tasks created after it, not to those already given theirs.

    - `on_time`: completed by it; `late`: completed after it;
    - `missed`: still open past it; `pending`: still open before it (not counted yet);
    - `unmeasured`: no due time to judge by, or completed with no completion time (not
      counted);
    - `on_time_rate`: on_time / (on_time + late + missed), None while none is measured;
    - `target_hours`: the configured hours, the SLA of the tasks created from now on;
    - `by_sla`: the same counts per SLA the tasks were given (`sla_of`), with when they were
      created, oldest first.

    `dues`: the due time crm-qualify gave each task (the task ledger's), by key. Tasks whose
    key is in `ignore` (closed by a rollback) are left out. Pure: no I/O."""
    dues = dues or {}
    rows: dict[str, dict] = {}
    spans: dict[str, list[float]] = {kind: [] for kind in KINDS}
    deadlines: dict[str, list[datetime]] = {kind: [] for kind in KINDS}
    groups: dict[str, dict[float | None, dict]] = {kind: {} for kind in KINDS}
    for kind in KINDS:
        rows[kind] = {
            "target_hours": sla_hours(kind, followup),
            "tasks": 0,
            "on_time": 0,
            "late": 0,
            "missed": 0,
            "pending": 0,
            "unmeasured": 0,
        }
    seen: set[str] = set()
    for contact in contacts:
        for task in contact.tasks:
            kind = task_kind(task.key)
            if kind is None or task.key in ignore or task.key in seen:
                continue
            seen.add(task.key)  # type: ignore[arg-type]
            row = rows[kind]
            row["tasks"] += 1
            deadline = task_deadline(task, followup, dues)
            done_at = task.completed_at
            if deadline is None or (not task.is_open and done_at is None):
                row["unmeasured"] += 1
                continue
            if done_at is not None:
                outcome = "on_time" if done_at <= deadline else "late"
                if task.created_at is not None:
                    spans[kind].append((done_at - task.created_at).total_seconds() / 3600)
            elif now > deadline:
                outcome = "missed"
            else:
                outcome = "pending"
                deadlines[kind].append(deadline)
            row[outcome] += 1
            _count_in_group(groups[kind], task, deadline, row["target_hours"], outcome)
    for kind, row in rows.items():
        measured = row["on_time"] + row["late"] + row["missed"]
        row["measured"] = measured
        row["on_time_rate"] = round(row["on_time"] / measured, 3) if measured else None
        done = spans[kind]
        row["median_hours_to_done"] = round(statistics.median(done), 1) if done else None
        row["next_deadline"] = min(deadlines[kind]).isoformat() if deadlines[kind] else None
        row["by_sla"] = _by_sla(groups[kind])
    return rows


def task_deadline(
    task: ExistingTask, followup: FollowUpRules, dues: Mapping[str, datetime]
) -> datetime | None:
    """When a follow-up of ours was due: the due time crm-qualify gave it when it created it
    (`dues`, the task ledger's: a due date a person moves in the CRM does not move the SLA),
    else the CRM's (`follow_up_due`: a ledger rebuilt from the CRM keeps none), else the
    configured hours after its creation."""
    return dues.get(task.key or "") or follow_up_due(task, followup)


def sla_of(deadline: datetime, created: datetime | None, configured: float) -> float | None:
    """The SLA a task was given, in hours from its creation in the CRM to its due time: the
    configured hours when within half an hour of them (a run creates its tasks some minutes
    after it set their due times), else whole hours (tenths under 2 h), 0 for a task the CRM
    got only at or after its due time (a creation that failed, retried by a later run). None
    when its creation time is not known (created by the engine, not read back yet)."""
    if created is None:
        return None
    hours = (deadline - created).total_seconds() / 3600
    if abs(hours - configured) < 0.5:
        return configured
    return max(round(hours) if hours >= 2 else round(hours, 1), 0)


def _count_in_group(
    groups: dict[float | None, dict],
    task: ExistingTask,
    deadline: datetime,
    configured: float,
    outcome: str,
) -> None:
    hours = sla_of(deadline, task.created_at, configured)
    group = groups.setdefault(
        hours,
        {"hours": hours, "tasks": 0, "on_time": 0, "late": 0, "missed": 0, "pending": 0,
         "first_created": None, "last_created": None},
    )  # fmt: skip
    group["tasks"] += 1
    group[outcome] += 1
    created = task.created_at
    if created is not None:
        first, last = group["first_created"], group["last_created"]
        group["first_created"] = min(first, created) if first else created
        group["last_created"] = max(last, created) if last else created


def _by_sla(groups: dict[float | None, dict]) -> list[dict]:
    """The groups oldest first (those with no creation time last), times as ISO text."""
    latest = datetime.max.replace(tzinfo=UTC)
    ordered = sorted(groups.values(), key=lambda g: g["first_created"] or latest)
    return [
        {
            **group,
            "first_created": _iso(group["first_created"]),
            "last_created": _iso(group["last_created"]),
        }
        for group in ordered
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _sla(
    store: StateStore,
    instance: str,
    now: datetime,
    followup: FollowUpRules,
    crm: CrmSnapshot | None = None,
) -> dict[str, dict]:
    """`follow_up_sla` over the CRM as just read (`crm`), else the mirror, with what only
    the task ledger knows: tasks owed (not in the CRM yet), closed by a rollback or deleted in
    the CRM (not counted), escalated."""
    ledger = store.all_tasks(instance)
    closed = {t.key for t in ledger if t.status in (TASK_CLOSED, TASK_GONE)}
    contacts: Iterable[Contact] = (
        crm.follow_ups
        if crm is not None
        else (c for chunk in store.mirrored_contacts(instance) for c in chunk)
    )
    dues = {t.key: _time(t.due) for t in ledger if t.due}
    result = follow_up_sla(contacts, followup, now, ignore=closed, dues=dues)
    escalations = Counter(
        task_kind(escalated(t.key))
        for t in ledger
        if t.kind == ESCALATION and t.status not in (TASK_CLOSED, TASK_GONE)
    )
    for kind, row in result.items():
        planned = [t for t in ledger if t.kind == kind]
        row["escalated"] = escalations[kind]
        row["not_yet_in_crm"] = sum(1 for t in planned if t.status in (TASK_OWED, TASK_PENDING))
        row["removed_by_us"] = sum(1 for t in planned if t.status == TASK_CLOSED)
        row["deleted_in_crm"] = sum(1 for t in planned if t.status == TASK_GONE)
    return result


# wording shared by the text and HTML forms -------------------------------------------------


def median_note(report: Report, stage: str) -> str:
    """A median in days, or what is missing for one."""
    days = report.median_days.get(stage)
    if days is not None:
        return f"{days:.1f}"
    if stage == Stage.CUSTOMER.value:
        return "final stage: not measured"
    if not report.entered[stage]:
        return "no contact has entered this stage yet"
    return "no contact has left this stage yet"


def conversion_note(report: Report, before: str, rate: float | None) -> str:
    return f"{rate:.0%}" if rate is not None else f"no contact has reached {before} yet"


def sla_headline(row: dict) -> str:
    """`83% on time`, or why there is no rate yet."""
    rate = row["on_time_rate"]
    if rate is not None:
        return f"{rate:.0%} on time"
    if row["pending"]:
        return "none due yet"
    if row["tasks"]:
        return "not measurable"
    return "no task created yet"


def _own_hours(row: dict) -> list[float]:
    """The SLAs (hours) the row's tasks were given, oldest first."""
    return [g["hours"] for g in row.get("by_sla", []) if g["hours"] is not None]


def sla_within(row: dict) -> str:
    """`within 48 h`, and the hours new tasks get when the row's tasks had another SLA."""
    target = row["target_hours"]
    own = set(_own_hours(row))
    if not own or own == {target}:
        return f"within {target:g} h"
    judged = f"{own.pop():g} h" if len(own) == 1 else "their own SLA"
    return f"within {judged}; new tasks get {target:g} h"


def _sla_group(group: dict) -> str:
    """`48 h for the 20 created 2026-11-20 to 2026-12-04: 8 of 12`."""
    first, last = group["first_created"], group["last_created"]
    if group["hours"] is None:
        head = f"{group['tasks']} not read back from the CRM yet"
    else:
        span = f"{_time(first):%Y-%m-%d}"
        if f"{_time(last):%Y-%m-%d}" != span:
            span += f" to {_time(last):%Y-%m-%d}"
        hours = f"{group['hours']:g} h" if group["hours"] else "no time"
        head = f"{hours} for the {group['tasks']} created {span}"
        if not group["hours"]:
            head += " (in the CRM only at or after their due time)"
    measured = group["on_time"] + group["late"] + group["missed"]
    return f"{head}: " + (f"{group['on_time']} of {measured}" if measured else "none due yet")


def sla_detail(row: dict) -> str:
    """What the SLA number counts, in one sentence."""
    own = set(_own_hours(row))
    mixed = len(own) > 1
    hours = "their due time" if mixed else f"{own.pop() if own else row['target_hours']:g} h"
    if row["measured"]:
        if mixed:
            groups = "; ".join(_sla_group(g) for g in row["by_sla"])
            text = f"{row['on_time']} of {row['measured']} done within their SLA ({groups})"
        else:
            text = f"{row['on_time']} of {row['measured']} done within {hours} of their creation"
        parts = []
        if row["late"]:
            parts.append(f"{row['late']} done later")
        if row["missed"]:
            parts.append(f"{row['missed']} still open past {hours} (missed)")
        if row["pending"]:
            parts.append(f"{row['pending']} open and still within time (not counted yet)")
        text += "".join(f", {part}" for part in parts)
    elif row["pending"]:
        first = _time(str(row["next_deadline"])) if row.get("next_deadline") else None
        limit = hours if mixed else f"its {hours}"
        text = f"{row['pending']} open, none past {limit} yet" + (
            f" (the first deadline is {first:%Y-%m-%d %H:%M} UTC)" if first else ""
        )
    elif row["tasks"]:
        text = f"{row['tasks']} in the CRM, none with the times to measure it"
    else:
        text = "measured from the first such follow-up crm-qualify creates"
    extras = []
    if row.get("median_hours_to_done") is not None:
        extras.append(f"median {row['median_hours_to_done']:g} h to done")
    if row["measured"] and row["unmeasured"]:
        extras.append(f"{row['unmeasured']} without a due or completion time (not counted)")
    if row.get("escalated"):
        extras.append(f"{row['escalated']} escalated")
    if row.get("not_yet_in_crm"):
        extras.append(f"{row['not_yet_in_crm']} owed (not in the CRM yet)")
    if row.get("removed_by_us"):
        extras.append(
            f"{row['removed_by_us']} removed by crm-qualify (by a rollback, or doubled by a"
            " merge in the CRM; not counted)"
        )
    if row.get("deleted_in_crm"):
        extras.append(f"{row['deleted_in_crm']} deleted in the CRM (not counted)")
    return text + ("; " + ", ".join(extras) if extras else "")


def waited_text(waited: timedelta | None) -> str:
    if waited is None:
        return "since before the audit trail"
    if waited < timedelta(hours=1):
        return f"{max(int(waited.total_seconds() // 60), 0)} min"
    if waited < timedelta(days=2):
        return f"{waited / timedelta(hours=1):.0f} h"
    return f"{waited / timedelta(days=1):.0f} days"


def no_temperature_label(report: Report) -> str:
    """Counted from the audit trail, a contact without a temperature is one whose CRM value
    was already right (never written), not one without a temperature."""
    return "none" if report.trail_stages is not None else "not written by crm-qualify"


def hot_notes(report: Report) -> list[str]:
    """Hot contacts that are not on the list, and why."""
    notes = []
    if report.hot_called:
        notes.append(f"{report.hot_called} more were called: their latest call task is done")
    if report.hot_past_funnel:
        notes.append(
            f"{report.hot_past_funnel} more hot contacts are opportunities or customers already:"
            " their deal is worked in the CRM"
        )
    if report.hot_same_person:
        notes.append(
            f"{report.hot_same_person} more are other records of a listed person: they share"
            " its decision, and the follow-ups go to the one listed"
        )
    if report.hot_changed:
        notes.append(
            f"{report.hot_changed} more were hot leads when crm-qualify wrote them but are not"
            " as the last run read the CRM: a person changed their temperature or stage, or the"
            " call is done"
        )
    if report.hot_gone:
        notes.append(
            f"{report.hot_gone} more were hot leads when crm-qualify wrote them but are no"
            " longer in the CRM: deleted, or merged into another record"
        )
    if report.hot_unplaced:
        notes.append(
            f"{report.hot_unplaced} more hot contacts are left off: the audit trail has no stage"
            " and no call task for them, so they are probably opportunities or customers"
            " already; --from-crm reads their stage"
        )
    return notes


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def lead_name(lead: HotLead) -> str:
    who = lead.name or lead.record
    return f"{who}, {lead.company}" if lead.company else who


def stage_rows(report: Report) -> list[tuple[str, int, int | None, str]]:
    """(label, now, reached or None, median note) for every stage, then the no-stage row:
    the counts add up to `report.contacts`."""
    rows = [
        (
            s.value,
            report.stages[s.value],
            report.reached[s.value] if s in FUNNEL else None,
            median_note(report, s.value),
        )
        for s in STAGES
    ]
    label = NO_STAGE_CRM if report.trail_stages is not None else NO_STAGE
    rows.append((label, report.no_stage, None, ""))
    return rows


def _is_rollback(run: RunRecord) -> bool:
    return run.mode.startswith(ROLLBACK_MODE)


def _rules_versions(syncs: list[RunRecord], rolled_back: set[str]) -> tuple[str | None, str | None]:
    """The rules version of the newest sync that says, and when the newest rules change
    (`previous_rules_version`) came, newest first as `store.runs` gives them; a change whose
    run was rolled back says so (the records it wrote hold the version before)."""
    current = next(
        (run.details["rules_version"] for run in syncs if "rules_version" in run.details), None
    )
    for run in syncs:
        previous = run.details.get("previous_rules_version")
        if previous and run.details.get("rules_version") == current:
            undone = ", that run rolled back" if run.id in rolled_back else ""
            when = run.started_at[:16].replace("T", " ")
            return current, f"{when} UTC (before: {previous}{undone})"
    return current, None


def rules_line(report: Report) -> str | None:
    """`rules 43d2659eaa since 2026-12-01 19:25 UTC (before: 87fe46e076)`."""
    if report.rules is None:
        return None
    return f"rules {report.rules}" + (f" since {report.rules_since}" if report.rules_since else "")


def text_report(report: Report) -> str:
    now = report.generated_at
    lines = [
        f"crm-qualify report for {report.instance}, {now:%Y-%m-%d %H:%M} UTC:"
        f" {report.contacts} contacts, {plural(report.runs, 'sync')} (from the {report.source})",
    ]
    rules = rules_line(report)
    lines += [f"  {rules}"] if rules else []
    lines += [f"  {note}" for note in report.notes]
    lines += ["", f"hot leads to call now: {report.hot_total} (hot, not yet an opportunity)"]
    lines += [f"  ({note})" for note in hot_notes(report)]
    for rank, lead in enumerate(report.hot[:10], 1):
        score = "no score" if lead.score is None else f"score {lead.score:g}"
        owner = f"owner {lead.owner}" if lead.owner else "no owner"
        record = f" ({lead.record})" if lead.name else ""
        lines.append(
            f"  {rank}. {lead_name(lead)}{record}, {owner}, {score},"
            f" waiting {waited_text(lead.waited(now))}"
        )
        lines += [f"       {reason}" for reason in lead.reasons]
    if report.hot_total > 10:
        lines.append(
            f"  … and {report.hot_total - 10} more (--json lists the first {len(report.hot)},"
            " highest score first)"
        )
    with_crm = report.trail_stages is not None
    lines += [""]
    if with_crm:
        lines.append(
            "stage                           CRM now  crm-qualify wrote  reached  median days"
        )
    else:
        lines.append("stage                               now  reached  median days in stage")
    for label, count, reached, note in stage_rows(report):
        shown = "" if reached is None else reached
        if with_crm:
            assert report.trail_stages is not None
            wrote = report.trail_stages[label] if label in set(Stage) else report.trail_no_stage
            lines.append(f"  {label:<30}{count:>7}{wrote:>19}{shown:>9}  {note}".rstrip())
        else:
            lines.append(f"  {label:<32}{count:>5}{shown:>9}  {note}".rstrip())
    lines.append(
        f"  {'total':<30}{report.contacts:>7}"
        if with_crm
        else f"  {'total':<32}{report.contacts:>5}"
    )
    lines += ["", "conversion:"]
    lines += [
        f"  {a} -> {b}: {conversion_note(report, a, rate)}" for a, b, rate in report.conversions
    ]
    lines += ["", "score distribution:"]
    lines += [f"  {label:>7} {count:>6}" for label, count in report.scores]
    if report.unscored:
        lines.append(f"  no score {report.unscored:>6}")
    temps = [f"{k} {report.temperatures[k]}" for k in ("hot", "warm", "cold")]
    temps += [
        f"{k} {v}"
        for k, v in sorted(report.temperatures.items())
        if k not in ("hot", "warm", "cold")
    ]
    if report.no_temperature:
        temps.append(f"{no_temperature_label(report)} {report.no_temperature}")
    lines += ["", "temperature: " + ", ".join(temps)]
    lines += ["", "follow-ups (each judged on the SLA it was given when crm-qualify created it):"]
    for kind, row in report.sla.items():
        lines.append(f"  {kind} ({sla_within(row)}): {sla_headline(row)}; {sla_detail(row)}")
    lines.append(f"  what is measured: {SLA_MEASURE}")
    lines += ["", f"records needing attention: {len(report.attention)} (crm-qualify errors)"]
    for record in report.attention[:10]:
        lines.append(
            f"  {record['object_type']}/{record['contact_id']} {record['field'] or 'record'}:"
            f" {record['reason']}"
        )
    return "\n".join(lines)
