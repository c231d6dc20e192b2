"""Benchmark: the requests HubSpot engagement costs (activities, companies, forms, marketing
events), per 1,000 contacts and by endpoint, against the documented minimum
(docs/performance.md, "HubSpot engagement").

    python bench/hubspot_engagement.py [--contacts 3000] [--density 8] [--changed 300]

The portal has about 20 engagement objects per contact at the default density (activities,
form submissions, webinar participations). Reads only (the adapter's `read_changed`, no
writes), on a fake clock: the figures are requests, not seconds. Scenarios:

- walk: a first run (no cursor) reads every contact with everything linked to it;
- incremental: `--changed` contacts get a logged call or meeting, a closed deal or a form
  submission, without their own record changing for most of them; read by the daemon that
  made the walk;
- incremental, new process: the same changes read by a fresh adapter (a one-shot `sync`) on
  a copy of the state file as the walk left it: the form and event index is read from it, so
  the API is asked for what is new only, as in the daemon;
- incremental, new process without the index: a fresh adapter without the state store (as a
  one-shot was before the index moved there), which reads every form's submissions and every
  event's participations again; shown against the same minimum.
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import tempfile
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.reader import Cursor, epoch_ms
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.values import now_ms
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.sync.adapter_state import AdapterState
from crm_qualify.connector.sync.state import StateStore

ACTIVITIES = ("calls", "meetings", "emails", "notes", "communications")
LINKED = ("deals", "tasks", *ACTIVITIES, "companies")
SWEPT = ("tasks", "deals", *ACTIVITIES, "companies")
V3, V4 = "/crm/v3/objects", "/crm/v4/associations"
FORMS, SUBMISSIONS = (
    "GET /marketing/v3/forms",
    "GET /form-integrations/v1/submissions/forms/{formGuid}",
)
EVENTS = "GET /marketing/marketing-events/v3"
BREAKDOWN = "GET /marketing/v3/marketing-events/participations/{marketingEventId}/breakdown"

FORMULA = """\
walk of N contacts (A_t: distinct records of linked type t, companies: primary ones only):
  ceil(N/100) list pages (every linked type inline)
  + sum over t of ceil(A_t/100) batch reads
  + ceil(F/100) form pages + sum over forms max(1, ceil(S_f/50)) submission pages
  + ceil(E/100) event pages + sum over events max(1, ceil(P_e/100)) breakdown pages
  + 1 company properties read (option labels) + 1 pipelines read
incremental (H contacts found by search; per swept type u, R_u records changed in the
window, W_u of them linked to contacts; R contacts read in batches b of <= 1,000,
S_b of them found by a sweep, X_t,b their distinct records of type t):
  max(1, ceil(H/200)) contact searches
  + sum over u of max(1, ceil(R_u/200)) searches + ceil(W_u/1,000) v4 reads (-> contacts)
  + sum over b of [ |linked types| v4 link reads + ceil(S_b/100) contact batch reads
                    + sum over t of ceil(X_t,b/100) batch reads ]
  + ceil(F/100) form pages + sum over forms max(1, ceil(new_f/50)) pages down to the newest
    held + ceil(E/100) event pages + the breakdown pages of the events whose participations
    changed (the index is in the state store: a new process reads what the daemon reads)
  + in a new process only: 1 company properties read + 1 pipelines read"""


class FakeClock:
    """Budgets wait on this clock: no real pacing, requests are what is measured."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def adapter_for(sim: HubSpotSimulator, store: StateStore | None) -> HubSpotAdapter:
    """A process's adapter, handed the state store's rows as the engine hands them (`None`:
    the adapter's private in-memory index)."""
    settings = HubSpotSettings(access_token=sim.token, base_url=sim.base_url, lookback_seconds=0)
    clock = FakeClock()
    client = HubSpotClient(settings, clock=clock, sleep=clock.sleep)
    adapter = HubSpotAdapter(settings, load_mapping("hubspot"), client)
    if store is not None:
        adapter.use_state(AdapterState(store, "default", adapter.name))
    return adapter


