"""Benchmark: contacts scored and decided per second on one core (target: 100,000/s).

    python bench/score_throughput.py [--contacts 100000] [--seed 7]

Contacts are generated first (not timed), then `decide()` runs over all of them: scoring,
stage, temperature and task planning, exactly what the engine calls per record.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    Deal,
    EngagementEvent,
    EventType,
    Origin,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DOMAINS = ["acme.example", "globex.example", "gmail.com", "initech.example", "mailinator.com"]
TITLES = ["IT Director", "CTO", "Marketing Manager", "Student", "Head of Sales", None]


def generate(count: int, seed: int) -> list[Contact]:
    rng = random.Random(seed)
    kinds = list(EventType)
    contacts = []
    for number in range(count):
        events = [
            EngagementEvent.model_construct(
                type=rng.choice(kinds),
                at=NOW - timedelta(days=rng.uniform(0, 300)),
                count=rng.choice((1, 1, 1, 2, 5, 40)),
                detail=None,
            )
            for _ in range(rng.randint(0, 8))
        ]
        qualification = {}
        if rng.random() < 0.1:
            qualification = {
                name: rng.choice(list(CriterionStatus))
                for name in ("need", "authority", "timing", "budget")
            }
        deals = (
            [Deal(id=f"d{number}", status=rng.choice(("open", "won", "lost")))]
            if (rng.random() < 0.05)
            else []
        )
        contacts.append(
            Contact(
                id=str(number),
                email=f"person{number}@{rng.choice(DOMAINS)}",
                title=rng.choice(TITLES),
                industry=rng.choice(("Software", "Retail", None)),
                employees=rng.choice((None, 12, 250, 4000)),
                owner_id=rng.choice((None, "501", "502")),
                origin=rng.choice(list(Origin)),
                qualification=qualification,
                deals=deals,
                events=events,
            )
        )
    return contacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    contacts = generate(args.contacts, args.seed)
    rules = Rules.model_validate(
        {
            "fit": {
                "industries": {"Software": 15},
                "titles": [{"contains": ["cto", "director", "head of"], "points": 15}],
                "company_size": [{"min": 50, "max": 5000, "points": 10}],
            },
            "followup": {"round_robin": ["a", "b", "c"]},
        }
    )
    events = sum(len(c.events) for c in contacts)
    decide(contacts[0], rules, NOW)

    started = time.perf_counter()
    tasks = 0
    for contact in contacts:
        tasks += len(decide(contact, rules, NOW).tasks)
    elapsed = time.perf_counter() - started

    tracemalloc.start()
    for contact in contacts[:10_000]:
        decide(contact, rules, NOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"contacts: {len(contacts):,} ({events:,} events), tasks planned: {tasks:,}")
    print(f"elapsed: {elapsed:.2f} s on one core")
    print(f"throughput: {len(contacts) / elapsed:,.0f} contacts/s (target 100,000/s)")
    print(f"peak traced memory while deciding 10,000: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
