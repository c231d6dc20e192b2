"""`crm-qualify simulate salesforce`: serve a seeded org on loopback until Ctrl-C, SIGTERM or
SIGHUP, then remove its folder (the TLS certificate and the JWT key it printed the paths of)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .simulator import SalesforceSimulator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crm-qualify simulate salesforce", description="Serve a local Salesforce org (TLS)."
    )
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--records", type=int, default=2000, help="leads + contacts to seed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--outcomes",
        type=int,
        default=0,
        help="also seed N contacts whose won and lost deals follow a known model (calibrate)",
    )
    parser.add_argument(
        "--duplicates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also seed labelled duplicates, near-misses and fake people (default: on)",
    )
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of random faults")
    parser.add_argument(
        "--fault-kinds",
        default="503",
        help="comma-separated kinds the random faults draw from, e.g."
        " 429,503,500,502,reset,lost,timeout,INVALID_SESSION_ID,UNABLE_TO_LOCK_ROW",
    )
    parser.add_argument("--daily-limit", type=int, default=100_000)
    parser.add_argument(
        "--bulk-delay", type=float, default=0.5, help="seconds a Bulk API 2.0 job takes"
    )
    args = parser.parse_args(argv)
    sim = SalesforceSimulator(
        records=args.records, seed=args.seed, latency_ms=args.latency_ms, outcomes=args.outcomes,
        duplicates=args.duplicates,
        fault_rate=args.fault_rate, daily_limit=args.daily_limit,
    )  # fmt: skip
    sim.bulk.delay = args.bulk_delay
    try:
        sim.faults.set_random(args.fault_rate, tuple(args.fault_kinds.split(",")))
    except ValueError as exc:
        print(f"--fault-kinds: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    sim.start(port=args.port)
    print(f"Salesforce simulator at {sim.instance_url} ({args.records} records)")
    print("[adapters.salesforce]")
    print(f'login_url = "{sim.login_url}"')
    print(f'ca_bundle = "{sim.ca_bundle_path}"')
    print('allowed_domains = ["127.0.0.1", "localhost"]')
    print(f'username = "{sim.username}"')
    print(f'client_id = "{sim.client_id}"')
    print("# the simulator's own throwaway credentials, valid only against it:")
    print(f'client_secret = "{sim.client_secret}"')
    print(f'password = "{sim.password}"')
    print(f'security_token = "{sim.security_token}"')
    print("# or the JWT bearer flow (the simulator holds this key's certificate):")
    print('# auth = "jwt"')
    print(f'# private_key_file = "{sim.jwt_key_path}"')
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):  # timed: a signal's handler runs between waits
            pass
    finally:
        sim.stop()
    return 0
