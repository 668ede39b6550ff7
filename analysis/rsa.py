"""Representational similarity analysis (RSA): model RDMs against human RDMs.

Everything works on RDMs (N, N) over the same N stimuli, compared through their upper
triangles (the N (N - 1) / 2 pairs; NaN marks a pair without data and is left out):

* :func:`rdm_correlation`: Spearman rho, Kendall tau-a (Nili et al., 2014: the right choice
  when a model RDM has ties, e.g. categorical models) or Pearson r;
* :func:`noise_ceiling`: how well the true model could do given the participants'
  disagreement (Nili et al., 2014): the upper bound is each participant's correlation with
  the mean RDM of everyone, the lower bound with the mean of the others (leave one subject
  out); the participants' RDMs are rank-transformed (Spearman, tau-a) or z-scored (Pearson)
  over their pairs before averaging, so the average is the best estimate of the true RDM under
  each method's own notion of fit;
* :func:`permutation_test`: the null of no relation, by permuting the stimulus labels of
  the model RDM (rows and columns together);
* :mod:`analysis.rsa_tables`: bootstrap confidence intervals and all of it as tidy tables.

A model's RSA is reported two ways: ``rsa_group`` (its correlation with the group RDM, the
mean of the participants' RDMs) and ``rsa_subjects`` (the mean of its correlations with each
participant's RDM: the number the noise ceiling bounds).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> truth = rng.normal(size=(12, 3))
>>> true_rdm = np.linalg.norm(truth[:, None] - truth[None], axis=-1)
>>> subjects = np.stack([true_rdm + rng.normal(scale=0.5, size=true_rdm.shape) for _ in range(6)])
>>> subjects = (subjects + subjects.transpose(0, 2, 1)) / 2
>>> subjects[:, np.arange(12), np.arange(12)] = 0
>>> ceiling = noise_ceiling(subjects)
>>> bool(ceiling["lower"] <= subject_correlations(true_rdm, subjects).mean() <= ceiling["upper"])
True
>>> round(kendall_tau_a([1, 2, 3, 4], [1, 3, 2, 4]), 3)
0.667
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from stimuli.contracts.errors import InputError
from stimuli.contracts.rdm import check_rdm

__all__ = [
    "METHODS",
    "upper",
    "kendall_tau_a",
    "correlate_vectors",
    "rdm_correlation",
    "subject_correlations",
    "noise_ceiling",
    "permutation_test",
    "check_method",
    "row_correlations",
    "subject_stack",
]

METHODS = ("spearman", "kendall_a", "pearson")  # the correlations an RSA can use


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else an InputError naming them.

    Parameters
    ----------
    method : str
        The correlation asked for, by its name in :data:`METHODS` (e.g. ``spearman``).

    Returns
    -------
    str
        ``method``.

    Examples
    --------
    >>> check_method("kendall_a")
    'kendall_a'
    """
    if method in METHODS:
        return method
    raise InputError(f"unknown RSA correlation '{method}' (choose {', '.join(METHODS)})")


def upper(rdm: Any) -> np.ndarray:
    """The upper triangle (above the diagonal) of one RDM (N, N) -> (M,), or of a stack (K, N, N) -> (K, M).

    Parameters
    ----------
    rdm : array_like
        (N, N) or (K, N, N).

    Returns
    -------
    numpy.ndarray
        (M,) or (K, M), M = N (N - 1) / 2.
    """
    array = np.asarray(rdm, dtype=np.float64)
    n = array.shape[-1]
    rows, cols = np.triu_indices(n, 1)
    return array[..., rows, cols]


