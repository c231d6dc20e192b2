"""`crm-qualify doctor` and `crm-qualify setup <crm>`: check, then prepare, a CRM for the sync."""

from __future__ import annotations

import argparse
import sys

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    settings_or_exit,
)
from crm_qualify.connector.contract import Adapter, AdapterError, CheckResult
from crm_qualify.connector.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check credentials, permissions, fields and stage values; writes nothing",
    )
    add_config_argument(doctor)
    doctor.set_defaults(handler=run_doctor)
    setup = subparsers.add_parser(
        "setup",
        help="create the custom fields the mapping needs, where the CRM allows it",
    )
    setup.add_argument("crm", help="adapter name, e.g. hubspot (must match crm.adapter)")
    add_config_argument(setup)
    setup.set_defaults(handler=run_setup)


def print_results(results: list[CheckResult]) -> bool:
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        print(f"[{mark}] {result.name}" + (f": {result.detail}" if result.detail else ""))
    return all(result.ok for result in results)


def _adapter(args: argparse.Namespace) -> tuple[Settings, Adapter]:
    settings = settings_or_exit(args)
    return settings, adapter_or_exit(settings)


def run_doctor(args: argparse.Namespace) -> int:
    _, adapter = _adapter(args)
    try:
        return 0 if print_results(adapter.check()) else 1
    except AdapterError as exc:
        print(f"[FAIL] {type(exc).__name__}: {exc}")
        return 1


def run_setup(args: argparse.Namespace) -> int:
    settings, adapter = _adapter(args)
    if args.crm != settings.crm.adapter:
        print(
            f"setup {args.crm}: the configuration uses crm.adapter = {settings.crm.adapter!r}",
            file=sys.stderr,
        )
        return 2
    setup = getattr(adapter, "setup", None)
    if setup is None:
        print(f"{args.crm}: this CRM's fields are created by an admin; run doctor for the list")
        return 1
    try:
        return 0 if print_results(setup()) else 1
    except AdapterError as exc:
        print(f"[FAIL] {type(exc).__name__}: {exc}")
        return 1
