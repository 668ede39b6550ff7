"""Bubble masks: aperture shape, merge rules, seeding, rebuilding from trial rows, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stimuli.bubbles import (
    CentreSampler,
    aperture_profiles,
    bubbles_mask,
    compose,
    mask_area,
    mask_from_trial,
    max_sensible_bubbles,
    revealed_area,
    sample_centres,
)
from stimuli.contracts.centres import format_centres, parse_centres
from stimuli.contracts.errors import InputError
from stimuli.guided import guidance_density


def test_a_single_bubble_is_one_at_its_centre_and_exp_minus_half_one_sigma_away():
    mask = bubbles_mask((64, 48), [[30, 20]], sigma_px=5)
    assert mask.dtype == np.float32 and mask.shape == (64, 48)
    assert mask[30, 20] == 1.0 and mask.max() == 1.0
    for r, c in ((35, 20), (25, 20), (30, 25), (30, 15)):
        assert mask[r, c] == pytest.approx(math.exp(-0.5), abs=1e-7)
    assert mask[30 + 10, 20] == pytest.approx(math.exp(-2), abs=1e-7)  # two sigma
    # a fractional centre: the same Gaussian, evaluated off-grid
    mask = bubbles_mask((64, 48), [[30.5, 20]], sigma_px=5)
    assert mask[30, 20] == pytest.approx(math.exp(-0.5 * 0.25 / 25), abs=1e-7)


def test_whole_pixel_profiles_equal_the_formula_bit_for_bit():
    centres = np.array([[0, 0], [63, 47], [10, 33], [31.25, 2.5]])
    rows, cols = aperture_profiles((64, 48), centres, 3.7)
    scale = -0.5 / 3.7**2
    assert np.array_equal(rows, np.exp(scale * (np.arange(64)[None] - centres[:, :1]) ** 2))
    assert np.array_equal(cols, np.exp(scale * (np.arange(48)[None] - centres[:, 1:]) ** 2))
    rows[0, 0] = 5.0  # callers own their copy: the cached table is untouched
    assert aperture_profiles((64, 48), centres, 3.7)[0][0, 0] == 1.0


def test_sum_and_prob_merge_rules():
    g = math.exp(-0.5 * 9 / 16)  # one aperture at distance 3 px, sigma 4
    twice = [[20, 20], [20, 20]]
    summed = bubbles_mask((40, 40), twice, 4, merge="sum")
    prob = bubbles_mask((40, 40), twice, 4, merge="prob")
    assert summed[20, 23] == 1.0  # 2g > 1: clipped
    assert summed[20, 28] == pytest.approx(2 * math.exp(-0.5 * 64 / 16), abs=1e-6)
    assert prob[20, 23] == pytest.approx(1 - (1 - g) ** 2, abs=1e-6)
    assert (prob <= summed + 1e-6).all()
    apart = [[5, 5], [34, 34]]  # far apart, the rules agree
    assert np.allclose(bubbles_mask((40, 40), apart, 2, merge="sum"),
                       bubbles_mask((40, 40), apart, 2, merge="prob"), atol=1e-6)
    assert bubbles_mask((40, 40), [], 2).sum() == 0


def test_sum_merge_agrees_with_the_bubblemask_package():
    build = pytest.importorskip("bubblemask.build")
    shape = (96, 80)
    for n in (1, 7, 40):
        centres = sample_centres(shape, n, seed=n)
        theirs = build.build_mask(mu_y=centres[:, 0], mu_x=centres[:, 1], sigma=np.full(n, 6.0), sh=shape,
                                  scale=True, sum_merge=True)
        assert np.abs(bubbles_mask(shape, centres, 6.0) - theirs).max() < 1e-6


def test_seeding_is_repeatable_and_seed_sensitive():
    first = sample_centres((64, 64), 5, seed=0)
    assert np.array_equal(first, sample_centres((64, 64), 5, seed=0))
    assert not np.array_equal(first, sample_centres((64, 64), 5, seed=1))
    # the same seed gives the same centres on every machine and numpy release (PCG64)
    assert first.tolist() == [[54, 28], [40, 48], [32, 45], [17, 17], [19, 44]]
    weights = np.arange(64 * 64, dtype=float).reshape(64, 64)
    drawn = CentreSampler((64, 64), weights).sample(4, np.random.default_rng(0))
    assert drawn.tolist() == [[51, 5], [33, 15], [12, 61], [8, 15]]
    mask = bubbles_mask((64, 64), first, 4)
    assert mask.tobytes() == bubbles_mask((64, 64), sample_centres((64, 64), 5, seed=0), 4).tobytes()


def test_centres_follow_the_weights():
    region = np.zeros((32, 32), bool)
    region[4:10, 20:30] = True
    centres = CentreSampler((32, 32), region).sample(500, np.random.default_rng(0))
    assert region[centres[:, 0], centres[:, 1]].all()
    assert len({tuple(c) for c in centres.tolist()}) > 40  # spread over the region, not one pixel


def test_rebuild_from_a_trial_row_equals_the_original():
    centres = np.vstack([sample_centres((50, 70), 12, seed=3), [[10.25, 33.5]]])
    original = bubbles_mask((50, 70), centres, 3.5)
    row = {"bubbles": format_centres(centres), "sigma_px": "3.5", "trial": 1}
    assert row["bubbles"].startswith("[[") and "10.25,33.5" in row["bubbles"]
    assert np.array_equal(mask_from_trial(row, (50, 70)), original)
    assert np.array_equal(parse_centres(row["bubbles"]), centres)
    assert parse_centres("[]").shape == (0, 2)


def test_guided_bubbles_reveal_less_area_than_random_ones_at_equal_count():
    """Why the conditions are compared at equal revealed area: guided apertures pile up on the
    relevant regions (two eyes) and overlap, so the same number of them shows fewer pixels."""
    shape, sigma, n = (64, 64), 3.0, 40
    relevance = np.zeros(shape)
    relevance[22:28, 16:26] = relevance[22:28, 38:48] = 1.0  # two eyes
    guided = CentreSampler(shape, guidance_density(relevance, sigma))
    random = CentreSampler(shape)
    rng = np.random.default_rng(12)
    areas = {"guided": [], "random": []}
    for _ in range(40):
        for name, sampler in (("guided", guided), ("random", random)):
            centres = sampler.sample(n, rng)
            row = {"bubbles": format_centres(centres), "sigma_px": sigma}
            area = revealed_area(row, shape)
            assert area == mask_area(bubbles_mask(shape, centres, sigma))  # the row gives the shown mask's area
            areas[name].append(area)
    guided_area, random_area = np.mean(areas["guided"]), np.mean(areas["random"])
    # 40 apertures of 2 pi sigma^2 px each would be ~2,260 px if none overlapped
    assert random_area < n * 2 * math.pi * sigma**2
    assert guided_area < 0.75 * random_area  # measured: about half
    assert max(areas["guided"]) < min(areas["random"])


def test_compose_shows_the_face_through_the_mask():
    face = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    mask = np.zeros((4, 4), np.float32)
    mask[1, 2] = 1.0
    mask[3, 3] = 0.5
    stimulus = compose(face, mask, 0.5)
    assert stimulus[1, 2] == face[1, 2] and stimulus[0, 0] == 0.5
    assert stimulus[3, 3] == pytest.approx(0.5 * face[3, 3] + 0.25)


@pytest.mark.parametrize(("call", "needle"), [
    (lambda: bubbles_mask((32, 32), [[1, 1]], 0), "bubble sigma must be a positive number of pixels, got 0"),
    (lambda: bubbles_mask((32, 32), [[1, 1]], -2.0), "got -2.0"),
    (lambda: bubbles_mask((32, 32), [[1, 1]], float("nan")), "got nan"),
    (lambda: sample_centres((32, 32), 500, 0, sigma_px=2), "500 bubbles of sigma 2 px would open the whole 32x32"),
    (lambda: bubbles_mask((32, 32), [[40, 1]], 2), "bubble centre [40, 1] lies outside the 32x32"),
    (lambda: bubbles_mask((32, 32), [[1, 2, 3]], 2), "list of [row, col] pairs"),
    (lambda: bubbles_mask((32, 32), [[1, 1]], 2, merge="max"), "unknown merge rule 'max'"),
    (lambda: parse_centres("[[1, 2]", "trials.tsv, line 4"), "trials.tsv, line 4: cannot parse bubble centres"),
    (lambda: mask_from_trial({"bubbles": "[]"}, (8, 8)), "column 'sigma_px' is missing"),
    (lambda: CentreSampler((8, 8), np.ones((8, 9))), "sampling weights have shape (8, 9)"),
    (lambda: CentreSampler((8, 8), np.zeros((8, 8))), "sampling weights are all zero"),
])
def test_bad_input_gives_one_clear_error(call, needle):
    with pytest.raises(InputError) as error:
        call()
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_max_sensible_bubbles_covers_the_image_several_times():
    most = max_sensible_bubbles((128, 128), 8)
    assert most * 2 * math.pi * 64 >= 5 * 128 * 128 > (most - 1) * 2 * math.pi * 64
    centres = sample_centres((128, 128), most, seed=0)
    assert bubbles_mask((128, 128), centres, 8).mean() > 0.95  # at the limit the face is almost all open
