"""The numpy QUEST against psychopy's QuestHandler, step for step, and its replay property."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.staircase import (
    Quest,
    QuestParams,
    bubbles_for_intensity,
    intensity_for_bubbles,
)


def _psychopy_quest(params: QuestParams, n_trials: int):
    data = pytest.importorskip("psychopy.data")
    return data.QuestHandler(
        params.start, params.start_sd, pThreshold=params.target, nTrials=n_trials,
        method=params.method, beta=params.beta, delta=params.delta, gamma=params.gamma,
        grain=params.grain, range=params.range, minVal=params.min_val, maxVal=params.max_val,
        autoLog=False,
    )


@pytest.mark.parametrize(
    "params",
    [
        QuestParams(start=np.log10(40), start_sd=0.5, gamma=0.5, min_val=0.0, max_val=np.log10(300)),
        QuestParams(start=1.2, start_sd=0.8, gamma=0.25, beta=2.5, method="mean", min_val=0.0, max_val=2.2),
        QuestParams(start=1.0, start_sd=0.3, gamma=0.5, method="mode", grain=0.02, range=4.0),
    ],
)
def test_quest_matches_psychopy_questhandler_step_for_step(params):
    """Same intensities at every trial, with responses from a simulated observer and the
    shown (rounded) number of bubbles fed back as the intensity, as a session does."""
    n_trials = 120
    reference = _psychopy_quest(params, n_trials)
    ours = Quest(params)
    rng = np.random.default_rng(3)
    true_threshold = params.start - 0.3
    for _ in range(n_trials):
        asked = next(reference)
        assert ours.next_intensity() == pytest.approx(asked, abs=1e-9)
        shown = intensity_for_bubbles(bubbles_for_intensity(asked, 1, 10_000))
        p_correct = 0.5 + 0.5 / (1 + np.exp(-(shown - true_threshold) * 6))
        correct = int(rng.random() < p_correct)
        reference.addResponse(correct, intensity=shown)
        ours.update(shown, correct)
    assert ours.mean() == pytest.approx(reference.mean(), abs=1e-9)
    assert ours.sd() == pytest.approx(reference.sd(), abs=1e-9)
    assert ours.quantile(0.5) == pytest.approx(reference.quantile(0.5), abs=1e-9)
    assert ours.epsilon == pytest.approx(reference.epsilon)


def test_replay_reproduces_the_live_staircase_and_is_order_free():
    params = QuestParams(start=1.5, start_sd=0.5, min_val=0.0, max_val=2.5)
    live = Quest(params)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = live.next_intensity()
        live.update(x, rng.random() < 0.7)
    again = Quest.replay(params, live.history)
    assert again.next_intensity() == live.next_intensity()
    # the posterior is a product: a resumed session that replays the file continues identically
    shuffled = [live.history[i] for i in rng.permutation(len(live.history))]
    assert Quest.replay(params, shuffled).next_intensity() == pytest.approx(live.next_intensity(), abs=1e-9)


def test_long_sessions_do_not_underflow():
    params = QuestParams(start=1.5, start_sd=0.5, min_val=0.0, max_val=2.5)
    quest = Quest(params)
    rng = np.random.default_rng(1)
    for _ in range(5000):
        x = quest.next_intensity()
        quest.update(x, rng.random() < (0.9 if x > 1.3 else 0.55))
    assert np.isfinite(quest.next_intensity()) and quest.pdf.sum() == pytest.approx(1.0)
    assert abs(quest.mean() - 1.3) < 0.1


def test_intensity_conversion_rounds_and_clips():
    assert bubbles_for_intensity(np.log10(37.4), 1, 100) == 37
    assert bubbles_for_intensity(5.0, 1, 100) == 100
    assert bubbles_for_intensity(-3.0, 2, 100) == 2
    assert intensity_for_bubbles(100) == pytest.approx(2.0)
