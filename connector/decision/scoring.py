"""Points with reasons: fit, engagement and intent, decayed, capped and explained. Pure, no I/O.

Every point comes with a line a salesperson can read ("+40 demo request 2026-11-18"). The rules
are compiled once per `Rules` object so scoring a contact is a few dictionary look-ups.

The hot path (`score_contact`, once per contact per run) computes numbers only: decay is a table
look-up per signal and whole day of age, and the reasons are kept as the few values their text
needs. The text is written on first use (`Score.reasons`), which the engine needs only to
compare with the CRM's `reasons` field or to fill a task's body.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import overload

from crm_qualify.connector.decision.identity_keys import is_free_mail
from crm_qualify.connector.decision.identity_rules import ROLE_MAILBOXES
from crm_qualify.connector.decision.rules import Rules, rules_version
from crm_qualify.connector.model import (
    Contact,
    CriterionStatus,
    EngagementEvent,
    EventType,
    Origin,
    Reason,
    Score,
)
from disposable_email_domains import blocklist as DISPOSABLE_BLOCKLIST
from email_validator import EmailNotValidError, validate_email

_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")
"""Most addresses: checked by this pattern, a hundred times cheaper than email-validator
(about 100 us an address), on every contact scored."""
_PLACEHOLDER_NAMES = frozenset({"test", "asdf", "xxx", "none", "n/a", "na", "unknown", "aaa"})


def _kept_list_kind(domain: str) -> str | None:
    """Domains the kept lists know: throw-away first (some are free too), then free mail."""
    if domain in DISPOSABLE_BLOCKLIST:
        return "disposable"
    return "free_mail" if is_free_mail(domain) else None


_NON_WORD = re.compile(r"[^\w]+")
TABLE_DAYS = 3_660
"""Decay factors are tabulated for ages of 0 to 10 years; older events compute theirs."""
ANSWER_RANK = {CriterionStatus.NOT_MET: 0, CriterionStatus.IN_PROGRESS: 1, CriterionStatus.MET: 2}
"""Qualification answers in order: a criterion is met by its least answer or a better one."""
PART_MAX = 100
"""Each part (fit, engagement, intent) is at most this, like the total: a CRM field read as
"out of 100" never shows 110. Fit (negatives included) is at least -PART_MAX."""


def _valid_email(email: str) -> bool:
    """An ASCII address by `_EMAIL`; any other (an internationalised domain or mailbox,
    `li@例え.jp`) by email-validator, as the duplicates check reads it: the pattern alone
    took those for invalid and wrote "-20 invalid email address" to the CRM."""
    if _EMAIL.match(email):
        return True
    if email.isascii():
        return False
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _words(text: str) -> str:
    """' it director ': padded lower-case words, so 'cto' matches 'CTO' but not 'Director'."""
    return f" {_NON_WORD.sub(' ', text.casefold()).strip()} "


def decay_factor(days: int, fresh_days: float, half_life_days: float) -> float:
    """What one occurrence `days` whole days old still counts: 1 while fresh, then halved every
    half-life counted from the end of the fresh window."""
    if days <= fresh_days:
        return 1.0
    return 0.5 ** ((days - fresh_days) / half_life_days)


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """`Rules` turned into the tables and sets the hot path needs, plus its version."""

    rules: Rules
    version: str
    signals: dict[EventType, tuple[float, float, bool]]
    """Per signal: weight, cap, whether it is an intent signal."""
    families: dict[EventType, tuple[str, str, str]]
    """Per signal: its name, its family (intent or engagement) and the words a reason uses
    ('demo request')."""
    decay: dict[EventType, tuple[float, ...]]
    """Per signal: the decay factor per whole day of age, 0..TABLE_DAYS-1 (shared between
    signals with the same half-life)."""
    half_lives: dict[EventType, float]
    fresh_days: float
    industries: dict[str, float]
    countries: dict[str, float]
    titles: tuple[tuple[tuple[str, ...], float], ...]
    sizes: tuple[tuple[int, float, float], ...]
    """Company size bands: min, max (inf when open), points."""
    domains: dict[str, str]
    """Email domain -> 'competitor', 'disposable' or 'free_mail' (in that precedence)."""
    personal_words: tuple[str, ...]
    negative_points: dict[str, float]
    disposable_disqualifies: bool
    grades: tuple[float, ...]
    """Fit A, B, C and engagement 1, 2, 3 thresholds."""
    inbound_by_default: bool
    """Contacts whose origin the CRM does not say are treated as inbound."""
    outbound_signs: frozenset[EventType]
    outbound_min_opens: int
    required: tuple[tuple[str, int], ...]
    """Qualification: each required criterion and the rank of the least answer it needs."""
    mql: float
    sql: float
    sql_by_score: bool
    warm: float
    hot: float
    """Temperature bands on engagement + intent points."""
    hot_triggers: tuple[EventType, ...]
    hot_within: timedelta
    warm_triggers: tuple[EventType, ...]
    warm_within: timedelta
    renurture_after: timedelta
    longest_window: timedelta
    """The longest of the trigger and re-nurture windows: older activity is in none of them."""
    title_cache: dict[str, tuple[float | None, bool]] = field(default_factory=dict)
    """Job title -> (fit points of the first matching title rule, personal title?)."""
    domain_cache: dict[str, str | None] = field(default_factory=dict)
    """Email domain -> what `domain_kind` says of it."""
    line_starts: dict[EventType, dict[int, tuple[str, str, str]]] = field(
        default_factory=lambda: {kind: {} for kind in EventType}
    )
    """Per signal and points shown: name, family and the start of its reason ('+40 demo
    request'), written once."""

    def factor(self, kind: EventType, days: int) -> float:
        """The decay factor outside the table: events from the future or over 10 years old."""
        return decay_factor(days, self.fresh_days, self.half_lives[kind])

    def classify_title(self, title: str) -> tuple[float | None, bool]:
        cached = self.title_cache.get(title)
        if cached is None:
            words = _words(title)
            points = next(
                (p for needles, p in self.titles if any(w in words for w in needles)), None
            )
            cached = (points, any(word in words for word in self.personal_words))
            if len(self.title_cache) >= 50_000:
                self.title_cache.clear()
            self.title_cache[title] = cached
        return cached

    def domain_kind(self, domain: str) -> str | None:
        """'competitor', 'disposable' or 'free_mail' (configured first, then the kept lists),
        None for any other domain."""
        cache = self.domain_cache
        if domain in cache:
            return cache[domain]
        kind = self.domains.get(domain) or _kept_list_kind(domain)
        if len(cache) >= 50_000:
            cache.clear()
        cache[domain] = kind
        return kind

    def line_start(self, kind: EventType, shown: int) -> tuple[str, str, str]:
        """Name, family and '+40 demo request' for `shown` points of `kind`, remembered."""
        name, family, words = self.families[kind]
        start = self.line_starts[kind][shown] = (name, family, f"{shown:+d} {words}")
        return start


def compile_rules(rules: Rules) -> CompiledRules:
    """Compile once per rules object (they are frozen) and remember it."""
    cached = _COMPILED.get(id(rules))
    if cached is not None and cached.rules is rules:
        return cached
    negatives = rules.negatives
    intent = frozenset(rules.intent_signals)
    decay = rules.decay
    half_lives = {kind: decay.half_life(kind) for kind in EventType}
    tables = {
        half_life: tuple(
            decay_factor(days, decay.fresh_days, half_life) for days in range(TABLE_DAYS)
        )
        for half_life in set(half_lives.values())
    }
    domains: dict[str, str] = {}
    for kind, names in (
        ("free_mail", negatives.free_mail_domains),
        ("disposable", negatives.disposable_domains),
        ("competitor", negatives.competitor_domains),
    ):
        domains.update((name.casefold(), kind) for name in names)
    compiled = CompiledRules(
        rules=rules,
        version=rules_version(rules),
        signals={
            kind: (rules.weights.get(kind, 0.0), rules.caps.get(kind, math.inf), kind in intent)
            for kind in EventType
        },
        families={
            kind: (
                kind.value,
                "intent" if kind in intent else "engagement",
                kind.value.replace("_", " "),
            )
            for kind in EventType
        },
        decay={kind: tables[half_life] for kind, half_life in half_lives.items()},
        half_lives=half_lives,
        fresh_days=decay.fresh_days,
        industries={k.casefold(): v for k, v in rules.fit.industries.items()},
        countries={k.casefold(): v for k, v in rules.fit.countries.items()},
        titles=tuple(
            (tuple(_words(word) for word in rule.contains), rule.points)
            for rule in rules.fit.titles
        ),
        sizes=tuple(
            (band.min, math.inf if band.max is None else band.max, band.points)
            for band in rules.fit.company_size
        ),
        domains=domains,
        personal_words=tuple(_words(w) for w in negatives.personal_title_words),
        negative_points={
            name: getattr(negatives, name)
            for name in (
                "unsubscribed",
                "hard_bounce",
                "free_mail",
                "disposable",
                "personal_title",
                "invalid_data",
                "role_address",
            )
        },
        disposable_disqualifies=negatives.disposable_disqualifies,
        grades=(
            rules.grades.fit_a,
            rules.grades.fit_b,
            rules.grades.fit_c,
            rules.grades.engagement_1,
            rules.grades.engagement_2,
            rules.grades.engagement_3,
        ),
        inbound_by_default=rules.stages.unknown_origin == Origin.INBOUND,
        outbound_signs=frozenset(rules.stages.outbound_signs),
        outbound_min_opens=rules.stages.outbound_min_opens,
        required=tuple(
            (criterion, ANSWER_RANK[least]) for criterion, least in rules.qualification.required
        ),
        mql=rules.thresholds.mql,
        sql=rules.thresholds.sql,
        sql_by_score=rules.thresholds.sql_by_score,
        warm=rules.temperature.warm,
        hot=rules.temperature.hot,
        hot_triggers=tuple(dict.fromkeys(rules.temperature.hot_triggers)),
        hot_within=timedelta(days=rules.temperature.hot_within_days),
        warm_triggers=tuple(dict.fromkeys(rules.temperature.warm_triggers)),
        warm_within=timedelta(days=rules.temperature.warm_within_days),
        renurture_after=timedelta(days=rules.stages.renurture_after_days),
        longest_window=timedelta(
            days=max(
                rules.temperature.hot_within_days,
                rules.temperature.warm_within_days,
                rules.stages.renurture_after_days,
            )
        ),
    )
    if len(_COMPILED) > 64:
        _COMPILED.clear()
    _COMPILED[id(rules)] = compiled
    return compiled


_COMPILED: dict[int, CompiledRules] = {}

Seen = list
"""What scoring gathered about one signal, as a list for speed: [decayed occurrences,
occurrences, the latest event's time, points shown, fresh occurrences, occurrences past the
fresh window (decayed), `FRESH` | `FUTURE` when it has such an occurrence] (see the `SEEN_*`
positions). The last three tell `review.py` when the points can move with the clock, so it
need not walk the events again."""
SEEN_OCCURRENCES = 0
SEEN_COUNT = 1
SEEN_LAST_AT = 2
SEEN_SHOWN = 3
SEEN_FRESH = 4
SEEN_AGED = 5
SEEN_TIMING = 6
FRESH = 1
"""An occurrence inside the fresh window: it leaves the window at a moment of its own."""
FUTURE = 2
"""An occurrence dated after `now`: it starts to count (and age) when it happens."""


@dataclass(slots=True)
class ScoreResult:
    score: Score
    disqualified: bool
    last_activity: datetime | None
    signals: dict[EventType, Seen]
    """Per signal the contact showed: stage and temperature read it instead of the events."""


def format_points(points: float) -> str:
    """'+40', '-10', '+7.5': whole numbers without decimals, as a person writes them."""
    rounded = round(points, 1)
    text = f"{rounded:+.0f}" if rounded == int(rounded) else f"{rounded:+.1f}"
    return text


Note = tuple[str, str, float, str, str]
"""A profile reason before it is written: signal, family, points, label, detail."""

Line = tuple[str, str, float, str, float]
"""A written reason: signal, family, points, text, and -|points| to sort it by."""
_BY_STRENGTH = itemgetter(4)
_TEXT = itemgetter(3)
_SIGNAL_RANK = {kind: rank for rank, kind in enumerate(EventType)}.__getitem__
"""Signals of equal points are written in `EventType`'s order, not in the order their events
came: the same facts read another way (a full read, a retried page, a person's records
merged) then give the same text, and no write."""


class Explanation(Sequence[Reason]):
    """The reasons of one score, written on first use and then kept.

    Order: profile (fit) reasons, then one per signal in the order the events name them, then
    negative ones; `format_reasons` sorts them strongest first for the CRM. `text()` is that
    CRM text, written without building `Reason` objects (the engine needs it for every
    contact it compares with the CRM)."""

    __slots__ = (
        "_compiled",
        "_notes",
        "_fit_notes",
        "_seen",
        "_events",
        "_now",
        "_lines",
        "_reasons",
        "_text",
    )

    def __init__(
        self,
        compiled: CompiledRules,
        notes: list[Note],
        fit_notes: int,
        seen: dict[EventType, Seen],
        events: list[EngagementEvent],
        now: datetime,
    ) -> None:
        """`notes`: the profile reasons, the first `fit_notes` of them fit, the rest negative;
        `seen`: what was gathered from `events` at `now`."""
        self._compiled = compiled
        self._notes = notes
        self._fit_notes = fit_notes
        self._seen = seen
        self._events = events
        self._now = now
        self._lines: list[Line] | None = None
        self._reasons: list[Reason] | None = None
        self._text: str | None = None

    def _written(self) -> list[Line]:
        lines = self._lines
        if lines is None:
            lines = _signal_lines(self._compiled, self._seen) if self._seen else []
            notes = self._notes
            if notes:
                fit = self._fit_notes
                if fit:
                    lines[:0] = map(_note_line, notes[:fit])
                if fit < len(notes):
                    lines += map(_note_line, notes[fit:])
            self._lines = lines
            self._notes = None  # type: ignore[assignment]
        return lines

    def signals_of(
        self, events: list[EngagementEvent], now: datetime, compiled: CompiledRules
    ) -> dict[EventType, Seen] | None:
        """What scoring gathered per signal, if these reasons were scored from this very
        `events` list at `now` under `compiled`; None otherwise (a person's decision shared
        with one of its records, another moment, other rules)."""
        if events is self._events and now == self._now and compiled is self._compiled:
            return self._seen
        return None

    def _build(self) -> list[Reason]:
        reasons = self._reasons
        if reasons is None:
            reasons = self._reasons = [
                Reason(signal=signal, family=family, points=points, why=why)
                for signal, family, points, why, _ in self._written()
            ]
        return reasons

    def text(self) -> str:
        """What `format_reasons` gives for these reasons: one per line, strongest first."""
        text = self._text
        if text is None:
            lines = self._lines or self._written()
            if len(lines) > 1:
                lines = sorted(lines, key=_BY_STRENGTH)
            text = self._text = "\n".join(map(_TEXT, lines))
        return text

    @overload
    def __getitem__(self, index: int) -> Reason: ...
    @overload
    def __getitem__(self, index: slice) -> list[Reason]: ...
    def __getitem__(self, index: int | slice) -> Reason | list[Reason]:
        return self._build()[index]

    def __len__(self) -> int:
        return len(self._written())

    def __iter__(self) -> Iterator[Reason]:
        return iter(self._build())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self._build() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._build())


