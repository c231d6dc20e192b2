"""A full read (a reconciliation): when one is due, where it starts, and what it finds gone.

A full read may span runs: its start is kept in the state store until every record it read
is decided too, and a run that stopped goes on from its cursor. What it did not return once
it reached its end is gone from the CRM (deleted, or merged away): it leaves the mirror and
the identity index before anyone is grouped and decided.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.settings import Settings
from crm_qualify.connector.sync.fingerprints import (
    DECIDED_WITH_KEY,
    READ_WITH_KEY,
    decision_fingerprint,
    read_fingerprint,
)
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.state import StateStore

log = logging.getLogger(__name__)

CONTACTS_STREAM = "contacts"
FULL_STARTED_KEY = "full_read_started_at"
"""Set while a full read is under way (it may span runs); pruning waits for its end."""
FULL_DONE_KEY = "full_read_done_at"


class FullRead:
    """One run's view of the full read: whether it reads everyone, and since when."""

    def __init__(self, store: StateStore, instance: str, settings: Settings) -> None:
        self.store = store
        self.instance = instance
        self.settings = settings
        self.started: datetime | None = None
        """When the full read this run reads (or goes on reading) began; None: incremental."""
        self.read_to_end = False
        """Its last batch came in this run."""
        self._unmet_retries: set[tuple[str, str]] | None = None
        """A full read begun in this run: the records with a retry or needing attention that
        it has not met yet. Those it never meets are gone from the CRM (`drop_unseen`)."""
        self._before: dict[str, str | None] | None = None
        """The state's keys as they were before this run began a full read (`forget_start`)."""

    def start(self, *, full: bool, dry_run: bool) -> str | None:
        """The cursor to read from, after deciding whether this run reads everyone (`full`:
        `sync --full`); a dry run records no start."""
        self.started, self.read_to_end = None, False
        self._unmet_retries, self._before = None, None
        cursor = self.store.get_cursor(self.instance, CONTACTS_STREAM)
        started = self.store.get_meta(self.instance, FULL_STARTED_KEY)
        read_with = read_fingerprint(self.settings)
        reread = self._read_with_other_settings(read_with, dry_run)
        if reread or (started is None and (cursor is None or self._due(full))):
            started = datetime.now(UTC).isoformat()
            if not dry_run:
                self._before = {
                    key: self.store.get_meta(self.instance, key)
                    for key in (FULL_STARTED_KEY, READ_WITH_KEY)
                }
                self.store.set_meta(self.instance, FULL_STARTED_KEY, started)
                self.store.set_meta(self.instance, READ_WITH_KEY, read_with)
            cursor = None
            log.info("full read: every record is read to reconcile the mirror")
            self._unmet_retries = self.store.retry_keys(self.instance)
        self.started = datetime.fromisoformat(started) if started else None
        return cursor

    def _read_with_other_settings(self, now_with: str, dry_run: bool) -> bool:
        """Whether the mirror was read, or its full read under way began, with settings other
        than `now_with` (`read_fingerprint`: mapping, owned fields, identity rules): a full
        read (again) then brings and groups every record as it reads now."""
        read_with = self.store.get_meta(self.instance, READ_WITH_KEY)
        if read_with is None:  # a state file from before the key: unchanged if nothing is
            decided_with = self.store.get_meta(self.instance, DECIDED_WITH_KEY)
            if decided_with in (None, decision_fingerprint(self.settings)):
                if not dry_run:
                    self.store.set_meta(self.instance, READ_WITH_KEY, now_with)
                return False
        elif read_with == now_with:
            return False
        log.info(
            "mirror read with another mapping, owned fields, identity rules or version: reading all"
        )
        return True

    def _due(self, full: bool) -> bool:
        if full:
            return True
        days = self.settings.sync.reconcile_every_days
        done = self.store.get_meta(self.instance, FULL_DONE_KEY)
        if days <= 0:
            return False
        if done is None:
            return True  # a state file from before the mirror: fill it once
        return datetime.now(UTC) - datetime.fromisoformat(done) >= timedelta(days=days)

    def forget_start(self) -> None:
        """A full read this run began on a clock found wrong is not begun: its start (our
        clock's, days off) would resume with the next run and prune every record read on the
        right one as unseen since."""
        for key, value in (self._before or {}).items():
            if value is None:
                self.store.delete_meta(self.instance, key)
            else:
                self.store.set_meta(self.instance, key, value)

    def met(self, *keys: Iterable[tuple[str, str] | None]) -> None:
        """Records the read returned (translated or not): not gone."""
        if self._unmet_retries:
            for some in keys:
                self._unmet_retries.difference_update(key for key in some if key)

    def ended(self, *, whole: bool) -> datetime | None:
        """When this run's full read began, if it reached its end in this run (`whole`: no
        `limit`, no stop); else None."""
        return self.started if self.read_to_end and whole else None

    def drop_unseen(self, people: People, *, whole: bool) -> int:
        """A full read that reached its end: what it did not return leaves the mirror and the
        identity index, before anyone is grouped and decided (kept until after the mirror
        phase, a deleted duplicate was grouped with its person's records left and its
        activity decided with them, which stayed so until the next full read). Returns how
        many records left."""
        started = self.ended(whole=whole)
        if started is None:
            return 0
        unseen = self.store.mirror.unseen(self.instance, started)
        self.store.to_recheck(
            self.instance, self.store.mirror.open_follow_ups(self.instance, unseen)
        )
        if self._unmet_retries:  # first: a record waiting for a retry is never pruned
            self.store.clear_retries(self.instance, list(self._unmet_retries))
            log.info(
                "full read done: %d record(s) with a retry or needing attention are no longer"
                " in the CRM",
                len(self._unmet_retries),
            )
        gone = self.store.mirror.prune_unseen(self.instance, started)
        people.prune(self.instance)
        if gone:
            log.info("full read done: %d record(s) no longer in the CRM left the mirror", gone)
        return gone

    def unseen(self, *, whole: bool) -> set[tuple[str, str]]:
        """What a dry full read that reached its end finds gone, the mirror left unchanged."""
        started = self.ended(whole=whole)
        return set(self.store.mirror.unseen(self.instance, started)) if started else set()

    def finish(self, *, whole: bool, dry_run: bool) -> None:
        """A full read whose records are all decided too is done: the next is due
        `sync.reconcile_every_days` from now. One stopped while deciding goes on next run."""
        if not dry_run and self.ended(whole=whole) is not None:
            self.store.set_meta(self.instance, FULL_DONE_KEY, datetime.now(UTC).isoformat())
            self.store.delete_meta(self.instance, FULL_STARTED_KEY)
