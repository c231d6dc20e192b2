"""`HubSpotSimulator`: a seeded HubSpot portal served over HTTP for demos, tests and benchmarks."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

from . import (
    engagement_ops,
    merge,
    routes_batch,
    routes_marketing,
    routes_meta,
    routes_objects,
    seed_engagement,
    seed_meta,
    seed_outcomes,
    seed_people,
)
from . import seed as seeding
from .auth import DEFAULT_SCOPES, Auth
from .faults import Faults
from .limits import Limits
from .server import Router, make_server
from .store import Store
from .values import DAY_MS, format_ms, normalize, now_ms

ROUTER = Router(
    routes_meta.ROUTES
    + routes_batch.ROUTES
    + routes_objects.ROUTES
    + routes_marketing.ROUTES
    + merge.ROUTES
)
ENGAGEMENT_SCOPES = ("forms", "crm.objects.marketing_events.read")
"""Granted by default beside `auth.DEFAULT_SCOPES`: the portal's forms and marketing events."""
HOUR_MS = 3_600_000
# (probability, recent conversion name) for simulate_engagement; the rest only browse/open.
_CONVERSIONS = [
    (0.05, "Demo request"),
    (0.04, "Pricing quote request"),
    (0.03, "Free trial signup"),
    (0.08, "Webinar: Q3 Roadmap (attended)"),
    (0.10, "Whitepaper: Security Guide"),
    (0.10, "Newsletter signup"),
]


_ANALYTICS = {"sourceType": "ANALYTICS", "sourceLabel": "Analytics"}


