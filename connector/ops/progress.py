"""Progress of a long run: a live line on a terminal, a log line every so often otherwise."""

from __future__ import annotations

import logging
import time
from typing import IO

from crm_qualify.connector.sync.engine import BatchReport

log = logging.getLogger(__name__)


class Progress:
    """Fed by the engine's `on_batch` hook; counts and rate are per run (`start` resets)."""

    def __init__(self, stream: IO[str], every_seconds: float = 30.0) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.every = every_seconds
        self.start()

    def start(self) -> None:
        """A new run: counts and rate from zero."""
        self.started = time.monotonic()
        self.last_line: float | None = None
        self.read = self.scored = self.written = self.tasks = 0

    def batch(self, report: BatchReport) -> None:
        self.read += len(report.contacts)
        self.scored += len(report.decisions)
        self.written += len(report.written)
        self.tasks += len(report.tasks_created)
        now = time.monotonic()
        rate = self.read / max(now - self.started, 1e-6)
        line = (
            f"read {self.read:,} · scored {self.scored:,} · written {self.written:,}"
            f" · tasks {self.tasks:,} · {rate:,.0f} contacts/s"
        )
        if self.interactive:
            self.stream.write("\r" + line + " " * 4)
            self.stream.flush()
            self.last_line = now
        elif self.last_line is None or now - self.last_line >= self.every:
            self.last_line = now
            log.info("progress: %s", line)

    def finish(self) -> None:
        """End of a run: close the live line, so log lines do not land on it."""
        if self.interactive and self.last_line is not None:
            self.stream.write("\n")
            self.stream.flush()
            self.last_line = None
