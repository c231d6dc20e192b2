"""Rotated OAuth refresh tokens, kept where a restart finds them and nobody else reads them.

A CRM that rotates refresh tokens (each refresh answers with a new one and may void the old)
leaves the configured token stale after the first refresh. The current one lives in a small
JSON file of its own (`credentials_store` in an adapter's settings), never in the state store,
the logs or a report:

- written atomically: a temporary file in the same directory, created 0600, written, fsynced,
  renamed over the old one, and the directory fsynced; a crash leaves the old token or the
  new one, never half a file;
- refused when group or others can read it, as ssh refuses a readable key;
- tied to the configured token by a SHA-256 fingerprint (`seed`): an admin who re-authorises
  the app and configures the new refresh token starts a new chain, and the stored token of the
  old chain is ignored;
- refreshed under an exclusive `flock` on `<file>.lock`, so two processes of one portal (the
  daemon and a manual `sync` or `doctor`) never spend the same single-use token twice: the
  second waits, then reads the token the first one saved.

Used by both adapters; the CRM-specific token call stays in the adapter.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crm_qualify.connector.ops.file_rights import uncreatable

FORMAT = 1


class TokenStoreError(Exception):
    """The store cannot be read or written; the message names the file, never a token."""


def fingerprint(token: str) -> str:
    """A one-way name for a configured token: safe to keep beside the token it descends to."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenStore:
    """The current refresh token of one credential chain, in `path`."""

    path: Path

    def current(self, seed: str) -> str:
        """The stored token if it descends from `seed` (the configured token), else `seed`."""
        saved = self._read()
        if saved and saved.get("seed") == fingerprint(seed) and saved.get("refresh_token"):
            return str(saved["refresh_token"])
        return seed

    def save(self, seed: str, token: str) -> None:
        """Replace the stored token atomically (see the module docstring)."""
        record = {
            "format": FORMAT,
            "seed": fingerprint(seed),
            "refresh_token": token,
            "rotated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        directory = self.path.parent
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
            )
        except OSError as exc:
            raise TokenStoreError(f"{directory}: cannot write there ({exc.strerror})") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(record, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise TokenStoreError(f"{self.path}: cannot write it ({exc.strerror})") from None
        _fsync_directory(directory)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the chain's lock across read, refresh and save (other processes wait)."""
        lock_path = self.lock_path
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TokenStoreError(f"{lock_path}: cannot open it ({exc.strerror})") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _read(self) -> dict[str, object] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"{self.path}: cannot read it ({exc.strerror})") from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokenStoreError(
                f"{self.path}: group or others may read it; it holds a refresh token"
                f" (chmod 600 {self.path})"
            )
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TokenStoreError(
                f"{self.path}: not a token store ({type(exc).__name__})"
            ) from None
        return record if isinstance(record, dict) else None


def writable_location(path: Path) -> str | None:
    """Why `path` cannot hold a token store (checked with the configuration); None if it can.
    The directory and existing files are tried as the store uses them, not asked with
    access(2), which says yes to root where the file system says no (read-only, /sys)."""
    directory = path.parent
    if path.is_dir():
        return f"{path}: is a directory, not a file"
    if path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{path}: group or others may read it (chmod 600 {path})"
    if not directory.is_dir():
        return f"{directory}: no such directory"
    return uncreatable(path) or _unreadable(path) or _unlockable(TokenStore(path).lock_path)


def _unreadable(path: Path) -> str | None:
    """Why an existing store cannot be read (another user's file)."""
    try:
        with path.open("rb"):
            return None
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror})"


def _unlockable(lock_path: Path) -> str | None:
    """Why an existing lock file cannot be opened as a renewal opens it (one left by another
    user); a missing one is created then."""
    try:
        descriptor = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{lock_path}: cannot open it ({exc.strerror})"
    os.close(descriptor)
    return None


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a crash after it must not bring the old file back)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
