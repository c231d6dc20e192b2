"""Benchmark: Salesforce syncs against a simulated org served by its own process.

    python bench/salesforce_sync.py [--records 10000 100000] [--latency-ms 0 250] [--seed 3]
                                    [--scenarios full "incremental 1%" ...] [--table FILE]

For each size and latency, a new org (the `crm-qualify simulate salesforce` options, in a
child process: bench/harness.py) and a new state store run the scenarios in order: full,
incremental 1% and 10% (that share of people gets new engagement), an idle rerun, a day later
and 30 days later (nothing changed outside: only time moves). Each prints its requests per
kind (as the adapter names them) against the documented minimum (docs/performance.md,
"Salesforce"; FORMULA below), the wall time (Salesforce sets no short-window rate limit, so
there is no rate floor to compare with), the connector's peak RSS and CPU apart from the
org's, and the state store's bytes per person. The closing table adds the naive integration
(one GET and one PATCH per person) as a computed row.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from crm_qualify.adapters.salesforce import SalesforceAdapter
from crm_qualify.adapters.salesforce.accounts import AccountMapping, business_domain, statements
from crm_qualify.adapters.salesforce.adapter import CONVERTED_SCAN
from crm_qualify.adapters.salesforce.history import SETTERS
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.soql import MAX_QUERY_URI, converted_leads, in_chunks
from crm_qualify.adapters.salesforce.translate import ObjectMapping, PeopleMapping
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

PAGE, COLLECTION, BULK_SET = 2000, 200, 10_000
INGEST = ("POST jobs/ingest", "PUT jobs/ingest/{id}/batches", "PATCH jobs/ingest/{id}",
          "GET jobs/ingest/{id}")  # fmt: skip
"""The requests of one ingest job at the least: create, upload, close, one poll."""
UPSERTED = "GET jobs/ingest/{id}/successfulResults"
"""A task upsert job's results too: the id of each key's task, which the state store keeps
(rollback deletes by it) and no other request of the run brings back."""
KEY = "CRMQ_Task_Key__c"
SWEPT = ("Task", "Event", "CampaignMember", "OpportunityContactRole", "Opportunity")
PEOPLE = ("Lead", "Contact")
"""The objects a run reads people from."""


def children() -> dict[str, tuple[tuple[str, str], ...]]:
    """What is read with each person, the org's rows naming them (a child row counts toward
    the page like its parent). Imported in the simulator's process only, where it is called:
    the simulator's modules in the connector's process would count as the connector's RSS."""
    from crm_qualify.adapters.salesforce.simulator.org import ACTIVITY_LINKS

    return ACTIVITY_LINKS


