"""A Lead whose value the mapping cannot translate, over real TLS: it needs attention once, at
the version (`SystemModstamp`) it failed at, and the next runs' lookback, which meets that
version again, says nothing new (a change to it is reported again: the HubSpot test of the
same name; Salesforce stamps to the second, and a test cannot wait for the next one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.sync.engine import RunOptions, RunSummary, SyncEngine

from tests.salesforce.conftest import make_adapter


@pytest.fixture
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=30, seed=5) as simulator:
        yield simulator


def test_a_bad_value_met_again_in_the_lookback_is_not_a_new_error(sim, store, settings):
    def sync() -> RunSummary:
        return SyncEngine(make_adapter(sim), settings, store).run(RunOptions())

    assert sync().status == "ok"
    lead = next(r["Id"] for r in sim.org.live("Lead") if not r["IsConverted"])
    sim.touch(lead, {"Qualification_Need__c": "Maybe"})

    failed = sync()
    assert (failed.status, failed.counts["read_errors"]) == ("partial", 1)
    [error] = failed.errors
    assert error.startswith(f"Lead/{lead}: Qualification_Need__c:")

    for _ in range(2):  # the lookback window still holds the version that failed
        again = sync()
        assert (again.status, again.errors, again.counts["read_errors"]) == ("ok", [], 0)
    [waiting] = store.attention("default")
    assert (waiting.contact_id, waiting.attempts) == (lead, 1)
