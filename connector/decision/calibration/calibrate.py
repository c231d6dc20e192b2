"""From a dataset to evidence, a proposal and its evaluation (pure: no I/O).

The people are split by time: the earlier `1 - holdout_share` train the model, the later
ones judge it. Current and proposed rules score the same held-out people at their cut-offs;
the suggested MQL threshold is chosen on the training people only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from crm_qualify.connector.decision.calibration.dataset import Dataset, Example
from crm_qualify.connector.decision.calibration.evidence import (
    Lift,
    Ranking,
    lift,
    ranking,
    threshold_for_precision,
    threshold_for_share,
)
from crm_qualify.connector.decision.calibration.features import (
    Feature,
    candidate_features,
    feature_matrix,
)
from crm_qualify.connector.decision.calibration.fit import Change, Fitted, apply_changes, fit_points
from crm_qualify.connector.decision.calibration.impact import Impact
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import compile_rules, format_points, score_contact


@dataclass
class FeatureReport:
    feature: Feature
    lift: Lift
    fitted: Fitted | None = None

    def as_dict(self) -> dict[str, Any]:
        feature, fitted = self.feature, self.fitted
        return {
            "key": feature.key,
            "family": feature.family,
            "label": feature.label,
            "configured": feature.configured,
            **self.lift.as_dict(),
            "current_points": feature.current,
            "current_cap": feature.cap,
            "status": fitted.status if fitted else None,
            "coefficient": round(fitted.coefficient, 4) if fitted and fitted.coefficient else None,
            "proposed_points": fitted.points if fitted else None,
            "proposed_cap": fitted.cap if fitted else None,
        }


@dataclass
class Evaluation:
    train: int
    test: int
    split_at: str
    strength: float
    current: Ranking
    proposed: Ranking

    @property
    def better(self) -> bool:
        return self.proposed.auc > self.current.auc

    def as_dict(self) -> dict[str, Any]:
        return {
            "train_people": self.train,
            "test_people": self.test,
            "test_from": self.split_at,
            "regularisation_c": round(self.strength, 4),
            "current": self.current.as_dict(),
            "proposed": self.proposed.as_dict(),
            "proposal_ranks_better": self.better,
        }


@dataclass
class Calibration:
    dataset: Dataset
    features: list[FeatureReport]
    withheld: str | None = None
    changes: list[Change] = field(default_factory=list)
    proposed: Rules | None = None
    evaluation: Evaluation | None = None
    impact: Impact | None = None

    def ranked(self) -> list[FeatureReport]:
        """Features carried by someone, strongest lift first."""
        shown = [f for f in self.features if f.lift.carriers]
        return sorted(shown, key=lambda f: -(f.lift.lift if f.lift.lift is not None else 99))

    def as_dict(self) -> dict[str, Any]:
        data = self.dataset
        return {
            "source": data.source,
            "api_requests": data.api_requests,
            "window": {"since": data.since.isoformat(), "until": data.until.isoformat()},
            "people": len(data.examples),
            "conversions": data.conversions,
            "outcomes": data.counts(),
            "skipped": data.skipped,
            "withheld": self.withheld,
            "features": [f.as_dict() for f in self.ranked()],
            "proposal": [
                {"key": c.key, "old": c.old, "new": c.new, "evidence": c.evidence}
                for c in self.changes
            ]
            if self.withheld is None
            else None,
            "evaluation": self.evaluation.as_dict() if self.evaluation else None,
            "impact": self.impact.as_dict() if self.impact else None,
        }


def calibrate(dataset: Dataset, rules: Rules, settings: CalibrateSettings) -> Calibration:
    examples = dataset.examples
    features = candidate_features(rules, [e.facts for e in examples], settings.min_carriers)
    x = feature_matrix(features, examples, rules)
    won = np.array([e.won for e in examples], dtype=bool)
    reports = [FeatureReport(f, lift(x[:, i] > 0, won)) for i, f in enumerate(features)]
    result = Calibration(dataset, reports)
    result.withheld = _too_little(dataset, settings)
    if result.withheld:
        return result
    split = int(round(len(examples) * (1 - settings.holdout_share)))
    result.withheld = _one_sided(won, split, settings)
    if result.withheld:
        return result
    fitted, strength = fit_points(features, x[:split], won[:split], settings)
    for number, (report, one) in enumerate(zip(reports, fitted, strict=True)):
        # the evidence the proposal stands on: the training people's (fit_points decides on
        # them whether a trait has enough carriers and whether a new one's lift excludes 1)
        report.lift, report.fitted = lift(x[:split, number] > 0, won[:split]), one
    changes = point_changes(reports, rules)
    proposed = apply_changes(rules, changes)
    train_now = _scores(examples[:split], rules)
    train_new = _scores(examples[:split], proposed)
    threshold = _suggest_mql(train_now, train_new, won[:split], rules, settings)
    if threshold != rules.thresholds.mql:
        changes += _threshold_changes(rules, threshold, train_now, train_new, settings)
        proposed = apply_changes(rules, changes)
    test = examples[split:]
    result.changes, result.proposed = changes, proposed
    result.evaluation = Evaluation(
        train=split,
        test=len(test),
        split_at=test[0].outcome_at.date().isoformat(),
        strength=strength,
        current=ranking(_scores(test, rules), won[split:], rules.thresholds.mql),
        proposed=ranking(_scores(test, proposed), won[split:], proposed.thresholds.mql),
    )
    return result


def _too_little(dataset: Dataset, settings: CalibrateSettings) -> str | None:
    people, wins = len(dataset.examples), dataset.conversions
    if people >= settings.min_people and wins >= settings.min_conversions:
        return None
    return (
        f"proposal withheld: {people:,} people with an outcome, {wins:,} of them won;"
        f" a proposal needs at least {settings.min_people:,} people and"
        f" {settings.min_conversions:,} wins (calibrate.min_people, calibrate.min_conversions)."
        " The lifts shown are descriptive only; widen the window (--since) or wait for more"
        " closed deals"
    )


def _one_sided(won: np.ndarray, split: int, settings: CalibrateSettings) -> str | None:
    """Why the people before `split` cannot teach a proposal or those after cannot judge it:
    a regression needs wins and losses to learn from, a ranking both to be measured. Only
    lowered minimums leave this to chance (the defaults ask for 120 wins)."""
    test_wins = int(won[split:].sum())
    if test_wins < settings.min_holdout_conversions or test_wins == len(won) - split:
        return (
            f"proposal withheld: the latest {len(won) - split:,} people (held out to"
            f" judge it) hold {test_wins} conversion(s); calibrate.min_holdout_conversions"
            f" asks for {settings.min_holdout_conversions} and some losses"
        )
    train_wins = int(won[:split].sum())
    if train_wins in (0, split):
        return (
            f"proposal withheld: the earlier {split:,} people (to learn from) hold"
            f" {train_wins} conversion(s) of {split:,}; a fit needs wins and losses among"
            " them: widen the window (--since) or wait for more closed deals"
        )
    return None


def _scores(examples: list[Example], rules: Rules) -> np.ndarray:
    compiled = compile_rules(rules)
    return np.array(
        [score_contact(e.facts, compiled, e.cutoff).score.total for e in examples], dtype=float
    )


def point_changes(reports: list[FeatureReport], rules: Rules) -> list[Change]:
    """The keys whose fitted points differ from today's, each with its evidence."""
    changes = []
    for report in reports:
        fitted, feature = report.fitted, report.feature
        if fitted is None or fitted.status not in ("fitted", "no effect"):
            continue
        evidence = _evidence(report)
        if fitted.points != feature.current:
            changes.append(Change(feature.key, feature.current, fitted.points, evidence))
        if feature.family == "signal" and fitted.cap is not None and fitted.cap != feature.cap:
            name = feature.key.removeprefix("weights.")
            occurrences = f"{feature.per_cap:g} occurrence(s)"
            changes.append(
                Change(
                    f"caps.{name}",
                    feature.cap,
                    fitted.cap,
                    f"keeps the cap at {occurrences} of the new weight",
                )  # fmt: skip
            )
    return changes


