"""Request accounting for tests and benchmarks: requests by endpoint and status, records
written. Endpoints are counted under short keys (`PATCH composite/sobjects`)."""

from __future__ import annotations

import re
import threading
from collections import Counter


def endpoint(method: str, path: str) -> str:
    """`PATCH composite/sobjects`: the version prefix, ids and query locators left out."""
    resource = re.sub(r"^/services/data/v[\d.]+/", "", path).rstrip("/")
    resource = re.sub(r"^query/.*", "query/more", resource)
    resource = re.sub(r"^sobjects/(\w+)/\w{15,18}$", r"sobjects/\1/{id}", resource)
    resource = re.sub(r"^jobs/(ingest|query)/\w{15,18}", r"jobs/\1/{id}", resource)
    return f"{method} {resource}"


class Endpoints(Counter[str]):
    """Counts under short keys; a full-path key ("GET /services/data/v59.0/limits") reads too."""

    def __missing__(self, key: str) -> int:
        method, _, path = key.partition(" ")
        short = endpoint(method, path)
        return self[short] if short != key and short in self else 0


class Stats:
    """Requests by endpoint and status, and records written (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_endpoint: Endpoints = Endpoints()
            self.by_status: Counter[int] = Counter()
            self.writes = 0

    def count(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.by_endpoint[endpoint(method, path)] += 1
            self.by_status[status] += 1

    def wrote(self, records: int) -> None:
        with self._lock:
            self.writes += records
