"""Benchmark: contacts scored and decided per second on one core (target: 100,000/s).

    python bench/score_throughput.py [--contacts 100000] [--seed 7] [--repeat 3]

Contacts are generated first (not timed), then `decide()` runs over all of them: scoring,
stage, temperature and task planning, exactly what the engine calls per record. The reasons
text is written only when read (a task body, or the engine comparing the CRM's `reasons`
field), so a second figure adds `format_reasons` for every contact: the worst case, a run
in which every contact's reasons are compared. Each figure is the best of `--repeat` passes;
CPU time is printed too, as other processes on the machine skew wall time.
"""

from __future__ import annotations

import argparse
import math
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
    format_reasons,
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
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best one counts")
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

    def timed(with_text: bool) -> tuple[float, float, int]:
        """Best wall and CPU seconds over the passes, and the tasks planned."""
        best_wall = best_cpu = math.inf
        for _ in range(max(1, args.repeat)):
            tasks = 0
            started, cpu = time.perf_counter(), time.process_time()
            if with_text:
                for contact in contacts:
                    decision = decide(contact, rules, NOW)
                    format_reasons(decision.score.reasons)
            else:
                for contact in contacts:
                    tasks += len(decide(contact, rules, NOW).tasks)
            best_wall = min(best_wall, time.perf_counter() - started)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        return best_wall, best_cpu, tasks

    elapsed, cpu, tasks = timed(with_text=False)
    text_elapsed, text_cpu, _ = timed(with_text=True)

    tracemalloc.start()
    for contact in contacts[:10_000]:
        decide(contact, rules, NOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"contacts: {len(contacts):,} ({events:,} events), tasks planned: {tasks:,}")
    print(f"elapsed: {elapsed:.2f} s on one core ({cpu:.2f} s CPU)")
    print(f"throughput: {len(contacts) / elapsed:,.0f} contacts/s (target 100,000/s)")
    print(f"  by CPU time: {len(contacts) / cpu:,.0f} contacts/s")
    print(
        f"with every reasons text written: {len(contacts) / text_elapsed:,.0f} contacts/s"
        f" ({len(contacts) / text_cpu:,.0f} by CPU time)"
    )
    print(f"peak traced memory while deciding 10,000: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
