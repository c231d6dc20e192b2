"""One person, one follow-up, against an org seeded with labelled duplicates (Leads and the
Contacts they duplicate), as a user runs it: `crm-qualify sync --once`, then
`crm-qualify duplicates --json`, over real TLS. A merge is made as Salesforce makes it, by
the partner API's SOAP `merge()` call.

The figures (pairwise precision and recall on the seed's labels) are printed (`pytest -s`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.adapters.seeded_people import seeded_people
from crm_qualify.connector.cli import main

from tests.duplicates_checks import check_report, duplicates_json, merged_ids, person_of
from tests.salesforce.conftest import crmq_tasks

SEED = seeded_people("salesforce")


@dataclass
class Synced:
    sim: SalesforceSimulator
    config: str
    report: dict
    tasks: dict[str, list[str]]
    """crm-qualify task keys by person (WhoId) after the first sync."""


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Iterator[Synced]:
    """One org with the seed, synced once; the report is taken right after that sync."""
    folder = tmp_path_factory.mktemp("salesforce-duplicates")
    with SalesforceSimulator(records=60, seed=11, duplicates=True) as sim:
        options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.adapter_options().items())
        config = folder / "crm-qualify.toml"
        config.write_text(
            f"[crm]\nadapter = 'salesforce'\n[adapters.salesforce]\n{options}"
            f"[sync]\nstate_path = '{folder / 'state.sqlite'}'\n"
        )
        assert main(["sync", "--once", "--config", str(config)]) == 0
        yield Synced(sim, str(config), duplicates_json(str(config)), crmq_tasks(sim))


def test_the_report_finds_the_seeded_groups_and_leaves_the_near_misses_apart(synced):
    check_report("salesforce", SEED, synced.report, synced.sim.seeded_people)


def test_a_person_held_by_a_contact_and_two_leads_gets_one_call(synced):
    records = [synced.sim.seeded_people[label] for label in SEED.expected_groups[SEED.hot_trio]]
    assert {sobject for sobject, _ in records} == {"Lead", "Contact"}
    keys = [key for _, record in records for key in synced.tasks.get(record, [])]
    calls = [key for key in keys if ":hot_call:" in key]
    assert len(calls) == 1, keys
    assert len(keys) == len({key.split(":")[3] for key in keys}), "each follow-up once"


def soap_merge(sim: SalesforceSimulator, sobject: str, master: str, victim: str) -> str:
    """A consultant's script merging two records through the partner API."""
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope'
        ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{sim.session_id}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:merge><urn:request>"
        f"<urn:masterRecord><urn1:type>{sobject}</urn1:type><urn1:Id>{master}</urn1:Id>"
        f"</urn:masterRecord><urn:recordToMergeIds>{victim}</urn:recordToMergeIds>"
        "</urn:request></urn:merge></soapenv:Body></soapenv:Envelope>"
    )
    session = requests.Session()
    session.trust_env = False  # the simulator's own CA, whatever the environment says
    answer = session.post(
        f"{sim.instance_url}/services/Soap/u/{sim.api_version}",
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'},
        verify=sim.ca_bundle_path,
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def test_a_merge_in_salesforce_creates_no_new_task_and_keeps_the_person(synced):
    """A rep merges the hot pair (two Leads) in Salesforce: the victim is deleted with
    MasterRecordId, its tasks move to the master; the next sync reads the master's merge
    trail by queryAll and creates nothing new."""
    sim = synced.sim
    (_, older), (_, newer) = (sim.seeded_people[label] for label in
                              SEED.expected_groups[SEED.hot_pair])  # fmt: skip
    before = crmq_tasks(sim)
    pair_tasks = sorted(before.get(older, []) + before.get(newer, []))
    assert pair_tasks, "the hot pair had its follow-up after the first sync"

    sim.merge(newer, [older])

    victim = sim.org.records["Lead"][older]
    assert victim["IsDeleted"] and victim["MasterRecordId"] == newer
    assert sorted(crmq_tasks(sim).get(newer, [])) == pair_tasks, "tasks reparented"

    assert main(["sync", "--once", "--config", synced.config]) == 0

    after = crmq_tasks(sim)
    assert sum(map(len, after.values())) == sum(map(len, before.values())), "no new task"
    assert sorted(after.get(newer, [])) == pair_tasks
    assert merged_ids(synced.config, ("Lead", newer)) == [older], "read from queryAll"
    assert person_of(synced.config, ("Lead", newer)) in {f"Lead:{older}", f"Lead:{newer}"}


def test_the_soap_merge_call_answers_as_salesforce(synced):
    """`merge()` through the partner API: a MergeResult per request, the victim found by
    queryAll with MasterRecordId, records of another type refused in their own result."""
    sim = synced.sim
    (_, master), (_, victim) = (sim.seeded_people[label] for label in
                                SEED.expected_groups["gmail"])  # fmt: skip
    answer = soap_merge(sim, "Lead", master, victim)
    assert f"<id>{master}</id><mergedRecordIds>{victim}</mergedRecordIds>" in answer
    assert "<success>true</success>" in answer
    rows = sim.query(
        f"SELECT Id, MasterRecordId FROM Lead WHERE IsDeleted = true AND Id = '{victim}'",
        None,
        deleted=True,
    )["records"]
    assert [(r["Id"], r["MasterRecordId"]) for r in rows] == [(victim, master)]
    (_, contact), (_, lead) = (sim.seeded_people[label] for label in
                               SEED.expected_groups["case"])  # fmt: skip
    refused = soap_merge(sim, "Contact", contact, lead)
    assert "<success>false</success>" in refused and "INVALID_ID_FIELD" in refused
    assert not sim.org.records["Lead"][lead]["IsDeleted"]
