"""The proposal as TOML: only the keys that change, each under a comment with its evidence.

It has the shape of the configuration's `[rules]` tables, so a person merges it by copying
keys, and `crm-qualify score --compare current.toml proposal.toml contacts.jsonl` reads it
as it is. A list of tables (title rules, size bands) is written whole when one entry changes:
TOML cannot set one entry of a list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crm_qualify.connector.decision.rules import Rules

if TYPE_CHECKING:
    # Types only: the fitting (numpy, scikit-learn) loads when `calibrate` runs, not here.
    from crm_qualify.connector.decision.calibration.calibrate import Calibration
    from crm_qualify.connector.decision.calibration.fit import Change

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_LISTS = ("fit.titles", "fit.company_size")


def proposal_toml(result: Calibration, rules: Rules, now: datetime) -> str:
    """The file `--out` writes (only when a proposal was made)."""
    evaluation = result.evaluation
    data = result.dataset
    assert evaluation is not None
    now_rank, new_rank = evaluation.current, evaluation.proposed
    lines = [
        f"# crm-qualify calibrate: proposed scoring rules, {now:%Y-%m-%d %H:%M} UTC.",
        f"# Learnt from {len(data.examples):,} people with an outcome between"
        f" {data.since:%Y-%m-%d} and {data.until:%Y-%m-%d} ({data.conversions:,} won),"
        f" read from the {data.source}.",
        f"# Judged on the latest {evaluation.test:,} of them (from {evaluation.split_at}), kept"
        f" out of the fit: AUC {now_rank.auc:.3f} -> {new_rank.auc:.3f}; at the MQL threshold"
        f" precision {_pct(now_rank.precision)} -> {_pct(new_rank.precision)},"
        f" recall {_pct(now_rank.recall)} -> {_pct(new_rank.recall)}.",
    ]
    if not evaluation.better:
        lines.append(
            "# WARNING: the proposal does not rank the held-out people better than the current"
            " rules: keep the current rules."
        )
    lines += [
        "# Only the keys that change. Nothing was applied: try it with `crm-qualify score"
        " --compare`, then merge these keys into the [rules] tables of your configuration.",
        "",
    ]
    tables: dict[str, list[Change]] = {}
    for change in result.changes:
        table, _ = _split(change.key)
        tables.setdefault(table, []).append(change)
    for table, changes in tables.items():
        if table in _LISTS:
            lines += _list_table(table, changes, rules)
            continue
        lines.append(f"[rules.{table}]")
        for change in changes:
            _, name = _split(change.key)
            lines.append(f"# {change.evidence}")
            lines.append(f"{_key(name)} = {_value(change.new)}  # was {_value(change.old)}")
        lines.append("")
    return "\n".join(lines)


def _split(key: str) -> tuple[str, str]:
    """('fit.industries', 'IT Services') for 'fit.industries.IT Services'."""
    if key.startswith("fit."):
        table, _, name = key.removeprefix("fit.").partition(".")
        return f"fit.{table}", name
    table, _, name = key.partition(".")
    return table, name


def _list_table(table: str, changes: Sequence[Change], rules: Rules) -> list[str]:
    by_index = {int(_split(c.key)[1]): c for c in changes}
    entries = rules.fit.titles if table == "fit.titles" else rules.fit.company_size
    lines = [f"# The whole list of {table.removeprefix('fit.')} rules, in order (TOML cannot"
             " change one entry of a list)."]  # fmt: skip
    for index, entry in enumerate(entries):
        change = by_index.get(index)
        document: dict[str, Any] = entry.model_dump(exclude_none=True)
        points = document.pop("points")
        lines.append(f"[[rules.{table}]]")
        lines += [f"{name} = {_value(value)}" for name, value in document.items()]
        if change is None:
            lines.append(f"points = {_value(points)}")
        else:
            lines.append(f"# {change.evidence}")
            lines.append(f"points = {_value(change.new)}  # was {_value(change.old)}")
        lines.append("")
    return lines


def _key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"
