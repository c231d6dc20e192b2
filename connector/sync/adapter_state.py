"""Indexes an adapter derives from its CRM, kept in the state store between processes.

Some CRM data cannot be asked per record: HubSpot lists form submissions per form, newest
first, and marketing event participations per event. An adapter then keeps an index of what
it has read (by contact, with a mark of the newest row held) and tops it up with what is new.
Held in memory, the index dies with the process and every one-shot `sync` reads the whole
history again; held in a file of the adapter's own, it would escape the store's transactions
and backups. The core owns state, so it lends each adapter rows in the state file:

- Per instance and adapter, in named *spaces*. A row is (key, item) -> a JSON value, with an
  optional integer `stamp` that can be asked for by window (`stamped`). The key groups the
  rows looked up together (one contact's submissions), the item names one of them (one
  submission), so writing the same row twice is harmless.
- Writes are gathered (`Changes`) and land in one transaction (`apply`). An adapter applies
  them once what they describe has been read, so a crash leaves the index as it stood
  before, never a mark of the newest row held beyond the rows stored.
- Reads go by key, a chunk of keys per query (`rows`): memory holds what a batch needs, not
  the index.
- A dry run gets a read-only handle: what it applies stays in memory for that run (its own
  reads see it), so the next real run reads what it would have read without the dry run.
- Retention and `compact` leave these rows alone. A full read is the adapter's cue to
  `clear` its spaces and rebuild them. Nothing secret belongs here: it is a plain table.

The engine hands a handle to an adapter that has `use_state` (`connector/contract.py`) at
the start of every run (`hand_state`). Outside the engine (doctor, reports) an adapter works
on a `scratch` handle, a private in-memory store that lives as long as the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm_qualify.connector.sync.state import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS adapter_state (
    instance TEXT NOT NULL, adapter TEXT NOT NULL, space TEXT NOT NULL, key TEXT NOT NULL,
    item TEXT NOT NULL, value TEXT NOT NULL, stamp INTEGER,
    PRIMARY KEY (instance, adapter, space, key, item)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS adapter_state_by_stamp
    ON adapter_state (instance, adapter, space, stamp) WHERE stamp IS NOT NULL;
"""

KEYS_PER_QUERY = 500
"""Keys asked in one `IN (...)` (well under SQLite's variable limit)."""


@dataclass(frozen=True)
class Row:
    key: str
    item: str
    value: Any
    """Anything JSON can hold."""
    stamp: int | None = None
    """Optional: what `stamped` selects by (an epoch ms, a version...)."""


@dataclass
class Changes:
    """Writes that land together, in the order given (`AdapterState.apply`)."""

    steps: list[tuple[str, str, Any]] = field(default_factory=list)

    def put(self, space: str, rows: Iterable[Row]) -> None:
        """Insert rows, or replace the ones with the same key and item."""
        self.steps += [("put", space, row) for row in rows]

    def drop_item(self, space: str, item: str) -> None:
        """Every row of this item, under any key (an event's participations). It reads the
        whole space: for rare changes, such as one event that moved."""
        self.steps.append(("drop_item", space, item))

    def clear(self, space: str) -> None:
        """The whole space (before a rebuild)."""
        self.steps.append(("clear", space, None))

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class _Overlay:
    """A read-only handle's own writes: rows put, items dropped and spaces cleared since it
    was made, laid over the stored rows by every read."""

    cleared: set[str] = field(default_factory=set)
    dropped: dict[str, set[str]] = field(default_factory=dict)
    rows: dict[str, dict[str, dict[str, Row]]] = field(default_factory=dict)
    """space -> key -> item -> row."""

    def apply(self, changes: Changes) -> None:
        for kind, space, arg in changes.steps:
            keys = self.rows.setdefault(space, {})
            if kind == "put":
                keys.setdefault(arg.key, {})[arg.item] = arg
            elif kind == "drop_item":
                self.dropped.setdefault(space, set()).add(arg)
                for items in keys.values():
                    items.pop(arg, None)
            else:
                self.cleared.add(space)
                self.dropped.pop(space, None)
                keys.clear()

    def hides(self, space: str, row: Row) -> bool:
        """Whether a stored row is dropped, cleared or replaced here."""
        return (
            space in self.cleared
            or row.item in self.dropped.get(space, ())
            or row.item in self.rows.get(space, {}).get(row.key, {})
        )

    def own(self, space: str) -> Iterator[Row]:
        for items in self.rows.get(space, {}).values():
            yield from items.values()


