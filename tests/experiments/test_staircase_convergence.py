"""The staircase holds the template observer at its target, and its trials point at its region."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.engine import run_session
from stimuli.bubbles import mask_from_trial
from stimuli.contracts.trials import read_trials
from stimuli.regions import region_mask


@pytest.mark.slow
def test_staircase_holds_the_template_observer_at_75_percent(make_config, results, tmp_path):
    path = make_config({"design": {"trials_per_block": 2000, "practice_trials": 0},
                        "template_observer": {"region": "eyes"}, "staircase": {"start_bubbles": 20}})
    result = run_session(path, "conv", 1, observer="template", data_root=tmp_path, results=results, seed=12,
                         progress=False)
    table = read_trials(result.path)
    assert len(table) == 2000
    last = table.iloc[-1000:]
    assert abs(last.correct.mean() - 0.75) <= 0.05, last.correct.mean()
    assert last.n_bubbles.std() < last.n_bubbles.mean()  # settled, not wandering across the range
    # the trials carry the region: where bubbles helped (correct minus incorrect) is the eyes
    masks = np.stack([mask_from_trial(row, (32, 32)) for _, row in table.iterrows()])
    correct = table.correct.to_numpy() == 1
    difference = masks[correct].mean(axis=0) - masks[~correct].mean(axis=0)
    eyes = region_mask("eyes", (32, 32))
    assert difference[eyes].mean() > difference[~eyes].mean() + 3 * difference[~eyes].std() / np.sqrt(eyes.sum())
    assert difference[eyes].mean() > 2 * abs(difference[~eyes].mean())
