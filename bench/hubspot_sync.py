"""Benchmark: HubSpot syncs against a simulated portal served by its own process.

    python bench/hubspot_sync.py [--contacts 10000 100000] [--latency-ms 0 250] [--seed 11]
                                 [--scenarios full "incremental 1%" ...] [--table FILE]

For each size and latency, a new portal (`crm-qualify simulate hubspot` options, in a child
process: bench/harness.py) and a new state store run the scenarios in order: full,
incremental 1% and 10% (that share of contacts gets new engagement), an idle rerun, a day
later and 30 days later (nothing changed outside: only time moves). Each prints its requests
per endpoint against the documented minimum (docs/performance.md, "HubSpot"; FORMULA below),
its wall time against the rate-limit floor (the max over endpoint classes of requests /
allowed rate: burst requests / 15 per s, searches / 4 per s at the default share), the
connector's peak RSS and CPU apart from the simulator's, 429s met, and the state store's
bytes per contact. The closing table adds the naive integration (one GET
and one PATCH per contact) as a computed row.
"""

from __future__ import annotations

import json
import math
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.reader import Cursor, _worked_on, epoch_ms
from crm_qualify.adapters.hubspot.records import FILTER_VALUES, SEARCH_BODY_LIMIT
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.contract import ContactBatch
from crm_qualify.connector.ops.allocator import tune_malloc
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore
from harness import (
    Row,
    Simulator,
    bench_arguments,
    breakdown,
    mapping_for,
    measure,
    naive_line,
    report,
    scenarios,
    store_bytes,
)

BATCH, PAGE, SEARCH, LINKS, INLINE = 100, 100, 200, 1000, 100
"""HubSpot's sizes: batch read / update / create, list page, search page, v4 association
read; links a list-page row carries inline."""
READ_BATCH = 1000
"""Contacts one read batch holds (the engine keeps one batch in memory)."""


def parse_ms(value: str | None) -> int | None:
    """The portal's time in epoch ms, as the simulator parses it. Called in the simulator's
    process only, and imported there: the simulator's modules in the connector's process
    would count as the connector's RSS."""
    from crm_qualify.adapters.hubspot.simulator.values import parse_ms as parse

    return parse(value)


V3 = "/crm/v3/objects"
LIST, SEARCH_CONTACTS = f"GET {V3}/contacts", f"POST {V3}/contacts/search"
CONTACT_READ, DEAL_READ, TASK_READ, COMPANY_READ = (
    f"POST {V3}/{t}/batch/read" for t in ("contacts", "deals", "tasks", "companies")
)
DEAL_LINKS, TASK_LINKS, SWEEP_LINKS = (
    f"POST /crm/v4/associations/{a}/{b}/batch/read"
    for a, b in (("contacts", "deals"), ("contacts", "tasks"), ("tasks", "contacts"))
)
TASK_SEARCH, PIPELINES = f"POST {V3}/tasks/search", "GET /crm/v3/pipelines/deals"
UPDATE, CREATE = f"POST {V3}/contacts/batch/update", f"POST {V3}/tasks/batch/create"
DESCRIBE = "GET /crm/v3/properties/contacts"
KEY = "crmq_task_key"
MODELLED = frozenset(
    {LIST, SEARCH_CONTACTS, CONTACT_READ, DEAL_READ, TASK_READ, COMPANY_READ, DEAL_LINKS}
    | {TASK_LINKS, SWEEP_LINKS, TASK_SEARCH, PIPELINES, UPDATE, CREATE, DESCRIBE}
)
"""The endpoints FORMULA covers (activity, form and event reads, company searches and the
links of the engagement types are not in it yet)."""
PRIMARY_TYPE = 1
"""HubSpot's contact -> company association type of the primary company."""

