"""Rows staged for one read in a temporary SQLite file, by kind and key, so a read holds on
disk what it looks up later instead of in memory: a Bulk read's child rows and Accounts, and
the Accounts a REST read's Lead look-ups matched (`accounts.queried`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crm_qualify.connector.sync.state import INCARNATION, process_alive

PREFIX = "crmq-bulk-"
"""A staging folder's name: the prefix, its process (`pid.incarnation`), a random part."""
STAGE_CHUNK = 500
"""Person ids per staged look-up (well under SQLite's 999 parameters)."""
Row = dict[str, Any]


class Staging:
    """Rows of a read by kind and key (a Bulk read's child rows by relationship and person;
    Accounts by website domain and by normalised name, open Opportunities by Account), in a
    temporary SQLite file made on first use and removed by `close` (or when the object goes).

    A row is stored as its values, by position in its kind's columns: rows read back share
    the column names (a row decoded on its own would carry its own copy of every name, about
    a third of the memory of a batch's engagement rows)."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None
        self.kinds: set[str] = set()
        self._columns: dict[str, dict[str, int]] = {}
        """By kind, each column's position in the stored values."""

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            remove_abandoned()
            self._folder = tempfile.TemporaryDirectory(prefix=f"{PREFIX}{_owner()}-")
            self._db = sqlite3.connect(Path(self._folder.name) / "children.sqlite")
            self._db.execute("CREATE TABLE child (kind TEXT, person TEXT, row TEXT)")
        return self._db

    def add(self, kind: str, rows: Iterable[tuple[str, Row]]) -> None:
        columns = self._columns.setdefault(kind, {})
        self._open().executemany(
            "INSERT INTO child VALUES (?, ?, ?)",
            ((kind, person, json.dumps(_values(columns, row))) for person, row in rows),
        )

    def finish(self, kind: str) -> None:
        db = self._open()
        db.execute("CREATE INDEX IF NOT EXISTS by_person ON child (kind, person)")
        db.commit()
        self.kinds.add(kind)

    def rows(self, kind: str, people: list[str]) -> dict[str, list[Row]]:
        found: dict[str, list[Row]] = {}
        names = list(self._columns.get(kind, ()))
        db = self._open()
        for start in range(0, len(people), STAGE_CHUNK):
            chunk = people[start : start + STAGE_CHUNK]
            marks = ",".join("?" * len(chunk))
            for person, row in db.execute(
                f"SELECT person, row FROM child WHERE kind = ? AND person IN ({marks})",  # noqa: S608
                (kind, *chunk),
            ):
                found.setdefault(person, []).append(dict(zip(names, json.loads(row), strict=False)))
        return found

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._folder is not None:
            self._folder.cleanup()
        self._db = self._folder = None
        self.kinds.clear()
        self._columns.clear()


def _values(columns: dict[str, int], row: Row) -> list[Any]:
    """The row's values by column position; a column first seen here is added at the end (a
    row stored before it simply lacks it, as a row without the value would)."""
    for name in row:
        columns.setdefault(name, len(columns))
    values: list[Any] = [None] * len(columns)
    for name, value in row.items():
        values[columns[name]] = value
    return values


def _owner() -> str:
    return f"{os.getpid()}.{INCARNATION}"


def remove_abandoned(where: Path | None = None) -> None:
    """Staging folders a killed process left (a Bulk read's child rows, megabytes of CRM data
    each): `TemporaryDirectory` removes its folder only when its process ends cleanly. Each
    folder names its process; one whose process is gone is removed by the next read."""
    folder = where or Path(tempfile.gettempdir())
    host = socket.gethostname()
    for stale in folder.glob(f"{PREFIX}*.*-*"):
        owner = stale.name.removeprefix(PREFIX).rpartition("-")[0]
        if stale.is_dir() and not process_alive(f"{host}:{owner}:staging"):
            shutil.rmtree(stale, ignore_errors=True)
