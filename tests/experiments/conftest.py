"""Fixtures of the experiments tests: tiny prepared ORL sets and experiment YAMLs built from a base
(Bubbles: ``results`` and ``make_config``; similarity: ``similarity_results`` and
``make_similarity_config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stimuli.prepare import prepare_set

BASE: dict[str, Any] = {
    "paradigm": "bubbles",
    "task": "gender",
    "stimuli": "orl32",
    "responses": {"female": "f", "male": "j"},
    "stimulus_deg": 4.0,
    "feedback": True,
    # Xvfb has no refresh rate (it flips as fast as it can): the screen check compares sizes only
    "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0, "distance_cm": 57.0,
               "refresh_tolerance": None},
    "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2, "feedback_frames": 2},
    "bubbles": {"sigma_px": 2.0, "region": "aperture"},
    "conditions": {"random": {}},
    "design": {"blocks": ["random"], "repeats": 1, "trials_per_block": 12, "practice_trials": 3,
               "practice_bubbles": 20},
    "staircase": {"start_bubbles": 10},
    "template_observer": {"region": "eyes", "full_view_accuracy": 0.95},
}


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    """A results root with the ORL faces prepared at 32 px (with the face aperture)."""
    root = tmp_path_factory.mktemp("results")
    prepare_set("orl", 32, "orl32", results=root, aperture=True, progress=False)
    return root


@pytest.fixture
def make_config(config_writer):
    """Write an experiment YAML: the BASE config with changes merged in; returns its path."""
    return config_writer(BASE)
