"""Scratch files in memory when the machine has a tmpfs.

The state store commits (and so fsyncs) at every step of the write protocol, and nearly
every test syncs into a state file under `tmp_path`: on a disk shared with other work those
fsyncs were a large part of the suite's time. A process killed with SIGKILL (tests/test_kill)
leaves the page cache to the next one on tmpfs exactly as on disk, and no test asserts what a
power cut leaves. Subprocesses inherit TMPDIR; a TMPDIR set by the user is kept, and a small
tmpfs (a container's default 64 MB) is left alone: the suite writes a few hundred MB.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator

import pytest

MEMORY = "/dev/shm"
ROOM = 2 * 1024**3
"""Free bytes the tmpfs must have to be used."""


def _roomy(path: str) -> bool:
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize >= ROOM


def pytest_configure(config: pytest.Config) -> None:
    if "TMPDIR" not in os.environ and os.access(MEMORY, os.W_OK) and _roomy(MEMORY):
        os.environ["TMPDIR"] = MEMORY
        tempfile.tempdir = None  # gettempdir() may have cached /tmp already


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`main` and `configure_logging` put a handler (with its redacting filter) on the root
    logger: later tests must neither write to a finished test's stream nor see its filter."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
