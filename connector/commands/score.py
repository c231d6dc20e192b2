"""`crm-qualify score`: the offline what-if tool. Reads canonical contacts (JSON Lines or a CSV
export), prints decisions; `--compare A.toml B.toml` prints where two rule sets decide
differently, side by side, and a summary of the moves."""

from __future__ import annotations

import argparse
import io
import json
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from crm_qualify.connector.commands.common import (
    add_config_argument,
    parse_now,
    print_problems,
    settings_or_exit,
)
from crm_qualify.connector.commands.score_csv import not_utf8, read_csv_contacts
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.rules import Rules, rules_version
from crm_qualify.connector.model import Contact, Decision
from crm_qualify.connector.settings import describe_validation_error
from pydantic import ValidationError

Read = Iterator[tuple[int, Contact | None, str | None]]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score canonical contact documents offline and print the decisions",
        description=(
            "Read canonical contacts (JSON Lines, or a CSV export: see docs/calibration.md for"
            " its columns, whose dates alone are read as 00:00 UTC; '-' for stdin) and print one"
            " JSON decision per line. Nothing is read from or written to a CRM: try new weights"
            " here first."
        ),
    )
    parser.add_argument(
        "file", help="contacts: .jsonl (one JSON object per line) or .csv, or - for stdin"
    )
    add_config_argument(parser)
    parser.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        default=None,
        help="input format (default: by the file's extension; jsonl for stdin)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A.toml", "B.toml"),
        help="print the contacts A's and B's rules decide differently, side by side, and a"
        " summary; A's [rules] are laid over the configuration's, B's over A's (so B can be a"
        " `calibrate` proposal)",
    )
    parser.add_argument("--json", action="store_true", help="--compare: print JSON lines")
    parser.add_argument(
        "--now", default=None, help="reference time for decay (ISO 8601); default: now"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print readable explanations instead of JSON"
    )
    parser.set_defaults(handler=run)


TEXT: dict[str, Any] = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}
"""How input files are read: UTF-8 with or without Excel's byte-order mark; a byte that is
not UTF-8 is kept apart (`not_utf8`), so its line is rejected and the others are scored."""


def read_contacts(stream: IO[str]) -> Iterator[tuple[int, Contact | None, str | None]]:
    """(line number, contact, error) per non-blank line; a bad line names its record and field."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        if problem := not_utf8(line):
            yield number, None, f"line {number}: {problem}: save the file as UTF-8"
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"line {number}: not JSON: {exc.msg}"
            continue
        try:
            yield number, Contact.model_validate(document), None
        except ValidationError as exc:
            record = document.get("id", "?") if isinstance(document, dict) else "?"
            fields = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or 'record'}: {item['msg']}"
                for item in exc.errors()
            )
            yield number, None, f"line {number}: contact {record}: {fields}"


def decision_document(decision: Decision) -> dict[str, Any]:
    score = decision.score
    return {
        "contact_id": decision.contact_id,
        "object_type": decision.object_type,
        "score": score.total,
        "fit": score.fit,
        "engagement": score.engagement,
        "intent": score.intent,
        "grade": score.grade,
        "stage": decision.stage.value,
        "computed_stage": decision.computed_stage.value,
        "temperature": decision.temperature.value,
        "renurture": decision.renurture,
        "disqualified": decision.disqualified,
        "customer_type": decision.customer_type,
        "rules_version": decision.rules_version,
        "reasons": [asdict(r) for r in score.reasons],
        "tasks": [t.to_json() for t in decision.tasks],
    }


def explain(decision: Decision) -> str:
    """'contact/7: 70/100 (C1) fit 0, engagement 30, intent 40 -> mql, hot', then one line per
    reason and task; a customer's stage says its type ('customer (recurring)'), and the
    disqualified and re-nurture flags show when set."""
    score = decision.score
    stage = decision.stage.value
    if decision.customer_type:
        stage += f" ({decision.customer_type.replace('_', '-')})"
    lines = [
        f"{decision.object_type}/{decision.contact_id}: {score.total}/100 ({score.grade})"
        f" fit {score.fit}, engagement {score.engagement}, intent {score.intent}"
        f" -> {stage}, {decision.temperature.value}"
        + (" [disqualified]" if decision.disqualified else "")
        + (" [re-nurture]" if decision.renurture else ""),
    ]
    lines += [f"    {reason.why}" for reason in score.reasons]
    lines += [
        f"    task: {task.subject} (due {task.due:%Y-%m-%d %H:%M})" for task in decision.tasks
    ]
    return "\n".join(lines)


def layered_rules(path: Path, base: Rules) -> Rules:
    """`base` with the `[rules]` tables of the TOML file at `path` laid over it: tables merge
    key by key, any other value (a list of title rules...) replaces. Raises ValueError with
    every problem, by key."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None
    merged = _merge(base.model_dump(mode="json"), document.get("rules", {}))
    try:
        return Rules.model_validate(merged)
    except ValidationError as exc:
        problems = describe_validation_error(exc, prefix="rules.", model=Rules)
        raise ValueError(f"{path}: " + "; ".join(problems)) from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def contacts_from(stream: IO[str], csv_format: bool) -> Read:
    if not csv_format:
        yield from read_contacts(stream)
        return
    ignored: list[str] = []
    yield from read_csv_contacts(stream, ignored)
    if ignored:
        print(f"ignored column(s): {', '.join(ignored)}", file=sys.stderr)


def _brief(decision: Decision) -> dict[str, Any]:
    return {
        "score": decision.score.total,
        "stage": decision.stage.value,
        "temperature": decision.temperature.value,
        "disqualified": decision.disqualified,
    }