def kendall_tau_a(x: Any, y: Any) -> float:
    """Kendall's tau-a: (concordant - discordant pairs) / all pairs; ties count as neither.

    From scipy's tau-b (O(n log n)), whose denominator leaves out the pairs tied in x or in
    y: ``tau_a = tau_b * sqrt((n0 - n1) (n0 - n2)) / n0``. NaN when x or y is constant.

    Parameters
    ----------
    x, y : array_like
        Two vectors of one length.

    Returns
    -------
    float
        Tau-a.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    if n < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    n0 = n * (n - 1) / 2

    def tied(values: np.ndarray) -> float:
        counts = np.unique(values, return_counts=True)[1].astype(np.float64)
        return float((counts * (counts - 1) / 2).sum())

    tau_b = stats.kendalltau(x, y, variant="b").statistic
    # concordant minus discordant pairs is a whole number: round away the float error of the sqrt
    return float(np.rint(tau_b * np.sqrt((n0 - tied(x)) * (n0 - tied(y)))) / n0)


def correlate_vectors(x: Any, y: Any, method: str = "spearman") -> float:
    """Correlation of two vectors over the entries finite in both (NaN if fewer than 3 or constant).

    Parameters
    ----------
    x, y : array_like
        Two vectors of one length.
    method : str
        ``spearman``, ``kendall_a`` or ``pearson``.

    Returns
    -------
    float
        The correlation.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if method == "kendall_a":
        return kendall_tau_a(x, y)
    if method == "spearman":
        x, y = stats.rankdata(x), stats.rankdata(y)
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def row_correlations(rows: np.ndarray, target: np.ndarray, method: str) -> np.ndarray:
    """Correlation of each row of ``rows`` (K, M) with ``target`` (M,), pairwise complete.

    Parameters
    ----------
    rows : numpy.ndarray
        (K, M) vectors (e.g. upper triangles of K RDMs).
    target : numpy.ndarray
        (M,) vector; its NaN entries are left out.
    method : str
        ``spearman``, ``kendall_a`` or ``pearson``.

    Returns
    -------
    numpy.ndarray
        (K,) correlations (NaN where undefined).
    """
    rows = np.atleast_2d(rows)
    keep = np.isfinite(target)
    if method == "kendall_a" or not np.isfinite(rows[:, keep]).all():
        return np.array([correlate_vectors(r, target, method) for r in rows])
    x, y = rows[:, keep], target[keep]
    if method == "spearman":
        x, y = stats.rankdata(x, axis=1), stats.rankdata(y)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean()
    norm = np.sqrt((x * x).sum(axis=1) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x @ y) / norm
    r[(norm == 0) | (keep.sum() < 3)] = np.nan
    return np.clip(r, -1.0, 1.0)


def rdm_correlation(a: Any, b: Any, method: str = "spearman") -> float:
    """Correlation of two RDMs' upper triangles (pairs that are NaN in either are left out).

    Parameters
    ----------
    a, b : array_like
        Two (N, N) RDMs over the same stimuli.
    method : str
        As for :func:`correlate_vectors`.

    Returns
    -------
    float
        The correlation.
    """
    check_method(method)
    a = check_rdm(a, "first RDM", allow_nan=True)
    b = check_rdm(b, "second RDM", allow_nan=True)
    if a.shape != b.shape:
        raise InputError(f"RDMs of {a.shape[0]} and {b.shape[0]} stimuli cannot be compared")
    return correlate_vectors(upper(a), upper(b), method)