FORMULA = """\
minimum = L + K + R + A + V + S + Q + E + W(U) + W(T)
  L: 1 login per process; K: on a new state store, max(1, ceil(keyed tasks / 2,000)) ledger pages
     (and, on the first run with a configuration and mapping, 1 describe per object: the
     owned fields' fit)
  R, people read over REST: sum over Lead, Contact of max(1, ceil((P + M + C) / 2,000)); P:
     people of the object to read (all on a full read; those changed outside since the last
     run on an incremental one), M: on an incremental run (queryAll), the records merged away
     since then, whose rows bring their master the merge trail, C: the people's child rows
     (Tasks, Events, CampaignMembers, and for contacts OpportunityContactRoles), which count
     toward a 2,000-row page like the people
  R, on a full read of an object holding bulk_threshold (2,000) people or more: its first
     REST page (the only way to learn its size, so whether Bulk is worth it), then Bulk API 2.0
     query jobs, one for the people, one per child relationship (Task and Event by WhoId,
     CampaignMember by LeadId and by ContactId, OpportunityContactRole) and, when Leads are
     matched to Accounts, one for Accounts and one for open Opportunities; each 2 requests
     (create, one poll) + max(1, ceil(rows / 10,000)) results
  A: Leads read over REST with [accounts] match_leads: the Account look-ups of their business
     email domains and company names, as few statements as fit a 12,000-character URI
  V: Contacts read: the Leads converted into them, which alone hold the person's earlier
     history (its creation above all); from 1,000 such contacts every converted Lead,
     max(1, ceil(rows / 2,000)) pages, else IN lists of their ids
  S: activity sweep of an incremental run: Task, Event, CampaignMember,
     OpportunityContactRole, Opportunity changed since the last run, max(1, ceil(rows / 2,000))
     each
  "Since the last run" (P, M, S): since its start less lookback_seconds, as the adapter's
     window: a row stamped there may commit after that run read past it (the simulator's
     logged activity is stamped 5 minutes back). A and V look up only the people the last run
     did not read at the version they have (changed since its start).
  W(n), U records updated, T tasks upserted: below bulk_threshold, ceil(n / 200) sObject
     Collections; from it on, ingest jobs of up to 10,000 records of one object (so per
     object for U), 4 requests each (create, upload, close, one poll) and for tasks a 5th
     (successfulResults: each task's id); a remainder below bulk_threshold (beside full
     jobs, or an object's few records beside another's job) in collections where they are
     fewer
  Q: the setter queries (CreatedById, LastModifiedById) of the records whose plan hinges on
     who set a value the run would replace (a temperature, under the default unless_edited,
     that crm-qualify never wrote: a rep's Rating is kept) and that were mirrored without
     those fields (people read now carry them: no query), per decided batch as few IN lists
     as fit the query URI; each record asked once, its answer kept in the mirror
  E: the Task queries that look up the keys of the late follow-ups escalated, each first (a
     follow-up a person deleted is not escalated): ceil(their encoded characters / 12,000),
     the query URI (about 190 of ours a query)
The REST-only minimum (issue 10's own formula) is the same with bulk_threshold 0: every read
in query pages of 2,000 rows, every write in sObject Collections of 200."""


def sf_stamp(moment: datetime) -> str:
    """`moment` as Salesforce writes a datetime, comparable as text with the org's stamps."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def people(sim: Any, since: str | None) -> dict[str, list[str]]:
    """Ids per object of the people a run must read: everyone (`since` None), or those whose
    last change since `since` is not the integration user's. Stamps have whole seconds, so a
    change in the second `since` names counts: the bench's engagement often follows the
    previous run's start within it (strictly later, it was left out of the minimum)."""
    wanted: dict[str, list[str]] = {}
    for sobject in PEOPLE:
        for record in sim.org.live(sobject):
            if record.get("IsConverted"):
                continue
            changed = since is None or (
                record["SystemModstamp"] >= since
                and record["LastModifiedById"] != sim.org.integration_user
            )
            if changed:
                wanted.setdefault(sobject, []).append(record["Id"])
    return wanted


def merged_away(sim: Any, sobject: str, since: str | None) -> int:
    """Records merged away since `since`: rows of an incremental run's people query (queryAll),
    which hand their master the merge trail."""
    if since is None:
        return 0
    return sum(
        1
        for r in sim.org.records[sobject].values()
        if r["IsDeleted"] and r.get("MasterRecordId") and r["SystemModstamp"] > since
    )


def child_rows(sim: Any, sobject: str, ids: list[str]) -> int:
    wanted = set(ids)
    return sum(
        1
        for child, link in children()[sobject]
        for row in sim.org.live(child)
        if row.get(link) in wanted
    )


def swept(sim: Any, since: str) -> Counter[str]:
    """Rows each sweep query meets (our own open tasks left out, as the sweep leaves them)."""
    rows: Counter[str] = Counter()
    for sobject in SWEPT:
        for row in sim.org.live(sobject):
            ours = sobject == "Task" and row.get(KEY) and not row.get("IsClosed")
            if row["SystemModstamp"] > since and not ours:
                rows[sobject] += 1
    return rows


def account_lookups(sim: Any, leads: list[str], mapping: dict[str, Any]) -> int:
    """Account queries of these Leads' business email domains and company names (A)."""
    accounts = AccountMapping.from_document(mapping)
    if not accounts.match_leads or not leads:
        return 0
    profile = ObjectMapping.from_document(mapping, "Lead").profile
    rows = [sim.org.records["Lead"][i] for i in leads]
    email, company = profile.get("email", ""), profile.get("company", "")
    domains = {d for row in rows if (d := business_domain(row.get(email)))}
    names = {row[company] for row in rows if isinstance(row.get(company), str) and row[company]}
    return len(statements(accounts, sorted(domains), sorted(names))) if domains or names else 0


