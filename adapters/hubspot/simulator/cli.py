"""`crm-qualify simulate hubspot`: run the simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .simulator import HubSpotSimulator

# HubSpot's search index trails writes by a few seconds; the served portal does too by default
# (the `HubSpotSimulator` class keeps 0 so in-process tests opt in explicitly).
DEFAULT_SEARCH_LAG = 2.0


def _rate(text: str) -> int:
    """`190` or `190/10s` (HubSpot states burst limits per 10 seconds)."""
    count, _, window = text.partition("/")
    if window not in ("", "10s") or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected N or N/10s, got {text!r}")
    return int(count)


def _lag(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return seconds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crm-qualify simulate hubspot", description="Serve a seeded local HubSpot portal."
    )
    p.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    p.add_argument("--contacts", type=int, default=1000, help="contacts to seed")
    p.add_argument("--seed", type=int, default=1, help="data seed")
    p.add_argument(
        "--outcomes",
        type=int,
        default=0,
        help="also seed N people whose won and lost deals follow a known model (calibrate)",
    )
    p.add_argument(
        "--duplicates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also seed labelled duplicates, near-misses and fake contacts (default: on)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    p.add_argument("--rate-limit", type=_rate, default=190, help="burst per 10 s, e.g. 190/10s")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random 429/5xx")
    p.add_argument(
        "--fault-kinds",
        default="429,500,502,503",
        help="comma-separated kinds the random faults draw from, e.g."
        " 429,500,502,503,reset,drop,lost,timeout,401 (lost and timeout apply the write first)",
    )
    p.add_argument(
        "--search-lag-seconds",
        type=_lag,
        default=DEFAULT_SEARCH_LAG,
        help="how long a write stays invisible to search, as in HubSpot's search index"
        f" (default {DEFAULT_SEARCH_LAG:g}; 0 turns it off)",
    )
    p.add_argument(
        "--refresh-token-rotation",
        choices=("on", "off"),
        default="on",
        help="on (default): each OAuth refresh answers a new refresh token and voids the old"
        " one, the strictest case for a client; off: the same refresh token every time",
    )
    p.add_argument(
        "--access-token-ttl",
        type=_lag,
        default=1800.0,
        help="seconds an OAuth access token lives (HubSpot: 1800)",
    )
    p.add_argument(
        "--custom-properties",
        action="store_true",
        help="create the crm-qualify owned properties up front",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Arguments are the options only; a leading `simulate hubspot` is accepted and skipped."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["simulate", "hubspot"]:
        args = args[2:]
    opts = parser().parse_args(args)
    sim = HubSpotSimulator(
        contacts=opts.contacts,
        outcomes=opts.outcomes,
        duplicates=opts.duplicates,
        seed=opts.seed,
        latency_ms=opts.latency_ms,
        rate_limit=opts.rate_limit,
        fault_rate=opts.fault_rate,
        custom_properties=opts.custom_properties,
        search_index_lag=opts.search_lag_seconds,
        rotate_refresh_tokens=opts.refresh_token_rotation == "on",
        access_token_ttl=opts.access_token_ttl,
    )
    try:
        sim.faults.set_random(opts.fault_rate, opts.fault_kinds.split(","))
    except ValueError as exc:
        print(f"--fault-kinds: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    url = sim.start(port=opts.port)
    oauth = f"client_id={sim.auth.client_id}\nclient_secret={sim.auth.client_secret}"
    print(f"base_url={url}\ntoken={sim.token}", flush=True)
    print(f"{oauth}\nrefresh_token={sim.auth.refresh_token}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0
