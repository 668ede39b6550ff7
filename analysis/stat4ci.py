"""Stat4Ci in Python: the random-field-theory pixel and cluster tests of a smooth classification image.

Chauvin, Worsley, Schyns, Arguin & Gosselin (2005), "Accurate statistical tests for smooth
classification images", JoV 5(9):1. :func:`pixel_test` marks the pixels of a Z map above the
pixel-test threshold of the search region; :func:`cluster_test` finds the connected clusters
above a forming threshold (:func:`find_clusters`) and keeps those large enough to be
significant. The p-values and thresholds come from :mod:`analysis.rft` (the expected Euler
characteristic of the excursion set), the search region's geometry from
:mod:`analysis.search_region`.

Examples
--------
>>> z = np.zeros((64, 64)); z[30:34, 30:34] = 6.0
>>> int(pixel_test(z, fwhm_px=8.0).significant.sum())
16
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from stimuli.contracts.errors import InputError

from .rft import cluster_pvalue, cluster_size_threshold, pixel_test_threshold
from .search_region import intrinsic_volumes, search_region_mask

__all__ = ["find_clusters", "PixelTest", "pixel_test", "ClusterTest", "cluster_test", "CLUSTER_COLUMNS"]

# 4-connectivity: the neighbourhood of the lattice's edges, so clusters and EC agree
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)

CLUSTER_COLUMNS = ("cluster", "size_px", "peak_z", "peak_row", "peak_col",
                   "centroid_row", "centroid_col", "p", "significant")


def _check_map(z: Any, name: str = "Z map") -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise InputError(f"{name} must be 2D (H, W), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return z


def _region_for(z: np.ndarray, region: Any) -> np.ndarray:
    mask = search_region_mask(z.shape if region is None else region)
    if mask.shape != z.shape:
        raise InputError(f"search region {mask.shape} and map {z.shape} differ in shape")
    return mask


def find_clusters(z: Any, threshold: float, region: Any = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Connected (4-neighbour) clusters of pixels with ``z > threshold`` inside ``region``.

    Returns the (H, W) int label map (0 = none) and a table with one row per cluster:
    ``cluster``, ``size_px``, ``peak_z``, ``peak_row``, ``peak_col``, ``centroid_row``,
    ``centroid_col``.

    Parameters
    ----------
    z : array_like
        The (H, W) Z map.
    threshold : float
        The cluster-forming threshold.
    region : shape or bool array, optional
        The search region (default: the whole map).

    Returns
    -------
    labels : numpy.ndarray
        The (H, W) label map.
    table : pandas.DataFrame
        One row per cluster.
    """
    z = _check_map(z)
    mask = _region_for(z, region)
    labels, count = ndimage.label((z > threshold) & mask, structure=_FOUR_CONNECTED)
    index = np.arange(1, count + 1)
    if count == 0:
        empty = pd.DataFrame({c: pd.Series(dtype=float) for c in CLUSTER_COLUMNS[:7]})
        return labels, empty.astype({"cluster": int, "size_px": int, "peak_row": int, "peak_col": int})
    sizes = ndimage.sum_labels(np.ones_like(z), labels, index).astype(np.int64)
    peaks = ndimage.maximum_position(z, labels, index)
    centroids = ndimage.center_of_mass(np.ones_like(z), labels, index)
    table = pd.DataFrame({
        "cluster": index,
        "size_px": sizes,
        "peak_z": [z[p] for p in peaks],
        "peak_row": [int(p[0]) for p in peaks],
        "peak_col": [int(p[1]) for p in peaks],
        "centroid_row": [c[0] for c in centroids],
        "centroid_col": [c[1] for c in centroids],
    })
    return labels, table


@dataclass(frozen=True)
class PixelTest:
    """Result of the pixel test: threshold and significant pixels.

    Parameters
    ----------
    threshold : float
        The Z threshold for ``alpha`` over the region tested.
    significant : numpy.ndarray
        Boolean (H, W) map of significant pixels.
    fwhm_px, alpha : float
        The smoothness and error rate used.
    two_sided : bool
        Whether ``|z|`` was tested.
    """

    threshold: float
    significant: np.ndarray  # bool (H, W)
    fwhm_px: float
    alpha: float
    two_sided: bool


