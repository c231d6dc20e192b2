"""Subcommands of `crm-qualify`; each module has `register(subparsers)`."""

from crm_qualify.connector.commands import (
    calibrate,
    compact,
    config,
    demo,
    doctor,
    duplicates,
    errors,
    report,
    run,
    runs,
    schema,
    score,
    simulate,
    sync,
)

COMMAND_MODULES = (
    demo,
    score,
    schema,
    config,
    sync,
    run,
    runs,
    errors,
    report,
    calibrate,
    duplicates,
    doctor,
    simulate,
    compact,
)
