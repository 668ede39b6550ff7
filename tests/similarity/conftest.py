"""Fixtures of the similarity tests: a tiny prepared ORL set and similarity YAMLs built from a base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

BASE: dict[str, Any] = {
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
    """A results root with the ORL faces prepared at 32 px."""
    from stimuli.prepare import prepare_set

    root = tmp_path_factory.mktemp("results")
    prepare_set("orl", 32, "orl32", results=root, progress=False)
    return root


@pytest.fixture
def make_config(config_writer):
    """Write a similarity YAML: the BASE config with changes merged in; returns its path."""
    return config_writer(BASE)
