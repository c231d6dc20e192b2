"""What a full read keeps in memory: a query answer is let go once its rows are taken out,
staged Bulk rows come back sharing their column names, and a query's rows (their parents and
child rows too) lose their `attributes` in place, not by copy. The figures are in
`bench/salesforce_bulk.py`."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from crm_qualify.adapters.salesforce.adapter import SalesforceAdapter
from crm_qualify.adapters.salesforce.bulk import BulkApi, JobState, csv_rows
from crm_qualify.adapters.salesforce.bulk_writes import csv_file
from crm_qualify.adapters.salesforce.staging import PREFIX, Staging, remove_abandoned
from crm_qualify.connector.contract import AdapterError
from crm_qualify.connector.sync.state import INCARNATION


def test_staged_rows_come_back_whole_and_share_their_column_names():
    staging = Staging()
    try:
        first = {"Id": "00T1", "WhoId": "00Q1", "Subject": "Call", "Campaign": None}
        second = {"Id": "00T2", "WhoId": "00Q1", "Subject": None, "Campaign": {"Name": "Expo"}}
        later = {"Id": "00T3", "WhoId": "00Q2", "Subject": "Mail", "Campaign": None, "Due": "x"}
        staging.add("Task", [("00Q1", first), ("00Q1", second)])
        staging.add("Task", [("00Q2", later)])
        staging.finish("Task")
        found = staging.rows("Task", ["00Q1", "00Q2", "00Q9"])
        assert found["00Q1"] == [first, second]
        assert found["00Q2"] == [later], "a column first seen later is kept"
        assert found["00Q1"][0].get("Due") is None, "a row stored before it simply lacks it"
        assert "00Q9" not in found
        names = [list(row) for row in (*found["00Q1"], *found["00Q2"])]
        assert all(a is b for a, b in zip(names[0], names[1], strict=True))
        assert all(a is b for a, b in zip(names[0], names[2], strict=False))
    finally:
        staging.close()


def test_a_query_row_and_its_parents_lose_their_attributes_in_place():
    row = {
        "attributes": {"type": "CampaignMember"},
        "Id": "00v1",
        "Campaign": {"attributes": {"type": "Campaign"}, "Name": "Expo"},
        "Lead": None,
    }
    answer = {"totalSize": 1, "done": True, "records": [row]}
    (page,) = _querying(answer)._query("GET query CampaignMember", "SELECT Id FROM CampaignMember")
    (taken,) = page
    assert taken is row, "the answer's own row, not a copy"
    assert taken == {"Id": "00v1", "Campaign": {"Name": "Expo"}, "Lead": None}


def _querying(answer: dict[str, Any]) -> SalesforceAdapter:
    """An adapter whose client answers every query with `answer`."""
    adapter = object.__new__(SalesforceAdapter)
    adapter.client = type("Once", (), {"call": lambda self, what, send: answer})()
    return adapter


def test_ingest_data_is_the_csv_in_utf8_in_a_file_of_its_own():
    records = [{"Id": "001", "Name": "Zoë, Ltd", "Flag": True}, {"Id": "002", "Name": None}]
    with csv_file(lambda: iter(records)) as data:
        assert data.read() == 'Id,Name,Flag\n001,"Zoë, Ltd",true\n002,#N/A,\n'.encode()


class Answer(dict):
    """A query answer as the client hands it over, watched with a weak reference."""


class Client:
    """Two pages of one query; keeps a weak reference to each answer it gave."""

    def __init__(self) -> None:
        self.answers: list[weakref.ref[Answer]] = []

    def call(self, what: str, send: Callable[[Any], Any]) -> Answer:
        number = len(self.answers)
        answer = Answer(
            totalSize=2,
            done=number == 1,
            nextRecordsUrl="/services/data/v59.0/query/01gD0000002HU6KIAW-2000",
            records=[{"attributes": {"type": "Lead"}, "Id": f"00Q00000000000{number}"}],
        )
        self.answers.append(weakref.ref(answer))
        return answer


def test_a_query_answer_is_not_held_while_its_rows_are_worked_on():
    adapter = object.__new__(SalesforceAdapter)  # `_query` needs nothing but the client
    adapter.client = client = Client()
    pages = adapter._query("GET query Lead", "SELECT Id FROM Lead")
    first = next(pages)
    gc.collect()
    assert first == [{"Id": "00Q000000000000"}] and first.total == 2
    assert client.answers[0]() is None, "the answer (every row's attributes) is still held"
    assert [list(page) for page in pages] == [[{"Id": "00Q000000000001"}]]


def test_a_query_pages_child_rows_lose_their_attributes_in_place():
    task = {"attributes": {"type": "Task", "url": "/t/00T1"}, "Id": "00T1", "Subject": "Call"}
    member = {
        "attributes": {"type": "CampaignMember"},
        "Id": "00v1",
        "Campaign": {"attributes": {"type": "Campaign"}, "Name": "Expo"},
    }
    answer = {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {"type": "Lead"},
                "Id": "00Q1",
                "Tasks": {"totalSize": 1, "done": True, "records": [task]},
                "CampaignMembers": {"totalSize": 1, "done": True, "records": [member]},
                "Events": None,
            }
        ],
    }
    (page,) = _querying(answer)._query("GET query Lead", "SELECT Id FROM Lead")
    (row,) = page
    assert row["Tasks"]["records"] == [{"Id": "00T1", "Subject": "Call"}]
    assert row["CampaignMembers"]["records"] == [{"Id": "00v1", "Campaign": {"Name": "Expo"}}]
    assert row["Tasks"]["records"][0] is task, "in place, not copied"


class Results:
    """A Bulk results answer: CSV bytes and the headers the adapter reads."""

    def __init__(self, rows: list[str], locator: str, announced: int | None = None) -> None:
        text = "Id,Email\n" + "".join(f"{row},{row}@example.com\n" for row in rows)
        self.content = text.encode()
        self.headers = {"Sforce-Locator": locator}
        self.headers["Sforce-NumberOfRecords"] = str(len(rows) if announced is None else announced)


def bulk_api(sets: list[Results]) -> tuple[BulkApi, list[dict[str, Any]]]:
    """A `BulkApi` whose job is done at once and whose results requests answer `sets`."""
    api = object.__new__(BulkApi)
    asked: list[dict[str, Any]] = []
    total = sum(answer.content.count(b"\n") - 1 for answer in sets)
    api.create = lambda kind, body: JobState.of({"id": "750x", "state": "UploadComplete"})
    api.wait = lambda kind, job_id: JobState.of(
        {"id": job_id, "state": "JobComplete", "numberRecordsProcessed": total}
    )

    def request(what: str, method: str, path: str, **kwargs: Any) -> Results:
        asked.append(kwargs["params"])
        return sets[len(asked) - 1]

    api.request = request
    return api, asked


def test_people_are_asked_a_whole_set_at_a_time_and_handed_on_a_batch_at_a_time():
    api, asked = bulk_api([Results(["a", "b", "c", "d", "e"], "L1"), Results(["f"], "null")])
    handed = [[row["Id"] for row in rows] for rows in api.query("SELECT Id", 5, handed=2)]
    assert handed == [["a", "b"], ["c", "d"], ["e"], ["f"]]
    assert asked == [{"maxRecords": 5}, {"maxRecords": 5, "locator": "L1"}]


def test_result_rows_are_decoded_from_the_answers_bytes_as_they_are_read():
    quoted = 'Id,Description\r\n1,"Zoë said:\r\n""call"""\r\n2,\r\n'.encode()
    assert list(csv_rows(quoted)) == [
        {"Id": "1", "Description": 'Zoë said:\r\n"call"'},
        {"Id": "2", "Description": ""},
    ]
    assert list(csv_rows(b"Id,Name\n3,Caf\xe9\n")) == [{"Id": "3", "Name": "Caf\ufffd"}]
    assert list(csv_rows(b"")) == []


