"""Fixtures of the analysis tests: a tiny prepared stimulus set and simulated trial files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stimuli.contracts.prepared import write_prepared_set

# the simulated observer lives next to the tests (ci_simulation.py)
sys.path.insert(0, str(Path(__file__).parent))

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
