"""Human-model alignment: do people's classification images match the models' relevance?

* :func:`align_maps`: every human map (each participant's CI, the group CI) against every
  reference map (a variant's set-level relevance map, a model observer's CI), as a tidy table;
* :func:`shift_null`: a null for one such comparison from the reference map circularly
  shifted by random offsets (it keeps the map's smoothness and histogram, and breaks only
  where it lies), with the permutation p-value;
* :func:`noise_ceiling`: how well any map could agree with the group CI given the
  participants' disagreement: split-half reliability over random halves of participants,
  Spearman-Brown corrected, its square root (the ceiling of a correlation with the group
  CI), and the lower and upper bounds of Nili et al. (2014) for the participants' CIs;
* :func:`condition_effects`: accuracy and the revealed area by condition (random, guided,
  antiguided, ...) across participants, with pingouin's repeated-measures ANOVA and
  FDR-corrected paired tests. Conditions are compared on the area the bubbles revealed after
  the staircase's burn-in (:mod:`analysis.revealed`), not on their count: guided apertures
  overlap, so the same count shows fewer pixels.

Examples
--------
>>> rng = np.random.default_rng(1)
>>> truth = np.zeros((20, 20)); truth[5:9, 4:16] = 1
>>> people = truth + rng.normal(scale=0.8, size=(6, 20, 20))
>>> ceiling = noise_ceiling(people, n_splits=20, seed=0)
>>> 0 < ceiling["r_half"] < ceiling["reliability"] < ceiling["ceiling"] <= 1
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.maps import check_map

from .metrics import compare_maps, pearson, spearman
from .reliability import fisher_mean, split_half
from .repeated import repeated_measures

__all__ = ["align_maps", "shift_null", "noise_ceiling", "condition_effects", "condition_descriptives"]

_CORRELATIONS = {"spearman": spearman, "pearson": pearson}


def align_maps(humans: Mapping[str, np.ndarray], references: Mapping[str, np.ndarray], *, region: Any = None,
               top_percents: Sequence[float] = (10.0,)) -> pd.DataFrame:
    """Every human map against every reference map (:func:`analysis.compare_maps`).

    Columns: ``human``, ``reference``, then the metrics (``pearson``, ``spearman``,
    ``dice_top<k>``, ``iou_top<k>``, ``histogram_intersection``).

    Parameters
    ----------
    humans : mapping of str to numpy.ndarray
        name -> human (H, W) map (e.g. a group CI).
    references : mapping of str to numpy.ndarray
        name -> reference map (a model's mean relevance, ...).
    region : shape or bool array, optional
        Pixels compared (default: all).
    top_percents : sequence of float
        The top-k% overlaps computed.

    Returns
    -------
    pandas.DataFrame
        One row per (human, reference) pair.
    """
    rows = []
    for human, h in humans.items():
        for reference, r in references.items():
            rows.append({"human": human, "reference": reference,
                         **compare_maps(h, r, region=region, top_percents=top_percents)})
    return pd.DataFrame(rows)


def _correlate(method: str):
    if method not in _CORRELATIONS:
        raise InputError(f"unknown correlation '{method}' (choose {', '.join(_CORRELATIONS)})")
    return _CORRELATIONS[method]


def shift_null(human: Any, reference: Any, *, region: Any = None, n: int = 200, seed: int = 0,
               method: str = "spearman", min_shift: float = 0.25) -> dict[str, Any]:
    """Correlation of ``human`` with ``reference``, and its null from circularly shifted references.

    Each null draw rolls ``reference`` by a random (rows, cols) offset of at least
    ``min_shift`` of the image side in one direction or the other (so the shifted map does not
    nearly coincide with the original). Returns ``observed``, ``null`` (the n correlations),
    ``null_mean``, ``null_q95`` and the one-sided ``p`` = (1 + #null >= observed) / (1 + n).

    Parameters
    ----------
    human, reference : array_like
        Two (H, W) maps.
    region : shape or bool array, optional
        Pixels compared (default: all).
    n : int
        Null draws.
    seed : int
        Seed of the shifts.
    method : str
        ``spearman`` or ``pearson``.
    min_shift : float
        Smallest shift, as a share of the image side.

    Returns
    -------
    dict
        ``observed``, the ``null`` draws, their mean and the p-value.
    """
    correlate = _correlate(method)
    human = check_map(human, "human map")
    reference = check_map(reference, "reference map", human.shape)
    if n < 1:
        raise InputError(f"the shift null needs at least 1 draw, got {n}")
    height, width = human.shape
    rng = np.random.default_rng(seed)
    observed = correlate(human, reference, region=region)
    null = np.empty(n)
    low_r, low_c = int(np.ceil(min_shift * height)), int(np.ceil(min_shift * width))
    for i in range(n):
        while True:
            dr, dc = int(rng.integers(height)), int(rng.integers(width))
            if min(dr, height - dr) >= low_r or min(dc, width - dc) >= low_c:
                break
        null[i] = correlate(human, np.roll(reference, (dr, dc), axis=(0, 1)), region=region)
    valid = null[np.isfinite(null)]
    p = (1 + int((valid >= observed).sum())) / (1 + len(valid)) if np.isfinite(observed) and len(valid) else np.nan
    return {"observed": observed, "null": null, "null_mean": float(np.nanmean(null)) if len(valid) else np.nan,
            "null_q95": float(np.quantile(valid, 0.95)) if len(valid) else np.nan, "p": p, "n": int(n)}


def noise_ceiling(participant_maps: Any, *, region: Any = None, n_splits: int = 100, seed: int = 0,
                  method: str = "spearman") -> dict[str, float]:
    """The human noise ceiling from the participants' maps (P, H, W), e.g. their Z-scored CIs.

    * ``r_half``: mean correlation of the group maps of two random halves of the participants
      (Fisher z; the group map of a half is its sum / sqrt(n), a correlation ignores the scale);
    * ``reliability``: ``r_half`` Spearman-Brown corrected to all P participants;
    * ``ceiling``: ``sqrt(reliability)``, the expected correlation of the group map with the
      noise-free map: no model can be expected to correlate higher with the group CI;
    * ``lower`` / ``upper``: Nili et al.'s (2014) bounds for a single participant's map: the
      mean correlation of each participant with the mean of the others / of everyone.

    Needs at least 2 participants (4 or more for a useful split-half).

    Parameters
    ----------
    participant_maps : array_like
        (P, H, W) the participants' maps.
    region, method
        As for :func:`shift_null`.
    n_splits : int
        Random halvings of the participants.
    seed : int
        Seed of the halvings.

    Returns
    -------
    dict of str to float
        ``n_participants``, ``r_half``, ``reliability``, ``ceiling``, ``lower``, ``upper`` and the settings.
    """
    correlate = _correlate(method)
    maps = np.asarray(participant_maps, dtype=np.float64)
    if maps.ndim != 3 or len(maps) < 2:
        raise InputError(f"a noise ceiling needs the maps of at least 2 participants, got shape {maps.shape}")
    for i, m in enumerate(maps):
        check_map(m, f"participant map {i + 1}")
    halves = split_half(maps, n_splits=n_splits, seed=seed, region=region, method=method)
    reliability = halves["r_full"]
    total = maps.sum(axis=0)
    lower = [correlate(m, (total - m) / (len(maps) - 1), region=region) for m in maps]
    upper = [correlate(m, total / len(maps), region=region) for m in maps]
    return {"n_participants": len(maps), "r_half": halves["r_half"], "r_half_sd": halves["r_half_sd"],
            "reliability": reliability, "ceiling": float(np.sqrt(reliability)) if reliability > 0 else 0.0,
            "lower": fisher_mean(lower), "upper": fisher_mean(upper), "n_splits": halves["n_splits"],
            "seed": seed, "method": method}


def _complete(table: pd.DataFrame, conditions: Sequence[str], dv: str) -> tuple[pd.DataFrame, list[str]]:
    """Rows of participants with a value in every condition; and who was dropped."""
    table = table[table["condition"].isin(conditions) & table[dv].notna()]
    counts = table.groupby("participant")["condition"].nunique()
    keep = counts.index[counts == len(conditions)]
    dropped = sorted(set(counts.index) - set(keep))
    return table[table["participant"].isin(keep)], dropped


def condition_descriptives(table: pd.DataFrame,
                           dvs: Sequence[str] = ("accuracy_after_burn_in", "mean_revealed_px"),
                           conditions: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, SD and count of each dependent variable per condition (one row per condition and dv).

    The default dvs are those of ``tables/ci_participants.csv`` the conditions are compared
    on: accuracy and revealed area (px), both after the staircase's burn-in.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per participant and condition.
    dvs : sequence of str
        The dependent variables.
    conditions : sequence of str, optional
        The conditions, in order (default: all, as found).

    Returns
    -------
    pandas.DataFrame
        ``condition``, ``dv``, ``mean``, ``sd``, ``n``.
    """
    conditions = list(conditions) if conditions is not None else list(dict.fromkeys(table["condition"]))
    rows = []
    for dv in dvs:
        for condition in conditions:
            values = table.loc[table["condition"] == condition, dv].dropna().to_numpy(np.float64)
            rows.append({"dv": dv, "condition": condition, "n": len(values),
                         "mean": float(values.mean()) if len(values) else np.nan,
                         "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                         "sem": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else np.nan})
    return pd.DataFrame(rows)


def condition_effects(table: pd.DataFrame, dv: str, *, conditions: Sequence[str] | None = None,
                      padjust: str = "fdr_bh") -> dict[str, Any]:
    """Does ``dv`` (``accuracy_after_burn_in``, ``mean_revealed_px``, ...) differ between conditions,
    within participants?

    ``table`` has one row per participant and condition (columns ``participant``,
    ``condition`` and ``dv``: ``tables/ci_participants.csv``). Participants without a value in
    every condition are dropped (and named). Returns ``anova`` (pingouin ``rm_anova``, with
    ``ng2``), ``pairwise`` (``pairwise_tests``: paired t, ``p_unc``, ``p_corr`` FDR-corrected,
    ``cohen`` d; the condition means are added as ``mean_A`` and ``mean_B``), ``n`` and
    ``dropped``. Needs 2+ conditions and 2+ complete participants, else an InputError says so.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per participant and condition.
    dv : str
        The dependent variable.
    conditions : sequence of str, optional
        The conditions compared (default: all).
    padjust : str
        pingouin's p-value correction of the pairwise tests.

    Returns
    -------
    dict
        ``anova`` and ``pairwise`` tables, ``n`` participants and those ``dropped``.
    """
    for column in ("participant", "condition", dv):
        if column not in table.columns:
            raise InputError(f"condition effects: the table has no column '{column}'")
    conditions = list(conditions) if conditions is not None else list(dict.fromkeys(table["condition"]))
    if len(conditions) < 2:
        raise InputError(f"condition effects need at least two conditions, found {', '.join(conditions) or 'none'}")
    complete, dropped = _complete(table, conditions, dv)
    n = complete["participant"].nunique()
    if n < 2:
        raise InputError(f"condition effects on {dv} need at least 2 participants with every condition "
                         f"({', '.join(conditions)}), found {n}")
    data = complete[["participant", "condition", dv]].copy()
    data[dv] = data[dv].astype(np.float64)
    if data.groupby("condition")[dv].std().fillna(0).eq(0).all() and data[dv].nunique() == 1:
        raise InputError(f"condition effects on {dv}: every value is {data[dv].iloc[0]!r}; nothing to test")
    anova, pairwise = repeated_measures(data, dv, "condition", "participant", padjust=padjust)
    return {"anova": anova.assign(dv=dv), "pairwise": pairwise.assign(dv=dv), "n": n, "dropped": dropped}