def _evidence(report: FeatureReport) -> str:
    found, fitted = report.lift, report.fitted
    assert fitted is not None
    rate = f"{found.carriers:,} carriers win {_pct(found.with_rate)} vs {_pct(found.without_rate)}"
    lift_text = (
        f"lift {found.lift:.2f} [{found.low:.2f}, {found.high:.2f}]"
        if found.lift is not None and found.low is not None and found.high is not None
        else "lift n/a"
    )
    if fitted.status == "no effect":
        return f"{rate}, {lift_text}; no gain once the other signals are counted"
    per = " per occurrence" if report.feature.family == "signal" else ""
    return f"{rate}, {lift_text}; fitted {fitted.coefficient:+.2f} log-odds{per}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _suggest_mql(
    now: np.ndarray, new: np.ndarray, won: np.ndarray, rules: Rules, settings: CalibrateSettings
) -> int:
    if settings.mql_target_precision is not None:
        found = threshold_for_precision(new, won, settings.mql_target_precision)
        return found if found is not None else int(rules.thresholds.mql)
    share = settings.mql_target_share
    if share is None:
        share = float(np.mean(now >= rules.thresholds.mql))
    return threshold_for_share(new, share)


def _threshold_changes(
    rules: Rules,
    threshold: int,
    now: np.ndarray,
    new: np.ndarray,
    settings: CalibrateSettings,
) -> list[Change]:
    today = float(np.mean(now >= rules.thresholds.mql))
    then = float(np.mean(new >= threshold))
    if settings.mql_target_precision is not None:
        why = f"lowest threshold whose training hand-offs win {_pct(settings.mql_target_precision)}"
    elif settings.mql_target_share is not None:
        why = f"hands over {_pct(then)} of people (target {_pct(settings.mql_target_share)})"
    else:
        why = (
            f"hands over {_pct(then)} of the training people, the nearest whole score to the"
            f" {_pct(today)} today's rules hand over"
        )
    changes = [Change("thresholds.mql", rules.thresholds.mql, float(threshold), why)]
    if threshold > rules.thresholds.sql:
        changes.append(
            Change(
                "thresholds.sql",
                rules.thresholds.sql,
                float(threshold),
                f"kept at or above the MQL threshold ({format_points(threshold)[1:]})",
            )  # fmt: skip
        )
    return changes
