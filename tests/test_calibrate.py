"""`crm-qualify calibrate` on people drawn from the hidden true model (adapters/true_outcomes.py):
it must find the signals that really precede a win, beat a wrong rule set on later people it
never saw, withhold a proposal on too little data, and never learn from the sale itself."""

from __future__ import annotations

import json
import random
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crm_qualify.adapters.true_outcomes import STRONG, WEAK, as_contact, draw_people
from crm_qualify.connector.cli import main
from crm_qualify.connector.commands.score import layered_rules
from crm_qualify.connector.decision.calibration.calibrate import Calibration, calibrate
from crm_qualify.connector.decision.calibration.dataset import build_dataset
from crm_qualify.connector.decision.calibration.proposal import proposal_toml
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.rules import Rules, rules_version
from crm_qualify.connector.model import EventType
from crm_qualify.connector.ops.calibrate_html import _x
from crm_qualify.connector.sync.state import StateStore

NOW = datetime(2026, 9, 1, tzinfo=UTC)
SETTINGS = CalibrateSettings()
TITLES = {"fit": {"titles": [{"contains": ["ceo", "cto", "vp", "head", "director"], "points": 10}]}}
RULES = Rules.model_validate(TITLES)
WRONG = Rules.model_validate(
    {
        **TITLES,
        "weights": {"demo_request": 0, "meeting_booked": 0, "email_reply": 0,
                    "webinar_attended": 0, "content_download": 40, "webinar_registered": 40,
                    "email_click": 15, "email_open": 10},
        "caps": {"content_download": 40, "webinar_registered": 40, "email_click": 45,
                 "email_open": 50},
    }
)  # fmt: skip
"""Points on the weak signals and none on the strong ones: what a bad guess looks like."""


@pytest.fixture(scope="module")
def contacts():
    return [as_contact(p) for p in draw_people(random.Random(11), 3000, NOW)]


def dataset(contacts):
    return build_dataset(contacts, SETTINGS, NOW - timedelta(days=730), NOW, "mirror")


@pytest.fixture(scope="module")
def result(contacts) -> Calibration:
    return calibrate(dataset(contacts), RULES, SETTINGS)


def by_key(result: Calibration):
    return {report.feature.key: report for report in result.features}


def test_the_truly_strong_signals_rank_above_the_weak_ones(result):
    reports = by_key(result)
    for strong in STRONG:
        for weak in WEAK:
            a, b = reports[f"weights.{strong.value}"], reports[f"weights.{weak.value}"]
            assert a.lift.lift > b.lift.lift, (strong, weak)
            assert a.lift.low > 1, f"{strong} is a real effect: its interval excludes 1"
            assert a.fitted.points > b.fitted.points + 10, (strong, weak)


def test_the_proposal_beats_a_wrong_configuration_on_the_held_out_people(contacts):
    found = calibrate(dataset(contacts), WRONG, SETTINGS)
    evaluation = found.evaluation
    assert found.withheld is None and evaluation is not None
    assert evaluation.proposed.auc > evaluation.current.auc + 0.1, evaluation.as_dict()
    assert evaluation.better
    weights = {c.key: c.new for c in found.changes}
    assert weights["weights.demo_request"] > weights["weights.content_download"]


def test_too_little_data_withholds_the_proposal(contacts):
    found = calibrate(dataset(contacts[:400]), RULES, SETTINGS)
    assert found.withheld and "proposal withheld" in found.withheld
    assert "calibrate.min_people" in found.withheld
    assert found.changes == [] and found.proposed is None and found.evaluation is None
    assert found.ranked(), "the evidence is still shown"


def test_facts_stop_before_the_deal_was_created(contacts, result):
    """Sales calls and meetings after the deal is opened are in the contacts, not the facts."""
    assert any(e.type is EventType.CALL for c in contacts for e in c.events)
    for example in result.dataset.examples:
        assert all(event.at < example.cutoff for event in example.facts.events)
        assert example.facts.deals == [] and example.facts.stage is None
    assert by_key(result)["weights.call"].lift.carriers == 0


def test_the_proposal_stays_our_model(result):
    reports = by_key(result)
    quote = reports["weights.quote_request"]
    assert quote.lift.carriers == 0 and quote.fitted.status == "too little data"
    assert quote.fitted.points == RULES.weights[EventType.QUOTE_REQUEST], "keeps its points"
    assert "weights.quote_request" not in {c.key for c in result.changes}
    free_mail = reports["negatives.free_mail"]
    assert free_mail.fitted.points < 0, "negatives stay negative"
    for change in result.changes:
        if change.key.startswith("weights."):
            assert 0 <= change.new <= SETTINGS.max_weight and change.new == int(change.new)
        if change.key.startswith("caps."):
            assert change.new <= 100
    new_industries = [key for key in reports if key.startswith("fit.industries.")]
    assert len(new_industries) == 6, "every industry seen often enough is measured"
    statuses = {key: reports[key].fitted.status for key in new_industries}
    assert "not significant" in statuses.values(), "a new trait needs evidence to get points"
    changed = {c.key for c in result.changes}
    assert not {k for k, s in statuses.items() if s == "not significant"} & changed
    assert reports["fit.industries.Technology"].fitted.points > 0


