"""Query results as Salesforce shapes them: rows with their child-to-parent paths nested
(`"Opportunity": {"attributes": ..., "IsWon": true}`, or null), the results of parent-to-child
subqueries as query results of their own, and pages that count child rows.

From Salesforce's documentation: child rows count toward a page's batch size (QueryOptions:
"Child objects count toward the number of records for the batch size"), so a query with
subqueries returns fewer parents per page than the 2,000 rows a page holds; a child set with
no rows is null; a child set too large for the page says `done: false` with its own
`nextRecordsUrl` (Query More Results on it pages through the rest of that set), and paging
the parent query on invalidates the child locators of the page before ("A queryMore() call on
a parent object invalidates all child cursors in the previous result set").

Not documented, so modelled on what clients observe: a child set carries at most
`min(batch size, 500) - 1` rows in its parent's page (499 with the default 2,000, 199 with a
batch of 200), and a page holds parents while their rows and inline child rows stay within the
batch size, at least one parent per page. The simulator never returns a parent twice: its
parent paging is independent of its child sets (real orgs have been seen to repeat a parent
whose children were cut, carrying the next rows; a reader must de-duplicate parents by Id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from .schema import OBJECTS
from .soql import Path, Query, run

CHILD_BATCH = 500
"""A child set's rows in its parent's page are fewer than min(batch size, this)."""

Find = Callable[[Any], tuple[str, dict[str, Any]] | None]
Pool = Callable[[str], Iterable[dict[str, Any]]]


class ChildSet:
    """A subquery's rows for one parent, prepared; shaped when a page serves them."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows


def attributes(sobject: str, record: dict[str, Any], version: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record['Id']}"}


class Renderer:
    """Renders the rows of one query: paths looked up with `find`, subqueries grouped once
    per statement from `pool` (live records, or every record for queryAll)."""

    def __init__(self, query: Query, pool: Pool, find: Find, version: str) -> None:
        self.pool, self.find, self.version = pool, find, version
        self.groups: dict[int, dict[str, list[dict[str, Any]]]] = {}
        self._group(query)

    def _group(self, query: Query) -> None:
        for sub in query.subqueries():
            matching = run(replace(sub, limit=None), list(self.pool(sub.sobject)))
            grouped: dict[str, list[dict[str, Any]]] = {}
            for child in matching:
                parent = child.get(sub.link)
                if isinstance(parent, str):
                    grouped.setdefault(parent[:15], []).append(child)
            self.groups[id(sub)] = grouped
            self._group(sub)

    def row(self, query: Query, record: dict[str, Any]) -> dict[str, Any]:
        """One record as the query selects it (prepared: child sets still `ChildSet`)."""
        row: dict[str, Any] = {"attributes": attributes(query.sobject, record, self.version)}
        parents: dict[tuple[str, ...], dict[str, Any] | None] = {(): record}
        for item in query.items:
            if isinstance(item, Query):
                row[item.relationship] = self._children(item, record)
            elif not item.hops:
                row[item.field] = record.get(item.field)
            else:
                self._path(row, item, record, parents)
        return row

    def _children(self, sub: Query, record: dict[str, Any]) -> ChildSet | None:
        own = record.get("Id")
        rows = self.groups[id(sub)].get(own[:15], []) if isinstance(own, str) else []
        rows = rows[: sub.limit] if sub.limit is not None else rows
        return ChildSet([self.row(sub, child) for child in rows]) if rows else None

    def _path(
        self,
        row: dict[str, Any],
        item: Path,
        record: dict[str, Any],
        parents: dict[tuple[str, ...], dict[str, Any] | None],
    ) -> None:
        node: dict[str, Any] = row
        source: dict[str, Any] | None = record
        prefix: tuple[str, ...] = ()
        for relationship, link, target in item.hops:
            prefix += (relationship,)
            if prefix not in parents:
                found = self.find(source.get(link)) if source is not None else None
                live = found and found[0] == target and not found[1].get("IsDeleted")
                parent = found[1] if live else None
                parents[prefix] = parent
                if relationship not in node:
                    node[relationship] = (
                        None
                        if parent is None
                        else {"attributes": attributes(target, parent, self.version)}
                    )
            source = parents[prefix]
            if source is None:
                return
            node = node[relationship]
        node[item.field] = source.get(item.field)


def cost(row: dict[str, Any], cap: int) -> int:
    """What a prepared row counts toward a page: itself and the child rows it carries."""
    total = 1
    for value in row.values():
        if isinstance(value, ChildSet):
            total += sum(cost(child, cap) for child in value.rows[:cap])
    return total


def shaped(row: dict[str, Any], cap: int, locate: Callable[[list[dict], int], str]) -> dict:
    """A prepared row as a page serves it: each child set a query result, the ones with more
    than `cap` rows cut, with a locator (`locate(rows, offset)`) for the rest."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if not isinstance(value, ChildSet):
            out[key] = value
            continue
        rows = value.rows
        result: dict[str, Any] = {"totalSize": len(rows), "done": len(rows) <= cap}
        if len(rows) > cap:
            result["nextRecordsUrl"] = locate(rows, cap)
        result["records"] = [shaped(child, cap, locate) for child in rows[:cap]]
        out[key] = result
    return out


def page_end(rows: list[dict[str, Any]], offset: int, size: int, nested: bool) -> int:
    """Where the page starting at `offset` ends: `size` rows, child rows included, and at
    least one parent."""
    if not nested:
        return min(len(rows), offset + size)
    cap = child_cap(size)
    end, used = offset, 0
    while end < len(rows):
        weight = cost(rows[end], cap)
        if end > offset and used + weight > size:
            break
        used += weight
        end += 1
    return end


def child_cap(size: int) -> int:
    return max(1, min(size, CHILD_BATCH) - 1)


def long_text_fields(query: Query) -> int:
    """Custom long text area fields the statement selects, subqueries and paths included:
    with two or more, a page holds at most 200 rows (Salesforce: "If the SOQL statement
    selects two or more custom fields of type long text, the batch size can't be greater
    than 200 records")."""
    count = 0
    for item in query.items:
        if isinstance(item, Query):
            count += long_text_fields(item)
            continue
        sobject = item.hops[-1][2] if item.hops else query.sobject
        spec = OBJECTS.get(sobject, {}).get(item.field, {})
        long_text = spec.get("type") == "textarea" and spec.get("length", 0) > 255
        count += bool(long_text and spec.get("custom"))
    return count
