"""Our own writes do not bring their records back: incremental reads leave out people whose
last change is the integration user's (`LastModifiedById`), learned from the login answer's
identity URL; a person's later edit, activity on the person and a first read still read them."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

import requests
from crm_qualify.adapters.salesforce.client import user_from_identity_url
from crm_qualify.adapters.salesforce.http import make_session
from crm_qualify.adapters.salesforce.reader import Cursor
from crm_qualify.connector.model import FieldUpdate, RecordUpdate
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from simple_salesforce import Salesforce

from tests.salesforce.conftest import make_adapter

SWEEP = Counter(
    {
        "GET query Task": 1,
        "GET query Event": 1,
        "GET query CampaignMember": 1,
        "GET query OpportunityContactRole": 1,
        "GET query Opportunity": 1,
    }
)
"""The activity sweep of an incremental run in which no activity changed."""


def knows_nothing(hits, by_others=False):
    """The core's `known` check of an incremental run, here with an empty mirror."""
    return set()


def run(adapter, cursor, until, known=knows_nothing):
    """Every id read and the last cursor. The engine passes `known` on incremental runs and
    None on a full read (which may resume from a cursor)."""
    ids, last = [], cursor
    for batch in adapter.read_changed(cursor, until=until, known=known):
        ids += [raw.key[1] for raw in batch.raw]
        last = batch.cursor or last
    return ids, last


def people(sim) -> list[str]:
    leads = [r["Id"] for r in sim.org.records["Lead"].values() if not r["IsConverted"]]
    return sorted(leads + list(sim.org.records["Contact"]))


def synced(sim, **options):
    """An adapter (lookback 0, queries paged by 50) and the cursor of a complete first run a
    minute ago (so that what follows is never in the run's own second)."""
    sim.page_size = 50
    adapter = make_adapter(sim, lookback_seconds=0, **options)
    ids, cursor = run(adapter, None, datetime.now(UTC) - timedelta(minutes=1), known=None)
    assert sorted(ids) == people(sim)
    return adapter, cursor


def write_scores(adapter, ids: list[str]) -> None:
    updates = [
        RecordUpdate(
            contact_id=i,
            object_type="Lead" if i.startswith("00Q") else "Contact",
            changes=[FieldUpdate(field="score", new=77)],
        )
        for i in ids
    ]
    assert all(r.ok for r in adapter.write_updates(updates))


def later() -> datetime:
    """An incremental run's `until`: the current second included (SystemModstamp has second
    precision)."""
    return datetime.now(UTC) + timedelta(seconds=1)


def test_records_we_wrote_are_not_read_again(sim):
    adapter, cursor = synced(sim)
    everyone = people(sim)
    leads = [i for i in everyone if i.startswith("00Q")]
    written = leads[:60] + [i for i in everyone if i.startswith("003")][:60]  # > a page each
    write_scores(adapter, written)
    assert {sim.org.records[_object(i)][i]["LastModifiedById"] for i in written} == {
        sim.org.integration_user
    }
    adapter.client.requests.clear()
    sim.stats.reset()
    ids, _ = run(adapter, cursor, later())
    assert ids == []
    assert adapter.client.requests == SWEEP + Counter(
        {"GET queryAll Lead": 1, "GET queryAll Contact": 1}
    ), "one empty page per people query, the sweep, and nothing else"
    assert sim.stats.by_endpoint == Counter({"GET query": 5, "GET queryAll": 2})

    # The same read as part of a full read (no `known`) reads every record we wrote.
    adapter.client.requests.clear()
    ids, _ = run(adapter, cursor, later(), known=None)
    assert sorted(ids) == sorted(written)
    assert adapter.client.requests["GET queryAll Lead (more)"] > 0


