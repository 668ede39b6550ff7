"""RSA as tidy tables: every model against the participants, with bootstrap CIs and model differences.

* :func:`bootstrap_rsa`: sampling distributions from resampling stimuli, subjects or both
  (pairs of a stimulus with its own copy are left out), for confidence intervals of each
  model's RSA and of differences between models;
* :func:`rsa_table` / :func:`compare_models`: all of it as tidy tables (the correlations,
  noise ceiling and permutation test are :mod:`analysis.rsa`'s).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> points = rng.normal(size=(8, 2))
>>> truth = np.linalg.norm(points[:, None] - points[None], axis=-1)
>>> table, draws = rsa_table({"truth": truth}, np.stack([truth, truth]), permutations=20, bootstraps=20)
>>> round(float(table["rsa_group"].iloc[0]), 3)
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from stimuli.contracts.errors import InputError
from stimuli.contracts.rdm import check_rdm
from stimuli.contracts.variants import parse_variant_name, variant_relation

from .rsa import (
    check_method,
    noise_ceiling,
    permutation_test,
    rdm_correlation,
    row_correlations,
    subject_correlations,
    subject_stack,
)

__all__ = ["OVER", "bootstrap_rsa", "rsa_table", "compare_models"]


OVER = ("stimuli", "subjects", "both")


def bootstrap_rsa(models: Mapping[str, Any], subjects: Any, *, n: int = 1000, seed: int = 0,
                  over: str = "both", method: str = "spearman",
                  progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Bootstrap distributions of each model's ``rsa_group`` and ``rsa_subjects``.

    Each draw resamples the stimuli (``over`` = stimuli or both: N of them with replacement;
    pairs of a stimulus with its own copy are left out) and/or the participants (subjects or
    both), rebuilds the group RDM as the mean of the drawn participants' RDMs and correlates
    every model with it and with each drawn participant. Returns ``group`` and ``subjects``,
    each (n, M) in the order of ``models``.

    Parameters
    ----------
    models : mapping of str to array_like
        name -> (N, N) model RDM.
    subjects : array_like
        (P, N, N) participants' RDMs.
    n : int
        Bootstrap draws.
    seed : int
        Their seed.
    over : str
        Resample ``stimuli``, ``subjects`` or ``both``.
    method : str
        The correlation.
    progress : callable, optional
        Called with the number of draws done since the last call.

    Returns
    -------
    dict of str to numpy.ndarray
        ``group`` and ``subjects``: (n, models) draws; ``names``: the models, in column order.
    """
    check_method(method)
    if over not in OVER:
        raise InputError(f"bootstrap over '{over}': choose {', '.join(OVER)}")
    if n < 1:
        raise InputError(f"a bootstrap needs at least 1 draw, got {n}")
    stack = subject_stack(subjects)
    names = list(models)
    matrices = np.stack([check_rdm(models[k], f"model RDM '{k}'") for k in names])
    if matrices.shape[1:] != stack.shape[1:]:
        raise InputError(f"model RDMs are {matrices.shape[1:]}, the participants' RDMs {stack.shape[1:]}")
    rng = np.random.default_rng(seed)
    size, people = stack.shape[1], stack.shape[0]
    rows, cols = np.triu_indices(size, 1)
    group_r = np.empty((n, len(names)))
    subject_r = np.empty((n, len(names)))
    for b in range(n):
        stimuli = rng.integers(0, size, size) if over in ("stimuli", "both") else np.arange(size)
        who = rng.integers(0, people, people) if over in ("subjects", "both") else np.arange(people)
        i, j = stimuli[rows], stimuli[cols]
        keep = i != j  # a stimulus paired with its own copy has no dissimilarity
        i, j = i[keep], j[keep]
        drawn = stack[who][:, i, j]  # (P, M)
        model_vectors = matrices[:, i, j]  # (K, M)
        with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
            quiet.filter(RuntimeWarning)
            group = np.nanmean(drawn, axis=0)
        group_r[b] = row_correlations(model_vectors, group, method)
        per = np.stack([row_correlations(model_vectors, v, method) for v in drawn])  # (P, K)
        with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
            quiet.filter(RuntimeWarning)
            subject_r[b] = np.nanmean(per, axis=0)
        if progress is not None:
            progress(1)
    return {"group": group_r, "subjects": subject_r, "names": np.asarray(names)}


