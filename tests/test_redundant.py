"""Which follow-ups on one record count as one too many (`sync/redundant.doubled`): a
completed hand-off stands for the person's one hand-off, a completed call for no open one."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_qualify.connector.model import Contact, ExistingTask
from crm_qualify.connector.sync.redundant import doubled

CREATED = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


def task(key: str, done: bool = False) -> ExistingTask:
    return ExistingTask(id=key, key=key, created_at=CREATED, completed=done)


def held(*tasks: ExistingTask) -> list[str | None]:
    return [t.key for t in doubled(Contact(id="1", object_type="Lead", tasks=list(tasks)))]


def test_a_completed_hand_off_and_an_open_one_merged_beside_it_are_a_pair():
    done = task("crmq:Lead:1:mql_handoff", done=True)
    moved = task("crmq:Lead:2:mql_handoff")
    assert held(done, moved) == [done.key, moved.key]


def test_a_completed_call_stands_for_no_open_call_of_a_later_slot():
    done = task("crmq:Lead:1:hot_call:20261122T2000", done=True)
    slot_1 = task("crmq:Lead:1:hot_call:20261122T2000:1")
    assert held(done, slot_1) == []


def test_completed_hand_offs_alone_are_no_pair():
    one, two = task("crmq:Lead:1:mql_handoff", True), task("crmq:Lead:2:mql_handoff", True)
    assert held(one, two) == []