def test_the_proposal_file_holds_the_changed_keys_with_evidence_and_applies(result, tmp_path):
    text = proposal_toml(result, RULES, NOW)
    document = tomllib.loads(text)["rules"]
    assert set(document) <= {"weights", "caps", "fit", "negatives", "thresholds"}
    keys = [line.split(" = ")[0] for line in text.splitlines() if " = " in line]
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if " = " in line and "# was" in line:
            assert lines[index - 1].startswith("# "), f"no evidence above {line!r}"
    assert "demo_request" in keys and "quote_request" not in keys
    base = tmp_path / "base.toml"
    base.write_text('[[rules.fit.titles]]\ncontains = ["ceo", "cto", "vp", "head", "director"]\n'
                    "points = 10\n")  # fmt: skip
    proposal = tmp_path / "proposal.toml"
    proposal.write_text(text)
    applied = layered_rules(proposal, layered_rules(base, Rules()))
    assert rules_version(applied) == rules_version(result.proposed)


def test_calibrate_from_the_mirror_makes_no_api_call_and_writes_its_outputs(
    contacts, tmp_path, capsys, monkeypatch
):
    """HubSpot without a token: building the adapter would stop the command (exit 2)."""
    monkeypatch.delenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", raising=False)
    state = tmp_path / "state.sqlite"
    store = StateStore(state)
    store.mirror.upsert("default", contacts[:1500], NOW)
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[crm]\nadapter = "hubspot"\n[sync]\nstate_path = "{state}"\n'
        "[calibrate]\nmin_people = 500\nmin_conversions = 60\n"
    )
    out, html = tmp_path / "p.toml", tmp_path / "r.html"
    code = main(["calibrate", "--config", str(config), "--until", NOW.isoformat(), "--json",
                 "--out", str(out), "--html", str(html)])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["source"] == "mirror" and report["api_requests"] == 0
    assert report["impact"]["contacts"] == 1500
    assert report["people"] >= 500 and report["withheld"] is None
    assert report["evaluation"]["proposal_ranks_better"] in (True, False)
    assert tomllib.loads(out.read_text())["rules"]["weights"]
    assert "<svg" in html.read_text() and "Lift per signal" in html.read_text()


def mirrored_config(contacts, tmp_path, name: str) -> Path:
    """A configuration over a mirror large enough for a proposal, as the user keeps it."""
    state = tmp_path / "state.sqlite"
    store = StateStore(state)
    store.mirror.upsert("default", contacts[:1500], NOW)
    store.close()
    config = tmp_path / name
    config.write_text(
        f'[sync]\nstate_path = "{state}"\n[schedule]\ninterval_minutes = 30\n'
        "[calibrate]\nmin_people = 500\nmin_conversions = 60\n"
    )
    return config


@pytest.mark.parametrize("found", ["--config", "CRMQ_CONFIG", "./crm-qualify.toml"])
def test_the_proposal_is_never_written_over_the_configuration_it_read(
    found, contacts, tmp_path, capsys, monkeypatch
):
    """`--out` naming the configuration replaced it with the proposal's [rules] keys alone
    (the schedule and the rest lost) while saying nothing was applied."""
    config = mirrored_config(contacts, tmp_path, "crm-qualify.toml")
    before = config.read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRMQ_CONFIG", raising=False)
    args = ["calibrate", "--until", NOW.isoformat(), "--out", str(tmp_path / "." / config.name)]
    if found == "--config":
        args += ["--config", config.name]
    elif found == "CRMQ_CONFIG":
        monkeypatch.setenv("CRMQ_CONFIG", str(config))
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2 and config.read_text() == before
    assert "calibrate:" not in captured.out, "refused before reading any contact"
    assert f"--out {tmp_path / '.' / config.name}" in captured.err
    assert f"({config})" in captured.err or f"({config.name})" in captured.err


