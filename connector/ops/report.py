"""Funnel, conversion, time in stage, scores and follow-up SLAs, from the audit trail.

What crm-qualify wrote is a history of every contact's stage: counts per stage, conversion
between stages and the median time a contact spent in each stage follow from it, without an
API call. A follow-up counts as late when crm-qualify had to escalate it (still open past its
due time when a run looked). The trail only knows contacts whose fields crm-qualify changed;
with a CRM snapshot (`report --from-crm`, one full read) the current stage, temperature and
score of every contact, and whether each of our follow-ups is done, come from the CRM instead.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crm_qualify.connector.contract import Adapter
from crm_qualify.connector.model import Contact, Stage
from crm_qualify.connector.sync.diff import normalise
from crm_qualify.connector.sync.records import translate_batch
from crm_qualify.connector.sync.state import TASK_CLOSED, TASK_CREATED, StateStore

FUNNEL = [Stage.LEAD, Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER]
SLA_HOURS = {"hot_call": 24, "mql_handoff": 48}


@dataclass
class Report:
    instance: str
    generated_at: datetime
    contacts: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    conversions: list[tuple[str, str, float | None]] = field(default_factory=list)
    median_days: dict[str, float | None] = field(default_factory=dict)
    scores: list[tuple[str, int]] = field(default_factory=list)
    temperatures: Counter[str] = field(default_factory=Counter)
    sla: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    runs: int = 0
    source: str = "audit trail"
    attention: list[dict] = field(default_factory=list)
    """Records whose last error was not transient (`crm-qualify errors`)."""

    def as_dict(self) -> dict:
        return {
            "instance": self.instance,
            "generated_at": self.generated_at.isoformat(),
            "contacts": self.contacts,
            "runs": self.runs,
            "source": self.source,
            "stages": dict(self.stages),
            "reached": dict(self.reached),
            "conversions": [{"from": a, "to": b, "rate": rate} for a, b, rate in self.conversions],
            "median_days_in_stage": self.median_days,
            "score_distribution": dict(self.scores),
            "temperatures": dict(self.temperatures),
            "follow_up_sla": self.sla,
            "records_needing_attention": self.attention,
        }


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class CrmSnapshot:
    """Every contact's current stage, temperature and score, and our follow-ups' state, as
    the CRM holds them now."""

    stages: dict[tuple[str, str], str] = field(default_factory=dict)
    temperatures: dict[tuple[str, str], str] = field(default_factory=dict)
    scores: dict[tuple[str, str], float] = field(default_factory=dict)
    completed_tasks: set[str] = field(default_factory=set)
    """Keys of crm-qualify's tasks the CRM shows as done."""

    def add(self, contacts: Iterable[Contact]) -> None:
        for contact in contacts:
            key = (contact.object_type, contact.id)
            if contact.stage is not None:
                self.stages[key] = contact.stage.value
            if contact.owned.get("temperature"):
                self.temperatures[key] = str(contact.owned["temperature"])
            score = normalise(contact.owned.get("score"))
            if isinstance(score, float):
                self.scores[key] = score
            self.completed_tasks.update(t.key for t in contact.tasks if t.key and t.completed)


def crm_snapshot(adapter: Adapter, now: datetime) -> CrmSnapshot:
    """One full read of the CRM (it costs what a full sync's reads cost)."""
    snapshot = CrmSnapshot()
    for batch in adapter.read_changed(None, until=now):
        snapshot.add(translate_batch(batch)[0])
    return snapshot


def _keep(values: dict, key: tuple[str, str], value: object) -> None:
    """The latest written value; a write back to empty (a rollback) forgets the contact."""
    if value is None:
        values.pop(key, None)
    else:
        values[key] = value


