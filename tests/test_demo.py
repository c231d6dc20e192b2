"""`crm-qualify demo` end to end against a fake demo environment on the in-memory CRM, and
against the bundled Salesforce simulator (the HubSpot one runs in test_demo_and_sync_cli)."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from crm_qualify.connector.cli import main
from crm_qualify.connector.commands import demo
from crm_qualify.connector.contract import DemoEnvironment
from crm_qualify.connector.model import Contact, EngagementEvent, EventType, Origin, Stage

from tests.memory_adapter import MemoryAdapter

SIGNALS = [EventType.PAGE_VIEW, EventType.EMAIL_CLICK, EventType.WEBINAR_ATTENDED]


def seeded_contacts(count: int, seed: int) -> list[Contact]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    contacts = []
    for n in range(count):
        events = [
            EngagementEvent(type=rng.choice(SIGNALS), at=now - timedelta(days=rng.randint(1, 20)))
            for _ in range(rng.randint(0, 3))
        ]
        contacts.append(
            Contact(
                id=f"m{n:04d}",
                first_name=f"Ada{n:04d}",
                last_name="Lovelace",
                company="Analytical Engines",
                title=rng.choice(["IT Director", "Intern", None]),
                owner_id="owner-1",
                origin=Origin.INBOUND,
                stage=Stage.LEAD,
                updated_at=now - timedelta(days=30),
                events=events,
                owned={"stage": "lead"},
            )
        )
    return contacts


@pytest.fixture
def memory_demo(monkeypatch) -> dict[str, object]:
    """Registers a `memory` demo whose adapter is the in-memory CRM it seeded."""
    seen: dict[str, object] = {}

    @contextmanager
    def environment(contacts: int, seed: int) -> Iterator[DemoEnvironment]:
        crm = MemoryAdapter(seeded_contacts(contacts, seed), batch_size=25)
        seen["crm"] = crm

        def simulate_day() -> int:
            touched = sorted(crm.records)[::10]
            for contact_id in touched:
                crm.records[contact_id].events.append(
                    EngagementEvent(type=EventType.DEMO_REQUEST, at=datetime.now(UTC))
                )
                crm.human_edit(contact_id)
            seen["touched"] = touched
            return len(touched)

        yield DemoEnvironment(
            adapter="memory",
            options={"batch_size": 25},
            simulate_day=simulate_day,
            api_usage=lambda: {"requests": sum(crm.calls.values()), "limit": 1000},
        )

    def build_adapter(settings):
        seen["settings"] = settings
        return seen["crm"]

    point = SimpleNamespace(name="memory", load=lambda: environment)
    monkeypatch.setattr(demo, "demo_environments", lambda: {"memory": point})
    monkeypatch.setattr(demo, "build_adapter", build_adapter)
    return seen


def test_demo_syncs_simulates_a_day_syncs_again_and_summarises(memory_demo, capsys):
    assert main(["demo", "--crm", "memory", "--contacts", "60", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    settings = memory_demo["settings"]
    assert settings.crm.adapter == "memory" and settings.adapters == {"memory": {"batch_size": 25}}
    crm = memory_demo["crm"]

    assert re.search(r"full sync: ok in [\d.]+ s; read 60,", out)
    assert "simulated a day of engagement on 6 contacts" in out
    incremental = re.search(r"incremental sync: ok in [\d.]+ s; .* on (\d+) records", out)
    assert incremental and incremental[1] == "6", "the second run writes only what the day moved"

    stage_rows = dict(re.findall(r"^  (\w+)\s+(\d+)\s+\d+$", out.split("temperature")[0], re.M))
    assert stage_rows["lead"] == "60"
    after = re.findall(r"^  \w+\s+\d+\s+(\d+)$", out.split("temperature")[0], re.M)
    assert sum(map(int, after)) == 60

    touched = memory_demo["touched"]
    hot = re.findall(
        r"^  \d\. Ada(\d+) Lovelace, Analytical Engines \(owner owner-1\): ", out, re.M
    )
    assert hot and {f"m{n}" for n in hot} <= set(touched), "the leads that asked for a demo lead"
    assert "contact/m" not in out, "people are named, not numbered"
    assert "+40 demo request" in out
    kinds = Counter(task.kind for task in crm.tasks.values())
    assert kinds["hot_call"] > 0
    assert f"tasks created: {', '.join(f'{k} {v}' for k, v in kinds.items())}\n" in out
    assert f"API use: requests {sum(crm.calls.values())}, limit 1000" in out


def test_demo_shows_progress_on_stderr_when_not_a_terminal(memory_demo, capsys):
    assert main(["demo", "--crm", "memory", "--contacts", "60"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^  full sync: read \d+ · scored \d+ · written \d+", err, re.M)
    assert re.search(r"^  incremental sync: read \d+ .* contacts/s · API \d+ requests", err, re.M)


def test_demo_rejects_an_unknown_crm_and_an_empty_portal(memory_demo, capsys):
    assert main(["demo", "--crm", "memory", "--contacts", "0"]) == 2
    assert "--contacts must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--crm", "nope"])


def test_demo_against_the_salesforce_simulator(capsys):
    assert main(["demo", "--crm", "salesforce", "--contacts", "150", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"full sync: ok in [\d.]+ s; read 150,", out)
    assert "incremental sync: ok" in out
    assert re.search(r"API use: requests \d+", out)
