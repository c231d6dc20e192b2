"""The fitted model, turned back into our points.

scikit-learn's L2-regularised logistic regression, because its coefficients are additive
log-odds, exactly the shape of our rules (points that add up), and the penalty keeps rare
signals from swinging to extremes. The penalty's strength is chosen by cross-validation on
earlier-to-later folds of the training people (`TimeSeriesSplit`), so it is chosen the way
it will be judged. A coefficient becomes points at `points_per_doubling` points for twice
the odds of winning, rounded to whole points and held within bounds.

Constraints keep it our model: a signal never takes points away (its weight stays 0 or
more; negatives live in `negatives`), a negative never gives points (-1 at least), and a
signal or trait carried by too few people keeps its current points and is flagged. A signal
or negative whose fit has the wrong sign is taken out and the rest fitted again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from crm_qualify.connector.decision.calibration.evidence import lift
from crm_qualify.connector.decision.calibration.features import Feature
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.rules import Rules
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TimeSeriesSplit
from threadpoolctl import threadpool_limits

Status = Literal[
    "fitted", "too little data", "no effect", "kept: data disagrees", "not significant"
]
C_GRID = np.logspace(-2, 2, 5)
FOLDS = 4
"""Earlier-to-later folds the penalty is chosen on; fewer when fewer people allow it."""
SOLVER = "newton-cholesky"
"""Newton steps on the few columns we have: exact and fast when people far outnumber them."""


@dataclass(frozen=True)
class Fitted:
    """One feature's outcome: its coefficient (log-odds per unit) and proposed points."""

    feature: Feature
    status: Status
    coefficient: float | None
    points: float
    cap: float | None


def fit_points(
    features: Sequence[Feature],
    x: np.ndarray,
    won: np.ndarray,
    settings: CalibrateSettings,
) -> tuple[list[Fitted], float]:
    """Proposed points per feature from the training people (rows in time order), and the
    regularisation strength chosen. A trait the rules do not know yet enters only when its
    lift's interval excludes 1 on these people: a new key needs evidence, not a hunch."""
    carriers = x > 0
    enough = (carriers.sum(axis=0) >= settings.min_carriers) & (
        (carriers & won[:, None]).sum(axis=0) >= settings.min_carrier_conversions
    )
    unproven = {
        i
        for i, feature in enumerate(features)
        if not feature.configured and enough[i] and not lift(carriers[:, i], won).excludes_one
    }
    active = [i for i in range(len(features)) if enough[i] and i not in unproven]
    with threadpool_limits(limits=1):  # BLAS threads cost more than they give on 30 columns
        results, strength = _fit_constrained(features, x, won, active, settings)
    return [
        Fitted(r.feature, "not significant", None, r.points, r.cap) if i in unproven else r
        for i, r in enumerate(results)
    ], strength


def _fit_constrained(
    features: Sequence[Feature],
    x: np.ndarray,
    won: np.ndarray,
    active: list[int],
    settings: CalibrateSettings,
) -> tuple[list[Fitted], float]:
    strength = _choose_c(x[:, active], won) if active else 1.0
    dropped: dict[int, Status] = {}
    coefficients: dict[int, float] = {}
    while active:
        model = _fit(x[:, active], won, strength)
        coefficients = dict(zip(active, model.coef_[0].tolist(), strict=True))
        wrong = {
            i: c
            for i, c in coefficients.items()
            if (features[i].family == "signal" and c < 0)
            or (features[i].family == "negative" and c > 0)
        }
        if not wrong:
            break
        for i in wrong:
            dropped[i] = "no effect" if features[i].family == "signal" else "kept: data disagrees"
        active = [i for i in active if i not in wrong]
    results = []
    for i, feature in enumerate(features):
        if i in coefficients and i in active:
            results.append(_points(feature, coefficients[i], settings))
        elif i in dropped and dropped[i] == "no effect":
            results.append(Fitted(feature, "no effect", None, 0.0, feature.cap))
        else:
            status: Status = dropped.get(i, "too little data")
            results.append(Fitted(feature, status, None, feature.current, feature.cap))
    return results, strength


def _points(feature: Feature, coefficient: float, settings: CalibrateSettings) -> Fitted:
    raw = coefficient / math.log(2) * settings.points_per_doubling
    if feature.family == "signal":
        weight = float(min(settings.max_weight, max(0, round(raw))))
        cap = float(min(100, round(weight * feature.per_cap))) if weight else feature.cap
        return Fitted(feature, "fitted", coefficient, weight, cap)
    bound = settings.max_fit_points
    if feature.family == "negative":
        return Fitted(feature, "fitted", coefficient, float(min(-1, max(-bound, round(raw)))), None)
    return Fitted(feature, "fitted", coefficient, float(min(bound, max(-bound, round(raw)))), None)


def _fit(x: np.ndarray, won: np.ndarray, strength: float) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=strength, solver=SOLVER, max_iter=500).fit(x, won)


def _choose_c(x: np.ndarray, won: np.ndarray) -> float:
    """The penalty that ranks later people best when fitted on earlier ones (mean AUC over
    earlier-to-later folds; the strongest penalty on a tie). With no fold holding wins and
    losses on both sides, or too few people for two folds, scikit-learn's default: 1."""
    splits = min(FOLDS, len(x) - 1)  # k folds need k + 1 people
    if splits < 2:
        return 1.0
    folds = [
        (train, test)
        for train, test in TimeSeriesSplit(n_splits=splits).split(x)
        if won[train].any() and not won[train].all() and won[test].any() and not won[test].all()
    ]
    if not folds:
        return 1.0
    best, found = 1.0, -1.0
    for strength in C_GRID:
        ranked = [
            roc_auc_score(
                won[test], _fit(x[train], won[train], strength).decision_function(x[test])
            )
            for train, test in folds
        ]
        if float(np.mean(ranked)) > found + 1e-9:
            best, found = float(strength), float(np.mean(ranked))
    return best


@dataclass(frozen=True)
class Change:
    """One key of the proposal: where it lives under `[rules]`, old and new, and why."""

    key: str
    old: Any
    new: Any
    evidence: str


def apply_changes(rules: Rules, changes: Sequence[Change]) -> Rules:
    """`rules` with the proposal's keys set: what the rules would be once applied."""
    document = rules.model_dump(mode="json")
    for change in changes:
        set_key(document, change.key, change.new)
    return Rules.model_validate(document)


def set_key(document: dict[str, Any], key: str, value: Any) -> None:
    """Set a proposal key in the dumped rules: `weights.demo_request`, `fit.industries.IT
    Services` (a name may hold dots and spaces), `fit.titles.0` (the first title rule's
    points)."""
    table, _, name = key.partition(".")
    if table == "fit":
        table, _, name = name.partition(".")
        if table in ("titles", "company_size"):
            document["fit"][table][int(name)]["points"] = value
        else:
            document["fit"][table][name] = value
    else:
        document[table][name] = value
