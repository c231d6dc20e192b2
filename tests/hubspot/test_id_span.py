"""A walk by search over id spans (reader.py `_spanned`): the mapping links two types, so
search pages (200) and one v4 read per type per batch cost fewer requests than list pages
(100). Two chains of pages read the span from both ends at once, through the core's traffic:
every contact once, the same records as the list walk, within the declared slots and search's
per-second budget, a 429 pausing everyone and losing nothing, and a cut-short walk resumable.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

import pytest
from crm_qualify.adapters.hubspot.adapter import READ_BATCH
from crm_qualify.adapters.hubspot.endpoints import IN_FLIGHT
from crm_qualify.adapters.hubspot.reader import Cursor
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator

from tests.hubspot.conftest import FAST, contact_properties_only, make_adapter, translate_all

V3 = "/crm/v3/objects"
LIST, SEARCH = f"GET {V3}/contacts", f"POST {V3}/contacts/search"
DEAL_READ = f"POST {V3}/deals/batch/read"
DEAL_LINKS = "POST /crm/v4/associations/contacts/deals/batch/read"
TASK_LINKS = "POST /crm/v4/associations/contacts/tasks/batch/read"


@pytest.fixture(scope="module")
def portal() -> Any:
    with HubSpotSimulator(contacts=2_100, seed=12, custom_properties=True, **FAST) as sim:
        yield sim


def keys(batches: list[Any]) -> list[str]:
    return [r.key[1] for b in batches for r in b.raw] + [
        e.key[1] for b in batches for e in b.errors if e.key
    ]


def by_id(contacts: list[Any]) -> dict[str, Any]:
    return {c.id: c for c in contacts}


class Granted(deque):
    """A rate budget's stamps as it grants them (under its lock), into a shared log."""

    def __init__(self, log: list[tuple[str, float]], kind: str) -> None:
        super().__init__()
        self.log, self.kind = log, kind

    def append(self, grant: tuple[float, int]) -> None:
        self.log.append((self.kind, grant[0]))
        super().append(grant)


def watch(adapter: Any) -> list[tuple[str, float]]:
    log: list[tuple[str, float]] = []
    for kind, budget in adapter.traffic.budgets.items():
        budget._sent = Granted(log, kind)
    return log


def test_a_search_walk_reads_each_contact_once_as_the_list_walk_does(portal):
    adapter = make_adapter(portal, contact_properties_only())
    assert adapter.reader.search_walk and adapter.reader.rows_fit_search()
    portal.stats.reset()
    batches = list(adapter.read_changed(None, until=datetime.now(UTC)))
    made = Counter(portal.stats.by_endpoint)
    live = sorted(portal.store.objects["contacts"])
    read = keys(batches)
    assert sorted(read) == live and len(read) == len(live), "every contact once"
    assert made[LIST] == 0 and made[SEARCH] == math.ceil(len(live) / 200)
    batch_count = math.ceil(len(live) / READ_BATCH)
    assert made[DEAL_LINKS] == made[TASK_LINKS] == batch_count, "one v4 read per type a batch"
    deals = {d for c in live for d in portal.store.associations("contacts", c, "deals")}
    assert made[DEAL_READ] == math.ceil(len(deals) / 100), "deal reads filled across batches"
    assert Cursor.load(batches[-1].cursor).since is not None, "the walk ends as a walk does"

    listed = make_adapter(portal, contact_properties_only())
    listed.reader.search_walk = False
    walked, errors = translate_all(batches)
    again, more = translate_all(listed.read_changed(None, until=datetime.now(UTC)))
    assert not errors and not more
    assert by_id(walked) == by_id(again), "the same records as the list walk"


def test_both_ends_are_read_at_once_within_the_slots_and_the_search_budget():
    with HubSpotSimulator(
        contacts=1_500, seed=13, custom_properties=True, latency_ms=20, **FAST
    ) as sim:
        adapter = make_adapter(sim, contact_properties_only())
        log = watch(adapter)
        flying, most = [0], [0]
        lock = threading.Lock()
        original = adapter.client.search_api.do_search

        def counted(*args: Any, **kwargs: Any) -> Any:
            with lock:
                flying[0] += 1
                most[0] = max(most[0], flying[0])
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    flying[0] -= 1

        adapter.client.search_api.do_search = counted
        read = keys(list(adapter.read_changed(None, until=datetime.now(UTC))))
        assert sorted(read) == sorted(sim.store.objects["contacts"])
    assert most[0] == 2, "the two ends' pages were in flight together"
    assert adapter.traffic.peak_in_flight <= IN_FLIGHT
    searches = [t for kind, t in log if kind == "search"]
    per_second = adapter.settings.searches_per_second
    assert len(searches) == math.ceil(1_500 / 200)
    assert all(sum(1 for t in searches if s <= t < s + 1.0) <= per_second for s in searches)


def test_a_429_while_both_ends_read_pauses_every_request_and_loses_nothing(portal):
    adapter = make_adapter(portal, contact_properties_only())
    log = watch(adapter)
    calls = [0]
    original_search = adapter.client.search_api.do_search
    original_pause = adapter.traffic.pause

    def search(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:  # the first page is read alone; this one has company in flight
            portal.faults.add("429", request="contacts.search")
        return original_search(*args, **kwargs)

    def pause(seconds: float) -> None:
        original_pause(seconds)
        log.append(("pause", adapter.client.traffic._clock() + seconds))

    adapter.client.search_api.do_search = search
    adapter.traffic.pause = pause
    read = keys(list(adapter.read_changed(None, until=datetime.now(UTC))))
    assert sorted(read) == sorted(portal.store.objects["contacts"]) and len(set(read)) == len(read)
    assert adapter.client.throttled == 1
    paused = [n for n, (kind, _) in enumerate(log) if kind == "pause"]
    assert len(paused) == 1
    resume_at = log[paused[0]][1]
    later = [t for kind, t in log[paused[0] + 1 :] if kind != "pause"]
    assert later and all(t >= resume_at for t in later), "no request of any class in the pause"


def test_a_walk_cut_short_resumes_from_the_span_its_cursor_holds(portal):
    adapter = make_adapter(portal, contact_properties_only())
    handed = []  # up to the first batch that moves the cursor (contacts may wait: None)
    for batch in adapter.read_changed(None, until=datetime.now(UTC)):
        handed.append(batch)
        if batch.cursor is not None:
            break
    first = handed[-1]
    cursor = Cursor.load(first.cursor)
    assert cursor is not None and cursor.span is not None and cursor.since is None
    resumed = keys(list(adapter.read_changed(first.cursor, until=datetime.now(UTC))))
    live = set(portal.store.objects["contacts"])
    done = set(keys(handed))
    assert done | set(resumed) == live, "nothing after the cursor is skipped"
    assert len(resumed) == len(set(resumed))
    low, high = cursor.span
    assert all(int(i) >= low and (high is None or int(i) < high) for i in resumed)
