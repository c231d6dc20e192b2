"""The report's numbers on a constructed audit trail, and the HTML file a manager opens."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.connector.cli import main
from crm_qualify.connector.decision.rules import FollowUpRules
from crm_qualify.connector.model import (
    Contact,
    ExistingTask,
    FieldUpdate,
    PlannedTask,
    RecordUpdate,
    Stage,
)
from crm_qualify.connector.ops.report import (
    NO_STAGE,
    CrmSnapshot,
    build_report,
    crm_snapshot,
    follow_up_sla,
    hot_notes,
    stage_rows,
    text_report,
    who_from_subject,
)
from crm_qualify.connector.ops.report_html import TEMPERATURE_COLORS, html_report
from crm_qualify.connector.sync.people import People
from crm_qualify.connector.sync.state import TASK_CLOSED, StateStore

from tests.fake_clock import set_state_clock
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
A_RECALL = "crmq:contact:a:hot_call:20261121T0600"
B_HANDOFF = "crmq:contact:b:mql_handoff"
C_CALL = "crmq:contact:c:hot_call:2026-W60"
HOUR = timedelta(hours=1)


def mirror(store: StateStore, contacts: list[Contact]) -> None:
    """Contacts as the engine's mirror holds them (read, plus the tasks it created)."""
    store.mirror.upsert("default", contacts, NOW)


def our_task(key: str, created: datetime, done: datetime | None = None) -> ExistingTask:
    return ExistingTask(
        id=f"T-{key}", key=key, created_at=created, completed=done is not None, completed_at=done
    )


HOT = {"temperature": "hot"}
"""A's temperature as crm-qualify wrote it: the mirror holds our acknowledged writes."""
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
            task(B_HANDOFF, "mql_handoff", T0 + 4 * day),
            task(C_CALL, "hot_call", NOW + 22 * HOUR),
        ],
    )
    created = [(t.key, f"T{n}") for n, t in enumerate(store.all_tasks("default"))]
    store.mark_tasks_created("default", created)
    store.finish_run(run, "ok", {}, [])
    # As the CRM showed the tasks at the last read: a's first call done 30 h after it was
    # created (late), a's second call open 30 h (missed), b's hand-off done in 5 h (on time),
    # c's call open for 2 h (pending).
    mirror(
        store,
        [
            Contact(
                id="a",
                owned=HOT,
                tasks=[
                    our_task(A_CALL, T0, T0 + 30 * HOUR),
                    our_task(A_RECALL, NOW - 30 * HOUR),
                    our_task(f"{A_CALL}:escalation", T0 + 3 * DAY),
                    ExistingTask(id="X", key=None, created_at=T0),  # not ours
                ],
            ),
            Contact(id="b", tasks=[our_task(B_HANDOFF, T0 + 2 * DAY, T0 + 2 * DAY + 5 * HOUR)]),
            Contact(id="c", tasks=[our_task(C_CALL, NOW - 2 * HOUR)]),
        ],
    )
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
        "target_hours": 24, "tasks": 3, "on_time": 0, "late": 1, "missed": 1, "pending": 1,
        "unmeasured": 0, "measured": 2, "on_time_rate": 0.0, "median_hours_to_done": 30.0,
        "next_deadline": (NOW + 22 * HOUR).isoformat(), "escalated": 1, "not_yet_in_crm": 0,
        "removed_by_us": 0,
        "deleted_in_crm": 0,
        "by_sla": [
            {"hours": 24, "tasks": 3, "on_time": 0, "late": 1, "missed": 1, "pending": 1,
             "first_created": T0.isoformat(), "last_created": (NOW - 2 * HOUR).isoformat()},
        ],
    }  # fmt: skip
    assert report.sla["mql_handoff"]["on_time_rate"] == 1.0
    assert report.sla["mql_handoff"]["median_hours_to_done"] == 5.0


