"""CRM search execution: filter evaluation, sorting, paging and index lag.

HubSpot's search reads a separate index that trails writes. `SearchIndex` models that: with
`search_index_lag` > 0 a written object keeps its previous state (or stays invisible when new)
until the lag has passed. Sorting uses lazily built per-property sorted lists that are patched
on writes, so the common incremental query (`lastmodifieddate >= X`, sorted by it) is a bisect
plus a slice instead of a scan of every contact.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .query import RANGE_OPS, Query
from .values import key_function

if TYPE_CHECKING:
    from .store import Store

Props = dict[str, str]
QUERY_PROPS = {
    "contacts": ("firstname", "lastname", "email", "company"),
    "companies": ("name", "domain"),
    "deals": ("dealname",),
    "tasks": ("hs_task_subject",),
    "calls": ("hs_call_title", "hs_call_body"),
    "meetings": ("hs_meeting_title", "hs_meeting_body"),
    "emails": ("hs_email_subject", "hs_email_text"),
    "notes": ("hs_note_body",),
    "communications": ("hs_communication_body",),
}
MATCHES_KEPT = 16
"""Filter sets whose accepted positions are kept at once (a run pages a few windows)."""
REBUILD_FRACTION = 20  # re-sort from scratch when more than 1/20 of the entries changed


def _key(entry: tuple[int, Any, str]) -> tuple[int, Any]:
    return entry[0], entry[1]


class _Sorted:
    """(rank, value, id) triples for one property, kept sorted; missing values sort last."""

    def __init__(self, kind: str, prop: str, entries: list[tuple[str, Props]]) -> None:
        self.prop, self.key = prop, key_function(kind)
        key = self.key
        self.key_of = {oid: key(props.get(prop)) for oid, props in entries}
        self.items = sorted((rank, value, oid) for oid, (rank, value) in self.key_of.items())

    def move(self, oid: str, props: Props | None) -> None:
        old = self.key_of.pop(oid, None)
        if old is not None:
            del self.items[bisect.bisect_left(self.items, (*old, oid))]
        if props is not None:
            key = self.key_of[oid] = self.key(props.get(self.prop))
            bisect.insort(self.items, (*key, oid))

    def bounds(self, op: str, low: tuple[int, Any], high: tuple[int, Any]) -> tuple[int, int]:
        """Index range of entries that can satisfy a range filter on this property."""
        items = self.items
        end = bisect.bisect_left(items, (1,), key=_key)  # entries without a value start here
        if op == "GT":
            lo = bisect.bisect_right(items, low, 0, end, key=_key)
        elif op in ("EQ", "GTE", "BETWEEN"):
            lo = bisect.bisect_left(items, low, 0, end, key=_key)
        else:
            lo = 0
        if op in ("EQ", "LTE", "BETWEEN"):
            hi = bisect.bisect_right(items, high, lo, end, key=_key)
        elif op == "LT":
            hi = bisect.bisect_left(items, high, lo, end, key=_key)
        else:
            hi = end
        return lo, max(lo, hi)


class SearchIndex:
    """The search view of the store (lagging by `lag` seconds) plus its sorted indexes."""

    def __init__(self, store: Store, lag: float) -> None:
        self._store = store
        self.lag_ms = int(lag * 1000)
        self._stale: dict[str, dict[str, list[Any]]] = {t: {} for t in store.objects}
        self._pending: deque[tuple[int, str, str]] = deque()
        self._dirty: dict[str, set[str]] = {t: set() for t in store.objects}
        self._sorted: dict[tuple[str, str], _Sorted] = {}
        self._matches: dict[tuple[Any, ...], list[int]] = {}
        """Per (type, sort property, filters off it): the positions in the sort index of the
        entries those filters accept, for as long as nothing search sees has changed."""

    def before_change(self, object_type: str, oid: str) -> None:
        if self.lag_ms > 0 and oid not in self._stale[object_type]:
            record = self._store.objects[object_type].get(oid)
            live = None if record is None or record["archived"] else dict(record["properties"])
            self._stale[object_type][oid] = [live, 0]

    def after_change(self, object_type: str, oid: str, now: int) -> None:
        if self.lag_ms <= 0:
            self._dirty[object_type].add(oid)
            return
        due = now + self.lag_ms
        self._stale[object_type][oid][1] = due
        self._pending.append((due, object_type, oid))

    def view(self, object_type: str, oid: str) -> Props | None:
        entry = self._stale[object_type].get(oid)
        if entry is not None:
            return entry[0]
        record = self._store.objects[object_type][oid]
        return None if record["archived"] else record["properties"]

    def settle(self) -> None:
        """Publish every write still lagging, as if the lag had passed: a test moves past the
        lag without sleeping (call under the store lock)."""
        if self._pending:
            self.refresh(max(due for due, _, _ in self._pending))

    def refresh(self, now: int) -> None:
        """Publish writes whose lag has passed and patch (or rebuild) the sorted indexes."""
        while self._pending and self._pending[0][0] <= now:
            _, object_type, oid = self._pending.popleft()
            entry = self._stale[object_type].get(oid)
            if entry is not None and entry[1] <= now:
                del self._stale[object_type][oid]
                self._dirty[object_type].add(oid)
        if any(self._dirty.values()):
            self._matches.clear()
        for (object_type, prop), index in list(self._sorted.items()):
            dirty = self._dirty[object_type]
            if len(dirty) * REBUILD_FRACTION > len(index.key_of):
                del self._sorted[(object_type, prop)]
            else:
                for oid in dirty:
                    index.move(oid, self.view(object_type, oid))
        for dirty in self._dirty.values():
            dirty.clear()

    def _sorted_for(self, object_type: str, prop: str) -> _Sorted:
        index = self._sorted.get((object_type, prop))
        if index is None:
            kind = self._store.definitions[object_type].get(prop, {}).get("type", "string")
            objects, stale = self._store.objects[object_type], self._stale[object_type]
            entries = [
                (oid, r["properties"])
                for oid, r in objects.items()
                if oid not in stale and not r["archived"]
            ]
            entries += [(oid, entry[0]) for oid, entry in stale.items() if entry[0] is not None]
            index = self._sorted[(object_type, prop)] = _Sorted(kind, prop, entries)
            self._matches.clear()
        return index

    def search(
        self, object_type: str, query: Query, now: int
    ) -> tuple[int, list[tuple[str, Props]]]:
        """Total number of matches and the requested page of (id, properties) pairs."""
        self.refresh(now)
        index = self._sorted_for(object_type, query.sort_prop)
        lo, hi, exact = _narrow(index, query)
        stop = query.offset + query.limit
        if exact:
            span = range(hi - 1, lo - 1, -1) if query.descending else range(lo, hi)
            oids = [index.items[i][2] for i in span[query.offset : stop]]
            return hi - lo, [(oid, self.view(object_type, oid) or {}) for oid in oids]
        candidates = self._candidates(object_type, query, hi - lo)
        positions = None if candidates is not None else self._positions(object_type, query)
        if positions is not None:
            first, last = bisect.bisect_left(positions, lo), bisect.bisect_left(positions, hi)
            chosen = positions[first:last]
            if query.descending:
                chosen.reverse()
            oids = [index.items[i][2] for i in chosen[query.offset : stop]]
            return last - first, [(oid, self.view(object_type, oid) or {}) for oid in oids]
        matcher = _matcher(query, QUERY_PROPS[object_type])
        if candidates is not None:
            key_of = index.key_of
            matched = sorted(
                (oid for oid in candidates if matcher(self.view(object_type, oid) or {})),
                key=lambda oid: (*key_of[oid], oid),
                reverse=query.descending,
            )
            return len(matched), [
                (oid, self.view(object_type, oid) or {}) for oid in matched[query.offset : stop]
            ]
        total, page = 0, []
        span = range(hi - 1, lo - 1, -1) if query.descending else range(lo, hi)
        items = index.items
        for i in span:
            oid = items[i][2]
            props = self.view(object_type, oid)
            if props is not None and matcher(props):
                if query.offset <= total < stop:
                    page.append((oid, props))
                total += 1
        return total, page

    def _positions(self, object_type: str, query: Query) -> list[int] | None:
        """For one group of range filters: the sort index positions its filters off the sort
        property accept (those on it bound the slice), kept until a change is published.
        Paging a wide window (a lookback full of the run's own writes) then costs a bisect a
        page, not a scan of the window's span, which made 100,000-contact runs CPU-bound on
        the simulator. None for other queries (text, several groups, other operators)."""
        if query.text or len(query.groups) != 1:
            return None
        rest = [f for f in query.groups[0] if not (f.prop == query.sort_prop and f.op in RANGE_OPS)]
        if any(f.op not in RANGE_OPS for f in rest):
            return None
        key = (object_type, query.sort_prop, *((f.prop, f.op, f.low, f.high) for f in rest))
        positions = self._matches.get(key)
        if positions is None:
            tests = [(f.prop, f.test) for f in rest]
            items, view = self._sorted_for(object_type, query.sort_prop).items, self.view
            if len(self._matches) >= MATCHES_KEPT:
                self._matches.clear()
            positions = self._matches[key] = [
                i
                for i, (_, _, oid) in enumerate(items)
                if (props := view(object_type, oid)) is not None
                and all(test(props.get(prop)) for prop, test in tests)
            ]
        return positions

    def _candidates(self, object_type: str, query: Query, budget: int) -> set[str] | None:
        """Ids that can match, taken from the narrowest range filter (on a date or number
        property) of every filter group; None when that would not beat scanning `budget`."""
        if not query.groups:
            return None
        found: set[str] = set()
        for group in query.groups:
            best: tuple[_Sorted, int, int] | None = None
            for f in group:
                if f.op in RANGE_OPS and f.kind in ("datetime", "date", "number"):
                    index = self._sorted_for(object_type, f.prop)
                    lo, hi = index.bounds(f.op, f.low, f.high)
                    if best is None or hi - lo < best[2] - best[1]:
                        best = (index, lo, hi)
            if best is None or (best[2] - best[1]) * 2 > budget:
                return None  # (too many, as the set below would say, without building it)
            found.update(entry[2] for entry in best[0].items[best[1] : best[2]])
            if len(found) * 2 > budget:
                return None
        return found


def _narrow(index: _Sorted, query: Query) -> tuple[int, int, bool]:
    """Slice of the sorted index that can match; `exact` when every entry in it matches."""
    size = len(index.items)
    if not query.groups:
        return 0, size, not query.text
    exact = len(query.groups) == 1 and not query.text
    spans = []
    for group in query.groups:
        lo, hi, ranged = 0, size, False
        for f in group:
            if f.prop == index.prop and f.op in RANGE_OPS:
                f_lo, f_hi = index.bounds(f.op, f.low, f.high)
                lo, hi, ranged = max(lo, f_lo), min(hi, f_hi), True
            else:
                exact = False
        if not ranged:
            return 0, size, False
        spans.append((lo, max(lo, hi)))
    return min(lo for lo, _ in spans), max(hi for _, hi in spans), exact


def _matcher(query: Query, text_props: tuple[str, ...]) -> Callable[[Props], bool]:
    groups = [[(f.prop, f.test) for f in g] for g in query.groups]
    text = query.text.lower()

    def match(props: Props) -> bool:
        if text and not any(text in props.get(p, "").lower() for p in text_props):
            return False
        return not groups or any(all(test(props.get(p)) for p, test in g) for g in groups)

    return match
