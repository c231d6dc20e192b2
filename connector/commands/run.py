"""`crm-qualify run`: the daemon an admin runs (in a container, under systemd, ...)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from crm_qualify.connector.commands.common import (
    adapter_or_exit,
    add_config_argument,
    print_problems,
    settings_or_exit,
)
from crm_qualify.connector.ops.progress import Progress
from crm_qualify.connector.sync.engine import SyncEngine
from crm_qualify.connector.sync.state import StateStore

log = logging.getLogger(__name__)

SIGNAL_POLL_SECONDS = 0.5
"""How often the main thread wakes while the daemon runs. Python runs a signal's handler on
the main thread only, and the kernel may deliver SIGTERM to any of the run's threads: a main
thread blocked in an untimed wait then never learns of it (the daemon ignored SIGTERM in
about one start in three once a run had its read-ahead and write threads)."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Each stops the daemon cleanly: the batch in flight finishes and is checkpointed."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the daemon: sync on a schedule, serve /healthz and /metrics",
        description=(
            "Sync on [schedule] (interval or cron, with jitter), one run at a time per portal"
            " even across processes sharing the state store. SIGTERM, SIGHUP or Ctrl-C: the batch"
            " in flight finishes and is checkpointed, then the process exits 0 (a second one:"
            " at once, 130)."
        ),
    )
    add_config_argument(parser)
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the batch in flight on SIGTERM (default 60)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: only the daemon needs APScheduler and prometheus-client (about 12 MB of
    # resident memory that every other command, `sync` included, would otherwise carry).
    from crm_qualify.connector.ops.observability import Health, Metrics, serve
    from crm_qualify.connector.ops.scheduler import Daemon, health_max_age

    stopping = threading.Event()

    def on_signal(number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if stopping.is_set():
            log.warning("%s again: exiting now; the next start settles the batch in flight", name)
            os._exit(130)
        log.info("%s received: finishing the batch in flight", name)
        stopping.set()

    # Before anything else: a stop asked while the daemon starts (a slow start under load)
    # ended it with no line logged. SIGHUP too: a closed terminal or a service manager's
    # reload killed it mid-run, leaving the run `crashed`.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, on_signal)
    settings = settings_or_exit(args)
    try:
        max_age = health_max_age(settings.schedule)
    except ValueError as exc:
        print_problems([str(exc)])
        return 2
    adapter = adapter_or_exit(settings)
    store = StateStore(settings.sync.state_path)
    metrics = Metrics(settings.crm.adapter)
    last_success = store.last_success(settings.crm.instance)
    stored = last_success.timestamp() if last_success is not None else None
    if stored is not None:  # an alert on `time() - gauge` must not fire at each start
        metrics.last_success.set(stored)
    health = Health(max_age_seconds=max_age, last_success=stored)
    engine = SyncEngine(adapter, settings, store)
    progress = Progress(sys.stderr, every_seconds=30.0, usage=adapter.usage, begun=False)
    daemon = Daemon(engine, settings.schedule, metrics, health, progress)
    server = None
    if settings.server.enabled:
        try:
            server = serve(settings.server.host, settings.server.port, metrics, health)
        except OSError as exc:
            store.close()
            where = f"{settings.server.host}:{settings.server.port}"
            print_problems([f"server.port: cannot listen on {where} ({exc.strerror})"])
            return 2
        host, port = server.server_address[:2]
        log.info("health and metrics on http://%s:%s/healthz and /metrics", host, port)
    if stopping.is_set():
        log.info("asked to stop while starting: no run begun")
        if server:
            server.shutdown()
        store.close()
        return 0
    daemon.start()
    while not stopping.wait(SIGNAL_POLL_SECONDS):
        pass  # a timed wait: see SIGNAL_POLL_SECONDS
    finished = daemon.stop(args.stop_timeout)
    if server:
        server.shutdown()
    if not finished:
        # The scheduler's worker thread would keep the interpreter alive until the batch ends.
        log.warning(
            "the batch in flight did not finish within %g s; exiting anyway: its writes are"
            " re-planned and its tasks settled on the next start",
            args.stop_timeout,
        )
        os._exit(1)
    store.close()
    return 0
