"""HubSpot's search index lags its writes: a search may still serve a record's older version
after crm-qualify has read a newer one by id. That version is no news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.connector.sync.engine import RunOptions, SyncEngine


def test_a_search_hit_older_than_the_version_read_changes_nothing(sim, adapter, store, settings):
    """A person unsubscribes a lead just as it attends a webinar (found without search): the
    next run reads the lead by id, unsubscribed. The run after met the search index's older
    version, took it for new, replaced the mirror with it, and wrote the score back up and
    the lead to MQL with a hand-off (the stage then never came back)."""
    engine = SyncEngine(adapter, settings, store)
    start = datetime.now(UTC)
    assert engine.run(RunOptions(now=start)).status == "ok"
    lead = next(
        c
        for chunk in store.mirrored_contacts(settings.crm.instance)
        for c in chunk
        if not c.unsubscribed and c.owned.get("stage") == "lead"
    )
    sim.store.index.lag_ms = 60_000
    sim.touch(lead.id, {"hs_email_optout": "true"})
    sim.record_participation("Webinar: Pipeline Clinic", lead.id, "ATTENDED")
    key = (lead.object_type, lead.id)

    # After the edit on the simulator's clock, however long the first run took on a busy
    # machine: a run whose `now` fell before the edit would not look for it.
    second = max(start + timedelta(minutes=1), datetime.now(UTC))
    engine.run(RunOptions(now=second))
    read = store.mirror.by_keys(settings.crm.instance, [key])[key].contact
    assert read.unsubscribed, "read by id: the person's edit"
    again = engine.run(RunOptions(now=second + timedelta(minutes=1)))

    kept = store.mirror.by_keys(settings.crm.instance, [key])[key].contact
    assert kept.unsubscribed, "the older version the index served is no news"
    assert again.counts["records_written"] == 0 and again.counts["tasks_created"] == 0
