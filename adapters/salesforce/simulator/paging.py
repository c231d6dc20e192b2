"""SOQL queries served as Salesforce serves them: a snapshot of the rows when the query runs,
pages of 2,000 rows (or the `batchSize` of `Sforce-Query-Options`, 200..2,000), query
locators for `nextRecordsUrl`, child locators for cut child sets (see `results.py`), and
`COUNT()`, whose answer is a bare `totalSize` with no rows. Single-record reads by id or by
external id render records the same way."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import soql
from .errors import ApiError
from .results import Renderer, child_cap, long_text_fields, page_end, shaped
from .schema import OBJECTS

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

MAX_PAGE = 2000
MIN_PAGE = 200


def locator() -> str:
    return "01g5g" + uuid.uuid4().hex[:13].upper()


class Queries:
    """Query results and their locators: the rows (a snapshot), the child locators its last
    page opened, the batch size, and whether rows carry child sets."""

    def __init__(self, sim: SalesforceSimulator) -> None:
        self.sim = sim
        self._locators: dict[str, tuple[list[dict[str, Any]], list[str], int, bool]] = {}
        self._lock = threading.Lock()

    def render(self, sobject: str, record: dict[str, Any], fields: list[str] | None) -> dict:
        url = f"/services/data/v{self.sim.version}/sobjects/{sobject}/{record['Id']}"
        names = fields or list(OBJECTS[sobject])
        return {"attributes": {"type": sobject, "url": url}, **{n: record.get(n) for n in names}}

    def query(self, text: str, options: str | None, deleted: bool = False) -> dict[str, Any]:
        """`query`, or `queryAll` (`deleted`: soft-deleted records and archived Tasks and
        Events are rows too, in subqueries as well)."""
        sim = self.sim
        try:
            parsed = soql.parse(text, OBJECTS.get, float(sim.version))
        except soql.SoqlError as exc:
            raise ApiError(400, exc.code, str(exc)) from None

        def pool(sobject: str) -> Iterable[dict[str, Any]]:
            return sim.org.queryable(sobject, deleted)

        rows = soql.run(parsed, list(pool(parsed.sobject)))
        if parsed.count is not None:
            return _counted(parsed.count, rows)
        size = sim.page_size
        if options and (found := re.search(r"batchSize=(\d+)", options)):
            size = min(MAX_PAGE, max(MIN_PAGE, int(found.group(1))))
        if long_text_fields(parsed) >= 2:
            size = min(size, MIN_PAGE)
        renderer = Renderer(parsed, pool, sim._find, sim.version)
        prepared = [renderer.row(parsed, r) for r in rows]
        return self._page(prepared, 0, size, nested=bool(parsed.subqueries()))

    def more(self, token: str) -> dict[str, Any]:
        key, _, offset = token.rpartition("-")
        with self._lock:
            found = self._locators.get(key)
        if not found or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, _, size, nested = found
        return self._page(rows, int(offset), size, key, nested)

    def _page(
        self, rows: list[dict], offset: int, size: int, key: str | None = None, nested: bool = False
    ) -> dict:
        """The page of `rows` from `offset`; paging a locator on invalidates the child
        locators its previous page opened."""
        version = self.sim.version
        end = page_end(rows, offset, size, nested)
        opened: list[str] = []

        def locate(children: list[dict], start: int) -> str:
            child = locator()
            with self._lock:
                self._locators[child] = (children, [], size, True)
            opened.append(child)
            return f"/services/data/v{version}/query/{child}-{start}"

        cap = child_cap(size)
        page = [shaped(r, cap, locate) for r in rows[offset:end]] if nested else rows[offset:end]
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
        if not body["done"]:
            key = key or locator()
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{key}-{end}"
        if key is not None:
            with self._lock:
                for stale in self._locators.get(key, ((), []))[1]:
                    self._locators.pop(stale, None)
                self._locators[key] = (rows, opened, size, nested)
        body["records"] = page
        return body

    def by_external_id(self, sobject: str, field: str, value: str) -> tuple[int, Any]:
        """`GET sobjects/<type>/<field>/<value>`: the record; 300 with their URLs when several
        hold the value (a field that is not unique), 404 when none does."""
        sim = self.sim
        sim._external_field(sobject, field)
        folded = value.casefold()
        hits = [
            r
            for r in sim.org.live(sobject)
            if isinstance(r.get(field), str) and r[field].casefold() == folded
        ]
        if not hits:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(hits) > 1:
            base = f"/services/data/v{sim.version}/sobjects/{sobject}"
            return 300, [f"{base}/{r['Id']}" for r in hits]
        return 200, self.render(sobject, hits[0], None)


def _counted(field: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`COUNT()` ("" here): `totalSize` is the count and there are no rows. `COUNT(field)`:
    one AggregateResult row, `expr0` the rows whose field is not null."""
    if not field:
        return {"totalSize": len(rows), "done": True, "records": []}
    counted = sum(1 for r in rows if r.get(field) is not None)
    row = {"attributes": {"type": "AggregateResult"}, "expr0": counted}
    return {"totalSize": 1, "done": True, "records": [row]}