def test_stage_rows_add_up_to_the_total_in_every_form(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    run = store.start_run("default", mode="once", dry_run=False)
    write(store, run, "d", "score", None, 10, T0)  # scored; its stage was already right
    write(store, run, "e", "stage", None, "subscriber", T0)
    mirror(store, [Contact(id="d"), Contact(id="e")])  # written, so read: mirrored
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
    assert "What is measured" in html and "completed by the due time crm-qualify gave it" in html


def test_tasks_closed_by_a_rollback_do_not_count_as_created(tmp_path):
    store = trail(tmp_path / "s.sqlite")
    store.set_task_status("default", A_CALL, TASK_CLOSED, None)
    row = build_report(store, "default", NOW).sla["hot_call"]
    assert row["tasks"] == 2 and row["removed_by_us"] == 1
    assert (row["late"], row["missed"], row["on_time_rate"]) == (0, 1, 0.0)
    text = text_report(build_report(store, "default", NOW))
    assert (
        "hot_call (within 24 h): 0% on time; 0 of 1 done within 24 h of their creation,"
        " 1 still open past 24 h (missed), 1 open and still within time (not counted yet)"
    ) in text
    assert "1 removed by crm-qualify (by a rollback, or doubled by a merge" in text


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


def test_a_hot_lead_is_red_past_its_call_tasks_due_not_todays_target(tmp_path):
    """Calls created under a 24 h target were red 8 h later once `hot_call_hours` was set to
    4, while the SLA section on the same page said they were within time."""
    store = trail(tmp_path / "s.sqlite")
    report = build_report(store, "default", NOW, followup=FollowUpRules(hot_call_hours=4))
    (lead,) = report.hot
    lead.waiting_since, lead.call_due = NOW - 8 * HOUR, NOW + 16 * HOUR
    assert '<span class="late">' not in html_report(report), "its call is due in 16 h"
    lead.call_due = NOW - HOUR
    assert '<span class="late">8 h</span>' in html_report(report)
    lead.call_due = None  # no call task yet: today's target
    assert '<span class="late">8 h</span>' in html_report(report)
    store.close()


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

    report = build_report(store, "default", NOW, snapshot)
    assert report.source.startswith("CRM") and report.contacts == 4
    assert dict(report.stages) == {"sql": 1, "mql": 1, "lead": 1, "opportunity": 1}
    assert [report.reached[s] for s in ("lead", "mql", "sql", "opportunity")] == [4, 3, 2, 1]
    assert report.median_days["lead"] == 3.0, "time in stage still comes from the trail"
    assert dict(report.scores)["80-89"] == 1 and sum(n for _, n in report.scores) == 3
    assert report.temperatures == {"hot": 1, "warm": 2} and report.no_temperature == 1
    sla = report.sla["hot_call"]
    assert (sla["tasks"], sla["unmeasured"]) == (1, 1), "measured on this read, not the mirror"
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


def test_follow_up_sla_counts_done_within_the_configured_hours_of_creation():
    def contact(cid: str, *tasks: ExistingTask) -> Contact:
        return Contact(id=cid, tasks=list(tasks))

    call = "crmq:contact:{}:hot_call:20261122T0900"
    contacts = [
        contact("1", our_task(call.format(1), NOW - 50 * HOUR, NOW - 47 * HOUR)),  # 3 h
        contact("2", our_task(call.format(2), NOW - 50 * HOUR, NOW - 40 * HOUR)),  # 10 h
        contact("3", our_task(call.format(3), NOW - 9 * HOUR)),  # open 9 h
        contact("4", our_task(call.format(4), NOW - HOUR)),  # open 1 h
        contact(
            "5",
            ExistingTask(id="n", key=call.format(5)),  # no creation nor due time
            ExistingTask(id="e", key=call.format(7), due=NOW - HOUR),  # as the engine adds it
            ExistingTask(id="d", key=call.format(6), created_at=NOW - DAY, completed=True),
            our_task(f"{B_HANDOFF}:escalation", NOW - DAY),  # an escalation: not a follow-up
            our_task("crmq:contact:5:mql_handoff", NOW - 60 * HOUR, NOW - 10 * HOUR),  # 50 h
        ),
    ]
    rows = follow_up_sla(contacts, FollowUpRules(), NOW)
    calls = rows["hot_call"]
    assert (calls["on_time"], calls["late"], calls["missed"], calls["pending"]) == (2, 0, 1, 2)
    assert calls["unmeasured"] == 2 and calls["tasks"] == 7 and calls["on_time_rate"] == 0.667
    assert calls["median_hours_to_done"] == 6.5
    assert rows["mql_handoff"]["late"] == 1 and rows["mql_handoff"]["on_time_rate"] == 0.0

    strict = FollowUpRules(hot_call_hours=4, mql_sla_hours=72)
    rows = follow_up_sla(contacts, strict, NOW)
    calls = rows["hot_call"]
    assert calls["target_hours"] == 4
    assert (calls["on_time"], calls["late"], calls["missed"], calls["pending"]) == (1, 1, 2, 1)
    assert calls["on_time_rate"] == 0.25
    assert rows["mql_handoff"]["on_time"] == 1 and rows["mql_handoff"]["on_time_rate"] == 1.0
    ignored = follow_up_sla(contacts, strict, NOW, ignore={call.format(1)})["hot_call"]
    assert ignored["tasks"] == 6 and ignored["on_time"] == 0


def test_the_configured_hours_are_new_tasks_sla_and_the_call_target(tmp_path, capsys):
    """The tasks created keep the due time they were given; the configured hours label the
    SLA new tasks get, the hot list's call target, and judge a task with no due time."""
    store = trail(tmp_path / "s.sqlite")
    relaxed = build_report(store, "default", NOW, followup=FollowUpRules(hot_call_hours=31))
    row = relaxed.sla["hot_call"]
    assert (row["target_hours"], row["late"], row["missed"], row["pending"]) == (31, 1, 0, 2)
    assert [(g["hours"], g["tasks"]) for g in row["by_sla"]] == [(24, 2), (31, 1)]
    assert relaxed.call_hours == 31
    text = text_report(relaxed)
    assert "hot_call (within their own SLA; new tasks get 31 h): 0% on time" in text
    html = html_report(relaxed)
    assert "within their own SLA; new tasks get 31 h" in html
    assert "past the 31 h call target" in html
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(
        f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n"
        "[rules.followup]\nhot_call_hours = 31\nmql_sla_hours = 3\n"
    )
    assert main(["report", "--config", str(config), "--json"]) == 0
    sla = json.loads(capsys.readouterr().out)["follow_up_sla"]
    assert sla["hot_call"]["target_hours"] == 31 and sla["hot_call"]["late"] == 1
    handoff = sla["mql_handoff"]
    assert handoff["target_hours"] == 3 and handoff["on_time"] == 1, "done in 5 h of its 48"
    assert handoff["by_sla"][0]["hours"] == 48


@pytest.mark.parametrize(
    "as_read",
    [
        {"owned": {"temperature": "cold"}},  # a person cooled the lead
        {"owned": {}},  # a person cleared its temperature (kept under unless_edited)
        {"owned": HOT, "stage": Stage.OPPORTUNITY},  # a person moved it on
        {"owned": HOT, "tasks": [our_task(A_RECALL, NOW - 30 * HOUR, NOW - 2 * HOUR)]},  # done
    ],
)
def test_a_hot_lead_the_crm_shows_otherwise_as_last_read_is_not_listed(tmp_path, as_read):
    store = trail(tmp_path / "s.sqlite")
    mirror(store, [Contact(id="a", **as_read)])
    report = build_report(store, "default", NOW)
    assert (report.hot_total, report.hot_changed) == (0, 1)
    assert any("1 more were hot leads when crm-qualify wrote them" in n for n in hot_notes(report))
    assert "hot leads to call now: 0" in text_report(report)


def test_hot_leads_list_a_person_once_and_never_a_customer_with_a_custom_stage(tmp_path):
    """The records of one person share its decision (hot) but only one gets the call; a
    customer whose stage a person set to a value the mapping does not know reads as no
    stage, and the highest stage crm-qualify wrote says what it is."""
    store = StateStore(tmp_path / "s.sqlite")
    hot = {"temperature": "hot", "score": 80}
    twins = [
        Contact(id=i, email="rosa@acme.example", first_name="Rosa", last_name="Achterberg",
                stage=Stage.MQL, owned=hot)
        for i in ("r1", "r2", "r3")
    ]  # fmt: skip
    twins[0].tasks = [our_task("crmq:contact:r1:hot_call:20261120T1000", NOW - 2 * HOUR)]
    customer = Contact(id="ev", owned={**hot, "highest_stage": "customer"})
    people = People(store)
    people.index("default", [*twins, customer])
    people.resolve("default", twins)
    crm = CrmSnapshot()
    crm.add([*twins, customer])
    report = build_report(store, "default", NOW, crm)
    assert [lead.record for lead in report.hot] == ["contact/r1"]
    assert report.hot_same_person == 2 and report.hot_past_funnel == 1
    assert any("2 more are other records of a listed person" in n for n in hot_notes(report))


def test_a_hot_lead_is_named_as_the_crm_showed_it_at_the_last_read(tmp_path):
    """The name came from our call task's subject: a contact renamed since showed its old
    name, and a company with brackets ("Acme (UK) Ltd") was lost into the name."""
    store = trail(tmp_path / "s.sqlite")
    renamed = Contact(
        id="a", first_name="Ada", last_name="King", company="Acme (UK) Ltd", owned=HOT,
        tasks=[our_task(A_RECALL, NOW - 30 * HOUR)],
    )  # fmt: skip
    mirror(store, [renamed])
    (lead,) = build_report(store, "default", NOW).hot
    assert (lead.name, lead.company) == ("Ada King", "Acme (UK) Ltd")


def test_a_company_with_brackets_is_read_back_from_a_call_subject():
    subject = "Call hot lead Zoë Davis (Acme (UK) Ltd) within 24 h"
    assert who_from_subject(subject, "contact/1") == ("Zoë Davis", "Acme (UK) Ltd")


def test_a_hot_lead_merged_away_or_deleted_is_not_listed(tmp_path):
    """A record merged into another leaves the mirror; the report still listed it as a hot
    lead to call, under an id the CRM no longer has."""
    store = trail(tmp_path / "s.sqlite")
    store.mirror.forget("default", [("contact", "a")])
    report = build_report(store, "default", NOW)
    assert (report.hot_total, report.hot_gone, report.hot_changed) == (0, 1, 0)
    assert any("no longer in the CRM" in note for note in hot_notes(report))
    assert report.as_dict()["hot_no_longer_in_crm"] == 1


def test_a_contact_whose_temperature_was_never_written_is_not_called_without_one(tmp_path):
    """Leads whose CRM temperature was already right were counted as temperature 'none'."""
    store = trail(tmp_path / "s.sqlite")
    run = store.start_run("default", mode="once", dry_run=False)
    write(store, run, "d", "stage", None, "lead", T0)
    store.finish_run(run, "ok", {}, [])
    mirror(store, [Contact(id="d")])
    report = build_report(store, "default", NOW)
    assert report.no_temperature == 1
    assert "temperature: hot 1, warm 1, cold 1, not written by crm-qualify 1" in text_report(report)
    assert "not written by crm-qualify" in html_report(report)


def test_a_follow_up_kind_with_no_task_yet_says_so_once(tmp_path):
    report = build_report(StateStore(tmp_path / "s.sqlite"), "default", NOW)
    line = next(x for x in text_report(report).splitlines() if x.startswith("  hot_call"))
    assert line == (
        "  hot_call (within 24 h): no task created yet;"
        " measured from the first such follow-up crm-qualify creates"
    )


def _handoffs_created_under_48_h(path) -> StateStore:
    """Two hand-offs crm-qualify created when `mql_sla_hours` was 48 (due 48 h after their
    creation): one done 30 h after it, one open for 30 h."""
    store = StateStore(path)
    run = store.start_run("default", mode="once", dry_run=False)
    done, open_ = "crmq:contact:d:mql_handoff", "crmq:contact:o:mql_handoff"
    created = NOW - 40 * HOUR
    store.mark_tasks_pending(
        "default",
        run,
        [
            task(done, "mql_handoff", created + 48 * HOUR, "d"),
            task(open_, "mql_handoff", NOW + 18 * HOUR, "o"),
        ],
    )
    store.mark_tasks_created("default", [(done, "T1"), (open_, "T2")])
    store.finish_run(run, "ok", {}, [])
    mirror(
        store,
        [
            Contact(id="d", tasks=[our_task(done, created, created + 30 * HOUR)]),
            Contact(id="o", tasks=[our_task(open_, NOW - 30 * HOUR)]),
        ],
    )
    return store


def test_a_follow_up_is_judged_on_its_own_sla_not_the_one_configured_now(tmp_path):
    """`mql_sla_hours` lowered from 48 to 24: the report re-judged every earlier hand-off
    against 24 h, so one done in 30 h turned late and one open for 30 h (due in 18 h) missed,
    and the share's denominator grew with them."""
    store = _handoffs_created_under_48_h(tmp_path / "s.sqlite")
    judged = {
        hours: build_report(store, "default", NOW, followup=FollowUpRules(mql_sla_hours=hours))
        for hours in (48, 24)
    }
    for hours, report in judged.items():
        row = report.sla["mql_handoff"]
        assert (row["on_time"], row["late"], row["missed"], row["pending"]) == (1, 0, 0, 1)
        assert row["measured"] == 1 and row["target_hours"] == hours
        assert row["by_sla"] == [
            {"hours": 48, "tasks": 2, "on_time": 1, "late": 0, "missed": 0, "pending": 1,
             "first_created": (NOW - 40 * HOUR).isoformat(),
             "last_created": (NOW - 30 * HOUR).isoformat()},
        ]  # fmt: skip
    text = text_report(judged[24])
    assert "mql_handoff (within 48 h; new tasks get 24 h): 100% on time;" in text
    assert "1 of 1 done within 48 h of their creation" in text
    assert "done within 48 h" in html_report(judged[24])
    assert "1 of 1 done within 48 h of their creation" in text_report(judged[48])


def test_tasks_of_different_slas_are_each_judged_on_theirs_and_the_report_says_so(tmp_path):
    store = _handoffs_created_under_48_h(tmp_path / "s.sqlite")
    run = store.start_run("default", mode="once", dry_run=False)
    late = "crmq:contact:n:mql_handoff"
    store.mark_tasks_pending("default", run, [task(late, "mql_handoff", NOW - 4 * HOUR, "n")])
    store.mark_tasks_created("default", [(late, "T3")])
    store.finish_run(run, "ok", {}, [])
    mirror(store, [Contact(id="n", tasks=[our_task(late, NOW - 28 * HOUR)])])
    report = build_report(store, "default", NOW, followup=FollowUpRules(mql_sla_hours=24))
    row = report.sla["mql_handoff"]
    assert (row["on_time"], row["missed"], row["pending"], row["measured"]) == (1, 1, 1, 2)
    assert [(group["hours"], group["tasks"]) for group in row["by_sla"]] == [(48, 2), (24, 1)]
    text = text_report(report)
    assert "mql_handoff (within their own SLA; new tasks get 24 h): 50% on time;" in text
    assert (
        "1 of 2 done within their SLA (48 h for the 2 created 2026-11-20 to 2026-11-21:"
        " 1 of 1; 24 h for the 1 created 2026-11-21: 0 of 1)"
    ) in text
    assert "1 still open past their due time (missed)" in text
    html = html_report(report)
    assert "within their own SLA" in html and "48 h for the 2 created" in html
    assert report.as_dict()["follow_up_sla"]["mql_handoff"]["by_sla"][1]["missed"] == 1


def test_the_report_counts_syncs_not_dry_runs_and_names_the_rules_that_decided(tmp_path):
    """`12 runs` counted dry runs, and the report never said which rules decided its
    stages and temperatures, though after a rules change they mix both rule sets."""
    store = StateStore(tmp_path / "state.sqlite")
    for dry, details in (
        (False, {"rules_version": "87fe46e076"}),
        (True, {"rules_version": "43d2659eaa", "previous_rules_version": "87fe46e076"}),
        (False, {"rules_version": "43d2659eaa", "previous_rules_version": "87fe46e076"}),
        (False, {"rules_version": "43d2659eaa"}),
    ):
        run = store.start_run("default", mode="once", dry_run=dry)
        store.finish_run(run, "ok", {}, [], details)
    (changed,) = [r for r in store.runs("default") if not r.dry_run and len(r.details) == 2]
    report = build_report(store, "default")
    assert (report.runs, report.rules) == (3, "43d2659eaa")
    since = f"{changed.started_at[:16].replace('T', ' ')} UTC (before: 87fe46e076)"
    assert report.rules_since == since
    text = text_report(report)
    assert "3 syncs" in text and f"rules 43d2659eaa since {since}" in text, text
    assert f"rules 43d2659eaa since {since}" in html_report(report)

    undo = store.start_run("default", mode=f"rollback of {changed.id}", dry_run=False)
    store.finish_run(undo, "ok", {}, [])
    report = build_report(store, "default")
    assert report.runs == 3, "a rollback is no sync"
    assert report.rules_since == since.removesuffix(")") + ", that run rolled back)"
    store.close()


def test_the_rules_are_the_latest_recorded_syncs_though_the_clock_was_set_back(
    tmp_path, monkeypatch
):
    """A sync made while the clock was 100 days ahead named the rules of the report, though
    the syncs recorded after it, with the clock corrected, decided with newer ones."""
    store = StateStore(tmp_path / "state.sqlite")
    for ahead, details in (
        (100, {"rules_version": "87fe46e076"}),
        (0, {"rules_version": "43d2659eaa", "previous_rules_version": "87fe46e076"}),
    ):
        set_state_clock(monkeypatch, timedelta(days=ahead))
        run = store.start_run("default", mode="once", dry_run=False)
        store.finish_run(run, "ok", {}, [], details)
    report = build_report(store, "default")
    assert report.rules == "43d2659eaa"
    assert report.rules_since and report.rules_since.endswith("UTC (before: 87fe46e076)")
    store.close()


def test_records_the_crm_no_longer_holds_are_left_out_of_the_counts(tmp_path):
    """A Salesforce lead converted into a contact, a record merged away or deleted leaves
    the mirror, but the report counted every record ever written: 5,076 contacts for 5,029
    in the CRM, a converted MQL twice (as its lead and its contact)."""
    store = trail(tmp_path / "s.sqlite")
    run = store.start_run("default", mode="once", dry_run=False)
    write(store, run, "lead-1", "stage", None, "mql", T0)  # converted: the mirror let it go
    write(store, run, "d", "stage", None, "mql", T0)
    store.finish_run(run, "ok", {}, [])
    mirror(store, [Contact(id="d")])
    report = build_report(store, "default", NOW)
    assert (report.contacts, report.written_gone, report.stages["mql"]) == (4, 1, 2)
    assert report.reached["mql"] == 3  # a, b and d: lead-1 went on as another record
    assert "1 record it wrote the CRM no longer holds" in text_report(report)
    assert report.as_dict()["written_gone"] == 1
