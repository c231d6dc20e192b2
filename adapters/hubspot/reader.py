"""Which contacts changed, in an order that can be resumed, without ever looping.

A first run (no cursor) walks the portal: by search over id spans (200 a page) when that
costs no more requests than the list endpoint (100 a page, `after` cursor, links inline; see
`search_walk_cheaper`), else by the list. Later runs search on `lastmodifieddate` in [since -
lookback, until). Both searches page by id (`hs_object_id` GTE / LT, sorted), never by offset:
HubSpot caps a search at 10,000 results, and the engine's own writes move records while we
page (a record moved past `until` is the next run's). Ids are unique, so no page overlaps the
one before, and reading always progresses and never loops. A span is read from both ends at
once (two chains of pages the core runs side by side, `Traffic.interleave`): HubSpot allows
no split of a list walk (its `after` is opaque), but an id span splits where the chains meet.
Each batch carries a cursor the engine saves once the batch is written: the span still to
read (and, for a search, the window it belongs to).

Pages carry the records themselves: list pages and searches ask for the mapped properties
(and list pages for the deal and task links, `associations=`), and each step hands those rows
on (`Hits.rows`) so the adapter reads none of these contacts again. They are every mapped
property (the engagement sources' fallbacks too), so the core can tell our own write from
someone else's change made between our read and our write, which our write's stamp covers:
each hit goes to the core's check with the digest of the properties we do not write
(`records.digest`, as `Contact.source_digest` holds it) and the owned values it carries,
translated as `Contact.owned` holds them (a rep who set the lifecycle stage or one of our
properties meanwhile): the core compares those with what our acknowledged writes left. A
hit whose owned values cannot be translated is read (the record's own error then names the
property).

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
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from typing import Any
from urllib.parse import urlencode

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.records import (
    SEARCH_BODY_LIMIT,
    associated,
    digest,
    next_after,
)
from crm_qualify.adapters.hubspot.values import objects, parse_time, properties_of, record_id
from crm_qualify.connector.contract import TranslationError
from crm_qualify.connector.owned_values import OwnedFields

log = logging.getLogger(__name__)

SEARCH_PAGE = 200
LIST_PAGE = 100
LIST_QUERY_LIMIT = 4000
"""Characters of `properties=` a list page's URL may carry; past that (a very long mapping) a
walk lists ids only and the adapter batch reads them, as a too-long URL answers HTTP 414."""
UNTOUCHED_MS = 60_000
"""A task changed within a minute of its creation is taken as untouched since (HubSpot
recomputes a new task's own properties a few seconds after creating it)."""


def search_walk_cheaper(link_types: int, read_batch: int) -> bool:
    """Whether walking by search costs no more requests than the list: per `read_batch`
    contacts, read_batch / 200 search pages plus one v4 association read per linked type
    (search rows carry no links), against read_batch / 100 list pages with links inline."""
    return read_batch / SEARCH_PAGE + link_types <= read_batch / LIST_PAGE


Stamped = tuple[str, int, str | None, dict[str, Any] | None]
"""A search hit for the core's check: id, lastmodifieddate ms, and when the row carries the
properties, their digest (`records.digest`) and the owned values (`OwnedFields.read`)."""
Known = Callable[[list[Stamped]], set[str]]
"""Given search hits (`Stamped`), the ids whose version the core already holds."""


class Hits(list[str]):
    """Contact ids, and what the pages that found them already carried: `rows` by id (the
    mapped properties: no batch read needed) and `inline` by id (the association types whose
    links the row carries, asked with `associations=` on list pages). Ids without a row are
    read by the adapter. `search_done`: the step after the search's last page, before the
    sweeps search: the contacts found so far need not wait for the sweeps' contacts."""

    def __init__(
        self,
        ids: list[str] | None = None,
        rows: dict[str, dict[str, Any]] | None = None,
        inline: dict[str, tuple[str, ...]] | None = None,
        *,
        search_done: bool = False,
    ) -> None:
        super().__init__(ids or [])
        self.rows = rows or {}
        self.inline = inline or {}
        self.search_done = search_done


@dataclass
class _Page:
    """One search page: (id, lastmodifieddate ms) of its usable rows in order, those rows by
    id when they carry every mapped property, how many rows it served, HubSpot's total."""

    hits: list[tuple[str, int | None]]
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
    """Where reading stands: `since` (epoch ms) for search, or a walk in progress (by list:
    `walk_after`; by search: `span`), and `activity`: the stamp up to which tasks were swept
    (`since` when absent). `span`: the ids [low, high) a search cut short still has to read
    (high None: no bound), `until`: the end of that search's window, kept so a resumed run
    finishes the same window."""

    since: int | None = None
    walk_after: str | None = None
    walk_started: int | None = None
    activity: int | None = None
    span: tuple[int, int | None] | None = None
    until: int | None = None

    def dump(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None})

    @classmethod
    def load(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            names = ("since", "walk_after", "walk_started", "activity", "span", "until")
            values = {k: data[k] for k in names if k in data}
            if "span" in values:
                low, high = values["span"]
                values["span"] = (int(low), None if high is None else int(high))
            return cls(**values)
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
        search_walk: bool = False,
        digested: tuple[str, ...] = (),
        owned: OwnedFields | None = None,
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
        self.search_walk = search_walk
        """Whether a walk goes by search (when its rows fit a search body), not the list."""
        self.digested = digested
        """The properties a hit's digest covers (`ContactMapping.digested`, all among
        `properties`); none: hits go without one."""
        self.owned = owned
        """The owned fields, to translate the values a hit carries (None: hits go without
        them)."""
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
        if cursor.until is not None:
            until_ms = cursor.until  # a search cut short finishes its own window
        self._known = known
        since = cursor.since
        sweep_from = cursor.activity if cursor.activity is not None else since
        read: set[str] = set()
        low = max(0, since - self.lookback_ms)
        for ids, left in self._search(low, until_ms, cursor.span):
            if ids:  # the search's closing step is the run's closing step, below
                read.update(ids)
                searching = Cursor(since=since, activity=sweep_from, span=left, until=until_ms)
                kept = Cursor(since=self._kept(until_ms), activity=sweep_from)
                yield ids, searching if left else kept
        swept = self._kept(until_ms)
        sweeping = Cursor(since=swept, activity=sweep_from)
        if self.task_key or self.sweep_types or self.touched is not None:
            yield Hits(search_done=True), sweeping
        low = max(0, sweep_from - self.lookback_ms)
        for ids in self._sweeps(low, until_ms, read):
            if ids is None:
                swept = sweep_from  # incomplete: the next run sweeps this window again
            else:
                yield Hits(ids), sweeping
        yield Hits(), Cursor(since=self._kept(until_ms), activity=swept)

    def _kept(self, until_ms: int) -> int:
        """`until_ms` as a position to keep: no later than the portal's own clock
        (`CrmClock`), which ours may run ahead of."""
        until = datetime.fromtimestamp(until_ms / 1000, UTC)
        return epoch_ms(self.client.crm_clock.bound(until))

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

    def _unknown(self, page: _Page) -> set[str]:
        """Ids of the page's hits whose version the core does not hold yet (a row whose
        stamp or owned values cannot be read is always read). Each goes with the digest of
        its properties and its owned values when the page carries them: a hit stamped as
        our write but changed by someone else too has another digest than the version read,
        or other owned values than our write left."""
        ids = {oid for oid, _ in page.hits}
        stamped: list[Stamped] = []
        for oid, ms in page.hits:
            if ms is None:
                continue
            row = page.rows.get(oid)
            try:
                stamped.append((oid, ms, self._digest(row), self._owned(row)))
            except TranslationError:
                continue
        return ids - self._known(stamped) if self._known and stamped else ids

    def _digest(self, row: dict[str, Any] | None) -> str | None:
        return digest(row, self.digested) if row is not None and self.digested else None

    def _owned(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        return self.owned.read(properties_of(row)) if row is not None and self.owned else None

    @staticmethod
    def _hits(ids: list[str], rows: dict[str, dict[str, Any]]) -> Hits:
        return Hits(ids, {oid: rows[oid] for oid in ids if oid in rows})

    # first run -------------------------------------------------------------------------------
    def _walk(self, cursor: Cursor | None, until_ms: int) -> Iterator[tuple[Hits, Cursor]]:
        """Search pages over the whole id span with the mapped properties (`search_walk`),
        else list pages with them and the deal and task links inline."""
        started = cursor.walk_started if cursor and cursor.walk_started else until_ms
        after = cursor.walk_after if cursor else None
        if self.search_walk and not after and self.rows_fit_search():
            span = cursor.span if cursor and cursor.span else (0, None)
            for page, left in self._spanned([], span):
                ids = [oid for oid, _ in page.hits]
                if ids or left is None:
                    walking = Cursor(span=left, walk_started=started)
                    done = Cursor(since=self._kept(started))
                    yield Hits(ids, page.rows), walking if left else done
            return
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
                yield hits, Cursor(since=self._kept(started))
                return
            yield hits, Cursor(walk_after=after, walk_started=started)

    # incremental runs ------------------------------------------------------------------------
    def _search(
        self, low: int, until_ms: int, span: tuple[int, int | None] | None
    ) -> Iterator[tuple[Hits, tuple[int, int | None] | None]]:
        """The contacts changed in [low, until) that the core does not hold, by id span
        (`_spanned`): a record our own writes (or anyone's) move past `until` meanwhile is
        the next run's, so nothing is missed, and ids are unique, so no page overlaps the
        one before (as stamps shared by a whole update group or an import did)."""
        for page, left in self._spanned(_window(low, until_ms), span or (0, None)):
            unknown = self._unknown(page)
            yield self._hits([oid for oid, _ in page.hits if oid in unknown], page.rows), left

    # reading an id span from both ends --------------------------------------------------------
    def _spanned(
        self, where: list[dict[str, Any]], start: tuple[int, int | None]
    ) -> Iterator[tuple[_Page, tuple[int, int | None] | None]]:
        """Every contact matching `where` with an id in [low, high) (`start`; high None: no
        bound), one search page at a time, each with the span still to read after it (None
        once there is none). Pages are keyed by id (`hs_object_id` GTE / LT), never by
        offset: HubSpot's 10,000-result cap and our own writes moving records cannot shift
        them. The first page says how many match (`total`); when more than a page is left,
        a second chain reads down from the top while the first reads up, both handed to the
        core to run at once (`Traffic.interleave`), until they meet. Rows served twice where
        they meet are dropped here."""
        search = partial(self._id_page, where)
        low, high = start
        span = _Span(low, math.inf if high is None else high)
        given = _Given(low, span.high)
        first = search(low, span.high, True)
        with span.lock:
            span.record(True, low, span.high, first, 0)
        answers: Iterator[tuple[bool, int, float, _Page]] = iter([(True, low, span.high, first)])
        if not span.finished():
            chains = [span.chain(True, search)]
            if span.worth_descending():
                chains.append(span.chain(False, search))
            answers = chain(answers, self.client.traffic.interleave(*chains))
        for ascending, low_q, high_q, page in answers:
            kept = given.keep(ascending, low_q, high_q, page)
            if kept.hits:
                yield kept, given.left()
        yield _Page([], {}, 0, 0), None  # every match is handed on

    def _id_page(
        self, where: list[dict[str, Any]], low: int, high: float, ascending: bool
    ) -> _Page:
        """One search page of the ids in [low, high) matching `where`, sorted by id."""
        bounds = [{"propertyName": "hs_object_id", "operator": "GTE", "value": str(low)}]
        if high != math.inf:
            bounds.append({"propertyName": "hs_object_id", "operator": "LT", "value": str(high)})
        body, full = self._body([*where, *bounds], ascending)
        _, page = self.client.call(
            "POST objects/search",
            self.client.search_api.do_search,
            self.object_type,
            body,
            search=True,
        )
        hits: list[tuple[str, int | None]] = []
        rows: dict[str, dict[str, Any]] = {}
        results = objects(page.get("results"))
        for row in results:
            row_id = record_id(row)
            props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
            if row_id is None or not row_id.isdigit() or row_id in rows:
                continue  # HubSpot ids are numeric; keyset paging by id needs them
            hits.append((row_id, _ms(props.get("lastmodifieddate"))))
            rows[row_id] = row
        total = page.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            total = None
        return _Page(hits, rows if full else {}, len(results), total)

    def _body(self, filters: list[dict[str, Any]], ascending: bool) -> tuple[dict[str, Any], bool]:
        """The search body, and whether it asks for every mapped property: they are asked
        when they fit HubSpot's 3,000 characters (else only the stamp, and the adapter reads
        the hits)."""
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [
                {
                    "propertyName": "hs_object_id",
                    "direction": "ASCENDING" if ascending else "DESCENDING",
                }
            ],
            "properties": self._asked(),
            "limit": SEARCH_PAGE,
        }
        if self.full_rows and _size(body) <= SEARCH_BODY_LIMIT:
            return body, True
        body["properties"] = ["lastmodifieddate"]
        return body, False

    def _asked(self) -> list[str]:
        return list(dict.fromkeys(["lastmodifieddate", *self.properties]))

    def rows_fit_search(self) -> bool:
        """Whether a search page can carry every mapped property (the widest body we send:
        a window and an id span, 13-digit values)."""
        stamp = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "9" * 13}
        widest = [stamp, stamp, stamp, stamp]
        return self.full_rows and self._body(widest, False)[1]

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


