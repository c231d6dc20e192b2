"""An idle rerun reads nobody: with the default lookback (300 s) the people query and the
activity sweep start before where the last run ended, and what they meet again there, records
and activity rows the last run already held, costs no read. What changed in that overlap after
the last run looked (a change to a row it held, a row that became visible late) is still read.
One org and one state store for the module: each test starts where the one before left off."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.salesforce.simulator.merge import merge
from crm_qualify.adapters.salesforce.simulator.org import iso
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore

from tests.salesforce.conftest import TASK_KEY as KEY
from tests.salesforce.conftest import make_adapter

CHANGE_PAGES = Counter(
    {
        "GET queryAll Lead": 1,
        "GET queryAll Contact": 1,
        "GET query Task": 1,
        "GET query Event": 1,
        "GET query CampaignMember": 1,
        "GET query OpportunityContactRole": 1,
        "GET query Opportunity": 1,
    }
)
"""An incremental run that finds nothing new: one page per people query (queryAll, which
brings the records merged away in its window too) and per sweep."""


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=200, seed=7) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def engine(org, tmp_path_factory) -> Iterator[SyncEngine]:
    """A full sync of the org, just after a person logged a meeting and a campaign response
    (both inside the next run's lookback)."""
    now = datetime.now(UTC)
    org.org.insert(
        "Event", {"WhoId": _open_lead(org), "Subject": "Demo"}, now - timedelta(minutes=1)
    )
    contact = next(iter(org.org.records["Contact"]))
    campaign = next(iter(org.org.records["Campaign"]))
    member = {"CampaignId": campaign, "ContactId": contact, "Status": "Responded"}
    org.org.insert("CampaignMember", member, now - timedelta(minutes=2))
    store = StateStore(tmp_path_factory.mktemp("idle") / "state.sqlite")
    sync = SyncEngine(make_adapter(org), Settings(crm=CrmSettings(adapter="salesforce")), store)
    full = sync.run(RunOptions())
    assert full.status == "ok", full.errors
    assert full.counts["read"] == full.counts["records_written"] > 0
    yield sync
    store.close()


def _open_lead(org) -> str:
    return next(r["Id"] for r in org.org.live("Lead") if not r["IsConverted"])


def _edit_after_our_write(org, record_id: str) -> None:
    """A person's edit, in a later second than our own last write to the record. Salesforce
    stamps to the second, so an edit stamped in the second of our write looks like our own
    version and waits for the next full read (`sync/mirror.py`, `_own`; documented): this
    test is about an edit after it. Waits at most a second of wall time, the simulator's
    clock."""
    stamp = org.org.records["Lead"][record_id]["SystemModstamp"]
    while iso(datetime.now(UTC)) <= stamp:
        time.sleep(0.02)
    org.touch(record_id, {})


def _run(engine) -> tuple[int, Counter[str], int]:
    """Records read, requests made, and fields and tasks written by one run."""
    before = Counter(engine.adapter.usage().requests)
    summary = engine.run(RunOptions())
    assert summary.status == "ok", summary.errors
    used = Counter(engine.adapter.usage().requests)
    used.subtract(before)
    written = summary.counts["fields_written"] + summary.counts["tasks_created"]
    return summary.counts["read"], +used, written


def test_an_idle_rerun_after_a_full_sync_reads_only_the_change_pages(engine):
    for _ in range(2):
        assert _run(engine) == (0, CHANGE_PAGES, 0)


def test_a_person_edit_is_read_once_and_not_again_in_the_lookback(org, engine):
    """The edit stamps the lead with a version the next run reads and (nothing to change)
    does not overwrite: the run after it meets that version again and reads nothing."""
    lead = _open_lead(org)
    _edit_after_our_write(org, lead)
    read, _, _ = _run(engine)
    assert read == 1
    assert org.org.records["Lead"][lead]["LastModifiedById"] == org.org.ui_user
    assert _run(engine) == (0, CHANGE_PAGES, 0)


def test_a_held_activity_row_that_changes_is_read_again(org, engine):
    lead = _open_lead(org)
    (event,) = [e for e in org.org.live("Event") if e["WhoId"] == lead and e["Subject"] == "Demo"]
    org.org.update("Event", event["Id"], {"Subject": "Demo, moved"}, datetime.now(UTC))
    read, used, _ = _run(engine)
    assert read == 1 and used["GET queryAll Lead"] == used["GET query Lead"] == 1, "by id"
    assert _run(engine) == (0, CHANGE_PAGES, 0)


def test_a_row_visible_only_after_the_last_run_looked_is_read(org, engine):
    """Committed late: stamped before the last run ended, inside the lookback, so only the
    overlap finds it."""
    contact = list(org.org.records["Contact"])[3]
    ended = datetime.now(UTC)
    assert _run(engine)[0] == 0
    org.org.insert("Task", {"WhoId": contact, "Subject": "Call", "Status": "Completed",
                            "IsClosed": True}, ended - timedelta(seconds=30))  # fmt: skip
    read, used, _ = _run(engine)
    assert read == 1 and used["GET queryAll Contact"] == used["GET query Contact"] == 1
    assert _run(engine) == (0, CHANGE_PAGES, 0)


@pytest.mark.parametrize("ours", [True, False], ids=["our follow-up", "their own task"])
def test_a_task_a_person_closes_is_read_once_and_not_again_in_the_lookback(org, engine, ours):
    if ours:
        task = next(t for t in org.org.live("Task") if t.get(KEY) and not t["IsClosed"])
    else:
        lead = _open_leads(org)[-3]
        long_ago = datetime.now(UTC) - timedelta(days=2)
        task = org.org.insert("Task", {"WhoId": lead, "Subject": "Call"}, long_ago)
    org.touch(task["Id"], {"Status": "Completed"})
    assert _run(engine)[0] == 1
    assert _run(engine) == (0, CHANGE_PAGES, 0)


@pytest.mark.parametrize("script", [False, True], ids=["in the UI", "as our user"])
def test_a_merge_is_read_once_and_not_again_in_the_lookback(org, engine, script):
    """The run after a merge reads the master with the id merged into it. The next meets the
    merged record again in its lookback, at the stamp that run handed on with its master:
    no news, and the master is not read again."""
    master, victim = _open_leads(org)[-2:] if script else _open_leads(org)[-5:-3]
    by = org.org.integration_user if script else org.org.ui_user
    with org.org.lock:
        merge(org.org, master, [victim], datetime.now(UTC), by)
    assert _run(engine)[0] == 1
    assert _run(engine) == (0, CHANGE_PAGES, 0)


def _open_leads(org) -> list[str]:
    return sorted(r["Id"] for r in org.org.live("Lead") if not r["IsConverted"])