FORMULA = """\
full (walk of N contacts; D, K: distinct deals and tasks linked to them):
  by search (when 1,000/200 + T <= 1,000/100, T linked types, and the rows fit a body):
    ceil(N/200) search pages + per read batch of <= 1,000 contacts: 1 v4 link read per type
  else by list: ceil(N/100) list pages (properties and deal/task links inline)
    + per read batch of <= 1,000 contacts: ceil(L/1,000) v4 link reads per type
    (L: its contacts with more than 100 links of the type)
  + ceil(D/100) deal reads + ceil(K/100) task reads
  + ceil(Co/100) company reads (mapping [companies] fill_missing; Co: distinct primary
    companies of the contacts read, each read once a run)
  + ceil(W/100) batch updates + ceil(C/100) task creates (W records written, C tasks)
  + 1 pipelines read per process + task-ledger search pages on a new state store
  + 1 contact property describe on the first run with a configuration and mapping (the
    owned fields' fit)
incremental (H contact hits in the window, T task hits; R contacts to read, D and K their
distinct deals and tasks):
  max(1, ceil(H/200)) searches + max(1, ceil(T/200)) task searches
  + ceil(P/1,000) task->contact link reads (P: tasks people worked on)
  + per read batch of <= 1,000 of the R contacts: 2 v4 link reads (deals, tasks)
    + ceil(S/100) batch reads (S: its contacts found by the task sweep, not by search)
  + ceil(D/100) deal reads + ceil(K/100) task reads + ceil(Co/100) company reads
  + ceil(W/100) batch updates + ceil(C/100) task creates
either: + the task searches that look up the keys of the E late follow-ups escalated, each
  first: max(ceil(E/100), ceil(their characters / 2,600)) (a 3,000-character search body;
  about 60 of ours a search)"""


# ----- in the simulator's process (harness `call`) -------------------------------------------
WINDOW: dict[str, tuple[list[str], int, int]] = {}
"""The next run's search window, noted before it runs and kept here for `minimum`: the ids
would otherwise sit in the bench's process, counted as the connector's memory."""


def window(sim: Any, low: int, swept: int, key: str) -> int:
    """Note (ids of the contacts the run's search window holds, task hits, tasks people worked
    on) for `minimum`; returns how many contacts it holds."""
    WINDOW["hits"] = _window(sim, low, swept, key)
    return len(WINDOW["hits"][0])


def _window(sim: Any, low: int, swept: int, key: str) -> tuple[list[str], int, int]:
    with sim.store.lock:
        contacts = [
            r["id"]
            for r in sim.store.objects["contacts"].values()
            if not r["archived"] and (parse_ms(r["properties"].get("lastmodifieddate")) or 0) >= low
        ]
        tasks = [
            r
            for r in sim.store.objects["tasks"].values()
            if not r["archived"]
            and r["properties"].get(key)
            and (parse_ms(r["properties"].get("hs_lastmodifieddate")) or 0) >= swept
        ]
    return contacts, len(tasks), sum(1 for r in tasks if _worked_on(r))


def key_searches(sim: Any, began_ms: int) -> int:
    """The fewest task searches that look up the keys of the follow-ups escalated since
    `began_ms` (each looked up first): at most 100 values an IN filter, and the values'
    characters in a body of at most 3,000 (400 of them for the rest), however they are cut."""
    with sim.store.lock:
        keys = [
            json.dumps(key.removesuffix(":escalation"))
            for task in sim.store.objects["tasks"].values()
            if (key := task["properties"].get(KEY))
            and key.endswith(":escalation")
            and (parse_ms(task.get("createdAt")) or 0) >= began_ms
        ]
    characters = sum(len(key) + 1 for key in keys)
    return max(
        math.ceil(len(keys) / FILTER_VALUES), math.ceil(characters / (SEARCH_BODY_LIMIT - 400))
    )


