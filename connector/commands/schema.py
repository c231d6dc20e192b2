"""`crm-qualify schema contact`: JSON Schema of canonical documents, generated from the model."""

from __future__ import annotations

import argparse
import json

from crm_qualify.connector.model import Contact, Decision
from pydantic import TypeAdapter

SCHEMAS = {"contact": Contact, "decision": Decision}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of a canonical document (contact, decision)",
        description=(
            "Print the JSON Schema, generated from the model, of a canonical contact (what"
            " `score` reads and every adapter produces) or of a decision (what `score`"
            " prints: stage, temperature, scores, reasons, tasks, rules version)."
        ),
    )
    parser.add_argument("name", choices=sorted(SCHEMAS), help="which document")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(TypeAdapter(SCHEMAS[args.name]).json_schema(), indent=2))
    return 0