def conversion_lookups(sim: Any, contacts: list[str], mapping: dict[str, Any]) -> int:
    """Queries for the Leads converted into the contacts read (V)."""
    new = contacts
    if not new:
        return 0
    if len(new) >= CONVERTED_SCAN:
        rows = sum(1 for lead in sim.org.live("Lead") if lead.get("ConvertedContactId"))
        return max(1, math.ceil(rows / PAGE))
    lead, people_mapping = (
        ObjectMapping.from_document(mapping, "Lead"),
        PeopleMapping.from_document(mapping),
    )
    fields = [f for f in (lead.owned.fields.get("stage"), people_mapping.lead_source,
                          *people_mapping.qualification.values()) if f]  # fmt: skip
    return sum(1 for _ in in_chunks(converted_leads(fields), new))


def bulk_jobs(sim: Any, objects: list[str], wanted: dict[str, list[str]], match: bool) -> Counter:
    """The query jobs of a full read through Bulk of `objects` (R, Bulk)."""
    rows = [len(wanted.get(sobject, [])) for sobject in objects]
    kinds = {kind for sobject in objects for kind in children()[sobject]}
    rows += [sum(1 for r in sim.org.live(child) if r.get(link)) for child, link in sorted(kinds)]
    if "Lead" in objects and match:
        rows.append(sum(1 for _ in sim.org.live("Account")))
        rows.append(sum(1 for o in sim.org.live("Opportunity")
                        if not o.get("IsClosed") and o.get("AccountId")))  # fmt: skip
    floor: Counter[str] = Counter()
    floor["POST jobs/query"] = floor["GET jobs/query/{id}"] = len(rows)
    floor["GET jobs/query/{id}/results"] = sum(max(1, math.ceil(n / BULK_SET)) for n in rows)
    return floor


def minimum_reads(
    sim: Any,
    since: str | None,
    started: str | None,
    first_run: bool,
    threshold: int,
    mapping: dict[str, Any],
) -> Counter[str]:
    """The reads of one run's documented minimum (FORMULA), by the adapter's name for each
    request, as the org stands before the run; `since`: when the previous run started (None:
    a full read) less the lookback; `started`: when it started (the people it read at the
    version they still have are on the pages again, but need no look-up of their own, A and
    V); `threshold`: the adapter's `bulk_threshold`."""
    floor: Counter[str] = Counter()
    if first_run:
        floor["POST oauth2/token"] = 1
        keyed = sum(1 for task in sim.org.live("Task") if task.get(KEY))
        floor["GET query Task"] += max(1, math.ceil(keyed / PAGE))
    wanted = people(sim, since)
    changed = people(sim, started)
    bulk = [
        sobject
        for sobject in PEOPLE
        if since is None and threshold and len(wanted.get(sobject, [])) >= threshold
    ]
    floor += bulk_jobs(sim, bulk, wanted, AccountMapping.from_document(mapping).match_leads)
    resource = "query" if since is None else "queryAll"  # an incremental read: queryAll
    for sobject in PEOPLE:
        if sobject in bulk:  # the REST page that tells its size
            floor[f"GET query {sobject}"] += 1
            continue
        ids = wanted.get(sobject, [])
        rows = len(ids) + child_rows(sim, sobject, ids) + merged_away(sim, sobject, since)
        floor[f"GET {resource} {sobject}"] = max(1, math.ceil(rows / PAGE))
        if sobject == "Lead":
            floor["GET query Account"] = account_lookups(sim, changed.get(sobject, []), mapping)
    if "Contact" in changed:
        floor["GET query Lead"] += conversion_lookups(sim, changed["Contact"], mapping)
    if since is not None:
        rows = swept(sim, since)
        for sobject in SWEPT:
            floor[f"GET query {sobject}"] += max(1, math.ceil(rows[sobject] / PAGE))
    return floor


