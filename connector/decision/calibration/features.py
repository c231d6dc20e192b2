"""What the model can weigh: every signal, every profile trait the rules know or the data
shows often enough, and every negative, measured on each person at their cut-off.

A signal's value is what its points multiply: its occurrences, decayed as scoring decays them,
up to the occurrences its cap allows (cap / weight). Re-weighted with the same cap in
occurrences, proposed points reproduce the fitted model exactly. Profile traits and negatives
are 0 or 1. Negatives are found by scoring with probe points (`PROBE_POINTS`), so they mean
exactly what scoring means by them (throw-away domains, placeholder names...).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from crm_qualify.connector.decision.calibration.dataset import Example
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.decision.scoring import compile_rules, decay_factor, score_contact
from crm_qualify.connector.model import Contact, EventType

NEGATIVES = ("unsubscribed", "hard_bounce", "free_mail", "disposable", "personal_title",
             "invalid_data")  # fmt: skip
_NON_WORD = re.compile(r"[^\w]+")
PROBE_POINTS = {"unsubscribed": -1.0, "hard_bounce": -2.0, "free_mail": -4.0, "disposable": -8.0,
                "personal_title": -16.0, "invalid_data": -32.0}  # fmt: skip
"""Negative points that tell, from the fit alone, which negatives a person carries: scoring
decides what each negative means (throw-away domains, placeholder names...), without the
cost of writing its reasons. The most is 1+2+4+8+16+2x32 = 95, inside scoring's -100 floor."""

Family = Literal["signal", "fit", "negative"]


@dataclass(frozen=True)
class Feature:
    """One thing the rules give points for (or could)."""

    key: str
    """Where its points live under `[rules]`: `weights.demo_request`, `fit.industries.Retail`,
    `fit.titles.0`, `fit.company_size.1`, `negatives.free_mail`."""
    family: Family
    label: str
    current: float
    """Points today (per occurrence for a signal; 0 for a trait the rules do not know yet)."""
    cap: float | None = None
    per_cap: float = 1.0
    """Signals: the occurrences the current cap allows; proposed caps keep it."""
    configured: bool = True


def _words(text: str) -> str:
    return f" {_NON_WORD.sub(' ', text.casefold()).strip()} "


def candidate_features(
    rules: Rules, contacts: Sequence[Contact], min_carriers: int
) -> list[Feature]:
    """Signals, configured profile rules, industries and countries seen on at least
    `min_carriers` people, and the negatives."""
    features = []
    for kind in EventType:
        weight, cap = rules.weights.get(kind, 0.0), rules.caps.get(kind, 0.0)
        per_cap = cap / weight if weight > 0 and cap > 0 else 1.0
        features.append(
            Feature(
                f"weights.{kind.value}",
                "signal",
                kind.value.replace("_", " "),
                weight,
                cap,
                per_cap,
            )  # fmt: skip
        )
    for table, attribute in (("industries", "industry"), ("countries", "country")):
        configured = getattr(rules.fit, table)
        known = {name.casefold() for name in configured}
        for name, points in configured.items():
            features.append(Feature(f"fit.{table}.{name}", "fit", f"{attribute} {name}", points))
        seen = Counter(getattr(c, attribute) for c in contacts if getattr(c, attribute))
        for name, count in seen.most_common():
            if count >= min_carriers and name.casefold() not in known:
                known.add(name.casefold())
                features.append(
                    Feature(
                        f"fit.{table}.{name}", "fit", f"{attribute} {name}", 0.0, configured=False
                    )  # fmt: skip
                )
    for index, rule in enumerate(rules.fit.titles):
        label = "title " + "/".join(rule.contains)
        features.append(Feature(f"fit.titles.{index}", "fit", label, rule.points))
    for index, band in enumerate(rules.fit.company_size):
        top = "+" if band.max is None else f"-{band.max}"
        label = f"company size {band.min}{top}"
        features.append(Feature(f"fit.company_size.{index}", "fit", label, band.points))
    for name in NEGATIVES:
        label = name.replace("_", " ")
        features.append(
            Feature(f"negatives.{name}", "negative", label, getattr(rules.negatives, name))
        )
    return features


def feature_matrix(
    features: Sequence[Feature], examples: Sequence[Example], rules: Rules
) -> np.ndarray:
    """One row per person, one column per feature, measured at each person's cut-off."""
    column = {feature.key: i for i, feature in enumerate(features)}
    matrix = np.zeros((len(examples), len(features)))
    probe = compile_rules(Rules(negatives=rules.negatives.model_copy(update=PROBE_POINTS)))
    decay = rules.decay
    titles = [tuple(_words(w) for w in rule.contains) for rule in rules.fit.titles]
    for row, example in enumerate(examples):
        contact, cutoff = example.facts, example.cutoff
        occurrences: dict[str, float] = {}
        for event in contact.events:
            days = (cutoff - event.at).days
            factor = decay_factor(days, decay.fresh_days, decay.half_life(event.type))
            key = f"weights.{event.type.value}"
            occurrences[key] = occurrences.get(key, 0.0) + factor * event.count
        for key, value in occurrences.items():
            matrix[row, column[key]] = min(value, features[column[key]].per_cap)
        for table, value in (("industries", contact.industry), ("countries", contact.country)):
            if value:
                for key in _matching(column, f"fit.{table}.", value):
                    matrix[row, column[key]] = 1.0
        if contact.title:
            words = _words(contact.title)
            hit = next(
                (i for i, needles in enumerate(titles) if any(w in words for w in needles)), None
            )
            if hit is not None:
                matrix[row, column[f"fit.titles.{hit}"]] = 1.0
        if contact.employees is not None:
            for index, band in enumerate(rules.fit.company_size):
                if (
                    band.min
                    <= contact.employees
                    <= (band.max if band.max is not None else contact.employees)
                ):
                    matrix[row, column[f"fit.company_size.{index}"]] = 1.0
                    break
        for name in negatives_of(score_contact(contact, probe, cutoff).score.fit):
            matrix[row, column[f"negatives.{name}"]] = 1.0
    return matrix


def negatives_of(probe_fit: int) -> list[str]:
    """The negatives behind a fit scored with `PROBE_POINTS` (and no profile rules): each one
    a bit of the total, invalid data (which can count twice) above them all."""
    total = -probe_fit
    found = [name for name, points in PROBE_POINTS.items() if name != "invalid_data"
             and total % 32 & -int(points)]  # fmt: skip
    return found + (["invalid_data"] if total >= 32 else [])


def _matching(column: dict[str, int], prefix: str, value: str) -> list[str]:
    """Keys under `prefix` naming `value`, compared case-insensitively as scoring does."""
    wanted = value.casefold()
    return [
        key for key in column if key.startswith(prefix) and key[len(prefix) :].casefold() == wanted
    ]
