"""Reading ahead with no batch waiting (the engine's default): the next batch is read while
the caller works on one, and the reader starts no other until that one is taken, so no more
than two read batches are ever held (`connector/sync/pipeline.py`)."""

from __future__ import annotations

import threading

import pytest
from crm_qualify.connector.sync.pipeline import DEPTH, read_ahead

WAIT = 5.0
"""Seconds a test waits for the reader thread before it fails (never slept)."""


def test_the_reader_starts_a_batch_only_once_the_one_before_is_taken():
    assert DEPTH == 0
    made = [threading.Event() for _ in range(4)]

    def source():
        for number in range(4):
            made[number].set()
            yield number

    batches = read_ahead(source())
    assert next(batches) == 0
    assert made[1].wait(WAIT), "the next batch is read while the caller works on one"
    assert not made[2].wait(0.05), "a second batch was started while one waits"
    assert next(batches) == 1
    assert made[2].wait(WAIT)
    assert list(batches) == [2, 3]


def test_a_negative_depth_is_refused():
    with pytest.raises(ValueError, match="at least 0"):
        next(read_ahead(iter([1]), depth=-1))
