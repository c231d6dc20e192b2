"""Deterministic fault injection for resilience tests.

Faults are queued with `add()` and consumed in order by the requests they match: every
request, or only those of one `request` kind, whose path contains `path_contains`, or whose
path / batch inputs mention one of `ids`. `fault_rate` adds random 429/500/502/503 answers
drawn from a seeded RNG; `set_random(rate, kinds)` draws from any other kinds too.

Kinds, by when they act:

| kind | what the client meets | did the request act? |
|---|---|---|
| `429` `500` `503` | that status with HubSpot's JSON error body | no |
| `502` | a gateway's HTML page (not JSON) | no |
| `401` | 401 EXPIRED_AUTHENTICATION, as for an expired token | no |
| `expire_token` | every issued OAuth access token expires now (then the request goes on) | yes |
| `reset` | the connection is reset (RST) without an answer | no |
| `drop` | the connection is closed (FIN) without an answer | no |
| `slow` | the answer starts after `delay` seconds (default 2) | yes, after the delay |
| `lost` | the request is served, then the connection closes without the answer | yes |
| `timeout` | served; the answer waits `delay` seconds (past the client's timeout) | yes |
| `207` | batch read / update / create: the ids given (or the first input) fail | the rest |

Request kinds (`request=`): `list`, `create`, `read`, `update`, `archive`, `search`,
`batch_read`, `batch_update`, `batch_create`, `batch_archive`, `associations`, `pipelines`,
`properties`, `property_groups`, `owners`, `oauth`; or narrowed by object type, the types
first: `tasks.batch_create`, `tasks.search`, `contacts.batch_read`, `deals.batch_read`,
`contacts.deals.associations`, `deals.pipelines`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .schema import resolve_type

KINDS = frozenset(
    {
        "429",
        "500",
        "502",
        "503",
        "401",
        "slow",
        "drop",
        "reset",
        "lost",
        "timeout",
        "207",
        "expire_token",
    }
)
AFTER_SERVING = frozenset({"lost", "timeout"})
"""Kinds that let the request act and then spoil its answer."""
RANDOM_KINDS = ("429", "500", "502", "503")
BATCH_WRITES = ("/batch/update", "/batch/create", "/batch/read")
TYPE_PARAMS = ("objectType", "fromObjectType", "toObjectType")
_SINGLE = {"GET": "read", "PATCH": "update", "DELETE": "archive"}


@dataclass
class Fault:
    kind: str
    times: int
    path_contains: str | None
    ids: frozenset[str] | None
    request: str | None = None
    delay: float = 2.0


def request_names(method: str, template: str, params: dict[str, str]) -> tuple[str, ...]:
    """The kind of a request (`batch_create`) and the same narrowed by its object types
    (`tasks.batch_create`), as `add(request=...)` names them."""
    name = _request_name(method, template)
    types = [resolve_type(params[p]) or params[p] for p in TYPE_PARAMS if p in params]
    return (name, ".".join([*types, name])) if types else (name,)


def _request_name(method: str, template: str) -> str:
    last = template.rsplit("/", 1)[-1]
    if template.startswith("/oauth"):
        return "oauth"
    for part, name in (("/associations/", "associations"), ("/pipelines/", "pipelines")):
        if part in template:
            return name
    if template.startswith("/crm/v3/owners"):
        return "owners"
    if template.startswith("/crm/v3/properties"):
        return "property_groups" if last == "groups" else "properties"
    if "/batch/" in template:
        return f"batch_{last}"
    if last == "search":
        return "search"
    if last == "{objectType}":
        return "list" if method == "GET" else "create"
    return _SINGLE.get(method, method.lower())


class Faults:
    """The injection queue; `take` is called once per request by the server."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.random_kinds: tuple[str, ...] = RANDOM_KINDS
        self.random_delay = 2.0
        self.injected: Counter[str] = Counter()
        """Faults served so far, by kind (queued and random)."""
        self._rng = random.Random(seed)
        self._queue: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        kind: str,
        times: int = 1,
        path_contains: str | None = None,
        ids: Iterable[str] | None = None,
        request: str | None = None,
        delay: float = 2.0,
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
                    request,
                    delay,
                )
            )

    def set_random(
        self, rate: float, kinds: Iterable[str] = RANDOM_KINDS, delay: float = 2.0
    ) -> None:
        """Strike a random `rate` of requests with one of `kinds` (any of `KINDS` but 207),
        each drawn from the seeded RNG; `delay` for `slow` and `timeout`."""
        chosen = tuple(kinds)
        unknown = set(chosen) - (KINDS - {"207"})
        if unknown:
            raise ValueError(f"unknown random fault kinds {sorted(unknown)}")
        with self._lock:
            self.rate, self.random_kinds, self.random_delay = rate, chosen, delay

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        """Faults still queued (a test checks its fault was met)."""
        with self._lock:
            return sum(fault.times for fault in self._queue)

    def take(
        self,
        path: str,
        referenced: Callable[[], set[str]],
        requests: tuple[str, ...] = (),
    ) -> Fault | None:
        """The first queued fault matching this request (consumed), else maybe a random one."""
        refs: set[str] | None = None
        with self._lock:
            for fault in self._queue:
                if fault.request and fault.request not in requests:
                    continue
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
                self.injected[fault.kind] += 1
                return fault
            if self.rate > 0 and self._rng.random() < self.rate:
                kind = self._rng.choice(self.random_kinds)
                self.injected[kind] += 1
                return Fault(kind, 1, None, None, delay=self.random_delay)
        return None
