"""Shared fixtures of the stimuli tests: one small prepared ORL set, a tiny face folder, a study
(results and data root) and a small experiment YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from stimuli.contracts.prepared import load_prepared_set
from stimuli.prepare import prepare_set


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> Path:
    """A results root holding ``orl32``: the ORL faces prepared at 32x32 with an aperture."""
    root = tmp_path_factory.mktemp("results")
    prepare_set("orl", 32, "orl32", results=root, aperture=True, progress=False)
    return root


@pytest.fixture(scope="session")
def orl32(results):
    return load_prepared_set("orl32", results)


def write_face_folder(folder: Path, n_ids: int = 3, per_id: int = 4, size=(20, 16), seed: int = 0) -> Path:
    """A small valid face folder: ``faces.csv`` and random grey PNGs (identities a, b, ...)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["image,identity,gender,age"]
    for i in range(n_ids):
        (folder / f"p{i}").mkdir(exist_ok=True)
        for j in range(per_id):
            pixels = rng.integers(0, 256, size=size, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"p{i}" / f"{j}.png")
            lines.append(f"p{i}/{j}.png,p{i},{'female' if i % 2 else 'male'},{20 + i}")
    (folder / "faces.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def face_folder(tmp_path) -> Path:
    return write_face_folder(tmp_path / "faces")


@pytest.fixture
def study(tmp_path, face_folder):
    """A results root with prepared set 'small' (24 px) and a BIDS-like data root with one session."""
    results = tmp_path / "results"
    prepare_set(face_folder, 24, "small", results=results, aperture=True, progress=False,
                command=["python", "-m", "stimuli", "prepare"])
    data = tmp_path / "participants"
    beh = data / "sub-01" / "ses-1" / "beh"
    beh.mkdir(parents=True)
    (data / "dataset_description.json").write_text('{"Name": "lab", "BIDSVersion": "1.9.0"}\n')
    (data / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\n")
    (beh / "sub-01_ses-1_task-gender_beh.tsv").write_text("trial\tcorrect\n1\t1\n")
    (beh / "sub-01_ses-1_task-gender_beh.json").write_text('{"trial": {"Description": "n"}}\n')
    return results, data


EXPERIMENT = {
    "paradigm": "bubbles", "task": "gender", "stimuli": "small",
    "responses": {"female": "f", "male": "j"}, "stimulus_deg": 4.0,
    "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0, "distance_cm": 57.0},
    "timing": {"fixation_frames": 1, "stimulus_frames": 1, "iti_frames": 1, "feedback_frames": 1},
    "bubbles": {"sigma_px": 2.0},
    "conditions": {"random": {}},
    "design": {"blocks": ["random"], "repeats": 1, "trials_per_block": 8, "practice_trials": 0},
    "staircase": {"start_bubbles": 6},
    "template_observer": {"region": "eyes", "full_view_accuracy": 0.95},
}


@pytest.fixture
def experiment():
    """Write a bubbles experiment YAML on set 'small' (keys of ``changes`` replace the defaults)."""
    def write(tmp_path: Path, **changes) -> Path:
        path = tmp_path / f"exp{len(list(tmp_path.glob('exp*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump({**EXPERIMENT, **changes}))
        return path

    return write
