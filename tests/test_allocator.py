"""The malloc arena cap the CLI sets before any thread starts (`ops/allocator.py`)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import ctypes, threading
from crm_qualify.connector.ops.allocator import limit_malloc_arenas
print(limit_malloc_arenas())
def churn():
    for _ in range(20):
        block = [bytes(200) for _ in range(20_000)]
        del block
threads = [threading.Thread(target=churn) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas_after_threads(env: dict[str, str]) -> tuple[str, int]:
    """Whether the cap was set, and how many arenas glibc's `malloc_stats` lists once six
    threads have allocated (without the cap: one per thread, up to 8 per core)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return done.stdout.split()[0], done.stderr.count("Arena ")


def test_the_cap_keeps_threads_to_two_arenas():
    capped, arenas = arenas_after_threads({"PATH": "/usr/bin:/bin"})
    assert capped == "True" and arenas == 2


def test_an_arena_limit_in_the_environment_wins():
    capped, arenas = arenas_after_threads({"PATH": "/usr/bin:/bin", "MALLOC_ARENA_MAX": "3"})
    assert capped == "False" and arenas == 3
