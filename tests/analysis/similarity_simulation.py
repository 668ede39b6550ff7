"""Simulated similarity studies for the recovery and null checks (a uniquely named helper module).

The observers are the task's own :class:`experiments.similarity.EmbeddingObserver` on the
task's own designs (:func:`experiments.similarity.balanced_triplets`), without session files,
so that hundreds of studies run in seconds; the analysis is :mod:`analysis.rdm` and
:mod:`analysis.rsa` exactly as the report runs it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.rdm import embedding_rdm, human_rdm
from analysis.rsa import noise_ceiling, permutation_test, rdm_correlation, subject_correlations
from experiments.observers import EmbeddingObserver, scaled_distances
from experiments.sequence import derive_seed
from experiments.similarity_design import balanced_triplets


def simulate_tables(embedding: np.ndarray, observers: int, trials: int, noise_sd: float, seed: int) -> list[pd.DataFrame]:
    """Each simulated observer's main triplet trials (trial-file columns) on a known embedding."""
    n = len(embedding)
    ids = [f"f{i:03d}" for i in range(n)]
    distances = scaled_distances(embedding, "euclidean")
    tables = []
    for k in range(observers):
        session = derive_seed(seed, "observer", k)
        design = balanced_triplets(n, trials, np.random.default_rng(derive_seed(session, "plan")))
        observer = EmbeddingObserver(distances, ids, noise_sd=noise_sd, seed=session)
        odd = [observer.judge("triplet", list(t), i + 1) for i, t in enumerate(design)]
        tables.append(pd.DataFrame({
            "condition": "triplet", "stimulus_1": [ids[t[0]] for t in design], "stimulus_2": [ids[t[1]] for t in design],
            "stimulus_3": [ids[t[2]] for t in design], "response": [ids[t[o]] for t, o in zip(design, odd)]}))
    return tables


def subject_rdms(tables: list[pd.DataFrame], n: int, method: str, dims: int = 5) -> np.ndarray:
    ids = [f"f{i:03d}" for i in range(n)]
    return np.stack([human_rdm(t, ids, method, dims=dims) for t in tables])


def recovery(n: int = 20, observers: int = 10, trials: int = 300, noise_sd: float = 0.1, dims: int = 5,
             method: str = "embedding", seed: int = 0) -> dict[str, float]:
    """RSA of a known embedding's RDM with the group RDM of observers built on it, and the ceiling."""
    embedding = np.random.default_rng(seed).standard_normal((n, dims))
    subjects = subject_rdms(simulate_tables(embedding, observers, trials, noise_sd, seed), n, method, dims)
    truth = embedding_rdm(embedding)
    with np.errstate(invalid="ignore"):
        group = np.nanmean(subjects, axis=0)
    ceiling = noise_ceiling(subjects)
    return {"rsa_group": rdm_correlation(truth, group), "rsa_subjects": float(subject_correlations(truth, subjects).mean()),
            "ceiling_lower": ceiling["lower"], "ceiling_upper": ceiling["upper"]}


def null_p_value(run: int, n: int = 20, observers: int = 10, trials: int = 300, noise_sd: float = 0.1,
                 dims: int = 5, permutations: int = 1000, method: str = "probability", seed: int = 0) -> float:
    """Permutation p-value of RSA between a group RDM (observers on embedding A) and the RDM of an
    unrelated random embedding B, for simulated study ``run`` of the study seeded ``seed``."""
    rng = np.random.default_rng(derive_seed(seed, "null", run))
    a, b = rng.standard_normal((n, dims)), rng.standard_normal((n, dims))
    subjects = subject_rdms(simulate_tables(a, observers, trials, noise_sd, derive_seed(seed, "run", run)), n,
                            method, dims)
    with np.errstate(invalid="ignore"):
        group = np.nanmean(subjects, axis=0)
    return permutation_test(embedding_rdm(b), group, n=permutations, seed=derive_seed(seed, "perm", run))["p"]


def null_p_values(runs: int = 200, **settings) -> np.ndarray:
    """:func:`null_p_value` of runs 0 .. ``runs`` - 1 (each run is seeded on its own, so any subset
    of runs can be computed apart, e.g. in parallel, and gives the same p-values)."""
    return np.array([null_p_value(run, **settings) for run in range(runs)])
