"""The malloc settings the CLI makes before any thread starts (`ops/allocator.py`): the arena
cap and the fixed mmap threshold; and the trim that gives freed heap pages back."""

from __future__ import annotations

import subprocess
import sys

CLEAN = {"PATH": "/usr/bin:/bin"}
RESIDENT = """
import os
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
"""


def snippet(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter: glibc's settings hold for a process from its start."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )


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
    done = snippet(PROBE, env=env)
    return done.stdout.split()[0], done.stderr.count("Arena ")


def test_the_cap_keeps_threads_to_two_arenas():
    capped, arenas = arenas_after_threads(CLEAN)
    assert capped == "True" and arenas == 2


def test_an_arena_limit_in_the_environment_wins():
    capped, arenas = arenas_after_threads({**CLEAN, "MALLOC_ARENA_MAX": "3"})
    assert capped == "False" and arenas == 3


FREED = f"""{RESIDENT}
import ctypes, sys
from crm_qualify.connector.ops.allocator import fix_mmap_threshold
print(fix_mmap_threshold() if sys.argv[1] == "fix" else "-")
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Mallinfo2
block = b"x" * (8 << 20)
del block  # glibc's own rule would now serve the next 8 MB from the heap, and keep it
mapped_before = mallinfo2().hblkhd
block = b"x" * (8 << 20)
print(mallinfo2().hblkhd - mapped_before >= 8 << 20)
before = resident()
del block
print(round((before - resident()) / (1 << 20)))  # a page or two may be touched between
"""


def freeing_a_large_block(fix: bool, env: dict[str, str]) -> tuple[str, str, int]:
    """Whether the threshold was fixed, whether a second 8 MB block was mapped on its own
    (glibc's `mallinfo2`), and how many MB it gives back to the system when it is freed."""
    done = snippet(FREED, "fix" if fix else "leave", env=env)
    fixed, mapped, returned = done.stdout.split()
    return fixed, mapped, int(returned)


def test_a_fixed_mmap_threshold_gives_a_freed_large_block_back():
    assert freeing_a_large_block(True, CLEAN) == ("True", "True", 8)
    assert freeing_a_large_block(False, CLEAN) == ("-", "False", 0)


def test_an_mmap_threshold_in_the_environment_wins():
    """The variable's 64 MB threshold holds: the block comes from the heap. (Whether the heap
    then gives it back depends on what lies above it, so only the mapping is asserted.)"""
    env = {**CLEAN, "MALLOC_MMAP_THRESHOLD_": str(64 << 20)}
    fixed, mapped, _ = freeing_a_large_block(True, env)
    assert (fixed, mapped) == ("False", "False")


TRIMMED = f"""{RESIDENT}
from crm_qualify.connector.ops.allocator import fix_mmap_threshold, give_back_free_memory
fix_mmap_threshold()
blocks = [bytearray(4096) for _ in range(10_000)]  # 40 MB of the heap, not of pymalloc
last = bytearray(4096)  # survives, above the rest: the heap's top cannot shrink past it
del blocks
before = resident()
print(give_back_free_memory())
print(round((before - resident()) / (1 << 20)))
"""


def test_a_trim_gives_back_the_free_pages_below_what_survives():
    trimmed, returned = snippet(TRIMMED, env=CLEAN).stdout.split()
    assert trimmed == "True"
    assert int(returned) >= 30
