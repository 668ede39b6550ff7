"""Masks, AOPC, the transfer matrix and its summaries on hand-made numbers; the packaged config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.evaluate import (
    EvaluateConfig,
    _variant_names,
    aopc_table,
    asymmetry_table,
    group_table,
    matrix,
    random_masks,
    top_fraction_masks,
    transfer_table,
)
from stimuli.contracts.config import load_config
from stimuli.contracts.errors import InputError


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


def test_transfer_matrix_and_groups_from_per_image_aopc():
    ids = ["x", "y", "z"]
    values = {("a", "a"): [0.4, 0.5, 0.6], ("b", "a"): [0.2, 0.3, 0.4], ("random", "a"): [0.1, 0.1, 0.1],
              ("b", "b"): [0.8, 0.8, 0.8], ("a", "b"): [0.5, 0.5, 0.5], ("random", "b"): [0.2, 0.2, 0.2]}
    images = pd.concat([pd.DataFrame({"source": s, "target": t, "mode": "remove", "stimulus_id": ids, "label": 0,
                                      "aopc_p_true": v, "aopc_accuracy": v, "aopc_balanced_accuracy": v,
                                      "fractions": 3}) for (s, t), v in values.items()])
    aopc = aopc_table(images, n_boot=100).set_index(["source", "target"])
    assert aopc.loc[("a", "a"), "aopc"] == pytest.approx(0.5) and aopc.loc[("random", "b"), "aopc"] == pytest.approx(0.2)
    transfer = transfer_table(images, "remove", n_boot=100)
    assert set(zip(transfer.source, transfer.target)) == {("a", "a"), ("b", "a"), ("a", "b"), ("b", "b")}
    rel = {(r.source, r.target): r.relative for r in transfer.itertuples()}
    assert rel[("a", "a")] == pytest.approx(1.0) and rel[("b", "b")] == pytest.approx(1.0)
    # b's map on a keeps half of a's own-map advantage over random masks: (0.3 - 0.1) / (0.5 - 0.1)
    assert rel[("b", "a")] == pytest.approx(0.5) and rel[("a", "b")] == pytest.approx(0.5)
    wide = matrix(transfer, names=["b", "a"])
    assert list(wide.index) == ["b", "a"] and wide.loc["a", "b"] == pytest.approx(0.5)
    asym = asymmetry_table(images, "remove", n_boot=100)
    assert len(asym) == 1 and asym.asymmetry.iloc[0] == pytest.approx(0.5 - 0.3)
    assert asym.relative_asymmetry.iloc[0] == pytest.approx(0.0)


def test_groups_follow_variant_relations():
    transfer = pd.DataFrame({
        "source": ["vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1", "vgg16-faces-gender-s0",
                   "vgg16-imagenet-identity-s0"],
        "target": ["vgg16-imagenet-gender-s0"] * 4, "mode": "remove", "aopc": [0.4, 0.3, 0.1, 0.2],
        "relative": [1.0, 0.7, 0.1, 0.5]})
    groups = group_table(transfer).set_index("relation")
    assert groups.loc["same", "aopc_mean"] == 0.4 and groups.loc["seed", "relative_mean"] == 0.7
    assert groups.loc["pretrain", "aopc_mean"] == 0.1 and groups.loc["task", "pairs"] == 1


def test_packaged_demo_config_names_the_demo_variants():
    path = Path(__file__).resolve().parents[2] / "model" / "configs" / "demo_evaluate.yaml"
    config = load_config(EvaluateConfig, path)
    names = _variant_names(config, str(path))
    assert "vgg16-imagenet-gender-s0" in names and len(names) == len(set(names)) >= 2
    assert not any("-faces-s" in n for n in names)  # the face-pretraining source is not evaluated
    assert config.target == "true" and config.masking.transfer_mode == "remove"
    # the demo's baselines: random blobs inside the aperture and each target's own set-mean map
    assert config.masking.random_within == "aperture" and config.masking.set_mean == "own"


def test_a_boolean_false_target_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("variants: [vgg16-imagenet-gender-s0]\ntarget: false\n")
    with pytest.raises(InputError, match="key 'target' must be 'true' or 'pred'"):
        load_config(EvaluateConfig, path)


def test_fill_images():
    from model.evaluate import fill_images, mask_images

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


def test_shared_trunk_gives_each_heads_own_logits_with_one_trunk_pass(make_vgg, rng):
    """Variants that share the conv trunk share its passes, and those that also share the FC
    layers share those; a variant with its own trunk (or other images) never reuses anything;
    every logit equals the variant's own forward."""
    import copy

    import torch

    from model.evaluate import SharedTrunk
    from model.variants import LoadedVariant
    from stimuli.contracts.variants import parse_variant_name

    def variant(net, name):
        return LoadedVariant(net=net.eval(), spec=parse_variant_name(name), config={}, classes=["a", "b"], task="gender",
                             input_size=32, device=torch.device("cpu"), folder=Path("."))

    base = make_vgg(2, seed=0)
    other_head, other_fc = copy.deepcopy(base), copy.deepcopy(base)
    torch.nn.init.normal_(other_head.classifier[-1].weight)
    torch.nn.init.normal_(other_fc.classifier[0].weight, std=0.01)
    a, b = variant(base, "vgg16-faces-gender-s0"), variant(other_head, "vgg16-faces-gender-s1")
    c = variant(other_fc, "vgg16-imagenet-gender-s1")
    d = variant(make_vgg(2, seed=1), "vgg16-none-gender-s0")
    images = rng.random((5, 40, 40)).astype(np.float32)
    trunks = SharedTrunk()
    for v in (a, b, c, d):
        np.testing.assert_allclose(trunks.logits(v, images, batch_size=2), v.predict_logits(images, batch_size=2),
                                   rtol=1e-5, atol=1e-6)
    assert trunks.trunk_key(a) == trunks.trunk_key(b)
    assert trunks.trunk_key(a)[0] == trunks.trunk_key(c)[0] and trunks.trunk_key(a)[1] != trunks.trunk_key(c)[1]
    assert trunks.trunk_key(d)[0] != trunks.trunk_key(a)[0]
    # a: conv + FC passes; b: reuses a's FC features; c: a's conv features, its own FC; d: all its own
    assert (trunks.hits, trunks.misses) == (2, 5)
    trunks.logits(a, images[::-1].copy())
    assert trunks.misses == 7  # other pixels, other passes
