"""Timing and quality control (QC) per participant: trials, dropped frames, frame intervals,
response times, accuracy over trials, the staircase, and exclusions by the config's rules.

The statistics are pure functions of DataFrames that return tidy DataFrames (pingouin style):

* :func:`quality_table`: one row per participant (trials, dropped-frame trials, frame
  intervals, RT median and IQR, accuracy and its binomial test against chance, the final
  staircase estimate) with ``excluded`` and the ``reasons``, by :class:`QCRules`;
* :func:`frame_summary`: median and 99th-percentile frame interval and the share of dropped
  frames of an events table;
* :func:`accuracy_windows`: accuracy over consecutive windows of main trials;
* :func:`staircase_trace`: bubbles per trial of each staircase, with its final estimate;
* :func:`above_chance_p` / :func:`excluded_by_accuracy`: the one-sided exact binomial test
  behind the accuracy rule, and the rule;
* :class:`GroupQuality`: all of them for one observer group.

The files are read by :mod:`analysis.readers`: :func:`~stimuli.contracts.trials.read_frame_events`
reads a session's frame-interval file (``*_events.tsv`` next to the trial file, one row per
screen flip: ``onset``, ``duration``, ``trial_type``, ``trial``, ``dropped``) and
:func:`analysis.readers.load_quality` a group's trial files into the long tables the functions
take (:func:`analysis.readers.assess_quality`: reading and all of the statistics, what the report uses). Observers without a screen (simulated, model) record no dropped
frames (``n/a``) and write no events file: their timing is "not measured" (NaN), never 0.

The accuracy rule is a test: a participant is kept when the exact binomial test rejects
"accuracy = chance" (one-sided, at ``alpha``). An observer at chance is therefore kept (the
rule's error) at a rate of at most ``alpha``; tests/analysis/test_quality.py measures it by
simulation, with its Clopper-Pearson interval.

Examples
--------
>>> trials = pd.DataFrame({"participant": "01", "session": "1", "trial": range(1, 41), "phase": "main",
...                        "condition": "random", "correct": [1, 1, 0, 1] * 10, "rt_s": 0.5,
...                        "bubbles": "[[1, 1]]", "dropped_frames": [0] * 39 + [2]})
>>> row = quality_table(trials, chance=0.5).iloc[0]
>>> int(row.n_trials), float(row.accuracy), int(row.dropped_frame_trials), bool(row.excluded)
(40, 0.75, 1, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from stimuli.contracts.config import require
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import EVENTS_COLUMNS

from .revealed import staircase_positions

__all__ = ["QCRules", "QC_COLUMNS", "EVENTS_COLUMNS", "frame_summary",
           "above_chance_p", "excluded_by_accuracy", "accuracy_windows", "staircase_trace", "quality_table",
           "chance_level", "GroupQuality", "QC_TRIAL_COLUMNS"]

# the frame-interval file's columns, in order (written by the session engine)
# what quality_table returns, in order
QC_COLUMNS = ("participant", "sessions", "n_trials", "n_unanswered", "accuracy", "chance", "p_above_chance",
              "rt_median_s", "rt_q25_s", "rt_q75_s", "rt_iqr_s", "dropped_frame_trials", "dropped_frame_trial_share",
              "n_frames", "frame_interval_median_ms", "frame_interval_p99_ms", "dropped_frame_share",
              "staircases", "final_n_bubbles", "excluded", "reasons")
QC_TRIAL_COLUMNS = (  # what a trial table needs for the QC
    "trial", "phase", "condition", "correct", "rt_s", "bubbles")


@dataclass
class QCRules:
    """The ``qc:`` section of an analysis config: who is excluded, and from what.

    A rule set to ``null`` is not applied. A timing rule is not applied to a participant whose
    timing was not measured (no screen: simulated and model observers).

    Parameters
    ----------
    max_dropped_trial_share, max_dropped_frame_share : float or None
        Most trials with a dropped frame, and most dropped frames, a participant may have.
    accuracy_above_chance : bool
        Exclude participants whose accuracy is not above chance.
    chance : float, optional
        The chance level (default: from the sessions).
    alpha : float, optional
        Level of the accuracy test (default: the analysis's alpha).
    accuracy_window : int
        Trials per window of the accuracy trace.
    drop_excluded : bool
        Leave excluded participants out of the analyses.
    """

    max_dropped_trial_share: float | None = 0.05  # share of main trials with a dropped frame (trial file)
    max_dropped_frame_share: float | None = 0.05  # share of recorded flips that were dropped (events file)
    accuracy_above_chance: bool = True  # exclude unless the binomial test says accuracy > chance
    chance: float | None = None  # null: 1 / number of answers (sidecar Responses, else the truth values)
    alpha: float | None = None  # of the binomial test; null: the report's alpha
    accuracy_window: int = 20  # main trials per point of the accuracy-over-trials curve
    drop_excluded: bool = True  # leave excluded participants out of the group statistics

    def __post_init__(self) -> None:
        for key in ("max_dropped_trial_share", "max_dropped_frame_share"):
            value = getattr(self, key)
            require(value is None or (math.isfinite(value) and 0 <= value <= 1), key,
                    "must be a share between 0 and 1 (e.g. 0.05), or null for no such rule")
        require(self.chance is None or 0 < self.chance < 1, "chance",
                "must lie between 0 and 1 (e.g. 0.5 for two answers), or null to take it from the sessions")
        require(self.alpha is None or 0 < self.alpha < 1, "alpha",
                "must lie between 0 and 1, or null for the report's alpha")
        require(self.accuracy_window >= 2, "accuracy_window", "must be at least 2 trials")


# ----------------------------------------------------------------------------- statistics
def frame_summary(frames: pd.DataFrame) -> dict[str, float]:
    """Frame intervals of an events table (``duration`` in s, ``dropped`` 0/1): ``n_frames``,
    ``frame_interval_median_ms``, ``frame_interval_p99_ms`` and ``dropped_frame_share``.

    Parameters
    ----------
    frames : pandas.DataFrame
        An events table.

    Returns
    -------
    dict of str to float
        The four numbers (NaN when no frame was measured).

    Examples
    --------
    >>> frame_summary(pd.DataFrame({"duration": [1 / 60] * 99 + [2 / 60], "dropped": [0] * 99 + [1]}))
    {'n_frames': 100, 'frame_interval_median_ms': 16.67, 'frame_interval_p99_ms': 16.83, 'dropped_frame_share': 0.01}
    """
    duration = pd.to_numeric(frames["duration"], errors="coerce").to_numpy(np.float64)
    duration = duration[np.isfinite(duration)]
    if len(duration) == 0:
        return {"n_frames": 0, "frame_interval_median_ms": math.nan, "frame_interval_p99_ms": math.nan,
                "dropped_frame_share": math.nan}
    dropped = pd.to_numeric(frames["dropped"], errors="coerce").fillna(0).to_numpy(np.float64)
    return {"n_frames": int(len(duration)),
            "frame_interval_median_ms": round(float(np.median(duration)) * 1000, 2),
            "frame_interval_p99_ms": round(float(np.percentile(duration, 99)) * 1000, 2),
            "dropped_frame_share": float(np.mean(dropped > 0))}


def above_chance_p(correct: ArrayLike, n: ArrayLike, chance: float) -> float | np.ndarray:
    """One-sided exact binomial test of ``correct`` of ``n`` against ``chance`` (H1: above):
    ``P(X >= correct)`` for ``X ~ Binomial(n, chance)``, as ``scipy.stats.binomtest(...,
    alternative="greater")``; arrays give arrays; NaN for ``n = 0``.

    Parameters
    ----------
    correct, n : array_like
        Correct answers and answered trials.
    chance : float
        The chance level.

    Returns
    -------
    float or numpy.ndarray
        The p-value(s).

    Examples
    --------
    >>> round(above_chance_p(60, 100, 0.5), 4), above_chance_p(0, 0, 0.5)
    (0.0284, nan)
    """
    correct, n = np.asarray(correct, dtype=np.float64), np.asarray(n, dtype=np.float64)
    p = np.where(n > 0, stats.binom.sf(correct - 1, np.maximum(n, 1), float(chance)), np.nan)
    return float(p) if p.ndim == 0 else p


def excluded_by_accuracy(correct: ArrayLike, n: ArrayLike, chance: float, alpha: float) -> bool | np.ndarray:
    """The accuracy rule: True (exclude) unless the binomial test finds accuracy above chance
    at ``alpha`` (no answered trial: excluded).

    Parameters
    ----------
    correct, n, chance
        As for :func:`above_chance_p`.
    alpha : float
        Level of the test.

    Returns
    -------
    bool or numpy.ndarray
        Whether each is excluded.

    Examples
    --------
    >>> excluded_by_accuracy([50, 59, 75], 100, 0.5, 0.05).tolist()
    [True, False, False]
    """
    p = np.asarray(above_chance_p(correct, n, chance))
    out = ~(p < alpha)  # NaN (no trial) excludes
    return bool(out) if out.ndim == 0 else out


def _main(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[trials["phase"].astype(str) == "main"]


def accuracy_windows(trials: pd.DataFrame, window: int = 20) -> pd.DataFrame:
    """Accuracy over consecutive windows of ``window`` answered main trials, per participant
    (sessions in order, trials in file order; the last window may be shorter).

    Columns: ``participant``, ``window`` (from 1), ``first_trial`` / ``last_trial`` (position
    among the participant's answered main trials, from 1), ``n``, ``accuracy``.

    Parameters
    ----------
    trials : pandas.DataFrame
        Trials with a ``participant`` column.
    window : int
        Trials per window.

    Returns
    -------
    pandas.DataFrame
        One row per participant and window.

    Examples
    --------
    >>> t = pd.DataFrame({"participant": "01", "phase": "main", "correct": [1, 0, 1, 1, 1]})
    >>> accuracy_windows(t, 2)[["window", "n", "accuracy"]].values.tolist()
    [[1.0, 2.0, 0.5], [2.0, 2.0, 1.0], [3.0, 1.0, 1.0]]
    """
    rows = []
    for participant, own in _main(trials).groupby("participant", sort=True):
        correct = pd.to_numeric(own["correct"], errors="coerce").dropna().to_numpy(np.float64)
        for w, start in enumerate(range(0, len(correct), window), start=1):
            chunk = correct[start:start + window]
            rows.append({"participant": participant, "window": w, "first_trial": start + 1,
                         "last_trial": start + len(chunk), "n": len(chunk), "accuracy": float(chunk.mean())})
    return pd.DataFrame(rows, columns=["participant", "window", "first_trial", "last_trial", "n", "accuracy"])


def staircase_trace(trials: pd.DataFrame) -> pd.DataFrame:
    """Bubbles per answered main trial of every staircase, with the staircase's final estimate.

    ``trials`` holds ``participant`` and ``session`` columns and the trial-file columns; each
    session's staircases are read by :func:`analysis.revealed.staircase_positions`. Columns:
    ``participant``, ``session``, ``staircase``, ``condition``, ``staircase_trial``, ``trial``,
    ``n_bubbles``, ``correct`` and ``final_n_bubbles`` (``10 ** final_log10_bubbles``: QUEST's
    last estimate, the threshold the staircase ended on).

    Parameters
    ----------
    trials : pandas.DataFrame
        Trials with ``participant`` and ``session`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per answered main trial, with the staircase's final estimate.

    Examples
    --------
    >>> t = pd.DataFrame({"participant": "01", "session": "1", "trial": [1, 2], "phase": "main",
    ...                   "condition": "random", "correct": [1, 0], "bubbles": ["[[1, 1], [2, 2]]", "[[3, 3]]"]})
    >>> staircase_trace(t)[["staircase_trial", "n_bubbles", "final_n_bubbles"]].values.tolist()
    [[1.0, 2.0, 1.0], [2.0, 1.0, 1.0]]
    """
    parts = []
    for (participant, session), own in trials.groupby(["participant", "session"], sort=True):
        positions = staircase_positions(own.reset_index(drop=True), where=f"sub-{participant} ses-{session}")
        parts.append(positions.assign(participant=participant, session=session))
    columns = ["participant", "session", "staircase", "condition", "staircase_trial", "trial", "n_bubbles",
               "correct", "final_n_bubbles"]
    if not parts:
        return pd.DataFrame(columns=columns)
    trace = pd.concat(parts, ignore_index=True)
    trace["final_n_bubbles"] = 10.0 ** trace.pop("final_log10_bubbles")
    if "trial" not in trace.columns:
        trace["trial"] = np.nan
    return trace[columns]


def chance_level(truth: Sequence, responses: Mapping | Sequence | None = None) -> float:
    """Chance accuracy: one over the number of answers (the session's ``Responses`` when
    recorded, else the distinct correct answers seen, at least two).

    Parameters
    ----------
    truth : sequence
        The correct answers seen.
    responses : mapping or sequence, optional
        The session's recorded answers.

    Returns
    -------
    float
        The chance accuracy.

    Examples
    --------
    >>> chance_level(["male", "female", "male"]), chance_level([], {"f": "female", "m": "male", "x": "other"})
    (0.5, 0.3333333333333333)
    """
    if responses:
        return 1.0 / len(responses)
    answers = pd.Series(list(truth)).dropna().nunique()
    return 1.0 / max(2, int(answers))


def _share(count: float, total: float) -> float:
    return float(count) / float(total) if total else math.nan


def _participant_row(own: pd.DataFrame, frames: pd.DataFrame | None, trace: pd.DataFrame, chance: float,
                     rules: QCRules, alpha: float) -> dict:
    main = _main(own)
    correct = pd.to_numeric(main["correct"], errors="coerce")
    answered = main[correct.notna()]
    n, k = int(len(answered)), int(correct.sum())
    rt = pd.to_numeric(answered["rt_s"], errors="coerce").dropna()
    # RT quantiles in seconds to the 0.1 ms (the file's own resolution is 1 ms)
    q25, median, q75 = (rt.quantile([0.25, 0.5, 0.75]).round(4).tolist() if len(rt) else [math.nan] * 3)
    dropped = (pd.to_numeric(main["dropped_frames"], errors="coerce") if "dropped_frames" in main.columns
               else pd.Series(np.nan, index=main.index)).dropna()
    timing = frame_summary(frames) if frames is not None and len(frames) else {
        "n_frames": 0, "frame_interval_median_ms": math.nan, "frame_interval_p99_ms": math.nan,
        "dropped_frame_share": math.nan}
    finals = trace.groupby(["session", "staircase"], sort=False)["final_n_bubbles"].first() if len(trace) else []
    row = {"sessions": ",".join(sorted(map(str, own["session"].unique()))), "n_trials": n,
           "n_unanswered": int(len(main) - n), "accuracy": k / n if n else math.nan, "chance": chance,
           "p_above_chance": above_chance_p(k, n, chance),
           "rt_median_s": median, "rt_q25_s": q25, "rt_q75_s": q75, "rt_iqr_s": round(q75 - q25, 4),
           "dropped_frame_trials": int((dropped > 0).sum()) if len(dropped) else math.nan,
           "dropped_frame_trial_share": _share((dropped > 0).sum(), len(dropped)) if len(dropped) else math.nan,
           **timing, "staircases": len(finals),
           "final_n_bubbles": float(10 ** np.mean(np.log10(finals))) if len(finals) else math.nan}
    row["reasons"] = "; ".join(_reasons(row, k, rules, alpha))
    row["excluded"] = bool(row["reasons"])
    return row


def _reasons(row: dict, n_correct: int, rules: QCRules, alpha: float) -> list[str]:
    reasons = []
    if row["n_trials"] == 0:
        return ["no answered main trial"]
    share, limit = row["dropped_frame_trial_share"], rules.max_dropped_trial_share
    if limit is not None and math.isfinite(share) and share > limit:
        reasons.append(f"dropped frames on {share:.1%} of main trials (more than {limit:.1%})")
    share, limit = row["dropped_frame_share"], rules.max_dropped_frame_share
    if limit is not None and math.isfinite(share) and share > limit:
        reasons.append(f"{share:.1%} of frames dropped (more than {limit:.1%})")
    if rules.accuracy_above_chance and excluded_by_accuracy(n_correct, row["n_trials"], row["chance"], alpha):
        reasons.append(f"accuracy {row['accuracy']:.3f} not above chance {row['chance']:.3g} (one-sided binomial "
                       f"p = {row['p_above_chance']:.3g}, alpha {alpha:g}, {row['n_trials']} trials)")
    return reasons


def quality_table(trials: pd.DataFrame, frames: pd.DataFrame | None = None, *, rules: QCRules | None = None,
                  alpha: float = 0.05, chance: float | Mapping[str, float] | None = None) -> pd.DataFrame:
    """The QC table: one row per participant (:data:`QC_COLUMNS`), with exclusions by ``rules``.

    Parameters
    ----------
    trials : trial rows of every participant: ``participant``, ``session`` and the trial-file
        columns (``phase``, ``condition``, ``correct``, ``rt_s``, ``bubbles``; ``dropped_frames``
        when recorded: all ``NaN`` means not measured).
    frames : frame-interval rows (``participant``, ``duration``, ``dropped``) or None: not measured.
    rules : :class:`QCRules` (default: its defaults); ``rules.alpha`` overrides ``alpha`` and
        ``rules.chance`` overrides ``chance``.
    alpha : level of the above-chance test.
    chance : chance accuracy, one value or one per participant; None: from the truth values.

    Returns
    -------
    DataFrame, one row per participant. Timing that was not measured is NaN. ``excluded`` is
    True when ``reasons`` (``; ``-separated) is not empty.
    """
    rules = rules or QCRules()
    alpha = rules.alpha if rules.alpha is not None else alpha
    missing = [c for c in ("participant", "session", "phase", "correct", "rt_s", "bubbles", "condition")
               if c not in trials.columns]
    if missing:
        raise InputError(f"QC: the trials lack column(s) {', '.join(missing)}")
    trace = staircase_trace(trials)
    traces = dict(tuple(trace.groupby("participant", sort=False)))
    timings = dict(tuple(frames.groupby("participant", sort=False))) if frames is not None and len(frames) else {}
    rows = []
    for participant, own in trials.groupby("participant", sort=True):
        level = rules.chance if rules.chance is not None else (
            chance.get(participant) if isinstance(chance, Mapping) else chance)
        if level is None:
            level = chance_level(own["truth"] if "truth" in own.columns else [])
        rows.append({"participant": participant, **_participant_row(
            own, timings.get(participant), traces.get(participant, trace.iloc[:0]), float(level), rules, alpha)})
    return pd.DataFrame(rows, columns=list(QC_COLUMNS))


@dataclass
class GroupQuality:
    """The QC of one observer group: the table, the staircase trace and the accuracy windows.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`quality_table`.
    trace : pandas.DataFrame
        :func:`staircase_trace`.
    windows : pandas.DataFrame
        :func:`accuracy_windows`.
    files : list of Path
        Every file read.
    targets : dict of str to float
        participant -> the staircase's target accuracy.
    skipped : list of str
        Trial files left out, and why.
    """

    table: pd.DataFrame  # quality_table
    trace: pd.DataFrame  # staircase_trace
    windows: pd.DataFrame  # accuracy_windows
    files: list[Path] = field(default_factory=list)
    targets: dict[str, float] = field(default_factory=dict)  # participant -> staircase target accuracy
    skipped: list[str] = field(default_factory=list)  # trial files left out of the QC, and why

    @property
    def excluded(self) -> dict[str, str]:
        """participant -> the reasons of their exclusion."""
        rows = self.table[self.table["excluded"].astype(bool)]
        return dict(zip(rows["participant"], rows["reasons"]))
