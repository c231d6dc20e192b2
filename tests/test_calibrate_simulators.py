"""Both simulators seed outcomes from the same hidden true model, and calibrate reads them back
through each adapter: every seeded won deal arrives as a win, cut before its deal was created
(Salesforce logs the sales cycle's calls after it: none may leak into the facts)."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from crm_qualify.adapters.hubspot.simulator.simulator import HubSpotSimulator
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.true_outcomes import draw_people
from crm_qualify.connector.decision.calibration.calibrate import calibrate
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.calibration.sources import from_adapter
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import EventType

from tests.hubspot.conftest import FAST
from tests.hubspot.conftest import make_adapter as hubspot_adapter
from tests.salesforce.conftest import make_adapter as salesforce_adapter

ANCHOR = date(2026, 9, 1)
NOW = datetime(2026, 9, 1, tzinfo=UTC)
PEOPLE = 400
SMALL = CalibrateSettings(min_people=100, min_conversions=20, min_holdout_conversions=5)
SEEDED = re.compile(r"\.o\d+@")
"""The addresses the true model's people get (`SeededPerson.email`)."""


def seeded(contact) -> bool:
    return bool(SEEDED.search(contact.email or ""))


def seeded_wins(seed: int, offset: int) -> int:
    """Won deals the true model gives the simulator's people (its RNG, as seeded)."""
    people = draw_people(random.Random(seed * 104_729 + offset), PEOPLE, NOW)
    return Counter(p.outcome for p in people)["won"]


@pytest.fixture(scope="module")
def hubspot():
    with HubSpotSimulator(contacts=20, seed=4, anchor=ANCHOR, outcomes=PEOPLE, **FAST) as sim:
        yield sim


@pytest.fixture(scope="module")
def salesforce():
    with SalesforceSimulator(records=20, seed=4, anchor=ANCHOR, outcomes=PEOPLE) as sim:
        yield sim


def read(adapter):
    return from_adapter(adapter, SMALL, NOW - timedelta(days=3650), NOW + timedelta(days=1))


def test_hubspot_outcomes_reach_calibrate_through_the_adapter(hubspot):
    dataset, people = read(hubspot_adapter(hubspot))
    outcome_people = [c for c in people if seeded(c)]
    assert len(outcome_people) == PEOPLE
    won = [e for e in dataset.examples if e.won and seeded(e.facts)]
    assert len(won) == seeded_wins(4, 13)
    assert all(e.cutoff < e.outcome_at for e in won)
    result = calibrate(dataset, Rules(), SMALL)
    assert result.withheld is None and result.evaluation is not None
    assert dataset.api_requests > 0 and dataset.source == "adapter"


def test_salesforce_outcomes_reach_calibrate_and_the_sale_never_leaks(salesforce):
    dataset, people = read(salesforce_adapter(salesforce))
    won = [e for e in dataset.examples if e.won and seeded(e.facts)]
    assert len(won) == seeded_wins(4, 17)
    calls_after = sum(1 for c in people for e in c.events if e.type is EventType.CALL and seeded(c))
    assert calls_after > len(won) / 2, "winners' sales cycles are logged as calls"
    calls_before = sum(
        1 for e in dataset.examples for ev in e.facts.events if ev.type is EventType.CALL
        and seeded(e.facts)
    )  # fmt: skip
    assert calls_before == 0
    result = calibrate(dataset, Rules(), SMALL)
    assert result.withheld is None