@lru_cache(maxsize=50_000)
def _note_line(note: Note) -> Line:
    """The written reason of a profile note, remembered: most notes repeat (an industry, a
    free-mail domain, a size band), and equal notes write equal lines."""
    signal, family, points, label, detail = note
    text = f"{label} {detail}" if detail else label
    if points:
        text = f"{format_points(points)} {text}"
    return signal, family, points, text, -abs(points)


def _signal_lines(compiled: CompiledRules, seen: dict[EventType, Seen]) -> list[Line]:
    """One reason per signal, in whole points, in `_SIGNAL_RANK` order. The text changes only
    when what it says does: the points shown, the count, the last date, or once when the cap
    or decay starts to take points away from what would be shown without it ("(capped)",
    "(decayed)")."""
    lines = []
    signals = compiled.signals
    starts = compiled.line_starts
    for kind in sorted(seen, key=_SIGNAL_RANK) if len(seen) > 1 else seen:
        occurrences, count, last_at, shown, _, _, _ = seen[kind]
        if shown == 0:
            continue  # counts nothing: not a reason, and the parts add up without it
        weight, cap, _ = signals[kind]
        start = starts[kind].get(shown)
        if start is None:
            start = compiled.line_start(kind, shown)
        name, family, text = start
        day = _day_text(last_at.toordinal())
        why = f"{text} x{count}, last {day}" if count > 1 else f"{text} {day}"
        points = weight * occurrences  # scoring's own: under the cap, it rounds to `shown`
        capped = points > cap and round(points) > shown
        undecayed = weight * count
        if round(cap if undecayed > cap else undecayed) != shown:
            why += " (capped, decayed)" if capped else " (decayed)"
        elif capped:
            why += " (capped)"
        lines.append((name, family, shown, why, -abs(shown)))
    return lines


