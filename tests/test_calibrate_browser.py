"""The calibration report in headless Chromium: on a desktop and a phone-sized screen it shows
its headline numbers and the ROC chart, and nothing runs off the screen.

Skipped only when no Chromium is installed (Debian: `apt-get install chromium`)."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta

import pytest
from crm_qualify.adapters.true_outcomes import as_contact, draw_people
from crm_qualify.connector.decision.calibration.calibrate import calibrate
from crm_qualify.connector.decision.calibration.dataset import build_dataset
from crm_qualify.connector.decision.calibration.settings import CalibrateSettings
from crm_qualify.connector.decision.rules import Rules
from crm_qualify.connector.ops.calibrate_html import calibrate_html

from tests.test_report_browser import CHROMIUM, chromium, rendered

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium installed (Debian: apt-get install chromium)"
)
NOW = datetime(2026, 9, 1, tzinfo=UTC)
SETTINGS = CalibrateSettings(min_people=500, min_conversions=60)


@pytest.fixture(scope="module")
def page():
    contacts = [as_contact(p) for p in draw_people(random.Random(5), 1500, NOW)]
    data = build_dataset(contacts, SETTINGS, NOW - timedelta(days=730), NOW, "mirror")
    result = calibrate(data, Rules(), SETTINGS)
    assert result.evaluation is not None
    return result, calibrate_html(result, NOW)


def test_the_page_shows_its_headline_numbers_and_fits_a_phone_screen(tmp_path, page):
    """A phone is the narrow case: the desktop layout has the same content, wider."""
    result, html = page
    width = 375
    facts = rendered(tmp_path, html, width)
    assert facts["width"] == width
    assert facts["scroll"] <= facts["width"], "nothing runs off the right edge"
    text = facts["text"]
    evaluation = result.evaluation
    for shown in (
        f"{evaluation.current.auc:.3f} → {evaluation.proposed.auc:.3f}",
        f"{len(result.dataset.examples):,}",
        "demo request",
        "Lift per signal and trait",
        "ROC: current vs proposed",
        "false-positive rate",
        f"Proposal: {len(result.changes)} changed key(s)",
        "weights.demo_request",
        "nothing applied",
        "AUC: the chance that a person who won scores above one who did not",
        "keep the current rules" if not evaluation.better else "ranks the held-out people better",
    ):
        assert shown in text, f"{shown!r} is not on the page at {width} px"


def test_a_phone_screenshot(tmp_path, page):
    shot = tmp_path / "phone.png"
    source = tmp_path / "calibration.html"
    source.write_text(page[1], encoding="utf-8")
    result = chromium(tmp_path, source, 375, f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (375, 900)
