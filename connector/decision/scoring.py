"""Points with reasons: fit, engagement and intent, decayed, capped and explained. Pure, no I/O.

Every point comes with a line a salesperson can read ("+40 demo request 2026-11-18"). The rules
are compiled once per `Rules` object so scoring a contact is a few dictionary look-ups.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from crm_qualify.connector.decision.rules import Rules, rules_version
from crm_qualify.connector.model import Contact, EventType, Reason, Score

_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")
_PLACEHOLDER_NAMES = frozenset({"test", "asdf", "xxx", "none", "n/a", "na", "unknown", "aaa"})
_DAY = 86_400.0
_NON_WORD = re.compile(r"[^\w]+")


def _words(text: str) -> str:
    """' it director ': padded lower-case words, so 'cto' matches 'CTO' but not 'Director'."""
    return f" {_NON_WORD.sub(' ', text.casefold()).strip()} "


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """`Rules` turned into the sets and tuples the hot path needs, plus its version."""

    rules: Rules
    version: str
    signals: dict[EventType, tuple[float, float, str, str, str]]
    """Per signal: weight, cap, name, label, family."""
    fresh_seconds: float
    half_life_seconds: float
    industries: dict[str, float]
    countries: dict[str, float]
    titles: tuple[tuple[tuple[str, ...], float], ...]
    free_mail: frozenset[str]
    disposable: frozenset[str]
    competitors: frozenset[str]
    personal_words: tuple[str, ...]


def compile_rules(rules: Rules) -> CompiledRules:
    """Compile once per rules object (they are frozen) and remember it."""
    cached = _COMPILED.get(id(rules))
    if cached is not None and cached.rules is rules:
        return cached
    negatives = rules.negatives
    intent = frozenset(rules.intent_signals)
    compiled = CompiledRules(
        rules=rules,
        version=rules_version(rules),
        signals={
            kind: (
                rules.weights.get(kind, 0.0),
                rules.caps.get(kind, math.inf),
                kind.value,
                kind.value.replace("_", " "),
                "intent" if kind in intent else "engagement",
            )
            for kind in EventType
        },
        fresh_seconds=rules.decay.fresh_days * _DAY,
        half_life_seconds=rules.decay.half_life_days * _DAY,
        industries={k.casefold(): v for k, v in rules.fit.industries.items()},
        countries={k.casefold(): v for k, v in rules.fit.countries.items()},
        titles=tuple(
            (tuple(_words(word) for word in rule.contains), rule.points)
            for rule in rules.fit.titles
        ),
        free_mail=frozenset(d.casefold() for d in negatives.free_mail_domains),
        disposable=frozenset(d.casefold() for d in negatives.disposable_domains),
        competitors=frozenset(d.casefold() for d in negatives.competitor_domains),
        personal_words=tuple(_words(w) for w in negatives.personal_title_words),
    )
    if len(_COMPILED) > 64:
        _COMPILED.clear()
    _COMPILED[id(rules)] = compiled
    return compiled


_COMPILED: dict[int, CompiledRules] = {}


@dataclass(frozen=True, slots=True)
class ScoreResult:
    score: Score
    disqualified: bool
    last_activity: datetime | None


def format_points(points: float) -> str:
    """'+40', '-10', '+7.5': whole numbers without decimals, as a person writes them."""
    rounded = round(points, 1)
    text = f"{rounded:+.0f}" if rounded == int(rounded) else f"{rounded:+.1f}"
    return text


def _reason(signal: str, family: str, points: float, why: str) -> Reason:
    return Reason(signal=signal, family=family, points=points, why=why)


def _event_reasons(
    contact: Contact, rules: CompiledRules, now: datetime
) -> tuple[list[Reason], float, float, datetime | None]:
    """One reason per signal: decayed points per occurrence, summed, then capped."""
    now_ts = now.timestamp()
    fresh, half_life = rules.fresh_seconds, rules.half_life_seconds
    # per signal: [points, count, latest, decayed]
    seen: dict[EventType, list] = {}
    for event in contact.events:
        at = event.at
        age = now_ts - at.timestamp()
        factor = 0.5 ** ((age - fresh) / half_life) if age > fresh else 1.0
        entry = seen.get(event.type)
        if entry is None:
            seen[event.type] = [factor * event.count, event.count, at, factor < 1.0]
            continue
        entry[0] += factor * event.count
        entry[1] += event.count
        if at > entry[2]:
            entry[2] = at
        if factor < 1.0:
            entry[3] = True
    reasons: list[Reason] = []
    engagement = intent = 0.0
    latest = {}
    for kind, (occurrences, count, last_at, decayed) in seen.items():
        latest[kind] = last_at
        weight, cap, name, label, family = rules.signals[kind]
        points = weight * occurrences
        capped = points > cap
        if capped:
            points = cap
        points = round(points, 1)
        if points == 0:
            continue
        day = last_at.date().isoformat()
        why = f"{format_points(points)} {label} " + (f"x{count}, last {day}" if count > 1 else day)
        if capped or decayed:
            why += (
                " (capped, decayed)"
                if capped and decayed
                else (" (capped)" if capped else " (decayed)")
            )
        reasons.append(Reason(signal=name, family=family, points=points, why=why))
        if family == "intent":
            intent += points
        else:
            engagement += points
    last = max(latest.values()) if latest else None
    return reasons, engagement, intent, last


def _fit_reasons(contact: Contact, rules: CompiledRules) -> list[Reason]:
    reasons = []
    if contact.industry and (points := rules.industries.get(contact.industry.casefold())):
        reasons.append(
            _reason(
                "industry", "fit", points, f"{format_points(points)} industry {contact.industry}"
            )
        )
    if contact.country and (points := rules.countries.get(contact.country.casefold())):
        reasons.append(
            _reason("country", "fit", points, f"{format_points(points)} country {contact.country}")
        )
    if contact.title and rules.titles:
        title = _words(contact.title)
        for words, points in rules.titles:
            if any(word in title for word in words):
                reasons.append(
                    _reason(
                        "title", "fit", points, f"{format_points(points)} title {contact.title}"
                    )
                )
                break
    if contact.employees is not None:
        for band in rules.rules.fit.company_size:
            if band.min <= contact.employees and (
                band.max is None or contact.employees <= band.max
            ):
                reasons.append(
                    _reason(
                        "company_size",
                        "fit",
                        band.points,
                        f"{format_points(band.points)} company size {contact.employees}",
                    )
                )
                break
    return reasons


def _negative_reasons(contact: Contact, rules: CompiledRules) -> tuple[list[Reason], bool]:
    """Consent, address and data-quality signals; True when the contact is disqualified."""
    negatives = rules.rules.negatives
    reasons: list[Reason] = []
    disqualified = False

    def add(signal: str, points: float, why: str) -> None:
        if points:
            reasons.append(_reason(signal, "negative", points, f"{format_points(points)} {why}"))

    if contact.unsubscribed:
        add("unsubscribed", negatives.unsubscribed, "unsubscribed")
    if contact.hard_bounced:
        add("hard_bounce", negatives.hard_bounce, "hard bounce")
    email = (contact.email or "").strip()
    if email:
        if not _EMAIL.match(email):
            add("invalid_data", negatives.invalid_data, "invalid email address")
        else:
            domain = email.rsplit("@", 1)[1].casefold()
            if domain in rules.competitors:
                disqualified = True
                reasons.append(
                    _reason(
                        "competitor", "negative", 0, f"disqualified: competitor domain {domain}"
                    )
                )
            elif domain in rules.disposable:
                add("disposable", negatives.disposable, f"disposable email domain {domain}")
                disqualified = negatives.disposable_disqualifies
                if disqualified:
                    reasons.append(
                        _reason("disposable", "negative", 0, "disqualified: throw-away address")
                    )
            elif domain in rules.free_mail:
                add("free_mail", negatives.free_mail, f"free-mail domain {domain}")
    names = {
        (contact.first_name or "").strip().casefold(),
        (contact.last_name or "").strip().casefold(),
    }
    if names & _PLACEHOLDER_NAMES:
        add("invalid_data", negatives.invalid_data, "placeholder name")
    if contact.title:
        title = _words(contact.title)
        if any(word in title for word in rules.personal_words):
            add(
                "personal_title",
                negatives.personal_title,
                f"student/personal title {contact.title}",
            )
    return reasons, disqualified


def _grade(fit: int, activity: int, rules: Rules, disqualified: bool) -> str:
    grades = rules.grades
    if disqualified:
        letter = "D"
    elif fit >= grades.fit_a:
        letter = "A"
    elif fit >= grades.fit_b:
        letter = "B"
    elif fit >= grades.fit_c:
        letter = "C"
    else:
        letter = "D"
    if activity >= grades.engagement_1:
        level = 1
    elif activity >= grades.engagement_2:
        level = 2
    elif activity >= grades.engagement_3:
        level = 3
    else:
        level = 4
    return f"{letter}{level}"


def score_contact(contact: Contact, rules: CompiledRules, now: datetime) -> ScoreResult:
    """Fit (profile and negatives), engagement and intent; total clamped to 0..100."""
    event_reasons, engagement, intent, last = _event_reasons(contact, rules, now)
    fit_reasons = _fit_reasons(contact, rules)
    negative_reasons, disqualified = _negative_reasons(contact, rules)
    fit_points = round(sum(r.points for r in fit_reasons) + sum(r.points for r in negative_reasons))
    engagement_points = round(engagement)
    intent_points = round(intent)
    total = max(0, min(100, fit_points + engagement_points + intent_points))
    score = Score(
        total=total,
        fit=fit_points,
        engagement=engagement_points,
        intent=intent_points,
        grade=_grade(fit_points, engagement_points + intent_points, rules.rules, disqualified),
        reasons=fit_reasons + event_reasons + negative_reasons,
    )
    return ScoreResult(score=score, disqualified=disqualified, last_activity=last)
