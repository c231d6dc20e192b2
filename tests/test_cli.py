"""The offline commands a newcomer runs first: score and schema."""

from __future__ import annotations

import io
import json
from pathlib import Path

from crm_qualify.connector.cli import main
from crm_qualify.connector.model import Contact

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "contacts.jsonl"
NOW = "2026-11-22T12:00:00Z"


def test_score_prints_one_explained_decision_per_example(capsys):
    assert main(["score", str(EXAMPLES), "--now", NOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    examples = [line for line in EXAMPLES.read_text().splitlines() if line.strip()]
    assert len(lines) == len(examples) >= 20
    decision = json.loads(lines[0])
    for key in ("contact_id", "score", "fit", "engagement", "intent", "stage", "temperature"):
        assert key in decision
    assert all(set(r) == {"signal", "family", "points", "why"} for r in decision["reasons"])


def test_bad_records_are_rejected_by_record_and_field_the_rest_scored(tmp_path, capsys):
    good = {"id": "ok-1", "email": "a@acme.example"}
    lines = [
        json.dumps(good),
        json.dumps({"id": "bad-1", "employees": "lots"}),
        "{not json",
        json.dumps({"id": "bad-2", "events": [{"type": "telepathy", "at": NOW}]}),
        json.dumps({**good, "id": "ok-2"}),
    ]
    source = tmp_path / "contacts.jsonl"
    source.write_text("\n".join(lines) + "\n")

    assert main(["score", str(source), "--now", NOW]) == 1

    captured = capsys.readouterr()
    scored = [json.loads(line)["contact_id"] for line in captured.out.splitlines()]
    assert scored == ["ok-1", "ok-2"]
    assert "contact bad-1: employees" in captured.err
    assert "line 3: not JSON" in captured.err
    assert "contact bad-2: events.0.type" in captured.err


def test_score_reads_stdin_and_explains(monkeypatch, capsys):
    document = {
        "id": "w1",
        "origin": "inbound",
        "events": [{"type": "demo_request", "at": "2026-11-18T09:00:00Z"}],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(document) + "\n"))
    assert main(["score", "-", "--now", NOW, "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("contact/w1:")
    assert "+40 demo request 2026-11-18" in out


def test_a_changed_weight_changes_the_decision(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[rules.weights]\ndemo_request = 5\n")
    document = {
        "id": "w1",
        "origin": "inbound",
        "events": [{"type": "demo_request", "at": "2026-11-18T09:00:00Z"}],
    }
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps(document) + "\n")
    main(["score", str(source), "--now", NOW])
    default = json.loads(capsys.readouterr().out)
    main(["score", str(source), "--now", NOW, "--config", str(config)])
    changed = json.loads(capsys.readouterr().out)
    assert changed["score"] < default["score"]
    assert changed["rules_version"] != default["rules_version"]


def test_schema_is_generated_from_the_model(capsys):
    assert main(["schema", "contact"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == Contact.model_json_schema()
    assert "events" in schema["properties"]


def test_a_missing_contacts_file_is_a_clear_error(capsys):
    assert main(["score", "/nonexistent/contacts.jsonl"]) == 2
    assert "cannot read /nonexistent/contacts.jsonl" in capsys.readouterr().err


def test_decision_schema_is_generated_too(capsys):
    assert main(["schema", "decision"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"stage", "temperature", "score", "tasks", "rules_version"} <= set(schema["properties"])


def test_score_rejects_a_line_that_is_not_utf8_and_reads_excels_byte_order_mark(tmp_path, capsys):
    """A Latin-1 byte stopped the whole file with a bare UnicodeDecodeError, and Excel's
    UTF-8 export (with a byte-order mark) lost its `id` column, so every row failed."""
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(
        b"id,origin,first_name,demo_request_at\n"
        b"l1,inbound,Ren\xe9,2026-11-20T10:00:00Z\nl2,inbound,Bob,2026-11-20T10:00:00Z\n"
    )
    assert main(["score", str(latin), "--now", NOW]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["contact_id"] for line in out.splitlines()] == ["l2"]
    assert "line 2: byte 0xe9 at column 15 is not UTF-8 text" in err
    lines = tmp_path / "bad.jsonl"
    lines.write_bytes(b'{"id": "a", "first_name": "\xff"}\n{"id": "b"}\n')
    assert main(["score", str(lines), "--now", NOW]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["contact_id"] for line in out.splitlines()] == ["b"]
    assert "line 1: byte 0xff" in err
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbfid,origin,demo_request_at\nb1,inbound,2026-11-20T10:00:00Z\n")
    assert main(["score", str(excel), "--now", NOW]) == 0
    assert json.loads(capsys.readouterr().out)["contact_id"] == "b1"


def test_score_names_a_quote_left_open_instead_of_reading_the_rest_into_one_cell(tmp_path, capsys):
    unterminated = tmp_path / "unterminated.csv"
    unterminated.write_text(
        "id,origin,demo_request_at\nq1,inbound,2026-11-20T10:00:00Z\n"
        'q2,inbound,"2026-11-20T10:00:00Z\nq3,inbound,2026-11-21T10:00:00Z\n'
    )
    assert main(["score", str(unterminated), "--now", NOW]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["contact_id"] for line in out.splitlines()] == ["q1"]
    assert "line 3: unexpected end of data (a quote not closed" in err
