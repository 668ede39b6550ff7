"""Model statistics: per-image and set-level similarity, relations, rm-ANOVA / paired tests with
FDR, split-half reliability with Spearman-Brown, ICC; problems with relevance files reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fake_study import VARIANTS, make_relevance
from scipy import stats

from analysis.model_stats import (
    level_summary,
    level_tests,
    mean_map_similarity,
    per_image_similarity,
    relation_levels,
    relevance_maps,
    seed_icc,
    similarity_matrix,
    variant_reliability,
)
from analysis.readers.relevance import load_variant_maps
from analysis.reliability import fisher_mean, map_icc, spearman_brown, split_half
from stimuli.contracts.errors import InputError


def test_spearman_brown_known_values():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.5, 3) == pytest.approx(0.75)
    assert spearman_brown(0.0) == 0.0 and spearman_brown(1.0) == 1.0
    assert fisher_mean([0.5, 0.5, np.nan]) == pytest.approx(0.5)


def test_split_half_tracks_the_noise_level():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(12, 12))
    clean = split_half(signal + rng.normal(scale=0.5, size=(30, 12, 12)), n_splits=20, seed=1)
    noisy = split_half(signal + rng.normal(scale=5.0, size=(30, 12, 12)), n_splits=20, seed=1)
    pure = split_half(rng.normal(size=(30, 12, 12)), n_splits=20, seed=1)
    assert clean["r_full"] > 0.95 > noisy["r_full"] > 0.2 and abs(pure["r_half"]) < 0.2
    assert clean["r_full"] == pytest.approx(spearman_brown(clean["r_half"]))
    stack = signal + rng.normal(size=(6, 12, 12))
    assert split_half(stack, seed=4) == split_half(stack, seed=4) != split_half(stack, seed=5)
    with pytest.raises(InputError, match="at least 2 maps"):
        split_half(signal[None], n_splits=5)


def test_icc_of_identical_and_unrelated_maps():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(10, 10))
    same = map_icc({"x": a, "y": a, "z": a})
    assert set(same.columns) >= {"Type", "ICC", "CI95", "pval", "n_maps", "n_pixels"}
    assert same.set_index("Type").loc["ICC(C,1)", "ICC"] == pytest.approx(1.0)
    unrelated = map_icc({"x": a, "y": rng.normal(size=(10, 10))})
    assert abs(unrelated.set_index("Type").loc["ICC(C,1)", "ICC"]) < 0.3
    with pytest.raises(InputError, match="at least 2 maps"):
        map_icc({"x": a})


def test_per_image_similarity_equals_scipy_and_matches_images_by_id():
    rng = np.random.default_rng(3)
    a = rng.random((5, 9, 7))
    b = a + rng.normal(scale=0.3, size=a.shape)
    region = np.zeros((9, 7), bool)
    region[1:8, 1:6] = True
    maps = {"vgg16-imagenet-gender-s0": relevance_maps(a, "x", [f"i{k}" for k in range(5)]),
            # b's images in reverse order, and one image the other variant lacks
            "vgg16-imagenet-gender-s1": relevance_maps(np.concatenate([b[::-1], a[:1]]), "y",
                                                       [f"i{k}" for k in range(4, -1, -1)] + ["extra"])}
    table = per_image_similarity(maps, region=region)
    assert list(table.columns) == ["variant_a", "variant_b", "relation", "stimulus_id", "spearman", "pearson"]
    assert table["stimulus_id"].tolist() == [f"i{k}" for k in range(5)] and set(table.relation) == {"seed"}
    for k, row in enumerate(table.itertuples()):
        assert row.spearman == pytest.approx(stats.spearmanr(a[k][region], b[k][region])[0], abs=1e-5)
        assert row.pearson == pytest.approx(stats.pearsonr(a[k][region], b[k][region])[0], abs=1e-5)
    matrix = similarity_matrix(table, "spearman")
    assert matrix.shape == (2, 2) and np.allclose(np.diag(matrix), 1)
    assert matrix.iloc[0, 1] == pytest.approx(fisher_mean(table.spearman))


def test_per_image_similarity_a_few_images_at_a_time_equals_all_at_once(fake_maps, monkeypatch):
    """Large sets are compared a chunk of images at a time (issue #15): the same table, row for row."""
    from analysis import model_stats

    whole = per_image_similarity(fake_maps)
    monkeypatch.setattr(model_stats, "SIMILARITY_CHUNK_BYTES", 3 * 8 * 8 * 64 * len(fake_maps))  # ~3 images
    pd.testing.assert_frame_equal(per_image_similarity(fake_maps), whole)


@pytest.fixture(scope="module")
def fake_maps(tmp_path_factory):
    results = tmp_path_factory.mktemp("relevance")
    make_relevance(results, n_images=8)
    messages = []
    maps = load_variant_maps(VARIANTS, "tiny", results, warn=messages.append)
    assert messages == [] and list(maps) == VARIANTS
    return maps


def test_relations_are_ordered_as_constructed_and_tested_with_pingouin(fake_maps):
    per_image = per_image_similarity(fake_maps)
    assert len(per_image) == 28 * 8  # every pair of 8 variants on 8 images
    assert per_image.groupby("relation").size().to_dict() == {"other": 16 * 8, "pretrain": 32, "seed": 32, "task": 32}
    levels = relation_levels(per_image)
    assert set(levels.relation) == {"seed", "task", "pretrain"} and (levels.n_pairs == 4).all()
    assert levels.groupby("stimulus_id").size().eq(3).all()
    summary = level_summary(levels).set_index("relation")
    assert summary.loc["seed", "mean_r"] > summary.loc["task", "mean_r"] > summary.loc["pretrain", "mean_r"]
    assert (summary.ci_low < summary.mean_r).all() and (summary.mean_r < summary.ci_high).all()
    assert (summary.p_val < 0.001).all()
    anova, pairwise = level_tests(levels)
    assert {"F", "p_unc", "ng2"} <= set(anova.columns) and anova["p_unc"].iloc[0] < 0.001
    assert {"A", "B", "T", "p_unc", "p_corr", "p_adjust", "cohen", "mean_r_A", "mean_r_B"} <= set(pairwise.columns)
    assert (pairwise.p_adjust == "fdr_bh").all() and (pairwise.p_corr >= pairwise.p_unc - 1e-12).all()
    row = pairwise[(pairwise.A == "pretrain") & (pairwise.B == "seed")].iloc[0]
    assert row["T"] < 0 and row["cohen"] < 0 and row["mean_r_A"] < row["mean_r_B"]


def test_level_tests_say_what_is_missing():
    levels = pd.DataFrame({"stimulus_id": ["a", "b", "c"], "relation": "seed", "z": [0.1, 0.2, 0.3], "r": 0.2,
                           "n_pairs": 1})
    with pytest.raises(InputError, match="needs at least two of seed, task, pretrain; found seed"):
        level_tests(levels)


def test_set_level_similarity_reliability_and_seed_icc(fake_maps):
    means = mean_map_similarity(fake_maps, kind="positive", top_percents=(10,))
    assert len(means) == 28 and {"spearman", "pearson", "dice_top10", "iou_top10"} <= set(means.columns)
    by = means.groupby("relation")["spearman"].mean()
    assert by["seed"] > by["pretrain"]
    reliability = variant_reliability(fake_maps, n_splits=10, seed=0)
    assert list(reliability.variant) == VARIANTS and reliability.r_full.between(0.5, 1).all()
    assert (reliability.r_full > reliability.r_half).all()
    icc = seed_icc(fake_maps)
    assert sorted(set(icc.family)) == sorted({v[:-1] + "*" for v in VARIANTS})
    assert icc.set_index(["family", "Type"]).loc[("vgg16-imagenet-gender-s*", "ICC(C,1)"), "ICC"] > 0.5


def test_missing_and_nan_relevance_are_reported_not_fatal(tmp_path):
    make_relevance(tmp_path, variants=VARIANTS[:3], nan_in=VARIANTS[1])
    messages = []
    maps = load_variant_maps(VARIANTS[:4], "tiny", tmp_path, warn=messages.append)
    assert list(maps) == VARIANTS[:3]
    assert len(maps[VARIANTS[1]]) == 7 and "face01" not in maps[VARIANTS[1]].stimulus_id
    assert len(messages) == 2
    assert "1 of 8 maps hold NaN or infinite values (first: stimulus face01); those maps left out" in messages[0]
    assert f"relevance maps {tmp_path}/relevance/{VARIANTS[3]}/tiny.npz not found; make them with: " \
           f"python -m model explain --variant {VARIANTS[3]} --stimuli tiny --out {tmp_path}" == messages[1]


def test_masking_tables_read_by_relation_and_directed_asymmetry(tmp_path):
    from fake_study import make_evaluate

    from analysis.masking_transfer import (
        asymmetry_tests,
        oriented_asymmetry,
        transfer_levels,
        transfer_tests,
    )
    from analysis.readers.masking import read_masking

    tables = read_masking(make_evaluate(tmp_path / "evaluate" / "demo"))
    assert tables.mode == "remove" and len(tables.transfer) == 64
    levels = transfer_levels(tables.transfer, "relative")
    assert levels.groupby("target").size().eq(4).all() and set(levels.relation) == {"same", "seed", "task",
                                                                                    "pretrain"}
    assert levels[levels.relation == "same"]["value"].eq(1.0).all()
    anova, pairwise = transfer_tests(levels)
    assert anova["p_unc"].iloc[0] < 0.001 and (pairwise.p_adjust == "fdr_bh").all()
    # orientation: a positive asymmetry of (faces, imagenet) and the same pair listed the other way round
    pairs = pd.DataFrame({"a": ["vgg16-faces-gender-s0", "vgg16-imagenet-identity-s0", "vgg16-faces-gender-s0"],
                          "b": ["vgg16-imagenet-gender-s0", "vgg16-faces-identity-s0", "vgg16-imagenet-identity-s1"],
                          "m_ab": [0.3, 0.3, 0.1], "m_ba": [0.2, 0.2, 0.1], "asymmetry": [0.1, 0.1, 0.0]})
    oriented = oriented_asymmetry(pairs)
    assert oriented.direction.tolist() == ["faces->imagenet", "faces->imagenet"]  # the 'other' pair is left out
    assert oriented.oriented.tolist() == pytest.approx([0.1, -0.1])
    tests = asymmetry_tests(oriented)
    assert tests.loc[0, "n_pairs"] == 2 and tests.loc[0, "mean"] == pytest.approx(0.0)


def test_masking_tables_problems_are_named(tmp_path):
    from fake_study import make_evaluate

    from analysis.readers.masking import read_masking

    with pytest.raises(InputError, match=r"no model evaluate output here; make it with: python -m model evaluate "
                                         r"CONFIG.yaml --out .* \(CONFIG named 'missing'"):
        read_masking(tmp_path / "evaluate" / "missing")
    folder = make_evaluate(tmp_path / "evaluate" / "demo")
    with pytest.raises(InputError, match="no transfer_keep.csv"):
        read_masking(folder, "keep")
    accuracy = pd.read_csv(folder / "tables" / "accuracy.csv")
    accuracy.loc[3, "accuracy"] = np.nan
    accuracy.to_csv(folder / "tables" / "accuracy.csv", index=False)
    with pytest.raises(InputError, match=r"accuracy.csv, line 5: 'accuracy' is not a finite number"):
        read_masking(folder)
