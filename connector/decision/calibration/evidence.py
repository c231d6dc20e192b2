"""The numbers a person can check by hand: conversion with and without a signal, its lift
with a 95% confidence interval, and how well a rule set ranks people (AUC, precision and
recall at the MQL threshold, observed win rate per score band)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

Z95 = 1.959964
BANDS = ((0, 19), (20, 39), (40, 59), (60, 79), (80, 100))


@dataclass(frozen=True)
class Lift:
    carriers: int
    carrier_wins: int
    others: int
    other_wins: int
    lift: float | None
    low: float | None
    high: float | None

    @property
    def excludes_one(self) -> bool:
        """Whether the 95% interval says carriers convert differently from the others."""
        return self.low is not None and self.high is not None and (self.low > 1 or self.high < 1)

    @property
    def with_rate(self) -> float | None:
        return self.carrier_wins / self.carriers if self.carriers else None

    @property
    def without_rate(self) -> float | None:
        return self.other_wins / self.others if self.others else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "conversion_with": _round(self.with_rate),
            "conversion_without": _round(self.without_rate),
            "lift": _round(self.lift),
            "low": _round(self.low),
            "high": _round(self.high),
        }


def lift(carrier: np.ndarray, won: np.ndarray) -> Lift:
    """Win rate of carriers over non-carriers (a risk ratio), with Katz's log interval; a
    half is added to every cell when one is empty, so a rare signal gets a wide interval
    instead of an infinite one, widened to hold the ratio itself (0 when no carrier won)."""
    a = int(np.sum(carrier & won))
    n1 = int(np.sum(carrier))
    c = int(np.sum(~carrier & won))
    n0 = int(np.sum(~carrier))
    if n1 == 0 or n0 == 0:
        return Lift(n1, a, n0, c, None, None, None)
    aa, cc, m1, m0 = float(a), float(c), float(n1), float(n0)
    if a == 0 or c == 0 or a == n1 or c == n0:
        aa, cc, m1, m0 = aa + 0.5, cc + 0.5, m1 + 1, m0 + 1
    ratio = (aa / m1) / (cc / m0)
    spread = Z95 * math.sqrt(1 / aa - 1 / m1 + 1 / cc - 1 / m0)
    low, high = ratio * math.exp(-spread), ratio * math.exp(spread)
    value = (a / n1) / (c / n0) if c else None
    if value is not None:  # the corrected interval around an uncorrected 0 (no carrier wins)
        low, high = min(low, value), max(high, value)
    return Lift(n1, a, n0, c, value, low, high)


@dataclass(frozen=True)
class Ranking:
    """How one rule set did on the held-out people."""

    auc: float
    threshold: float
    handed_over: int
    precision: float | None
    recall: float
    roc: list[tuple[float, float]]
    bands: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "auc": round(self.auc, 3),
            "mql_threshold": self.threshold,
            "handed_over": self.handed_over,
            "precision": _round(self.precision),
            "recall": round(self.recall, 3),
            "calibration": self.bands,
            "roc": [[round(x, 4), round(y, 4)] for x, y in self.roc],
        }


def ranking(scores: np.ndarray, won: np.ndarray, threshold: float) -> Ranking:
    """AUC (ties count half), hand-offs at `threshold`, the ROC curve and the score bands."""
    handed = scores >= threshold
    hits = int(np.sum(handed & won))
    fpr, tpr, _ = roc_curve(won, scores)
    return Ranking(
        auc=float(roc_auc_score(won, scores)),
        threshold=threshold,
        handed_over=int(np.sum(handed)),
        precision=hits / int(np.sum(handed)) if np.any(handed) else None,
        recall=hits / max(1, int(np.sum(won))),
        roc=list(zip(fpr.tolist(), tpr.tolist(), strict=True)),
        bands=calibration_bands(scores, won),
    )


def calibration_bands(scores: np.ndarray, won: np.ndarray) -> list[dict[str, Any]]:
    """Per score band: people, wins, and the observed win rate."""
    rows = []
    for low, high in BANDS:
        inside = (scores >= low) & (scores <= high)
        people = int(np.sum(inside))
        wins = int(np.sum(inside & won))
        rows.append(
            {"band": f"{low}-{high}", "people": people, "wins": wins,
             "win_rate": round(wins / people, 3) if people else None}
        )  # fmt: skip
    return rows


def threshold_for_share(scores: np.ndarray, share: float) -> int:
    """The whole-point threshold whose hand-off share is nearest `share` (the higher one on a
    tie: fewer, better hand-offs)."""
    best, gap = 100, math.inf
    for threshold in range(100, -1, -1):
        found = abs(float(np.mean(scores >= threshold)) - share)
        if found < gap - 1e-12:
            best, gap = threshold, found
    return best


def threshold_for_precision(scores: np.ndarray, won: np.ndarray, precision: float) -> int | None:
    """The lowest whole-point threshold whose hand-offs win at least `precision` of the time
    (None when none does)."""
    for threshold in range(0, 101):
        handed = scores >= threshold
        if np.any(handed) and float(np.mean(won[handed])) >= precision:
            return threshold
    return None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
