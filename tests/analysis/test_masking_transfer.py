"""Masking transfer in the analysis: relative asymmetries oriented with their bootstrap CIs, FDR
counts per relation (no t-test over dependent pairs), the baselines in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fake_study import VARIANTS, make_evaluate, write_config

from analysis.masking_transfer import (
    asymmetry_tests,
    oriented_asymmetry,
    source_relation,
    transfer_levels,
)
from analysis.readers.masking import read_masking

FACES, IMAGENET = "vgg16-faces-gender-s0", "vgg16-imagenet-gender-s0"
FACES_ID, IMAGENET_ID = "vgg16-faces-identity-s0", "vgg16-imagenet-identity-s0"


def bootstrap_pairs() -> pd.DataFrame:
    return pd.DataFrame({
        "a": [FACES, IMAGENET_ID, FACES], "b": [IMAGENET, FACES_ID, "vgg16-faces-gender-s1"],
        "m_ab": [0.3, 0.3, 0.2], "m_ba": [0.2, 0.2, 0.2], "asymmetry": [0.1, 0.1, 0.0],
        "relative_asymmetry": [0.3, 0.2, 0.01], "relative_asymmetry_ci_low": [0.1, 0.05, -0.1],
        "relative_asymmetry_ci_high": [0.5, 0.35, 0.12], "relative_asymmetry_p": [0.01, 0.02, 0.9]})


def test_relative_asymmetries_are_oriented_with_their_intervals():
    oriented = oriented_asymmetry(bootstrap_pairs())
    assert (oriented["measure"] == "relative").all()
    pretrain = oriented[oriented.relation == "pretrain"].set_index("a")
    assert pretrain.direction.tolist() == ["faces->imagenet", "faces->imagenet"]
    assert pretrain.loc[FACES].oriented == pytest.approx(0.3)
    # listed imagenet-first: the sign and the interval flip
    flipped = pretrain.loc[IMAGENET_ID]
    assert flipped.oriented == pytest.approx(-0.2)
    assert (flipped.ci_low, flipped.ci_high) == pytest.approx((-0.35, -0.05))
    assert pretrain.loc[FACES].ci_low == pytest.approx(0.1) and pretrain.loc[FACES].p_boot == 0.01


def test_asymmetries_are_counted_per_pair_after_fdr_not_t_tested():
    tests = asymmetry_tests(oriented_asymmetry(bootstrap_pairs())).set_index("relation")
    # BH over the three pairs: 0.01, 0.02 -> 0.03, 0.03 (significant), 0.9 -> 0.9
    assert tests.loc["pretrain", "n_first"] == 1 and tests.loc["pretrain", "n_second"] == 1
    assert tests.loc["pretrain", "p_fdr_min"] == pytest.approx(0.03)
    assert tests.loc["seed", "n_first"] == 0 and tests.loc["seed", "n_second"] == 0
    assert "T" not in tests.columns and tests.loc["pretrain", "n_pairs"] == 2


def test_older_tables_give_raw_asymmetries_without_a_test():
    raw = bootstrap_pairs().drop(columns=["relative_asymmetry", "relative_asymmetry_ci_low",
                                          "relative_asymmetry_ci_high", "relative_asymmetry_p"])
    oriented = oriented_asymmetry(raw)
    assert (oriented["measure"] == "raw").all() and oriented.p_boot.isna().all()
    assert oriented.oriented.tolist()[:2] == pytest.approx([0.1, -0.1])
    tests = asymmetry_tests(oriented)
    assert tests.n_first.isna().all() and tests.p_fdr_min.isna().all()


def test_baseline_sources_are_not_variants(tmp_path):
    folder = make_evaluate(tmp_path / "evaluate" / "demo")
    transfer = pd.read_csv(folder / "tables" / "transfer_remove.csv")
    extra = transfer.iloc[:2].assign(source=["random", f"setmean:{VARIANTS[0]}"])
    pd.concat([transfer, extra]).to_csv(folder / "tables" / "transfer_remove.csv", index=False)
    tables = read_masking(folder)
    assert len(tables.transfer) == 64 and tables.bootstrap and tables.aopc is None
    assert source_relation(f"setmean:{VARIANTS[0]}", VARIANTS[0]) == "set-mean map"
    assert source_relation("random", VARIANTS[0]) == "random"
    assert set(transfer_levels(pd.concat([transfer, extra])).relation) == {"same", "seed", "task", "pretrain"}


def add_baselines(folder):
    """The fake evaluate tables plus what a newer evaluate writes: set-mean sources and aopc.csv."""
    tables = folder / "tables"
    accuracy = pd.read_csv(tables / "accuracy.csv")
    setmean = accuracy[accuracy.source == accuracy.target].assign(
        source=lambda t: "setmean:" + t.target, accuracy=lambda t: t.accuracy + 0.1 * t.fraction)
    accuracy = pd.concat([accuracy, setmean], ignore_index=True).assign(random_within="aperture")
    accuracy.to_csv(tables / "accuracy.csv", index=False)
    aopc = (accuracy.groupby(["source", "target", "mode"], sort=False)
            .apply(lambda c: float(np.mean(c.accuracy.iloc[0] - c.accuracy)), include_groups=False)
            .rename("aopc").reset_index())
    aopc = aopc.assign(aopc_ci_low=aopc.aopc - 0.01, aopc_ci_high=aopc.aopc + 0.01, metric="p_true")
    aopc.to_csv(tables / "aopc.csv", index=False)


@pytest.mark.slow
def test_report_shows_the_baselines_and_the_bootstrap_asymmetries(study, tmp_path):
    from analysis.report.run import run_report

    folder = make_evaluate(tmp_path / "evaluate" / "new")
    add_baselines(folder)
    config = write_config(tmp_path / "c.yaml", study, sections=["masking", "findings", "problems"],
                          models={"evaluate": str(folder)})
    messages = []
    out, built = run_report(config, tmp_path / "out", progress=False, warn=messages.append)
    assert messages == [] and all(s.status == "ok" for s in built.sections)
    baselines = pd.read_csv(out / "tables" / "masking_baselines.csv").set_index("target")
    assert set(baselines.index) == set(VARIANTS)
    assert (baselines["own"] > baselines["setmean"]).all() and (baselines["setmean"] > baselines["random"]).all()
    curves = pd.read_csv(out / "tables" / "masking_curves.csv")
    assert {"set-mean map", "random", "same"} <= set(curves.relation)
    page = (out / "report.html").read_text()
    assert "inside the face aperture" in page and "set-mean map" in page
    findings = pd.read_csv(out / "tables" / "findings.csv").set_index("topic")
    measured = findings.loc["Asymmetries of transfer", "measured"]
    assert "imagenet maps serve faces models better than the reverse" in measured
    assert "bootstrap over images per pair" in measured and "95% CI" in measured
    assert findings.loc["Asymmetries of transfer", "verdict"] == "agrees"
