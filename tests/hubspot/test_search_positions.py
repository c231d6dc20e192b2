"""Search pages served from the kept positions of a filter set must be the pages a scan of the
sort index gives, before and after writes (which must drop what was kept)."""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.query import parse_query
from crm_qualify.adapters.hubspot.simulator.values import parse_ms

ANCHOR = date(2025, 6, 1)


@pytest.fixture(scope="module")
def sims() -> tuple[HubSpotSimulator, HubSpotSimulator]:
    """Two identical portals: one searched as served, one through the scan alone."""
    kept, scanned = (HubSpotSimulator(contacts=800, seed=9, anchor=ANCHOR) for _ in range(2))
    scanned.store.index._positions = lambda *_: None  # type: ignore[method-assign]
    return kept, scanned


def search(sim: HubSpotSimulator, body: dict[str, Any], now: int) -> tuple[int, list[str]]:
    query = parse_query(sim.store, "contacts", body, len(json.dumps(body)))
    total, page = sim.store.index.search("contacts", query, now)
    return total, [oid for oid, _ in page]


def bodies(rng: random.Random, ids: list[str], since: int, until: int) -> list[dict[str, Any]]:
    """Id-span pages over a date window, as the adapter pages it, in both directions."""
    out = []
    for _ in range(12):
        low, high = sorted(rng.sample(ids, 2))
        window = [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)},
            {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(until)},
        ]
        span = [
            {"propertyName": "hs_object_id", "operator": "GTE", "value": low},
            {"propertyName": "hs_object_id", "operator": "LT", "value": high},
        ]
        direction = rng.choice(("ASCENDING", "DESCENDING"))
        out.append(
            {
                "filterGroups": [{"filters": window + span[: rng.randrange(3)]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": direction}],
                "limit": 200,
                "after": rng.choice((0, 0, 150)),
            }
        )
    return out


def test_kept_positions_page_as_the_scan_does_across_writes(sims) -> None:
    kept, scanned = sims
    rng = random.Random(4)
    ids = sorted(kept.store.objects["contacts"])
    contacts = kept.store.objects["contacts"].values()
    stamps = [parse_ms(r["properties"]["lastmodifieddate"]) or 0 for r in contacts]
    since, until = min(stamps), max(stamps) + 1  # a window holding every contact
    whole = bodies(rng, ids, since, until)[0] | {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)},
        {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(until)},
    ]}]}  # fmt: skip
    now, held = until + 1000, len(ids)
    for round_ in range(3):
        for body in bodies(rng, ids, since, until):
            assert search(kept, body, now) == search(scanned, body, now)
        assert kept.store.index._matches, "the pages came from kept positions"
        assert search(kept, whole, now)[0] == held
        moved = rng.sample(ids, 25)  # stamped `now`: they leave the window; too few to re-sort
        for sim in (kept, scanned):
            with sim.store.lock:
                for oid in moved:
                    sim.store.update("contacts", oid, {"jobtitle": f"t{round_}"}, now)
        held -= len(set(moved) & set(ids))
        ids = [oid for oid in ids if oid not in moved]
        now += 1000
