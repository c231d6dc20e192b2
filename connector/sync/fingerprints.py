"""What the engine's stored outcomes were made with, as digests: when one changes, what it
covers is done again (records needing attention retried, everyone decided again, every
record read again). Secrets never enter them (`adapter_identity`)."""

from __future__ import annotations

import hashlib
from importlib import resources

from crm_qualify.connector.decision.duplicates import GROUPING_VERSION
from crm_qualify.connector.plugins import adapter_identity
from crm_qualify.connector.settings import Settings

DECIDED_WITH_KEY = "mirror_decided_with"
"""Where `decision_fingerprint` of the configuration every mirrored contact was last decided
with is kept: when it changes, everyone is decided again; otherwise only those whose
decision can have moved (`next_review`)."""
READ_WITH_KEY = "mirror_read_with"
"""Where `read_fingerprint` of the last full read (or the one under way) is kept: when it
changes, the next run reads every record again, whatever `reconcile_every_days` says."""
FACTS_VERSION = 1
"""Raised when a code change moves what a read puts in the mirror (1: events carry the id of
the CRM activity they are, `EngagementEvent.source_id`): the next run reads every record
again, so no person is made of records read before and after the change."""


def config_fingerprint(settings: Settings) -> str:
    """The configuration, mapping and adapter a record's outcome depends on: what a record
    needing attention is retried on. The adapter counts by its package's version and its
    non-secret options (`adapter_identity`: a rotated token is no fix); what only runs the
    program (schedule, logs, the server, calibration) is left out: turning on DEBUG to look
    into an error would re-read and report it again."""
    operations = {"adapters", "schedule", "logging", "server", "calibrate"}
    config = settings.model_dump_json(exclude=operations) + _mapping_text(settings)
    config += adapter_identity(settings)
    return hashlib.sha256(config.encode()).hexdigest()


def decision_fingerprint(settings: Settings) -> str:
    """What a decision and its diff depend on: the rules, who is one person (`[identity]`:
    its review task too), the field policies, the mapping."""
    config = settings.rules.model_dump_json() + settings.identity.model_dump_json()
    config += str(sorted(settings.fields.items()))
    return hashlib.sha256((config + _mapping_text(settings)).encode()).hexdigest()


def read_fingerprint(settings: Settings) -> str:
    """What the mirrored facts, and the persons made of them, depend on: the mapping, which
    fields are owned (an adapter reads no other, `mapping.owned_only`), and the identity
    rules that group records (all but `review_task`, which only decides; and the code's own,
    `GROUPING_VERSION`, `FACTS_VERSION`). The mirror holds no CRM value of a field it did not
    read, so deciding a newly owned field from it would take the CRM's value for empty and
    overwrite it, whatever its policy; facts translated under another mapping are stale; and
    persons are regrouped only as their records are read (a full read indexes every record
    under the rules it reads with, then groups everyone)."""
    owned = sorted(name for name, policy in settings.fields.items() if policy.owned)
    grouping = settings.identity.model_dump_json(exclude={"review_task"}) + str(GROUPING_VERSION)
    text = str(owned) + grouping + f"facts {FACTS_VERSION}" + _mapping_text(settings)
    return hashlib.sha256(text.encode()).hexdigest()


def _mapping_text(settings: Settings) -> str:
    """The mapping file's text (configured or bundled), or "" for an adapter without one."""
    try:
        if settings.crm.mapping_file:
            return settings.crm.mapping_file.read_text("utf-8")
        bundled = resources.files("crm_qualify.mappings").joinpath(f"{settings.crm.adapter}.toml")
        return bundled.read_text("utf-8") if bundled.is_file() else ""
    except OSError:
        return ""
