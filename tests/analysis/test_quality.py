"""Quality control per participant (analysis.quality): the table's numbers from known trials and
frame intervals, "not measured" for observers without a screen, the events-file reader, the
``qc:`` config keys, and the error rates of the accuracy-above-chance rule by simulation.

Run as a script for the full-size measurement of the rule's error rates:
    PYTHONPATH=. python tests/analysis/test_quality.py --observers 100000 --trials 50 100 200 --seed 0
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.error_rates import clopper_pearson
from analysis.quality import (
    QCRules,
    accuracy_windows,
    excluded_by_accuracy,
    quality_table,
    staircase_trace,
)
from analysis.readers.trials import load_quality
from analysis.report.config import ReportConfig
from stimuli.contracts.config import from_dict, load_config
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import events_path, read_frame_events


def _trials(participant: str, correct, *, session: str = "1", dropped=None, rt=None, condition="random",
            intensity=None) -> pd.DataFrame:
    n = len(correct)
    table = pd.DataFrame({"participant": participant, "session": session, "trial": np.arange(1, n + 1),
                          "phase": "main", "condition": condition, "truth": "male",
                          "correct": np.asarray(correct, dtype=float), "rt_s": rt if rt is not None else 0.5,
                          "bubbles": ["[" + ", ".join(["[1, 1]"] * (3 + i % 4)) + "]" for i in range(n)],  # 3-6 bubbles
                          "dropped_frames": np.nan if dropped is None else dropped})
    if intensity is not None:
        table["intensity"] = intensity
    return table


def test_table_counts_dropped_frames_rts_and_timing_from_known_trials():
    good = _trials("01", [1, 1, 1, 0] * 25, dropped=[0] * 98 + [1, 3], rt=np.linspace(0.4, 1.4, 100))
    practice = good.head(3).assign(phase="practice", correct=0.0, dropped_frames=5)  # never counted
    frames = pd.DataFrame({"participant": "01", "duration": [1 / 60] * 980 + [2 / 60] * 20,
                           "dropped": [0] * 980 + [1] * 20})
    table = quality_table(pd.concat([practice, good]), frames, alpha=0.05, chance=0.5).set_index("participant")
    row = table.loc["01"]
    assert row.n_trials == 100 and row.accuracy == 0.75 and row.chance == 0.5
    assert row.p_above_chance == pytest.approx(stats.binomtest(75, 100, 0.5, alternative="greater").pvalue)
    assert row.dropped_frame_trials == 2 and row.dropped_frame_trial_share == pytest.approx(0.02)
    assert row.rt_median_s == pytest.approx(0.9) and row.rt_iqr_s == pytest.approx(0.5)
    assert row.n_frames == 1000 and row.dropped_frame_share == pytest.approx(0.02)
    assert row.frame_interval_median_ms == pytest.approx(16.67) and row.frame_interval_p99_ms == pytest.approx(33.33)
    assert not row.excluded and row.reasons == ""


def test_no_screen_is_not_measured_and_timing_rules_do_not_apply():
    table = quality_table(_trials("m1", [1, 0, 1, 1] * 30), None, chance=0.5).iloc[0]
    for column in ("dropped_frame_trials", "dropped_frame_trial_share", "frame_interval_median_ms",
                   "frame_interval_p99_ms", "dropped_frame_share"):
        assert math.isnan(table[column]), column  # not 0: nothing was measured
    assert not table.excluded


def test_each_rule_excludes_with_its_reason_and_a_null_rule_does_not():
    dropped = _trials("01", [1, 1, 1, 0] * 25, dropped=[1] * 10 + [0] * 90)  # 10% of trials
    frames = pd.DataFrame({"participant": "02", "duration": 1 / 60, "dropped": [1] * 8 + [0] * 92})  # 8% of frames
    chance = _trials("03", [1, 0] * 60, dropped=[0] * 120)
    trials = pd.concat([dropped, _trials("02", [1, 1, 1, 0] * 25, dropped=[0] * 100), chance])
    table = quality_table(trials, frames, chance=0.5).set_index("participant")
    assert table.excluded.tolist() == [True, True, True]
    assert "dropped frames on 10.0% of main trials (more than 5.0%)" in table.loc["01", "reasons"]
    assert "8.0% of frames dropped (more than 5.0%)" in table.loc["02", "reasons"]
    assert "not above chance 0.5" in table.loc["03", "reasons"]
    lenient = QCRules(max_dropped_trial_share=None, max_dropped_frame_share=0.1, accuracy_above_chance=False)
    assert not quality_table(trials, frames, rules=lenient).excluded.any()
    # the chance level follows the answers: at 1/4, 50% correct is above chance
    assert not quality_table(chance, rules=QCRules(chance=0.25)).excluded.any()


def test_staircase_trace_ends_on_quest_s_final_estimate_and_windows_cover_the_trials():
    trials = pd.concat([_trials("01", [1, 0, 1, 1, 1], intensity=[1.0, 0.9, 0.8, 0.9, 0.7]),
                        _trials("01", [1, 1, 0], session="2", intensity=[1.2, 1.1, 1.3])])
    trace = staircase_trace(trials)
    assert trace.groupby("session")["final_n_bubbles"].first().round(4).tolist() == [round(10 ** 0.7, 4),
                                                                                   round(10 ** 1.3, 4)]
    assert trace["n_bubbles"].tolist() == [3, 4, 5, 6, 3, 3, 4, 5] and trace["staircase_trial"].max() == 5
    row = quality_table(trials, chance=0.5).iloc[0]
    assert row.staircases == 2 and row.final_n_bubbles == pytest.approx(10 ** 1.0)  # geometric mean of the two
    windows = accuracy_windows(trials, 3)
    assert windows["n"].tolist() == [3, 3, 2] and windows["accuracy"].round(3).tolist() == [0.667, 1.0, 0.5]


def test_events_file_reader(tmp_path):
    trial_file = tmp_path / "sub-01_ses-1_task-gender_beh.tsv"
    assert read_frame_events(trial_file) is None  # no screen: not measured
    path = events_path(trial_file)
    path.write_text("onset\tduration\ttrial_type\ttrial\tdropped\n0.0\t0.0167\tframe\t1\t0\n0.0167\t0.034\tframe\t1\t1\n"
                    "0.05\t0.01", encoding="utf-8")  # a torn last line (crash in the append)
    torn = []
    table = read_frame_events(trial_file, warn=torn.append)
    assert len(table) == 2 and table["dropped"].tolist() == [0, 1] and "line 4" in torn[0]
    path.write_text("onset\tduration\ttrial_type\ttrial\tdropped\n0.0\tfast\tframe\t1\t0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"_events.tsv, line 2: duration 'fast' is not a number"):
        read_frame_events(trial_file)
    path.write_text("onset\tduration\n0\t0.1\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column.*trial_type, trial, dropped"):
        read_frame_events(trial_file)


def _write_session(root, participant: str, rows: pd.DataFrame, sidecar: dict):
    from stimuli.contracts.trials import TRIAL_COLUMNS, sidecar_path, trial_file_path

    path = trial_file_path(root, participant, 1, "gender")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.reindex(columns=list(TRIAL_COLUMNS)).to_csv(path, sep="\t", index=False, na_rep="n/a")
    sidecar_path(path).write_text(json.dumps(sidecar), encoding="utf-8")
    return path


def test_files_are_read_with_their_sidecars_and_events(tmp_path):
    rows = _trials("x", [1, 1, 1, 0] * 10, dropped=[0] * 40).drop(columns=["participant", "session"])
    rows = rows.assign(response=np.where(rows.correct == 1, "male", "female"), n_bubbles=3, sigma_px=2.0,
                       mask_seed=1, onset_s=1.0)
    no_screen = _write_session(tmp_path, "01", rows, {"ScreenCheck": None, "Responses": {"female": "f", "male": "m",
                                                                                    "other": "o"}})
    screen = _write_session(tmp_path, "02", rows, {"screen": {"measured": {"refresh_hz": 60}},
                                                   "Staircase": {"target": 0.8}})
    older = _write_session(tmp_path, "03", rows, {})  # written before #14: no screen key
    events_path(screen).write_text("onset\tduration\ttrial_type\ttrial\tdropped\n0\t0.0167\tframe\t1\t0\n")
    broken = _write_session(tmp_path, "04", rows.assign(bubbles="[[1, oops]]"), {})
    warned = []
    data = load_quality([no_screen, screen, older, broken], warn=warned.append)
    assert warned == [] and len(data.skipped) == 1 and "sub-04" in data.skipped[0]
    assert data.chance == {"01": pytest.approx(1 / 3)} and data.targets == {"02": 0.8}
    assert events_path(screen) in data.files and len(data.frames) == 1
    table = quality_table(data.trials, data.frames, chance=data.chance).set_index("participant")
    assert math.isnan(table.loc["01", "dropped_frame_trials"])  # screen: null, the zeros are not measurements
    assert table.loc["02", "dropped_frame_trials"] == 0 and table.loc["03", "dropped_frame_trials"] == 0
    assert table.loc["01", "chance"] == pytest.approx(1 / 3) and table.loc["02", "chance"] == 0.5
    assert table.loc["02", "n_frames"] == 1 and table.loc["01", "n_frames"] == 0


def test_qc_config_keys_are_validated_with_what_to_fix(tmp_path):
    config = from_dict(ReportConfig, {"stimuli": "s", "qc": {"max_dropped_frame_share": None, "alpha": 0.01}}, "a.yaml")
    assert config.qc.max_dropped_frame_share is None and config.qc.alpha == 0.01 and config.qc.drop_excluded
    bad = {"max_dropped_frame_share: 5": "qc.max_dropped_frame_share.*share between 0 and 1",
           "chance: 1.5": "qc.chance.*between 0 and 1",
           "max_dropped_frames: 0.05": "qc.*max_dropped_frames.*did you mean",
           "accuracy_window: 1": "qc.accuracy_window.*at least 2"}
    for line, message in bad.items():
        path = tmp_path / "bad.yaml"
        path.write_text(f"stimuli: s\nqc:\n  {line}\n", encoding="utf-8")
        with pytest.raises(InputError, match=message):
            load_config(ReportConfig, path)
    demo = load_config(ReportConfig, "analysis/configs/demo.yaml")
    assert demo.qc.accuracy_above_chance and demo.qc.max_dropped_frame_share == 0.05


@pytest.mark.parametrize("name", ["analysis.quality", "analysis.report.page", "analysis.report.sections_quality",
                                  "analysis.report.config", "analysis.revealed"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- error rates by simulation
def simulate_exclusions(accuracy: float, n_observers: int, n_trials: int, seed: int, alpha: float = 0.05) -> int:
    """How many of ``n_observers`` simulated observers of true ``accuracy`` (independent answers,
    ``n_trials`` main trials each, chance 0.5) the QC's accuracy rule excludes."""
    rng = np.random.default_rng(seed)
    correct = rng.binomial(n_trials, accuracy, size=n_observers)
    return int(np.sum(excluded_by_accuracy(correct, n_trials, 0.5, alpha)))


