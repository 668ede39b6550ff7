"""Fixtures of the report tests: fake studies (tiny set, trial files, relevance maps) in tmp folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the fake study builder lives next to the tests (fake_study.py)
sys.path.insert(0, str(Path(__file__).parent))

from fake_study import make_study, write_config  # noqa: E402

from analysis.report.run import run_report  # noqa: E402


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """4 template observers x 3 conditions, one model observer, relevance maps of 8 variants."""
    return make_study(tmp_path_factory.mktemp("study"), participants=4, trials=100)


@pytest.fixture(scope="session")
def report(study, tmp_path_factory):
    """The full report of the fake study: its folder, the Report, the messages, the study."""
    folder = tmp_path_factory.mktemp("report")
    config = write_config(folder / "config.yaml", study)
    messages = []
    out, built = run_report(config, folder / "out", progress=False, warn=messages.append)
    return {"out": out, "report": built, "messages": messages, "study": study}
