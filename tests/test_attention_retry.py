"""A record the adapter failed on needs attention, and is retried once the adapter may have
been fixed: its non-secret options changed, or the package that provides it was upgraded.
A rotated token or a log level is no such change: the record waits for its backoff."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from crm_qualify.connector import plugins
from crm_qualify.connector.contract import ContactBatch, KnownVersions, RawContact
from crm_qualify.connector.model import Contact
from crm_qualify.connector.settings import CrmSettings, LoggingSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, RunSummary, SyncEngine
from crm_qualify.connector.sync.state import StateStore
from pydantic import BaseModel, SecretStr

from tests.memory_adapter import MemoryAdapter
from tests.test_engine import NOW, cold_contact, hot_contact


class BuggySettings(BaseModel):
    page_size: int = 100
    api_token: SecretStr
    credentials: SecretStr
    """A secret its name does not give away: declared as one."""


class BuggyPlugin(MemoryAdapter):
    """A consultant's adapter whose translate raises on the records in `broken`; `reread`:
    the ids read again by id (a retry)."""

    name = "buggy"
    settings_model = BuggySettings

    def __init__(self, contacts: Iterable[Contact]) -> None:
        super().__init__(contacts)
        self.broken: set[str] = set()
        self.reread: list[str] = []

    def read_changed(
        self, cursor: str | None, *, until: datetime, known: KnownVersions | None = None
    ) -> Iterator[ContactBatch]:
        for batch in super().read_changed(cursor, until=until, known=known):
            yield self._raw(batch)

    def read_contacts(self, ids: Iterable[tuple[str, str]]) -> Iterator[ContactBatch]:
        ids = list(ids)
        self.reread += [cid for _, cid in ids]
        for batch in super().read_contacts(ids):
            yield self._raw(batch)

    def _raw(self, batch: ContactBatch) -> ContactBatch:
        raw = [
            RawContact(f"contact/{c.id}", self._translator(c), (c.object_type, c.id), c.updated_at)
            for c in batch.contacts
        ]
        return replace(batch, contacts=[], raw=raw)

    def _translator(self, contact: Contact) -> Callable[[], Contact]:
        def translate() -> Contact:
            if contact.id in self.broken:
                raise TypeError("'int' object is not iterable")
            return contact

        return translate


def settings(**options: Any) -> Settings:
    """The plugin configured with its secrets and `options`."""
    table = {"page_size": 100, "api_token": "tok-4f1c", "credentials": "cr-77a0", **options}
    return Settings(crm=CrmSettings(adapter="buggy"), adapters={"buggy": table})


def install(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """The plugin as installed from its package at `version`."""
    point = SimpleNamespace(load=lambda: BuggyPlugin, dist=SimpleNamespace(version=version))
    monkeypatch.setattr(plugins, "available_adapters", lambda: {"buggy": point})


def sync(adapter: BuggyPlugin, store: StateStore, config: Settings) -> RunSummary:
    return SyncEngine(adapter, config, store).run(RunOptions(now=NOW))


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "state.sqlite")
    yield store
    store.close()


@pytest.fixture
def failed(store, monkeypatch) -> BuggyPlugin:
    """With the plugin's 1.0.0 installed: a run that met its bug on c1 (it needs attention),
    then the fixed adapter."""
    install(monkeypatch, "1.0.0")
    adapter = BuggyPlugin([hot_contact(), cold_contact("c1")])
    adapter.broken = {"c1"}
    first = sync(adapter, store, settings())
    assert first.status == "partial" and first.counts["records_needing_attention"] == 1
    assert [record.contact_id for record in store.attention("default")] == ["c1"]
    adapter.broken = set()
    assert sync(adapter, store, settings()).errors == [], "met again: no new error"
    assert adapter.reread == [], "unchanged configuration: waits for its backoff"
    return adapter


def test_a_changed_adapter_option_retries_the_record_at_the_next_run(store, failed):
    again = sync(failed, store, settings(page_size=50))
    assert failed.reread == ["c1"]
    assert again.status == "ok" and "score" in failed.records["c1"].owned
    assert store.attention("default") == []


def test_an_upgraded_adapter_package_retries_the_record(store, failed, monkeypatch):
    install(monkeypatch, "1.0.1")
    assert sync(failed, store, settings()).status == "ok"
    assert failed.reread == ["c1"] and store.attention("default") == []


def test_a_rotated_secret_or_a_log_level_does_not_retry_the_record(store, failed):
    rotated = settings(api_token="tok-9e2d", credentials="cr-31b5")
    debug = settings().model_copy(update={"logging": LoggingSettings(level="DEBUG")})
    for config in (rotated, debug):
        assert sync(failed, store, config).errors == []
        assert failed.reread == [], "the record waits for its backoff"
    assert [record.contact_id for record in store.attention("default")] == ["c1"]