def _exact_exclusion_rate(accuracy: float, n_trials: int, alpha: float = 0.05) -> float:
    """P(excluded) from the binomial distribution: a count below the test's critical value."""
    k = np.arange(n_trials + 1)
    kept = k[stats.binom.sf(k - 1, n_trials, 0.5) < alpha]  # P(X >= k) under chance below alpha
    return float(stats.binom.cdf(kept.min() - 1, n_trials, accuracy))


def test_the_table_applies_the_rule_that_is_simulated():
    """quality_table on 300 simulated observers (trial rows, seed 5) excludes exactly those that
    excluded_by_accuracy (what the simulation below counts) excludes, with scipy's binomtest p."""
    rng = np.random.default_rng(5)
    accuracy = rng.choice([0.5, 0.56, 0.62], size=300)
    correct = (rng.random((300, 100)) < accuracy[:, None]).astype(float)
    trials = pd.DataFrame({"participant": np.repeat([f"{i:03d}" for i in range(300)], 100), "session": "1",
                           "trial": np.tile(np.arange(1, 101), 300), "phase": "main", "condition": "random",
                           "correct": correct.ravel(), "rt_s": 0.5, "bubbles": "[]"})
    table = quality_table(trials, chance=0.5)
    expected = excluded_by_accuracy(correct.sum(axis=1), 100, 0.5, 0.05)
    assert table["excluded"].tolist() == expected.tolist() and 50 < expected.sum() < 250
    row = table.iloc[0]
    assert row.p_above_chance == pytest.approx(
        stats.binomtest(int(correct[0].sum()), 100, 0.5, alternative="greater").pvalue)