class Stats:
    """Request accounting for tests and benchmarks (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_endpoint: Counter[str] = Counter()
            self.by_status: Counter[int] = Counter()
            self.throttled = 0
            self.writes = 0

    def request(self, key: str) -> None:
        with self._lock:
            self.by_endpoint[key] += 1

    def status(self, code: int) -> None:
        with self._lock:
            self.by_status[code] += 1
            if code == 429:
                self.throttled += 1

    def wrote(self) -> None:
        with self._lock:
            self.writes += 1


class HubSpotSimulator:
    """A local HubSpot portal. `anchor` is the portal's 'today' that seeded history is relative
    to (default: today's UTC midnight); the same `seed` and `anchor` give identical data.
    `engagement` scales the seeded activities, forms and webinars (seed_engagement.py; 0: none).
    `duplicates` adds the labelled duplicates, near-misses and no-one records (seed_people.py)."""

    def __init__(
        self,
        contacts: int = 1000,
        seed: int = 1,
        latency_ms: float = 0,
        rate_limit: int = 190,
        search_rate: int = 5,
        daily_limit: int = 650_000,
        fault_rate: float = 0.0,
        token: str = "sim-private-app-token",
        oauth_client_id: str = "sim-client",
        oauth_client_secret: str = "sim-secret",
        oauth_refresh_token: str = "sim-refresh",
        access_token_ttl: float = 1800.0,
        rotate_refresh_tokens: bool = False,
        auth_clock: Callable[[], float] = time.time,
        search_index_lag: float = 0.0,
        custom_properties: bool = False,
        scopes: Iterable[str] | None = None,
        anchor: date | None = None,
        engagement: float = 1.0,
        outcomes: int = 0,
        duplicates: bool = False,
    ) -> None:
        self.seed, self.latency_ms, self.token = seed, latency_ms, token
        self.hub_id = 24_000_000 + seed % 1_000_000
        day = anchor or datetime.now(UTC).date()
        self.anchor_ms = (day - date(1970, 1, 1)).days * DAY_MS
        rng = random.Random(seed)
        owners = seed_meta.owners(rng, f"sim-{self.hub_id}.example.com")
        self.store = Store(self.hub_id, owners, seed_meta.pipelines(rng), search_index_lag)
        collecting = gc.isenabled()
        gc.disable()  # seeding allocates millions of acyclic objects; cycle scans only cost time
        try:
            seeding.PortalBuilder(self.store, rng, self.anchor_ms).build(contacts)
            if outcomes:  # people whose deals follow a known model (calibration tests)
                seed_outcomes.seed(self.store, seed, self.anchor_ms, outcomes)
            self.seeded_people = (  # labelled duplicates (adapters/seeded_people.py): label -> key
                seed_people.seed(self.store, self.anchor_ms) if duplicates else {}
            )
            if engagement > 0:
                seed_engagement.seed(self.store, seed, self.anchor_ms, engagement)
        finally:
            if collecting:
                gc.enable()
        if custom_properties:
            self.store.provision_crmq(format_ms(self.anchor_ms - 30 * DAY_MS))
        self.stats = Stats()
        self.faults = Faults(fault_rate, seed)
        self.limits = Limits(rate_limit, search_rate, daily_limit, self.hub_id)
        self.auth = Auth(
            token,
            oauth_client_id,
            oauth_client_secret,
            oauth_refresh_token,
            access_token_ttl,
            tuple(scopes or (*DEFAULT_SCOPES, *ENGAGEMENT_SCOPES)),
            self.hub_id,
            owners[0],
            rotate=rotate_refresh_tokens,
            clock=auth_clock,
        )
        user = owners[0]["userId"]
        self.store.api_source = {"sourceType": "INTEGRATION", "sourceId": str(self.auth.app_id)}
        self.store.ui_source = {
            "sourceType": "CRM_UI",
            "sourceId": f"userId:{user}",
            "updatedByUserId": user,
        }
        self._rng = random.Random(seed * 7919 + 1)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve in a daemon thread; returns the base URL (`http://127.0.0.1:PORT`)."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = make_server(self, ROUTER, host, port)
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="hubspot-sim", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HubSpotSimulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- scenario helpers ------------------------------------------------------------------
    def shuffle(self, items: list[Any]) -> None:
        """Batch results are unordered in HubSpot; a seeded shuffle keeps runs reproducible."""
        self._rng.shuffle(items)

    def touch(self, contact_id: str, properties: dict[str, str]) -> None:
        """A human edit in the HubSpot UI: any defined property (even read-only ones, even a
        backwards lifecycle stage) is set and `lastmodifieddate` moves to now."""
        with self.store.lock:
            if self.store.get("contacts", contact_id) is None:
                raise KeyError(f"no contact {contact_id}")
            clean = {}
            for name, value in properties.items():
                definition = self.store.definitions["contacts"].get(name)
                if definition is None:
                    raise ValueError(f'Property "{name}" does not exist')
                clean[name], problem = normalize(definition, value)
                if problem:
                    raise ValueError(problem.message)
            self.store.update("contacts", contact_id, clean, now_ms(), human=True)

    def complete_task(self, task_id: str, completed: bool = True, at: int | None = None) -> None:
        """A salesperson ticks a task done in HubSpot (or reopens it): its status changes,
        `hs_task_completion_date` is set (or cleared) and `hs_lastmodifieddate` moves to now
        (or to `at`, epoch ms); the associated contact's `lastmodifieddate` does not move."""
        with self.store.lock:
            if self.store.get("tasks", task_id) is None:
                raise KeyError(f"no task {task_id}")
            status = "COMPLETED" if completed else "NOT_STARTED"
            moment = now_ms() if at is None else at
            self.store.update("tasks", task_id, {"hs_task_status": status}, moment, human=True)

    def merge_contacts(self, primary_id: str, secondary_id: str) -> str:
        """A rep merges two contacts in HubSpot (merge.py, as the merge endpoint does);
        returns the merged contact's new id."""
        with self.store.lock:
            return merge.merge_contacts(self.store, primary_id, secondary_id, now_ms())["id"]

    def log_activity(
        self, kind: str, contact_id: str, properties: dict[str, str], at: int | None = None
    ) -> str:
        """A rep logs a call, meeting, email, note or communication (engagement_ops.py)."""
        return engagement_ops.log_activity(self, kind, contact_id, properties, at)

    def submit_form(self, form_name: str, contact_id: str, at: int | None = None) -> str:
        """A contact submits a form (engagement_ops.py); returns the form's id."""
        return engagement_ops.submit_form(self, form_name, contact_id, at)

    def record_participation(
        self, event_name: str, contact_id: str, state: str, at: int | None = None
    ) -> str:
        """A webinar registration or attendance (engagement_ops.py); returns the event's id."""
        return engagement_ops.record_participation(self, event_name, contact_id, state, at)

    def simulate_engagement(self, n_contacts: int, seed: int | None = None) -> list[str]:
        """A day of new engagement for `n_contacts` random live contacts: page views, email
        opens/clicks, some replies, meetings and conversions (a few demo/pricing requests).
        Returns the touched ids; each gets `lastmodifieddate` = now."""
        rng = random.Random(self._rng.random() if seed is None else seed)
        with self.store.lock:
            live = [r["id"] for r in self.store.objects["contacts"].values() if not r["archived"]]
            chosen = sorted(rng.sample(live, min(n_contacts, len(live))))
            now = now_ms()
            for oid in chosen:
                props = self.store.objects["contacts"][oid]["properties"]
                changes = _engagement(rng, props, now)
                self.store.update("contacts", oid, changes, now, human=True, source=_ANALYTICS)
        return chosen


def _engagement(rng: random.Random, props: dict[str, str], now: int) -> dict[str, str]:
    def when() -> str:
        return format_ms(now - rng.randrange(0, 6 * HOUR_MS))

    def bump(name: str, low: int, high: int) -> str:
        return str(int(float(props.get(name) or 0)) + rng.randint(low, high))

    changes = {
        "hs_analytics_num_page_views": bump("hs_analytics_num_page_views", 1, 12),
        "hs_analytics_last_visit_timestamp": when(),
    }
    if rng.random() < 0.5:
        changes["hs_email_open"] = bump("hs_email_open", 1, 3)
        changes["hs_email_last_open_date"] = when()
        if rng.random() < 0.4:
            changes["hs_email_click"] = bump("hs_email_click", 1, 2)
            changes["hs_email_last_click_date"] = when()
    roll, acc = rng.random(), 0.0
    for probability, name in _CONVERSIONS:
        acc += probability
        if roll < acc:
            stamp = when()
            changes |= {
                "recent_conversion_event_name": name,
                "recent_conversion_date": stamp,
                "num_conversion_events": bump("num_conversion_events", 1, 1),
            }
            if not props.get("first_conversion_event_name"):
                changes |= {"first_conversion_event_name": name, "first_conversion_date": stamp}
            break
    if rng.random() < 0.08:
        changes["hs_sales_email_last_replied"] = when()
    if rng.random() < 0.04:
        changes["engagements_last_meeting_booked"] = when()
    return changes
