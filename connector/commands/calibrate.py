"""`crm-qualify calibrate`: re-weight the points on the deals that really closed; never applies."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    config_path,
    parse_now,
    settings_or_exit,
)
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.decision.calibration.impact import impact
from crm_qualify.connector.decision.calibration.proposal import proposal_toml
from crm_qualify.connector.decision.calibration.sources import (
    from_adapter,
    from_mirror,
    mirrored_people,
)
from crm_qualify.connector.ops.calibrate_html import calibrate_html
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.state import StateStore

if TYPE_CHECKING:
    from crm_qualify.connector.decision.calibration.calibrate import Calibration

WITHHELD = 3
"""Exit status when there is too little data for a proposal (the evidence is still shown)."""
TOP_SHOWN = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="propose scoring points re-weighted on won and lost deals (never applies them)",
        description=(
            "Learn which signals preceded won deals, from the mirror of contacts in the state"
            " store (no API call) or, without one, from a full read of the CRM. Prints the"
            " evidence per signal, a proposal that keeps crm-qualify's point model, and how"
            " current and proposed rules rank the latest people, kept out of the fit. Exit"
            f" status {WITHHELD}: too little data, proposal withheld."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--since", help="outcomes from this date (default: calibrate.window_days)")
    parser.add_argument("--until", help="outcomes before this date (default: now)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the proposal TOML here")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--from-crm",
        action="store_true",
        help="read the CRM (a full read) even when the state store has a mirror",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    clash = _over_configuration(args)
    if clash:
        print(clash, file=sys.stderr)
        return 2
    try:
        until = parse_now(args.until).replace(microsecond=0)
        since = (
            _date(args.since, "--since")
            if args.since
            else until - timedelta(days=settings.calibrate.window_days)
        )
    except argparse.ArgumentTypeError as exc:
        print(exc, file=sys.stderr)
        return 2
    if since >= until:
        print("--since must be before --until", file=sys.stderr)
        return 2
    now = parse_now(None)
    result = _calibrated(args, settings, since, until, now)
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(text_summary(result))
    say = sys.stderr if args.json else sys.stdout
    if args.out and result.proposed is not None:
        args.out.write_text(proposal_toml(result, settings.rules, now), encoding="utf-8")
        print(
            f"wrote {args.out}: {len(result.changes)} changed key(s); nothing was applied", file=say
        )
    if args.html:
        args.html.write_text(calibrate_html(result, now), encoding="utf-8")
        print(f"wrote {args.html}", file=say)
    return WITHHELD if result.withheld else 0


def _over_configuration(args: argparse.Namespace) -> str | None:
    """Why an output would replace the configuration this run read (found by --config,
    $CRMQ_CONFIG or ./crm-qualify.toml), or None: written there, the proposal would apply
    itself and drop every key it does not hold, while the run says nothing was applied."""
    config = config_path(args)
    if config is None:
        return None
    for option, path, example in (
        ("--out", args.out, "proposal.toml"),
        ("--html", args.html, "calibration.html"),
    ):
        if path is not None and path.exists() and os.path.samefile(path, config):
            return (
                f"error: {option} {path} is the configuration file calibrate reads ({config});"
                f" writing there would replace it. Choose another file, e.g. {option} {example}"
            )
    return None


def _date(text: str, option: str) -> datetime:
    try:
        return parse_now(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{option}: not an ISO 8601 date: {text!r}") from None


def _calibrated(
    args: argparse.Namespace, settings: Settings, since: datetime, until: datetime, now: datetime
) -> Calibration | None:
    """Calibrate from the mirror when there is one, else through the adapter; then measure
    what the proposal would change on the same people. The fitting (numpy, scikit-learn:
    about 90 MB) is imported here, so no other command, the daemon least of all, carries it."""
    from crm_qualify.connector.decision.calibration.calibrate import calibrate

    options = settings.calibrate
    state = Path(settings.sync.state_path)
    instance = settings.crm.instance
    if state.exists() and not args.from_crm:
        store = StateStore(state)
        try:
            if store.mirror.count(instance):
                result = calibrate(
                    from_mirror(store, instance, options, since, until), settings.rules, options
                )
                if result.proposed is not None:
                    people = mirrored_people(store, instance, settings.identity)
                    result.impact = impact(people, settings.rules, result.proposed, now)
                return result
        finally:
            store.close()
    adapter = adapter_or_exit(settings)
    progress = Progress(sys.stderr, label="reading the CRM", usage=adapter.usage, shown=("read",))
    try:
        dataset, people = from_adapter(
            adapter, options, since, until, lambda n: progress.add(read=n)
        )
    except AdapterError as exc:
        print(f"error: reading the CRM failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    finally:
        progress.finish()
    result = calibrate(dataset, settings.rules, options)
    if result.proposed is not None:
        alone = ((person, 1) for person in people)
        result.impact = impact(alone, settings.rules, result.proposed, now)
    return result


def text_summary(result: Calibration) -> str:
    data = result.dataset
    counts = data.counts()
    lines = [
        f"calibrate: {len(data.examples):,} people with an outcome between"
        f" {data.since:%Y-%m-%d} and {data.until:%Y-%m-%d}: {counts['won']:,} won"
        + (f", {counts['opportunity']:,} reached an opportunity" if counts["opportunity"] else "")
        + f", {counts['lost']:,} lost, {counts['stale']:,} leads with no deal after the horizon;"
        f" read from the {data.source} ({data.api_requests:,} API request(s))",
    ]
    if data.skipped:
        lines.append(
            "  left out: " + ", ".join(f"{n:,} {why}" for why, n in sorted(data.skipped.items()))
        )
    lines.append("top signals and traits by lift (win rate with / without, 95% interval):")
    for report in result.ranked()[:TOP_SHOWN]:
        found, fitted = report.lift, report.fitted
        lift_text = f"{found.lift:.2f}" if found.lift is not None else "n/a"
        interval = f"[{found.low:.2f}, {found.high:.2f}]" if found.low is not None else ""
        move = f"{_n(report.feature.current)} pts"
        if fitted is not None:
            move += f" -> {_n(fitted.points)}" + (
                "" if fitted.status == "fitted" else f" ({fitted.status})"
            )
        lines.append(
            f"  {report.feature.label:<28} lift {lift_text:>5} {interval:<15}"
            f" {_pct(found.with_rate):>4} / {_pct(found.without_rate):<4}"
            f" {found.carriers:>6,} carriers  {move}"
        )
    if result.withheld:
        lines.append(result.withheld)
        return "\n".join(lines)
    evaluation = result.evaluation
    assert evaluation is not None
    old, new = evaluation.current, evaluation.proposed
    lines.append(
        f"held out: the latest {evaluation.test:,} people (from {evaluation.split_at}):"
        f" AUC {old.auc:.3f} -> {new.auc:.3f}; MQL threshold {_n(old.threshold)} ->"
        f" {_n(new.threshold)}: {old.handed_over:,} -> {new.handed_over:,} handed over,"
        f" precision {_pct(old.precision)} -> {_pct(new.precision)},"
        f" recall {_pct(old.recall)} -> {_pct(new.recall)}"
    )
    if not evaluation.better:
        lines.append("  the proposal does not rank them better than the current rules: keep those")
    moved = result.impact
    if moved is not None:
        top = ", ".join(f"{move} {n:,}" for move, n in moved.moves.most_common(4))
        kept = f", {moved.stages_kept:,} would fall back a stage: kept" if moved.stages_kept else ""
        lines.append(
            f"if applied: {moved.stage_changes:,} of {moved.contacts:,} contacts change stage,"
            f" {moved.temperature_changes:,} change temperature"
            + (f" ({top})" if top else "")
            + kept
            + "; values a person set are kept by the write policies: a dry run with the"
            " proposal shows exactly what lands"
        )
    lines.append(
        f"proposal: {len(result.changes)} changed key(s) (--out writes them; --json lists them)"
    )
    return "\n".join(lines)


def _n(value: float) -> str:
    return f"{value:g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