def pixel_test(z: Any, fwhm_px: float, alpha: float = 0.05, *, region: Any = None,
               two_sided: bool = False, geometry: str = "lattice") -> PixelTest:
    """Pixels of ``z`` above the pixel-test threshold of ``region`` (default: the whole map).

    Parameters
    ----------
    z : array_like
        The (H, W) Z map.
    fwhm_px : float
        Smoothness of the map (FWHM of its kernel, pixels).
    alpha : float
        Family-wise error rate.
    region : shape or bool array, optional
        The search region (default: the whole map).
    two_sided : bool
        Test ``|z|`` instead of ``z``.
    geometry : str
        ``lattice`` (intrinsic volumes of the pixels) or ``disc`` (Stat4Ci's ``CiVol``).

    Returns
    -------
    PixelTest
        The threshold and the boolean (H, W) map of significant pixels.

    Examples
    --------
    >>> z = np.zeros((64, 64)); z[30:34, 30:34] = 6.0
    >>> int(pixel_test(z, fwhm_px=8.0).significant.sum())
    16
    """
    z = _check_map(z)
    mask = _region_for(z, region)
    threshold = pixel_test_threshold(mask, fwhm_px, alpha, two_sided=two_sided, geometry=geometry)
    values = np.abs(z) if two_sided else z
    return PixelTest(threshold, (values > threshold) & mask, float(fwhm_px), float(alpha), two_sided)


@dataclass(frozen=True)
class ClusterTest:
    """Result of the cluster test: the clusters above the forming threshold, with p-values.

    Parameters
    ----------
    cluster_threshold : float
        The cluster-forming Z threshold.
    size_threshold : float
        Smallest significant size (pixels).
    labels : numpy.ndarray
        (H, W) int label map, 0 = no cluster.
    table : pandas.DataFrame
        :data:`CLUSTER_COLUMNS`, one row per cluster.
    significant : numpy.ndarray
        Boolean (H, W) map of the significant clusters' pixels.
    fwhm_px, alpha : float
        The smoothness and error rate used.
    """

    cluster_threshold: float
    size_threshold: float  # smallest significant size, pixels
    labels: np.ndarray  # int (H, W), 0 = no cluster
    table: pd.DataFrame  # CLUSTER_COLUMNS
    significant: np.ndarray  # bool (H, W): pixels of significant clusters
    fwhm_px: float
    alpha: float


def cluster_test(z: Any, fwhm_px: float, cluster_threshold: float = 2.7, alpha: float = 0.05, *,
                 region: Any = None) -> ClusterTest:
    """The Stat4Ci cluster test: clusters of ``z > cluster_threshold`` large enough to be significant.

    Parameters
    ----------
    z, fwhm_px, alpha, region
        As for :func:`pixel_test`.
    cluster_threshold : float
        The cluster-forming Z threshold.

    Returns
    -------
    ClusterTest
        The labelled clusters, their table (size, peak, p) and the map of significant ones.

    Examples
    --------
    >>> z = np.zeros((128, 128)); z[40:80, 40:80] = 3.0
    >>> result = cluster_test(z, fwhm_px=10.0, cluster_threshold=2.7)
    >>> result.table[["size_px", "significant"]].values.tolist()
    [[1600, True]]
    """
    z = _check_map(z)
    mask = _region_for(z, region)
    volumes = intrinsic_volumes(mask)
    labels, table = find_clusters(z, cluster_threshold, mask)
    table["p"] = cluster_pvalue(table["size_px"].to_numpy(), volumes, fwhm_px, cluster_threshold)
    table["significant"] = table["p"] < alpha
    keep = table.loc[table["significant"], "cluster"].to_numpy()
    return ClusterTest(
        cluster_threshold=float(cluster_threshold),
        size_threshold=cluster_size_threshold(volumes, fwhm_px, cluster_threshold, alpha),
        labels=labels,
        table=table[list(CLUSTER_COLUMNS)],
        significant=np.isin(labels, keep) & (labels > 0),
        fwhm_px=float(fwhm_px),
        alpha=float(alpha),
    )
