"""model.masking: the config's fraction grid, top-fraction, random-blob and set-mean masks, fills,
and masking a tiny trained variant's images at fractions 0 and 1."""

from __future__ import annotations

import numpy as np
import pytest

from model import load_variant
from model.masking import (
    RANDOM,
    MaskingConfig,
    baseline_masks,
    fill_images,
    mask_images,
    random_masks,
    set_mean_name,
    top_fraction_masks,
    uniform_fractions,
)
from model.scoring import masked_scores
from model.variants import held_out
from stimuli.contracts.config import ConfigValueError
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.framing import DEFAULT_APERTURE, elliptical_aperture

V0 = "vgg16-bn-w0.0625-none-gender-s0"


@pytest.mark.parametrize("name", ["masking", "masking_stats"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"model.{name}"), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_random_blobs_lie_inside_the_aperture_and_match_the_relevance_area():
    shape = (48, 48)
    aperture = elliptical_aperture(shape, DEFAULT_APERTURE)
    fractions = [0.0, *uniform_fractions(0.1, 0.5)]
    masks = baseline_masks(6, shape, fractions, seed=3, repeats=2, smoothing=4.0, aperture=aperture)
    ranked = top_fraction_masks(np.random.default_rng(0).normal(size=(6, *shape)), fractions)
    assert list(masks) == [RANDOM] and len(masks[RANDOM]) == 2
    for repeat in masks[RANDOM]:
        for mask, relevance_mask in zip(repeat, ranked):
            assert not (mask & ~aperture).any()  # every random-blob pixel inside the aperture
            assert mask.sum(axis=(1, 2)).tolist() == relevance_mask.sum(axis=(1, 2)).tolist()
    assert not np.array_equal(masks[RANDOM][0][3], masks[RANDOM][1][3])  # repeats differ
    # without an aperture they spread over the grid: about half of them outside this one
    anywhere = baseline_masks(6, shape, fractions, seed=3, repeats=1, smoothing=4.0, aperture=None)[RANDOM][0][2]
    assert (anywhere & ~aperture).sum() / anywhere.sum() > 0.25


def test_more_pixels_than_the_aperture_holds_is_refused():
    from stimuli.contracts.errors import InputError

    aperture = np.zeros((10, 10), bool)
    aperture[:5] = True
    with pytest.raises(InputError, match="masking.fractions: a fraction of 0.6 is 60 pixels, more than the 50"):
        baseline_masks(2, (10, 10), [0.3, 0.6], seed=0, repeats=1, smoothing=0.0, aperture=aperture)


def test_set_mean_baseline_is_the_mean_maps_ordering_for_every_image():
    rng = np.random.default_rng(1)
    mean_map = rng.normal(size=(16, 16))
    fractions = [0.0, 0.1, 0.2]
    masks = baseline_masks(5, (16, 16), fractions, seed=2, repeats=1, smoothing=0.0, aperture=None,
                           set_means={"v": mean_map})[set_mean_name("v")]
    assert len(masks) == 1
    order = np.argsort(-mean_map.ravel(), kind="stable")
    for fraction, mask in zip(fractions, masks[0]):
        k = int(round(fraction * 256))
        expected = np.zeros(256, bool)
        expected[order[:k]] = True
        for image_mask in mask:  # the same top pixels of the mean map, whatever the image
            assert np.array_equal(image_mask.ravel(), expected)


def test_fractions_must_be_a_uniform_grid():
    assert MaskingConfig().fractions == pytest.approx([0.05 * k for k in range(1, 11)])
    assert MaskingConfig().metric == "p_true" and MaskingConfig().random_within == "aperture"
    with pytest.raises(ConfigValueError, match="uniform grid"):
        MaskingConfig(fractions=[0.05, 0.1, 0.2, 0.3, 0.5])


@pytest.mark.slow
def test_masking_at_fraction_zero_and_one(trained):
    variant = load_variant(V0, trained, "cpu")
    stimuli = load_prepared_set("synth-eyes", trained)
    rows, labels = held_out(variant, stimuli, "test")
    images = stimuli.images[rows]
    maps = np.random.default_rng(0).normal(size=images.shape)
    none, everything = top_fraction_masks(maps, [0.0, 1.0])
    assert not none.any() and everything.all()
    fill = np.full_like(images, stimuli.background)
    plain = masked_scores(variant, images, labels)
    assert plain["accuracy"] >= 0.9
    # fraction 0 removed: the images and the accuracy are unchanged
    assert np.array_equal(mask_images(images, none, "remove", fill), images)
    assert masked_scores(variant, mask_images(images, none, "remove", fill), labels) == plain
    # fraction 1 removed: one grey image for all, one answer for all -> that class's share (chance)
    blank = mask_images(images, everything, "remove", fill)
    assert np.all(blank == stimuli.background)
    predicted = variant.predict_logits(blank).argmax(1)
    assert len(set(predicted)) == 1
    scores = masked_scores(variant, blank, labels)
    assert scores["accuracy"] == pytest.approx(np.mean(labels == predicted[0]))  # that class's share
    assert scores["balanced_accuracy"] == 0.5  # exactly chance, whatever the class sizes
    # keep mode mirrors it: keeping everything is the plain images
    assert masked_scores(variant, mask_images(images, everything, "keep", fill), labels) == plain


def test_top_fraction_masks_pick_the_most_relevant_pixels():
    maps = np.random.default_rng(0).normal(size=(3, 10, 10))
    masks = top_fraction_masks(maps, [0.0, 0.1, 0.5, 1.0])
    assert [int(m[0].sum()) for m in masks] == [0, 10, 50, 100]
    for i in range(3):
        top = np.sort(maps[i].ravel())[::-1][:10]
        assert np.allclose(np.sort(maps[i][masks[1][i]])[::-1], top)
    assert np.all(masks[1] <= masks[2])  # nested: the top 10% lie inside the top 50%


def test_ties_and_nonfinite_values_are_ordered_reproducibly():
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = np.nan
    a = top_fraction_masks(maps, [0.25], tie_seed=1)[0]
    b = top_fraction_masks(maps, [0.25], tie_seed=1)[0]
    c = top_fraction_masks(maps, [0.25], tie_seed=2)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.sum() == 4
    assert not a[0, 0, 0]  # NaN comes last


def test_masks_within_a_region_and_random_masks_of_equal_area():
    within = np.zeros((8, 8), bool)
    within[2:6, 2:6] = True
    maps = np.random.default_rng(1).normal(size=(2, 8, 8))
    top = top_fraction_masks(maps, [0.5], within=within)[0]
    rand = random_masks(2, (8, 8), [0.5], seed=[0, 1], within=within)[0]
    assert top.sum(axis=(1, 2)).tolist() == [8, 8] == rand.sum(axis=(1, 2)).tolist()
    assert not (top & ~within).any() and not (rand & ~within).any()
    assert np.array_equal(rand, random_masks(2, (8, 8), [0.5], seed=[0, 1], within=within)[0])


def test_random_blobs_are_contiguous_and_of_equal_area():
    pixels = random_masks(20, (32, 32), [0.2], seed=0)[0]
    blobs = random_masks(20, (32, 32), [0.2], seed=0, smoothing=4.0)[0]
    assert pixels.sum(axis=(1, 2)).tolist() == blobs.sum(axis=(1, 2)).tolist() == [205] * 20

    def same_neighbour(m):  # share of horizontally adjacent pixel pairs that agree
        return np.mean(m[:, :, 1:] == m[:, :, :-1])

    assert same_neighbour(blobs) > 0.9 > same_neighbour(pixels)


def test_fill_images():
    from model.masking import mask_images

    images = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    grey = fill_images(images, "background", 0.4)
    assert grey.shape == images.shape and np.all(grey == np.float32(0.4))
    blurred = fill_images(images, "blur", 0.4, blur_sigma=2.0)
    assert blurred.shape == images.shape and blurred.std() < images.std() / 2
    assert np.allclose(blurred.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=0.02)
    flat = np.full((1, 8, 8), 0.3, np.float32)
    assert np.allclose(fill_images(flat, "blur", 0.0), 0.3)  # a blurred constant is the constant
    masks = np.zeros((2, 16, 16), bool)
    masks[:, :4] = True
    kept = mask_images(images, masks, "keep", blurred)
    assert np.array_equal(kept[:, :4], images[:, :4]) and np.array_equal(kept[:, 4:], blurred[:, 4:])
    with pytest.raises(InputError, match="unknown fill"):
        fill_images(images, "noise", 0.4)
