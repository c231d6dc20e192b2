"""The portal's sync lease: one writer (sync, daemon run or rollback) per portal at a time.

The lease names its holder (host, pid) and lives about a minute; a heartbeat thread renews it
while the holder works, so a long batch never loses it and a killed process blocks the portal
for at most a minute (at once on the same host, where a dead pid is taken over immediately).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from crm_qualify.connector.sync.state import (
    LEASE_SECONDS,
    StateStore,
    StateStoreError,
    holder_parts,
    lock_holder,
    sync_lock_name,
)

log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another live process holds the portal's lease; the message names it and its expiry."""


class Lease:
    """Acquire with `with Lease(store, instance, "sync"):`; renewed every third of its TTL."""

    def __init__(
        self,
        store: StateStore,
        instance: str,
        role: str,
        *,
        ttl_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.instance = instance
        self.name = sync_lock_name(instance)
        self.holder = lock_holder(role)
        self.ttl = ttl_seconds
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease or raise `LeaseHeld`; starts the heartbeat."""
        if not self.store.acquire_lock(self.name, self.holder, self.ttl, self.clock()):
            raise LeaseHeld(refusal(self.store, self.instance))
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def renew(self) -> None:
        self.store.acquire_lock(self.name, self.holder, self.ttl, self.clock())

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.store.release_lock(self.name, self.holder)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except StateStoreError as exc:
                log.error("cannot renew the sync lease: %s", exc)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def refusal(store: StateStore, instance: str) -> str:
    """Who holds the portal's lease and until when, for the message a refused run prints."""
    info = store.lock_info(sync_lock_name(instance))
    if info is None:
        return f"another sync or rollback of {instance} just took the lease; try again"
    holder, expires_at = info
    host, pid, role = holder_parts(holder)
    who = f"a {role or 'process'} (pid {pid} on {host})" if pid is not None else repr(holder)
    until = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"{who} holds the sync lease of {instance} until {until} unless it renews it;"
        " nothing was done, try again when it ends"
    )
