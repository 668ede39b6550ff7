"""Prepared stimulus sets: writer and reader (stimuli/contracts/prepared.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set, write_prepared_set


def _tiny_set(tmp_path, n=4, size=(6, 5)):
    rng = np.random.default_rng(0)
    images = rng.random((n, *size)).astype(np.float32)
    manifest = pd.DataFrame({
        "stimulus_id": [f"s{i}-01" for i in range(n)], "identity": [f"s{i}" for i in range(n)],
        "gender": ["female", "male"] * (n // 2), "source": [f"s{i}/1.pgm" for i in range(n)],
    })
    aperture = np.zeros(size, bool)
    aperture[1:-1, 1:-1] = True
    folder = write_prepared_set(tmp_path / "stimuli" / "tiny", images, manifest, background=0.5, aperture=aperture)
    return folder, images


def test_prepared_set_round_trip(tmp_path):
    folder, images = _tiny_set(tmp_path)
    stim = load_prepared_set("tiny", results=tmp_path)
    assert stim.shape == (6, 5) and stim.background == 0.5
    np.testing.assert_allclose(stim.images, images, atol=0.5 / 255 + 1e-7)
    assert stim.aperture.sum() == 4 * 3
    assert stim.index_of("s2-01") == 2
    assert (folder / "provenance.json").is_file()
    with pytest.raises(InputError, match="python -m stimuli prepare --faces orl --size 128 --name nope"):
        load_prepared_set("nope", results="results")


def test_prepared_set_refuses_bad_ids_and_leaves_nothing(tmp_path):
    manifest = pd.DataFrame({"stimulus_id": ["a b"], "identity": ["a"], "gender": ["m"], "source": ["x"]})
    with pytest.raises(InputError, match="stimulus_id 'a b'"):
        write_prepared_set(tmp_path / "bad", np.zeros((1, 3, 3)), manifest, background=0.5)
    assert not (tmp_path / "bad").exists()