def minimum(
    sim: Any,
    windowed: bool,
    read_ids: Sequence[int],
    began_ms: int,
    written: int,
    created: int,
    first_run: bool,
    pipelines: bool,
    walk_by_search: bool = False,
    companies: bool = False,
) -> Counter[str]:
    """The documented minimum of one run, per endpoint (FORMULA): `read`, the contact ids
    handed to the engine in order; links made by the run itself (tasks created since
    `began_ms`) left out, as the run read the contacts before it made them. `windowed`: the
    run searched the window `window` noted (else it walked). `companies`: the mapping reads
    each contact's primary company."""
    hits = WINDOW.pop("hits") if windowed else None
    read = [str(oid) for oid in read_ids]
    floor: Counter[str] = Counter()
    store = sim.store
    with store.lock:
        if hits is None:
            live = sum(1 for r in store.objects["contacts"].values() if not r["archived"])
            page = SEARCH if walk_by_search else PAGE
            floor[SEARCH_CONTACTS if walk_by_search else LIST] = math.ceil(live / page)
            found: set[str] = set()
        else:
            contact_hits, task_hits, worked = hits
            found = set(contact_hits)
            floor[SEARCH_CONTACTS] = max(1, math.ceil(len(contact_hits) / SEARCH))
            floor[TASK_SEARCH] = max(1, math.ceil(task_hits / SEARCH))
            floor[SWEEP_LINKS] = math.ceil(worked / LINKS)

        def earlier(task_id: str) -> bool:
            row = store.objects["tasks"].get(task_id)
            return row is not None and (parse_ms(row.get("createdAt")) or 0) < began_ms

        linked = [
            (
                store.associations("contacts", oid, "deals"),
                [t for t in store.associations("contacts", oid, "tasks") if earlier(t)],
                oid in found,
            )
            for oid in read
        ]
        keyed = sum(1 for t in store.objects["tasks"].values() if t["properties"].get(KEY))
        primary = {p for oid in read if (p := _primary(store, oid))} if companies else set()
    floor[COMPANY_READ] = math.ceil(len(primary) / BATCH)
    floor[DEAL_READ] = math.ceil(len({d for deals, _, _ in linked for d in deals}) / BATCH)
    floor[TASK_READ] = math.ceil(len({t for _, tasks, _ in linked for t in tasks}) / BATCH)
    for start in range(0, len(linked), READ_BATCH):
        chunk = linked[start : start + READ_BATCH]
        if hits is None and walk_by_search:  # search rows carry no links
            floor[DEAL_LINKS] += 1
            floor[TASK_LINKS] += 1
        elif hits is None:  # links come inline, up to 100 of a type
            floor[DEAL_LINKS] += math.ceil(sum(len(d) > INLINE for d, _, _ in chunk) / LINKS)
            floor[TASK_LINKS] += math.ceil(sum(len(t) > INLINE for _, t, _ in chunk) / LINKS)
        else:
            floor[DEAL_LINKS] += 1
            floor[TASK_LINKS] += 1
            floor[CONTACT_READ] += math.ceil(sum(not hit for _, _, hit in chunk) / BATCH)
    if pipelines and any(deals for deals, _, _ in linked):
        floor[PIPELINES] = 1
    if first_run:
        floor[TASK_SEARCH] += max(1, math.ceil((keyed - created) / SEARCH))
        floor[DESCRIBE] = 1
    floor[TASK_SEARCH] += key_searches(sim, began_ms)
    floor[UPDATE] = math.ceil(written / BATCH)
    floor[CREATE] = math.ceil(created / BATCH)
    return +floor


def _primary(store: Any, contact_id: str) -> str | None:
    """The company a contact's firmographics come from: its primary, else its first."""
    links = store.association_types("contacts", contact_id, "companies")
    chosen = [i for i, types in links if PRIMARY_TYPE in types] or [i for i, _ in links]
    return chosen[0] if chosen else None


# ----- in the bench's (the connector's) process ----------------------------------------------
def watch_reads(adapter: HubSpotAdapter) -> list[array[int]]:
    """Wraps `read_changed` so the current run's contact ids are noted as batches are handed
    over: the last run's only, as machine integers (the simulator's ids are numeric), since
    they count in the connector's measured memory (100,000 ids as strings: some 7 MB)."""
    runs: list[array[int]] = []
    original = adapter.read_changed

    def read_changed(cursor: str | None, **kwargs: Any) -> Iterator[ContactBatch]:
        read: array[int] = array("q")
        runs[:] = [read]
        for batch in original(cursor, **kwargs):
            keys = [r.key for r in batch.raw] + [e.key for e in batch.errors]
            read.extend(int(key[1]) for key in keys if key)
            yield batch

    adapter.read_changed = read_changed  # type: ignore[method-assign]
    return runs


def search_window(store: StateStore, adapter: HubSpotAdapter) -> tuple[int, int] | None:
    """(low, swept) epoch ms of the next run's contact and task searches; None for a walk."""
    cursor = Cursor.load(store.get_cursor("default", "contacts"))
    if cursor is None or cursor.since is None:
        return None
    lookback = adapter.reader.lookback_ms
    activity = cursor.activity if cursor.activity is not None else cursor.since
    return cursor.since - lookback, activity - lookback


