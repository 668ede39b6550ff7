"""Shared fixtures of the stimuli tests: one small prepared ORL set and a tiny face folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