class Comparison:
    """Decisions under rule sets A and B, contact by contact, and the moves they add up to."""

    def __init__(self, a: Rules, b: Rules, now: datetime) -> None:
        self.a, self.b, self.now = a, b, now
        self.contacts = self.differ = self.stages = self.temperatures = self.scores = 0
        self.score_delta = 0
        self.moves: Counter[str] = Counter()

    def add(self, contact: Contact) -> tuple[Decision, Decision] | None:
        """Both decisions when they differ in stage, temperature or disqualification."""
        first, second = decide(contact, self.a, self.now), decide(contact, self.b, self.now)
        self.contacts += 1
        delta = second.score.total - first.score.total
        self.scores += delta != 0
        self.score_delta += delta
        changed = False
        if first.stage is not second.stage:
            self.stages += 1
            self.moves[f"{first.stage.value} -> {second.stage.value}"] += 1
            changed = True
        if first.temperature is not second.temperature:
            self.temperatures += 1
            self.moves[f"{first.temperature.value} -> {second.temperature.value}"] += 1
            changed = True
        changed = changed or first.disqualified != second.disqualified
        self.differ += changed
        return (first, second) if changed else None

    def summary(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "decisions_differ": self.differ,
            "stage_changes": self.stages,
            "temperature_changes": self.temperatures,
            "moves": dict(self.moves.most_common()),
            "scores_move": self.scores,
            "mean_score_change": round(self.score_delta / self.contacts, 2) if self.contacts else 0,
            "rules": {"a": rules_version(self.a), "b": rules_version(self.b)},
        }

    def sentence(self) -> str:
        moves = ", ".join(f"{move} {n:,}" for move, n in self.moves.most_common())
        mean = self.score_delta / self.contacts if self.contacts else 0
        return (
            f"compared {self.contacts:,} contact(s): {self.differ:,} decided differently;"
            f" {self.stages:,} change stage, {self.temperatures:,} change temperature"
            + (f" ({moves})" if moves else "")
            + f"; {self.scores:,} score(s) move, mean {mean:+.1f};"
            f" rules {rules_version(self.a)} -> {rules_version(self.b)}"
        )


def _side_by_side(contact: Contact, first: Decision, second: Decision) -> str:
    def cells(decision: Decision) -> str:
        flag = " disq." if decision.disqualified else ""
        return (
            f"{decision.score.total:>3} {decision.stage.value:<11}"
            f" {decision.temperature.value:<4}{flag:<6}"
        )

    return f"{contact.label:<28} {cells(first)} | {cells(second)}".rstrip()


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    try:
        now = parse_now(args.now)
    except argparse.ArgumentTypeError as exc:
        print(exc, file=sys.stderr)
        return 2
    comparison = None
    if args.compare:
        try:
            first = layered_rules(args.compare[0], settings.rules)
            comparison = Comparison(first, layered_rules(args.compare[1], first), now)
        except ValueError as exc:
            print_problems([str(exc)])
            return 2
    csv_format = (
        args.format or ("csv" if args.file.lower().endswith(".csv") else "jsonl")
    ) == "csv"
    try:
        if args.file == "-":  # its bytes, read as a file is (a test hands text instead)
            buffer = getattr(sys.stdin, "buffer", None)
            stream = io.TextIOWrapper(buffer, **TEXT) if buffer is not None else sys.stdin
        else:
            stream = open(args.file, **TEXT)  # noqa: SIM115
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    rejected = scored = 0
    lines: dict[str, int] = {}
    if comparison is not None and not args.json:
        print(f"{'record':<28} {'A: score stage temp':<26} | B: score stage temp")
    with stream:
        for number, contact, error in contacts_from(stream, csv_format):
            if contact is None:
                rejected += 1
                print(f"rejected: {error}", file=sys.stderr)
                continue
            scored += 1
            _warn_if_repeated(lines, contact, number)
            if comparison is not None:
                _compare_one(comparison, contact, args.json)
            else:
                decision = decide(contact, settings.rules, now)
                if args.explain:
                    print(explain(decision))
                else:
                    print(json.dumps(decision_document(decision), ensure_ascii=False))
    if comparison is not None and args.json:
        print(json.dumps({"summary": comparison.summary()}))
    elif comparison is not None and scored:  # else `_rejections` says why
        print(comparison.sentence())
    return _rejections(rejected, scored)


def _warn_if_repeated(lines: dict[str, int], contact: Contact, number: int) -> None:
    """Both records are scored, but a CRM holds one per id: the export likely repeats a row."""
    first = lines.setdefault(contact.label, number)
    if first != number:
        print(
            f"warning: line {number}: {contact.label} repeats the id of line {first}",
            file=sys.stderr,
        )


def _rejections(rejected: int, scored: int) -> int:
    """The exit status, and on stderr how many records were rejected: 1 when any was, or when
    the file held none (plainly when no record could be scored at all), else 0."""
    if not rejected and not scored:
        print("no record could be scored: the file holds none", file=sys.stderr)
        return 1
    if not rejected:
        return 0
    if scored:
        print(f"{rejected} record(s) rejected; the others were scored", file=sys.stderr)
    else:
        print(f"no record could be scored: all {rejected} rejected", file=sys.stderr)
    return 1


def _compare_one(comparison: Comparison, contact: Contact, as_json: bool) -> None:
    found = comparison.add(contact)
    if found is None:
        return
    first, second = found
    if as_json:
        row = {"record": contact.label, "a": _brief(first), "b": _brief(second)}
        print(json.dumps(row, ensure_ascii=False))
    else:
        print(_side_by_side(contact, first, second))