@lru_cache(maxsize=100_000)
def _day_text(ordinal: int) -> str:
    """'2026-11-18' for a proleptic ordinal: the days events fall on, each written once."""
    return date.fromordinal(ordinal).isoformat()


GRADES: tuple[str, ...] = tuple(f"{letter}{level}" for letter in "ABCD" for level in "1234")
"""Every grade `_grade` gives: a fit letter and an engagement level."""


def _grade(fit: int, activity: int, grades: tuple[float, ...], disqualified: bool) -> str:
    fit_a, fit_b, fit_c, engagement_1, engagement_2, engagement_3 = grades
    if disqualified:
        letter = "D"
    elif fit >= fit_a:
        letter = "A"
    elif fit >= fit_b:
        letter = "B"
    elif fit >= fit_c:
        letter = "C"
    else:
        letter = "D"
    if activity >= engagement_1:
        return letter + "1"
    if activity >= engagement_2:
        return letter + "2"
    if activity >= engagement_3:
        return letter + "3"
    return letter + "4"


def _gather(
    events: list[EngagementEvent], rules: CompiledRules, now: datetime
) -> dict[EventType, Seen]:
    """Per signal, what its events add up to at `now` (`Seen`): one pass, numbers only. Every
    occurrence counts its decay factor by whole days of age: 1 while fresh (and before it
    happens), then a table look-up."""
    seen: dict[EventType, Seen] = {}
    fresh_days = rules.fresh_days
    tables = rules.decay
    for event in events:
        kind = event.type
        at = event.at
        days = (now - at).days
        count = event.count
        entry = seen.get(kind)
        if days > fresh_days:  # the common case: decayed by the table
            part = (tables[kind][days] if days < TABLE_DAYS else rules.factor(kind, days)) * count
            if entry is None:
                seen[kind] = [part, count, at, 0, 0.0, part, 0]
                continue
            entry[SEEN_AGED] += part
        else:  # fresh, or from the future: counts in full
            part = 1.0 * count
            if entry is None:
                entry = seen[kind] = [part, count, at, 0, 0.0, 0.0, 0]
            else:
                entry[SEEN_OCCURRENCES] += part
                entry[SEEN_COUNT] += count
                if at > entry[SEEN_LAST_AT]:
                    entry[SEEN_LAST_AT] = at
            if days >= 0:
                entry[SEEN_FRESH] += count
                entry[SEEN_TIMING] |= FRESH
            else:
                entry[SEEN_TIMING] |= FUTURE
            continue
        entry[SEEN_OCCURRENCES] += part
        entry[SEEN_COUNT] += count
        if at > entry[SEEN_LAST_AT]:
            entry[SEEN_LAST_AT] = at
    return seen


