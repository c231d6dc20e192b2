"""Kill a real `crm-qualify sync --once` with SIGKILL at a random moment, rerun it until a run
ends ok, and compare the portal with one that was synced cleanly.

Used by `tests/test_kill.py` (a few iterations) and `bench/kill_loop.py` (many). The simulator
runs in this process; the sync runs as a separate process, as a user runs it, so SIGKILL hits
nothing but the connector.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator

OWNED = (
    "lifecyclestage",
    "crmq_temperature",
    "crmq_score",
    "crmq_fit_score",
    "crmq_engagement_score",
    "crmq_intent_score",
    "crmq_grade",
    "crmq_rules_version",
    "crmq_renurture",
)
"""Owned properties compared (reasons and scored_at carry the clock's text, not the outcome)."""


@dataclass
class Outcome:
    kills: int
    reruns: int
    duplicate_tasks: int
    differing_contacts: int
    missing_tasks: int
    extra_tasks: int


def portal_state(sim: HubSpotSimulator) -> tuple[dict[str, tuple], Counter[str]]:
    """Owned values per contact, and our task keys with how often each exists."""
    with sim.store.lock:
        contacts = {
            oid: tuple(record["properties"].get(name) for name in OWNED)
            for oid, record in sim.store.objects["contacts"].items()
        }
        keys = Counter(
            record["properties"].get("crmq_task_key")
            for record in sim.store.objects["tasks"].values()
            if record["properties"].get("crmq_task_key") and not record.get("archived")
        )
    return contacts, keys


def write_config(folder: Path, sim: HubSpotSimulator, name: str) -> Path:
    config = folder / f"{name}.toml"
    config.write_text(
        f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
        f"[sync]\nstate_path = '{folder / (name + '.sqlite')}'\n"
    )
    return config


def sync(config: Path, token: str) -> subprocess.Popen:
    env = {**os.environ, "CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN": token}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crm_qualify.connector.cli",
            "sync",
            "--once",
            "--config",
            str(config),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_end(config: Path, token: str, attempts: int = 5) -> int:
    """Reruns until one ends ok; returns how many it took."""
    for attempt in range(1, attempts + 1):
        process = sync(config, token)
        _, err = process.communicate(timeout=300)
        if process.returncode == 0:
            return attempt
    raise AssertionError(f"no run ended ok after {attempts} attempts: {err[-2000:]}")


def one_trial(folder: Path, contacts: int, seed: int, rng: random.Random) -> Outcome:
    """A clean portal and a killed one, from the same seed, compared after settling."""
    folder.mkdir(parents=True, exist_ok=True)
    with (
        HubSpotSimulator(contacts=contacts, seed=seed, custom_properties=True) as clean,
        HubSpotSimulator(contacts=contacts, seed=seed, custom_properties=True) as killed,
    ):
        started = time.monotonic()
        run_to_end(write_config(folder, clean, "clean"), clean.token)
        full = time.monotonic() - started
        config = write_config(folder, killed, "killed")
        kills = 0
        for _ in range(rng.randint(1, 3)):
            process = sync(config, killed.token)
            time.sleep(rng.uniform(0.3, max(0.4, full)))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
        reruns = run_to_end(config, killed.token)
        want_contacts, want_tasks = portal_state(clean)
        got_contacts, got_tasks = portal_state(killed)
    differing = sum(1 for oid, values in want_contacts.items() if got_contacts.get(oid) != values)
    return Outcome(
        kills=kills,
        reruns=reruns,
        duplicate_tasks=sum(count - 1 for count in got_tasks.values()),
        differing_contacts=differing,
        missing_tasks=len(set(want_tasks) - set(got_tasks)),
        extra_tasks=len(set(got_tasks) - set(want_tasks)),
    )
