"""The nulls of the map-similarity findings: bootstrap contrasts and the verdict rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.similarity_null import (
    baseline_contrasts,
    bootstrap_statistic,
    level_contrasts,
    pair_baselines,
    paired_levels,
    pretrain_verdict,
    similarity_verdict,
)


def levels_table(rng, n: int, means: dict[str, tuple[float, float]], sd: float = 0.3) -> pd.DataFrame:
    """A paired_levels-shaped table: per image and relation, trained and baseline Fisher z."""
    image = rng.normal(0, sd, n)  # image effects shared by every relation and both arms (paired)
    rows = []
    for relation, (trained, baseline) in means.items():
        rows.append(pd.DataFrame({"stimulus_id": [f"im{i:03d}" for i in range(n)], "relation": relation,
                                  "z": trained + image + rng.normal(0, sd, n),
                                  "z_baseline": baseline + image + rng.normal(0, sd, n), "n_pairs": 4}))
    return pd.concat(rows, ignore_index=True)


def test_a_similarity_inside_the_baselines_ci_is_never_agrees():
    # trained and baseline drawn alike, both high (r ~ 0.8): the old rule (r >= 0.5, r > 0) said
    # "agrees" every time; the null comparison may say so only at its one-sided error rate
    rng = np.random.default_rng(2026)
    runs, agrees = 200, 0
    for _ in range(runs):
        table = baseline_contrasts({"untrained": levels_table(rng, 30, {"seed": (1.1, 1.1)})}, n_boot=400,
                                   seed=int(rng.integers(1 << 30)))
        verdict = similarity_verdict(table)
        agrees += verdict == "agrees"
        row = table.iloc[0]
        if row.ci_low <= 0 <= row.ci_high:  # the difference's CI holds 0: never agrees
            assert verdict != "agrees"
    high = stats.binomtest(agrees, runs).proportion_ci(0.95, method="exact").high
    assert agrees / runs <= 0.06 and high < 0.1, (agrees, high)  # nominal one-sided rate 0.025


def test_a_similarity_clearly_above_its_baseline_agrees_and_a_low_one_does_not():
    rng = np.random.default_rng(1)
    above = baseline_contrasts({"untrained": levels_table(rng, 40, {"seed": (1.4, 0.6)}),
                                "random": levels_table(rng, 40, {"seed": (1.4, 0.1)})}, n_boot=500)
    assert set(above.baseline) == {"untrained", "random"}
    assert (above.difference > 0.2).all() and (above.ci_low > 0).all()
    assert similarity_verdict(above) == "agrees"
    # above one baseline but not the other: not agrees
    mixed = baseline_contrasts({"untrained": levels_table(rng, 40, {"seed": (1.4, 1.4)}),
                                "random": levels_table(rng, 40, {"seed": (1.4, 0.1)})}, n_boot=500)
    assert similarity_verdict(mixed) == "differs"
    # clearly above its baseline but itself weak (r ~ 0.3 < stable_r): not "stable"
    weak = baseline_contrasts({"untrained": levels_table(rng, 40, {"seed": (0.3, -0.5)})}, n_boot=500)
    assert weak.ci_low.iloc[0] > 0 and similarity_verdict(weak, stable_r=0.5) == "differs"
    assert similarity_verdict(weak.iloc[0:0]) == "no null"


def test_the_pretraining_rule_needs_a_gap_beyond_the_ci_raw_and_over_the_baseline():
    rng = np.random.default_rng(5)
    lower = levels_table(rng, 40, {"seed": (1.5, 0.8), "task": (1.3, 0.8), "pretrain": (0.6, 0.8)})
    table = level_contrasts(lower, n_boot=500)
    assert set(zip(table.versus, table.kind)) == {(v, k) for v in ("seed", "task") for k in ("raw", "excess")}
    assert pretrain_verdict(table) == "agrees"
    # lower than seeds but not than tasks
    table = level_contrasts(levels_table(rng, 40, {"seed": (1.5, 0.8), "task": (0.6, 0.8), "pretrain": (0.6, 0.8)}),
                            n_boot=500)
    assert pretrain_verdict(table) == "differs"
    # lower, but only as much as the baselines are: built in by the design, not learnt
    table = level_contrasts(levels_table(rng, 40, {"seed": (1.5, 1.0), "task": (1.5, 1.0), "pretrain": (0.8, 0.3)}),
                            n_boot=500)
    raw, excess = (table[table.kind == k] for k in ("raw", "excess"))
    assert (raw.ci_low > 0).all() and not (excess.ci_low > 0).all()
    assert pretrain_verdict(table) == "differs"
    assert pretrain_verdict(table.iloc[0:0]) == "not measured"


def test_bootstrap_statistic_is_paired_and_seeded():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 1, 50)
    columns = {"a": shared + 0.2, "b": shared}  # paired: the difference has no spread
    value, low, high = bootstrap_statistic(columns, lambda c: c["a"].mean() - c["b"].mean(), n_boot=300, seed=4)
    assert value == pytest.approx(0.2) and low == pytest.approx(0.2) and high == pytest.approx(0.2)
    again = bootstrap_statistic({"a": shared}, lambda c: c["a"].mean(), n_boot=300, seed=4)
    assert again == bootstrap_statistic({"a": shared}, lambda c: c["a"].mean(), n_boot=300, seed=4)
    assert np.isnan(bootstrap_statistic({"a": shared[:2]}, lambda c: c["a"].mean())[1])


def per_image(pairs, values, images=("i0", "i1", "i2")) -> pd.DataFrame:
    rows = [{"variant_a": a, "variant_b": b, "relation": rel, "stimulus_id": im, "spearman": v}
            for (a, b, rel), vs in zip(pairs, values) for im, v in zip(images, vs)]
    return pd.DataFrame(rows)


def test_paired_levels_and_pair_table_use_the_cells_both_have():
    pairs = [("a0", "a1", "seed"), ("b0", "b1", "seed"), ("a0", "b0", "pretrain")]
    trained = per_image(pairs, [(0.9, 0.8, 0.7), (0.5, 0.6, 0.7), (0.1, 0.2, 0.3)])
    baseline = per_image(pairs[:2], [(0.2, 0.2), (0.4, 0.0)], images=("i0", "i1"))  # fewer images, no pretrain pair
    table = paired_levels(trained, baseline)
    assert list(table.relation.unique()) == ["seed"] and list(table.stimulus_id) == ["i0", "i1"]
    row = table.set_index("stimulus_id").loc["i0"]
    assert row.z == pytest.approx((np.arctanh(0.9) + np.arctanh(0.5)) / 2)
    assert row.z_baseline == pytest.approx((np.arctanh(0.2) + np.arctanh(0.4)) / 2) and row.n_pairs == 2
    pairs_table = pair_baselines(trained, {"untrained": baseline}).set_index(["variant_a", "variant_b"])
    assert pairs_table.loc[("a0", "a1"), "n_images"] == 2
    assert pairs_table.loc[("a0", "a1"), "r_trained"] == pytest.approx(np.tanh(np.arctanh([0.9, 0.8]).mean()))
    assert pairs_table.loc[("a0", "a1"), "difference"] == pytest.approx(
        pairs_table.loc[("a0", "a1"), "r_trained"] - 0.2)


def test_report_rows_without_baseline_maps_never_agree(tmp_path):
    from fake_study import make_relevance, make_set, write_config

    from analysis.report.run import run_report

    results = tmp_path / "results"
    make_set(results)
    make_relevance(results, baselines=False)
    study = {"root": tmp_path, "results": results, "simulated": tmp_path / "simulated"}
    config = write_config(tmp_path / "c.yaml", study, sections=["similarity", "findings"])
    messages = []
    out, _ = run_report(config, tmp_path / "out", progress=False, warn=messages.append)
    findings = pd.read_csv(out / "tables" / "findings.csv").set_index("topic")
    for topic in ("Stability across seeds", "Generalisation across finetuning tasks", "Dependence on pretraining data"):
        assert findings.loc[topic, "verdict"] == "no null", topic
        assert "--baseline" in findings.loc[topic, "measured"]
    assert not (out / "tables" / "similarity_vs_baseline.csv").exists()
    assert "No baseline maps" in (out / "report.html").read_text()


def test_report_reads_the_baselines_and_shows_the_difference(report):
    tables = report["out"] / "tables"
    contrasts = pd.read_csv(tables / "similarity_vs_baseline.csv")
    assert set(contrasts.baseline) == {"untrained", "random"} and set(contrasts.relation) == {"seed", "task",
                                                                                             "pretrain"}
    assert np.allclose(contrasts.difference, contrasts.effect_r - contrasts.baseline_r)
    pairs = pd.read_csv(tables / "similarity_pairs_vs_baseline.csv")
    assert len(pairs[(pairs.relation == "seed") & (pairs.baseline == "untrained")]) == 4  # one row per pair
    findings = pd.read_csv(tables / "findings.csv").set_index("topic")
    seed = findings.loc["Stability across seeds"]
    row = contrasts[(contrasts.relation == "seed") & (contrasts.baseline == "untrained")].iloc[0]
    assert f"untrained {row.difference:+.2f}" in seed["difference"] and "block5" in seed["design"]
    assert "conditional on the trained networks" in seed["measured"]


def test_orienting_by_the_logits_sign_keeps_an_arbitrary_head_sign_from_passing_as_a_difference():
    from analysis.model_stats import per_image_similarity, relevance_maps
    from analysis.similarity_null import oriented
    from stimuli.contracts.relevance import RelevanceMaps

    rng = np.random.default_rng(9)
    variants = [f"vgg16-imagenet-gender-s{s}" for s in range(4)]
    face = rng.normal(size=(12, 12))
    ids = [f"im{i:02d}" for i in range(30)]

    def arm(signs):
        out = {}
        for v, sign in zip(variants, signs):
            maps = np.stack([face + 0.6 * rng.normal(size=face.shape) for _ in ids]) * sign
            m = relevance_maps(maps, v, ids)
            out[v] = RelevanceMaps(m.relevance, m.stimulus_id, m.target, m.prediction,
                                   np.full(len(ids), 5.0 * sign), m.meta)  # LRP: the map sums to its logit's sign
        return out

    trained = arm([1, 1, 1, 1])
    baseline = arm([1, -1, -1, 1])  # untrained heads: the explained logit's sign is arbitrary
    verdicts = {}
    for name, orient in (("raw", lambda m: m), ("oriented", oriented)):
        t = per_image_similarity({v: orient(m) for v, m in trained.items()})
        b = per_image_similarity({v: orient(m) for v, m in baseline.items()})
        verdicts[name] = similarity_verdict(baseline_contrasts({"untrained": paired_levels(t, b)}, n_boot=300))
    assert verdicts == {"raw": "agrees", "oriented": "differs"}
    flipped = oriented(baseline[variants[1]], ids[:5])
    assert len(flipped) == 5 and np.allclose(flipped.relevance, -baseline[variants[1]].relevance[:5])
