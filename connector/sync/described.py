"""The CRM's description of each object type a run writes, asked once a run: whether the
owned fields can hold what we write there (checked before the run reads), and what a record
needing attention is retried on (a changed field in the CRM is a possible fix)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from crm_qualify.connector.contract import Adapter, AdapterError, FieldInfo
from crm_qualify.connector.field_fit import misfit_error, misfits
from crm_qualify.connector.owned_values import OwnedFields
from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.fingerprints import config_fingerprint, decision_fingerprint
from crm_qualify.connector.sync.state import StateStore

FIT_CHECKED_KEY = "owned_fields_fit_with"
"""The configuration and mapping (`decision_fingerprint`) whose owned fields a run last found
able to hold what it writes (`check_fit`)."""


class Described:
    """One run's look-ups of the CRM's field descriptions, each object type asked once."""

    def __init__(self, adapter: Adapter, settings: Settings) -> None:
        self.adapter = adapter
        self.settings = settings
        self._config_hash: str | None = None
        """`config_fingerprint`, taken when a fingerprint is first asked for."""
        self._fields: dict[str, dict[str, FieldInfo]] = {}
        self._fingerprints: dict[str, str] = {}

    def fields(self, object_type: str) -> dict[str, FieldInfo]:
        """The CRM's description of one object type ({} if asking failed)."""
        if object_type not in self._fields:
            try:
                self._fields[object_type] = self.adapter.describe_fields(object_type)
            except AdapterError:
                self._fields[object_type] = {}
        return self._fields[object_type]

    def fingerprint(self, object_type: str) -> str:
        """What a record needing attention is retried on: the configuration, the mapping
        and the adapter (`config_fingerprint`), and the CRM's description of its object type
        (one look-up per type)."""
        if object_type not in self._fingerprints:
            if self._config_hash is None:
                self._config_hash = config_fingerprint(self.settings)
            digest = hashlib.sha256(self._config_hash.encode())
            fields = self.fields(object_type)
            for name in sorted(fields):
                info = fields[name]
                digest.update(f"{name}:{info.type}:{info.writable}:{info.options}".encode())
            self._fingerprints[object_type] = digest.hexdigest()[:16]
        return self._fingerprints[object_type]


def check_fit(
    described: Described, store: StateStore, instance: str, settings: Settings, *, dry_run: bool
) -> None:
    """Before the run reads (a field that cannot hold what we write there often cannot be
    read as ours either: every record failed its read, and the one error that said why came
    last): each field the configuration owns can hold what we write there (`field_fit`), else
    `ConfigError` naming each. Asked on the first run with a configuration and mapping only
    (`FIT_CHECKED_KEY`): the describes would cost every incremental run two requests. A field
    changed in the CRM after that check fails record by record, each error naming it
    (`crm-qualify doctor` checks every time). Checked for adapters that say which fields
    they write on each object (`owned_fields`)."""
    checked_with = decision_fingerprint(settings)
    if store.get_meta(instance, FIT_CHECKED_KEY) == checked_with:
        return
    adapter = described.adapter
    owned_fields: Mapping[str, OwnedFields] = getattr(adapter, "owned_fields", {})
    names = {name for name, policy in settings.fields.items() if policy.owned}
    setup = adapter.name if callable(getattr(adapter, "setup", None)) else None
    found = [  # an object whose describe failed is judged by the next run
        misfit
        for object_type, owned in owned_fields.items()
        if (fields := described.fields(object_type))
        for misfit in misfits(object_type, owned, fields, names, missing=True, setup=setup)
    ]
    if found:
        raise misfit_error(found)
    every_one = all(described.fields(object_type) for object_type in owned_fields)
    if owned_fields and every_one and not dry_run:  # a failed describe: next run
        store.set_meta(instance, FIT_CHECKED_KEY, checked_with)
