"""Fixtures of the analysis tests: a tiny prepared stimulus set, simulated trial files, for the
similarity RDMs a prepared ORL set with similarity YAMLs built from a base, and a fake study
(tiny set, trial files, relevance maps) with its full report."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stimuli.contracts.prepared import write_prepared_set

# helpers that live next to the tests: the simulated observers (ci_simulation.py,
# similarity_simulation.py) and the fake study builder (fake_study.py)
sys.path.insert(0, str(Path(__file__).parent))

from fake_study import make_study, write_config  # noqa: E402  (fake_study.py, beside this file)

from analysis.report.run import run_report  # noqa: E402

TINY_SHAPE = (40, 40)


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """A 4-face 40x40 prepared set with a face aperture: (results root, set name, aperture)."""
    results = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    images = rng.random((4, *TINY_SHAPE)).astype(np.float32)
    manifest = pd.DataFrame({
        "stimulus_id": [f"face{i:02d}" for i in range(4)], "identity": ["a", "b", "c", "d"],
        "gender": ["female", "male", "female", "male"], "source": "synthetic",
    })
    aperture = np.zeros(TINY_SHAPE, dtype=bool)
    aperture[3:37, 5:35] = True
    write_prepared_set(results / "stimuli" / "tiny", images, manifest, background=0.5, aperture=aperture)
    return results, "tiny", aperture


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