def copy_of(store: StateStore, path: Path) -> StateStore:
    """The state file as it stands, for a second process to start from."""
    with closing(sqlite3.connect(store.path)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return StateStore(path)


def linked(sim: HubSpotSimulator, contacts: list[str], kind: str) -> set[str]:
    found: set[str] = set()
    for contact in contacts:
        ids = sim.store.associations("contacts", contact, kind)
        if kind == "companies" and ids:
            primary = [
                i for i, t in sim.store.association_types("contacts", contact, kind) if 1 in t
            ]
            ids = primary[:1] or ids[:1]
        found.update(ids)
    return found


def stream_pages(
    sim: HubSpotSimulator, new_per_form: dict[str, int] | None, events: set[str] | None
) -> Counter[str]:
    """Form and event pages: every form and event (`None`), or the new rows / changed events."""
    marketing = sim.store.marketing
    pages: Counter[str] = Counter()
    forms = [f for f in marketing.forms.values() if not f.archived]
    pages[FORMS] = max(1, math.ceil(len(forms) / 100))
    for form in forms:
        rows = len(form.submissions) if new_per_form is None else new_per_form.get(form.id, 0)
        pages[SUBMISSIONS] += max(1, math.ceil(rows / 50))
    pages[EVENTS] = max(1, math.ceil(len(marketing.events) / 100))
    for event in marketing.events.values():
        if events is None or event.object_id in events:
            pages[BREAKDOWN] += max(1, math.ceil(len(event.participations) / 100))
    return pages


def walk_minimum(sim: HubSpotSimulator) -> Counter[str]:
    contacts = sorted(i for i, r in sim.store.objects["contacts"].items() if not r["archived"])
    floor: Counter[str] = Counter({f"GET {V3}/contacts": math.ceil(len(contacts) / 100)})
    for kind in LINKED:
        floor[f"POST {V3}/{kind}/batch/read"] = math.ceil(len(linked(sim, contacts, kind)) / 100)
    floor += stream_pages(sim, None, None)
    floor["GET /crm/v3/properties/companies"] = 1
    floor["GET /crm/v3/pipelines/deals"] = 1
    return +floor


def incremental_minimum(
    sim: HubSpotSimulator,
    batches: list[list[str]],
    searched: set[str],
    changed: dict[str, list[str]],
    new_per_form: dict[str, int] | None,
    events: set[str] | None,
    new_process: bool,
) -> Counter[str]:
    floor: Counter[str] = Counter(
        {f"POST {V3}/contacts/search": max(1, math.ceil(len(searched) / 200))}
    )
    for kind in SWEPT:
        records = changed.get(kind, [])
        floor[f"POST {V3}/{kind}/search"] = max(1, math.ceil(len(records) / 200))
        with_contacts = [r for r in records if sim.store.associations(kind, r, "contacts")]
        floor[f"POST {V4}/{kind}/contacts/batch/read"] = math.ceil(len(with_contacts) / 1000)
    for batch in batches:
        swept = [c for c in batch if c not in searched]
        floor[f"POST {V3}/contacts/batch/read"] += math.ceil(len(swept) / 100)
        for kind in LINKED:
            floor[f"POST {V4}/contacts/{kind}/batch/read"] += 1
            floor[f"POST {V3}/{kind}/batch/read"] += math.ceil(len(linked(sim, batch, kind)) / 100)
    floor += stream_pages(sim, new_per_form, events)
    if new_process:
        floor["GET /crm/v3/properties/companies"] = 1
        floor["GET /crm/v3/pipelines/deals"] = 1
    return +floor


def change(
    sim: HubSpotSimulator, count: int, seed: int
) -> tuple[dict[str, list[str]], dict[str, int], set[str]]:
    """`count` contacts engage: a third get a completed call, a third a booked meeting and a
    closed deal where they have one, a third submit a form; a few attend a webinar."""
    rng = random.Random(seed)
    live = sorted(i for i, r in sim.store.objects["contacts"].items() if not r["archived"])
    chosen = rng.sample(live, count)
    changed: dict[str, list[str]] = {}
    new_per_form: Counter[str] = Counter()
    events: set[str] = set()
    won = next(
        s["id"]
        for s in sim.store.pipelines[0]["stages"]
        if s["metadata"]["isClosed"] == "true" and float(s["metadata"]["probability"]) >= 1
    )
    stamp = str(now_ms())
    for n, contact in enumerate(chosen):
        if n % 3 == 0:
            changed.setdefault("calls", []).append(
                sim.log_activity(
                    "calls", contact, {"hs_call_status": "COMPLETED", "hs_timestamp": stamp}
                )
            )
        elif n % 3 == 1:
            changed.setdefault("meetings", []).append(
                sim.log_activity(
                    "meetings", contact, {"hs_meeting_outcome": "SCHEDULED", "hs_timestamp": stamp}
                )
            )
            for deal in sim.store.associations("contacts", contact, "deals")[:1]:
                with sim.store.lock:
                    sim.store.update("deals", deal, {"dealstage": won}, now_ms(), human=True)
                changed.setdefault("deals", []).append(deal)
        else:
            form = sim.submit_form(
                rng.choice(("Demo request", "Whitepaper: Security Guide")), contact
            )
            new_per_form[form] += 1
        if n % 10 == 0:
            events.add(sim.record_participation("Q3 Roadmap", contact, "ATTENDED"))
    return changed, dict(new_per_form), events


def show(title: str, made: Counter[str], floor: Counter[str], contacts: int) -> None:
    total, least = sum(made.values()), sum(floor.values())
    print(f"\n{title}: {total} requests, minimum {least}, {total / least:.3f}x")
    print(
        f"  per 1,000 contacts: {1000 * total / contacts:.1f}"
        f" (minimum {1000 * least / contacts:.1f})"
    )
    for key in sorted(set(made) | set(floor), key=lambda k: (-made[k], k)):
        print(f"  {made[key]:>7} {floor[key]:>7}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--density", type=float, default=8.0)
    parser.add_argument("--changed", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(FORMULA)
    with (
        tempfile.TemporaryDirectory() as folder,
        HubSpotSimulator(
            contacts=args.contacts,
            seed=args.seed,
            engagement=args.density,
            custom_properties=True,
            rate_limit=1_000_000,
            search_rate=1_000_000,
        ) as sim,
    ):
        objects = sum(len(sim.store.objects[k]) for k in ACTIVITIES)
        objects += sum(len(f.submissions) for f in sim.store.marketing.forms.values())
        objects += sum(len(e.participations) for e in sim.store.marketing.events.values())
        print(
            f"\nportal: {args.contacts} contacts,"
            f" {objects / args.contacts:.1f} engagement objects per contact"
        )
        store = StateStore(Path(folder) / "state.sqlite")
        daemon = adapter_for(sim, store)
        sim.stats.reset()
        walk_started = datetime.now(UTC) - timedelta(seconds=1)
        list(daemon.read_changed(None, until=walk_started))
        show("walk", Counter(sim.stats.by_endpoint), walk_minimum(sim), args.contacts)
        one_shot = adapter_for(sim, copy_of(store, Path(folder) / "one-shot.sqlite"))

        since = epoch_ms(walk_started)
        changed, new_per_form, events = change(sim, args.changed, args.seed)
        until = datetime.now(UTC) + timedelta(milliseconds=5)
        cursor = Cursor(since=since, activity=since).dump()
        for title, adapter, new_process in (
            ("incremental (daemon)", daemon, False),
            ("incremental (new process)", one_shot, True),
            ("incremental (new process without the index)", adapter_for(sim, None), True),
        ):
            sim.stats.reset()
            batches = [
                [r.key[1] for r in b.raw if r.key]
                for b in adapter.read_changed(cursor, until=until)
            ]
            batches = [b for b in batches if b]
            searched = {
                c
                for c, r in sim.store.objects["contacts"].items()
                if since <= _ms(r) < epoch_ms(until)
            }
            floor = incremental_minimum(
                sim, batches, searched, changed, new_per_form, events, new_process
            )
            show(title, Counter(sim.stats.by_endpoint), floor, sum(len(b) for b in batches))


def _ms(record: dict[str, Any]) -> int:
    from crm_qualify.adapters.hubspot.simulator.values import parse_ms

    return parse_ms(record["properties"].get("lastmodifieddate")) or 0


if __name__ == "__main__":
    main()
