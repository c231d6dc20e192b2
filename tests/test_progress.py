"""Progress on long commands: a live line on a terminal that log lines never overwrite, and
plain periodic log lines (JSON fields in JSON mode) when the output is not a terminal."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest
from crm_qualify.connector.contract import ApiUsage
from crm_qualify.connector.model import FieldUpdate, RecordUpdate
from crm_qualify.connector.ops.logs import configure_logging, counts_sentence, run_context
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.sync.engine import BatchReport


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


CSI = re.compile(r"\x1b\[([?\d;]*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """What a terminal shows after `raw`: enough of VT100 for rich's live display (carriage
    return, newline, cursor up, erase line; colours and cursor visibility ignored)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    position = 0
    while position < len(raw):
        match = CSI.match(raw, position)
        if match:
            argument, command = match.groups()
            count = int(argument) if argument.isdigit() else 1
            if command == "A":
                row = max(row - count, 0)
            elif command == "K":
                rows[row] = rows[row][:col] if argument in ("", "0") else []
                if argument == "2":
                    rows[row] = [" "] * col
            elif command == "G":
                col = count - 1
            position = match.end()
            continue
        char = raw[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
        else:
            line = rows[row]
            line.extend(" " * (col - len(line) + 1))
            line[col] = char
            col += 1
    return ["".join(line).rstrip() for line in rows]


def batch(contacts: int, written: int = 0, tasks: int = 0) -> BatchReport:
    update = RecordUpdate(contact_id="c0", changes=[FieldUpdate(field="score", new=1)] * 2)
    return BatchReport(read=contacts, scored=contacts, written=[update] * written)


@pytest.fixture
def logs():
    handlers = []

    def configure(fmt: str, stream: io.StringIO) -> io.StringIO:
        handlers.append(configure_logging("INFO", fmt, stream))
        return stream

    yield configure
    for handler in handlers:
        logging.getLogger().removeHandler(handler)
    logging.captureWarnings(False)


def test_plain_json_lines_every_n_seconds_with_counts_rate_and_api_budget(logs):
    stream = logs("json", io.StringIO())
    clock = Clock()
    usage = ApiUsage(requests={"search": 7, "batch": 3}, throttled=2, daily_remaining=249_990)
    progress = Progress(stream, every_seconds=10, usage=lambda: usage, clock=clock)
    with run_context("run-1"):
        progress.batch(batch(100, written=40))
        clock.now += 5
        progress.batch(batch(100))
        clock.now += 6
        progress.batch(batch(100, written=2))
    progress.finish()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2, "one at the first batch, then one per 10 s"
    last = lines[-1]
    assert last["run_id"] == "run-1"
    assert last["message"] == (
        "progress: read 300 · scored 300 · written 42 (84 fields) · tasks 0 · 27 contacts/s"
        " · API 10 requests, 249,990 left today, throttled 2×"
    )
    assert last["progress"] == {
        "step": "sync", "read": 300, "scored": 300, "written": 42, "fields": 84, "tasks": 0,
        "per_second": 27.3, "elapsed_seconds": 11.0, "api_requests": 10, "api_throttled": 2,
        "api_daily_remaining": 249_990,
    }  # fmt: skip


def test_on_a_terminal_log_lines_land_above_the_live_line_never_on_it(logs):
    terminal = logs("text", Terminal())
    progress = Progress(terminal, usage=lambda: ApiUsage({"search": 1}, 0, 900))
    log = logging.getLogger("crm_qualify.test")
    with run_context("run-7"):
        progress.batch(batch(50))
        log.warning("first line while the progress line is live")
        progress.batch(batch(50, written=5))
        log.info("second line, a long one " + "x" * 150)
        shown = screen(terminal.getvalue())
        live = [row for row in shown if "read 100 · scored 100 · written 5" in row]
        assert live and "sync" in live[0], shown
        assert shown.index(live[0]) > max(i for i, row in enumerate(shown) if "second line" in row)
        progress.finish()
    shown = [row for row in screen(terminal.getvalue()) if row.strip()]
    assert len(shown) == 2, f"the live line is gone, the log lines stay whole: {shown}"
    assert re.fullmatch(
        r"\S+ \S+ WARNING \[run run-7\] crm_qualify.test: first line while the progress line is"
        r" live",
        shown[0],
    )
    assert shown[1].endswith("x" * 150) and "[run run-7]" in shown[1]


def test_a_known_total_draws_a_bar_and_steps_restart_the_counts():
    terminal = Terminal()
    progress = Progress(terminal, label="rollback: reading back", shown=("read",))
    progress.rollback_step("read", 30)
    assert progress.line().startswith("read 30 · ")
    progress.rollback_step("planned", 40)
    progress.rollback_step("restored", 30)
    progress.rollback_step("closed", 10)
    assert progress.counts["read"] == 0 and progress.label == "rollback"
    assert progress.line().startswith("restored 30 · tasks removed 10 · 40 of 40 · ")
    assert "rollback" in screen(terminal.getvalue())[0]
    progress.finish()


def test_progress_never_breaks_a_run_when_usage_fails():
    def broken() -> ApiUsage:
        raise RuntimeError("no usage")

    progress = Progress(io.StringIO(), usage=broken, sink=lambda _line: None)
    progress.batch(batch(3))
    assert "API" not in progress.line()


def test_run_counts_are_a_sentence_main_counts_first():
    counts = {"tasks_created": 4, "read": 300, "fields_written": 120, "scored": 300}
    counts |= {"read_errors": 0, "write_errors": 2, "stages_moving": 3, "stages_moved": 3}
    assert counts_sentence(counts) == (
        "read 300, scored 300, fields written 120, tasks created 4, write errors 2"
    )
    assert counts_sentence({}) == "read 0"


def test_json_logs_on_a_terminal_also_go_above_the_live_line(logs):
    terminal = logs("json", Terminal())
    progress = Progress(terminal)
    progress.batch(batch(10))
    logging.getLogger("crm_qualify.test").info("[bold]not markup[/bold] %s", "x" * 120)
    progress.finish()
    (row,) = [row for row in screen(terminal.getvalue()) if row.strip()]
    assert json.loads(row)["message"] == "[bold]not markup[/bold] " + "x" * 120


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_step_that_adds_nothing_still_shows_its_line_until_it_ends():
    """A first sync reads a portal's forms, events and activities, or waits for a Bulk job,
    for minutes before its first batch of contacts: its line, with the API requests made so
    far, still comes every `every_seconds`, and no more once the step has ended."""
    lines: list[str] = []
    made = iter(range(1, 1_000))
    progress = Progress(
        io.StringIO(),
        every_seconds=0.02,
        usage=lambda: ApiUsage(requests={"GET forms": next(made)}),
        sink=lines.append,
    )
    wait_for(lambda: len(lines) >= 3)
    progress.finish()
    assert len(lines) >= 3
    assert all(line.startswith("sync: read 0 · ") for line in lines)
    requests = [int(re.search(r"API (\d+) requests", line)[1]) for line in lines]
    assert requests == sorted(requests) and requests[0] < requests[-1]
    shown = len(lines)
    time.sleep(0.1)
    assert len(lines) == shown


def test_the_daemons_progress_shows_nothing_between_its_runs():
    lines: list[str] = []
    progress = Progress(io.StringIO(), every_seconds=0.02, sink=lines.append, begun=False)
    time.sleep(0.1)
    assert lines == []
    progress.start()
    wait_for(lambda: bool(lines))
    progress.finish()
    shown = len(lines)
    time.sleep(0.1)
    assert shown >= 1 and len(lines) == shown


def test_on_a_terminal_a_quiet_step_shows_its_live_line_timed_from_its_start():
    clock = Clock()
    terminal = Terminal()
    progress = Progress(terminal, every_seconds=0.02, clock=clock)
    clock.now += 7  # a step reading forms for 7 s, nothing added yet
    wait_for(lambda: "0:00:07" in terminal.getvalue())
    progress.finish()
    drawn = re.split(r"[\r\n]", CSI.sub("", terminal.getvalue()))
    assert any("sync read 0 · scored 0" in row and "0:00:07" in row for row in drawn)
    assert not any(screen(terminal.getvalue())), "the live line goes with its step"
