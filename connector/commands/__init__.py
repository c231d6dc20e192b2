"""Subcommands of `crm-qualify`; each module has `register(subparsers)`."""

from crm_qualify.connector.commands import (
    compact,
    config,
    demo,
    doctor,
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
    doctor,
    simulate,
    compact,
)
