"""What both simulators' duplicate tests check, on the labelled seed (adapters/seeded_people.py):
`crm-qualify duplicates --json` run as a user runs it, its groups scored pairwise on the labels,
and the person the state store's identity index gives a record."""

from __future__ import annotations

import contextlib
import io
import json

from crm_qualify.adapters.seeded_people import SeededPeople, score_pairs
from crm_qualify.connector.cli import main
from crm_qualify.connector.settings import load_settings
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.state import StateStore


def duplicates_json(config: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["duplicates", "--json", "--config", config]) == 0
    return json.loads(out.getvalue())


def labelled(report: dict, placed: dict[str, tuple[str, str]]) -> list[dict]:
    """The report's groups with their members as seed labels (other records by key)."""
    label_of = {key: label for label, key in placed.items()}
    return [
        {
            "labels": [
                label_of.get((m["object_type"], m["id"]), f"{m['object_type']}:{m['id']}")
                for m in group["members"]
            ],
            "rules": set(group["rules"]),
        }
        for group in report["groups"]
    ]


def check_report(crm: str, seed: SeededPeople, report: dict, placed: dict) -> None:
    """The seeded groups found with their rules, no near-miss grouped, the no-one records
    flagged; prints the pairwise figures."""
    groups = labelled(report, placed)
    figures = score_pairs(seed, [g["labels"] for g in groups])
    print(
        f"\n{crm}: pairwise precision {figures.precision:.3f}"
        f" ({figures.true_positives}/{figures.found}), recall {figures.recall:.3f}"
        f" ({figures.true_positives}/{figures.expected}); {len(report['groups'])} groups,"
        f" {len(report['flagged'])} flagged, of {report['records']} records"
    )
    assert figures.recall >= 0.95, figures.missed_pairs
    assert figures.precision >= 0.95, figures.false_pairs
    person = {record.label: record.person for record in seed.records}
    found = {person[g["labels"][0]]: g for g in groups if g["labels"][0] in person}
    for name, members in seed.expected_groups.items():
        assert set(found[name]["labels"]) == set(members), name
        assert seed.expected_rules[name] <= found[name]["rules"], (name, found[name]["rules"])
    for near_miss in seed.near_misses:
        assert not any(set(near_miss) <= set(g["labels"]) for g in groups), near_miss
    flagged = {(r["object_type"], r["id"]): {f["rule"] for f in r["flags"]} for r in
               report["flagged"]}  # fmt: skip
    for label, rules in seed.expected_flags.items():
        assert rules <= flagged.get(placed[label], set()), label


def person_of(config: str, key: tuple[str, str]) -> str | None:
    """The person the state store's identity index gives a record (None: not indexed)."""
    settings = load_settings(config)
    store = StateStore(settings.sync.state_path)
    try:
        found = People(store).stored(settings.crm.instance, [key])
    finally:
        store.close()
    return found[key].key if key in found else None


def merged_ids(config: str, key: tuple[str, str]) -> list[str] | None:
    """The merge trail the mirror holds for a record (None: not mirrored)."""
    settings = load_settings(config)
    store = StateStore(settings.sync.state_path)
    try:
        for batch in store.mirrored_contacts(settings.crm.instance):
            for contact in batch:
                if (contact.object_type, contact.id) == key:
                    return contact.merged_ids
    finally:
        store.close()
    return None
