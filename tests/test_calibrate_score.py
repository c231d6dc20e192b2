"""The offline what-if: `score --compare A.toml B.toml FILE` and CSV exports as input."""

from __future__ import annotations

import json
from pathlib import Path

from crm_qualify.connector.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "contacts.jsonl"
NOW = "2026-11-22T12:00:00Z"
CSV = """ID,Email,Title,Industry,Origin,Demo Request At,Email Open Count,Email Open At,Notes
c1,ann@acme.example,CTO,Technology,inbound,2026-11-18T10:00:00Z,4,2026-11-20T10:00:00Z,vip
c2,bob@gmail.com,Student,,outbound,,,,
c3,carl@acme.example,,,,not a date,,,
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_compare_shows_the_decisions_that_differ_and_the_moves(tmp_path, capsys):
    current = write(tmp_path, "a.toml", "")
    proposal = write(
        tmp_path, "b.toml", "[rules.thresholds]\nmql = 40\n[rules.weights]\ncontent_download = 1\n"
    )
    argv = ["score", "--compare", str(current), str(proposal), str(EXAMPLES), "--now", NOW]
    code = main([*argv, "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    *rows, summary = lines
    summary = summary["summary"]
    assert rows and summary["decisions_differ"] == len(rows)
    assert summary["contacts"] == sum(
        1 for line in EXAMPLES.read_text().splitlines() if line.strip()
    )
    for row in rows:
        a, b = row["a"], row["b"]
        assert (a["stage"], a["temperature"]) != (b["stage"], b["temperature"])
    moves = sum(n for move, n in summary["moves"].items() if move == "lead -> mql")
    assert moves == sum(1 for r in rows if (r["a"]["stage"], r["b"]["stage"]) == ("lead", "mql"))
    assert summary["rules"]["a"] != summary["rules"]["b"]


def test_compare_of_identical_rules_moves_nothing(tmp_path, capsys):
    same = write(tmp_path, "a.toml", "[rules.weights]\ndemo_request = 35\n")
    assert main(["score", "--compare", str(same), str(same), str(EXAMPLES), "--now", NOW]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "0 decided differently" in out[-1]


def test_compare_names_a_bad_key_before_scoring(tmp_path, capsys):
    good = write(tmp_path, "a.toml", "")
    bad = write(tmp_path, "b.toml", "[rules.weights]\nno_such_signal = 3\n")
    assert main(["score", "--compare", str(good), str(bad), str(EXAMPLES)]) == 2
    err = capsys.readouterr().err
    assert "b.toml" in err and "rules.weights" in err and "no_such_signal" in err


def test_score_reads_a_csv_export_by_its_documented_columns(tmp_path, capsys):
    export = write(tmp_path, "export.csv", CSV)
    code = main(["score", str(export), "--now", NOW])
    captured = capsys.readouterr()
    decisions = {d["contact_id"]: d for d in map(json.loads, captured.out.splitlines())}
    assert code == 1, "one row is rejected, the others are scored"
    assert set(decisions) == {"c1", "c2"}
    reasons = [r["why"] for r in decisions["c1"]["reasons"]]
    assert "+40 demo request 2026-11-18" in reasons
    assert "+4 email open x4, last 2026-11-20" in reasons
    assert decisions["c1"]["temperature"] == "hot"
    assert any("free-mail" in r["why"] for r in decisions["c2"]["reasons"])
    assert "line 4: contact c3: demo_request_at" in captured.err
    assert "ignored column(s): Notes" in captured.err


EXPORT_HEADER = (
    "id,email,industry,Demo Request At,email_reply_at,email_reply_count,meeting_booked_at,"
    "employees,origin\n"
)


def test_a_compare_where_every_row_is_rejected_says_none_was_scored(tmp_path, capsys):
    """It printed 'compared 0 contact(s)' and 'the others were scored' with none scored."""
    rules = write(tmp_path, "a.toml", "")
    rows = "c1,a@acme.example,,not a date,,,,,\nc2,b@acme.example,,,x,,,,\n"
    export = write(tmp_path, "s.csv", EXPORT_HEADER + rows)
    for argv in (["--compare", str(rules), str(rules)], []):
        code = main(["score", *argv, str(export), "--now", NOW])
        captured = capsys.readouterr()
        assert code == 1
        assert "no record could be scored: all 2 rejected" in captured.err
        assert "the others were scored" not in captured.err
        assert "compared 0 contact" not in captured.out


def test_a_date_alone_in_a_csv_export_is_that_day_at_midnight_utc(tmp_path, capsys):
    row = "c1,a@acme.example,Technology,2026-11-18,2026-11-16,2,,120,inbound\n"
    export = write(tmp_path, "s.csv", EXPORT_HEADER + row)
    assert main(["score", str(export), "--now", NOW]) == 0
    [decision] = map(json.loads, capsys.readouterr().out.splitlines())
    reasons = [r["why"] for r in decision["reasons"]]
    assert "+40 demo request 2026-11-18" in reasons
    assert "+20 email reply x2, last 2026-11-16" in reasons


def test_a_time_without_a_zone_in_a_csv_export_is_refused_saying_how_to_fix_it(tmp_path, capsys):
    row = "c1,a@acme.example,Technology,2026-11-18 09:00,,,,120,inbound\n"
    export = write(tmp_path, "s.csv", EXPORT_HEADER + row)
    assert main(["score", str(export), "--now", NOW]) == 1
    err = capsys.readouterr().err
    assert "line 2: contact c1: demo_request_at: a date and time without a time zone" in err
    assert "2026-11-18T09:00:00Z" in err


def test_a_count_without_its_date_and_any_unreadable_date_are_rejected_naming_the_column(
    tmp_path, capsys
):
    """Both rows scored 0, exit 0, without a word: the count and the deal's date were dropped."""
    rows = (
        "id,demo_request_count,email_open_count,deal_closed_at\n"
        "r1,,0,\nr2,3,,\nr3,,,not-a-date\nr4,,,2026-11-01\n"
    )
    export = write(tmp_path, "c.csv", rows)
    assert main(["score", str(export), "--explain", "--now", NOW]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("contact/r1: "), "a count of 0 without a date is none"
    assert "contact/r2" not in captured.out and "contact/r3" not in captured.out
    assert "line 3: contact r2: demo_request_at: required with demo_request_count" in captured.err
    [r3] = [line for line in captured.err.splitlines() if "line 4: contact r3: " in line]
    assert "deal_closed_at: Input should be a valid datetime" in r3
    assert "line 5: contact r4: deal_status: required with deal_closed_at" in captured.err
    assert "3 record(s) rejected; the others were scored" in captured.err


def test_a_csv_export_without_rows_says_none_was_scored(tmp_path, capsys):
    for text in ("", "id,email\n"):
        export = write(tmp_path, "s.csv", text)
        assert main(["score", str(export), "--now", NOW]) == 1
        captured = capsys.readouterr()
        assert "no record could be scored: the file holds none" in captured.err
        assert captured.out == ""


def test_a_row_repeating_an_id_is_scored_with_a_warning_naming_both_lines(tmp_path, capsys):
    export = write(tmp_path, "s.csv", "id,email\nr1,a@acme.example\nr2,\nr1,b@acme.example\n")
    assert main(["score", str(export), "--now", NOW]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    assert "line 4: contact/r1 repeats the id of line 2" in captured.err
