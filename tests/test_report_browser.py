"""The HTML report in a real browser: headless Chromium renders it on a desktop and on a
phone-sized screen; the page shows its key numbers and nothing runs off the screen.

Skipped only when no Chromium is installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html import escape, unescape
from pathlib import Path

import pytest
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.model import Contact
from crm_qualify.connector.ops.duplicates_report import build_duplicates
from crm_qualify.connector.ops.duplicates_report import html_report as duplicates_html
from crm_qualify.connector.ops.report import build_report
from crm_qualify.connector.ops.report_html import html_report

from tests.test_report import HOT, NOW, mirror, trail

CHROMIUM = next(
    (
        path
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (path := shutil.which(name))
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium installed (Debian: apt-get install chromium)"
)

PROBE = """<script>
(() => {
  const page = document.documentElement;
  const facts = {width: innerWidth, scroll: page.scrollWidth, text: document.body.innerText};
  const probe = parent.document.createElement("pre");
  probe.id = "probe";
  probe.hidden = true;
  probe.textContent = JSON.stringify(facts);
  parent.document.body.appendChild(probe);
})();
</script>"""
"""Added to a copy of the page only: what the browser laid out (the report has no script)."""
FRAME = (
    '<!doctype html><html><body style="margin:0">'
    '<iframe style="border:0;width:{width}px;height:900px" srcdoc="{page}"></iframe>'
    "</body></html>"
)
"""Headless Chromium's window is at least 500 px wide: a phone-sized viewport is a frame."""


def chromium(tmp_path: Path, page: Path, width: int, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={width},900",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def rendered(tmp_path: Path, html: str, width: int) -> dict:
    """innerWidth, scrollWidth and the visible text of the page at `width` CSS pixels."""
    probed = html.replace("</body>", PROBE + "</body>")
    page = tmp_path / f"probe-{width}.html"
    page.write_text(FRAME.format(width=width, page=escape(probed, quote=True)), encoding="utf-8")
    result = chromium(tmp_path, page, max(width, 800), "--dump-dom")
    found = re.search(r'<pre id="probe" hidden="">(.*?)</pre>', result.stdout, re.S)
    assert found, f"chromium rendered nothing: {result.stderr[-2000:]}"
    return json.loads(unescape(found[1]))


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("report")
    store = trail(folder / "s.sqlite")
    try:
        return html_report(build_report(store, "default", NOW))
    finally:
        store.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_the_page_shows_its_key_numbers_and_fits_the_screen(tmp_path, report_html, width):
    facts = rendered(tmp_path, report_html, width)
    assert facts["width"] == width, "the window is the size asked for"
    assert facts["scroll"] <= facts["width"], "nothing runs off the right edge"
    text = facts["text"]
    for shown in (
        "Hot leads to call now: 1",
        "Ada Lovelace",
        "Analytical Engines",
        "owner owner-7",
        "+40 demo request 2026-09-30",
        "52 days",
        "0% on time",  # hot calls: 1 due, escalated
        "100% on time",  # MQL hand-off: 1 due, not escalated
        "67%",  # lead -> mql
        "no contact has left this stage yet",
        "Records needing attention: 0",
    ):
        assert shown in text, f"{shown!r} is not on the page at {width} px"
    total = re.search(r"total\s+(\d+)", text)
    assert total and total[1] == "3"


def test_a_phone_screenshot(tmp_path, report_html):
    page = tmp_path / "report.html"
    page.write_text(report_html, encoding="utf-8")
    shot = tmp_path / "phone.png"
    result = chromium(tmp_path, page, 375, f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (375, 900)


def test_long_unbroken_names_wrap_on_a_phone_and_a_desktop(tmp_path):
    """An 80-letter name squeezed the reasons to a word a line on a desktop and made the page
    scroll sideways on a phone; the duplicates page clipped its columns at 1,400 px."""
    long_name, long_company = "Emily" + "y" * 75, "Averyvery" + "long" * 15 + " GmbH"
    store = trail(tmp_path / "s.sqlite")
    mirror(
        store,
        [Contact(id="a", first_name=long_name, last_name="Weber", company=long_company, owned=HOT)],
    )
    report = html_report(build_report(store, "default", NOW))
    store.close()
    people = [
        Contact(
            id=f"00Q5g00000{n}0787EAA", object_type="Lead", email=f"{long_name}@example.com",
            first_name=long_name, last_name="Weber", company=long_company,
        )
        for n in range(2)
    ]  # fmt: skip
    duplicates = duplicates_html(build_duplicates([people], IdentityRules()))
    for page in (report, duplicates):
        for width in (1400, 375):
            facts = rendered(tmp_path, page, width)
            assert facts["scroll"] <= facts["width"], f"runs off the right edge at {width} px"
            assert long_name in facts["text"]
