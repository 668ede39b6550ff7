"""Fixtures of the model tests: a tiny synthetic prepared set and tiny grid configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stimuli.contracts.prepared import write_prepared_set

SIZE = 32


def synthetic_faces(identities: int = 12, per_identity: int = 5, seed: int = 0):
    """Grey (N, 32, 32) images whose identity and gender are visible, plus a manifest."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] / SIZE
    images, rows = [], []
    for person in range(identities):
        gender = "female" if person % 4 == 0 else "male"  # unbalanced, like ORL
        freq = 1 + person
        base = 0.5 + 0.2 * np.sin(2 * np.pi * freq * xx) * (0.5 if gender == "female" else 1.0)
        base += 0.15 * (yy > 0.5) * (1 if gender == "female" else -1)
        for shot in range(per_identity):
            image = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)
            images.append(image)
            rows.append({"stimulus_id": f"p{person}_{shot}", "identity": f"p{person}",
                         "gender": gender, "source": f"synthetic/{person}/{shot}"})
    return np.stack(images), pd.DataFrame(rows)


@pytest.fixture(scope="session")
def synth_results(tmp_path_factory) -> Path:
    """A results root holding prepared set 'synth' (12 people, 3 of them women, x 5 images, 32 px)."""
    root = tmp_path_factory.mktemp("results")
    images, manifest = synthetic_faces()
    write_prepared_set(root / "stimuli" / "synth", images, manifest, background=0.5)
    return root


def tiny_grid(**overrides) -> dict:
    """A grid config dict: width 1/16, 32 px input, random init, a few epochs."""
    config = {
        "stimuli": "synth",
        "input_size": SIZE,
        "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
        "grid": {"width": [0.0625], "pretrain": ["none"], "task": ["identity"], "seed": [0]},
        "train": {"trainable": "all", "epochs": 3, "batch_size": 8, "lr": 0.05, "dropout": 0.0,
                  "optimizer": "sgd", "schedule": "cosine"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def write_grid(tmp_path):
    """Factory: write ``tiny_grid(**overrides)`` to a YAML file and return its path."""
    counter = iter(range(1000))

    def write(**overrides) -> Path:
        path = tmp_path / f"grid{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(tiny_grid(**overrides)))
        return path

    return write


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread in these tests: tiny convs on a shared 2-core machine run ~8x faster
    without thread contention (the setting is restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def results(tmp_path, synth_results) -> Path:
    """A fresh results root of one test, holding a copy of prepared set 'synth'."""
    import shutil

    root = tmp_path / "results"
    shutil.copytree(synth_results / "stimuli", root / "stimuli")
    return root



def _variant_configs(path: Path):
    from model.config import expand_grid, load_grid

    return expand_grid(load_grid(path), str(path))


def _state_of(folder: Path) -> dict:
    import torch

    return torch.load(folder / "model.pt", weights_only=True)


@pytest.fixture
def variant_configs():
    """``variant_configs(path)``: the expanded variant configs of a grid file."""
    return _variant_configs


@pytest.fixture
def state_of():
    """``state_of(folder)``: a variant folder's model.pt (weights_only)."""
    return _state_of
