"""Masking baselines, per-image AOPC on the uniform grid, relative transfer and the bootstrap
asymmetry test (model.masking, model.masking_stats) on hand-made numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.evaluate import MaskingConfig, uniform_fractions
from model.masking import (
    RANDOM,
    baseline_masks,
    masking_curves,
    set_mean_name,
    top_fraction_masks,
)
from model.masking_stats import (
    aopc_table,
    asymmetry_bootstrap,
    asymmetry_table,
    image_aopc,
    transfer_table,
)
from stimuli.contracts.config import ConfigValueError
from stimuli.framing import DEFAULT_APERTURE, elliptical_aperture

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "masking_asymmetry_null.py"


@pytest.mark.parametrize("name", ["masking", "masking_stats"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"model.{name}"), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def load_benchmark():
    spec = importlib.util.spec_from_file_location("masking_asymmetry_null", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def curve(source, target, stimulus, label, weight, p_true, correct, mode="remove"):
    fractions = [0.0, *uniform_fractions(0.05, 0.5)]
    return pd.DataFrame({"source": source, "target": target, "mode": mode, "fraction": fractions,
                         "stimulus_id": stimulus, "label": label, "p_true": p_true, "correct": correct,
                         "weight": weight})


def test_aopc_per_image_on_the_uniform_grid_is_the_hand_computation():
    p1 = np.linspace(0.9, 0.4, 11)  # remove: falls by 0.05 per step
    p2 = np.array([0.8] * 6 + [0.2] * 5)
    c1 = (p1 > 0.6).astype(float)
    keep = np.linspace(0.5, 0.7, 11)
    rows = pd.concat([curve("a", "t", "x1", 0, 0.75, p1, c1), curve("a", "t", "x2", 1, 1.5, p2, p2 > 0.5),
                      curve("a", "t", "x1", 0, 0.75, keep, np.ones(11), mode="keep")])
    table = image_aopc(rows).set_index(["mode", "stimulus_id"])
    # mean over the 11 grid points (0 included) of p(0) - p(f): 0.05 * (0 + 1 + ... + 10) / 11
    assert table.loc[("remove", "x1"), "aopc_p_true"] == pytest.approx(0.05 * 55 / 11)
    assert table.loc[("remove", "x2"), "aopc_p_true"] == pytest.approx(0.6 * 5 / 11)
    assert table.loc[("remove", "x1"), "aopc_accuracy"] == pytest.approx(np.mean(1 - c1))
    assert table.loc[("remove", "x2"), "aopc_balanced_accuracy"] == pytest.approx(1.5 * 5 / 11)
    assert table.loc[("keep", "x1"), "aopc_p_true"] == pytest.approx(np.mean(keep - 0.5))  # gain over keep 0
    assert (table["fractions"] == 11).all()
    aopc = aopc_table(image_aopc(rows), "p_true", n_boot=200, seed=4).set_index("mode")
    assert aopc.loc["remove", "aopc"] == pytest.approx((0.25 + 0.6 * 5 / 11) / 2)
    assert aopc.loc["remove", "aopc_ci_low"] <= aopc.loc["remove", "aopc"] <= aopc.loc["remove", "aopc_ci_high"]
    assert aopc.loc["remove", "n_images"] == 2 and aopc.loc["remove", "boot_seed"] == 4


def image_table(values: dict[tuple[str, str], np.ndarray], ids) -> pd.DataFrame:
    """A per-image AOPC table from {(source, target): per-image AOPC}."""
    return pd.concat([pd.DataFrame({"source": s, "target": t, "mode": "remove", "stimulus_id": ids, "label": 0,
                                    "aopc_p_true": v, "aopc_accuracy": v, "aopc_balanced_accuracy": v,
                                    "fractions": 11}) for (s, t), v in values.items()], ignore_index=True)


def pair_values(rng, n, relative_ab, relative_ba, noise=0.02):
    """a is the robust target (own 0.25), b twice as fragile (own 0.5); random masks do nothing."""
    def jitter(mean):
        return mean + rng.normal(0, noise, n)

    return {("a", "a"): jitter(0.25), ("b", "b"): jitter(0.5), (RANDOM, "a"): jitter(0.0),
            (RANDOM, "b"): jitter(0.0), ("b", "a"): jitter(0.25 * relative_ba),
            ("a", "b"): jitter(0.5 * relative_ab)}


def test_relative_transfer_is_invariant_to_the_targets_fragility():
    rng = np.random.default_rng(5)
    ids = [f"img{i}" for i in range(60)]
    images = image_table(pair_values(rng, 60, 0.5, 0.5), ids)
    asym = asymmetry_table(images, "remove", n_boot=500, seed=1).iloc[0]
    # the example: raw M[a, b] - M[b, a] = 0.25 - 0.125 = 0.125 where nothing is asymmetric
    assert asym.asymmetry == pytest.approx(0.125, abs=0.01)
    assert asym.relative_ab == pytest.approx(0.5, abs=0.03) and asym.relative_ba == pytest.approx(0.5, abs=0.03)
    assert abs(asym.relative_asymmetry) < 0.04 and bool(asym.paired)
    assert asym.relative_asymmetry_ci_low < 0 < asym.relative_asymmetry_ci_high  # the CI covers 0
    assert asym.relative_asymmetry_p > 0.05 and asym.boot_seed == 1
    transfer = transfer_table(images, "remove", n_boot=500, seed=1).set_index(["source", "target"])
    assert transfer.loc[("a", "a"), "relative"] == pytest.approx(1.0)
    assert transfer.loc[("a", "b"), "relative_ci_low"] < 0.5 < transfer.loc[("a", "b"), "relative_ci_high"]


def test_bootstrap_asymmetry_excludes_zero_for_an_asymmetric_pair():
    rng = np.random.default_rng(6)
    ids = [f"img{i}" for i in range(60)]
    asym = asymmetry_table(image_table(pair_values(rng, 60, 0.8, 0.3), ids), "remove", n_boot=500,
                           seed=1).iloc[0]
    assert asym.relative_asymmetry == pytest.approx(0.5, abs=0.05)
    assert asym.relative_asymmetry_ci_low > 0.3 and asym.relative_asymmetry_p < 0.01
    # the table and the public function agree (same resamples)
    values = pair_values(np.random.default_rng(6), 60, 0.8, 0.3)
    direct = asymmetry_bootstrap(values[("a", "b")], values[(RANDOM, "b")], values[("b", "b")], values[("b", "a")],
                                 values[(RANDOM, "a")], values[("a", "a")], n_boot=500, seed=1)
    assert direct["ci_low"] == pytest.approx(asym.relative_asymmetry_ci_low)
    assert direct["p"] == pytest.approx(asym.relative_asymmetry_p)


def test_set_mean_baseline_columns_of_the_transfer_table():
    rng = np.random.default_rng(7)
    ids = [f"img{i}" for i in range(40)]
    values = pair_values(rng, 40, 0.5, 0.5)
    values[(set_mean_name("a"), "b")] = values[("a", "b")] - 0.1  # a's per-image maps beat its set mean on b
    values[(set_mean_name("a"), "a")] = values[("a", "a")] - 0.0
    transfer = transfer_table(image_table(values, ids), "remove", n_boot=300, seed=0).set_index(["source", "target"])
    assert set(transfer.index) == {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}  # baselines are columns
    row = transfer.loc[("a", "b")]
    assert row.vs_setmean == pytest.approx(0.1) and row.vs_setmean_ci_low == pytest.approx(0.1)
    span = values[("b", "b")].mean() - values[(RANDOM, "b")].mean()
    assert row.relative_setmean == pytest.approx(row.relative - 0.1 / span, abs=1e-9)
    assert np.isnan(transfer.loc[("b", "a"), "aopc_setmean"])


@pytest.mark.slow
def test_asymmetry_test_false_positive_rate_under_a_symmetric_null():
    bench = load_benchmark()
    k, n = bench.rejection_rate(200, 60, 500, relative=(0.5, 0.5), alpha=0.05, seed=0)
    low, high = bench.clopper_pearson(k, n)
    print(f"asymmetry bootstrap under the null: {k}/{n} rejected at 0.05, 95% CP [{low:.3f}, {high:.3f}]")
    assert low <= 0.05  # not detectably above alpha
    k, n = bench.rejection_rate(50, 60, 500, relative=(0.8, 0.3), alpha=0.05, seed=1)
    assert bench.clopper_pearson(k, n)[0] > 0.8  # and it finds a real asymmetry


class FakeTarget:
    """Two classes; the logit of class 1 is the mean of the top-left quadrant (the evidence)."""

    name = "t"
    classes = ["a", "b"]

    def predict_logits(self, images, batch_size=64):
        evidence = images[:, :8, :8].mean(axis=(1, 2)) * 8 - 4
        return np.stack([np.zeros(len(images)), evidence], axis=1)


def test_masking_curves_keep_per_image_rows_that_add_up_to_the_set_rows():
    rng = np.random.default_rng(8)
    images = rng.random((12, 16, 16)).astype(np.float32)
    labels = (images[:, :8, :8].mean(axis=(1, 2)) > 0.5).astype(int)
    evidence = np.zeros((12, 16, 16))
    evidence[:, :8, :8] = 1 + rng.random((12, 8, 8))
    aperture = np.zeros((16, 16), bool)
    aperture[2:14, 2:14] = True
    masking = MaskingConfig(fractions=uniform_fractions(0.1, 0.5), modes=["remove"], fill="background",
                            random_repeats=2, random_smoothing=0.0)
    accuracy, per_image = masking_curves(FakeTarget(), images, labels, {"t": evidence}, masking=masking,
                                         background=0.5, seed=0, aperture=aperture,
                                         set_means={"t": evidence.mean(axis=0)},
                                         stimulus_id=[f"s{i}" for i in range(12)])
    assert set(accuracy.source) == {"t", RANDOM, set_mean_name("t")} and (accuracy.random_within == "aperture").all()
    assert len(per_image) == 3 * 6 * 12
    means = per_image.groupby(["source", "fraction"]).p_true.mean()
    for r in accuracy.itertuples():
        assert r.p_true == pytest.approx(means[(r.source, r.fraction)])
    aopc = aopc_table(image_aopc(per_image), n_boot=200).set_index("source").aopc
    # removing the evidence hurts more than random pixels inside the aperture
    assert aopc["t"] > aopc[RANDOM] and aopc[set_mean_name("t")] > aopc[RANDOM]


def test_targets_on_different_images_are_resampled_independently():
    rng = np.random.default_rng(9)
    values = pair_values(rng, 30, 0.5, 0.5)
    ids_a, ids_b = [f"a{i}" for i in range(30)], [f"b{i}" for i in range(30)]
    images = pd.concat([image_table({k: v for k, v in values.items() if k[1] == "a"}, ids_a),
                        image_table({k: v for k, v in values.items() if k[1] == "b"}, ids_b)])
    asym = asymmetry_table(images, "remove", n_boot=300, seed=2).iloc[0]
    assert not bool(asym.paired) and asym.relative_asymmetry_ci_low < 0 < asym.relative_asymmetry_ci_high
    direct = asymmetry_bootstrap(values[("a", "b")], values[(RANDOM, "b")], values[("b", "b")], values[("b", "a")],
                                 values[(RANDOM, "a")], values[("a", "a")], n_boot=300, seed=2, paired=False)
    assert direct["difference"] == pytest.approx(asym.relative_asymmetry)
