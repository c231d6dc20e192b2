"""Which contacts changed, in an order that can be resumed, without ever looping.

A first run (no cursor) walks the portal with the list endpoint (100 per page, `after`
cursor). Later runs search on `lastmodifieddate`. HubSpot caps a search at 10,000 results and
the engine's own writes move records while we page, so offsets cannot be trusted: each page
is a new query starting at the last timestamp seen (a moving time window), and an instant
shared by more contacts than a page holds (imports stamp thousands at once) is read on its
own, sorted and continued by id, so reading always progresses and never loops. Each batch
carries a cursor the engine saves once the batch is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.records import next_after
from crm_qualify.adapters.hubspot.typed import objects, parse_time, record_id
from crm_qualify.connector.contract import TranslationError

SEARCH_PAGE = 200
LIST_PAGE = 100


@dataclass(frozen=True)
class Cursor:
    """Where reading stands: `since` (epoch ms) for search, or a walk in progress."""

    since: int | None = None
    walk_after: str | None = None
    walk_started: int | None = None

    def dump(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None})

    @classmethod
    def load(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in ("since", "walk_after", "walk_started") if k in data})
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

    def __init__(self, client: HubSpotClient, object_type: str, lookback_ms: int) -> None:
        self.client = client
        self.object_type = object_type
        self.lookback_ms = lookback_ms

    def changed(self, cursor: Cursor | None, until: datetime) -> Iterator[tuple[list[str], Cursor]]:
        until_ms = epoch_ms(until)
        if cursor is None or cursor.since is None:
            yield from self._walk(cursor, until_ms)
            return
        yield from self._search(max(0, cursor.since - self.lookback_ms), until_ms)

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
            fresh = [oid for oid, ts in rows if not (ts == low and oid in given)]
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
            fresh = [oid for oid, _ in rows if oid not in given]
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
