"""`crm-qualify errors`: the records that need attention, with the CRM field and the reason."""

from __future__ import annotations

import argparse
import json

from crm_qualify.connector.commands.common import (
    add_config_argument,
    settings_or_exit,
    state_missing,
)
from crm_qualify.connector.sync.state import StateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    errors = subparsers.add_parser(
        "errors",
        help="list the records that need attention (refused values, untranslatable data)",
        description=(
            "Records whose last error was not transient: a value the CRM refused or data the"
            " mapping cannot translate. Each is retried when the configuration or the CRM's"
            " fields change, and otherwise on a backoff from one hour to a week."
        ),
    )
    add_config_argument(errors)
    errors.add_argument("--json", action="store_true", help="one JSON object per record")
    errors.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args)
    if state_missing(settings, quiet_stdout=args.json):
        return 0
    store = StateStore(settings.sync.state_path)
    records = store.attention(settings.crm.instance)
    store.close()
    if args.json:
        for record in records:
            print(json.dumps(record.__dict__))
        return 0
    if not records:
        print(f"no records need attention in instance {settings.crm.instance}")
        return 0
    print(f"{len(records)} record(s) need attention in instance {settings.crm.instance}:")
    for record in records:
        where = f"{record.object_type}/{record.contact_id}"
        print(
            f"  {where:<28} {record.field or 'record':<22} {record.reason}"
            f"  (since {record.since[:16]}, {record.attempts} attempt(s),"
            f" next {(record.next_at or '-')[:16]})"
        )
    return 0
