"""Classification images: the linear route equals stacking masks, a known template is recovered,
the Z-transforms are calibrated, and bad trial tables give one clear message each."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from ci_simulation import simulate_trials
from scipy import ndimage

from analysis.classification import (
    BubbleTrials,
    aperture_ci,
    aperture_sum,
    centre_histogram,
    classification_image,
    compute_ci,
    concat_bubble_trials,
    group_z,
    parse_bubble_trials,
    trial_weights,
)
from analysis.metrics import region_auc
from stimuli.bubbles import aperture_profiles, bubbles_mask
from stimuli.contracts.centres import format_centres
from stimuli.contracts.errors import InputError
from stimuli.regions import region_mask


def random_trials(rng, shape, n_trials, n_range=(5, 12), sigma=3.0, p_correct=0.7, fractional=False):
    n = rng.integers(n_range[0], n_range[1] + 1, size=n_trials)
    trial_of = np.repeat(np.arange(n_trials), n)
    size = len(trial_of)
    if fractional:
        centres = np.column_stack([rng.uniform(0, shape[0] - 1, size), rng.uniform(0, shape[1] - 1, size)])
    else:
        centres = np.column_stack([rng.integers(0, shape[0], size), rng.integers(0, shape[1], size)]).astype(float)
    correct = (rng.random(n_trials) < p_correct).astype(float)
    return BubbleTrials(tuple(shape), centres, trial_of, correct, np.full(n_trials, sigma))


def naive_ci(bt, weights):
    """Stack every trial's unclipped mask (the aperture profiles' outer products) and weight them."""
    stack = np.zeros((bt.n_trials, *bt.shape))
    for t in range(bt.n_trials):
        rows, cols = aperture_profiles(bt.shape, bt.centres[bt.trial_of == t], bt.sigma_px[t])
        stack[t] = rows.T @ cols
    return np.tensordot(weights, stack, axes=1)


@pytest.mark.parametrize("fractional", [False, True])
def test_linear_ci_equals_stacked_unclipped_masks(fractional):
    rng = np.random.default_rng(0)
    bt = random_trials(rng, (30, 36), 120, fractional=fractional)
    weights = trial_weights(bt.correct, bt.n_bubbles)
    np.testing.assert_allclose(aperture_ci(bt, weights), naive_ci(bt, weights), atol=1e-9)
    # several weight vectors at once (permutations) give the same maps one by one
    many = np.stack([rng.permutation(weights) for _ in range(3)])
    together = aperture_ci(bt, many)
    for k in range(3):
        np.testing.assert_allclose(together[k], naive_ci(bt, many[k]), atol=1e-9)


def test_unclipped_sum_is_the_mask_builder_before_clipping():
    centres = [[4, 4], [5, 6], [20, 20]]  # two overlapping apertures
    total = aperture_sum((32, 32), centres, 3.0)
    shown = bubbles_mask((32, 32), centres, 3.0)
    assert total.max() > 1.5  # the overlap piles up...
    np.testing.assert_allclose(np.minimum(total, 1.0), shown, atol=1e-6)  # ...and clipping gives the mask
    isolated = aperture_sum((32, 32), [[20, 20]], 3.0)
    np.testing.assert_allclose(isolated, bubbles_mask((32, 32), [[20, 20]], 3.0), atol=1e-6)


def test_linear_ci_is_close_to_the_ci_of_the_shown_masks_at_sparse_density():
    rng = np.random.default_rng(1)
    bt = random_trials(rng, (40, 40), 300, n_range=(4, 8), sigma=2.5)
    weights = trial_weights(bt.correct)
    shown = sum(w * bubbles_mask(bt.shape, bt.centres[bt.trial_of == t], 2.5) for t, w in enumerate(weights))
    linear = aperture_ci(bt, weights)
    assert np.corrcoef(linear.ravel(), shown.ravel())[0, 1] > 0.99


def test_weights_remove_the_bubble_count_and_sum_to_zero():
    rng = np.random.default_rng(2)
    n = rng.integers(5, 30, 400)
    correct = (rng.random(400) < 0.3 + 0.02 * n).astype(float)
    w = trial_weights(correct, n)
    assert abs(w.sum()) < 1e-9 and abs((w * n).sum()) < 1e-7
    np.testing.assert_allclose(trial_weights(correct), correct - correct.mean())
    np.testing.assert_allclose(trial_weights(correct, np.full(400, 7)), correct - correct.mean())


def test_staircase_confound_does_not_light_up_the_map():
    # accuracy depends only on how many bubbles there are, not where: no pixel is diagnostic
    rng = np.random.default_rng(4)
    shape, trials = (40, 40), 1500
    n = rng.integers(3, 25, trials)
    trial_of = np.repeat(np.arange(trials), n)
    centres = np.column_stack([rng.integers(0, 40, len(trial_of)), rng.integers(0, 40, len(trial_of))]).astype(float)
    correct = (rng.random(trials) < 0.4 + 0.025 * n).astype(float)
    bt = BubbleTrials(shape, centres, trial_of, correct, np.full(trials, 3.0))
    with_covariate = compute_ci(bt)
    assert np.abs(with_covariate.z).max() < 4.0
    # classic weights without the covariate: the analytic null mean still removes the count effect
    without = compute_ci(bt, covariate=False)
    assert np.abs(without.ci).mean() > 5 * np.abs(with_covariate.ci).mean()  # the raw CI is biased...
    assert np.abs(without.z).max() < 4.0  # ...its expectation is subtracted


def test_known_template_is_recovered():
    shape = (40, 40)
    rows = simulate_trials(shape, "eyes", n_trials=1200, sigma_px=2.5, n_bubbles=(6, 12), seed=5)
    z = classification_image(pd.DataFrame(rows), shape)
    eyes = region_mask("eyes", shape)
    assert region_auc(z, eyes) > 0.9
    peak = np.unravel_index(np.argmax(z), shape)
    assert eyes[peak]
    assert z[eyes].mean() > 2 and abs(z[region_mask("mouth", shape)].mean()) < 1.5


def test_analytic_and_permutation_z_agree():
    shape = (32, 32)
    rows = simulate_trials(shape, "mouth", n_trials=600, sigma_px=2.5, n_bubbles=(5, 10), seed=6)
    table = pd.DataFrame(rows)
    analytic = classification_image(table, shape)
    permuted = classification_image(table, shape, z="permutation", n_permutations=300, seed=1)
    assert np.corrcoef(analytic.ravel(), permuted.ravel())[0, 1] > 0.98
    assert np.std(permuted) == pytest.approx(np.std(analytic), rel=0.1)
    # seeded: the same seed, the same map
    again = classification_image(table, shape, z="permutation", n_permutations=300, seed=1)
    np.testing.assert_array_equal(permuted, again)


def test_analytic_z_has_unit_variance_under_the_null():
    rng = np.random.default_rng(7)
    values = []
    for _ in range(40):
        bt = random_trials(rng, (24, 24), 300, sigma=2.0, p_correct=0.6)
        values.append(compute_ci(bt).z[6:18, 6:18:5].ravel())  # interior, few correlated pixels
    values = np.concatenate(values)
    assert abs(values.mean()) < 0.1
    assert values.std() == pytest.approx(1.0, abs=0.08)


def test_smoothing_widens_the_kernel_like_a_gaussian_filter():
    rng = np.random.default_rng(8)
    bt = random_trials(rng, (64, 64), 400, sigma=3.0)
    smoothed = compute_ci(bt, smooth_px=2.0)
    assert smoothed.kernel_sigma_px == pytest.approx(math.sqrt(13.0))
    assert smoothed.fwhm_px == pytest.approx(math.sqrt(13.0) * math.sqrt(8 * math.log(2)))
    filtered = ndimage.gaussian_filter(compute_ci(bt).ci, 2.0, mode="constant", truncate=5)
    inner = (slice(12, 52), slice(12, 52))  # away from the borders, where a filter pads with zeros
    assert np.corrcoef(smoothed.ci[inner].ravel(), filtered[inner].ravel())[0, 1] > 0.999


def test_pooled_centre_density_and_group_z():
    rng = np.random.default_rng(9)
    bts = [random_trials(rng, (24, 24), 200) for _ in range(4)]
    density = centre_histogram(np.concatenate([bt.centres for bt in bts]), (24, 24))
    assert density.sum() == sum(len(bt.centres) for bt in bts)
    zs = [compute_ci(bt, centre_density=density).z for bt in bts]
    np.testing.assert_allclose(group_z(zs), np.sum(zs, axis=0) / 2.0)
    with pytest.raises(InputError, match="NaN"):
        group_z([np.full((3, 3), np.nan)])


def test_sessions_concatenate_and_subset():
    rng = np.random.default_rng(10)
    a, b = random_trials(rng, (16, 16), 20), random_trials(rng, (16, 16), 30)
    both = concat_bubble_trials([a, b])
    assert both.n_trials == 50 and len(both.centres) == len(a.centres) + len(b.centres)
    np.testing.assert_array_equal(both.n_bubbles, np.concatenate([a.n_bubbles, b.n_bubbles]))
    first = both.subset(np.arange(50) < 20)
    np.testing.assert_array_equal(first.centres, a.centres)
    np.testing.assert_array_equal(first.trial_of, a.trial_of)
    w = rng.standard_normal(50)
    np.testing.assert_allclose(aperture_ci(both, w), aperture_ci(a, w[:20]) + aperture_ci(b, w[20:]), atol=1e-9)


def table(rows):
    return pd.DataFrame([{"correct": c, "bubbles": b, "sigma_px": s} for c, b, s in rows])


def test_bad_trial_tables_give_one_clear_message_each():
    good = [(1, "[[3,3]]", 2.0), (0, "[[9,9]]", 2.0)]
    with pytest.raises(InputError, match=r"missing column\(s\) bubbles"):
        parse_bubble_trials(table(good).drop(columns="bubbles"), (16, 16))
    with pytest.raises(InputError, match=r"line 3: cannot parse bubble centres"):
        parse_bubble_trials(table([good[0], (0, "[[9,", 2.0)]), (16, 16))
    with pytest.raises(InputError, match=r"line 2: bubble centre \[30, 3\] lies outside the 16x16"):
        parse_bubble_trials(table([(1, "[[30,3]]", 2.0)] + good), (16, 16))
    with pytest.raises(InputError, match=r"line 2: 'correct' must be 0 or 1"):
        parse_bubble_trials(table([(np.nan, "[[3,3]]", 2.0)]), (16, 16))
    with pytest.raises(InputError, match=r"'sigma_px' must be a positive number"):
        parse_bubble_trials(table([(1, "[[3,3]]", -1.0)]), (16, 16))
    with pytest.raises(InputError, match="no trials"):
        parse_bubble_trials(table(good).iloc[:0], (16, 16))
    with pytest.raises(InputError, match="accuracy does not vary"):
        classification_image(table([(1, "[[3,3]]", 2.0), (1, "[[9,9]]", 2.0)]), (16, 16))
    with pytest.raises(InputError, match="Z-transform"):
        classification_image(table(good), (16, 16), z="bootstrap")


def test_trials_without_bubbles_and_explicit_sigma():
    rows = [(1, "[[4,4]]", 2.0), (0, "[]", 2.0), (1, format_centres([[4, 5]]), 2.0), (0, "[[12,12]]", 2.0)]
    bt = parse_bubble_trials(table(rows), (16, 16))
    assert bt.n_bubbles.tolist() == [1, 0, 1, 1]
    wide = classification_image(table(rows), (16, 16), sigma_px=4.0)
    narrow = classification_image(table(rows), (16, 16))
    assert wide[4, 4] > 0 and not np.allclose(wide, narrow)
