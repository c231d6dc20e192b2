"""Rate budgets against a CRM that counts requests when they arrive (the HubSpot simulator's
own limiter, on a fake clock): a request delayed on its way lands in the same CRM window as
the ones sent after it, and the budget must still never let the CRM count more than its limit."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from crm_qualify.adapters.hubspot.endpoints import API, SEARCH, limits
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator.limits import Limits as PortalLimits
from crm_qualify.adapters.hubspot.simulator.limits import RateLimited
from crm_qualify.connector.sync.concurrency import EndpointClass, Limits, Traffic
from crm_qualify.connector.sync.ratelimit import RateBudget

from tests.fake_clock import FakeClock


def send_after_late_arrivals(
    traffic: Traffic, kind: str, portal: PortalLimits, clock: FakeClock, count: int, late: int = 1
) -> list[float]:
    """`late` requests sent together that reach the portal only just before their answers, a
    window after they were sent (a loaded machine), then `count` more back to back, each
    arriving at once. Returns when each was granted."""
    search = kind == SEARCH
    granted = []
    with ExitStack() as held:
        for _ in range(late):
            held.enter_context(traffic.request(kind))
            granted.append(clock.now)
        clock.sleep(traffic.limits.classes[kind].window)
        for _ in range(late):
            portal.admit(search, oauth=False)
    for _ in range(count):
        with traffic.request(kind):
            granted.append(clock.now)
            portal.admit(search, oauth=False)
    return granted


@pytest.mark.parametrize("kind", [SEARCH, API])
def test_hubspot_never_counts_more_than_our_share_when_a_request_arrives_late(kind):
    """Our shares set to the whole of HubSpot's limits, so any overrun is a 429: stamping a
    request when it is sent lets the next window's requests land beside the late one."""
    clock = FakeClock()
    settings = HubSpotSettings(
        access_token="pat-na1-test", searches_per_second=5, requests_per_10s=190
    )
    traffic = Traffic(limits(settings), clock=clock, sleep=clock.sleep)
    portal = PortalLimits(burst=190, search_rate=5, daily=10**9, hub_id=1, clock=clock)
    share, window = traffic.limits.classes[kind].limit, traffic.limits.classes[kind].window
    start = clock.now
    try:
        granted = send_after_late_arrivals(traffic, kind, portal, clock, 2 * share)
    except RateLimited as refused:
        pytest.fail(f"HubSpot answered 429 ({refused.body['policyName']})")
    assert not portal.refused
    assert granted[share] == pytest.approx(start + 2 * window), (
        "the request after a full window waits exactly a window after the late one's answer"
    )


def test_at_the_default_share_searches_keep_their_pace_and_never_pass_hubspots_limit():
    """4 searches a second (our share) against HubSpot's 5: two searches arriving late take
    HubSpot's margin; the searches sent after them fill HubSpot's second up to 5, not 6."""
    clock = FakeClock()
    traffic = Traffic(
        limits(HubSpotSettings(access_token="pat-na1-test")), clock=clock, sleep=clock.sleep
    )
    portal = PortalLimits(burst=190, search_rate=5, daily=10**9, hub_id=1, clock=clock)
    try:
        granted = send_after_late_arrivals(traffic, SEARCH, portal, clock, 8, late=2)
    except RateLimited as refused:
        pytest.fail(f"HubSpot answered 429 ({refused.body['policyName']})")
    start = granted[0]
    assert [t - start for t in granted] == pytest.approx([0, 0, 1, 1, 1, 2, 2, 2, 2, 3])
    # on time, the share alone sets the pace: 4 a second, the margin untouched
    for n, sent in enumerate(granted):
        assert sum(1 for t in granted if sent <= t < sent + 1.0) <= 4, n


def test_a_budget_holds_a_request_until_a_window_after_its_answer():
    clock = FakeClock()
    traffic = Traffic(
        Limits({"search": EndpointClass(4, window=1.0)}), clock=clock, sleep=clock.sleep
    )
    portal = PortalLimits(burst=100, search_rate=4, daily=10**9, hub_id=1, clock=clock)
    granted = send_after_late_arrivals(traffic, "search", portal, clock, 4)
    start = granted[0]
    assert [t - start for t in granted] == pytest.approx([0.0, 1.0, 1.0, 1.0, 2.0])
    assert not portal.refused


def test_weights_and_answers_in_any_order():
    clock = FakeClock()
    budget = RateBudget(5, 10.0, clock=clock, sleep=clock.sleep)
    heavy = budget.acquire(3)
    light = budget.acquire(2)
    clock.sleep(4.0)
    budget.release(light)  # frees 2 units at t=14, while the heavy one is still out
    clock.sleep(1.0)
    budget.release(heavy)  # frees 3 units at t=15
    start = heavy[0]
    budget.acquire(2)
    assert clock.now - start == pytest.approx(14.0)
    budget.acquire(3)
    assert clock.now - start == pytest.approx(15.0)


def test_a_request_stops_counting_against_the_window_once_its_answer_comes_in():
    """Reading and parsing a long body comes after HubSpot counted the request: the window
    runs from the answer's first bytes, not from the end of the parsing."""
    clock = FakeClock()
    traffic = Traffic(
        Limits({"search": EndpointClass(1, window=1.0)}), clock=clock, sleep=clock.sleep
    )
    start = clock.now
    with traffic.request("search") as answered:
        clock.sleep(0.2)
        answered()
        clock.sleep(0.7)  # the body is read and parsed
    with traffic.request("search"):
        assert clock.now - start == pytest.approx(1.2)