class AdapterState:
    """One adapter's rows of one instance in a state store."""

    def __init__(
        self, store: StateStore, instance: str, adapter: str, *, read_only: bool = False
    ) -> None:
        self.store = store
        self.instance = instance
        self.adapter = adapter
        self.read_only = read_only
        """A dry run's handle: `apply` writes to `_overlay`, never to the store."""
        self._overlay = _Overlay()
        _create_table(store)

    @classmethod
    def scratch(cls, adapter: str) -> AdapterState:
        """A private in-memory store, for an adapter used outside the engine."""
        return cls(StateStore(":memory:"), "", adapter)

    def __repr__(self) -> str:
        mode = ", read-only" if self.read_only else ""
        return f"AdapterState({self.adapter!r}, instance={self.instance!r}{mode})"

    # reads -----------------------------------------------------------------------------------
    def rows(self, space: str, keys: Iterable[str]) -> dict[str, list[Row]]:
        """The rows of these keys, by key (keys without rows are left out)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, list[Row]] = {}
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[start : start + KEYS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            for row in self._select(space, f"key IN ({marks})", chunk):
                found.setdefault(row.key, []).append(row)
        if self.read_only:
            keys_held = self._overlay.rows.get(space, {})
            for key in wanted:
                for row in keys_held.get(key, {}).values():
                    found.setdefault(key, []).append(row)
        return found

    def all_rows(self, space: str) -> list[Row]:
        """Every row of a space: for small ones (one mark per form)."""
        return self._merged(space, self._select(space, "1", []), lambda _: True)

    def stamped(self, space: str, low: int, high: int) -> list[Row]:
        """The rows stamped in [low, high)."""
        stored = self._select(space, "stamp >= ? AND stamp < ?", [low, high])
        return self._merged(
            space, stored, lambda row: row.stamp is not None and low <= row.stamp < high
        )

    def _select(self, space: str, where: str, params: Sequence[Any]) -> list[Row]:
        rows = self.store._query(
            "SELECT key, item, value, stamp FROM adapter_state WHERE instance = ?"
            f" AND adapter = ? AND space = ? AND {where}",
            [self.instance, self.adapter, space, *params],
        )
        found = [Row(key, item, json.loads(value), stamp) for key, item, value, stamp in rows]
        if self.read_only:
            return [row for row in found if not self._overlay.hides(space, row)]
        return found

    def _merged(self, space: str, stored: list[Row], keep: Callable[[Row], bool]) -> list[Row]:
        if not self.read_only:
            return stored
        return stored + [row for row in self._overlay.own(space) if keep(row)]

    # writes ----------------------------------------------------------------------------------
    def apply(self, changes: Changes) -> None:
        """Every change in one transaction (or in memory, read-only)."""
        if not changes:
            return
        if self.read_only:
            self._overlay.apply(changes)
            return
        scope = (self.instance, self.adapter)
        with self.store._tx() as conn:
            for kind, space, arg in changes.steps:
                if kind == "put":
                    conn.execute(
                        "INSERT INTO adapter_state VALUES (?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (instance, adapter, space, key, item)"
                        " DO UPDATE SET value = excluded.value, stamp = excluded.stamp",
                        (*scope, space, arg.key, arg.item, json.dumps(arg.value), arg.stamp),
                    )
                elif kind == "drop_item":
                    conn.execute(
                        "DELETE FROM adapter_state WHERE instance = ? AND adapter = ?"
                        " AND space = ? AND item = ?",
                        (*scope, space, arg),
                    )
                else:
                    conn.execute(
                        "DELETE FROM adapter_state WHERE instance = ? AND adapter = ?"
                        " AND space = ?",
                        (*scope, space),
                    )


def hand_state(adapter: Any, store: StateStore, instance: str, *, read_only: bool) -> None:
    """Give an adapter that asks for it (`use_state`) its handle for the coming run."""
    use_state = getattr(adapter, "use_state", None)
    if callable(use_state):
        use_state(AdapterState(store, instance, adapter.name, read_only=read_only))


def _create_table(store: StateStore) -> None:
    """Once per state file (every statement is `IF NOT EXISTS`, the last one is looked
    for): opening a file that has the table takes no write lock."""
    made = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'adapter_state_by_stamp'"
    if store._query(made):
        return
    with store._lock, store._errors("create the adapter state table"):
        store._conn.executescript(SCHEMA)
