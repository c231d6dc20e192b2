"""Raw records become contacts one guard each: a value the adapter cannot translate is that
record's error naming the CRM field, and a crash in the adapter's own code is told apart from
bad CRM data: its error names the exception type and its traceback is logged, masked."""

from __future__ import annotations

import io
import json
import logging
import secrets

from crm_qualify.connector.contract import ContactBatch, RawContact, TranslationError
from crm_qualify.connector.model import Contact
from crm_qualify.connector.ops.logs import configure_logging, register_secrets
from crm_qualify.connector.sync.records import translate_batch


def good(record_id: str) -> RawContact:
    contact = Contact(id=record_id, object_type="person", email=f"{record_id}@example.com")
    return RawContact(f"person/{record_id}", lambda: contact, ("person", record_id))


def tags_of(record: dict) -> list[str]:
    """A plugin's translate helper with a bug: it iterates a value the CRM sends as a number."""
    return [str(tag) for tag in record["tags"]]


def buggy(record_id: str, record: dict) -> RawContact:
    def translate() -> Contact:
        tags_of(record)
        return Contact(id=record_id, object_type="person")

    return RawContact(f"person/{record_id}", translate, ("person", record_id))


def untranslatable(record_id: str) -> RawContact:
    def translate() -> Contact:
        raise TranslationError("employees", "employees: not a number: 'many'")

    return RawContact(f"person/{record_id}", translate, ("person", record_id))


def with_traceback(record: logging.LogRecord) -> str:
    """The record's message and traceback: the log filter (`RedactFilter`, installed by any
    earlier test that configured logging) folds the traceback, masked, into the message."""
    if record.exc_info:
        return record.getMessage() + "\n" + logging.Formatter().formatException(record.exc_info)
    return record.getMessage()


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_crash_in_translate_names_its_type_and_logs_its_traceback(caplog):
    batch = ContactBatch(raw=[good("1"), buggy("5", {"tags": 7}), good("2")], cursor=None)
    with caplog.at_level(logging.DEBUG, logger="crm_qualify.connector.sync.records"):
        contacts, errors = translate_batch(batch)
    assert [c.id for c in contacts] == ["1", "2"], "one bad record never stops the batch"
    (error,) = errors
    assert str(error) == "person/5: record: TypeError: 'int' object is not iterable"
    assert (error.field, error.key) == (None, ("person", "5"))
    (logged,) = caplog.records
    assert logged.levelno == logging.ERROR
    assert "person/5" in logged.getMessage() and "TypeError" in logged.getMessage()
    assert "in tags_of" in with_traceback(logged)


def test_a_translation_error_stays_a_data_error_with_no_traceback(caplog):
    batch = ContactBatch(raw=[untranslatable("3")], cursor=None)
    with caplog.at_level(logging.DEBUG, logger="crm_qualify.connector.sync.records"):
        _, (error,) = translate_batch(batch)
    assert str(error) == "person/3: employees: not a number: 'many'"
    assert error.field == "employees"
    assert not caplog.records


def test_the_same_bug_on_many_records_logs_one_traceback_at_error_level(caplog):
    raw = [buggy(str(n), {"tags": n}) for n in range(50)]
    with caplog.at_level(logging.DEBUG, logger="crm_qualify.connector.sync.records"):
        _, errors = translate_batch(ContactBatch(raw=raw, cursor=None))
    assert len(errors) == 50 and all("TypeError" in str(e) for e in errors)
    levels = [r.levelno for r in caplog.records]
    assert levels.count(logging.ERROR) == 1, "the rest at debug level, traceback included"
    assert all("Traceback (most recent call last)" in with_traceback(r) for r in caplog.records)


def test_the_traceback_and_the_error_never_show_a_secret():
    token = f"pl-{secrets.token_hex(12)}"
    register_secrets([token])
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)

    def leaky() -> Contact:
        session = {"api_token": token}
        raise RuntimeError(f"client state {session}")

    raw = RawContact("person/8", leaky, ("person", "8"))
    _, (error,) = translate_batch(ContactBatch(raw=[raw], cursor=None))
    assert str(error).startswith("person/8: record: RuntimeError: client state")
    assert token not in str(error) and token not in stream.getvalue()
    (line,) = json_lines(stream)
    assert line["level"] == "ERROR" and "Traceback (most recent call last)" in line["message"]