def key_queries(sim: Any, since: str) -> int:
    """The fewest Task queries that look up the keys of the follow-ups escalated since
    `since` (each looked up first): their quoted, URL-encoded characters in query URIs of at
    most `soql.MAX_QUERY_URI`, however they are cut."""
    with sim.org.lock:
        keys = [
            key.removesuffix(":escalation")
            for task in sim.org.live("Task")
            if (key := task.get(KEY))
            and key.endswith(":escalation")
            and task["CreatedDate"] >= since
        ]
    base = len(quote_plus(f"SELECT Id, {KEY} FROM Task WHERE {KEY} IN ()"))
    characters = sum(len(quote_plus(quote(key))) + 3 for key in keys)
    return math.ceil(characters / (MAX_QUERY_URI - base))


def written(sim: Any, since: str) -> dict[str, int]:
    """People per object the integration user wrote since `since` (a Bulk ingest job takes
    one object, so W(U) counts jobs per object)."""
    with sim.org.lock:
        return {
            sobject: sum(
                1
                for record in sim.org.live(sobject)
                if record["SystemModstamp"] >= since
                and record["LastModifiedById"] == sim.org.integration_user
            )
            for sobject in PEOPLE
        }


def job_floor(written: int, threshold: int) -> tuple[int, int]:
    """(ingest jobs, records left to collections) for `written` records of one kind and
    object from `threshold` on: jobs of 10,000, a remainder below `threshold` in collections
    where they are fewer than a job's 4 requests."""
    jobs, rest = divmod(written, BULK_SET)
    if rest and rest < threshold and math.ceil(rest / COLLECTION) < len(INGEST):
        return jobs, rest
    return jobs + (rest > 0), 0


def minimum_writes(counts: Counter, by_object: dict[str, int], threshold: int) -> Counter[str]:
    """The writes of one run's documented minimum (W): below `threshold`, collections of 200
    record updates (of any object) and of 200 task upserts; from it on ingest jobs of 10,000,
    of one object each (`by_object`: the updates per object), task jobs with their results."""
    floor: Counter[str] = Counter()
    updates, tasks = counts["records_written"], counts["tasks_created"]
    if not threshold or updates < threshold:
        floor["PATCH composite/sobjects"] += math.ceil(updates / COLLECTION)
    else:
        left = 0
        for sobject_updates in by_object.values():
            jobs, rest = job_floor(sobject_updates, threshold)
            left += rest
            for request in INGEST:
                floor[request] += jobs
        floor["PATCH composite/sobjects"] += math.ceil(left / COLLECTION)
    if not threshold or tasks < threshold:
        floor["PATCH composite/sobjects/Task"] += math.ceil(tasks / COLLECTION)
    else:
        jobs, rest = job_floor(tasks, threshold)
        floor["PATCH composite/sobjects/Task"] += math.ceil(rest / COLLECTION)
        for request in (*INGEST, UPSERTED):
            floor[request] += jobs
    return floor


def minimum(
    sim: Any,
    since: str | None,
    started: str | None,
    first_run: bool,
    threshold: int,
    core_only: bool,
) -> dict[str, int]:
    """`minimum_reads` in the org's process, under its lock."""
    mapping = mapping_for("salesforce", core_only)
    with sim.org.lock:
        return dict(minimum_reads(sim, since, started, first_run, threshold, mapping))


def watch_setters(adapter: SalesforceAdapter) -> Counter[str]:
    """Q: the setter queries the run's questions need, per decided batch as few as fit the
    URI (`in_chunks`), counted as the adapter is asked; the questions themselves are the
    core's (records whose plan hinges on who set a value, each asked once)."""
    needed: Counter[str] = Counter()
    ask = adapter.field_sources

    def field_sources(wanted: Any) -> Any:
        by_object: dict[str, list[str]] = {}
        for (sobject, record), _ in wanted:
            by_object.setdefault(sobject, []).append(record)
        for sobject, ids in by_object.items():
            template = SETTERS.format(sobject=sobject)
            needed[f"GET query {sobject} (last modifier)"] += sum(
                1 for _ in in_chunks(template, ids)
            )
        return ask(wanted)

    adapter.field_sources = field_sources  # type: ignore[method-assign]
    return needed


