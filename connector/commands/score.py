"""`crm-qualify score`: the offline what-if tool. Reads canonical contacts, prints decisions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import IO, Any

from crm_qualify.connector.commands.common import add_config_argument, parse_now, settings_or_exit
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.model import Contact, Decision
from pydantic import ValidationError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score canonical contact documents offline and print the decisions",
        description=(
            "Read canonical contacts (JSON Lines; '-' for stdin) and print one JSON decision"
            " per line. Nothing is read from or written to a CRM: try new weights here first."
        ),
    )
    parser.add_argument("file", help="contacts file, one JSON object per line, or - for stdin")
    add_config_argument(parser)
    parser.add_argument(
        "--now", default=None, help="reference time for decay (ISO 8601); default: now"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print readable explanations instead of JSON"
    )
    parser.set_defaults(handler=run)


def read_contacts(stream: IO[str]) -> Iterator[tuple[int, Contact | None, str | None]]:
    """(line number, contact, error) per non-blank line; a bad line names its record and field."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
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


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    try:
        now = parse_now(args.now)
    except argparse.ArgumentTypeError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    rejected = 0
    with stream:
        for _, contact, error in read_contacts(stream):
            if contact is None:
                rejected += 1
                print(f"rejected: {error}", file=sys.stderr)
                continue
            decision = decide(contact, settings.rules, now)
            if args.explain:
                print(explain(decision))
            else:
                print(json.dumps(decision_document(decision), ensure_ascii=False))
    if rejected:
        print(f"{rejected} record(s) rejected; the others were scored", file=sys.stderr)
    return 1 if rejected else 0
