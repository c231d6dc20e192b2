"""Which contacts changed, in an order that can be resumed, without ever looping.

A first run (no cursor) walks the portal with the list endpoint (100 per page, `after`
cursor). Later runs search on `lastmodifieddate`. HubSpot caps a search at 10,000 results and
the engine's own writes move records while we page, so offsets cannot be trusted: each page
is a new query starting at the last timestamp seen (a moving time window), and an instant
shared by more contacts than a page holds (imports stamp thousands at once) is read on its
own, sorted and continued by id, so reading always progresses and never loops. Each batch
carries a cursor the engine saves once the batch is written.

Pages carry the records themselves: list pages and searches ask for the mapped properties
(and list pages for the deal and task links, `associations=`), and each step hands those rows
on (`Hits.rows`) so the adapter reads none of these contacts again.

Keyset pages overlap where the page ends inside a group of contacts sharing one stamp (our
own batch update stamps 100 contacts at once): the next query starts at that stamp and would
serve the group's first part again, so a page costs up to twice what it should. The next
query therefore leaves out the ids already given at that stamp: `(stamp > low) OR (stamp = low
AND hs_object_id NOT_IN given)`, as many ids as the search body's 3,000 characters and the
filter's 100 values allow (any left over come back and are dropped here, as before).

Completing a task does not touch its contact's `lastmodifieddate`, so after the changed
contacts an incremental run sweeps the tasks that carry our key property and changed in the
same window (`hs_lastmodifieddate`), and reads the contacts they are associated with that it
has not read yet, once each (as Salesforce's reader does with its activity objects). A task
we created and nobody touched since is left out: creating it is not news, but a salesperson
completing, reopening, postponing or reassigning it is. The same holds for every object a
contact's facts come from: a deal closing, a call logged, a meeting booked, a company's
industry edited leave the contact's own stamp alone, so the run then sweeps each of those
types (`sweep_types`: `hs_lastmodifieddate` in the window, any change) and reads their
contacts (v4 association reads, 1,000 records a request), and finally the contacts the
`touched` hook names (marketing event participations, which no search finds). The sweep's
position (`activity`) is saved only once every sweep is done, so a run interrupted during one
sweeps again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.records import (
    FILTER_VALUES,
    SEARCH_BODY_LIMIT,
    associated,
    next_after,
)
from crm_qualify.adapters.hubspot.typed import objects, parse_time, record_id
from crm_qualify.connector.contract import TranslationError

log = logging.getLogger(__name__)

SEARCH_PAGE = 200
LIST_PAGE = 100
LIST_QUERY_LIMIT = 4000
"""Characters of `properties=` a list page's URL may carry; past that (a very long mapping) a
walk lists ids only and the adapter batch reads them, as a too-long URL answers HTTP 414."""
UNTOUCHED_MS = 60_000
"""A task changed within a minute of its creation is taken as untouched since (HubSpot
recomputes a new task's own properties a few seconds after creating it)."""

Known = Callable[[list[tuple[str, int]]], set[str]]
"""Given search hits (id, lastmodifieddate ms), the ids whose version the core already holds."""


class Hits(list[str]):
    """Contact ids, and what the pages that found them already carried: `rows` by id (the
    mapped properties: no batch read needed) and `inline` by id (the association types whose
    links the row carries, asked with `associations=` on list pages). Ids without a row are
    read by the adapter."""

    def __init__(
        self,
        ids: list[str] | None = None,
        rows: dict[str, dict[str, Any]] | None = None,
        inline: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(ids or [])
        self.rows = rows or {}
        self.inline = inline or {}


@dataclass
class _Page:
    """One search page: (id, lastmodifieddate ms) of its usable rows in order, those rows by
    id when they carry every mapped property, how many rows it served, HubSpot's total."""

    hits: list[tuple[str, int]]
    rows: dict[str, dict[str, Any]]
    served: int
    total: int | None

    def full(self) -> bool:
        return self.served >= SEARCH_PAGE

    def complete(self) -> bool:
        """Whether no further page can hold a match: a short page, or the total says so
        (which spares the empty page that would otherwise end a search)."""
        if self.total is not None and self.total <= self.served:
            return True
        return not self.full() or not self.hits


@dataclass(frozen=True)
class Cursor:
    """Where reading stands: `since` (epoch ms) for search, or a walk in progress, and
    `activity`: the stamp up to which tasks were swept (`since` when absent)."""

    since: int | None = None
    walk_after: str | None = None
    walk_started: int | None = None
    activity: int | None = None

    def dump(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None})

    @classmethod
    def load(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            names = ("since", "walk_after", "walk_started", "activity")
            return cls(**{k: data[k] for k in names if k in data})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"unreadable HubSpot cursor {text[:80]!r}") from exc


def epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of a `lastmodifieddate`; None when it cannot be read."""
    try:
        moment = parse_time(value, "lastmodifieddate")
    except TranslationError:
        return None
    return epoch_ms(moment) if moment else None


class ChangeReader:
    """Yields (contact ids as `Hits`, cursor after them), at most 200 ids at a time.

    `properties`: the contact properties to ask list pages and searches for (their rows then
    come along in `Hits.rows`); `associations`: the types list pages ask for inline."""

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        lookback_ms: int,
        task_key: str | None = None,
        properties: list[str] | None = None,
        associations: tuple[str, ...] = (),
        sweep_types: tuple[str, ...] = (),
        touched: Callable[[int, int], Iterable[str]] | None = None,
    ) -> None:
        self.client = client
        self.object_type = object_type
        self.lookback_ms = lookback_ms
        self.task_key = task_key
        """The task property holding our keys; None: no task sweep."""
        self.properties = list(dict.fromkeys(["lastmodifieddate", *(properties or [])]))
        self.full_rows = properties is not None
        """Whether pages carry every property the adapter needs."""
        query = urlencode([("properties", name) for name in self.properties])
        self.list_rows = self.full_rows and len(query) <= LIST_QUERY_LIMIT
        """Whether list pages ask for them (else a walk lists ids and stamps only)."""
        self.associations = associations
        self.sweep_types = sweep_types
        """Object types whose changes bring their contacts in (deals, activities, companies)."""
        self.touched = touched
        """Contacts changed in [low, until) by what no search can find (participations)."""
        self._known: Known | None = None

    def changed(
        self, cursor: Cursor | None, until: datetime, known: Known | None = None
    ) -> Iterator[tuple[Hits, Cursor]]:
        """`known`: hits the core already holds are left out of the ids (the cursor still
        moves past them); a walk (no cursor) gives every id."""
        until_ms = epoch_ms(until)
        if cursor is None or cursor.since is None:
            yield from self._walk(cursor, until_ms)
            return
        self._known = known
        sweep_from = cursor.activity if cursor.activity is not None else cursor.since
        read: set[str] = set()
        for ids, after in self._search(max(0, cursor.since - self.lookback_ms), until_ms):
            if ids:  # the search's closing step is the run's closing step, below
                read.update(ids)
                yield ids, replace(after, activity=sweep_from)
        swept = until_ms
        sweeping = Cursor(since=until_ms, activity=sweep_from)
        low = max(0, sweep_from - self.lookback_ms)
        for ids in self._sweeps(low, until_ms, read):
            if ids is None:
                swept = sweep_from  # incomplete: the next run sweeps this window again
            else:
                yield Hits(ids), sweeping
        yield Hits(), Cursor(since=until_ms, activity=swept)

    def _sweeps(self, low: int, until_ms: int, read: set[str]) -> Iterator[list[str] | None]:
        """Our tasks people worked on, then every other object type the contacts' facts
        come from (deals, activities, companies: any change), then the contacts the
        `touched` hook names (marketing event participations)."""
        if self.task_key:
            yield from self._task_sweep(low, until_ms, read)
        for object_type in self.sweep_types:
            yield from self._sweep(object_type, low, until_ms, read)
        if self.touched is not None:
            fresh = [i for i in dict.fromkeys(self.touched(low, until_ms)) if i not in read]
            read.update(fresh)
            for start in range(0, len(fresh), LIST_PAGE):
                yield fresh[start : start + LIST_PAGE]

    def _unknown(self, rows: list[tuple[str, int]]) -> set[str]:
        """Ids of `rows` whose version the core does not hold yet."""
        ids = {oid for oid, _ in rows}
        return ids - self._known(rows) if self._known and rows else ids

    @staticmethod
    def _hits(ids: list[str], rows: dict[str, dict[str, Any]]) -> Hits:
        return Hits(ids, {oid: rows[oid] for oid in ids if oid in rows})

    # first run -------------------------------------------------------------------------------
    def _walk(self, cursor: Cursor | None, until_ms: int) -> Iterator[tuple[Hits, Cursor]]:
        """List pages with the mapped properties and the deal and task links inline."""
        started = cursor.walk_started if cursor and cursor.walk_started else until_ms
        after = cursor.walk_after if cursor else None
        while True:
            kwargs: dict[str, Any] = {
                "limit": LIST_PAGE,
                "archived": False,
                "properties": self.properties if self.list_rows else ["lastmodifieddate"],
            }
            if self.associations and self.list_rows:
                kwargs["associations"] = list(self.associations)
            if after:
                kwargs["after"] = after
            _, page = self.client.call(
                "GET objects/list", self.client.basic.get_page, self.object_type, **kwargs
            )
            rows: dict[str, dict[str, Any]] = {}
            ids: list[str] = []
            for row in objects(page.get("results")):
                row_id = record_id(row)
                if row_id and row_id not in rows:
                    rows[row_id] = row
                    ids.append(row_id)
            inline = {i: self.associations for i in ids} if self.associations else {}
            hits = Hits(ids, rows, inline) if self.list_rows else Hits(ids)
            after = next_after(page)
            if not after:
                # The walk is complete: anything changed since it began is read incrementally.
                yield hits, Cursor(since=started)
                return
            yield hits, Cursor(walk_after=after, walk_started=started)

    # incremental runs ------------------------------------------------------------------------
    def _search(self, low: int, until_ms: int) -> Iterator[tuple[Hits, Cursor]]:
        """Keyset paging: every page is a fresh query from the last timestamp seen, so our own
        writes (which move records past `until`) cannot shift an offset and hide records, and
        the 10,000-result cap is never reached. The ids already given at that timestamp are
        left out of the query (as many as fit) and dropped if they come back anyway. An
        instant that fills a whole page is read on its own, by id."""
        given: set[str] = set()  # ids already given at timestamp `low`
        while True:
            page = self._page(partial(_window, low, until_ms), "lastmodifieddate", low, given)
            rows = page.hits
            if page.full() and rows and rows[0][1] == rows[-1][1]:
                # A whole page at one instant (`low`, or the next stamp when the ids left out
                # were all of `low`): read that instant on its own.
                moment = rows[-1][1]
                yield from self._instant(moment, given if moment == low else set())
                given = set()
                low = moment + 1
                continue
            unknown = self._unknown(rows)
            fresh = [oid for oid, ts in rows if not (ts == low and oid in given) and oid in unknown]
            if fresh:
                yield self._hits(fresh, page.rows), Cursor(since=rows[-1][1])
            if page.complete():
                yield Hits(), Cursor(since=until_ms)
                return
            last = rows[-1][1]
            at_last = {oid for oid, ts in rows if ts == last}
            given = at_last if last != low else given | at_last
            low = last

    def _instant(self, moment: int, given: set[str]) -> Iterator[tuple[Hits, Cursor]]:
        """Every contact modified at exactly `moment` (imports stamp thousands at once),
        sorted and continued by id so it always progresses."""
        last_id = 0
        while True:
            page = self._page(partial(_at, moment, last_id), "hs_object_id", moment, set())
            rows = page.hits
            unknown = self._unknown(rows)
            fresh = [oid for oid, _ in rows if oid not in given and oid in unknown]
            if fresh:
                yield self._hits(fresh, page.rows), Cursor(since=moment)
            if page.complete():
                return
            last_id = int(rows[-1][0])

    def _page(
        self,
        groups: Callable[[list[str]], list[dict[str, Any]]],
        sort: str,
        floor: int,
        given: set[str],
    ) -> _Page:
        """The first page of one search: `groups(excluded)` builds the filter groups for the
        ids left out of it, chosen from `given` to fit the body. Results come sorted, so an
        unreadable stamp is taken as the one before it (`floor` for the first): reading
        never moves backwards."""
        body, full = self._body(groups, sort, given)
        _, page = self.client.call(
            "POST objects/search",
            self.client.search_api.do_search,
            self.object_type,
            body,
            search=True,
        )
        hits: list[tuple[str, int]] = []
        rows: dict[str, dict[str, Any]] = {}
        results = objects(page.get("results"))
        for row in results:
            row_id = record_id(row)
            props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
            stamp = _ms(props.get("lastmodifieddate"))
            if row_id is None or not row_id.isdigit() or row_id in rows:
                continue  # HubSpot ids are numeric; keyset paging by id needs them
            if stamp is None:
                stamp = hits[-1][1] if hits else floor
            hits.append((row_id, stamp))
            rows[row_id] = row
        total = page.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            total = None
        return _Page(hits, rows if full else {}, len(results), total)

    def _body(
        self,
        groups: Callable[[list[str]], list[dict[str, Any]]],
        sort: str,
        given: set[str],
    ) -> tuple[dict[str, Any], bool]:
        """The search body, and whether it asks for every mapped property: they are asked
        when they fit HubSpot's 3,000 characters (else only the stamp, and the adapter reads
        the hits); then as many `given` ids to leave out as still fit."""
        body: dict[str, Any] = {
            "filterGroups": groups([]),
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self.properties,
            "limit": SEARCH_PAGE,
        }
        full = self.full_rows
        if _size(body) > SEARCH_BODY_LIMIT:
            body["properties"], full = ["lastmodifieddate"], False
        if not given:
            return body, full
        excluded = sorted(given, key=int)[:FILTER_VALUES]
        body["filterGroups"] = groups(excluded)
        over = _size(body) - SEARCH_BODY_LIMIT
        while over > 0 and len(excluded) > 1:
            over -= len(excluded.pop()) + 4  # the id, its quotes, ", "
            body["filterGroups"] = groups(excluded)
        if _size(body) > SEARCH_BODY_LIMIT:
            body["filterGroups"] = groups([])
        return body, full

    # objects people changed ------------------------------------------------------------------
    def _task_sweep(self, low: int, until_ms: int, read: set[str]) -> Iterator[list[str] | None]:
        """Contacts of our tasks that someone else changed in [low, until)."""
        assert self.task_key is not None
        has_key = {"propertyName": self.task_key, "operator": "HAS_PROPERTY"}
        properties = ["hs_createdate", "hs_lastmodifieddate", "hs_task_status"]
        return self._sweep("tasks", low, until_ms, read, [has_key], properties, _worked_on)

    def _sweep(
        self,
        object_type: str,
        low: int,
        until_ms: int,
        read: set[str],
        filters: list[dict[str, Any]] | None = None,
        properties: list[str] | None = None,
        keep: Callable[[dict[str, Any]], bool] = lambda _row: True,
    ) -> Iterator[list[str] | None]:
        """Contacts (not in `read`, which grows) of the `object_type` records changed in
        [low, until) that `keep` keeps, at most 100 ids at a time; None once for records whose
        contacts could not be read (the sweep is then not complete). Keyset paging by id:
        never near HubSpot's 10,000-result window, and records created meanwhile cannot
        shift a page."""
        after = "0"
        failed = False
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            *(filters or []),
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "GTE",
                                "value": str(low),
                            },
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "LT",
                                "value": str(until_ms),
                            },
                            {"propertyName": "hs_object_id", "operator": "GT", "value": after},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": properties or ["hs_lastmodifieddate"],
                "limit": SEARCH_PAGE,
            }
            _, page = self.client.call(
                f"POST {object_type}/search",
                self.client.search_api.do_search,
                object_type,
                body,
                search=True,
            )
            rows = objects(page.get("results"))
            ids = [i for i in (record_id(row) for row in rows) if i and i.isdigit()]
            worked = [i for row in rows if (i := record_id(row)) and keep(row)]
            links = associated(self.client, object_type, worked, self.object_type)
            if links.failed:
                failed = True
                log.warning(
                    "the contacts of %d changed %s could not be read (%s): the next run"
                    " sweeps them again",
                    len(links.failed),
                    object_type,
                    next(iter(links.failed.values())),
                )
            people = [
                person
                for record in worked
                for person in links.linked.get(record, [])
                if person not in read
            ]
            fresh = list(dict.fromkeys(people))
            read.update(fresh)
            for start in range(0, len(fresh), LIST_PAGE):
                yield fresh[start : start + LIST_PAGE]
            if len(rows) < SEARCH_PAGE or not ids:
                break
            after = str(max(int(i) for i in ids))
        if failed:
            yield None


def _window(low: int, until_ms: int, excluded: list[str]) -> list[dict[str, Any]]:
    """Filter groups for the changes in [low, until) but the `excluded` ids stamped `low`."""
    until = {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(until_ms)}
    if not excluded:
        since = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)}
        return [{"filters": [since, until]}]
    after = {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(low)}
    at = {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(low)}
    others = {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": excluded}
    return [{"filters": [after, until]}, {"filters": [at, others]}]


def _at(moment: int, last_id: int, _: list[str]) -> list[dict[str, Any]]:
    """The filter group for the contacts stamped `moment` with an id above `last_id`."""
    at = {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(moment)}
    above = {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}
    return [{"filters": [at, above]}]


def _size(body: dict[str, Any]) -> int:
    """The body's length as the client sends it (`json.dumps` with default separators)."""
    return len(json.dumps(body))


def _worked_on(row: dict[str, Any]) -> bool:
    """Whether someone other than its creator changed a task: completed, or changed more
    than a minute after its creation (an unreadable stamp counts as changed)."""
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    if props.get("hs_task_status") == "COMPLETED":
        return True
    created, changed = _ms(props.get("hs_createdate")), _ms(props.get("hs_lastmodifieddate"))
    return created is None or changed is None or changed - created > UNTOUCHED_MS
