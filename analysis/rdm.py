"""Human RDMs from similarity judgements (the trial files of ``paradigm: similarity``).

A trial file's main, answered rows (:data:`stimuli.contracts.trials.SIMILARITY_COLUMNS`) give:

* from **triplets** (odd one out): the two faces not chosen were judged alike. The
  ``probability`` RDM is, for each pair, the proportion of the triplets holding both in which
  they were *not* chosen together (1 - together / co-occurrences): 0 for a pair always put
  together, 1 for one never put together, NaN for a pair never shown together. The
  ``embedding`` RDM instead fits points to all triplets (:func:`fit_triplet_embedding`: the
  pair chosen together is the closest, with softmax choice probabilities over the three
  pairs' squared distances) and takes their distances;
* from **ratings** (1 very dissimilar ... 7 very similar): ``(7 - mean rating) / 6``.

:func:`analysis.readers.load_human_rdms` builds one RDM per participant (all of their sessions pooled) and
the group RDM (the mean of the participants' RDMs). :func:`split_half_reliability` says how
reproducible they are: random halves of each participant's trials, and of the participants,
correlated and Spearman-Brown corrected.

Examples
--------
>>> table = pd.DataFrame({"condition": "triplet", "stimulus_1": ["a", "a", "b"],
...                       "stimulus_2": ["b", "b", "c"], "stimulus_3": ["c", "c", "a"],
...                       "response": ["c", "a", "c"]})
>>> triplet_rdm(table, ["a", "b", "c"]).round(2)   # a-b alike in 2 of 3 triplets, a-c in none
array([[0.  , 0.33, 1.  ],
       [0.33, 0.  , 0.67],
       [1.  , 0.67, 0.  ]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, sparse
from scipy.spatial.distance import pdist, squareform
from threadpoolctl import threadpool_limits

from stimuli.contracts.errors import InputError

from .reliability import fisher_mean, spearman_brown
from .rsa import correlate_vectors, upper

__all__ = ["RDM_METHODS", "RATING_SCALE", "triplet_counts", "triplet_rdm", "rating_rdm", "fit_triplet_embedding",
           "embedding_rdm", "human_rdm", "HumanRDMs", "split_half_reliability"]

RDM_METHODS = ("probability", "embedding")
RATING_SCALE = 7


def _indices(table: pd.DataFrame, columns: Sequence[str], ids: Sequence[str]) -> np.ndarray:
    index = {s: i for i, s in enumerate(ids)}
    unknown = sorted({s for c in columns for s in table[c] if s not in index})
    if unknown:
        raise InputError(f"face '{unknown[0]}' of the trials is not among the {len(ids)} faces of the RDM")
    return np.array([[index[s] for s in table[c]] for c in columns], dtype=np.int64).T.reshape(-1, len(columns))


def _odd_last(table: pd.DataFrame, ids: Sequence[str]) -> np.ndarray:
    """(T, 3) item indices of each triplet: the pair judged alike first, the odd one out last."""
    faces = _indices(table, ["stimulus_1", "stimulus_2", "stimulus_3"], ids)
    odd = faces[np.arange(len(faces)), table[["stimulus_1", "stimulus_2", "stimulus_3"]]
                .eq(table.response, axis=0).to_numpy().argmax(axis=1)]
    rest = np.sort(np.where(faces == odd[:, None], -1, faces), axis=1)[:, 1:]
    return np.column_stack([rest, odd])


def triplet_counts(table: pd.DataFrame, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(together, shown): how often each pair was chosen as alike / shown in one triplet (N, N).

    Parameters
    ----------
    table : pandas.DataFrame
        Answered triplet rows (``stimulus_1..3``, ``response``).
    ids : sequence of str
        The faces, in RDM order.

    Returns
    -------
    together, shown : numpy.ndarray
        (N, N) symmetric counts.
    """
    triplets = _odd_last(table[table.condition == "triplet"], ids) if len(table) else np.empty((0, 3), int)
    n = len(ids)
    together = np.zeros((n, n))
    shown = np.zeros((n, n))
    np.add.at(together, (triplets[:, 0], triplets[:, 1]), 1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        np.add.at(shown, (triplets[:, a], triplets[:, b]), 1)
    return together + together.T, shown + shown.T


def triplet_rdm(table: pd.DataFrame, ids: Sequence[str]) -> np.ndarray:
    """1 - P(chosen together | shown together) for each pair; NaN for pairs never shown together.

    Parameters
    ----------
    table : pandas.DataFrame
        Answered triplet rows.
    ids : sequence of str
        The faces, in RDM order.

    Returns
    -------
    numpy.ndarray
        The (N, N) RDM.
    """
    together, shown = triplet_counts(table, ids)
    with np.errstate(invalid="ignore", divide="ignore"):
        rdm = np.where(shown > 0, 1.0 - together / shown, np.nan)
    np.fill_diagonal(rdm, 0.0)
    return rdm


def rating_rdm(table: pd.DataFrame, ids: Sequence[str]) -> np.ndarray:
    """(7 - mean rating) / 6 for each pair (either screen order); NaN for pairs never rated.

    Parameters
    ----------
    table : pandas.DataFrame
        Answered rating rows (``stimulus_1``, ``stimulus_2``, ``response`` 1..7).
    ids
        As for :func:`triplet_rdm`.

    Returns
    -------
    numpy.ndarray
        The (N, N) RDM.
    """
    rated = table[table.condition == "rating"]
    pairs = _indices(rated, ["stimulus_1", "stimulus_2"], ids) if len(rated) else np.empty((0, 2), int)
    values = pd.to_numeric(rated.response).to_numpy(np.float64) if len(rated) else np.empty(0)
    n = len(ids)
    total, count = np.zeros((n, n)), np.zeros((n, n))
    np.add.at(total, (pairs[:, 0], pairs[:, 1]), values)
    np.add.at(count, (pairs[:, 0], pairs[:, 1]), 1)
    total, count = total + total.T, count + count.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rdm = np.where(count > 0, (RATING_SCALE - total / count) / (RATING_SCALE - 1), np.nan)
    np.fill_diagonal(rdm, 0.0)
    return rdm


def fit_triplet_embedding(triplets: np.ndarray, n: int, *, dims: int = 5, l2: float = 1e-3,
                          seed: int = 0) -> np.ndarray:
    """Points (n, dims) that explain odd-one-out choices (rows: alike pair first, odd one last).

    Maximises the choice likelihood ``P(pair ij alike) = softmax(-[d_ij, d_ik, d_jk])`` with
    squared Euclidean distances d, plus an L2 penalty ``l2 * sum(X**2)`` (L-BFGS from a small
    seeded start). Distances are identified only up to rotation and, weakly, scale.

    Parameters
    ----------
    triplets : numpy.ndarray
        (T, 3) item indices, the pair judged alike first.
    n : int
        Items.
    dims : int
        Dimensions of the embedding.
    l2 : float
        Weight of the L2 penalty on the points.
    seed : int
        Seed of the starting points.

    Returns
    -------
    numpy.ndarray
        (n, dims) points.
    """
    triplets = np.asarray(triplets, dtype=np.int64)
    if triplets.ndim != 2 or triplets.shape[1] != 3 or not len(triplets):
        raise InputError("an embedding needs at least one triplet (rows of 3 item indices)")
    count = len(triplets)
    i, j, k = triplets.T
    # signed incidence of the 3 pairs of every triplet: differences = incidence.T @ x, and
    # the gradient flows back through incidence @ (per-pair gradient)
    heads, tails = np.concatenate([i, i, j]), np.concatenate([j, k, k])
    columns = np.arange(3 * count)
    incidence = sparse.csr_matrix((np.r_[np.ones(3 * count), -np.ones(3 * count)],
                                   (np.r_[heads, tails], np.r_[columns, columns])), shape=(n, 3 * count))
    start = np.random.default_rng(seed).normal(scale=0.1, size=(n, dims))

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(n, dims)
        diff = incidence.T @ x  # (3T, D): x_i - x_j, x_i - x_k, x_j - x_k
        d = (diff * diff).sum(axis=1).reshape(3, count).T  # (T, 3) squared distances
        z = -d - (-d).max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        value = -log_p[:, 0].sum() + l2 * (x * x).sum()
        # d(-log p_0) / d d_m = [m == 0] - p_m
        w = -np.exp(log_p)
        w[:, 0] += 1.0
        grad = incidence @ (2 * w.T.reshape(-1, 1) * diff)
        return float(value), (grad + 2 * l2 * x).ravel()

    # one BLAS thread: L-BFGS's small products only slow down on a pool competing for busy cores
    with threadpool_limits(limits=1, user_api="blas"):
        result = optimize.minimize(loss, start.ravel(), jac=True, method="L-BFGS-B",
                                   options={"maxiter": 1000, "ftol": 1e-7})
    return result.x.reshape(n, dims)


def embedding_rdm(points: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances between the rows of an embedding (N, D) as an RDM.

    Parameters
    ----------
    points : numpy.ndarray
        (N, D) points.
    metric : str
        A :func:`scipy.spatial.distance.pdist` metric.

    Returns
    -------
    numpy.ndarray
        The (N, N) distances, zero on the diagonal.

    Examples
    --------
    >>> embedding_rdm(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    return squareform(pdist(np.asarray(points, dtype=np.float64), metric=metric))


def human_rdm(table: pd.DataFrame, ids: Sequence[str], method: str = "probability", *,
              dims: int = 5, seed: int = 0) -> np.ndarray:
    """One RDM from one participant's (or a pooled) table of one judgement.

    Parameters
    ----------
    table : pandas.DataFrame
        Answered rows of one judgement (triplet or rating).
    ids : sequence of str
        The faces, in RDM order.
    method : str
        ``probability`` or ``embedding`` (triplets).
    dims : int
        Dimensions of a fitted embedding.
    seed : int
        Seed of the embedding fit.

    Returns
    -------
    numpy.ndarray
        The (N, N) RDM.
    """
    if method not in RDM_METHODS:
        raise InputError(f"unknown human RDM method '{method}' (choose {', '.join(RDM_METHODS)})")
    conditions = set(table.condition)
    if len(conditions) > 1:
        raise InputError(f"trials mix judgements ({', '.join(sorted(conditions))}); analyse each on its own")
    if conditions == {"rating"}:
        return rating_rdm(table, ids)
    if method == "probability" or not len(table):
        return triplet_rdm(table, ids)
    return embedding_rdm(fit_triplet_embedding(_odd_last(table, ids), len(ids), dims=dims, seed=seed))


@dataclass
class HumanRDMs:
    """The participants' RDMs of one judgement over the same faces, and their mean.

    Parameters
    ----------
    ids : list of str
        The faces, in RDM order.
    participants : list of str
        The participants, in order.
    subjects : numpy.ndarray
        (P, N, N) their RDMs.
    judgement : str
        ``triplet`` or ``rating``.
    method : str
        How the RDMs were built.
    trials : dict of str to int
        participant -> answered trials used.
    files : list of str
        The trial files read.
    tables : dict of str to pandas.DataFrame
        participant -> their rows.
    """

    ids: list[str]
    participants: list[str]
    subjects: np.ndarray  # (P, N, N)
    judgement: str
    method: str
    trials: dict[str, int]  # participant -> main trials answered
    files: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def group(self) -> np.ndarray:
        """The group RDM: the mean of the participants' RDMs (pairs a participant lacks are skipped)."""
        with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
            quiet.filter(RuntimeWarning)
            return np.nanmean(self.subjects, axis=0)


def _halves_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return correlate_vectors(upper(a), upper(b), "spearman")


def split_half_reliability(rdms: HumanRDMs, *, n_splits: int = 50, seed: int = 0, dims: int = 5) -> pd.DataFrame:
    """Split-half reliability (Spearman between halves, Spearman-Brown corrected).

    One row per participant (random halves of their trials) and one ``group`` row (random
    halves of the participants, each half's mean RDM; needs 2+ participants). Columns:
    ``unit``, ``r_half`` (Fisher-z mean over splits), ``reliability``, ``n_splits``, ``n``.

    Parameters
    ----------
    rdms : HumanRDMs
        The participants' RDMs and tables.
    n_splits : int
        Random halvings.
    seed : int
        Seed of the halvings.
    dims : int
        Dimensions of a fitted embedding.

    Returns
    -------
    pandas.DataFrame
        One row per participant and one ``group`` row.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for participant in rdms.participants:
        table = rdms.tables[participant]
        values = []
        for _ in range(n_splits):
            order = rng.permutation(len(table))
            half = len(table) // 2
            a = human_rdm(table.iloc[order[:half]], rdms.ids, rdms.method, dims=dims, seed=seed)
            b = human_rdm(table.iloc[order[half:2 * half]], rdms.ids, rdms.method, dims=dims, seed=seed)
            values.append(_halves_correlation(a, b))
        r = fisher_mean(values)
        rows.append({"unit": participant, "r_half": r, "reliability": spearman_brown(r) if np.isfinite(r) else np.nan,
                     "n_splits": n_splits, "n": len(table)})
    people = len(rdms.participants)
    if people >= 2:
        values = []
        with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
            quiet.filter(RuntimeWarning)
            for _ in range(n_splits):
                order = rng.permutation(people)
                half = people // 2
                values.append(_halves_correlation(np.nanmean(rdms.subjects[order[:half]], axis=0),
                                                  np.nanmean(rdms.subjects[order[half:2 * half]], axis=0)))
        r = fisher_mean(values)
        rows.append({"unit": "group", "r_half": r,
                     "reliability": spearman_brown(r, people / (people // 2)) if np.isfinite(r) else np.nan,
                     "n_splits": n_splits, "n": people})
    return pd.DataFrame(rows)
