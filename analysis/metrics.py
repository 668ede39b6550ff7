"""Comparing two maps on the stimulus grid (CIs, relevance maps, masks).

Every metric takes ``region=``: an optional boolean (H, W) mask (e.g. the face aperture)
that restricts the comparison to its pixels. Maps with NaN or infinite values are refused
with one clear message (:func:`stimuli.contracts.maps.check_map`).

* :func:`pearson`, :func:`spearman`: linear and rank correlation of pixel values;
* :func:`top_k_overlap`: Dice or IoU of the two maps' top-k% pixels;
* :func:`mass_inside`: share of a map's positive mass that falls inside a region;
* :func:`histogram_intersection`: ``sum min(p, q)`` of the maps as distributions;
* :func:`earth_movers_distance`: the work (pixels) to move one distribution onto the other;
* :func:`region_auc`: how well a map's values separate a region from the rest (ROC AUC);
* :func:`relevance_mass_accuracy`, :func:`relevance_rank_accuracy`: the ground-truth
  metrics of Arras et al. (2022), shared with ``model`` through :mod:`stimuli.contracts.maps`.

Examples
--------
>>> a = np.arange(16.0).reshape(4, 4)
>>> pearson(a, 2 * a + 1), spearman(a, a**3), top_k_overlap(a, -a, 25)
(1.0, 1.0, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, sparse, stats

from stimuli.contracts.errors import InputError
from stimuli.contracts.maps import (
    check_map,
    check_mask,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)

__all__ = [
    "pearson",
    "spearman",
    "top_k_mask",
    "top_k_overlap",
    "mass_inside",
    "histogram_intersection",
    "earth_movers_distance",
    "region_auc",
    "compare_maps",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
]

OVERLAP_MEASURES = ("dice", "iou")


def _region(region: Any, shape: tuple[int, ...]) -> np.ndarray:
    if region is None:
        return np.ones(shape, dtype=bool)
    mask = check_mask(region, "region", shape)
    if not mask.any():
        raise InputError("region is empty: no pixel to compare")
    return mask


def _pair(a: Any, b: Any, region: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = check_map(a, "first map")
    b = check_map(b, "second map", a.shape)
    return a, b, _region(region, a.shape)


def pearson(a: Any, b: Any, *, region: Any = None) -> float:
    """Pearson correlation of the pixel values (NaN when a map is constant).

    Parameters
    ----------
    a, b : array_like
        Two (H, W) maps on one grid.
    region : shape or bool array, optional
        Pixels compared (default: all).

    Returns
    -------
    float
        The correlation.
    """
    a, b, mask = _pair(a, b, region)
    x, y = a[mask], b[mask]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def spearman(a: Any, b: Any, *, region: Any = None) -> float:
    """Spearman rank correlation of the pixel values (ties get average ranks).

    Parameters
    ----------
    a, b, region
        As for :func:`pearson`; the pixels are ranked within ``region``.

    Returns
    -------
    float
        Spearman's rho (NaN when a map is constant).
    """
    a, b, mask = _pair(a, b, region)
    x, y = a[mask], b[mask]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.clip(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1], -1.0, 1.0))


def _check_percent(percent: float) -> float:
    percent = float(percent)
    if not 0 < percent <= 100:
        raise InputError(f"top-k percent must lie in (0, 100], got {percent!r}")
    return percent


def top_k_mask(a: Any, percent: float, *, region: Any = None) -> np.ndarray:
    """The ``percent``% highest pixels of ``a`` within ``region`` (at least one; ties by pixel order).

    Parameters
    ----------
    a : array_like
        The (H, W) map whose highest pixels are kept.
    percent : float
        Share of the region's pixels kept, in (0, 100].
    region : shape or bool array, optional
        The pixels ranked (default: all).

    Returns
    -------
    numpy.ndarray
        Boolean (H, W) mask of the top pixels.
    """
    a = check_map(a)
    mask = _region(region, a.shape)
    count = max(1, int(round(_check_percent(percent) / 100 * mask.sum())))
    inside = np.flatnonzero(mask.ravel())
    order = inside[np.argsort(-a.ravel()[inside], kind="stable")[:count]]
    top = np.zeros(a.size, dtype=bool)
    top[order] = True
    return top.reshape(a.shape)


def top_k_overlap(a: Any, b: Any, percent: float = 10.0, *, region: Any = None,
                  measure: str = "dice") -> float:
    """Dice (``2|A&B| / (|A|+|B|)``) or IoU (``|A&B| / |A|B|``) of the two maps' top-k% pixels.

    Parameters
    ----------
    a, b, region
        As for :func:`pearson`; each map's top pixels are taken within ``region``.
    percent : float
        Share of the region's pixels in each top set.
    measure : str
        ``dice`` or ``iou``.

    Returns
    -------
    float
        The overlap in [0, 1].
    """
    if measure not in OVERLAP_MEASURES:
        raise InputError(f"unknown overlap measure '{measure}' (choose {', '.join(OVERLAP_MEASURES)})")
    a, b, mask = _pair(a, b, region)
    top_a, top_b = top_k_mask(a, percent, region=mask), top_k_mask(b, percent, region=mask)
    both = int((top_a & top_b).sum())
    if measure == "dice":
        return 2 * both / int(top_a.sum() + top_b.sum())
    return both / int((top_a | top_b).sum())


def mass_inside(a: Any, inside: Any, *, region: Any = None, positive: bool = True) -> float:
    """Share of ``a``'s mass (positive part, or absolute values) inside the mask ``inside``.

    With ``region`` the total is taken over the region only. NaN when there is no mass.

    Parameters
    ----------
    a : array_like
        The (H, W) map whose mass is measured.
    inside : array_like
        Boolean (H, W) mask.
    region : shape or bool array, optional
        The pixels the total is taken over (default: all).
    positive : bool
        Use the positive part (else absolute values).

    Returns
    -------
    float
        The share in [0, 1], or NaN.
    """
    a = check_map(a)
    target = check_mask(inside, "inside mask", a.shape)
    mask = _region(region, a.shape)
    mass = np.clip(a, 0.0, None) if positive else np.abs(a)
    mass = np.where(mask, mass, 0.0)
    return relevance_mass_accuracy(mass, target & mask) if target.any() else float("nan")


def _distribution(a: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    mass = np.where(mask, np.clip(a, 0.0, None), 0.0)
    total = mass.sum()
    if total <= 0:
        raise InputError(f"{name} has no positive mass inside the region: it is not a distribution")
    return mass / total


def histogram_intersection(a: Any, b: Any, *, region: Any = None) -> float:
    """``sum min(p, q)`` of the maps' positive parts normalised to sum 1: 1 = same distribution.

    Parameters
    ----------
    a, b, region
        As for :func:`pearson`; each map's positive part is a distribution over ``region``.

    Returns
    -------
    float
        The intersection in [0, 1].
    """
    a, b, mask = _pair(a, b, region)
    return float(np.minimum(_distribution(a, mask, "first map"), _distribution(b, mask, "second map")).sum())


def _pool(p: np.ndarray, factor: int) -> np.ndarray:
    height, width = p.shape
    padded = np.zeros((math.ceil(height / factor) * factor, math.ceil(width / factor) * factor))
    padded[:height, :width] = p
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).sum(axis=(1, 3))


def earth_movers_distance(a: Any, b: Any, *, region: Any = None, max_size: int = 64) -> float:
    """Earth mover's distance (pixels) between the maps' positive parts as distributions.

    The ground distance is the city-block (L1) distance, so the EMD is the cheapest flow on
    the 4-neighbour pixel graph (each step costs one pixel), solved exactly as a linear
    programme. Grids larger than ``max_size`` are first pooled by an integer factor
    (mass-preserving block sums) and the result is scaled back to pixels: exact up to the
    pooling's resolution.

    Parameters
    ----------
    a, b, region
        As for :func:`histogram_intersection`.
    max_size : int
        Grids larger than this are pooled (block sums) to at most this size first.

    Returns
    -------
    float
        The distance in pixels of the original grid.

    Examples
    --------
    >>> p = np.zeros((5, 5)); q = np.zeros((5, 5)); p[0, 0] = 1; q[3, 4] = 1
    >>> round(earth_movers_distance(p, q), 6)
    7.0
    """
    a, b, mask = _pair(a, b, region)
    p, q = _distribution(a, mask, "first map"), _distribution(b, mask, "second map")
    factor = max(1, math.ceil(max(p.shape) / int(max_size)))
    if factor > 1:
        p, q = _pool(p, factor), _pool(q, factor)
    height, width = p.shape
    index = np.arange(height * width).reshape(height, width)
    pairs = np.concatenate([
        np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()]),
        np.column_stack([index[:-1, :].ravel(), index[1:, :].ravel()]),
    ])
    if len(pairs) == 0:  # a single pixel: nothing to move
        return 0.0
    arcs = np.concatenate([pairs, pairs[:, ::-1]])  # both directions
    n_arcs = len(arcs)
    # node balance: outflow - inflow = p - q
    balance = sparse.csr_matrix(
        (np.concatenate([np.ones(n_arcs), -np.ones(n_arcs)]),
         (np.concatenate([arcs[:, 0], arcs[:, 1]]), np.tile(np.arange(n_arcs), 2))),
        shape=(height * width, n_arcs))
    result = optimize.linprog(np.ones(n_arcs), A_eq=balance, b_eq=(p - q).ravel(),
                              bounds=(0, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"earth mover's distance: the flow problem failed ({result.message})")
    return float(result.fun) * factor


def region_auc(a: Any, inside: Any, *, region: Any = None) -> float:
    """ROC AUC of ``a``'s values for telling pixels inside ``inside`` from the other pixels.

    1 = every inside pixel is higher than every outside pixel, 0.5 = chance (ties count half).

    Parameters
    ----------
    a : array_like
        The (H, W) map whose values score the pixels.
    inside : array_like
        Boolean (H, W) mask of the pixels to find.
    region : shape or bool array, optional
        The pixels scored (default: all).

    Returns
    -------
    float
        The AUC in [0, 1].
    """
    a = check_map(a)
    target = check_mask(inside, "inside mask", a.shape)
    mask = _region(region, a.shape)
    pos, neg = a[target & mask], a[~target & mask]
    if len(pos) == 0 or len(neg) == 0:
        raise InputError("region AUC needs pixels both inside and outside the mask")
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def compare_maps(a: Any, b: Any, *, region: Any = None, top_percents: Sequence[float] = (5.0, 10.0, 20.0),
                 emd: bool = False) -> dict[str, float]:
    """All symmetric comparisons of two maps as one flat dict (a row of a tidy table).

    Parameters
    ----------
    a, b, region
        As for :func:`pearson`.
    top_percents : sequence of float
        The top-k% overlaps computed.
    emd : bool
        Also the earth mover's distance (slow on large grids).

    Returns
    -------
    dict of str to float
        Metric name -> value.

    Examples
    --------
    >>> a = np.random.default_rng(0).random((8, 8))
    >>> row = compare_maps(a, a, top_percents=(10,))
    >>> row["pearson"], row["dice_top10"], row["histogram_intersection"]
    (1.0, 1.0, 1.0)
    """
    a, b, mask = _pair(a, b, region)
    row = {"pearson": pearson(a, b, region=mask), "spearman": spearman(a, b, region=mask)}
    for percent in top_percents:
        label = f"{float(percent):g}"
        row[f"dice_top{label}"] = top_k_overlap(a, b, percent, region=mask, measure="dice")
        row[f"iou_top{label}"] = top_k_overlap(a, b, percent, region=mask, measure="iou")
    try:
        row["histogram_intersection"] = histogram_intersection(a, b, region=mask)
        if emd:
            row["emd_px"] = earth_movers_distance(a, b, region=mask)
    except InputError:  # a map without positive mass is not a distribution
        row["histogram_intersection"] = float("nan")
        if emd:
            row["emd_px"] = float("nan")
    return row
