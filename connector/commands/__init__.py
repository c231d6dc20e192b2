"""Subcommands of `crm-qualify`; each module has `register(subparsers)`."""

from connector.commands import config, doctor, schema, score, simulate, sync

COMMAND_MODULES = (score, schema, config, sync, doctor, simulate)
