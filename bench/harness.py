"""What the sync benches share: the simulator in its own process, the connector measured
apart from it, the scenarios, and the closing table.

    python bench/harness.py serve hubspot|salesforce [simulator options]   (started by a bench)

The simulator runs in a child process, built from the same options a user gives
`crm-qualify simulate <crm>` (the HubSpot CLI's own parser reads them), so the connector's
memory and CPU are the bench process's own. Of those options it leaves out the labelled
duplicates, the outcomes and the random faults, which the CLI can add: a bench's portal is
the plain seeded one, so its figures compare from round to round. The user's CLI has no
way to inject engagement or to tell what the documented minimum of a run is, so the child
also answers a control channel (`multiprocessing.connection`, loopback, a random key):
`call(name, *args)` runs a function of a bench module with the simulator as its first
argument, in the simulator's process.

The connector's peak RSS is measured per scenario (the kernel's high-water mark, reset
before each run through /proc/self/clear_refs) and its CPU with `time.process_time`; the
simulator's are asked from the child. The rate-limit floor of a run is the time its requests
need at the rates the adapter may use: for HubSpot max(burst requests / (requests_per_10s /
10 s), searches / searches_per_second); Salesforce sets no short-window limit, so it has
none (its wall time is printed alone).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import resource
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SCENARIOS = [
    ("full", 0, 0.0),
    ("incremental 1%", 0, 0.01),
    ("incremental 10%", 0, 0.10),
    ("idle rerun", 0, 0.0),
    ("a day later", 1, 0.0),
    ("30 days later", 30, 0.0),
]
"""(name, days after now the run believes it is, share of contacts given new engagement)."""


# ----- the simulator's process --------------------------------------------------------------
def _build(crm: str, options: list[str]) -> Any:
    if crm == "hubspot":
        from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
        from crm_qualify.adapters.hubspot.simulator.cli import parser

        opts = parser().parse_args(options)
        sim = HubSpotSimulator(
            contacts=opts.contacts,
            seed=opts.seed,
            latency_ms=opts.latency_ms,
            rate_limit=opts.rate_limit,
            custom_properties=opts.custom_properties,
            search_index_lag=opts.search_lag_seconds,
        )
        sim.start(port=opts.port)
        return sim
    from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator

    named = argparse.ArgumentParser()
    named.add_argument("--records", type=int, default=2000)
    named.add_argument("--seed", type=int, default=1)
    named.add_argument("--latency-ms", type=float, default=0)
    named.add_argument("--daily-limit", type=int, default=100_000)
    opts = named.parse_args(options)
    sim = SalesforceSimulator(
        records=opts.records, seed=opts.seed, latency_ms=opts.latency_ms,
        daily_limit=opts.daily_limit,
    )  # fmt: skip
    sim.start(port=0)
    return sim


def serve(crm: str, options: list[str]) -> None:
    """The child: seed and serve the simulator, then answer the bench until it hangs up."""
    sim = _build(crm, options)
    key = secrets.token_bytes(16)
    with Listener(("127.0.0.1", 0), authkey=key) as listener:
        print(f"{listener.address[1]} {key.hex()}", flush=True)
        with listener.accept() as conn:
            while True:
                try:
                    name, args = conn.recv()
                except EOFError:
                    break
                module, function = name.split(":")
                call = getattr(importlib.import_module(module), function)
                try:
                    conn.send((True, call(sim, *args)))
                except Exception as exc:  # the bench sees the child's error as its own
                    conn.send((False, f"{type(exc).__name__}: {exc}"))
    sim.stop()


def info(sim: Any) -> dict[str, Any]:
    """How to reach the simulator (HubSpot: base_url and token; Salesforce: the options)."""
    if hasattr(sim, "adapter_options"):
        return sim.adapter_options()
    return {"access_token": sim.token, "base_url": sim.base_url}


def stats(sim: Any, reset: bool = False) -> dict[str, Any]:
    """Requests the simulator served per endpoint, its 429s (and, on HubSpot, the policy of
    each so far: `refused`), its own CPU and peak RSS."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limits = getattr(sim, "limits", None)
    found = {
        "by_endpoint": dict(sim.stats.by_endpoint),
        "throttled": getattr(sim.stats, "throttled", 0),
        "refused": dict(getattr(limits, "refused", {})),
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
    }
    if reset:
        sim.stats.reset()
    return found


def engage(sim: Any, count: int) -> int:
    return len(sim.simulate_engagement(count))


class Simulator:
    """The bench's handle on the child process."""

    def __init__(self, crm: str, options: list[str]) -> None:
        command = [sys.executable, str(BENCH / "harness.py"), "serve", crm, *options]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        port, key = self.process.stdout.readline().split()
        self.conn: Connection = Client(("127.0.0.1", int(port)), authkey=bytes.fromhex(key))

    def call(self, name: str, *args: Any) -> Any:
        self.conn.send((name if ":" in name else f"harness:{name}", args))
        ok, value = self.conn.recv()
        if not ok:
            raise RuntimeError(f"simulator process: {value}")
        return value

    def close(self) -> None:
        self.conn.close()
        self.process.wait(timeout=60)

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----- the connector's side -----------------------------------------------------------------
def reset_peak() -> None:
    """Start a new high-water mark of this process's RSS (Linux 4.0+)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """This process's RSS high-water mark since `reset_peak` (else since it started)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