def test_the_report_page_is_never_written_over_the_configuration_either(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[schedule]\ninterval_minutes = 30\n")
    code = main(["calibrate", "--config", str(config), "--html", str(config)])
    assert code == 2 and config.read_text() == "[schedule]\ninterval_minutes = 30\n"
    assert f"--html {config} is the configuration file" in capsys.readouterr().err


def test_an_earlier_proposal_file_is_overwritten(contacts, tmp_path, capsys):
    config = mirrored_config(contacts, tmp_path, "c.toml")
    out = tmp_path / "p.toml"
    out.write_text("# last quarter's proposal\n")
    code = main(["calibrate", "--config", str(config), "--until", NOW.isoformat(),
                 "--out", str(out)])  # fmt: skip
    assert code == 0 and tomllib.loads(out.read_text())["rules"]["weights"]
    assert "nothing was applied" in capsys.readouterr().out


def test_a_handful_of_people_is_fitted_with_fewer_folds(tmp_path, capsys):
    """Six people, four of them to learn from: choosing the penalty on 4 earlier-to-later
    folds needs 5 people, and calibrate stopped with scikit-learn's ValueError (exit 1)."""
    state = tmp_path / "state.sqlite"
    store = StateStore(state)
    store.mirror.upsert(
        "default", [as_contact(p) for p in draw_people(random.Random(0), 20, NOW)], NOW
    )
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[sync]\nstate_path = "{state}"\n[calibrate]\nhorizon_days = 100000\nmin_people = 1\n'
        "min_conversions = 1\nmin_holdout_conversions = 1\nmin_carriers = 1\n"
        "min_carrier_conversions = 1\n"
    )
    code = main(["calibrate", "--config", str(config), "--until", NOW.isoformat(), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert (report["people"], report["evaluation"]["train_people"]) == (6, 4)
    assert report["evaluation"]["regularisation_c"] == 1.0, "no fold to compare: the default"


@pytest.mark.parametrize("won", [True, False])
def test_people_to_learn_from_of_one_outcome_withhold_the_proposal(won, contacts):
    """Seven earlier people who all won stopped the fit (a regression needs both outcomes);
    who all lost, they made a 'proposal' that had learnt nothing."""
    import dataclasses

    found = dataset(contacts)
    earlier, later = found.examples[:1000], found.examples[1000:]
    head = [e for e in earlier if e.won is won][:7]
    tail = [next(e for e in later if e.won), *[e for e in later if not e.won][:2]]
    few = dataclasses.replace(found, examples=head + sorted(tail, key=lambda e: e.outcome_at))
    lowered = CalibrateSettings(min_people=1, min_conversions=1, min_holdout_conversions=1,
                                min_carriers=1, min_carrier_conversions=1)  # fmt: skip
    result = calibrate(few, RULES, lowered)
    assert result.withheld and "the earlier 7 people" in result.withheld, result.withheld
    assert f"{7 if won else 0} conversion(s)" in result.withheld
    assert result.proposed is None and result.changes == [] and result.ranked()


def test_too_little_data_exits_3_and_writes_no_proposal(contacts, tmp_path, capsys):
    state = tmp_path / "state.sqlite"
    store = StateStore(state)
    store.mirror.upsert("default", contacts[:300], NOW)
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(f'[sync]\nstate_path = "{state}"\n')
    out = tmp_path / "p.toml"
    code = main(["calibrate", "--config", str(config), "--until", NOW.isoformat(),
                 "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 3 and not out.exists()
    assert "proposal withheld" in text and "1,000 people" in text


def test_what_would_move_is_counted_per_person_as_a_run_decides(tmp_path):
    """Two records of one person: alone, the quiet one stays a cold lead under either rule
    set; as the run decides them (merged), both records move when the demo request's points
    cross the proposed threshold. The impact counts both, as the dry run would."""
    from crm_qualify.connector.decision.calibration.impact import impact
    from crm_qualify.connector.decision.calibration.sources import mirrored_people
    from crm_qualify.connector.decision.identity_rules import IdentityRules
    from crm_qualify.connector.model import Contact, EngagementEvent
    from crm_qualify.connector.sync.people import People

    def record(cid: str, days: int, **fields) -> Contact:
        return Contact(id=cid, email="kim@acme.example", first_name="Kim", last_name="Lee",
                       created_at=NOW - timedelta(days=days), **fields)  # fmt: skip

    demo = [EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(days=1))]
    pair = [record("A", 30), record("B", 3, events=demo)]
    loner = Contact(id="Z", email="zed@globex.example", created_at=NOW - timedelta(days=9))
    store = StateStore(tmp_path / "state.sqlite")
    store.mirror.upsert("i", [*pair, loner], NOW)
    index = People(store, IdentityRules())
    index.index("i", [*pair, loner])
    index.resolve("i", [*pair, loner])
    people = list(mirrored_people(store, "i", IdentityRules()))
    assert sorted(weight for _, weight in people) == [1, 2]
    thresholds = Rules().thresholds.model_copy(update={"mql": 30})
    lower = Rules().model_copy(update={"thresholds": thresholds})
    moved = impact(people, Rules(), lower, NOW)
    assert moved.contacts == 3 and moved.stage_changes == 2, moved
    assert moved.moves["lead -> mql"] == 2
    store.close()


def test_a_proposal_deciding_a_lower_stage_counts_it_kept_not_moved():
    """A run never moves a stage back: calibrate counted `mql -> lead` moves that the dry run
    with the proposal (and the run) never made."""
    from crm_qualify.connector.decision.calibration.impact import impact
    from crm_qualify.connector.model import Contact, EngagementEvent

    demo = [EngagementEvent(type=EventType.DEMO_REQUEST, at=NOW - timedelta(days=1))] * 2
    person = Contact(id="A", email="kim@acme.example", events=demo)
    lower = Rules().model_copy(
        update={"thresholds": Rules().thresholds.model_copy(update={"mql": 30})}
    )
    higher = Rules().model_copy(
        update={"thresholds": Rules().thresholds.model_copy(update={"mql": 90, "sql": 90})}
    )
    up, down = impact([(person, 1)], higher, lower, NOW), impact([(person, 1)], lower, higher, NOW)
    assert (up.stage_changes, up.stages_kept, up.moves["lead -> mql"]) == (1, 0, 1), up
    assert (down.stage_changes, down.stages_kept, down.moves["mql -> lead"]) == (0, 1, 0), down


def test_mql_or_beyond_under_the_proposal_keeps_the_stages_a_run_keeps():
    """'MQL or beyond' counted the proposal's decisions, stage fall-backs included: 404 -> 401
    beside '1 lead -> mql, 4 kept', where a run leaves 405 at MQL or beyond."""
    from crm_qualify.connector.decision.calibration.impact import impact
    from crm_qualify.connector.model import Contact, EngagementEvent

    def person(cid: str, signal: EventType) -> Contact:
        events = [EngagementEvent(type=signal, at=NOW - timedelta(days=1))]
        return Contact(id=cid, email=f"{cid}@acme.example", events=events)

    def mql_at(points: int, download: int) -> Rules:
        return Rules.model_validate(
            {"thresholds": {"mql": points}, "weights": {"content_download": download},
             "caps": {"content_download": download}}
        )  # fmt: skip

    kept = person("kept", EventType.DEMO_REQUEST)
    promoted = person("new", EventType.CONTENT_DOWNLOAD)
    moved = impact([(kept, 4), (promoted, 1)], mql_at(35, 10), mql_at(45, 50), NOW)
    assert (moved.stage_changes, moved.stages_kept, moved.moves["lead -> mql"]) == (1, 4, 1)
    assert moved.mql_or_above == (4, 5), "the 4 fall-backs stay MQL, 1 is promoted"
    assert moved.as_dict()["mql_or_above"] == {"current": 4, "proposed": 5}


def test_a_lift_with_no_carrier_wins_lies_inside_its_interval():
    """The corrected interval of a signal no carrier won with ([0.135, 28.7] for 6
    carriers) left its lift of 0 outside, and the page drew the dot beside its bar."""
    import numpy as np
    from crm_qualify.connector.decision.calibration.evidence import lift

    carrier = np.array([True] * 6 + [False] * 200)
    won = np.array([False] * 6 + [True] * 40 + [False] * 160)
    found = lift(carrier, won)
    assert found.lift == 0 and found.low == 0 and found.high > 1 and not found.excludes_one


def test_the_evidence_shown_is_the_one_the_proposal_decided_on(result):
    """Significance and 'enough data' are judged on the training people; the interval shown
    was everyone's, so a new industry could be proposed with a printed interval holding 1."""
    checked = 0
    for report in result.features:
        fitted = report.fitted
        if fitted is None or report.feature.configured:
            continue
        if fitted.status == "not significant":
            assert not report.lift.excludes_one, report.feature.key
            checked += 1
        elif fitted.status == "fitted":
            assert report.lift.excludes_one, report.feature.key
            checked += 1
    assert checked, "the seeded people carry traits the rules do not know"


def test_the_threshold_says_which_people_its_share_is_of(result):
    """'hands over 4% of people, as today's rules do (3%)' read as a contradiction: the share
    is the training people's, the nearest whole score allows to today's."""
    (threshold,) = [c for c in result.changes if c.key == "thresholds.mql"]
    assert "of the training people, the nearest whole score to the" in threshold.evidence


def test_large_lifts_stay_apart_on_the_page():
    """The lift bars stopped at 4: a demo request at 6.5 and a meeting at 4 looked alike."""
    assert _x(1) == 50, "no difference in the middle"
    assert _x(4) < _x(6.53) < _x(16) == 100
    assert 50 - _x(0.5) == _x(2) - 50, "half as likely as far below as twice above"
    assert _x(0) == 0, "a lift of 0 (no win among carriers) at the left edge"
