"""Faults a test queues for the next requests of one kind, so every failure a connector meets
can be replayed against every request it makes.

    sim.faults.add("lost", request="upsert")            # applied, then the connection dropped
    sim.faults.add("502", times=2, request="query")     # an HTML gateway page, twice
    sim.faults.add("foreign_instance", request="login")  # the token answer names another host

Kinds, by when they strike:
- before the request is processed (nothing changes in the org): `429`, `503`, `500`, `502`
  (an HTML body, as a load balancer sends), `reset` (the connection closed without an answer),
  `INVALID_SESSION_ID` (every session ends: 401), `REQUEST_LIMIT_EXCEEDED` (403), `redirect`
  (307 to `redirect_to`);
- after it was processed (the org changed, the client cannot know): `lost` (the connection is
  dropped instead of answering), `timeout` (the answer is held `delay` seconds, past the
  client's timeout);
- inside it: `UNABLE_TO_LOCK_ROW` (the first record of a collection fails with it; any other
  request fails whole), `foreign_instance` (a login answer whose `instance_url` is another
  host).

Request kinds (`request_kind`): login, query, queryMore, task lookup (a query of Task by its
external id field), update / create / delete (sObject Collections), upsert (Collections by
external id), describe, limits, record (single-record CRUD), other. A fault without `request`
strikes any API request but never a login, as before request kinds existed.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .schema import OBJECTS

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

BEFORE = frozenset(
    {
        "429",
        "503",
        "500",
        "502",
        "reset",
        "INVALID_SESSION_ID",
        "REQUEST_LIMIT_EXCEEDED",
        "redirect",
    }
)
AFTER = frozenset({"lost", "timeout"})
KINDS = BEFORE | AFTER | {"UNABLE_TO_LOCK_ROW", "foreign_instance"}
REQUESTS = frozenset(
    {
        "login", "query", "queryMore", "task lookup", "update", "create", "upsert", "delete",
        "describe", "limits", "record", "other",
    }
)  # fmt: skip

_KEYS = "|".join(name for name, spec in OBJECTS["Task"].items() if spec.get("externalId"))
_TASK_LOOKUP = re.compile(
    rf"\bFROM\s+Task\b.*\bWHERE\b.*\b(?:{_KEYS})\s*(?:IN\s*\(|!=|<>|=\s*')", re.I | re.S
)
_COLLECTION = {"PATCH": "update", "POST": "create", "DELETE": "delete"}


def request_kind(method: str, path: str, soql: str = "") -> str:
    """What a request is, for choosing which faults strike it."""
    if path == "/services/oauth2/token" or path.startswith("/services/Soap/u/"):
        return "login"
    resource = re.sub(r"^/services/data/v[\d.]+/?", "", path).rstrip("/")
    if resource in ("query", "queryAll"):
        return "task lookup" if _TASK_LOOKUP.search(soql) else "query"
    if resource.startswith(("query/", "queryAll/")):
        return "queryMore"
    if resource == "composite/sobjects":
        return _COLLECTION.get(method, "other")
    if resource.startswith("composite/sobjects/") and method == "PATCH":
        return "upsert"
    if resource.endswith("/describe"):
        return "describe"
    if resource == "limits":
        return "limits"
    return "record" if resource.startswith("sobjects/") else "other"


@dataclass
class _Queued:
    kind: str
    times: int
    path_contains: str | None
    request: str | None

    def strikes(self, request: str, path: str) -> bool:
        if self.path_contains and self.path_contains not in path:
            return False
        return self.request == request if self.request else request != "login"


RANDOM_KINDS = (
    "429",
    "503",
    "500",
    "502",
    "reset",
    "lost",
    "timeout",
    "INVALID_SESSION_ID",
    "UNABLE_TO_LOCK_ROW",
)
"""The everyday failures a random mix draws from (`redirect` and `foreign_instance` are
attacks, `REQUEST_LIMIT_EXCEEDED` ends the day: each has its own tests)."""


class Faults:
    """Queued faults, consumed in order by the requests they match; `rate` adds random 503s
    to API requests, or any `random_kinds` after `set_random`."""

    KINDS = KINDS

    def __init__(self, sim: SalesforceSimulator, rate: float, seed: int) -> None:
        self.sim, self.rate, self.rng = sim, rate, random.Random(seed)
        self.random_kinds: tuple[str, ...] = ("503",)
        self.injected: Counter[str] = Counter()
        """Faults served so far, by kind (queued and random)."""
        self.queue: list[_Queued] = []
        self.lock = threading.Lock()
        self.delay = 1.0
        """Seconds a `timeout` fault holds the answer back."""
        self.redirect_to = "https://elsewhere.example"
        """Where a `redirect` fault points (the request's path is kept)."""
        self.foreign_instance = "https://org.elsewhere.example"
        """The `instance_url` a `foreign_instance` login answer names."""

    def add(
        self,
        kind: str,
        times: int = 1,
        path_contains: str | None = None,
        request: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(KINDS)}")
        if request is not None and request not in REQUESTS:
            raise ValueError(
                f"unknown request kind {request!r}; expected one of {sorted(REQUESTS)}"
            )
        if kind == "foreign_instance" and request not in (None, "login"):
            raise ValueError("a foreign_instance fault strikes logins only")
        request = "login" if kind == "foreign_instance" else request
        with self.lock:
            self.queue.append(_Queued(kind, times, path_contains, request))

    def take(self, request: str, path: str) -> str | None:
        """The fault that strikes this request, if any (consumed)."""
        with self.lock:
            for fault in self.queue:
                if fault.strikes(request, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.queue.remove(fault)
                    self.injected[fault.kind] += 1
                    return fault.kind
            if self.rate and request != "login" and self.rng.random() < self.rate:
                kind = self.rng.choice(self.random_kinds)
                self.injected[kind] += 1
                return kind
        return None

    def set_random(
        self, rate: float, kinds: tuple[str, ...] = RANDOM_KINDS, delay: float = 1.0
    ) -> None:
        """Strike a random `rate` of API requests with one of `kinds`, from the seeded RNG;
        `delay` is how long a `timeout` holds its answer."""
        unknown = set(kinds) - KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        with self.lock:
            self.rate, self.random_kinds, self.delay = rate, tuple(kinds), delay

    def clear(self) -> None:
        with self.lock:
            self.queue.clear()
