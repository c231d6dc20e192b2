"""The calibration report as one self-contained HTML file, in the pipeline report's style.

Lift per signal as CSS bars with their interval, the ROC curves of the current and proposed
rules as inline SVG (it scales to any width), the calibration table, the proposal's keys with
their evidence, and what applying it would move. No script, no network.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from crm_qualify.connector.ops.report_html import STYLE, _card

if TYPE_CHECKING:
    # Types only: the fitting (numpy, scikit-learn) loads when `calibrate` runs, not here.
    from crm_qualify.connector.decision.calibration.calibrate import Calibration, FeatureReport
    from crm_qualify.connector.decision.calibration.evidence import Ranking

CURRENT_COLOR, PROPOSED_COLOR = "#9aa5b1", "#6366f1"
EXTRA_STYLE = """
.lift{position:relative;height:1.1rem;min-width:6rem;background:#f5f7fa;border-radius:3px}
.lift .ci{position:absolute;top:.45rem;height:.2rem;background:#cbd2d9}
.lift .pt{position:absolute;top:.15rem;width:.8rem;height:.8rem;margin-left:-.4rem;
border-radius:50%;background:#6366f1}
.lift .one{position:absolute;top:0;bottom:0;width:1px;background:#52606d}
svg.roc{width:100%;max-width:420px;height:auto;display:block}
.key{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;text-align:left;
overflow-wrap:anywhere}
.warn{border:1px solid #fcd34d;background:#fffbeb;border-radius:8px;padding:.7rem 1rem}
"""
LIFT_RANGE = 16.0
"""Lifts are ratios, drawn on a log scale from 1/16 to 16 (1 = no difference, in the middle):
a demo request at 6.5 stands apart from a meeting at 4, and 1/2 sits as far below 1 as 2
above it. Beyond the range a lift stops at the edge; its number is printed under the bar."""


def _x(value: float) -> float:
    """Percent of the bar's width for a lift."""
    span = math.log(LIFT_RANGE)
    clamped = min(max(value, 1 / LIFT_RANGE), LIFT_RANGE)
    return 50 + 50 * math.log(clamped) / span


def _lift_cell(report: FeatureReport) -> str:
    found = report.lift
    if found.lift is None or found.low is None or found.high is None:
        return '<td class="left" data-label="lift">n/a</td>'
    low, high = _x(found.low), _x(found.high)
    return (
        f'<td class="left" data-label="lift"><div class="lift" title="lift {found.lift:.2f}'
        f' [{found.low:.2f}, {found.high:.2f}]"><div class="one" style="left:{_x(1):.1f}%">'
        f'</div><div class="ci" style="left:{low:.1f}%;width:{max(high - low, 0.5):.1f}%">'
        f'</div><div class="pt" style="left:{_x(found.lift):.1f}%"></div></div>'
        f'<div class="sub">{found.lift:.2f} [{found.low:.2f}, {found.high:.2f}]</div></td>'
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _n(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _signal_rows(result: Calibration) -> str:
    rows = []
    for report in result.ranked():
        found, fitted, feature = report.lift, report.fitted, report.feature
        proposed = "" if fitted is None else _n(fitted.points)
        status = "" if fitted is None else fitted.status
        rows.append(
            f'<tr><td>{escape(feature.label)}<div class="sub">{escape(feature.family)}</div></td>'
            f'<td data-label="carriers">{found.carriers:,}</td>'
            f'<td data-label="win rate with">{_pct(found.with_rate)}</td>'
            f'<td data-label="without">{_pct(found.without_rate)}</td>'
            f"{_lift_cell(report)}"
            f'<td data-label="points now">{_n(feature.current)}</td>'
            f'<td data-label="proposed">{proposed}<div class="sub">{escape(status)}</div></td></tr>'
        )
    return (
        '<div class="scroll"><table class="cards"><tr><th class="left">signal or trait</th>'
        "<th>carriers</th><th>win rate with</th><th>without</th>"
        '<th class="left">lift (95% interval; log scale 1/16 to 16, line = 1)</th>'
        "<th>points now</th>"
        f"<th>proposed</th></tr>{''.join(rows)}</table></div>"
    )


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{10 + 180 * x:.1f},{190 - 180 * y:.1f}" for x, y in points)


def roc_svg(current: Ranking, proposed: Ranking) -> str:
    """Both ROC curves on one square: false-positive rate across, true-positive rate up."""
    return (
        '<svg class="roc" viewBox="0 0 200 215" role="img" aria-label="ROC curves">'
        '<rect x="10" y="10" width="180" height="180" fill="none" stroke="#cbd2d9"/>'
        '<line x1="10" y1="190" x2="190" y2="10" stroke="#e4e7eb" stroke-dasharray="3 3"/>'
        f'<polyline fill="none" stroke="{CURRENT_COLOR}" stroke-width="2"'
        f' points="{_path(current.roc)}"/>'
        f'<polyline fill="none" stroke="{PROPOSED_COLOR}" stroke-width="2"'
        f' points="{_path(proposed.roc)}"/>'
        '<text x="100" y="205" font-size="8" text-anchor="middle" fill="#52606d">'
        "false-positive rate</text>"
        '<text x="6" y="100" font-size="8" text-anchor="middle" fill="#52606d"'
        ' transform="rotate(-90 6 100)">true-positive rate</text></svg>'
        f'<p class="sub"><span class="dot" style="background:{CURRENT_COLOR}"></span>current'
        f' rules, AUC {current.auc:.3f} &nbsp; <span class="dot"'
        f' style="background:{PROPOSED_COLOR}"></span>proposed, AUC {proposed.auc:.3f}</p>'
    )


def _calibration_table(current: Ranking, proposed: Ranking) -> str:
    rows = "".join(
        f"<tr><td>{escape(a['band'])}</td>"
        f'<td data-label="current: people">{a["people"]:,}</td>'
        f'<td data-label="won">{_pct(a["win_rate"])}</td>'
        f'<td data-label="proposed: people">{b["people"]:,}</td>'
        f'<td data-label="won">{_pct(b["win_rate"])}</td></tr>'
        for a, b in zip(current.bands, proposed.bands, strict=True)
    )
    return (
        '<div class="scroll"><table class="cards narrow"><tr><th>score band</th>'
        "<th>current: people</th><th>won</th><th>proposed: people</th><th>won</th></tr>"
        f"{rows}</table></div>"
    )


def _changes(result: Calibration) -> str:
    rows = "".join(
        f'<tr><td class="key">{escape(c.key)}</td><td data-label="now">{_n(c.old)}</td>'
        f'<td data-label="proposed">{_n(c.new)}</td>'
        f'<td class="why" data-label="evidence">{escape(c.evidence)}</td></tr>'
        for c in result.changes
    )
    return (
        '<div class="scroll"><table class="cards"><tr><th class="left">key under [rules]</th>'
        f'<th>now</th><th>proposed</th><th class="left">evidence</th></tr>{rows}</table></div>'
    )


def _impact(result: Calibration) -> str:
    moved = result.impact
    if moved is None:
        return ""
    rows = "".join(
        f'<tr><td>{escape(move)}</td><td data-label="contacts">{n:,}</td></tr>'
        for move, n in moved.moves.most_common()
    )
    before, after = moved.mql_or_above
    table = (
        f'<div class="scroll"><table class="cards narrow"><tr><th>move</th><th>contacts</th></tr>'
        f"{rows}</table></div>"
        if rows
        else '<p class="sub">No contact would change stage or temperature.</p>'
    )
    return (
        "<h2>What would change if applied</h2>"
        f'<div class="grid">{_card("contacts decided", f"{moved.contacts:,}")}'
        f"{_card('change stage', f'{moved.stage_changes:,}')}"
        f"{_card('change temperature', f'{moved.temperature_changes:,}')}"
        f"{_card('MQL or beyond', f'{before:,} → {after:,}', 'current → proposed rules')}</div>"
        f'{table}<p class="note">Every contact decided now with the current and the proposed'
        " rules, as a run would (no write). A run never moves a stage back"
        f" ({moved.stages_kept:,} would fall back: kept, not counted) and keeps a value a"
        " person set under a write policy (unless_edited, if_empty), which this does not see:"
        " `crm-qualify sync --once --dry-run` with the proposal merged into a copy of the"
        " configuration shows exactly what lands.</p>"
    )


def calibrate_html(result: Calibration, now: datetime) -> str:
    data = result.dataset
    counts = data.counts()
    evaluation = result.evaluation
    share = data.conversions / max(1, len(data.examples))
    cards = [
        _card("people with an outcome", f"{len(data.examples):,}",
              f"{counts['lost']:,} lost, {counts['stale']:,} no deal after the horizon"),
        _card("won", f"{data.conversions:,}", f"{_pct(share)} of them"),
    ]  # fmt: skip
    body = []
    if result.withheld:
        body.append(f'<p class="warn">{escape(result.withheld)}.</p>')
    if evaluation is not None:
        old, new = evaluation.current, evaluation.proposed
        cards += [
            _card("AUC on held-out people", f"{old.auc:.3f} → {new.auc:.3f}",
                  f"current → proposed, {evaluation.test:,} people from {evaluation.split_at}",
                  alert=not evaluation.better),
            _card("precision at MQL", f"{_pct(old.precision)} → {_pct(new.precision)}",
                  f"threshold {_n(old.threshold)} → {_n(new.threshold)}"),
            _card("recall at MQL", f"{_pct(old.recall)} → {_pct(new.recall)}",
                  f"{old.handed_over:,} → {new.handed_over:,} handed over"),
        ]  # fmt: skip
        if not evaluation.better:
            body.append(
                '<p class="warn">The proposal does not rank the held-out people better than'
                " the current rules: keep the current rules.</p>"
            )
        else:
            fewer = (
                f" It hands fewer of them to sales at the MQL threshold ({old.handed_over:,} →"
                f" {new.handed_over:,}): check that the team agrees."
                if new.handed_over < old.handed_over
                else ""
            )
            body.append(
                '<p class="note">The proposal ranks the held-out people better than the current'
                f" rules.{fewer} Compare the two on your own contacts with"
                " <code>crm-qualify score --compare</code> before applying it.</p>"
            )
        body.append(
            '<p class="note">AUC: the chance that a person who won scores above one who did not'
            " (0.5 is a coin toss, 1 a perfect order). Precision: the share of the people handed"
            " over at the MQL threshold who won; recall: the share of the winners handed"
            " over.</p>"
        )
    body.append(f"<h2>Lift per signal and trait</h2>{_signal_rows(result)}")
    body.append(
        '<p class="note">Lift: the win rate of the people carrying it before their outcome,'
        " over the win rate of the others. Proposed points come from a regularised logistic"
        " regression of all of them together, so a signal that only travels with a stronger"
        " one gets few points despite its lift.</p>"
    )
    if evaluation is not None:
        body.append(
            f"<h2>ROC: current vs proposed</h2>{roc_svg(evaluation.current, evaluation.proposed)}"
        )
        body.append(
            "<h2>Calibration: observed win rate per score band</h2>"
            f"{_calibration_table(evaluation.current, evaluation.proposed)}"
            '<p class="note">The held-out people only: trained on the earlier '
            f"{evaluation.train:,}, judged on the later {evaluation.test:,}.</p>"
        )
        body.append(f"<h2>Proposal: {len(result.changes)} changed key(s)</h2>{_changes(result)}")
        body.append(_impact(result))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crm-qualify calibration</title>
<style>{STYLE}{EXTRA_STYLE}</style></head><body>
<h1>Calibration on won deals</h1>
<div class="sub">{now:%Y-%m-%d %H:%M} UTC · outcomes {data.since:%Y-%m-%d} to
{data.until:%Y-%m-%d} · from the {escape(data.source)} · {data.api_requests:,} API request(s) ·
nothing applied</div>
<h2>Key numbers</h2><div class="grid">{"".join(cards)}</div>
{"".join(body)}
</body></html>
"""
