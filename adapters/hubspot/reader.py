"""Which contacts changed, in an order that can be resumed, without ever looping.

A first run (no cursor) walks the portal with the list endpoint (100 per page, `after`
cursor). Later runs search on `lastmodifieddate`. HubSpot caps a search at 10,000 results and
the engine's own writes move records while we page, so offsets cannot be trusted: each page
is a new query starting at the last timestamp seen (a moving time window), and an instant
shared by more contacts than a page holds (imports stamp thousands at once) is read on its
own, sorted and continued by id, so reading always progresses and never loops. Each batch
carries a cursor the engine saves once the batch is written.

Completing a task does not touch its contact's `lastmodifieddate`, so after the changed
contacts an incremental run sweeps the tasks that carry our key property and changed in the
same window (`hs_lastmodifieddate`), and reads the contacts they are associated with that it
has not read yet, once each (as Salesforce's reader does with its activity objects). A task
we created and nobody touched since is left out: creating it is not news, but a salesperson
completing, reopening, postponing or reassigning it is. The sweep's position (`activity`) is
saved only once the sweep is done, so a run interrupted during it sweeps again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.records import associated, next_after
from crm_qualify.adapters.hubspot.typed import objects, parse_time, record_id
from crm_qualify.connector.contract import TranslationError

log = logging.getLogger(__name__)

SEARCH_PAGE = 200
LIST_PAGE = 100
UNTOUCHED_MS = 60_000
"""A task changed within a minute of its creation is taken as untouched since (HubSpot
recomputes a new task's own properties a few seconds after creating it)."""

Known = Callable[[list[tuple[str, int]]], set[str]]
"""Given search hits (id, lastmodifieddate ms), the ids whose version the core already holds."""


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
    """Yields (contact ids, cursor after them), at most 100 ids at a time."""

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        lookback_ms: int,
        task_key: str | None = None,
    ) -> None:
        self.client = client
        self.object_type = object_type
        self.lookback_ms = lookback_ms
        self.task_key = task_key
        """The task property holding our keys; None: no task sweep."""
        self._known: Known | None = None

    def changed(
        self, cursor: Cursor | None, until: datetime, known: Known | None = None
    ) -> Iterator[tuple[list[str], Cursor]]:
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
        if self.task_key:
            sweeping = Cursor(since=until_ms, activity=sweep_from)
            for ids in self._task_sweep(max(0, sweep_from - self.lookback_ms), until_ms, read):
                if ids is None:
                    swept = sweep_from  # incomplete: the next run sweeps this window again
                else:
                    yield ids, sweeping
        yield [], Cursor(since=until_ms, activity=swept)

    def _unknown(self, rows: list[tuple[str, int]]) -> set[str]:
        """Ids of `rows` whose version the core does not hold yet."""
        ids = {oid for oid, _ in rows}
        return ids - self._known(rows) if self._known and rows else ids

    # first run -------------------------------------------------------------------------------
    def _walk(self, cursor: Cursor | None, until_ms: int) -> Iterator[tuple[list[str], Cursor]]:
        started = cursor.walk_started if cursor and cursor.walk_started else until_ms
        after = cursor.walk_after if cursor else None
        while True:
            kwargs = {"limit": LIST_PAGE, "archived": False, "properties": ["lastmodifieddate"]}
            if after:
                kwargs["after"] = after
            _, page = self.client.call(
                "GET objects/list", self.client.basic.get_page, self.object_type, **kwargs
            )
            ids = [i for i in (record_id(row) for row in objects(page.get("results"))) if i]
            after = next_after(page)
            if not after:
                # The walk is complete: anything changed since it began is read incrementally.
                yield ids, Cursor(since=started)
                return
            yield ids, Cursor(walk_after=after, walk_started=started)

    # incremental runs ------------------------------------------------------------------------
    def _search(self, low: int, until_ms: int) -> Iterator[tuple[list[str], Cursor]]:
        """Keyset paging: every page is a fresh query from the last timestamp seen, so our own
        writes (which move records past `until`) cannot shift an offset and hide records, and
        the 10,000-result cap is never reached. An instant that fills a whole page is read on
        its own, by id."""
        given: set[str] = set()  # ids already given at timestamp `low`
        while True:
            rows = self._page(
                [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)},
                    {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(until_ms)},
                ],
                "lastmodifieddate",
                low,
            )
            if len(rows) == SEARCH_PAGE and rows[-1][1] == low:
                yield from self._instant(low, given)
                given = set()
                low += 1
                continue
            unknown = self._unknown(rows)
            fresh = [oid for oid, ts in rows if not (ts == low and oid in given) and oid in unknown]
            if fresh:
                yield fresh, Cursor(since=rows[-1][1])
            if len(rows) < SEARCH_PAGE:
                yield [], Cursor(since=until_ms)
                return
            last = rows[-1][1]
            at_last = {oid for oid, ts in rows if ts == last}
            given = at_last if last != low else given | at_last
            low = last

    def _instant(self, moment: int, given: set[str]) -> Iterator[tuple[list[str], Cursor]]:
        """Every contact modified at exactly `moment` (imports stamp thousands at once),
        sorted and continued by id so it always progresses."""
        last_id = 0
        while True:
            rows = self._page(
                [
                    {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(moment)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
                ],
                "hs_object_id",
                moment,
            )
            unknown = self._unknown(rows)
            fresh = [oid for oid, _ in rows if oid not in given and oid in unknown]
            if fresh:
                yield fresh, Cursor(since=moment)
            if len(rows) < SEARCH_PAGE:
                return
            last_id = int(rows[-1][0])

    def _page(self, filters: list[dict[str, str]], sort: str, floor: int) -> list[tuple[str, int]]:
        """(id, lastmodifieddate ms) of the first page of one search. Results come sorted, so
        an unreadable stamp is taken as the one before it (`floor` for the first): reading
        never moves backwards."""
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": ["lastmodifieddate"],
            "limit": SEARCH_PAGE,
        }
        _, page = self.client.call(
            "POST objects/search",
            self.client.search_api.do_search,
            self.object_type,
            body,
            search=True,
        )
        rows: list[tuple[str, int]] = []
        for row in objects(page.get("results")):
            row_id = record_id(row)
            props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
            stamp = _ms(props.get("lastmodifieddate"))
            if row_id is None or not row_id.isdigit():
                continue  # HubSpot ids are numeric; keyset paging by id needs them
            if stamp is None:
                stamp = rows[-1][1] if rows else floor
            rows.append((row_id, stamp))
        return rows

    # tasks people worked on ----------------------------------------------------------------
    def _task_sweep(self, low: int, until_ms: int, read: set[str]) -> Iterator[list[str] | None]:
        """Contacts (not in `read`, which grows) of our tasks changed in [low, until) by
        someone else, at most 100 ids at a time; None once for tasks whose contacts could not
        be read (the sweep is then not complete). Keyset paging by id: never near HubSpot's
        10,000-result window, and tasks created meanwhile cannot shift a page."""
        assert self.task_key is not None
        after = "0"
        failed = False
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": self.task_key, "operator": "HAS_PROPERTY"},
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
                "properties": ["hs_createdate", "hs_lastmodifieddate", "hs_task_status"],
                "limit": SEARCH_PAGE,
            }
            _, page = self.client.call(
                "POST tasks/search", self.client.search_api.do_search, "tasks", body, search=True
            )
            rows = objects(page.get("results"))
            ids = [i for i in (record_id(row) for row in rows) if i and i.isdigit()]
            worked = [i for row in rows if (i := record_id(row)) and _worked_on(row)]
            links = associated(self.client, "tasks", worked, self.object_type)
            if links.failed:
                failed = True
                log.warning(
                    "the contacts of %d changed tasks could not be read (%s): the next run"
                    " sweeps these tasks again",
                    len(links.failed),
                    next(iter(links.failed.values())),
                )
            people = [
                person
                for task in worked
                for person in links.linked.get(task, [])
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


def _worked_on(row: dict[str, Any]) -> bool:
    """Whether someone other than its creator changed a task: completed, or changed more
    than a minute after its creation (an unreadable stamp counts as changed)."""
    props = row.get("properties") if isinstance(row.get("properties"), dict) else {}
    if props.get("hs_task_status") == "COMPLETED":
        return True
    created, changed = _ms(props.get("hs_createdate")), _ms(props.get("hs_lastmodifieddate"))
    return created is None or changed is None or changed - created > UNTOUCHED_MS