def subject_stack(subjects: Any, name: str = "subject RDMs") -> np.ndarray:
    """Participants' RDMs as a checked (P, N, N) float64 stack (NaN pairs allowed).

    Parameters
    ----------
    subjects : array_like
        (P, N, N) RDMs.
    name : str
        What they are, for messages.

    Returns
    -------
    numpy.ndarray
        The stack.
    """
    stack = np.asarray(subjects, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise InputError(f"{name} must be a stack (P, N, N), got shape {stack.shape}")
    for i, rdm in enumerate(stack):
        check_rdm(rdm, f"{name}[{i}]", allow_nan=True)
    return stack


def subject_correlations(model: Any, subjects: Any, method: str = "spearman") -> np.ndarray:
    """The model RDM's correlation with each participant's RDM (P,).

    Parameters
    ----------
    model : array_like
        The (N, N) model RDM.
    subjects : array_like
        (P, N, N) participants' RDMs.
    method : str
        As for :func:`correlate_vectors`.

    Returns
    -------
    numpy.ndarray
        (P,) correlations.
    """
    check_method(method)
    stack = subject_stack(subjects)
    model = check_rdm(model, "model RDM")
    if model.shape != stack.shape[1:]:
        raise InputError(f"model RDM is {model.shape}, the participants' RDMs are {stack.shape[1:]}")
    return np.array([correlate_vectors(upper(model), v, method) for v in upper(stack)])


def _nan_rank(vectors: np.ndarray) -> np.ndarray:
    """Each row ranked over its finite entries (NaN stays NaN)."""
    out = np.full(vectors.shape, np.nan)
    for i, v in enumerate(vectors):
        keep = np.isfinite(v)
        out[i, keep] = stats.rankdata(v[keep])
    return out


def _nan_zscore(vectors: np.ndarray) -> np.ndarray:
    """Each row z-scored over its finite entries (NaN stays NaN; a constant row becomes 0)."""
    out = np.full(vectors.shape, np.nan)
    for i, v in enumerate(vectors):
        keep = np.isfinite(v)
        if keep.any():
            sd = v[keep].std()
            out[i, keep] = (v[keep] - v[keep].mean()) / sd if sd > 0 else 0.0
    return out


def _normalised_for(method: str, vectors: np.ndarray) -> np.ndarray:
    """Participants' RDM vectors in the form whose mean best estimates the true RDM (Nili et al.
    2014): ranks for the rank correlations, z-scores for Pearson (raw means would weight
    participants who use a wider range of dissimilarities more)."""
    return _nan_rank(vectors) if method in ("spearman", "kendall_a") else _nan_zscore(vectors)


def noise_ceiling(subjects: Any, method: str = "spearman") -> dict[str, float]:
    """Lower and upper bounds on the mean correlation any model can reach with the participants.

    ``upper``: the mean correlation of each participant's RDM with the mean RDM of all
    participants (it includes their own data: an overestimate of the true model's);
    ``lower``: with the mean of the other participants (leave one subject out: an
    underestimate). The mean is over ranked RDMs for ``spearman`` and ``kendall_a`` and over
    z-scored RDMs for ``pearson`` (Nili et al., 2014). Needs at least 2 participants.

    Parameters
    ----------
    subjects : array_like
        (P, N, N) participants' RDMs.
    method : str
        As for :func:`correlate_vectors` (it also sets how RDMs are averaged).

    Returns
    -------
    dict of str to float
        ``lower`` and ``upper``.
    """
    check_method(method)
    stack = subject_stack(subjects)
    if len(stack) < 2:
        raise InputError(f"a noise ceiling needs at least 2 participants, got {len(stack)}")
    vectors = upper(stack)
    averaged = _normalised_for(method, vectors)
    with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
        quiet.filter(RuntimeWarning)
        everyone = np.nanmean(averaged, axis=0)
        upper_r = [correlate_vectors(v, everyone, method) for v in vectors]
        lower_r = [correlate_vectors(v, np.nanmean(np.delete(averaged, i, axis=0), axis=0), method)
                   for i, v in enumerate(vectors)]
    return {"lower": float(np.nanmean(lower_r)), "upper": float(np.nanmean(upper_r)),
            "n_subjects": int(len(stack)), "method": method}


def permutation_test(model: Any, human: Any, *, n: int = 1000, seed: int = 0,
                     method: str = "spearman") -> dict[str, Any]:
    """One-sided test of a positive relation: the model RDM's stimulus labels permuted ``n`` times.

    Returns ``observed``, ``p`` = (1 + #null >= observed) / (1 + n), ``null_mean``, ``null_q95``
    and the ``null`` draws.

    Parameters
    ----------
    model, human : array_like
        Two (N, N) RDMs; the model's stimulus labels are permuted.
    n : int
        Permutations.
    seed : int
        Their seed.
    method : str
        As for :func:`correlate_vectors`.

    Returns
    -------
    dict
        ``observed``, ``p``, ``null_mean``, ``null_q95`` and the null draws.
    """
    check_method(method)
    model = check_rdm(model, "model RDM")
    human = check_rdm(human, "human RDM", allow_nan=True)
    if model.shape != human.shape:
        raise InputError(f"model RDM is {model.shape}, the human RDM {human.shape}")
    if n < 1:
        raise InputError(f"a permutation test needs at least 1 permutation, got {n}")
    target = upper(human)
    observed = correlate_vectors(upper(model), target, method)
    rng = np.random.default_rng(seed)
    size = len(model)
    orders = np.stack([rng.permutation(size) for _ in range(n)])  # (n, N) relabellings
    rows, cols = np.triu_indices(size, 1)
    permuted = model[orders[:, rows], orders[:, cols]]  # (n, M): each relabelled model's upper triangle
    null = row_correlations(permuted, target, method)
    valid = null[np.isfinite(null)]
    p = (1 + int((valid >= observed).sum())) / (1 + len(valid)) if np.isfinite(observed) and len(valid) else np.nan
    return {"observed": observed, "p": p, "null_mean": float(valid.mean()) if len(valid) else np.nan,
            "null_q95": float(np.quantile(valid, 0.95)) if len(valid) else np.nan, "n": int(n), "null": null}


