"""Progress of a long command: a live line on a terminal, a log line every so often otherwise.

On a terminal the line is drawn by `rich` on the console the log handler prints through
(`crm_qualify.connector.ops.logs.console_for`), so a log line lands above the progress line
and neither overwrites the other. Piped, or under a log shipper, a `progress: …` log line
every `every_seconds` instead, its numbers as JSON fields in JSON mode.

Fed by the engine's `on_batch` hook (`batch`), or by any long step through `add` (rollback,
`report --from-crm`). The API budget comes from the adapter's `usage()` when given. A step
that adds nothing for `every_seconds` still shows its line, with the API requests made so far
(`_beat`): a first sync reads a portal's forms, events and activities, or waits for a Bulk
job, for minutes before its first batch of contacts, and it showed nothing meanwhile.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

from crm_qualify.connector.contract import ApiUsage
from crm_qualify.connector.ops.logs import console_for
from crm_qualify.connector.sync.engine import BatchReport
from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Column

log = logging.getLogger(__name__)

WORDS = {
    "read": "read",
    "scored": "scored",
    "written": "written",
    "fields": "fields",
    "tasks": "tasks",
    "restored": "restored",
    "held": "left alone",
    "closed": "tasks removed",
}
"""Counters a line can show, in the order it shows them."""
SYNC_COUNTERS = ("read", "scored", "written", "tasks")


class Progress:
    """Counts, rate and API budget of one long step; `start` begins a new one (the daemon
    calls it before every run), `finish` ends it (the live line goes away, the log lines and
    the command's own summary stay)."""

    def __init__(
        self,
        stream: IO[str],
        every_seconds: float = 10.0,
        *,
        label: str = "sync",
        usage: Callable[[], ApiUsage] | None = None,
        sink: Callable[[str], None] | None = None,
        shown: tuple[str, ...] = SYNC_COUNTERS,
        clock: Callable[[], float] = time.monotonic,
        begun: bool = True,
    ) -> None:
        """`sink`: where plain lines go when `stream` is not a terminal (default: the log,
        at INFO). `shown`: the counters always on the line (others show once non-zero).
        `begun=False`: no step runs until `start` (the daemon's, once per run: between runs
        nothing is shown)."""
        self.stream = stream
        self.interactive = stream.isatty()
        self.every = every_seconds
        self.label = label
        self.usage = usage
        self.sink = sink
        self.shown = shown
        self.clock = clock
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        """`add` (the run's thread) and `_beat` (its own) show lines one at a time."""
        self._beats: threading.Event | None = None
        """Set when the step ends: its `_beat` thread stops."""
        self._shown = 0
        """Lines shown in this step: `_beat` shows one only when none came since its last."""
        self.start(beat=begun)

    # a step --------------------------------------------------------------------------------
    def start(
        self,
        label: str | None = None,
        total: int | None = None,
        shown: tuple[str, ...] | None = None,
        *,
        beat: bool = True,
    ) -> None:
        """A new step: counts and rate from zero. `total`, when known, draws a bar. `beat`:
        its line is shown every `every_seconds` even when nothing is added (`_beat`)."""
        self.finish()
        if label:
            self.label = label
        if shown:
            self.shown = shown
        self.total = total
        self.started = self.clock()
        self.last_line: float | None = None
        self.counts: Counter[str] = Counter()
        if beat:
            self._beats = threading.Event()
            threading.Thread(
                target=self._beat, args=(self._beats,), name="progress", daemon=True
            ).start()

    @property
    def read(self) -> int:
        return self.counts["read"]

    def batch(self, report: BatchReport) -> None:
        """The engine's `on_batch` hook."""
        self.add(
            read=report.read,
            scored=report.scored,
            written=len(report.written),
            fields=sum(len(update.changes) for update in report.written),
            tasks=len(report.tasks_created),
        )

    def add(self, done: int = 0, **counts: int) -> None:
        """Add to the counters; `done` advances the bar when a total is known."""
        with self._lock:
            self.counts.update(counts)
            self.counts["done"] += done
            now = self.clock()
            if self.interactive or self.last_line is None or now - self.last_line >= self.every:
                self._show(now)

    def _show(self, now: float) -> None:
        line = self.line(now)
        self.last_line = now
        self._shown += 1
        if self.interactive:
            self._draw(line)
        else:
            self._plain(line)

    def _beat(self, ended: threading.Event) -> None:
        """The step's line every `every_seconds` in which nothing else showed it (a live line
        within a second), until the step ends."""
        seen = self._shown
        every = min(self.every, 1.0) if self.interactive else self.every  # a live line: soon
        while not ended.wait(every):
            with self._lock:
                if ended.is_set():
                    return
                if self._shown == seen:
                    self._show(self.clock())
                seen = self._shown

    def rollback_step(self, step: str, count: int) -> None:
        """`rollback(progress=...)`'s callback: reading back, then restoring and removing."""
        if step == "planned":
            self.start("rollback", total=count, shown=("restored", "closed"))
        elif step == "read":
            self.add(read=count)
        else:
            self.add(done=count, **{step: count})

    def finish(self) -> None:
        """End of the step: its beat stops, and the live line is removed so nothing else
        lands on it."""
        if self._beats is not None:
            self._beats.set()
            self._beats = None
        with self._lock:
            bar, self._bar = self._bar, None
            if bar is not None:
                bar.stop()
            self._task = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.finish()

    # what it says --------------------------------------------------------------------------
    def fields(self, now: float | None = None) -> dict[str, Any]:
        """The numbers of the line, for JSON logs and tests."""
        elapsed = max((now if now is not None else self.clock()) - self.started, 1e-6)
        first = self.shown[0] if self.shown else "read"
        fields: dict[str, Any] = {
            "step": self.label,
            **{key: self.counts[key] for key in WORDS if key in self.shown or self.counts[key]},
            "per_second": round(self.counts[first] / elapsed, 1),
            "elapsed_seconds": round(elapsed, 1),
        }
        if self.total is not None:
            fields["done"], fields["total"] = self.counts["done"], self.total
        usage = self._usage()
        if usage is not None:
            fields["api_requests"] = sum(usage.requests.values())
            fields["api_throttled"] = usage.throttled
            if usage.daily_remaining is not None:
                fields["api_daily_remaining"] = usage.daily_remaining
        return fields

    def line(self, now: float | None = None) -> str:
        """`read 1,200 · scored 1,200 · written 300 (912 fields) · tasks 12 · 450/s · API …`"""
        fields = self.fields(now)
        parts = []
        for key, word in WORDS.items():
            if key not in fields or key == "fields":
                continue
            text = f"{word} {fields[key]:,}"
            if key == "written" and fields.get("fields"):
                text += f" ({fields['fields']:,} fields)"
            parts.append(text)
        if self.total is not None:
            parts.append(f"{fields['done']:,} of {self.total:,}")
        first = self.shown[0] if self.shown else "read"
        parts.append(f"{fields['per_second']:,.0f} {'contacts' if first == 'read' else first}/s")
        if "api_requests" in fields:
            api = f"API {fields['api_requests']:,} requests"
            if "api_daily_remaining" in fields:
                api += f", {fields['api_daily_remaining']:,} left today"
            if fields["api_throttled"]:
                api += f", throttled {fields['api_throttled']:,}×"
            parts.append(api)
        return " · ".join(parts)

    def _usage(self) -> ApiUsage | None:
        if self.usage is None:
            return None
        try:
            usage = self.usage()
        except Exception:  # progress must never break a run
            return None
        return usage if isinstance(usage, ApiUsage) else None

    # where it goes -------------------------------------------------------------------------
    def _plain(self, line: str) -> None:
        if self.sink is not None:
            self.sink(f"{self.label}: {line}")
        else:
            log.info("progress: %s", line, extra={"progress": self.fields()})

    def _draw(self, line: str) -> None:
        if self._bar is None:
            # the numbers wrap onto a second line on a narrow terminal, never cut off
            fixed = Column(no_wrap=True)
            columns: list[Any] = [
                SpinnerColumn(table_column=fixed),
                TextColumn("{task.fields[label]}", style="bold", markup=False, table_column=fixed),
            ]
            if self.total is not None:
                columns.append(BarColumn(bar_width=20, table_column=fixed))
            columns += [
                TextColumn(
                    "{task.description}", markup=False, table_column=Column(overflow="fold")
                ),
                TimeElapsedColumn(table_column=fixed),
            ]
            self._bar = RichProgress(
                *columns,
                console=console_for(self.stream),
                transient=True,
                # print() calls while the line is live go above it, but only to the terminal:
                # `sync --dry-run > diff.txt` keeps its diff in the file
                redirect_stdout=_is_terminal(sys.stdout),
                redirect_stderr=_is_terminal(sys.stderr),
                get_time=self.clock,
            )
            self._bar.start()
            self._task = self._bar.add_task(line, total=self.total, label=self.label)
            self._bar.tasks[-1].start_time = self.started  # elapsed since the step began
        assert self._task is not None
        self._bar.update(self._task, description=line, completed=self.counts["done"], refresh=True)


def _is_terminal(stream: IO[str] | None) -> bool:
    try:
        return bool(stream and stream.isatty())
    except (AttributeError, ValueError):
        return False