def test_a_sync_run_after_our_writes_reads_nobody_until_a_person_edits(sim, store, settings):
    """Through the engine: the first run writes every person; the next run, with no change
    outside, reads none of them (one empty page per people query, and the activity sweep);
    a person's edit then brings back exactly that record."""
    sim.page_size = 50
    engine = SyncEngine(make_adapter(sim, lookback_seconds=0), settings, store)
    first = engine.run(RunOptions())
    assert first.status == "ok", first.errors
    assert first.counts["read"] == first.counts["records_written"] == len(people(sim))
    engine.adapter.client.requests.clear()
    quiet = engine.run(RunOptions())
    assert quiet.status == "ok", quiet.errors
    assert quiet.counts["read"] == 0 and quiet.counts["fields_planned"] == 0
    assert engine.adapter.client.requests == SWEEP + Counter(
        {"GET queryAll Lead": 1, "GET queryAll Contact": 1}
    )
    edited = people(sim)[7]
    sim.touch(edited, {"Title": "Student"})
    again = engine.run(RunOptions())
    assert again.status == "ok", again.errors
    assert again.counts["read"] == 1


def test_a_person_editing_after_our_write_is_read(sim):
    adapter, cursor = synced(sim)
    written = people(sim)[:6]
    write_scores(adapter, written)
    sim.touch(written[2], {"Title": "CFO"})
    contact = next(i for i in written if i.startswith("003"))
    sim.touch(contact, {"Title": "Buyer"})
    ids, _ = run(adapter, cursor, later())
    assert sorted(ids) == sorted({written[2], contact})


def test_a_person_edit_in_our_writes_second_is_read(sim):
    """SystemModstamp has second precision, so a person's edit can carry a stamp inside our
    write's round trip, which the core would take for our own version. The query left out
    what we changed last, so the adapter says none of its hits is ours: only the version read
    counts, and the edit is read."""
    adapter, cursor = synced(sim)
    edited = people(sim)[3]
    write_scores(adapter, [edited])
    sim.touch(edited, {"Title": "CFO"})
    asked = []

    def inside_our_round_trip(hits, by_others=False):
        """A core whose write window covers every stamp, and which read none of them."""
        asked.append(by_others)
        return set() if by_others else {key for key, _ in hits}

    ids, _ = run(adapter, cursor, later(), known=inside_our_round_trip)
    assert ids == [edited]
    assert asked and all(asked)


def test_through_the_engine_a_person_edit_inside_our_write_window_is_read(sim, store, settings):
    """The same through the engine's mirror: our write's round trip (as the mirror recorded
    it, here widened to two seconds) holds the person's stamp; the record is still read."""
    engine = SyncEngine(make_adapter(sim, lookback_seconds=0), settings, store)
    assert engine.run(RunOptions()).status == "ok"
    edited = people(sim)[5]
    ((acked,),) = store._query("SELECT write_acked_at FROM mirror WHERE contact_id = ?", [edited])
    acked_at = datetime.fromisoformat(acked)
    with store._tx() as conn:
        conn.execute(
            "UPDATE mirror SET write_sent_at = ? WHERE contact_id = ?",
            [(acked_at - timedelta(seconds=2)).isoformat(), edited],
        )
    sim.org.update(_object(edited), edited, {"Title": "CFO"}, acked_at)  # a person, in it
    again = engine.run(RunOptions())
    assert again.status == "ok", again.errors
    assert again.counts["read"] == 1


def test_activity_on_a_person_we_wrote_last_still_brings_them_back(sim):
    adapter, cursor = synced(sim)
    lead = next(i for i in people(sim) if i.startswith("00Q"))
    write_scores(adapter, [lead])
    sim.org.insert("Event", {"WhoId": lead, "Subject": "Demo"}, datetime.now(UTC))
    assert sim.org.records["Lead"][lead]["LastModifiedById"] == sim.org.integration_user
    ids, _ = run(adapter, cursor, later())
    assert ids == [lead]


def test_a_first_read_reads_everyone_even_records_we_wrote_last(sim):
    adapter, _ = synced(sim)
    write_scores(adapter, people(sim))
    for known in (None, knows_nothing):
        ids, _ = run(adapter, None, later(), known=known)
        assert sorted(ids) == people(sim)


