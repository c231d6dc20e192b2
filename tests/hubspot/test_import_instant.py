"""An import stamps more contacts with one `lastmodifieddate` than search can ever page through
(10,000): the incremental reader must still read each of them exactly once and finish."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from crm_qualify.adapters.hubspot.reader import Cursor, epoch_ms
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator

from tests.hubspot.conftest import FAST, make_adapter


def modified_ms(record: dict) -> int:
    stamp = record["properties"]["lastmodifieddate"]
    return epoch_ms(datetime.fromisoformat(stamp.replace("Z", "+00:00")))


def test_more_than_10000_contacts_at_one_instant_are_each_read_once():
    # 20,000 contacts: the seed puts 10,500 of them in one import (see simulator/seed.py).
    # No seeded activities: only contacts are searched here, and seeding the activities of
    # 20,000 contacts costs seven times what seeding the contacts does.
    with HubSpotSimulator(contacts=20_000, seed=5, engagement=0, **FAST) as sim:
        stamps = {cid: modified_ms(r) for cid, r in sim.store.objects["contacts"].items()}
        instant, size = Counter(stamps.values()).most_common(1)[0]
        assert size > 10_000
        adapter = make_adapter(sim, searches_per_second=5, lookback_seconds=0)
        until = datetime.fromtimestamp((instant + 1) / 1000, UTC)
        seen = []
        for chunk, _ in adapter.reader.changed(Cursor(since=instant), until):
            seen += chunk
        assert len(seen) == len(set(seen)), "no contact is read twice"
        assert set(seen) == {cid for cid, ms in stamps.items() if ms == instant}