def floor_seconds(measured: Counter[str], settings: HubSpotSettings) -> float:
    """The time these requests need at the rates we may use: per endpoint class, its
    requests / its allowed rate (search has its own per-second limit and is exempt from the
    burst limit), the max over classes."""
    searches = sum(n for name, n in measured.items() if name.endswith("/search"))
    burst = sum(measured.values()) - searches
    return max(burst / (settings.requests_per_10s / 10), searches / settings.searches_per_second)


def run_size(contacts: int, latency: float, args: Any) -> list[Row]:
    options = ["--contacts", str(contacts), "--seed", str(args.seed), "--latency-ms",
               str(latency), "--custom-properties", "--search-lag-seconds", "0"]  # fmt: skip
    rows: list[Row] = []
    with Simulator("hubspot", options) as sim:
        where = sim.call("info")
        settings = HubSpotSettings(access_token=where["access_token"], base_url=where["base_url"])
        adapter = HubSpotAdapter.from_config(settings, mapping_for("hubspot", args.core_only))
        runs = watch_reads(adapter)
        pipelines = True
        by_search = adapter.reader.search_walk and adapter.reader.rows_fit_search()
        companies = "companies" in adapter.linked
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state.sqlite"
            store = StateStore(path)
            engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="hubspot")), store)
            for number, (name, days, share) in enumerate(scenarios(args.scenarios)):
                if share:
                    sim.call("engage", round(contacts * share))
                bounds = search_window(store, adapter)
                if bounds is not None:
                    sim.call("hubspot_sync:window", *bounds, adapter.task_key_property)
                before = sim.call("stats", True)
                began = datetime.now(UTC)
                summary, wall, cpu, rss = measure(
                    lambda days=days: engine.run(
                        RunOptions(now=datetime.now(UTC) + timedelta(days=days))
                    )
                )
                after = sim.call("stats", True)
                counts = summary.counts
                measured = Counter(after["by_endpoint"])
                floor = Counter(
                    sim.call(
                        "hubspot_sync:minimum", bounds is not None, runs[-1] if runs else [],
                        epoch_ms(began), counts["records_written"], counts["tasks_created"],
                        number == 0, pipelines, by_search, companies,
                    )
                )  # fmt: skip
                pipelines = pipelines and not measured[PIPELINES]
                row = Row(
                    "HubSpot", contacts, latency, name, sum(measured.values()),
                    sum(floor.values()), wall, floor_seconds(measured, settings), rss, cpu,
                    after["cpu"] - before["cpu"], after["throttled"], counts["records_written"],
                    counts["tasks_created"], store_bytes(path), contacts, measured, floor,
                    MODELLED,
                )  # fmt: skip
                rows.append(row)
                print(
                    f"{name} ({contacts:,} contacts, {latency:g} ms): {summary.status}, read"
                    f" {counts['read']:,}, re-decided {counts['redecided']:,}; {row.requests:,}"
                    f" requests ({row.outside:,} outside the formula), minimum {row.minimum:,}"
                    f" ({row.ratio:.2f}; {row.modelled_ratio:.2f} on its endpoints);"
                    f" {wall:.1f} s, floor {row.floor:.1f} s ({row.wall_ratio or 0:.2f});"
                    f" fields written {counts['fields_written']:,} on {row.written:,} records,"
                    f" tasks {row.tasks:,}; 429s {row.throttled}; connector peak RSS {rss:.0f} MB,"
                    f" CPU {cpu:.1f} s; simulator CPU {row.sim_cpu:.1f} s, peak RSS"
                    f" {after['peak_mb']:.0f} MB; in flight at most"
                    f" {adapter.traffic.peak_in_flight}",
                    flush=True,
                )
                refused = Counter(after["refused"]) - Counter(before["refused"])
                if refused:
                    print(f"      429s by HubSpot policy: {dict(refused)}", flush=True)
                print(breakdown(measured, floor), flush=True)
            store.close()
    return rows


def main() -> None:
    tune_malloc()  # the connector runs here: as `crm-qualify` does first
    args = bench_arguments(__doc__.splitlines()[0], "contacts")
    print(FORMULA)
    rows: list[Row] = []
    for contacts in args.contacts:
        for latency in args.latency_ms:
            rows += run_size(contacts, latency, args)
    share = HubSpotSettings(access_token="-").requests_per_10s / 10
    naive = [naive_line("HubSpot", n, share) for n in args.contacts]
    report(rows, naive, args.table)


if __name__ == "__main__":
    main()
