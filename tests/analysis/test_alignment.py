"""Human-model alignment: comparisons, the shift null, the noise ceiling, condition effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.alignment import (
    align_maps,
    condition_descriptives,
    condition_effects,
    noise_ceiling,
    shift_null,
)
from stimuli.contracts.errors import InputError


def smooth_field(rng, shape=(32, 32), size=3.0):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.normal(size=shape), size, mode="wrap")


def test_align_maps_rows_and_columns():
    rng = np.random.default_rng(0)
    a, b = rng.random((8, 8)), rng.random((8, 8))
    table = align_maps({"group": a, "sub-01": b}, {"v1": a, "v2": b}, top_percents=(10,))
    assert table[["human", "reference"]].values.tolist() == [["group", "v1"], ["group", "v2"], ["sub-01", "v1"],
                                                            ["sub-01", "v2"]]
    assert table.loc[0, "spearman"] == pytest.approx(1.0) and table.loc[3, "dice_top10"] == pytest.approx(1.0)


def test_shift_null_separates_a_match_from_an_unrelated_map():
    rng = np.random.default_rng(1)
    truth = smooth_field(rng)
    human = truth + 0.3 * smooth_field(rng)
    match = shift_null(human, truth, n=60, seed=0)
    assert match["observed"] > 0.8 and match["p"] == pytest.approx(1 / 61) and match["null_q95"] < 0.6
    unrelated = shift_null(human, smooth_field(rng), n=60, seed=0)
    assert unrelated["p"] > 0.05
    again = shift_null(human, truth, n=60, seed=0)
    np.testing.assert_array_equal(match["null"], again["null"])  # seeded
    with pytest.raises(InputError, match="reference map contains 1 NaN"):
        bad = truth.copy()
        bad[3, 3] = np.nan
        shift_null(human, bad)


def test_noise_ceiling_falls_with_noise_and_bounds_are_ordered():
    rng = np.random.default_rng(2)
    truth = smooth_field(rng)
    quiet = noise_ceiling(truth + 0.5 * np.stack([smooth_field(rng) for _ in range(8)]), n_splits=30, seed=0)
    loud = noise_ceiling(truth + 3.0 * np.stack([smooth_field(rng) for _ in range(8)]), n_splits=30, seed=0)
    assert quiet["reliability"] > loud["reliability"] and quiet["ceiling"] > loud["ceiling"]
    for c in (quiet, loud):
        assert c["lower"] < c["upper"] and c["ceiling"] == pytest.approx(np.sqrt(c["reliability"]))
        assert c["n_participants"] == 8
    with pytest.raises(InputError, match="at least 2 participants"):
        noise_ceiling(truth[None])


def participant_table(effect=2.0, n=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n):
        base = rng.normal(10, 2)
        for condition, shift in (("random", 0.0), ("guided", -effect), ("antiguided", effect)):
            rows.append({"participant": f"{p:02d}", "condition": condition,
                         "mean_n_bubbles": base + shift + rng.normal(0, 0.3), "accuracy": 0.75 + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_condition_effects_find_a_known_difference_with_pingouin():
    table = participant_table()
    result = condition_effects(table, "mean_n_bubbles", conditions=["random", "guided", "antiguided"])
    assert result["n"] == 6 and result["dropped"] == []
    assert result["anova"]["p_unc"].iloc[0] < 0.001 and "ng2" in result["anova"].columns
    pairwise = result["pairwise"]
    assert {"p_unc", "p_corr", "cohen", "mean_A", "mean_B"} <= set(pairwise.columns)
    row = pairwise[(pairwise.A == "guided") & (pairwise.B == "random")].iloc[0]  # pingouin sorts the levels
    assert row.p_corr < 0.001 and row.mean_B - row.mean_A == pytest.approx(2.0, abs=0.4) and row.cohen < 0
    null = condition_effects(participant_table(effect=0.0), "mean_n_bubbles")
    assert null["anova"]["p_unc"].iloc[0] > 0.01
    desc = condition_descriptives(table, ["mean_n_bubbles"], conditions=["random", "guided"])
    assert desc.set_index(["dv", "condition"]).loc[("mean_n_bubbles", "guided"), "n"] == 6


def test_condition_effects_drop_and_name_incomplete_participants():
    table = participant_table()
    table = table[~((table.participant == "03") & (table.condition == "guided"))]
    result = condition_effects(table, "accuracy")
    assert result["n"] == 5 and result["dropped"] == ["03"]
    # two conditions: one contrast, still with p_corr
    two = condition_effects(table[table.condition != "antiguided"], "accuracy")
    assert len(two["pairwise"]) == 1 and "p_corr" in two["pairwise"].columns
    with pytest.raises(InputError, match="at least 2 participants with every condition"):
        condition_effects(table[table.participant == "01"], "accuracy")
    with pytest.raises(InputError, match="at least two conditions"):
        condition_effects(table[table.condition == "random"], "accuracy")
    with pytest.raises(InputError, match="no column 'n_bubbles'"):
        condition_effects(table, "n_bubbles")


# ----------------------------------------------------------------------------- revealed area, burn-in
SHAPE = (40, 40)


def session_rows(seed, blocks, *, shared=False, practice=3, aperture=None, record=True, sigma_px=2.5):
    """A Bubbles session: practice, then ``blocks`` [(condition, trials)], guided centres near the eyes."""
    from stimuli.bubbles import bubbles_mask, mask_area, sample_centres
    from stimuli.contracts.centres import format_centres
    from stimuli.regions import region_mask

    rng = np.random.default_rng(seed)
    eyes = region_mask("eyes", SHAPE)
    weights = {"random": None, "guided": np.where(eyes, 50.0, 1.0)}
    plan = [("practice", 0, "random", practice)] + [("main", b, c, n) for b, (c, n) in enumerate(blocks, 1)]
    rows = []
    for phase, block, condition, n in plan:
        for _ in range(n):
            count = int(rng.integers(6, 14))
            centres = sample_centres(SHAPE, count, rng, weights=weights[condition])
            correct = int(rng.random() < 0.75)
            row = {"trial": len(rows) + 1, "block": block, "phase": phase, "condition": condition,
                   "stimulus_id": "face00", "truth": "female", "response": "female" if correct else "male",
                   "correct": correct,
                   "rt_s": 0.5, "n_bubbles": count, "sigma_px": sigma_px, "bubbles": format_centres(centres),
                   "mask_seed": len(rows), "onset_s": 1.0, "dropped_frames": 0,
                   "staircase": None if phase == "practice" else "shared" if shared else condition,
                   "intensity": None if phase == "practice" else round(float(np.log10(count)) + 0.01, 6)}
            if record:
                row["revealed_px"] = mask_area(bubbles_mask(SHAPE, centres, sigma_px), aperture)
            rows.append(row)
    return rows


def test_burn_in_removes_exactly_the_first_n_trials_of_each_staircase():
    from analysis.revealed import area_threshold, burn_in_flags, condition_summary, staircase_trials

    # two blocks of each condition, interleaved: a staircase continues across its blocks
    table = pd.DataFrame(session_rows(1, [("random", 15), ("guided", 15), ("random", 15), ("guided", 15)]))
    flags = burn_in_flags(table, 20)
    main = table[table.phase == "main"]
    for condition in ("random", "guided"):
        positions = np.flatnonzero(main.condition == condition)
        flagged = flags[main.index[positions]].to_numpy()
        assert flagged[:20].all() and not flagged[20:].any()  # exactly its first 20, across two blocks
    assert not flags[table.phase == "practice"].any() and int(flags.sum()) == 40
    trials = staircase_trials(table, SHAPE)
    assert len(trials) == 60 and trials.groupby("staircase")["staircase_trial"].max().tolist() == [30, 30]
    for condition in ("random", "guided"):
        summary = condition_summary(trials[trials.condition == condition], 20, aperture_px=1600)
        kept = main[main.condition == condition].iloc[20:]
        assert summary["n_trials_after_burn_in"] == 10 and summary["burn_in_trials"] == 20
        assert summary["mean_revealed_px"] == pytest.approx(kept.revealed_px.mean())
        assert summary["accuracy_after_burn_in"] == pytest.approx(kept.correct.mean())
        last = main[main.condition == condition].iloc[-1]
        assert summary["threshold_n_bubbles"] == pytest.approx(10 ** last.intensity)
        assert summary["threshold_revealed_px"] == area_threshold(kept.correct, kept.revealed_px)
    # one staircase shared by both conditions: its first 20 main trials, whatever their condition
    shared = pd.DataFrame(session_rows(2, [("random", 15), ("guided", 15)], shared=True))
    flags = burn_in_flags(shared, 20)
    assert flags.tolist() == [False] * 3 + [True] * 20 + [False] * 10
    assert burn_in_flags(shared, 0).sum() == 0
    with pytest.raises(InputError, match="burn-in must be a whole number"):
        burn_in_flags(shared, -1)


def test_area_summary_recomputes_old_files_and_run_ci_reports_area_after_burn_in(tmp_path):
    from fake_study import TEMPLATE, make_set, write_session

    from analysis.ci_pipeline import CIConfig, run_ci
    from analysis.readers.trials import area_summary

    aperture = make_set(tmp_path / "results")
    columns = [*session_rows(0, [("random", 1)], aperture=aperture)[0]]
    old_columns = [c for c in columns if c not in ("revealed_px", "staircase", "intensity")]
    paths = {}
    for participant, record in (("01", True), ("02", False)):
        for session in (1, 2):
            rows = session_rows(10 * session, [("random", 30), ("guided", 30)], aperture=aperture)
            paths[participant, session] = write_session(
                tmp_path / "data", participant, session, rows, TEMPLATE, columns=columns if record else old_columns)
    # the same trials, with the area recorded (01) or recomputed from the rows (02, an older file)
    for condition in ("random", "guided"):
        new = area_summary([paths["01", 1], paths["01", 2]], condition, SHAPE, aperture, 20)
        old = area_summary([paths["02", 1], paths["02", 2]], condition, SHAPE, aperture, 20)
        assert new["n_trials_after_burn_in"] == old["n_trials_after_burn_in"] == 2 * 10  # each session's first 20 out
        assert new["mean_revealed_px"] == pytest.approx(old["mean_revealed_px"], rel=1e-9)
        assert new["mean_revealed_fraction"] == pytest.approx(new["mean_revealed_px"] / aperture.sum())
    outputs = run_ci(CIConfig(data_root=str(tmp_path / "data"), task="gender", stimuli="tiny",
                              results=str(tmp_path / "results"), min_trials=20, burn_in_trials=20),
                     tmp_path / "out", progress=False, warn=lambda message: None)
    table = outputs.participants.set_index(["participant", "condition"])
    expected = area_summary([paths["01", 1], paths["01", 2]], "guided", SHAPE, aperture, 20)
    for column, value in expected.items():
        assert table.loc[("01", "guided"), column] == pytest.approx(value)
    # guided centres pile up on the eyes: less area per bubble than random ones
    assert table.loc[("01", "guided"), "mean_revealed_px"] / table.loc[("01", "guided"), "mean_n_bubbles_after_burn_in"] \
        < table.loc[("01", "random"), "mean_revealed_px"] / table.loc[("01", "random"), "mean_n_bubbles_after_burn_in"]


def test_area_threshold_recovers_the_area_at_the_target_accuracy():
    from analysis.revealed import Psychometric, area_threshold

    rng = np.random.default_rng(7)
    f = Psychometric()
    eps = np.log10(-np.log((1 - (f.target - f.delta * f.gamma) / (1 - f.delta)) / (1 - f.gamma))) / f.beta
    estimates = []
    for _ in range(30):  # observers whose accuracy is QUEST's Weibull of log10 area, threshold 300 px
        area = 10 ** rng.normal(np.log10(300), 0.15, 300)  # trials near the threshold, as a staircase places them
        p = f.delta * f.gamma + (1 - f.delta) * (1 - (1 - f.gamma) * np.exp(-10 ** (f.beta * (np.log10(area)
                                                                                          - np.log10(300) + eps))))
        estimates.append(area_threshold(rng.random(300) < p, area, f))
    assert np.median(estimates) == pytest.approx(300, rel=0.05)  # unbiased on the log scale
    assert np.isnan(area_threshold([1, 1, 1], [100.0, 200.0, 300.0]))  # all correct: no finite estimate
    assert np.isnan(area_threshold([], []))


def test_guided_finding_is_about_revealed_area_not_bubble_count():
    from types import SimpleNamespace

    from analysis.report.findings import guided_findings
    from analysis.report.sections_people import DVS

    rng = np.random.default_rng(3)
    rows = []
    for p in range(8):
        area, accuracy = rng.normal(700, 60), 0.75 + rng.normal(0, 0.01)
        for condition, fewer, wobble in (("random", 0.0, 0.0), ("guided", 200.0, 0.01 * (-1) ** p)):
            # accuracy: guided differs by +-0.01 alternately, a mean difference of exactly 0
            rows.append({"participant": f"{p:02d}", "condition": condition, "mean_n_bubbles": 30.0,
                         "accuracy_after_burn_in": accuracy + wobble,
                         "mean_revealed_px": area - fewer + rng.normal(0, 20),
                         "threshold_revealed_px": area - fewer + rng.normal(0, 30)})
    table = pd.DataFrame(rows)  # the same number of bubbles in both conditions, less area when guided
    dvs = [d for d, _ in DVS]
    assert "mean_revealed_px" in dvs and "mean_n_bubbles" not in dvs
    facts = {"label": "template observers", "kind": "template", "burn_in": 20, "pairwise": {},
             "descriptives": condition_descriptives(table, dvs, ["random", "guided"])}
    for dv in dvs:
        facts["pairwise"][dv] = condition_effects(table, dv, conditions=["random", "guided"])["pairwise"]
    ctx = SimpleNamespace(config=SimpleNamespace(alpha=0.05), facts={"conditions": {("gender", "template"): facts}})
    (finding,) = guided_findings(ctx)
    assert finding["verdict"] == "helped (revealed area at the target accuracy)"
    guided = table[table.condition == "guided"].threshold_revealed_px.mean()
    random = table[table.condition == "random"].threshold_revealed_px.mean()
    assert f"revealed area at the target accuracy {guided:.4g} px guided vs {random:.4g} px random" in finding[
        "measured"]
    assert "after the first 20 trials of each staircase" in finding["measured"]
    assert "bubbles 30" not in finding["measured"]


def test_revealed_module_examples_run():
    import doctest

    import analysis.revealed

    result = doctest.testmod(analysis.revealed)
    assert result.attempted >= 10 and result.failed == 0
