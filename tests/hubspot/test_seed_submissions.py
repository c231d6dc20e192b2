"""Form submissions kept newest first, whether added one by one (a contact submits a form) or
all at once (seeding): both must leave the same order, or seeded portals would change."""

from __future__ import annotations

import random
from datetime import date

from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.adapters.hubspot.simulator.marketing import (
    Form,
    add_submissions,
    insert_submission,
)
from crm_qualify.adapters.hubspot.simulator.routes_marketing import _after


def rows(rng: random.Random, count: int, start: int) -> list[dict[str, int]]:
    """Rows with many shared instants, each numbered so ties can be told apart."""
    return [{"submittedAt": rng.randrange(0, 40), "n": start + i} for i in range(count)]


def test_one_by_one_keeps_newest_first_and_the_later_added_first_within_an_instant() -> None:
    rng, form = random.Random(3), Form("f", "Contact us", 0, 0)
    added = rows(rng, 300, 0)
    for row in added:
        insert_submission(form, row)
    assert form.submissions == sorted(added, key=lambda r: (-r["submittedAt"], -r["n"]))
    assert form.updated == max(r["submittedAt"] for r in added)


def test_all_at_once_leaves_the_order_of_one_by_one_even_on_a_form_with_rows() -> None:
    rng = random.Random(7)
    held, batch = rows(rng, 120, 0), rows(rng, 400, 1000)
    one_by_one, at_once = Form("a", "Demo", 5, 5), Form("b", "Demo", 5, 5)
    for row in held:
        insert_submission(one_by_one, row)
        insert_submission(at_once, row)
    for row in batch:
        insert_submission(one_by_one, row)
    add_submissions(at_once, batch)
    assert at_once.submissions == one_by_one.submissions
    assert at_once.updated == one_by_one.updated


def test_seeded_submissions_are_the_same_for_the_same_seed_and_day() -> None:
    first, second = (
        HubSpotSimulator(contacts=400, seed=5, anchor=date(2025, 6, 1)) for _ in range(2)
    )
    forms = [list(s.store.marketing.forms.values()) for s in (first, second)]
    assert forms[0] == forms[1] and sum(len(f.submissions) for f in forms[0]) > 100
    for form in forms[0]:
        stamps = [row["submittedAt"] for row in form.submissions]
        assert stamps == sorted(stamps, reverse=True)


def test_the_page_after_a_row_starts_right_after_it_or_at_the_first_older_row_when_gone() -> None:
    rng, form = random.Random(11), Form("f", "Demo", 0, 0)
    for n, row in enumerate(rows(rng, 500, 0)):
        insert_submission(form, row | {"conversionId": f"c{n}"})
    held = form.submissions
    for i, row in enumerate(held):
        assert _after(held, row["submittedAt"], row["conversionId"]) == i + 1
    for stamp in range(-1, 42):  # a row gone since: the page starts at the first older row
        older = next((i for i, r in enumerate(held) if r["submittedAt"] < stamp), len(held))
        assert _after(held, stamp, "gone") == older
