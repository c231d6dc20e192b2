"""Scoring: per-signal decay, capped parts, stable reasons text, customer type, and the fast
path agreeing with a plain reading of the documented rules (docs/scoring.md)."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from crm_qualify.connector.cli import main
from crm_qualify.connector.decision.decide import decide
from crm_qualify.connector.decision.identity_keys import is_free_mail
from crm_qualify.connector.decision.qualification import customer_type
from crm_qualify.connector.decision.rules import Rules, rules_version
from crm_qualify.connector.decision.scoring import compile_rules, score_contact
from crm_qualify.connector.model import (
    Contact,
    Deal,
    EngagementEvent,
    EventType,
    Origin,
    Stage,
    format_reasons,
)
from pydantic import ValidationError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def event(kind: EventType, days_ago: float = 1, count: int = 1) -> EngagementEvent:
    return EngagementEvent(type=kind, at=NOW - timedelta(days=days_ago), count=count)


def contact(*events: EngagementEvent, **fields) -> Contact:
    fields.setdefault("origin", Origin.INBOUND)
    fields.setdefault("email", "someone@acme.example")
    return Contact(id=fields.pop("id", "c1"), events=list(events), **fields)


def rules(**sections) -> Rules:
    return Rules.model_validate(sections)


# Per-signal decay ----------------------------------------------------------------------------


def test_a_signal_can_have_its_own_half_life():
    fast_downloads = rules(
        decay={"fresh_days": 0, "half_life_days_by_signal": {"content_download": 30}}
    )
    both = contact(event(EventType.CONTENT_DOWNLOAD, 30), event(EventType.WEBINAR_ATTENDED, 30))
    score = decide(both, fast_downloads, NOW).score
    points = {r.signal: r.points for r in score.reasons}
    assert points["content_download"] == 5, "10 points, one 30-day half-life"
    assert points["webinar_attended"] == round(20 * 0.5 ** (30 / 90)) == 16, "default 90 days"
    assert score.engagement == 21


def test_without_per_signal_half_lives_scores_and_version_are_the_default():
    explicit = rules(decay={"half_life_days": 90, "half_life_days_by_signal": {}})
    assert rules_version(explicit) == rules_version(Rules())
    same_value = rules(decay={"half_life_days_by_signal": {"email_open": 90}})
    busy = contact(
        event(EventType.EMAIL_OPEN, 40, count=3),
        event(EventType.DEMO_REQUEST, 100),
        event(EventType.WEBINAR_ATTENDED, 200),
    )
    default = decide(busy, Rules(), NOW)
    for other in (explicit, same_value):
        decision = decide(busy, other, NOW)
        assert decision.score == default.score
        assert decision.field_values()["reasons"] == default.field_values()["reasons"]


def test_the_rules_version_changes_with_the_decay_configuration():
    versions = {
        rules_version(Rules()),
        rules_version(rules(decay={"half_life_days": 60})),
        rules_version(rules(decay={"fresh_days": 7})),
        rules_version(rules(decay={"half_life_days_by_signal": {"email_open": 21}})),
        rules_version(rules(decay={"half_life_days_by_signal": {"email_open": 22}})),
        rules_version(rules(decay={"half_life_days_by_signal": {"demo_request": 21}})),
    }
    assert len(versions) == 6
    changed = rules(decay={"half_life_days_by_signal": {"email_open": 21}})
    assert decide(contact(), changed, NOW).rules_version == rules_version(changed)


def test_unknown_or_invalid_per_signal_half_lives_are_rejected_naming_them():
    with pytest.raises(ValidationError, match="unknown signal telepathy") as error:
        rules(decay={"half_life_days_by_signal": {"telepathy": 10}})
    assert error.value.errors()[0]["loc"] == ("decay", "half_life_days_by_signal")
    with pytest.raises(ValidationError, match="above 0 days: email_open"):
        rules(decay={"half_life_days_by_signal": {"email_open": 0}})


def test_a_bad_per_signal_half_life_in_the_config_file_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.decay.half_life_days_by_signal]\nemail_opened = 21\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "rules.decay.half_life_days_by_signal" in err and "email_opened" in err


def test_ages_count_in_whole_days():
    fresh_days = Rules().decay.fresh_days
    almost_a_day_later = decide(
        contact(event(EventType.WEBINAR_ATTENDED, fresh_days + 0.95)), Rules(), NOW
    )
    assert almost_a_day_later.score.engagement == 20, "still 14 whole days old: fresh"
    assert "(decayed)" not in almost_a_day_later.score.reasons[0].why
    future = decide(contact(event(EventType.WEBINAR_ATTENDED, -3)), Rules(), NOW)
    assert future.score.engagement == 20, "a clock ahead of ours never adds points"
    ancient = decide(contact(event(EventType.TRIAL_START, 11 * 365)), Rules(), NOW)
    assert ancient.score.intent == 0 and list(ancient.score.reasons) == []


# Capped parts --------------------------------------------------------------------------------


def test_engagement_and_intent_never_exceed_100():
    everything = contact(*(event(kind, count=50) for kind in EventType))
    score = decide(everything, Rules(), NOW).score
    by_family = {"intent": 0, "engagement": 0}
    for reason in score.reasons:
        by_family[reason.family] += reason.points
    assert by_family["intent"] > 100 and by_family["engagement"] > 100, "the caps must bind"
    assert (score.intent, score.engagement, score.total) == (100, 100, 100)
    assert decide(everything, Rules(), NOW).field_values()["intent_score"] == 100


def test_fit_stays_within_minus_100_and_100():
    generous = rules(
        fit={
            "industries": {"Software": 60},
            "countries": {"France": 30},
            "titles": [{"contains": ["cto"], "points": 40}],
        }
    )
    ideal = contact(industry="Software", country="France", title="CTO")
    assert decide(ideal, generous, NOW).score.fit == 100
    harsh = rules(negatives={"unsubscribed": -60, "hard_bounce": -60})
    hopeless = contact(unsubscribed=True, hard_bounced=True)
    score = decide(hopeless, harsh, NOW).score
    assert (score.fit, score.total) == (-100, 0)


# Reasons text --------------------------------------------------------------------------------


def test_reasons_show_whole_points_and_the_parts_add_them_up():
    decision = decide(
        contact(
            event(EventType.DEMO_REQUEST, 60),
            event(EventType.EMAIL_CLICK, 40, count=2),
            event(EventType.PAGE_VIEW, 250),
            event(EventType.PAGE_VIEW, 100),
            event(EventType.WEBINAR_REGISTERED, 300),
        ),
        Rules(),
        NOW,
    )
    score = decision.score
    events = [r for r in score.reasons if r.family in ("engagement", "intent")]
    assert all(isinstance(r.points, int) and r.points != 0 for r in events)
    assert "." not in decision.field_values()["reasons"]
    assert score.intent == sum(r.points for r in events if r.family == "intent") == 28
    assert score.engagement == sum(r.points for r in events if r.family == "engagement")
    assert "+28 demo request 2026-09-23 (decayed)" in [r.why for r in events]
    # page views: 0.5^(86/90) + 0.5^(236/90) = 0.68 -> +1; registration 5 x 0.5^(286/90) = 0.55
    # -> +1; a signal whose points round to 0 would give no reason at all.
    assert {r.signal: r.points for r in events}["page_view"] == 1


def test_a_signal_rounding_to_zero_points_gives_no_reason():
    faded = decide(
        contact(event(EventType.PAGE_VIEW, 200), event(EventType.CONTENT_DOWNLOAD)), Rules(), NOW
    )
    assert [r.signal for r in faded.score.reasons] == ["content_download"]
    assert faded.score.engagement == 10


def test_the_reasons_text_changes_only_when_the_points_shown_change():
    person = contact(
        event(EventType.DEMO_REQUEST, 3),
        event(EventType.WEBINAR_ATTENDED, 10),
        event(EventType.EMAIL_OPEN, 5, count=3),
        event(EventType.PRICING_PAGE_VIEW, 20, count=2),
        event(EventType.CONTENT_DOWNLOAD, 1, count=4),
    )
    previous = None
    changes = 0
    for hours in range(0, 24 * 200, 6):
        decision = decide(person, Rules(), NOW + timedelta(hours=hours))
        text = decision.field_values()["reasons"]
        points = sorted((r.signal, r.points) for r in decision.score.reasons)
        if previous is not None and text != previous[0]:
            changes += 1
            flags = {w for w in ("(capped)", "(decayed)", "(capped, decayed)") if w in text}
            old_flags = {w for w in ("(capped)", "(decayed)", "(capped, decayed)")
                         if w in previous[0]}  # fmt: skip
            assert points != previous[1] or flags != old_flags, (hours, text, previous[0])
        previous = (text, points)
    assert 10 < changes < 200 // 2, "changes with the points, not every run nor never"


def test_the_same_facts_in_another_order_give_the_same_reasons():
    """Signals of equal points: a full read, a retried page or a person's records merged can
    hand the events over in another order, which must not rewrite the text."""
    events = [
        event(EventType.PAGE_VIEW, 2, count=4),
        event(EventType.WEBINAR_REGISTERED, 3),
        event(EventType.CONTENT_DOWNLOAD, 4),
        event(EventType.WEBINAR_REGISTERED, 5),
        event(EventType.EMAIL_OPEN, 6, count=2),
    ]
    written = set()
    for seed in range(6):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        decision = decide(contact(*shuffled), Rules(), NOW)
        signals = tuple(reason.signal for reason in decision.score.reasons)
        written.add((decision.field_values()["reasons"], signals))
    ((text, signals),) = written
    download, webinar = (text.index(words) for words in ("content download", "webinar registered"))
    assert download < webinar, text  # +10 each: `EventType`'s order
    assert signals[:2] == ("content_download", "webinar_registered")


def test_reasons_are_a_sequence_written_once():
    score = decide(
        contact(event(EventType.DEMO_REQUEST), industry="Software"),
        rules(fit={"industries": {"Software": 15}}),
        NOW,
    ).score
    reasons = score.reasons
    assert len(reasons) == 2 and reasons[0].signal == "industry"
    assert reasons == list(reasons) and reasons[0] is list(reasons)[0]
    assert [r.why for r in reasons[:2]] == ["+15 industry Software", "+40 demo request 2026-11-21"]
    assert format_reasons(reasons) == "+40 demo request 2026-11-21\n+15 industry Software"


# Customer type -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deals", "expected"),
    [
        ([], None),
        ([("lost", True), ("open", False)], None),
        ([("won", False), ("won", False), ("lost", True)], "one_time"),
        ([("won", True), ("open", False)], "recurring"),
        ([("won", True), ("won", False)], "mixed"),
    ],
)
def test_customer_type_from_the_won_deals(deals, expected):
    person = contact(
        deals=[
            Deal(id=f"d{n}", status=status, recurring=recurring)
            for n, (status, recurring) in enumerate(deals)
        ]
    )
    assert customer_type(person) == expected
    decision = decide(person, Rules(), NOW)
    assert decision.customer_type == expected
    assert (decision.stage is Stage.CUSTOMER) == (expected is not None)


# crm-qualify score shows what it computes ----------------------------------------------------


def test_score_command_shows_customer_type_disqualified_and_renurture(tmp_path, capsys):
    documents = [
        {
            "id": "c1",
            "origin": "inbound",
            "deals": [
                {"id": "d1", "status": "won", "recurring": True},
                {"id": "d2", "status": "won"},
            ],
        },
        {"id": "c2", "email": "x@mailinator.com", "origin": "inbound",
         "events": [{"type": "content_download", "at": "2026-11-20T09:00:00Z"}]},
        {"id": "c3", "origin": "inbound", "stage": "mql",
         "events": [{"type": "demo_request", "at": "2026-05-01T09:00:00Z"}]},
    ]  # fmt: skip
    source = tmp_path / "contacts.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in documents))
    now = "2026-11-22T12:00:00Z"

    assert main(["score", str(source), "--now", now]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["customer_type"], d["disqualified"], d["renurture"]) for d in printed] == [
        ("mixed", False, False),
        (None, True, False),
        (None, False, True),
    ]

    assert main(["score", str(source), "--now", now, "--explain"]) == 0
    headers = [line for line in capsys.readouterr().out.splitlines() if line.startswith("c")]
    assert "-> customer (mixed)," in headers[0]
    assert headers[1].endswith("[disqualified]")
    assert headers[2].endswith("[re-nurture]")


# The fast path against a plain reading of the rules ------------------------------------------


def reference_score(person: Contact, rules: Rules, now: datetime) -> tuple[int, int, int, int]:
    """docs/scoring.md, written the slow, obvious way: (total, fit, engagement, intent)."""
    decay = rules.decay
    raw: dict[EventType, float] = {}
    for e in person.events:
        days = math.floor((now - e.at).total_seconds() / 86_400)
        half_life = decay.half_life_days_by_signal.get(e.type, decay.half_life_days)
        factor = 1.0 if days <= decay.fresh_days else 0.5 ** ((days - decay.fresh_days) / half_life)
        raw[e.type] = raw.get(e.type, 0.0) + rules.weights[e.type] * factor * e.count
    parts = {"intent": 0, "engagement": 0}
    for kind, points in raw.items():
        family = "intent" if kind in rules.intent_signals else "engagement"
        parts[family] += round(min(points, rules.caps[kind]))
    fit = 0.0
    if person.industry:
        fit += {k.lower(): v for k, v in rules.fit.industries.items()}.get(
            person.industry.lower(), 0
        )
    domain = (person.email or "").rsplit("@", 1)[-1]
    if domain in rules.negatives.free_mail_domains or is_free_mail(domain):
        fit += rules.negatives.free_mail
    fit_part = max(-100, min(100, round(fit)))
    engagement, intent = min(100, parts["engagement"]), min(100, parts["intent"])
    return max(0, min(100, fit_part + engagement + intent)), fit_part, engagement, intent


def test_the_fast_path_agrees_with_the_rules_as_documented():
    rng = random.Random(5)
    config = rules(
        fit={"industries": {"Software": 15}},
        decay={
            "fresh_days": 10.5,
            "half_life_days_by_signal": {"email_open": 21, "demo_request": 120, "call": 7.5},
        },
    )
    compiled = compile_rules(config)
    kinds = list(EventType)
    for number in range(3000):
        now = NOW + timedelta(seconds=rng.randrange(86_400 * 3))
        person = contact(
            *(
                EngagementEvent(
                    type=rng.choice(kinds),
                    at=now - timedelta(days=rng.uniform(-5, 4_200)),
                    count=rng.choice((1, 1, 2, 7, 60)),
                )
                for _ in range(rng.randint(0, 12))
            ),
            id=str(number),
            email=rng.choice(("a@acme.example", "b@gmail.com")),
            industry=rng.choice(("Software", "Retail", None)),
        )
        score = score_contact(person, compiled, now).score
        assert (score.total, score.fit, score.engagement, score.intent) == reference_score(
            person, config, now
        ), person
        if number % 10 == 0:
            # the CRM text written directly is the one the Reason objects give
            written = format_reasons(score.reasons)
            assert written == format_reasons(list(score.reasons)), person
            if score.reasons:
                assert (
                    written.splitlines()[0] == max(score.reasons, key=lambda r: abs(r.points)).why
                )


# Times read back from JSON --------------------------------------------------------------------


def test_times_read_from_json_keep_their_offset_and_decide_as_the_originals():
    """The mirror and the adapters give times as ISO text; they are parsed by the standard
    library (pydantic's own tzinfo makes every subtraction a method call), with the same
    instant, offset and text, and every decision comes out the same."""
    rng = random.Random(11)
    offsets = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
    config = rules(followup={"hot_recall_days": 2})
    kinds = list(EventType)
    for number in range(300):
        person = contact(
            *(
                EngagementEvent(
                    type=rng.choice(kinds),
                    at=(NOW - timedelta(days=rng.uniform(-2, 200))).astimezone(rng.choice(offsets)),
                    count=rng.choice((1, 3)),
                )
                for _ in range(rng.randint(0, 6))
            ),
            id=str(number),
        )
        read_back = Contact.model_validate_json(person.model_dump_json())
        assert read_back == person
        for original, parsed in zip(person.events, read_back.events, strict=True):
            assert type(parsed.at.tzinfo) is timezone
            assert parsed.at.isoformat() == original.at.isoformat()
        now = NOW + timedelta(hours=rng.uniform(0, 72))
        first, second = decide(person, config, now), decide(read_back, config, now)
        assert first.field_values() == second.field_values(), number
        assert [t.to_json() for t in first.tasks] == [t.to_json() for t in second.tasks]
    with pytest.raises(ValidationError, match="timezone"):
        EngagementEvent.model_validate_json('{"type": "call", "at": "2026-11-20T09:00:00"}')
