"""Which (fault, request) pairs the fault matrices run.

A write is where a fault can duplicate or lose something, so every fault meets every write
request. A read is idempotent and retried the same way whatever the fault, so in the default
suite each read request meets one fault, in rotation, and every fault still meets some read.
`CRMQ_FULL_MATRIX=1` runs the whole cross product (about four times the cases; a few minutes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

FULL = os.environ.get("CRMQ_FULL_MATRIX") == "1"


def fault_cases(
    faults: Sequence[str], requests: Sequence[str], writes: Sequence[str]
) -> list[tuple[str, str]]:
    """(fault, request) pairs: every fault on every write; reads in rotation (all if FULL)."""
    unknown = set(writes) - set(requests)
    if unknown:
        raise ValueError(f"writes not among the requests: {sorted(unknown)}")
    if FULL:
        return [(fault, request) for fault in faults for request in requests]
    cases = [(fault, request) for request in writes for fault in faults]
    reads = [request for request in requests if request not in writes]
    for turn in range(max(len(reads), len(faults))):
        cases.append((faults[turn % len(faults)], reads[turn % len(reads)]))
    return cases