def test_an_observer_at_chance_is_kept_at_most_at_alpha_and_a_real_observer_is_kept():
    """20000 observers at chance and 20000 at the staircase's 75% (100 main trials each, seeds 0
    and 1): the rule keeps a chance observer at the binomial test's size (at most alpha = 0.05:
    the test is discrete) and excludes a real one almost never."""
    n, trials = 20000, 100
    kept_at_chance = n - simulate_exclusions(0.5, n, trials, 0)
    low, high = clopper_pearson(kept_at_chance, n)
    size = 1 - _exact_exclusion_rate(0.5, trials)
    assert low <= size <= high and high < 0.05, (kept_at_chance, low, high, size)
    excluded_real = simulate_exclusions(0.75, n, trials, 1)
    low, high = clopper_pearson(excluded_real, n)
    assert high < 0.001, (excluded_real, low, high)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Error rates of the QC's accuracy-above-chance rule")
    parser.add_argument("--observers", type=int, default=20000)
    parser.add_argument("--trials", type=int, nargs="+", default=[100])
    parser.add_argument("--accuracies", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.75])
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"seed {args.seed}, {args.observers} observers per cell, alpha {args.alpha}, chance 0.5")
    print("trials  accuracy  excluded  rate    95% CI (Clopper-Pearson)  exact")
    for trials in args.trials:
        for i, accuracy in enumerate(args.accuracies):
            k = simulate_exclusions(accuracy, args.observers, trials, args.seed + i, args.alpha)
            low, high = clopper_pearson(k, args.observers)
            print(f"{trials:6d}  {accuracy:8.2f}  {k:8d}  {k / args.observers:.4f}  [{low:.4f}, {high:.4f}]"
                  f"          {_exact_exclusion_rate(accuracy, trials, args.alpha):.4f}")


if __name__ == "__main__":
    main()
