"""Relevance maps: the one writer and the reader (stimuli/contracts/relevance.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.relevance import load_relevance, relevance_path, save_relevance


def test_relevance_round_trip_and_missing_file_hint(tmp_path):
    path = relevance_path("vgg16-imagenet-gender-s0", "tiny", tmp_path)
    relevance = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    save_relevance(path, relevance, ["a", "b"], [0, 1], [0, 0], [1.5, 2.5], {"composite": "epsilon_plus_flat"})
    maps = load_relevance("vgg16-imagenet-gender-s0", "tiny", tmp_path)
    np.testing.assert_array_equal(maps.relevance, relevance)
    assert maps.meta == {"composite": "epsilon_plus_flat"} and maps.by_id("b")[0, 0] == 12
    np.testing.assert_allclose(maps.mean_map(), relevance.mean(axis=0))
    with pytest.raises(InputError, match="python -m model explain --variant v --stimuli tiny"):
        load_relevance("v", "tiny", "results")
    with pytest.raises(InputError, match="'target' must have 2 entries"):
        save_relevance(tmp_path / "x.npz", relevance, ["a", "b"], [0], [0, 0], [1, 2], {})
    assert json.loads(json.dumps(maps.meta))