def score_contact(contact: Contact, rules: CompiledRules, now: datetime) -> ScoreResult:
    """Fit (profile and negatives), engagement and intent, each at most 100; total 0..100.

    Per signal: every occurrence counts its weight times its decay factor (by whole days of
    age), summed, capped, rounded to whole points. Engagement and intent are the sums of the
    points their reasons show; fit is the rounded sum of profile and negative points.
    """
    engagement = intent = 0
    last = None
    events = contact.events
    seen = _gather(events, rules, now) if events else {}
    if seen:
        signals = rules.signals
        for kind, entry in seen.items():
            weight, cap, is_intent = signals[kind]
            points = weight * entry[0]
            shown = entry[3] = round(cap if points > cap else points)
            if is_intent:
                intent += shown
            else:
                engagement += shown
            if last is None or entry[2] > last:
                last = entry[2]

    # Profile and negatives: kept as notes, written only when the reasons are read.
    notes: list[Note] = []
    fit = 0.0
    title = contact.title
    title_points, personal = rules.classify_title(title) if title else (None, False)
    industry = contact.industry
    if industry and rules.industries and (points := rules.industries.get(industry.casefold())):
        fit += points
        notes.append(("industry", "fit", points, "industry", industry))
    country = contact.country
    if country and rules.countries and (points := rules.countries.get(country.casefold())):
        fit += points
        notes.append(("country", "fit", points, "country", country))
    if title_points:
        fit += title_points
        notes.append(("title", "fit", title_points, "title", title))
    employees = contact.employees
    if employees is not None:
        for low, high, points in rules.sizes:
            if low <= employees <= high:
                if points:
                    fit += points
                    notes.append(("company_size", "fit", points, "company size", str(employees)))
                break
    fit_notes = len(notes)
    negative = rules.negative_points
    disqualified = False
    if contact.unsubscribed and (points := negative["unsubscribed"]):
        fit += points
        notes.append(("unsubscribed", "negative", points, "unsubscribed", ""))
    if contact.hard_bounced and (points := negative["hard_bounce"]):
        fit += points
        notes.append(("hard_bounce", "negative", points, "hard bounce", ""))
    email = contact.email
    if email and (email := email.strip()):
        if not _valid_email(email):
            if points := negative["invalid_data"]:
                fit += points
                notes.append(("invalid_data", "negative", points, "invalid email address", ""))
        else:
            local, _, domain = email.casefold().rpartition("@")
            kind_of_domain = rules.domain_kind(domain)
            if kind_of_domain == "competitor":
                disqualified = True
                notes.append(
                    ("competitor", "negative", 0, "disqualified: competitor domain", domain)
                )
            elif kind_of_domain == "disposable":
                if points := negative["disposable"]:
                    fit += points
                    notes.append(
                        ("disposable", "negative", points, "disposable email domain", domain)
                    )
                if rules.disposable_disqualifies:
                    disqualified = True
                    notes.append(
                        ("disposable", "negative", 0, "disqualified: throw-away address", "")
                    )
            elif kind_of_domain == "free_mail" and (points := negative["free_mail"]):
                fit += points
                notes.append(("free_mail", "negative", points, "free-mail domain", domain))
            if local.partition("+")[0] in ROLE_MAILBOXES and (points := negative["role_address"]):
                fit += points
                notes.append(("role_address", "negative", points, "role address", local))
    first, last_name = contact.first_name, contact.last_name
    if (
        (first and first.strip().casefold() in _PLACEHOLDER_NAMES)
        or (last_name and last_name.strip().casefold() in _PLACEHOLDER_NAMES)
    ) and (points := negative["invalid_data"]):
        fit += points
        notes.append(("invalid_data", "negative", points, "placeholder name", ""))
    if personal and (points := negative["personal_title"]):
        fit += points
        notes.append(("personal_title", "negative", points, "student/personal title", title))

    fit_points = -PART_MAX if fit < -PART_MAX else (PART_MAX if fit > PART_MAX else round(fit))
    if engagement > PART_MAX:
        engagement = PART_MAX
    if intent > PART_MAX:
        intent = PART_MAX
    total = fit_points + engagement + intent
    score = Score(
        total=0 if total < 0 else (100 if total > 100 else total),
        fit=fit_points,
        engagement=engagement,
        intent=intent,
        grade=_grade(fit_points, engagement + intent, rules.grades, disqualified),
        reasons=Explanation(rules, notes, fit_notes, seen, events, now) if (notes or seen) else [],
    )
    return ScoreResult(score, disqualified, last, seen)