def run_size(records: int, latency: float, args: Any) -> list[Row]:
    options = ["--records", str(records), "--seed", str(args.seed), "--latency-ms",
               str(latency), "--daily-limit", str(10**9)]  # fmt: skip
    rows: list[Row] = []
    with Simulator("salesforce", options) as sim:
        settings = SalesforceSettings(**sim.call("info"))
        adapter = SalesforceAdapter.from_config(settings, mapping_for("salesforce", args.core_only))
        setters = watch_setters(adapter)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state.sqlite"
            store = StateStore(path)
            engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="salesforce")), store)
            since: str | None = None
            started_last: str | None = None
            for number, (name, days, share) in enumerate(scenarios(args.scenarios)):
                if share:
                    sim.call("engage", round(records * share))
                reads = Counter(
                    sim.call("salesforce_sync:minimum", since, started_last, number == 0,
                             settings.bulk_threshold, args.core_only)
                )  # fmt: skip
                rest_reads = Counter(
                    sim.call(
                        "salesforce_sync:minimum",
                        since,
                        started_last,
                        number == 0,
                        0,
                        args.core_only,
                    )
                )  # the same reads with Bulk API off: REST pages only
                setters.clear()
                before_usage = Counter(adapter.usage().requests)
                before = sim.call("stats", True)
                started = datetime.now(UTC)
                run_started = sf_stamp(started)
                summary, wall, cpu, rss = measure(
                    lambda days=days: engine.run(
                        RunOptions(now=datetime.now(UTC) + timedelta(days=days))
                    )
                )
                after = sim.call("stats", True)
                # The next run's window opens the lookback before this run's start: rows
                # stamped there may have committed after this run read past them.
                since = sf_stamp(started - timedelta(seconds=settings.lookback_seconds))
                started_last = run_started
                counts = summary.counts
                by_object = sim.call("salesforce_sync:written", run_started)
                lookups = sim.call("salesforce_sync:key_queries", run_started)
                reads["GET query Task"] += lookups
                rest_reads["GET query Task"] += lookups
                reads += setters
                rest_reads += setters
                if number == 0:  # the owned fields' fit
                    for sobject in PEOPLE:
                        reads[f"GET describe {sobject}"] = rest_reads[f"GET describe {sobject}"] = 1
                floor = +(reads + minimum_writes(counts, by_object, settings.bulk_threshold))
                rest_floor = sum((rest_reads + minimum_writes(counts, by_object, 0)).values())
                used = Counter(adapter.usage().requests)
                used.subtract(before_usage)
                measured: Counter[str] = Counter()
                for what, n in (+used).items():
                    measured[what.removesuffix(" (more)")] += n
                row = Row(
                    "Salesforce", records, latency, name, sum(measured.values()),
                    sum(floor.values()), wall, None, rss, cpu, after["cpu"] - before["cpu"],
                    adapter.usage().throttled, counts["records_written"], counts["tasks_created"],
                    store_bytes(path), records, measured, floor,
                )  # fmt: skip
                rows.append(row)
                served = sum(after["by_endpoint"].values())
                print(
                    f"{name} ({records:,} people, {latency:g} ms): {summary.status}, read"
                    f" {counts['read']:,}, re-decided {counts['redecided']:,}; {row.requests:,}"
                    f" requests ({served:,} served by the org), minimum {row.minimum:,}"
                    f" ({row.ratio:.2f}), REST-only minimum {rest_floor:,}"
                    f" ({row.requests / rest_floor:.2f}); {wall:.1f} s; fields written"
                    f" {counts['fields_written']:,} on {row.written:,} records, tasks"
                    f" {row.tasks:,}; connector peak RSS {rss:.0f} MB, CPU {cpu:.1f} s; org"
                    f" CPU {row.sim_cpu:.1f} s, peak RSS {after['peak_mb']:.0f} MB; in flight"
                    f" at most {adapter.traffic.peak_in_flight}",
                    flush=True,
                )
                print(breakdown(measured, floor), flush=True)
            store.close()
    return rows


def main() -> None:
    tune_malloc()  # the connector runs here: as `crm-qualify` does first
    args = bench_arguments(__doc__.splitlines()[0], "records")
    print(FORMULA)
    rows: list[Row] = []
    for records in args.records:
        for latency in args.latency_ms:
            rows += run_size(records, latency, args)
    report(rows, [naive_line("Salesforce", n, None) for n in args.records], args.table)


if __name__ == "__main__":
    main()
