"""Guided and antiguided centre densities, and area-matched top-k reveal masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from stimuli.bubbles import CentreSampler, bubbles_mask, sample_centres
from stimuli.contracts.errors import InputError
from stimuli.guided import check_relevance_map, guidance_density, topk_reveal_mask

SHAPE = (64, 64)


@pytest.fixture(scope="module")
def relevance():
    """A smooth random relevance map of both signs, like an LRP map."""
    noise = np.random.default_rng(3).standard_normal(SHAPE)
    return gaussian_filter(noise, 4) * 10


def _share_in_top10(centres, relevance):
    top = relevance >= np.quantile(relevance, 0.9)
    return top[centres[:, 0], centres[:, 1]].mean()


def test_guided_centres_concentrate_where_relevance_is_high(relevance):
    density = guidance_density(relevance, sigma_px=2, strength=1.0)
    centres = CentreSampler(SHAPE, weights=density).sample(4000, np.random.default_rng(0))
    assert _share_in_top10(centres, relevance) > 0.35
    anti = guidance_density(relevance, sigma_px=2, strength=1.0, mode="antiguided")
    centres = CentreSampler(SHAPE, weights=anti).sample(4000, np.random.default_rng(0))
    assert _share_in_top10(centres, relevance) < 0.06  # density 1 - s: half the uniform share
    uniform = sample_centres(SHAPE, 4000, 0)
    assert 0.08 < _share_in_top10(uniform, relevance) < 0.12


def test_strength_mixes_toward_uniform(relevance):
    full = guidance_density(relevance, 2, strength=1.0)
    half = guidance_density(relevance, 2, strength=0.5)
    none = guidance_density(relevance, 2, strength=0.0)
    for density in (full, half, none):
        assert density.shape == SHAPE and abs(density.sum() - 1) < 1e-12 and (density >= 0).all()
    assert np.allclose(none, 1 / np.prod(SHAPE))
    assert np.allclose(half, 0.5 * full + 0.5 / np.prod(SHAPE))


def test_density_is_smoothed_at_the_bubble_scale_and_ignores_negative_relevance():
    relevance = np.zeros(SHAPE)
    relevance[32, 32] = 1.0
    relevance[10, 10] = -5.0
    density = guidance_density(relevance, sigma_px=3)
    assert density[32, 32] == density.max()
    # one sigma away the smoothed density falls to exp(-1/2) of its peak
    assert density[32, 35] / density[32, 32] == pytest.approx(np.exp(-0.5), rel=0.02)
    assert density[10, 10] < 1e-12


def test_region_restricts_centres(relevance):
    region = np.zeros(SHAPE, bool)
    region[16:48, 16:48] = True
    for mode in ("guided", "antiguided"):
        density = guidance_density(relevance, 2, strength=0.7, mode=mode, region=region)
        assert density[~region].sum() == 0 and abs(density.sum() - 1) < 1e-12


def test_topk_mask_matches_the_area_of_a_bubbles_mask(relevance):
    for seed in range(5):
        centres = sample_centres(SHAPE, 6, seed)
        area = float(bubbles_mask(SHAPE, centres, 3).sum())
        hard = topk_reveal_mask(relevance, area)
        soft = topk_reveal_mask(relevance, area, edge_px=3, smooth_px=1)
        for mask in (hard, soft):
            assert abs(mask.sum() - area) / area < 0.01
            assert mask.min() >= 0 and mask.max() <= 1
    # the revealed pixels are the most relevant ones (and the least, for "bottom")
    top = topk_reveal_mask(relevance, 400) > 0.5
    bottom = topk_reveal_mask(relevance, 400, which="bottom") > 0.5
    assert relevance[top].min() >= relevance[~top].max()
    assert relevance[bottom].max() <= relevance[~bottom].min()


def test_topk_mask_of_a_set_average_and_inside_a_region(relevance):
    maps = np.stack([relevance, np.roll(relevance, 5, axis=1)])
    mean = maps.mean(axis=0)
    region = np.zeros(SHAPE, bool)
    region[:, :32] = True
    mask = topk_reveal_mask(mean, 300, region=region, edge_px=2)
    assert abs(mask.sum() - 300) / 300 < 0.01 and mask[~region].sum() == 0


@pytest.mark.parametrize(("bad", "needle"), [
    (np.zeros((32, 32)), "shape (32, 32) differs from the stimulus grid (64, 64)"),
    (np.zeros((2, 64, 64)), "expected one (H, W) map"),
    (np.zeros(SHAPE), "all zeros"),
    (np.where(np.eye(64, dtype=bool), np.nan, 1.0), "64 NaN or infinite value(s)"),
])
def test_bad_relevance_maps_give_one_clear_error_each(bad, needle):
    for call in (lambda: guidance_density(bad, 2, shape=SHAPE),
                 lambda: topk_reveal_mask(bad, 100, shape=SHAPE),
                 lambda: check_relevance_map(bad, SHAPE)):
        with pytest.raises(InputError) as error:
            call()
        assert needle in str(error.value) and "\n" not in str(error.value)


def test_other_bad_guidance_inputs(relevance):
    with pytest.raises(InputError, match="no positive relevance"):
        guidance_density(-np.abs(relevance), 2)
    with pytest.raises(InputError, match="strength 1.5 must lie in"):
        guidance_density(relevance, 2, strength=1.5)
    with pytest.raises(InputError, match="unknown guidance mode 'reverse'"):
        guidance_density(relevance, 2, mode="reverse")
    with pytest.raises(InputError, match="region is empty"):
        guidance_density(relevance, 2, region=np.zeros(SHAPE, bool))
    with pytest.raises(InputError, match="revealed area 5000 px"):
        topk_reveal_mask(relevance, 5000)
