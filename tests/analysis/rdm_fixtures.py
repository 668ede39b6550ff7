"""Small RDM fixtures for the RSA tests (a plain helper module next to them)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform


def rdm_of(points: np.ndarray) -> np.ndarray:
    return squareform(pdist(points))


def noisy_subjects(truth: np.ndarray, people: int, sd: float, rng) -> np.ndarray:
    out = []
    for _ in range(people):
        noise = rng.normal(scale=sd, size=truth.shape)
        rdm = truth + (noise + noise.T) / 2
        np.fill_diagonal(rdm, 0)
        out.append(rdm)
    return np.stack(out)