def build_report(
    store: StateStore,
    instance: str,
    now: datetime | None = None,
    crm: CrmSnapshot | None = None,
) -> Report:
    now = now or datetime.now(UTC)
    report = Report(instance, now, runs=len(store.runs(instance, limit=1_000_000)))
    report.attention = [record.__dict__ for record in store.attention(instance)]
    stage: dict[tuple[str, str], str] = {}
    highest: dict[tuple[str, str], int] = {}
    entered: dict[tuple[str, str], datetime] = {}
    durations: dict[str, list[float]] = {s.value: [] for s in Stage}
    score: dict[tuple[str, str], float] = {}
    temperature: dict[tuple[str, str], str] = {}
    for write in store.writes(instance, ["stage", "score", "temperature"]):
        key = (write.object_type, write.contact_id)
        if write.field == "score":
            _keep(score, key, None if write.new in (None, "") else float(write.new))
        elif write.field == "temperature":
            _keep(temperature, key, str(write.new) if write.new else None)
        elif write.field == "stage" and write.new in set(Stage):
            at = _time(write.at)
            if key in entered and key in stage:
                durations[stage[key]].append((at - entered[key]).total_seconds() / 86_400)
            stage[key], entered[key] = write.new, at
            ranks = [Stage(write.new).rank]
            if write.old in set(Stage):
                ranks.append(Stage(write.old).rank)
            highest[key] = max(highest.get(key, 0), *ranks)
    if crm is not None:
        report.source = "audit trail and CRM"
        stage, score, temperature = crm.stages, crm.scores, crm.temperatures
        for key, value in stage.items():
            highest[key] = max(highest.get(key, 0), Stage(value).rank)
    keys = set(stage) | set(score) | set(temperature)
    report.contacts = len(keys)
    report.stages = Counter(stage.values())
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
        for name, values in durations.items()
        if name in {s.value for s in FUNNEL}
    }
    buckets = Counter(min(int(value // 10), 9) for value in score.values())
    report.scores = [(f"{b * 10}-{b * 10 + 9 if b < 9 else 100}", buckets[b]) for b in range(10)]
    report.temperatures = Counter(temperature.values())
    report.sla = _sla(store, instance, now, crm.completed_tasks if crm else None)
    return report


def _sla(
    store: StateStore, instance: str, now: datetime, completed: set[str] | None
) -> dict[str, dict]:
    tasks = store.all_tasks(instance)
    escalated = {t.key.removesuffix(":escalation") for t in tasks if t.kind == "escalation"}
    result = {}
    for kind, hours in SLA_HOURS.items():
        planned = [t for t in tasks if t.kind == kind]
        mine = [t for t in planned if t.status in (TASK_CREATED, TASK_CLOSED)]
        due = [t for t in mine if t.due and _time(t.due) <= now]
        late = [t for t in due if t.key in escalated]
        result[kind] = {
            "target_hours": hours,
            "created": len(mine),
            "due_by_now": len(due),
            "escalated": len(late),
            "on_time_rate": round(1 - len(late) / len(due), 3) if due else None,
            "not_yet_in_crm": len(planned) - len(mine),
        }
        if completed is not None:
            result[kind]["done_in_crm"] = sum(1 for t in mine if t.key in completed)
    return result


def text_report(report: Report) -> str:
    lines = [
        f"crm-qualify report for {report.instance}, {report.generated_at:%Y-%m-%d %H:%M} UTC:"
        f" {report.contacts} contacts, {report.runs} runs (from the {report.source})",
        "",
        "stage          now  reached  median days in stage",
    ]
    for s in FUNNEL:
        days = report.median_days.get(s.value)
        lines.append(
            f"  {s.value:<12}{report.stages[s.value]:>5}{report.reached[s.value]:>9}"
            f"  {'-' if days is None else days}"
        )
    lines += ["", "conversion:"]
    lines += [
        f"  {a} -> {b}: {'-' if rate is None else f'{rate:.0%}'}"
        for a, b, rate in report.conversions
    ]
    lines += ["", "score distribution:"]
    lines += [f"  {label:>7} {count:>6}" for label, count in report.scores]
    lines += [
        "",
        "temperature: " + ", ".join(f"{k} {v}" for k, v in sorted(report.temperatures.items())),
    ]
    lines += ["", "follow-ups (late = escalated):"]
    for kind, row in report.sla.items():
        rate = row["on_time_rate"]
        lines.append(
            f"  {kind} ({row['target_hours']} h): {row['created']} created,"
            f" {row['due_by_now']} due, {row['escalated']} late,"
            f" on time {'-' if rate is None else f'{rate:.0%}'}"
            + (f", {row['done_in_crm']} done in the CRM" if "done_in_crm" in row else "")
            + (f", {row['not_yet_in_crm']} owed" if row.get("not_yet_in_crm") else "")
        )
    lines += ["", f"records needing attention: {len(report.attention)} (crm-qualify errors)"]
    for record in report.attention[:10]:
        lines.append(
            f"  {record['object_type']}/{record['contact_id']} {record['field'] or 'record'}:"
            f" {record['reason']}"
        )
    return "\n".join(lines)