def test_a_person_edit_overwritten_by_our_write_waits_for_the_next_full_read(sim):
    """The documented gap: a person's edit between our read and our write, touching no
    activity, is hidden by our write until a full read."""
    adapter, cursor = synced(sim)
    lead = next(i for i in people(sim) if i.startswith("00Q"))
    sim.touch(lead, {"Title": "Head of Data"})  # after the read we scored from ...
    write_scores(adapter, [lead])  # ... and before our write
    assert run(adapter, cursor, later())[0] == []
    assert lead in run(adapter, None, later(), known=None)[0]


def test_an_object_without_a_position_is_read_whole(sim):
    """A cursor for Leads only (Contacts newly synced): Contacts are a first read."""
    adapter, _ = synced(sim)
    write_scores(adapter, people(sim))
    cursor = Cursor({"Lead": (datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "")})
    ids, _ = run(adapter, cursor.dump(), later())
    assert sorted(ids) == [i for i in people(sim) if i.startswith("003")]


def test_the_people_query_names_the_integration_user_only_when_resuming(sim):
    adapter = make_adapter(sim, lookback_seconds=0)
    me = adapter.client.integration_user()
    mapping = adapter.objects["Lead"]
    until = datetime(2026, 12, 1, tzinfo=UTC)
    resumed = Cursor({"Lead": ("2026-11-30T10:00:00.000+0000", "00Q5g0000000001AAA")})
    soql = adapter._changed_soql(mapping, resumed, until, me)
    assert (
        f"WHERE IsConverted = false AND ((IsDeleted = false AND LastModifiedById != '{me}')"
        " OR (IsDeleted = true AND MasterRecordId != null)) AND (" in soql
    ), "our own changes left out, the records merged away in the window kept"
    full = adapter._changed_soql(mapping, Cursor(), until, me)
    assert "LastModifiedById !=" not in full.partition(" WHERE ")[2]


# learning who we are --------------------------------------------------------------------------
def test_the_login_answer_names_the_integration_user_without_another_request(sim):
    adapter = make_adapter(sim)
    assert adapter.client.integration_user() == sim.org.integration_user
    assert adapter.client.integration_user() == sim.org.integration_user
    assert adapter.usage().requests == {"POST oauth2/token": 1}


def test_without_an_id_in_the_login_answer_userinfo_is_asked_once(sim, monkeypatch):
    grant = sim.token_endpoint

    def without_id(form, instance_url=None, authorization=""):
        status, body = grant(form, instance_url, authorization)
        body.pop("id", None)
        return status, body

    monkeypatch.setattr(sim, "token_endpoint", without_id)
    adapter = make_adapter(sim)
    assert adapter.client.integration_user() == sim.org.integration_user
    assert adapter.client.integration_user() == sim.org.integration_user
    assert adapter.usage().requests == {"POST oauth2/token": 1, "GET oauth2/userinfo": 1}
    assert sim.stats.by_endpoint["GET /services/oauth2/userinfo"] == 1


def test_when_salesforce_will_not_say_who_we_are_our_writes_are_read(sim, monkeypatch, caplog):
    adapter, cursor = synced(sim)
    adapter.client._user_id = None
    monkeypatch.setattr(sim, "identity", lambda header, path: (403, "Bad_OAuth_Token"))
    written = people(sim)[:3]
    write_scores(adapter, written)
    with caplog.at_level(logging.WARNING):
        ids, _ = run(adapter, cursor, later())
    assert sorted(ids) == written, "read more, never less"
    assert "did not name the integration user (HTTP 403" in caplog.text
    secrets = (adapter.client.sf.session_id, sim.password, sim.client_secret)
    assert not any(secret in caplog.text for secret in secrets)


def test_identity_urls_name_a_user_or_nothing():
    url = "https://login.salesforce.com/id/00Dx0000000BV7zEAG/005x00000012Q9PAAU"
    assert user_from_identity_url(url) == "005x00000012Q9PAAU"
    assert user_from_identity_url(url.replace("/id/", "/other/")) is None
    for bad in (None, 42, "", "https://login.salesforce.com/id/00D/001x00000012Q9P",
                url + "/extra", url.replace("005x", "005x' OR Id != '")):  # fmt: skip
        assert user_from_identity_url(bad) is None


