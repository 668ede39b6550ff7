"""Headless Chromium for the report tests: run it on a page and read what it made of the page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# written into a copy of the page for the test only: what the browser made of each image and section
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({src: i.getAttribute("src"), complete: i.complete,
                                                   width: i.naturalWidth, height: i.naturalHeight}));
  const sections = [...document.querySelectorAll("section")].map(s => ({id: s.id, status: s.dataset.status,
                                                                          title: s.querySelector("h2").textContent}));
  const wide = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right >
                                                               document.documentElement.clientWidth + 1)
                                                        .map(e => e.tagName + " " + e.textContent.slice(0, 40));
  document.body.setAttribute("data-probe", JSON.stringify({images, sections, wide,
                                                           title: document.title}));
});
</script></body>"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    return path


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)
