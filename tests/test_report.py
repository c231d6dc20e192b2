"""The report's numbers on a constructed audit trail, and the HTML file a manager opens."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.cli import main
from crm_qualify.connector.model import Contact, FieldUpdate, PlannedTask, RecordUpdate, Stage
from crm_qualify.connector.ops.report import (
    NO_STAGE,
    build_report,
    crm_snapshot,
    stage_rows,
    text_report,
)
from crm_qualify.connector.ops.report_html import TEMPERATURE_COLORS, html_report
from crm_qualify.connector.sync.state import TASK_CLOSED, StateStore

from tests.memory_adapter import MemoryAdapter

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def write(store, run_id, contact, field, old, new, at):
    store.record_writes(
        run_id, "default",
        [RecordUpdate(contact_id=contact, changes=[FieldUpdate(field=field, old=old, new=new)])],
    )  # fmt: skip
    with store._tx() as conn:
        conn.execute(
            "UPDATE field_writes SET at = ? WHERE seq = (SELECT MAX(seq) FROM field_writes)",
            (at.isoformat(),),
        )


def task(key: str, kind: str, due: datetime, contact: str = "x", **fields) -> PlannedTask:
    return PlannedTask(key=key, contact_id=contact, kind=kind, subject="s", due=due, **fields)


A_CALL = "crmq:contact:a:hot_call:2026-W40"
A_REASONS = "+40 demo request 2026-09-30\n+20 webinar attended 2026-09-20\n+10 email reply\n+5 x"


def trail(path) -> StateStore:
    store = StateStore(path)
    run = store.start_run("default", mode="once", dry_run=False)
    day = timedelta(days=1)
    for contact, steps in {
        "a": [(None, "lead", 0), ("lead", "mql", 2), ("mql", "sql", 5)],
        "b": [(None, "lead", 0), ("lead", "mql", 4)],
        "c": [(None, "lead", 0)],
    }.items():
        for old, new, days in steps:
            write(store, run, contact, "stage", old, new, T0 + days * day)
    for contact, score, heat in (("a", 80, "hot"), ("b", 65, "warm"), ("c", 20, "cold")):
        write(store, run, contact, "score", None, score, T0)
        write(store, run, contact, "temperature", None, heat, T0)
    write(store, run, "a", "reasons", None, A_REASONS, T0)
    a_call = task(A_CALL, "hot_call", T0 + day, "a", owner_id="owner-7")
    a_call.subject = "Call hot lead Ada Lovelace (Analytical Engines) within 24 h"
    store.mark_tasks_pending(
        "default",
        run,
        [
            a_call,
            task("crmq:contact:a:hot_call:2026-W40:escalation", "escalation", T0 + 3 * day),
            task("crmq:contact:b:mql_handoff", "mql_handoff", T0 + 2 * day),
            task("crmq:contact:c:hot_call:2026-W60", "hot_call", NOW + day),
        ],
    )
    created = [(t.key, f"T{n}") for n, t in enumerate(store.all_tasks("default"))]
    store.mark_tasks_created("default", created)
    store.finish_run(run, "ok", {}, [])
    return store


def test_funnel_conversion_time_in_stage_scores_and_sla(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    report = build_report(store, "default", NOW)
    assert report.contacts == 3
    assert dict(report.stages) == {"sql": 1, "mql": 1, "lead": 1}
    assert [report.reached[s] for s in ("lead", "mql", "sql", "opportunity")] == [3, 2, 1, 0]
    assert report.conversions[:3] == [
        ("lead", "mql", 0.667),
        ("mql", "sql", 0.5),
        ("sql", "opportunity", 0.0),
    ]
    assert report.median_days["lead"] == 3.0
    assert report.median_days["mql"] == 3.0
    assert report.median_days["sql"] is None
    assert dict(report.scores)["80-89"] == 1 and dict(report.scores)["60-69"] == 1
    assert report.temperatures == {"hot": 1, "warm": 1, "cold": 1}
    assert report.sla["hot_call"] == {
        "target_hours": 24, "created": 2, "due_by_now": 1, "escalated": 1, "on_time_rate": 0.0,
        "not_yet_in_crm": 0, "closed_by_rollback": 0, "next_due": (NOW + DAY).isoformat(),
    }  # fmt: skip
    assert report.sla["mql_handoff"]["on_time_rate"] == 1.0


def test_stage_rows_add_up_to_the_total_in_every_form(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    run = store.start_run("default", mode="once", dry_run=False)
    write(store, run, "d", "score", None, 10, T0)  # scored; its stage was already right
    write(store, run, "e", "stage", None, "subscriber", T0)
    report = build_report(store, "default", NOW)
    assert report.contacts == 5 and report.no_stage == 1
    rows = stage_rows(report)
    assert [label for label, *_ in rows] == [s.value for s in Stage] + [NO_STAGE]
    assert sum(count for _, count, *_ in rows) == report.contacts

    text = text_report(report)
    table = text.split("\nstage ")[1].split("\nconversion:")[0]
    counts = dict(re.findall(r"^  (\w[\w -]*?) +(\d+)", table, re.M))
    assert {"target", "subscriber", NO_STAGE, "total"} <= set(counts)
    assert sum(int(n) for label, n in counts.items() if label != "total") == int(counts["total"])
    assert counts["total"] == "5" and counts["subscriber"] == "1" and counts[NO_STAGE] == "1"
    document = report.as_dict()
    assert sum(document["stages"].values()) + document["no_stage"] == document["contacts"]
    json.dumps(document)


def test_a_missing_number_says_what_is_missing(tmp_path):
    report = build_report(trail(tmp_path / "s.sqlite"), "default", NOW)
    text, html = text_report(report), html_report(report)
    assert "no contact has left this stage yet" in text  # sql: entered, never left
    assert "no contact has entered this stage yet" in text  # opportunity
    assert "opportunity -> customer: no contact has reached opportunity yet" in text
    assert "no contact has left this stage yet" in html
    assert "–" not in html and " - " not in text.split("records needing attention")[0]
    assert "What is measured" in html and "escalat" in html


def test_tasks_closed_by_a_rollback_do_not_count_as_created(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    store.set_task_status("default", A_CALL, TASK_CLOSED, None)
    row = build_report(store, "default", NOW).sla["hot_call"]
    assert row["created"] == 1 and row["closed_by_rollback"] == 1
    assert row["due_by_now"] == 0 and row["on_time_rate"] is None
    text = text_report(build_report(store, "default", NOW))
    assert "hot_call (within 24 h): none due yet; 1 created, none due yet" in text
    assert "1 closed by a rollback (not counted)" in text


def test_hot_leads_to_call_from_the_trail_and_the_task_ledger(tmp_path):
    report = build_report(trail(tmp_path / "s.sqlite"), "default", NOW)
    assert report.hot_total == 1
    (lead,) = report.hot
    assert (lead.record, lead.name, lead.company, lead.owner) == (
        "contact/a", "Ada Lovelace", "Analytical Engines", "owner-7",
    )  # fmt: skip
    assert lead.score == 80 and lead.reasons == A_REASONS.split("\n")[:3]
    assert lead.waiting_since == T0 and lead.waited(NOW) == NOW - T0
    text = text_report(report)
    assert "hot leads to call now: 1" in text
    assert "1. Ada Lovelace, Analytical Engines (contact/a), owner owner-7, score 80," in text
    assert "waiting 52 days" in text and "+40 demo request 2026-09-30" in text
    html = html_report(report)
    assert "Ada Lovelace" in html and "Analytical Engines" in html and "owner owner-7" in html
    assert '<span class="late">52 days</span>' in html
    hot = report.as_dict()["hot_leads_to_call"][0]
    assert hot["name"] == "Ada Lovelace" and hot["waited_hours"] == 52 * 24 + 3


def test_html_report_is_one_self_contained_file(tmp_path, capsys):
    store = trail(tmp_path / "s.sqlite")
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n")
    target = tmp_path / "report.html"
    assert main(["report", "--config", str(config), "--html", str(target)]) == 0
    assert "lead -> mql: 67%" in capsys.readouterr().out
    html = target.read_text()
    assert 'name="viewport"' in html and "@media (max-width:620px)" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "<svg" not in html and ' width="' not in html, "no fixed-width chart to clip"
    assert build_report(StateStore(tmp_path / "s.sqlite"), "default").contacts == 3
    assert html_report(build_report(StateStore(tmp_path / "s.sqlite"), "default")).startswith(
        "<!doctype html>"
    )


def test_a_score_rolled_back_to_empty_leaves_the_distribution(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    undo = store.start_run("default", mode="rollback of x", dry_run=False)
    write(store, undo, "a", "score", 80, None, NOW)
    write(store, undo, "a", "temperature", "hot", None, NOW)
    report = build_report(store, "default", NOW)
    assert dict(report.scores)["80-89"] == 0 and sum(n for _, n in report.scores) == 2
    assert report.temperatures == {"warm": 1, "cold": 1}
    assert report.contacts == 3, "its stage history still counts"


def test_a_crm_snapshot_counts_contacts_the_trail_never_touched(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    a_call = "crmq:contact:a:hot_call:2026-W40"
    crm = MemoryAdapter(
        [
            Contact(id="a", stage=Stage.SQL, owned={"score": "81", "temperature": "hot"}),
            Contact(id="b", stage=Stage.MQL, owned={"score": 65, "temperature": "warm"}),
            Contact(id="c", stage=Stage.LEAD, owned={"score": 20}),
            Contact(id="d", stage=Stage.OPPORTUNITY, owned={"temperature": "warm"}),
        ]
    )
    crm.tasks["T1"] = PlannedTask(key=a_call, contact_id="a", kind="hot_call", subject="s", due=T0)
    crm.closed_tasks.add("T1")
    snapshot = crm_snapshot(crm, NOW)
    assert snapshot.completed_tasks == {a_call}

    report = build_report(store, "default", NOW, snapshot)
    assert report.source.startswith("CRM") and report.contacts == 4
    assert dict(report.stages) == {"sql": 1, "mql": 1, "lead": 1, "opportunity": 1}
    assert [report.reached[s] for s in ("lead", "mql", "sql", "opportunity")] == [4, 3, 2, 1]
    assert report.median_days["lead"] == 3.0, "time in stage still comes from the trail"
    assert dict(report.scores)["80-89"] == 1 and sum(n for _, n in report.scores) == 3
    assert report.temperatures == {"hot": 1, "warm": 2} and report.no_temperature == 1
    assert report.sla["hot_call"]["done_in_crm"] == 1
    assert report.sla["mql_handoff"]["done_in_crm"] == 0
    assert "1 done in the CRM" in text_report(report)
    assert "done in the CRM" in html_report(report)
    assert report.hot == [] and report.hot_called == 1, "a's call is done: not to call again"


def test_from_crm_and_the_audit_view_agree_or_say_why(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    crm = MemoryAdapter(
        [
            Contact(id="a", stage=Stage.SQL, first_name="Ada", last_name="Lovelace",
                    company="Analytical Engines", owner_id="owner-7",
                    owned={"score": 81, "temperature": "hot", "reasons": A_REASONS}),
            Contact(id="b", stage=Stage.OPPORTUNITY, owned={"score": 65, "temperature": "hot"}),
            Contact(id="e", stage=Stage.LEAD, owned={}),
            Contact(id="f"),
        ]
    )  # fmt: skip
    crm.tasks["T1"] = PlannedTask(key=A_CALL, contact_id="a", kind="hot_call", subject="s", due=T0)
    batches = []
    report = build_report(store, "default", NOW, crm_snapshot(crm, NOW, batches.append))
    assert sum(batches) == 4, "progress is told about every contact read"
    assert report.contacts == 4 and report.stages["lead"] == 1 and report.no_stage == 1
    assert report.trail_stages == {"sql": 1, "mql": 1, "lead": 1}
    assert report.reconciliation == {
        "same_as_written": 1, "changed_since_written": 1, "written_but_not_in_crm": 1,
        "in_crm_never_written": 1,
    }  # fmt: skip
    text = text_report(report)
    assert "1 still hold, 1 were changed since (a person or a deal moved the contact)" in text
    assert "1 belong to contacts no longer in the CRM" in text
    assert "CRM now  crm-qualify wrote" in text
    assert "1 more hot contacts are opportunities or customers already" in text
    (lead,) = report.hot
    assert (lead.name, lead.company, lead.owner, lead.score) == (
        "Ada Lovelace", "Analytical Engines", "owner-7", 81,
    )  # fmt: skip
    assert lead.call == "call task open in the CRM" and lead.waiting_since == T0
    html = html_report(report)
    assert "crm-qualify wrote" in html and "changed since" in html


def test_temperature_colours_read_hot_to_cold(tmp_path):
    assert TEMPERATURE_COLORS == {"hot": "#dc2626", "warm": "#f59e0b", "cold": "#3b82f6"}
    html = html_report(build_report(trail(tmp_path / "s.sqlite"), "default", NOW))
    bars = re.findall(r'class="label">(\w+)</div><div class="track"><div class="fill" '
                      r'style="width:[\d.]+%;--c:(#\w+)"', html)  # fmt: skip
    assert [b for b in bars if b[0] in TEMPERATURE_COLORS] == list(TEMPERATURE_COLORS.items())
