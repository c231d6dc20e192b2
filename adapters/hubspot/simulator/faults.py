"""Deterministic fault injection for resilience tests.

Faults are queued with `add()` and consumed in order by the requests they match (optionally
only requests whose path contains `path_contains`, or whose path / batch inputs mention one of
`ids`). `fault_rate` adds random 429/500/502/503 answers drawn from a seeded RNG.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

KINDS = frozenset({"429", "500", "502", "503", "slow", "drop", "207", "expire_token"})
RANDOM_KINDS = ("429", "500", "502", "503")
BATCH_WRITES = ("/batch/update", "/batch/create", "/batch/read")


@dataclass
class Fault:
    kind: str
    times: int
    path_contains: str | None
    ids: frozenset[str] | None


class Faults:
    """The injection queue; `take` is called once per request by the server."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._rng = random.Random(seed)
        self._queue: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        kind: str,
        times: int = 1,
        path_contains: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> None:
        """Queue `times` faults of `kind`; "207" fails the given object / trace ids per row
        (the first input of the batch when no ids are given)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queue.append(
                Fault(
                    kind,
                    times,
                    path_contains,
                    frozenset(str(i) for i in ids) if ids is not None else None,
                )
            )

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, path: str, referenced: Callable[[], set[str]]) -> Fault | None:
        """The first queued fault matching this request (consumed), else maybe a random one."""
        refs: set[str] | None = None
        with self._lock:
            for fault in self._queue:
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.kind == "207" and not path.endswith(BATCH_WRITES):
                    continue
                if fault.ids is not None:
                    refs = referenced() if refs is None else refs
                    if not fault.ids & refs:
                        continue
                fault.times -= 1
                if fault.times == 0:
                    self._queue.remove(fault)
                return fault
            if self.rate > 0 and self._rng.random() < self.rate:
                return Fault(self._rng.choice(RANDOM_KINDS), 1, None, None)
        return None
