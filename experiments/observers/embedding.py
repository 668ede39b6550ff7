"""The embedding observer: similarity judgements from distances between faces, plus noise.

The similarity task's screenless observers (``--observer simulated`` and ``model:VARIANT``,
built by :meth:`experiments.similarity.SimilarityTask.make_observer`) are this one observer on
two kinds of coordinates: a known embedding (:func:`load_embedding`, or drawn from a seed) or
a layer's activations of a trained variant. Distances are scaled to a largest distance of 1
(:func:`scaled_distances`); Gaussian noise (``noise_sd`` per pair and trial, drawn from
``derive_seed(seed, "observer", trial)``) is added, then the pair with the smallest noisy
distance is chosen together (triplet), or the rating is ``1 + 6 (1 - d)`` rounded into 1..7.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform

from stimuli.contracts.errors import InputError

from ..sequence import derive_seed
from ..task import Response, Trial
from .base import Observer

__all__ = ["EmbeddingObserver", "RATING_SCALE", "load_embedding", "scaled_distances"]

RATING_SCALE = 7  # ratings run from 1 (very dissimilar) to 7 (very similar)


def load_embedding(path: str | os.PathLike, ids: Sequence[str]) -> np.ndarray:
    """An embedding file -> (len(ids), D) float64 rows in the order of ``ids``.

    CSV: a ``stimulus_id`` column and one numeric column per dimension. NPZ: ``embedding``
    (N, D) and ``stimulus_id`` (N,). Every face of ``ids`` needs a row.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV or NPZ file.
    ids : sequence of str
        The judged faces, in the order wanted.

    Returns
    -------
    (len(ids), D) float64 array
        One row of coordinates per face.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: embedding file not found")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "embedding" not in data.files or "stimulus_id" not in data.files:
                    raise InputError(f"{path}: an embedding NPZ needs arrays 'embedding' and 'stimulus_id'")
                values, names = data["embedding"].astype(np.float64), data["stimulus_id"].astype(str)
        else:
            table = pd.read_csv(path)
            if "stimulus_id" not in table.columns or table.shape[1] < 2:
                raise InputError(f"{path}: an embedding CSV needs a 'stimulus_id' column and one column per dimension")
            names = table.stimulus_id.astype(str).to_numpy()
            numeric = table.drop(columns="stimulus_id").apply(pd.to_numeric, errors="coerce")
            if numeric.isna().any().any():
                row = int(np.flatnonzero(numeric.isna().any(axis=1).to_numpy())[0]) + 2
                raise InputError(f"{path}, line {row}: a coordinate is missing or not a number")
            values = numeric.to_numpy(np.float64)
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: unreadable embedding ({error})") from None
    if values.ndim != 2 or len(values) != len(names):
        raise InputError(f"{path}: embedding must be (N, D) with one stimulus_id per row")
    if not np.isfinite(values).all():
        raise InputError(f"{path}: the embedding holds NaN or infinite values")
    index = {s: i for i, s in enumerate(names)}
    missing = [s for s in ids if s not in index]
    if missing:
        raise InputError(f"{path}: no row for face '{missing[0]}' ({len(missing)} of the judged faces missing)")
    return values[[index[s] for s in ids]]


def scaled_distances(features: np.ndarray, metric: str) -> np.ndarray:
    """(N, N) distances between rows, scaled so that the largest is 1 (constant rows: 1 apart).

    Parameters
    ----------
    features : (N, D) array
        One row per face (coordinates or a layer's activations).
    metric : str
        A :func:`scipy.spatial.distance.pdist` metric (euclidean, correlation, cosine).

    Returns
    -------
    (N, N) float64 array
        Symmetric distances in [0, 1], zero on the diagonal.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        distances = np.nan_to_num(squareform(pdist(np.asarray(features, np.float64), metric=metric)), nan=1.0)
    np.fill_diagonal(distances, 0.0)
    top = distances.max()
    return distances / top if top > 0 else distances


class EmbeddingObserver(Observer):
    """Judges similarity from distances between faces (scaled to a largest distance of 1) plus noise.

    Triplet: the pair with the smallest noisy distance is alike, the third face is the odd
    one out. Rating: ``round(1 + 6 (1 - d))`` clipped to 1..7. Each trial's noise (one draw
    per pair) comes from ``derive_seed(seed, "observer", trial)``: a resumed session gives
    the same answers.

    Parameters
    ----------
    distances : (N, N) array
        Scaled distances between the judged faces (:func:`scaled_distances`).
    ids : sequence of str
        The faces' stimulus ids, in the order of ``distances``.
    noise_sd : float
        Gaussian noise per pair and trial, in units of the largest distance.
    seed : int
        Session seed; each trial's noise comes from ``derive_seed(seed, "observer", trial)``.
    kind : str
        The observer's name in the sidecar (``simulated`` or ``model``).
    info : dict, optional
        What the sidecar records about its coordinates (embedding, variant, layer).

    Examples
    --------
    >>> points = np.array([[0.0], [0.1], [5.0]])
    >>> observer = EmbeddingObserver(scaled_distances(points, "euclidean"), ["a", "b", "c"], noise_sd=0.0)
    >>> trial = Trial(row={"trial": 1, "condition": "triplet", "stimulus_1": "c", "stimulus_2": "a",
    ...                    "stimulus_3": "b"}, images=[], choices={}, payload={"indices": [2, 0, 1]})
    >>> observer.respond([trial])[0].response
    'c'
    """

    kind = "simulated"

    def __init__(self, distances: np.ndarray, ids: Sequence[str], *, noise_sd: float = 0.1, seed: int = 0,
                 kind: str = "simulated", info: dict[str, Any] | None = None) -> None:
        self.distances = np.asarray(distances, dtype=np.float64)
        self.ids = list(ids)
        self.noise_sd = float(noise_sd)
        self.seed = int(seed)
        self.kind = kind
        self.info = dict(info or {})

    def _noise(self, trial: int, size: int) -> np.ndarray:
        if self.noise_sd == 0:
            return np.zeros(size)
        return self.noise_sd * np.random.default_rng(derive_seed(self.seed, "observer", trial)).standard_normal(size)

    def judge(self, condition: str, indices: Sequence[int], trial: int) -> int | str:
        """Triplet: the position (0, 1, 2) of the odd one out; rating: the rating as text."""
        d = self.distances
        if condition == "triplet":
            a, b, c = indices
            noisy = np.array([d[a, b], d[a, c], d[b, c]]) + self._noise(trial, 3)
            return (2, 1, 0)[int(np.argmin(noisy))]  # pair (a, b) alike -> c is odd, ...
        a, b = indices
        value = d[a, b] + self._noise(trial, 1)[0]
        return str(int(np.clip(np.rint(1 + (RATING_SCALE - 1) * (1 - value)), 1, RATING_SCALE)))

    def respond(self, trials: Sequence[Trial]) -> list[Response]:
        responses = []
        for trial in trials:
            condition = trial.row["condition"]
            answer = self.judge(condition, trial.payload["indices"], trial.number)
            if condition == "triplet":
                answer = str(trial.row[f"stimulus_{int(answer) + 1}"])
            responses.append(Response(str(answer)))
        return responses

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "noise_sd": self.noise_sd,
                "noise_seed": "derive_seed(session seed, 'observer', trial)",
                "decision": "triplet: the pair with the smallest noisy distance is alike, the third face is the "
                            "odd one out; rating: round(1 + 6 (1 - d)) in 1..7; distances scaled to a largest "
                            "distance of 1 (experiments.observers.EmbeddingObserver)",
                **self.info}
