"""Whether this process can create a file beside a path, or write an existing one: tried as
the program will use them, not asked with access(2), which says yes to root where the file
system says no (a read-only mount, /sys)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def uncreatable(path: Path) -> str | None:
    """Why no file can be created beside `path` (one is created and removed); None if one can."""
    try:
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent):
            return None
    except OSError as exc:
        return f"{path.parent}: cannot create a file there ({exc.strerror})"


def unwritable(path: Path) -> str | None:
    """Why the existing file `path` cannot be opened for reading and writing (nothing is
    written); None if it can."""
    try:
        with path.open("r+b"):
            return None
    except OSError as exc:
        return f"{path}: cannot open it for writing ({exc.strerror})"
