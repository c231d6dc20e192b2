"""The token store: rotated refresh tokens survive restarts, stay private, follow the seed."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import pytest
from crm_qualify.connector.ops.token_store import TokenStore, TokenStoreError, writable_location


def test_a_saved_token_is_private_replaced_whole_and_tied_to_its_seed(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oauth.json")
    assert store.current("seed-1") == "seed-1", "nothing saved yet: the configured token"
    store.save("seed-1", "rotated-a")
    store.save("seed-1", "rotated-b")
    assert store.current("seed-1") == "rotated-b"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oauth.json"], "no temporary left"
    assert "seed-1" not in store.path.read_text(), "only the seed's fingerprint is kept"
    assert store.current("seed-2") == "seed-2", "a newly configured token starts a new chain"


def test_a_store_others_can_read_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oauth.json")
    store.save("seed", "rotated")
    os.chmod(store.path, 0o644)
    with pytest.raises(TokenStoreError, match="chmod 600") as caught:
        store.current("seed")
    assert "rotated" not in str(caught.value)
    assert "group or others" in (writable_location(store.path) or "")
    assert writable_location(tmp_path / "missing" / "oauth.json") is not None
    assert writable_location(tmp_path / "new.json") is None


def test_one_process_at_a_time_holds_the_chain(tmp_path: Path) -> None:
    """flock is per open file: another opener (another process) cannot take it meanwhile."""
    store = TokenStore(tmp_path / "oauth.json")
    lock_file = tmp_path / "oauth.json.lock"

    def try_lock() -> bool:
        with lock_file.open("a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    with store.exclusive():
        assert not try_lock()
    assert try_lock()