def _window(low: int, until_ms: int) -> list[dict[str, Any]]:
    """The filters for the changes in [low, until)."""
    return [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)},
        {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(until_ms)},
    ]


class _Span:
    """The ids [low, high) still to search, shared by the chains reading it from both ends
    (each step on a core worker): the ascending chain moves `low` up, the descending one
    `high` down, each only past ids a page served in full. `left`: how many matches the
    answers leave (HubSpot's `total` less the rows served since the query left): at 0 both
    stop, and the descending chain asks only while more than the ascending chain's next
    page is left."""

    def __init__(self, low: int, high: float) -> None:
        self.low, self.high = low, high
        self.left: int | None = None
        self.served = [0, 0]  # rows served by the ascending and the descending chain
        self.flying = [False, False]
        self.lock = threading.Condition()

    def finished(self) -> bool:
        """Whether the chains have met, or the answers prove no match is left."""
        return self.low >= self.high or self.left == 0

    def worth_descending(self) -> bool:
        """More than the ascending chain's next page is left (that page is as good as sent)."""
        return self.left is None or self.left > SEARCH_PAGE

    def record(self, ascending: bool, low: int, high: float, page: _Page, before: int) -> None:
        """A page for [low, high) came back; `before`: rows the other chain had served when
        it was asked. Unless the chains have met (then all is read), the rows served since
        lie in [low, high) and apart from this page's, so what is left is exact: the total
        less both (a record created meanwhile is the next incremental run's)."""
        ids = [int(oid) for oid, _ in page.hits]
        me, other = (0, 1) if ascending else (1, 0)
        self.served[me] += page.served
        self.flying[me] = False
        self.lock.notify_all()
        if ascending:
            self.low = max(self.low, high if page.complete() or not ids else max(ids) + 1)  # type: ignore[assignment]
        else:
            self.high = min(self.high, low if page.complete() or not ids else min(ids))
        if page.total is not None:
            left = page.total - page.served - (self.served[other] - before)
            self.left = max(0, left if self.left is None else min(self.left, left))

    def chain(
        self, ascending: bool, search: Callable[[int, float, bool], _Page]
    ) -> Iterator[tuple[bool, int, float, _Page]]:
        """One end's pages, each asked for what is still open when it leaves. The ascending
        chain reads to the end; while the other's page in flight may hold all that is left,
        it waits for that answer instead of asking for the same rows."""
        me, other = (0, 1) if ascending else (1, 0)
        while True:
            with self.lock:
                while ascending and self.flying[other] and not self.worth_descending():
                    self.lock.wait()
                if self.finished() or not (ascending or self.worth_descending()):
                    return
                low, high, before = self.low, self.high, self.served[other]
                self.flying[me] = True
            page = search(low, high, ascending)
            with self.lock:
                self.record(ascending, low, high, page, before)
            yield ascending, low, high, page


class _Given:
    """What the pages handed on cover, in the order the consumer takes them: every match
    below `low` (from the ascending chain) and from `high` up (the descending one). A row
    served by one chain that the other has already handed on is dropped."""

    def __init__(self, low: int, high: float) -> None:
        self.low, self.high = low, high

    def keep(self, ascending: bool, low: int, high: float, page: _Page) -> _Page:
        ids = [int(oid) for oid, _ in page.hits]
        if ascending:
            kept = [(oid, ts) for oid, ts in page.hits if int(oid) < self.high]
            self.low = max(self.low, high if page.complete() or not ids else max(ids) + 1)  # type: ignore[assignment]
        else:
            kept = [(oid, ts) for oid, ts in page.hits if int(oid) >= self.low]
            self.high = min(self.high, low if page.complete() or not ids else min(ids))
        rows = {oid: page.rows[oid] for oid, _ in kept if oid in page.rows}
        return _Page(kept, rows, page.served, page.total)

    def left(self) -> tuple[int, int | None] | None:
        """The span still to read, None when none is."""
        if self.low >= self.high:
            return None
        return (int(self.low), None if self.high == math.inf else int(self.high))


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
