"""Per-image AOPC on the uniform grid, relative transfer, the transfer matrix and its group
summaries, and the bootstrap asymmetry test (model.masking_stats) on hand-made numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.masking import (
    RANDOM,
    set_mean_name,
    uniform_fractions,
)
from model.masking_stats import (
    aopc_table,
    asymmetry_bootstrap,
    asymmetry_table,
    group_table,
    image_aopc,
    matrix,
    transfer_table,
)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "masking_asymmetry_null.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("masking_asymmetry_null", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