def test_a_result_set_holding_other_than_it_announced_is_refused():
    api, _ = bulk_api([Results(["a", "b", "c"], "null", announced=4)])
    with pytest.raises(AdapterError, match="announced 4 records and held 3"):
        list(api.query("SELECT Id", 5, handed=2))


def test_a_staging_folder_a_killed_process_left_is_removed_by_the_next_read(tmp_path):
    """A SIGKILL during a Bulk read left `crmq-bulk-*/children.sqlite` (1.8 MB, 6,062 Task
    rows) behind, and nothing ever removed it."""
    corpse = subprocess.Popen([sys.executable, "-c", "pass"])
    corpse.wait()
    dead = tmp_path / f"{PREFIX}{corpse.pid}.abcdef12-x1y2"
    earlier = tmp_path / f"{PREFIX}{os.getpid()}.0ld1ncar-z9_8"  # this pid, another process
    ours = tmp_path / f"{PREFIX}{os.getpid()}.{INCARNATION}-q7r6"
    unknown = tmp_path / f"{PREFIX}2d2msvm_"  # an older release's name: whose, unknown
    for folder in (dead, earlier, ours, unknown):
        folder.mkdir()
        (folder / "children.sqlite").write_bytes(b"rows")
    remove_abandoned(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, unknown.name])
