"""HubSpot: the mirror phase's follow-up tasks wait in the ledger, owed, until they fill a
create request, however few each batch of contacts plans."""

from __future__ import annotations

import math
from dataclasses import replace

from crm_qualify.connector.sync import engine as engine_module
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine

CREATE = "POST tasks/batch/create"


def test_a_full_syncs_tasks_leave_in_full_create_requests(adapter, store, settings, monkeypatch):
    """Decided 50 contacts at a time, a batch plans a task or two, and a request takes 10 here
    (100 at HubSpot): without holding them the flight sent a short create request every
    other batch. Each task lands once and joins its contact in the mirror."""
    monkeypatch.setattr(engine_module, "MIRROR_FIRST_CHUNK", 50)
    monkeypatch.setattr(engine_module, "MIRROR_CHUNK", 50)
    adapter.traffic.limits = replace(adapter.traffic.limits, task_batch=10)
    summary = SyncEngine(adapter, settings, store).run(RunOptions(full=True))
    created = summary.counts["tasks_created"]
    assert summary.status == "ok" and created > 20
    assert adapter.usage().requests[CREATE] == math.ceil(created / 10)
    ledger = store.all_tasks(settings.crm.instance)
    assert sorted(t.status for t in ledger) == ["created"] * created
    mirrored = store.mirror.by_keys(
        settings.crm.instance, [(task.object_type, task.contact_id) for task in ledger]
    )
    assert {t.key for t in ledger} <= {t.key for m in mirrored.values() for t in m.contact.tasks}
