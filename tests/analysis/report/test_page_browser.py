"""The report in a real browser: headless Chromium loads report.html, every figure decodes,
the expected sections are there, nothing overflows the page sideways, and a screenshot is taken.

Set ``REPORT_SCREENSHOT_DIR`` to keep the screenshots (e.g. to look at them)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from chromium import PROBE, run_chromium  # tests/analysis/chromium.py
from PIL import Image

from analysis.report.registry import SECTIONS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_report_renders_in_chromium_with_every_figure(report, tmp_path):
    out = report["out"]
    probe = out / "browser_probe.html"  # same folder, so the relative figure paths resolve the same way
    probe.write_text((out / "report.html").read_text().replace("</body>", PROBE, 1))
    try:
        result = run_chromium(["--window-size=1280,1000", "--virtual-time-budget=10000", "--dump-dom",
                               probe.as_uri()], tmp_path / "profile-dom")
    finally:
        probe.unlink()
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert match, "the page did not finish loading"
    state = json.loads(html.unescape(match.group(1)))
    images = state["images"]
    assert len(images) >= 12
    broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 100 and i["height"] > 100)]
    assert broken == [], f"figures that did not load: {broken}"
    assert [s["id"] for s in state["sections"]] == [s.key for s in SECTIONS.values() if not s.optional]
    assert all(s["status"] == "ok" for s in state["sections"])
    assert [s["title"] for s in state["sections"]] == [s.title for s in SECTIONS.values() if not s.optional]
    assert state["wide"] == [], f"wider than the window: {state['wide'][:5]}"
    assert state["title"] == "Test report"

    shot = tmp_path / "report.png"
    result = run_chromium(["--window-size=1280,3000", f"--screenshot={shot}", (out / "report.html").as_uri()],
                          tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (3000, 1280)
    assert pixels[:60].mean() < 100 < pixels[200:].mean()  # the dark header above a light page
    assert pixels.std() > 20  # figures and text, not a blank page
    keep = os.environ.get("REPORT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
