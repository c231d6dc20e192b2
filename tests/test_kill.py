"""SIGKILL a real sync at random moments, rerun, and land exactly where a clean sync lands.

One trial per CRM here (each kills one to three syncs at random moments); the long loop,
many trials per CRM, is `python bench/kill_loop.py --trials 40 [--crm salesforce]`.
"""

from __future__ import annotations

import random

import pytest

from tests.kill_harness import one_trial


@pytest.mark.parametrize(("crm", "seed"), [("hubspot", 11), ("salesforce", 13)])
def test_a_killed_sync_converges_to_the_clean_state(tmp_path, crm, seed):
    outcome = one_trial(tmp_path, contacts=250, seed=seed, rng=random.Random(seed), crm=crm)
    assert outcome.duplicate_tasks == 0
    assert outcome.missing_tasks == 0 and outcome.extra_tasks == 0
    assert outcome.differing_contacts == 0
