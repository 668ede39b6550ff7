"""Fixtures of the analysis tests: a tiny prepared stimulus set, simulated trial files, for the
similarity RDMs a prepared ORL set with similarity YAMLs built from a base, and a fake study
(tiny set, trial files, relevance maps) with its full report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


SIMILARITY_BASE: dict[str, Any] = {
    "paradigm": "similarity",
    "task": "similarity",
    "stimuli": "orl32",
    "judgement": "triplet",
    "faces": {"n_identities": 8, "images_per_identity": 1},
    "design": {"trials": 24, "trials_per_block": 12, "practice_trials": 2},
    "stimulus_deg": 3.0,
    # Xvfb has no refresh rate (it flips as fast as it can): the screen check compares sizes only
    "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0, "distance_cm": 57.0,
               "refresh_tolerance": None},
    "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2, "feedback_frames": 0},
    "simulated_observer": {"embedding_seed": 3, "dims": 3, "noise_sd": 0.1},
}


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    """A results root with the ORL faces prepared at 32 px (the similarity sessions' set)."""
    from stimuli.prepare import prepare_set

    root = tmp_path_factory.mktemp("results")
    prepare_set("orl", 32, "orl32", results=root, progress=False)
    return root


@pytest.fixture
def make_config(config_writer):
    """Write a similarity YAML: the SIMILARITY_BASE config with changes merged in; returns its path."""
    return config_writer(SIMILARITY_BASE)


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
