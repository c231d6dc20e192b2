"""The report's numbers on a constructed audit trail, and the HTML file a manager opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_qualify.connector.cli import main
from crm_qualify.connector.model import Contact, FieldUpdate, PlannedTask, RecordUpdate, Stage
from crm_qualify.connector.ops.report import build_report, crm_snapshot, text_report
from crm_qualify.connector.ops.report_html import html_report
from crm_qualify.connector.sync.state import StateStore

from tests.memory_adapter import MemoryAdapter

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


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


def task(key: str, kind: str, due: datetime) -> PlannedTask:
    return PlannedTask(key=key, contact_id="x", kind=kind, subject="s", due=due)


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
    store.mark_tasks_pending(
        "default",
        run,
        [
            task("crmq:contact:a:hot_call:2026-W40", "hot_call", T0 + day),
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
        "target_hours": 24, "created": 2, "due_by_now": 1, "escalated": 1, "on_time_rate": 0.0, "not_yet_in_crm": 0,
    }  # fmt: skip
    assert report.sla["mql_handoff"]["on_time_rate"] == 1.0


def test_html_report_is_one_self_contained_file(tmp_path, capsys):
    store = trail(tmp_path / "s.sqlite")
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n")
    target = tmp_path / "report.html"
    assert main(["report", "--config", str(config), "--html", str(target)]) == 0
    assert "lead -> mql: 67%" in capsys.readouterr().out
    html = target.read_text()
    assert html.count("<svg") >= 3
    assert "<script" not in html and "http://" not in html and "https://" not in html
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
    assert report.source == "audit trail and CRM" and report.contacts == 4
    assert dict(report.stages) == {"sql": 1, "mql": 1, "lead": 1, "opportunity": 1}
    assert [report.reached[s] for s in ("lead", "mql", "sql", "opportunity")] == [4, 3, 2, 1]
    assert report.median_days["lead"] == 3.0, "time in stage still comes from the trail"
    assert dict(report.scores)["80-89"] == 1 and sum(n for _, n in report.scores) == 3
    assert report.temperatures == {"hot": 1, "warm": 2}
    assert report.sla["hot_call"]["done_in_crm"] == 1
    assert report.sla["mql_handoff"]["done_in_crm"] == 0
    assert "1 done in the CRM" in text_report(report)
    assert "done in the CRM" in html_report(report)
