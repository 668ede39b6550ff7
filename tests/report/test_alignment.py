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
from stimuli.errors import InputError


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
    desc = condition_descriptives(table, conditions=["random", "guided"])
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
