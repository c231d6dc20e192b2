"""`crm-qualify demo`: the whole product in under a minute, with no credentials.

Starts a bundled CRM simulator on loopback (found through the `crm_qualify.demos` entry-point
group), runs a full sync, simulates a day of engagement, runs an incremental sync, and prints
what changed: stages and temperatures before and after, tasks, the hottest leads and why, and
the API requests it took.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from crm_qualify.connector.contract import DemoEnvironment
from crm_qualify.connector.model import Contact, Decision, Stage
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.plugins import build_adapter
from crm_qualify.connector.settings import CrmSettings, Settings, SyncSettings
from crm_qualify.connector.sync.engine import BatchReport, RunOptions, RunSummary, SyncEngine
from crm_qualify.connector.sync.state import StateStore

GROUP = "crm_qualify.demos"
REASONS_SHOWN = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    names = sorted(demo_environments())
    parser = subparsers.add_parser(
        "demo",
        help="sync a seeded local CRM simulator end to end (no credentials needed)",
        description=(
            "Start a bundled CRM simulator on 127.0.0.1, run a full sync, simulate a day of"
            " new engagement, run an incremental sync and print a summary. Nothing leaves"
            " this machine."
        ),
    )
    parser.add_argument("--crm", choices=names or None, default="hubspot")
    parser.add_argument("--contacts", type=int, default=3000, help="portal size (default 3000)")
    parser.add_argument("--seed", type=int, default=7, help="data seed (default 7)")
    parser.set_defaults(handler=run)


@dataclass
class Tally:
    """What the demo prints, gathered batch by batch (one entry per contact, the latest)."""

    before_stage: dict[str, str] = field(default_factory=dict)
    before_temperature: dict[str, str] = field(default_factory=dict)
    latest: dict[str, Decision] = field(default_factory=dict)
    tasks: Counter[str] = field(default_factory=Counter)
    people: dict[str, str] = field(default_factory=dict)
    """How the summary names each contact: name and company, owner."""

    def read(self, contacts: list[Contact]) -> None:
        for contact in contacts:
            key = contact.label
            if key not in self.before_stage:
                self.before_stage[key] = contact.stage.value if contact.stage else "(none)"
                self.before_temperature[key] = str(contact.owned.get("temperature") or "(none)")
            self.people[key] = person(contact)

    def batch(self, report: BatchReport) -> None:
        for decision in report.decisions:
            self.latest[f"{decision.object_type}/{decision.contact_id}"] = decision
        self.tasks.update(task.kind for task in report.tasks_created)


def person(contact: Contact) -> str:
    """`Ada Lovelace, Analytical Engines Ltd (owner 42)`: what a salesperson looks up."""
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    who = name or contact.email or contact.label
    if contact.company:
        who += f", {contact.company}"
    return who + (f" (owner {contact.owner_id})" if contact.owner_id else "")


def _table(title: str, before: Counter[str], after: Counter[str], order: list[str]) -> list[str]:
    keys = [k for k in order if before[k] or after[k]]
    keys += sorted(k for k in set(before) | set(after) if k not in keys)
    lines = [f"{title:<14}{'before':>8}{'after':>8}"]
    lines += [f"  {key:<12}{before[key]:>8}{after[key]:>8}" for key in keys]
    return lines


def summary_lines(
    tally: Tally, runs: list[tuple[str, RunSummary, float]], usage: dict
) -> list[str]:
    stages = [s.value for s in Stage] + ["(none)"]
    after_stage = Counter(d.stage.value for d in tally.latest.values())
    after_temperature = Counter(d.temperature.value for d in tally.latest.values())
    lines = []
    for name, summary, seconds in runs:
        counts = summary.counts
        lines.append(
            f"{name}: {summary.status} in {seconds:.1f} s; read {counts['read']}, fields written"
            f" {counts['fields_written']} on {counts['records_written']} records, tasks created"
            f" {counts['tasks_created']}, errors {len(summary.errors)}"
        )
    lines.append("")
    lines += _table("stage", Counter(tally.before_stage.values()), after_stage, stages)
    lines.append("")
    lines += _table(
        "temperature",
        Counter(tally.before_temperature.values()),
        after_temperature,
        ["cold", "warm", "hot", "(none)"],
    )
    lines.append("")
    lines.append(
        "tasks created: " + (", ".join(f"{k} {v}" for k, v in tally.tasks.items()) or "none")
    )
    hot = sorted(
        (
            d
            for d in tally.latest.values()
            if d.temperature.value == "hot" and d.stage.rank < Stage.OPPORTUNITY.rank
        ),
        key=lambda d: (-d.score.total, d.contact_id),
    )[:5]
    lines.append("")
    lines.append("hottest leads: hot and not yet an opportunity, with their top reasons")
    for rank, decision in enumerate(hot, 1):
        label = f"{decision.object_type}/{decision.contact_id}"
        lines.append(
            f"  {rank}. {tally.people.get(label, label)}: {decision.score.total}/100,"
            f" grade {decision.score.grade}, {decision.stage.value}"
        )
        top = sorted(decision.score.reasons, key=lambda r: -r.points)[:REASONS_SHOWN]
        lines += [f"       {reason.why}" for reason in top]
    if not hot:
        lines.append("  none this time")
    lines.append("")
    lines.append("API use: " + ", ".join(f"{k} {v}" for k, v in usage.items()))
    return lines


def demo_environments() -> dict[str, EntryPoint]:
    """The installed demo environments by CRM name (`crm_qualify.demos` entry points)."""
    return {point.name: point for point in entry_points(group=GROUP)}


def run_demo(env: DemoEnvironment, state_path: Path) -> tuple[Tally, list, dict[str, Any]]:
    """Full sync, a simulated day, incremental sync: what the demo prints, gathered."""
    settings = Settings(
        crm=CrmSettings(adapter=env.adapter, instance="demo"),
        adapters={env.adapter: env.options},
        sync=SyncSettings(state_path=state_path),
    )
    store = StateStore(settings.sync.state_path)
    tally = Tally()
    adapter = build_adapter(settings)
    progress = Progress(
        sys.stderr, usage=getattr(adapter, "usage", None), sink=_to_stderr, begun=False
    )

    def on_batch(report: BatchReport) -> None:
        tally.batch(report)
        progress.batch(report)

    engine = SyncEngine(
        adapter, settings, store, on_batch=on_batch, on_read=tally.read, keep_decisions=True
    )
    runs: list[tuple[str, RunSummary, float]] = []
    try:
        for name in ("full sync", "incremental sync"):
            if runs:
                touched = env.simulate_day()
                print(f"simulated a day of engagement on {touched} contacts", flush=True)
            print(f"{name}…", flush=True)
            started = time.perf_counter()
            progress.start(name)
            try:
                summary = engine.run(RunOptions())
            finally:
                progress.finish()
            runs.append((name, summary, time.perf_counter() - started))
    finally:
        store.close()
    return tally, runs, env.api_usage()


def _to_stderr(line: str) -> None:
    """Progress when stderr is not a terminal: a plain line every few seconds."""
    print(f"  {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.contacts < 1:
        print("error: --contacts must be at least 1", file=sys.stderr)
        return 2
    point = demo_environments().get(args.crm)
    if point is None:
        print(f"error: no demo for {args.crm!r} is installed", file=sys.stderr)
        return 2
    try:
        demo_environment = point.load()
    except ImportError as exc:
        print(
            f"error: the {args.crm} demo is not available ({exc}); its simulator needs the"
            ' simulators extra: pip install "crm-qualify[simulators]"',
            file=sys.stderr,
        )
        return 2
    print(f"starting a local {args.crm} simulator with {args.contacts} contacts…", flush=True)
    with tempfile.TemporaryDirectory() as folder, demo_environment(args.contacts, args.seed) as env:
        tally, runs, usage = run_demo(env, Path(folder) / "demo.sqlite")
    print()
    print("\n".join(summary_lines(tally, runs, usage)))
    return 0 if all(s.status == "ok" for _, s, _ in runs) else 1