# the simulator, as any client sees it ------------------------------------------------------
def _sf(sim) -> Salesforce:
    return Salesforce(
        instance_url=sim.instance_url, session_id=sim.session_id,
        session=make_session(sim.ca_bundle_path), version=sim.api_version,
    )  # fmt: skip


def _grants(sim) -> list[dict[str, str]]:
    app = {"client_id": sim.client_id, "client_secret": sim.client_secret}
    return [
        {**app, "grant_type": "password", "username": sim.username,
         "password": sim.password + sim.security_token},
        {**app, "grant_type": "client_credentials"},
        {**app, "grant_type": "refresh_token", "refresh_token": sim.refresh_token},
    ]  # fmt: skip


def test_every_token_answer_carries_the_identity_url_and_it_answers(sim):
    token_url = f"{sim.login_url}/services/oauth2/token"
    for grant in _grants(sim):
        body = requests.post(token_url, data=grant, verify=sim.ca_bundle_path).json()
        assert user_from_identity_url(body["id"]) == sim.org.integration_user
        assert body["id"].startswith(f"{sim.login_url}/id/00D")
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        who = requests.get(body["id"], headers=bearer, verify=sim.ca_bundle_path).json()
        assert (who["user_id"], who["username"]) == (sim.org.integration_user, sim.username)
        info = requests.get(
            f"{sim.login_url}/services/oauth2/userinfo", headers=bearer, verify=sim.ca_bundle_path
        ).json()
        assert (info["user_id"], info["sub"]) == (sim.org.integration_user, body["id"])
    stranger = requests.get(
        f"{sim.login_url}/services/oauth2/userinfo",
        headers={"Authorization": "Bearer 00Dnope"}, verify=sim.ca_bundle_path,
    )  # fmt: skip
    assert (stranger.status_code, stranger.text) == (403, "Bad_OAuth_Token")


def test_simple_salesforce_sees_who_last_modified_each_record(sim):
    """Through simple-salesforce's own calls, no code of ours: REST PATCH, sObject
    Collections and upsert stamp the API user; a person's edit stamps theirs; SOQL filters
    `LastModifiedById` with = and != (15-character ids too)."""
    sf, me, person = _sf(sim), sim.org.integration_user, sim.org.ui_user
    leads = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 4")["records"]]

    def mine() -> list[str]:
        soql = f"SELECT Id FROM Lead WHERE LastModifiedById = '{me[:15]}' ORDER BY Id"
        return [r["Id"] for r in sf.query_all(soql)["records"]]

    assert mine() == []
    sf.Lead.update(leads[0], {"Title": "CTO"})
    rows = [{"attributes": {"type": "Lead"}, "id": i, "Title": "VP"} for i in leads[1:3]]
    sf.restful("composite/sobjects", method="PATCH", json={"records": rows})
    assert mine() == leads[:3]
    others = sf.query_all(f"SELECT Id, LastModifiedById FROM Lead WHERE LastModifiedById != '{me}'")
    assert {r["LastModifiedById"] for r in others["records"]} == {person}
    assert len(others["records"]) == len(sim.org.records["Lead"]) - 3

    sim.touch(leads[1], {"Title": "Buyer"})
    assert mine() == [leads[0], leads[2]]
    assert sf.Lead.get(leads[1])["LastModifiedById"] == person
    assert sf.Lead.get(leads[0])["CreatedById"] == person, "an update keeps the creator"
    task = sf.restful(
        "composite/sobjects/Task/CRMQ_Task_Key__c", method="PATCH",
        json={"records": [{"attributes": {"type": "Task"}, "CRMQ_Task_Key__c": "k-1",
                           "WhoId": leads[3], "Subject": "Call"}]},
    )[0]["id"]  # fmt: skip
    made = sf.Task.get(task)
    assert made["CreatedById"] == made["LastModifiedById"] == me
    sim.org.update("Task", task, {"Status": "Completed"}, datetime.now(UTC))
    assert sf.Task.get(task)["LastModifiedById"] == person


def _object(record_id: str) -> str:
    return "Lead" if record_id.startswith("00Q") else "Contact"
