"""The long kill loop: many SIGKILLed syncs, each rerun and compared with a clean sync.

    python bench/kill_loop.py --trials 40 --contacts 1000 [--crm salesforce]

Prints one line per trial, then what differs (task keys, records with their clean and killed
owned values), and the totals; exits 1 if any trial duplicated, lost or differed. `--keep DIR`
keeps each trial's configurations and both state files (audit trail, tasks, mirror, people) to
read a difference's history.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kill_harness import one_trial  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--contacts", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crm", choices=["hubspot", "salesforce"], default="hubspot")
    parser.add_argument("--keep", type=Path, help="keep each trial's configs and state files here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bad = kills = 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or temporary
        for trial in range(args.trials):
            outcome = one_trial(
                Path(folder) / str(trial), args.contacts, args.seed + trial, rng, args.crm
            )
            kills += outcome.kills
            wrong = (
                outcome.duplicate_tasks
                or outcome.missing_tasks
                or outcome.extra_tasks
                or outcome.differing_contacts
            )
            bad += bool(wrong)
            print(f"trial {trial + 1}: {outcome}", flush=True)
            for difference in outcome.differences:
                print(f"  {difference}", flush=True)
    print(f"{args.trials} trials, {kills} kills, {bad} trials not converged")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
