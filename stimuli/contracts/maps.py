"""Maps on the stimulus grid: validation and the two ground-truth localisation metrics.

``model`` (the explain helper's ground-truth check) and ``analysis`` (map comparisons) both
need these, and ``model`` must not import ``analysis``, so they live here; ``analysis.metrics``
re-exports them.

Both metrics follow Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark dataset for the
ground truth evaluation of neural network explanations", Information Fusion 81:14-40, as
implemented in Quantus (``RelevanceMassAccuracy``, ``RelevanceRankAccuracy``):

* relevance mass accuracy = (positive relevance inside the ground-truth mask) /
  (positive relevance everywhere): how much of the evidence falls on the region;
* relevance rank accuracy = |top-K pixels by relevance  intersect  ground truth| / K with
  K = the mask's pixel count: whether the most relevant pixels are the region's.

Examples
--------
>>> relevance = np.zeros((4, 4)); relevance[0, :2] = [3.0, 1.0]; relevance[3, 3] = 4.0
>>> truth = np.zeros((4, 4), bool); truth[0, :2] = True
>>> relevance_mass_accuracy(relevance, truth), relevance_rank_accuracy(relevance, truth)
(0.5, 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["check_map", "check_mask", "relevance_mass_accuracy", "relevance_rank_accuracy"]


def check_map(values: Any, name: str = "map", shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A finite 2D float64 map, or an InputError naming ``name`` and the problem.

    Parameters
    ----------
    values : array-like
        The map.
    name : str
        What the map is, for the error message.
    shape : tuple of int, optional
        The shape it must have (any 2D shape when None).

    Returns
    -------
    numpy.ndarray
        ``values`` as a float64 (H, W) array.

    Examples
    --------
    >>> check_map([[1, 2], [3, 4]]).dtype
    dtype('float64')
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2D (H, W) map, got shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise InputError(f"{name} has shape {array.shape}, expected {tuple(shape)}")
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"{name} contains {int(bad.sum())} NaN or infinite value(s) "
                         f"(first at row {row}, col {col})")
    return array


def check_mask(values: Any, name: str = "mask", shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A 2D boolean mask (0/1 or bool), or an InputError.

    Parameters
    ----------
    values : array-like
        The mask: booleans or 0/1 values.
    name, shape
        As for :func:`check_map`.

    Returns
    -------
    numpy.ndarray
        The mask as a boolean (H, W) array.

    Examples
    --------
    >>> check_mask([[0, 1], [1, 0]]).sum()
    np.int64(2)
    """
    array = np.asarray(values)
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2D (H, W) mask, got shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise InputError(f"{name} has shape {array.shape}, expected {tuple(shape)}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise InputError(f"{name} must hold only 0/1 or True/False")
        array = array.astype(bool)
    return array


def relevance_mass_accuracy(relevance: Any, ground_truth: Any) -> float:
    """Share of the positive relevance that lies inside the ground-truth mask, in [0, 1].

    NaN when the mask is empty or there is no positive relevance at all.

    Parameters
    ----------
    relevance : array-like
        The (H, W) relevance map.
    ground_truth : array-like
        The (H, W) ground-truth mask, same shape.

    Returns
    -------
    float
        Positive relevance inside the mask over positive relevance everywhere.
    """
    values = check_map(relevance, "relevance")
    truth = check_mask(ground_truth, "ground-truth mask", values.shape)
    positive = np.clip(values, 0.0, None)
    total = float(positive.sum())
    if not truth.any() or total <= 0:
        return float("nan")
    return float(positive[truth].sum()) / total


def relevance_rank_accuracy(relevance: Any, ground_truth: Any) -> float:
    """Share of the K most relevant pixels that lie in the mask (K = mask size), in [0, 1].

    Ties are broken by pixel order (row-major), so the result is deterministic. NaN when
    the mask is empty.

    Parameters
    ----------
    relevance, ground_truth : array-like
        As for :func:`relevance_mass_accuracy`.

    Returns
    -------
    float
        |top-K pixels by relevance intersect mask| / K.
    """
    values = check_map(relevance, "relevance")
    truth = check_mask(ground_truth, "ground-truth mask", values.shape)
    k = int(truth.sum())
    if k == 0:
        return float("nan")
    top = np.argsort(-values.ravel(), kind="stable")[:k]
    return float(truth.ravel()[top].sum()) / k
