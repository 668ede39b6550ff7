"""Revealed area and the staircase's burn-in: what the Bubbles conditions are compared on.

Guided apertures pile up where a model puts its relevance, and overlapping apertures show
fewer pixels: on a two-eye map, 40 guided bubbles reveal about half the area of 40 random
ones. "Guided needs fewer bubbles" is therefore confounded with the overlap; the conditions
are compared on the **revealed area** instead (the sum of the shown mask over the face
aperture, :func:`stimuli.bubbles.revealed_area`, the trial file's ``revealed_px``), so
"guided helps" means fewer visible pixels for the same accuracy.

QUEST starts from a guess and moves towards the threshold over its first trials; those
trials (its **burn-in**, the first ``burn_in`` main trials of each staircase of each
session) are left out of every summary here.

The mean revealed area of the trials after the burn-in is not yet "the area for the same
accuracy": QUEST's Weibull is fitted on log10(number of bubbles), where guided and random
apertures have psychometric functions of different slopes (overlap), so the staircase holds
the two conditions at slightly different accuracies. :func:`area_threshold` fits the
psychometric function on log10 revealed area instead (QUEST's Weibull, slope and lapse rate,
the threshold free) and gives the area at the target accuracy: what the report's guided
finding tests. Measured with an observer whose accuracy depends only on the area shown
(guidance cannot help it; 200 studies of 12 participants x 100 trials per condition, paired
t-test guided vs random at alpha 0.05; benchmarks/area_null_simulation.py):

=========================  ==================  ===========================
DV                         guided / random     rejections (95% CI)
=========================  ==================  ===========================
``mean_n_bubbles``         1.46                190/200 = 0.95 (0.91-0.98)
``mean_revealed_px``       1.06                24/200 = 0.12 (0.08-0.17)
``threshold_revealed_px``  0.99                15/200 = 0.075 (0.04-0.12)
=========================  ==================  ===========================

With an observer who uses only the eyes (where the guided bubbles go), every DV finds guided
better in 200 of 200 studies (``threshold_revealed_px``: guided / random = 0.17).

* :func:`staircase_positions`: one session's main trials with their staircase, position and
  QUEST's final estimate (the QC's staircase trace);
* :func:`staircase_trials`: one session's main trials with their staircase, their position
  in it, their revealed area (recorded, or recomputed from the row for older files) and the
  staircase's final QUEST estimate;
* :func:`burn_in_flags`: which rows are a staircase's first ``n`` trials;
* :func:`area_threshold`: the revealed area at the target accuracy (maximum likelihood);
* :func:`condition_summary`: accuracy, bubbles, revealed area and the threshold in revealed
  area of one condition after the burn-in;
* :func:`analysis.readers.area_summary` gives the same from a participant's trial files
  (``tables/ci_participants.csv``).

Examples
--------
>>> table = pd.DataFrame({"phase": ["main"] * 5, "condition": ["a", "a", "b", "a", "b"]})
>>> burn_in_flags(table, 2).tolist()
[True, True, True, False, True]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stimuli.bubbles import revealed_area
from stimuli.contracts.centres import parse_centres
from stimuli.contracts.errors import InputError

__all__ = ["DEFAULT_BURN_IN", "SUMMARY_COLUMNS", "Psychometric", "burn_in_flags", "staircase_positions",
           "staircase_trials",
           "area_threshold", "condition_summary", "STAIRCASE_COLUMNS", "check_burn_in"]

DEFAULT_BURN_IN = 20  # QUEST trials left out at the start of each staircase
# what condition_summary returns (the columns it adds to tables/ci_participants.csv)
SUMMARY_COLUMNS = ("burn_in_trials", "n_trials_after_burn_in", "accuracy_after_burn_in",
                   "mean_n_bubbles_after_burn_in", "mean_revealed_px", "mean_revealed_fraction",
                   "threshold_n_bubbles", "threshold_revealed_px")
STAIRCASE_COLUMNS = (  # what a trial table needs for the staircase and area summaries
    "phase", "condition", "correct", "bubbles", "sigma_px")


@dataclass(frozen=True)
class Psychometric:
    """QUEST's Weibull (experiments.staircase): target accuracy, slope ``beta`` (log10 units),
    lapse ``delta`` and guess rate ``gamma``; a session's values are in its sidecar's ``Staircase``.

    Parameters
    ----------
    target : float
        Target accuracy.
    beta : float
        Slope (log10 units).
    delta : float
        Lapse rate.
    gamma : float
        Guess rate.
    """

    target: float = 0.75
    beta: float = 1.5
    delta: float = 0.01
    gamma: float = 0.5


def check_burn_in(burn_in: Any) -> int:
    """A burn-in as a whole number of trials, 0 or more (else an InputError).

    Parameters
    ----------
    burn_in : int
        Trials left out at the start of each staircase.

    Returns
    -------
    int
        ``burn_in`` as a Python int.

    Examples
    --------
    >>> check_burn_in(20)
    20
    """
    if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or burn_in < 0:
        raise InputError(f"burn-in must be a whole number of trials, 0 or more, got {burn_in!r}")
    return int(burn_in)


def _staircase_key(table: pd.DataFrame) -> pd.Series:
    """Each row's staircase: the ``staircase`` column where it is given, else its condition
    (one staircase per condition, the default of experiments/bubbles.py)."""
    condition = table["condition"].astype(str)
    if "staircase" not in table.columns:
        return condition
    return table["staircase"].where(table["staircase"].notna(), condition).astype(str)


def burn_in_flags(table: pd.DataFrame, n: int) -> pd.Series:
    """True for main trials that are among the first ``n`` of their staircase (file order).

    ``table`` is one session's trial table (a staircase lives within a session: a new session
    starts a new QUEST). Practice trials are never flagged (no staircase set them).

    Parameters
    ----------
    table : pandas.DataFrame
        One session's trial table.
    n : int
        Trials of each staircase flagged.

    Returns
    -------
    pandas.Series
        Boolean, on the table's index.

    Examples
    --------
    >>> t = pd.DataFrame({"phase": ["practice", "main", "main", "main"], "condition": ["r"] * 4,
    ...                   "staircase": [None, "shared", "shared", "shared"]})
    >>> burn_in_flags(t, 1).tolist()
    [False, True, False, False]
    """
    n = check_burn_in(n)
    main = table["phase"].astype(str) == "main"
    key = _staircase_key(table[main])
    position = key.groupby(key, sort=False).cumcount()
    flags = pd.Series(False, index=table.index)
    flags[main] = position < n
    return flags


def _areas(table: pd.DataFrame, shape: Sequence[int], aperture: Any, merge: str, where: str) -> np.ndarray:
    """``revealed_px`` per row: recorded where the file has it, else recomputed from the row."""
    recorded = (pd.to_numeric(table["revealed_px"], errors="coerce").to_numpy(np.float64)
                if "revealed_px" in table.columns else np.full(len(table), np.nan))
    for i in np.flatnonzero(~np.isfinite(recorded)):
        row = table.iloc[i]
        recorded[i] = revealed_area(row, shape, aperture, merge=merge, where=f"{where}, line {int(row.name) + 2}")
    return recorded


def staircase_positions(table: pd.DataFrame, *, where: str = "trials") -> pd.DataFrame:
    """One session's answered main trials with their staircase and QUEST's final estimate.

    Columns: ``trial`` (the file's, when it has one), ``condition``, ``staircase``,
    ``staircase_trial`` (1 = the staircase's first main trial, counted before unanswered rows
    are dropped, as the staircase saw them), ``correct``, ``n_bubbles`` (centres in
    ``bubbles``) and ``final_log10_bubbles``: the staircase's last QUEST estimate
    (``intensity`` of its last trial; ``log10(n_bubbles)`` of that trial in files without it).
    The index is the table's (line = index + 2, as :func:`read_trials` gives).

    Parameters
    ----------
    table : pandas.DataFrame
        One session's trial table.
    where : str
        Where it came from (for messages).

    Returns
    -------
    pandas.DataFrame
        One row per answered main trial.

    Examples
    --------
    >>> t = pd.DataFrame({"phase": ["main"] * 3, "condition": ["r"] * 3, "correct": [1, 0, 1],
    ...                   "bubbles": ["[[1, 1]]", "[[1, 1], [2, 2]]", "[]"], "intensity": [0.3, 0.2, 0.1]})
    >>> staircase_positions(t)[["staircase_trial", "n_bubbles", "final_log10_bubbles"]].values.tolist()
    [[1.0, 1.0, 0.1], [2.0, 2.0, 0.1], [3.0, 0.0, 0.1]]
    """
    missing = [c for c in ("phase", "condition", "correct", "bubbles") if c not in table.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}")
    main = table[table["phase"].astype(str) == "main"]
    key = _staircase_key(main)
    position = key.groupby(key, sort=False).cumcount() + 1
    n_bubbles = np.array([len(parse_centres(b, f"{where}, line {int(i) + 2}")) for i, b in main["bubbles"].items()],
                         dtype=np.int64)
    if "intensity" in main.columns:
        intensity = pd.to_numeric(main["intensity"], errors="coerce").to_numpy(np.float64)
    else:
        intensity = np.full(len(main), np.nan)
    estimate = np.where(np.isfinite(intensity), intensity, np.log10(np.maximum(n_bubbles, 1)))
    final = pd.Series(estimate, index=main.index).groupby(key, sort=False).transform("last")
    out = pd.DataFrame({"condition": main["condition"].astype(str), "staircase": key, "staircase_trial": position,
                        "correct": pd.to_numeric(main["correct"], errors="coerce"), "n_bubbles": n_bubbles,
                        "final_log10_bubbles": final})
    if "trial" in main.columns:
        out.insert(0, "trial", main["trial"])
    return out[out["correct"].notna()]


def staircase_trials(table: pd.DataFrame, shape: Sequence[int], aperture: Any = None, *, merge: str = "sum",
                     where: str = "trials") -> pd.DataFrame:
    """One session's answered main trials, with what the condition summaries need.

    :func:`staircase_positions` (``condition``, ``staircase``, ``staircase_trial``,
    ``correct``, ``n_bubbles``, ``final_log10_bubbles``) plus ``revealed_px``: recorded, or
    recomputed from the row for older files. ``table`` is in the trial-file format with a
    default index (line = index + 2), as :func:`read_trials` gives.

    Parameters
    ----------
    table, where
        As for :func:`staircase_positions`.
    shape : sequence of int
        The stimulus grid (H, W).
    aperture : bool array, optional
        The face aperture (default: the whole grid).
    merge : str
        The session's mask merge rule.

    Returns
    -------
    pandas.DataFrame
        One row per answered main trial.
    """
    missing = [c for c in STAIRCASE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}")
    out = staircase_positions(table, where=where).drop(columns="trial", errors="ignore")
    out["revealed_px"] = _areas(table.loc[out.index], shape, aperture, merge, where)
    return out


def area_threshold(correct: Any, revealed_px: Any, psychometric: Psychometric = Psychometric()) -> float:
    """The revealed area (px) at the target accuracy: maximum likelihood, QUEST's Weibull on log10 area.

    ``p(x) = delta*gamma + (1-delta)(1 - (1-gamma) exp(-10**(beta (x - T + eps))))`` with
    ``x = log10(revealed_px)`` and ``eps`` such that ``p(T) = target``; only the threshold
    ``T`` is fitted (grid of 0.001 log10 units over the trials' range +-1), the slope and
    lapse are QUEST's. Trials near the threshold (a staircase's) pin ``T`` down even where a
    slope could not be. NaN when every answer is correct or every one wrong (no finite
    estimate) or there are no trials.

    Parameters
    ----------
    correct : array_like
        0/1 answers.
    revealed_px : array_like
        Revealed area of each trial (px).
    psychometric : Psychometric
        QUEST's function (its threshold is fitted).

    Returns
    -------
    float
        The area (px), NaN when it cannot be fitted.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> area = rng.uniform(100, 400, 400)
    >>> correct = rng.random(400) < 0.5 + 0.49 * (1 - np.exp(-(area / 250) ** 2))
    >>> 150 < area_threshold(correct, area) < 260
    True
    """
    correct = np.asarray(correct, dtype=np.float64)
    area = np.asarray(revealed_px, dtype=np.float64)
    keep = np.isfinite(correct) & np.isfinite(area) & (area > 0)
    correct, x = correct[keep], np.log10(area[keep])
    if len(x) == 0 or correct.min() == correct.max():
        return math.nan
    f = psychometric
    # p(T) = target  <=>  exp(-10**(beta*eps)) = (1 - (target - delta*gamma) / (1 - delta)) / (1 - gamma)
    eps = math.log10(-math.log((1 - (f.target - f.delta * f.gamma) / (1 - f.delta)) / (1 - f.gamma))) / f.beta
    grid = np.arange(x.min() - 1.0, x.max() + 1.0, 0.001)
    z = 10.0 ** (f.beta * (x[None, :] - grid[:, None] + eps))
    p = np.clip(f.delta * f.gamma + (1 - f.delta) * (1 - (1 - f.gamma) * np.exp(-z)), 1e-12, 1 - 1e-12)
    loglik = np.log(p) @ correct + np.log1p(-p) @ (1.0 - correct)
    return float(10.0 ** grid[int(np.argmax(loglik))])


def condition_summary(trials: pd.DataFrame, burn_in: int = DEFAULT_BURN_IN, *, aperture_px: int,
                      psychometric: Psychometric = Psychometric()) -> dict[str, Any]:
    """Accuracy, bubbles and revealed area of one condition's trials after the burn-in.

    ``trials`` are :func:`staircase_trials` rows of one condition (one or more sessions: a
    ``session`` column, when present, tells their staircases apart). Returns
    :data:`SUMMARY_COLUMNS`:

    * ``mean_revealed_px`` / ``mean_revealed_fraction``: the mean area the trials after the
      burn-in showed;
    * ``threshold_n_bubbles``: the final QUEST estimate, ``10 ** mean`` over the staircases;
    * ``threshold_revealed_px``: the revealed area at the target accuracy,
      :func:`area_threshold` of the trials after the burn-in (the area the observer needs for
      the staircase's accuracy: what the conditions are compared on).

    Parameters
    ----------
    trials : pandas.DataFrame
        :func:`staircase_trials` rows of one condition.
    burn_in : int
        Trials of each staircase left out.
    aperture_px : int
        Pixels of the face aperture.
    psychometric : Psychometric
        QUEST's function of the sessions.

    Returns
    -------
    dict
        :data:`SUMMARY_COLUMNS` -> value.

    Examples
    --------
    >>> t = pd.DataFrame({"staircase": "random", "staircase_trial": [1, 2, 3, 4], "correct": [0, 1, 1, 0],
    ...                   "n_bubbles": [10, 8, 12, 9], "revealed_px": [500.0, 400.0, 560.0, 450.0],
    ...                   "final_log10_bubbles": 1.0})
    >>> s = condition_summary(t, 1, aperture_px=1000)
    >>> s["n_trials_after_burn_in"], s["mean_revealed_px"], s["threshold_n_bubbles"]
    (3, 470.0, 10.0)
    """
    burn_in = check_burn_in(burn_in)
    after = trials[trials["staircase_trial"] > burn_in]
    # one final estimate per staircase (a staircase lives in one session)
    finals = trials.groupby([c for c in ("session", "staircase") if c in trials.columns],
                            sort=False)["final_log10_bubbles"].first()
    threshold = float(10 ** finals.mean()) if len(finals) else math.nan
    nan = math.nan
    if len(after) == 0:
        return {"burn_in_trials": burn_in, "n_trials_after_burn_in": 0, "accuracy_after_burn_in": nan,
                "mean_n_bubbles_after_burn_in": nan, "mean_revealed_px": nan, "mean_revealed_fraction": nan,
                "threshold_n_bubbles": threshold, "threshold_revealed_px": nan}
    area = after["revealed_px"].to_numpy(np.float64)
    correct = after["correct"].to_numpy(np.float64)
    return {"burn_in_trials": burn_in, "n_trials_after_burn_in": len(after),
            "accuracy_after_burn_in": float(correct.mean()),
            "mean_n_bubbles_after_burn_in": float(after["n_bubbles"].to_numpy(np.float64).mean()),
            "mean_revealed_px": float(area.mean()), "mean_revealed_fraction": float(area.mean()) / aperture_px,
            "threshold_n_bubbles": threshold, "threshold_revealed_px": area_threshold(correct, area, psychometric)}