def _interval(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    valid = samples[np.isfinite(samples)]
    if not len(valid):
        return float("nan"), float("nan")
    return float(np.quantile(valid, alpha / 2)), float(np.quantile(valid, 1 - alpha / 2))


def rsa_table(models: Mapping[str, Any], subjects: Any, *, method: str = "spearman", permutations: int = 1000,
              bootstraps: int = 1000, over: str = "both", alpha: float = 0.05, seed: int = 0,
              progress: Callable[[int], None] | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Every model against the participants: one row per model, and the bootstrap draws.

    Columns: ``model``, ``rsa_group`` with its bootstrap CI (``group_ci_low``/``high``) and
    permutation ``p_perm``; ``rsa_subjects`` (mean over participants) with its CI, its
    ``sem`` over participants and a one-sample t test against 0 across participants
    (``t``, ``p_t``); the ceiling's ``ceiling_lower``/``upper``; ``n_stimuli``, ``n_subjects``,
    ``method``.

    Parameters
    ----------
    models, subjects, method, over, progress
        As for :func:`bootstrap_rsa`.
    permutations, bootstraps : int
        Draws of the permutation test and of the bootstrap.
    alpha : float
        1 - the CIs' level.
    seed : int
        Seed of both.

    Returns
    -------
    table : pandas.DataFrame
        One row per model.
    draws : dict of str to numpy.ndarray
        The bootstrap draws (for :func:`compare_models`).
    """
    stack = subject_stack(subjects)
    if not models:
        raise InputError("RSA needs at least one model RDM")
    with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
        quiet.filter(RuntimeWarning)
        group = np.nanmean(stack, axis=0)
    ceiling = noise_ceiling(stack, method) if len(stack) >= 2 else {"lower": np.nan, "upper": np.nan}
    draws = bootstrap_rsa(models, stack, n=bootstraps, seed=seed, over=over, method=method, progress=progress) \
        if bootstraps else None
    rows = []
    for k, (name, rdm) in enumerate(models.items()):
        test = permutation_test(rdm, group, n=permutations, seed=seed + 1 + k, method=method) \
            if permutations else {"observed": rdm_correlation(rdm, group, method), "p": np.nan}
        per = subject_correlations(rdm, stack, method)
        valid = per[np.isfinite(per)]
        t = stats.ttest_1samp(valid, 0.0) if len(valid) >= 2 and np.ptp(valid) > 0 else None
        g_low, g_high = _interval(draws["group"][:, k], alpha) if draws else (np.nan, np.nan)
        s_low, s_high = _interval(draws["subjects"][:, k], alpha) if draws else (np.nan, np.nan)
        rows.append({"model": name, "rsa_group": test["observed"], "group_ci_low": g_low, "group_ci_high": g_high,
                     "p_perm": test["p"], "rsa_subjects": float(valid.mean()) if len(valid) else np.nan,
                     "subjects_ci_low": s_low, "subjects_ci_high": s_high,
                     "sem": float(valid.std(ddof=1) / np.sqrt(len(valid))) if len(valid) > 1 else np.nan,
                     "t": float(t.statistic) if t is not None else np.nan,
                     "p_t": float(t.pvalue) if t is not None else np.nan,
                     "ceiling_lower": ceiling["lower"], "ceiling_upper": ceiling["upper"],
                     "n_stimuli": int(stack.shape[1]), "n_subjects": int(len(stack)), "method": method})
    return pd.DataFrame(rows), (draws or {})


def _relation(a: str, b: str) -> str:
    """How two ``variant:rdm`` model names differ (pretraining, task, seed, ...), or 'rdm'."""
    (va, _, ra), (vb, _, rb) = a.partition(":"), b.partition(":")
    if va == vb:
        return "same variant, other RDM"
    if ra != rb:
        return "other RDM"
    try:
        parse_variant_name(va), parse_variant_name(vb)
    except InputError:
        return "other model"
    return variant_relation(va, vb)


def compare_models(table: pd.DataFrame, draws: Mapping[str, np.ndarray], *, statistic: str = "subjects",
                   alpha: float = 0.05, pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Differences between models' RSA with bootstrap CIs and two-sided bootstrap p-values.

    ``statistic`` is ``subjects`` (mean over participants) or ``group``. ``pairs`` defaults to
    every pair of models; ``relation`` says how two variants differ (stimuli.contracts.variants).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`rsa_table`'s table.
    draws : mapping of str to numpy.ndarray
        :func:`rsa_table`'s draws.
    statistic : str
        ``subjects`` or ``group``.
    alpha : float
        1 - the CIs' level.
    pairs : sequence of (str, str), optional
        The pairs compared (default: every pair).

    Returns
    -------
    pandas.DataFrame
        One row per pair.
    """
    if statistic not in ("subjects", "group"):
        raise InputError(f"compare models on 'subjects' or 'group', not '{statistic}'")
    if not draws:
        raise InputError("comparing models needs the bootstrap draws (bootstraps > 0)")
    names = [str(n) for n in draws["names"]]
    samples = draws[statistic]
    column = "rsa_subjects" if statistic == "subjects" else "rsa_group"
    observed = dict(zip(table["model"], table[column]))
    pairs = list(pairs) if pairs is not None else [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    rows = []
    for a, b in pairs:
        diff = samples[:, names.index(a)] - samples[:, names.index(b)]
        diff = diff[np.isfinite(diff)]
        low, high = _interval(diff, alpha)
        p = min(1.0, 2 * min((diff <= 0).mean(), (diff >= 0).mean())) if len(diff) else np.nan
        rows.append({"model_a": a, "model_b": b, "relation": _relation(a, b), "statistic": statistic,
                     "difference": observed[a] - observed[b], "ci_low": low, "ci_high": high, "p_boot": p,
                     "n_boot": int(len(diff))})
    return pd.DataFrame(rows)
