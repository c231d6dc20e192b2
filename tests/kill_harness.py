"""Kill a real `crm-qualify sync --once` with SIGKILL at a random moment, rerun it until a run
ends ok, and compare the portal (HubSpot) or org (Salesforce) with one synced cleanly.

Used by `tests/test_kill.py` (a few iterations) and `bench/kill_loop.py` (many). The simulator
runs in this process; the sync runs as a separate process, as a user runs it, so SIGKILL hits
nothing but the connector.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.mapping import load_mapping

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
    "crmq_highest_stage",
    "crmq_customer_type",
    "crmq_disqualified",
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
    differences: list[str] = field(default_factory=list, repr=False)
    """What differs, named (task keys, records with their clean and killed values)."""


EPISODE = re.compile(r":hot_call:\d{8}T\d{4}")


def episode_free(key: str) -> str:
    """A task key without its hot episode's start: a clean and a killed sync begin the same
    episode at different minutes, yet two calls for one episode are still counted twice."""
    return EPISODE.sub(":hot_call:episode", key)


def portal_state(sim: Any) -> tuple[dict[str, tuple], Counter[str]]:
    """Owned values per person, and our task keys (episode start left out) with how often
    each exists."""
    if isinstance(sim, HubSpotSimulator):
        with sim.store.lock:
            contacts = {
                oid: tuple(record["properties"].get(name) for name in OWNED)
                for oid, record in sim.store.objects["contacts"].items()
            }
            keys = Counter(
                episode_free(record["properties"].get("crmq_task_key"))
                for record in sim.store.objects["tasks"].values()
                if record["properties"].get("crmq_task_key") and not record.get("archived")
            )
        return contacts, keys
    mapping = load_mapping("salesforce")
    fields = sorted(
        {
            crm_field
            for sobject in ("Lead", "Contact")
            for canonical, crm_field in mapping["objects"][sobject]["fields"].items()
            if canonical not in ("scored_at", "reasons")
        }
    )
    key_field = mapping["tasks"]["key_field"]
    with sim.org.lock:
        people = {
            r["Id"]: tuple(r.get(f) for f in fields)
            for sobject in ("Lead", "Contact")
            for r in sim.org.live(sobject)
        }
        keys = Counter(
            episode_free(r.get(key_field)) for r in sim.org.live("Task") if r.get(key_field)
        )
    return people, keys


def write_config(folder: Path, sim: Any, name: str) -> Path:
    """A configuration as a user writes it; HubSpot's token comes from the environment."""
    config = folder / f"{name}.toml"
    state = (
        f"[sync]\nstate_path = '{folder / (name + '.sqlite')}'\n"
        "lookup_delay_seconds = 0  # reruns follow at once; the simulator's search has no lag\n"
    )
    if isinstance(sim, HubSpotSimulator):
        adapter = f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n"
    else:
        options = "".join(
            f"{key} = {_toml(value)}\n" for key, value in sim.adapter_options().items()
        )
        adapter = f"[crm]\nadapter = 'salesforce'\n[adapters.salesforce]\n{options}"
    config.write_text(adapter + state)
    return config


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def sync(config: Path, token: str) -> subprocess.Popen:
    env = {**os.environ, "CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN": token}
    env.pop("CRMQ_CONFIG", None)
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


def simulator(crm: str, contacts: int, seed: int) -> Any:
    if crm == "hubspot":
        return HubSpotSimulator(contacts=contacts, seed=seed, custom_properties=True)
    from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator

    return SalesforceSimulator(records=contacts, seed=seed)


def one_trial(
    folder: Path, contacts: int, seed: int, rng: random.Random, crm: str = "hubspot"
) -> Outcome:
    """A clean portal and a killed one, from the same seed, compared after settling."""
    folder.mkdir(parents=True, exist_ok=True)
    with simulator(crm, contacts, seed) as clean, simulator(crm, contacts, seed) as killed:
        started = time.monotonic()
        run_to_end(write_config(folder, clean, "clean"), _token(clean))
        full = time.monotonic() - started
        config = write_config(folder, killed, "killed")
        kills = 0
        for _ in range(rng.randint(1, 3)):
            process = sync(config, _token(killed))
            time.sleep(rng.uniform(0.3, max(0.4, full)))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
        reruns = run_to_end(config, _token(killed))
        want_contacts, want_tasks = portal_state(clean)
        got_contacts, got_tasks = portal_state(killed)
    differing = sorted(
        oid for oid, values in want_contacts.items() if got_contacts.get(oid) != values
    )
    missing, extra = (
        sorted(set(want_tasks) - set(got_tasks)),
        sorted(set(got_tasks) - set(want_tasks)),
    )
    return Outcome(
        kills=kills,
        reruns=reruns,
        duplicate_tasks=sum(count - 1 for count in got_tasks.values()),
        differing_contacts=len(differing),
        missing_tasks=len(missing),
        extra_tasks=len(extra),
        differences=[f"missing task {key}" for key in missing]
        + [f"extra task {key}" for key in extra]
        + [
            f"record {oid}: clean {want_contacts[oid]} killed {got_contacts.get(oid)}"
            for oid in differing
        ],
    )


def _token(sim: Any) -> str:
    return sim.token if isinstance(sim, HubSpotSimulator) else ""