@dataclass
class Row:
    """One run of one scenario, as the closing table prints it."""

    crm: str
    size: int
    latency_ms: float
    scenario: str
    requests: int
    minimum: int
    wall: float
    floor: float | None
    rss_mb: float
    cpu: float
    sim_cpu: float
    throttled: int
    written: int
    tasks: int
    store_bytes: int
    contacts: int
    by_endpoint: Counter[str] = field(default_factory=Counter)
    floor_by_endpoint: Counter[str] = field(default_factory=Counter)
    modelled: frozenset[str] = frozenset()
    """The endpoints the documented minimum covers; requests to others are counted apart."""

    @property
    def outside(self) -> int:
        """Requests to endpoints the documented minimum does not model (none: all modelled)."""
        if not self.modelled:
            return 0
        return sum(n for name, n in self.by_endpoint.items() if name not in self.modelled)

    @property
    def ratio(self) -> float:
        return self.requests / max(self.minimum, 1)

    @property
    def modelled_ratio(self) -> float:
        return (self.requests - self.outside) / max(self.minimum, 1)

    @property
    def wall_ratio(self) -> float | None:
        return None if not self.floor else self.wall / self.floor

    def line(self) -> str:
        floor = f"{self.floor:.1f}" if self.floor is not None else "n/a"
        wall_ratio = f"{self.wall_ratio:.2f}" if self.wall_ratio is not None else "n/a"
        return (
            f"| {self.scenario} | {self.crm} | {self.size:,} | {self.latency_ms:g} |"
            f" {self.requests:,} | {self.outside:,} | {self.minimum:,} | {self.ratio:.2f} |"
            f" {self.modelled_ratio:.2f} | {self.wall:.1f} |"
            f" {floor} | {wall_ratio} | {self.rss_mb:.0f} | {self.cpu:.1f} | {self.sim_cpu:.1f} |"
            f" {self.written:,} | {self.tasks:,} | {self.throttled} |"
            f" {self.store_bytes / max(self.contacts, 1):,.0f} |"
        )


HEADER = (
    "| scenario | CRM | contacts | latency ms | requests | of which outside the formula |"
    " minimum | ratio | ratio (formula's endpoints) | wall s | floor s |"
    " wall / floor | connector peak RSS MB | connector CPU s | simulator CPU s |"
    " records written | tasks | 429s | state bytes / contact |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def naive_line(crm: str, size: int, rate: float | None) -> str:
    """The naive integration: one GET and one PATCH per contact, every run (computed)."""
    requests = 2 * size
    floor = f"{requests / rate:.1f}" if rate else "n/a"
    return (
        f"| naive (GET + PATCH per contact) | {crm} | {size:,} | - | {requests:,} | - | - | - |"
        f" - | - | {floor} | - | - | - | - | {size:,} | - | - | - |"
    )


def breakdown(measured: Counter[str], floor: Counter[str]) -> str:
    names = sorted(set(measured) | set(floor), key=lambda n: (-measured[n], n))
    lines = [f"{'':>6}{'endpoint':<62}{'requests':>9}{'minimum':>9}{'ratio':>7}"]
    for name in names:
        ratio = f"{measured[name] / floor[name]:.2f}" if floor[name] else "-"
        lines.append(f"{'':>6}{name:<62}{measured[name]:>9,}{floor[name]:>9,}{ratio:>7}")
    return "\n".join(lines)


def measure(run: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, wall seconds, connector CPU seconds, connector peak RSS MB) of `run`."""
    reset_peak()
    cpu, began = time.process_time(), time.perf_counter()
    result = run()
    return result, time.perf_counter() - began, time.process_time() - cpu, peak_mb()


def bench_arguments(description: str, size_name: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{size_name}", type=int, nargs="+", default=[10_000])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 250.0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=[name for name, _, _ in SCENARIOS],
        help="a subset, in order (the first must be full)",
    )
    parser.add_argument("--table", type=Path, help="append the closing table's rows here")
    parser.add_argument(
        "--core-only",
        action="store_true",
        help="leave the mapping's [engagement], [companies] and [sources] tables out: only the"
        " reads the documented minimum models",
    )
    return parser.parse_args()


UNMODELLED_TABLES = ("engagement", "companies", "sources")


def mapping_for(crm: str, core_only: bool) -> dict[str, Any]:
    """The bundled mapping, without the tables whose reads the minimum does not model."""
    from crm_qualify.connector.mapping import load_mapping

    mapping = load_mapping(crm)
    if core_only:
        for table in UNMODELLED_TABLES:
            mapping.pop(table, None)
    return mapping


def scenarios(names: list[str]) -> Iterator[tuple[str, int, float]]:
    wanted = set(names)
    yield from (s for s in SCENARIOS if s[0] in wanted)


def report(rows: list[Row], extra: list[str], table: Path | None) -> None:
    lines = [HEADER, *extra, *(row.line() for row in rows)]
    print("\n".join(lines), flush=True)
    if table is not None:
        with table.open("a") as out:
            out.write("\n".join(line for line in lines[1:] if line.startswith("|")) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "serve":
        sys.exit("usage: harness.py serve hubspot|salesforce [simulator options]")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(sys.argv[2], sys.argv[3:])
