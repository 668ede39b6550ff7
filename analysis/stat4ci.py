"""Stat4Ci in Python: random-field-theory pixel and cluster tests for smooth classification images.

Chauvin, Worsley, Schyns, Arguin & Gosselin (2005), "Accurate statistical tests for smooth
classification images", JoV 5(9):1, threshold a Z-scored, smoothed classification image with
the expected Euler characteristic (EC) of its excursion set (Worsley et al., 1996; Worsley's
``stat_threshold``, which the MATLAB Stat4Ci toolbox calls):

    P(max Z >= t)  ~  E[EC] = sum_d  mu_d(S) / FWHM^d * rho_d(t)

``mu_d(S)`` are the intrinsic volumes of the search region S (2D: Euler characteristic,
half perimeter, area; :func:`intrinsic_volumes`), ``FWHM`` is the full width at half maximum
of the Gaussian kernel that smoothed the field (``sigma * sqrt(8 ln 2)``) and ``rho_d`` the
EC densities of a unit Gaussian field per resel (:func:`ec_densities`). As in
``stat_threshold``, the pixel-test p-value is the smaller of this and the Bonferroni bound
``n_pixels * P(Z >= t)``. The cluster test (Friston et al., 1994; Cao, 1999) gives a
cluster of ``k`` connected pixels above ``t`` the corrected p-value
``1 - exp(-E[m] * exp(-(c k)^(2/D)))`` with ``E[m]`` the expected number of clusters.

Intrinsic volumes are counted on the pixel lattice as Worsley does: pixels are points,
neighbouring pixels (4-connectivity) are joined by unit edges and every 2x2 block of pixels
spans a unit face, so ``EC = V - E + F``, ``half perimeter = E - 2F``, ``area = F``. A full
H x W grid is the rectangle (H-1) x (W-1). Stat4Ci's own ``CiVol`` uses the disc with the
region's pixel count as its area (:func:`disc_intrinsic_volumes`, a lower bound).

Examples
--------
>>> round(pixel_test_threshold((256, 256), fwhm_px=20.0), 3)
3.945
>>> fwhm_from_sigma(10.0)
23.548200450309494
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage, optimize, special, stats

from stimuli.contracts.errors import InputError

__all__ = [
    "FWHM_PER_SIGMA",
    "fwhm_from_sigma",
    "IntrinsicVolumes",
    "intrinsic_volumes",
    "disc_intrinsic_volumes",
    "search_region_mask",
    "ec_densities",
    "expected_ec",
    "peak_pvalue",
    "rft_threshold",
    "pixel_test_threshold",
    "cluster_pvalue",
    "cluster_size_threshold",
    "find_clusters",
    "PixelTest",
    "pixel_test",
    "ClusterTest",
    "cluster_test",
    "CLUSTER_COLUMNS",
]

FWHM_PER_SIGMA = math.sqrt(8.0 * math.log(2.0))
_FOUR_LN2 = 4.0 * math.log(2.0)
# 4-connectivity: the neighbourhood of the lattice's edges, so clusters and EC agree
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)

CLUSTER_COLUMNS = ("cluster", "size_px", "peak_z", "peak_row", "peak_col",
                   "centroid_row", "centroid_col", "p", "significant")


def fwhm_from_sigma(sigma_px: float) -> float:
    """Full width at half maximum of a Gaussian kernel of standard deviation ``sigma_px``.

    Parameters
    ----------
    sigma_px : float
        Standard deviation of the kernel in pixels (positive).

    Returns
    -------
    float
        The FWHM in pixels, ``sigma * sqrt(8 ln 2)``.

    Examples
    --------
    >>> round(fwhm_from_sigma(10.0), 2)
    23.55
    """
    sigma = float(sigma_px)
    if not math.isfinite(sigma) or sigma <= 0:
        raise InputError(f"smoothing sigma must be a positive number of pixels, got {sigma_px!r}")
    return sigma * FWHM_PER_SIGMA


@dataclass(frozen=True)
class IntrinsicVolumes:
    """Intrinsic volumes ``mu_0..mu_D`` of a search region (pixel units) and its pixel count.

    Parameters
    ----------
    volumes : tuple of float
        ``mu_0`` (Euler characteristic), ``mu_1`` (half perimeter), ``mu_2`` (area).
    n_pixels : int
        Pixels in the search region.
    """

    volumes: tuple[float, ...]
    n_pixels: int

    @property
    def dim(self) -> int:
        return len(self.volumes) - 1

    @property
    def euler(self) -> float:
        return self.volumes[0]

    def as_array(self) -> np.ndarray:
        return np.asarray(self.volumes, dtype=np.float64)


def search_region_mask(search_region: Any) -> np.ndarray:
    """A search region, given as an (H, W) shape or a boolean mask, as a boolean mask.

    Parameters
    ----------
    search_region : shape or array_like
        An (H, W) shape (the whole grid) or a 0/1 or boolean (H, W) mask.

    Returns
    -------
    numpy.ndarray
        The boolean (H, W) mask.

    Examples
    --------
    >>> search_region_mask((2, 3)).sum()
    np.int64(6)
    """
    if isinstance(search_region, tuple) or (
        isinstance(search_region, Sequence) and len(search_region) == 2
        and all(np.isscalar(s) for s in search_region)
    ):
        height, width = (int(s) for s in search_region)
        if height < 1 or width < 1:
            raise InputError(f"search region shape must be positive, got {tuple(search_region)}")
        return np.ones((height, width), dtype=bool)
    mask = np.asarray(search_region)
    if mask.ndim != 2:
        raise InputError(f"search region must be an (H, W) shape or a 2D boolean mask, got shape {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise InputError("search region mask must hold only 0/1 or True/False")
        mask = mask.astype(bool)
    return mask


def intrinsic_volumes(search_region: Any) -> IntrinsicVolumes:
    """Euler characteristic, half perimeter and area of a 2D search region on the pixel lattice.

    Parameters
    ----------
    search_region : (H, W) shape (the whole grid) or boolean (H, W) mask of any shape.

    Returns
    -------
    IntrinsicVolumes
        ``(euler, half perimeter, area)`` on the pixel lattice and the pixel count.

    Examples
    --------
    >>> intrinsic_volumes((4, 6)).volumes
    (1.0, 8.0, 15.0)
    >>> ring = np.ones((5, 5), bool); ring[2, 2] = False
    >>> intrinsic_volumes(ring).euler      # one hole
    0.0
    """
    mask = search_region_mask(search_region)
    vertices = int(mask.sum())
    edges = int((mask[1:, :] & mask[:-1, :]).sum() + (mask[:, 1:] & mask[:, :-1]).sum())
    faces = int((mask[1:, 1:] & mask[:-1, 1:] & mask[1:, :-1] & mask[:-1, :-1]).sum())
    return IntrinsicVolumes((float(vertices - edges + faces), float(edges - 2 * faces), float(faces)),
                            vertices)


def disc_intrinsic_volumes(n_pixels: int) -> IntrinsicVolumes:
    """Stat4Ci's ``CiVol``: a disc whose area is the pixel count, ``[1, pi r, pi r^2]``.

    Parameters
    ----------
    n_pixels : int
        Pixels of the search region (at least one).

    Returns
    -------
    IntrinsicVolumes
        ``(1, pi r, pi r^2)`` of the disc of that area.
    """
    if n_pixels < 1:
        raise InputError(f"search region must hold at least one pixel, got {n_pixels}")
    radius = math.sqrt(n_pixels / math.pi)
    return IntrinsicVolumes((1.0, math.pi * radius, float(n_pixels)), int(n_pixels))


def ec_densities(t: Any, dim: int = 2) -> np.ndarray:
    """EC densities ``rho_0..rho_dim`` of a unit-variance Gaussian field, per resel.

    ``rho_0(t) = P(Z >= t)`` and, for ``d >= 1``,
    ``rho_d(t) = (4 ln 2)^(d/2) (2 pi)^(-(d+1)/2) He_{d-1}(t) exp(-t^2/2)``
    with ``He`` the probabilists' Hermite polynomials (Worsley et al., 1996, Table 2).
    Returns an array of shape ``(dim + 1, *np.shape(t))``.

    Parameters
    ----------
    t : array_like
        Heights.
    dim : int
        Dimension of the field.

    Returns
    -------
    numpy.ndarray
        Densities of shape ``(dim + 1, *t.shape)``.
    """
    t = np.asarray(t, dtype=np.float64)
    rho = np.empty((dim + 1, *t.shape), dtype=np.float64)
    rho[0] = stats.norm.sf(t)
    gauss = np.exp(-0.5 * t**2)
    for d in range(1, dim + 1):
        rho[d] = (_FOUR_LN2 ** (d / 2) / (2 * math.pi) ** ((d + 1) / 2)
                  * special.eval_hermitenorm(d - 1, t) * gauss)
    return rho


def _volumes(search_region: Any) -> IntrinsicVolumes:
    if isinstance(search_region, IntrinsicVolumes):
        return search_region
    return intrinsic_volumes(search_region)


def _check_fwhm(fwhm_px: float) -> float:
    fwhm = float(fwhm_px)
    if not math.isfinite(fwhm) or fwhm <= 0:
        raise InputError(f"FWHM must be a positive number of pixels, got {fwhm_px!r}")
    return fwhm


def expected_ec(t: Any, search_region: Any, fwhm_px: float) -> np.ndarray:
    """Expected Euler characteristic of the excursion set above ``t`` (the RFT p-value).

    Parameters
    ----------
    t : array_like
        Heights.
    search_region : shape, bool array or IntrinsicVolumes
        The pixels tested, as an (H, W) shape, a boolean mask or their intrinsic volumes.
    fwhm_px : float
        Smoothness of the field (FWHM, pixels).

    Returns
    -------
    numpy.ndarray
        E[EC] at each height.
    """
    volumes = _volumes(search_region)
    fwhm = _check_fwhm(fwhm_px)
    resels = volumes.as_array() / fwhm ** np.arange(volumes.dim + 1)
    rho = ec_densities(t, volumes.dim)
    return np.tensordot(resels, rho, axes=1)


def peak_pvalue(t: Any, search_region: Any, fwhm_px: float, *, bonferroni: bool = True) -> np.ndarray:
    """Corrected p-value of a peak of height ``t``: min(E[EC], n_pixels P(Z >= t), 1).

    Parameters
    ----------
    t : array_like
        Peak heights.
    search_region : shape, bool array or IntrinsicVolumes
        The pixels tested, as an (H, W) shape, a boolean mask or their intrinsic volumes.
    fwhm_px : float
        Smoothness of the field (FWHM, pixels).
    bonferroni : bool
        Also bound by the Bonferroni p-value.

    Returns
    -------
    numpy.ndarray
        Corrected p-values in [0, 1].
    """
    volumes = _volumes(search_region)
    p = expected_ec(t, volumes, fwhm_px)
    if bonferroni:
        p = np.minimum(p, volumes.n_pixels * stats.norm.sf(t))
    return np.clip(p, 0.0, 1.0)


def _check_alpha(alpha: float, what: str = "alpha") -> float:
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise InputError(f"{what} must lie between 0 and 1, got {alpha!r}")
    return alpha


def rft_threshold(search_region: Any, fwhm_px: float, alpha: float = 0.05, *,
                  bonferroni: bool = True) -> float:
    """The Z height whose corrected peak p-value is ``alpha`` (highest crossing).

    Parameters
    ----------
    search_region : shape, bool array or IntrinsicVolumes
        The pixels tested, as an (H, W) shape, a boolean mask or their intrinsic volumes.
    fwhm_px : float
        Smoothness of the field (FWHM, pixels).
    alpha : float
        Family-wise error rate.
    bonferroni : bool
        Also bound by the Bonferroni threshold.

    Returns
    -------
    float
        The threshold Z.
    """
    alpha = _check_alpha(alpha)
    volumes = _volumes(search_region)
    fwhm = _check_fwhm(fwhm_px)

    def excess(t: float) -> float:
        return float(peak_pvalue(t, volumes, fwhm, bonferroni=bonferroni)) - alpha

    # the EC curve is not monotone at low t: bracket its last crossing from above
    grid = np.linspace(0.0, 40.0, 4001)
    above = np.flatnonzero(peak_pvalue(grid, volumes, fwhm, bonferroni=bonferroni) >= alpha)
    if len(above) == 0:
        return 0.0
    i = above[-1]
    return float(optimize.brentq(excess, grid[i], grid[i + 1], xtol=1e-10))


def pixel_test_threshold(search_region: Any, fwhm_px: float, alpha: float = 0.05, *,
                         two_sided: bool = False, geometry: str = "lattice",
                         bonferroni: bool = True) -> float:
    """The Stat4Ci pixel-test Z threshold.

    Parameters
    ----------
    search_region : (H, W) shape or boolean (H, W) mask of the pixels tested.
    fwhm_px : FWHM of the Gaussian kernel that smoothed the CI (:func:`fwhm_from_sigma`).
    alpha : family-wise error rate.
    two_sided : test |Z| (alpha split over both tails).
    geometry : ``"lattice"`` (exact intrinsic volumes of the mask) or ``"disc"`` (Stat4Ci's
        ``CiVol``: a disc of the same pixel count).
    bonferroni : take the smaller of the RFT and Bonferroni thresholds, as ``stat_threshold``.

    Returns
    -------
    float
        The Z threshold.

    Examples
    --------
    >>> t = pixel_test_threshold((128, 128), fwhm_px=fwhm_from_sigma(5))
    >>> 3.5 < t < 4.5
    True
    """
    if geometry == "lattice":
        volumes = _volumes(search_region)
    elif geometry == "disc":
        volumes = disc_intrinsic_volumes(int(search_region_mask(search_region).sum()))
    else:
        raise InputError(f"unknown search-region geometry '{geometry}' (choose lattice or disc)")
    if volumes.n_pixels < 1:
        raise InputError("search region is empty: no pixel to test")
    alpha = _check_alpha(alpha) / (2 if two_sided else 1)
    return rft_threshold(volumes, fwhm_px, alpha, bonferroni=bonferroni)


def _cluster_terms(volumes: IntrinsicVolumes, fwhm: float, threshold: float) -> tuple[float, float]:
    """(expected number of clusters E[m], c) with P(size >= k) = exp(-(c k)^(2/D))."""
    dim = volumes.dim
    rho_top = float(ec_densities(threshold, dim)[dim])
    expected_clusters = volumes.volumes[dim] / fwhm**dim * rho_top
    tail = float(stats.norm.sf(threshold))
    if expected_clusters <= 0 or tail <= 0:
        raise InputError(f"cluster-forming threshold {threshold:g} is too low or too high for the cluster test")
    # c = Gamma(D/2 + 1) / E[size], E[size] = volume * P(Z >= t) / E[m]
    c = math.gamma(dim / 2 + 1) * expected_clusters / (volumes.volumes[dim] * tail)
    return expected_clusters, c


def _check_cluster_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not math.isfinite(threshold) or threshold <= 0:
        raise InputError(f"cluster-forming threshold must be a positive Z value, got {threshold!r}")
    return threshold


def cluster_pvalue(size_px: Any, search_region: Any, fwhm_px: float, cluster_threshold: float) -> np.ndarray:
    """Corrected p-value of a cluster of ``size_px`` pixels above ``cluster_threshold``.

    Parameters
    ----------
    size_px : array_like
        Cluster sizes (pixels).
    search_region : shape, bool array or IntrinsicVolumes
        The pixels tested, as an (H, W) shape, a boolean mask or their intrinsic volumes.
    fwhm_px : float
        Smoothness of the field (FWHM, pixels).
    cluster_threshold : float
        The cluster-forming Z threshold.

    Returns
    -------
    numpy.ndarray
        Corrected p-values.
    """
    volumes = _volumes(search_region)
    fwhm = _check_fwhm(fwhm_px)
    expected, c = _cluster_terms(volumes, fwhm, _check_cluster_threshold(cluster_threshold))
    size = np.asarray(size_px, dtype=np.float64)
    one = np.exp(-((c * size) ** (2 / volumes.dim)))
    return -np.expm1(-expected * one)


def cluster_size_threshold(search_region: Any, fwhm_px: float, cluster_threshold: float,
                           alpha: float = 0.05) -> float:
    """Smallest cluster size (pixels) significant at ``alpha`` above ``cluster_threshold``.

    Parameters
    ----------
    search_region : shape, bool array or IntrinsicVolumes
        The pixels tested, as an (H, W) shape, a boolean mask or their intrinsic volumes.
    fwhm_px : float
        Smoothness of the field (FWHM, pixels).
    cluster_threshold : float
        The cluster-forming Z threshold.
    alpha : float
        Family-wise error rate.

    Returns
    -------
    float
        The size (pixels).
    """
    volumes = _volumes(search_region)
    fwhm = _check_fwhm(fwhm_px)
    expected, c = _cluster_terms(volumes, fwhm, _check_cluster_threshold(cluster_threshold))
    one = -math.log1p(-_check_alpha(alpha)) / expected
    if one >= 1:  # so few clusters expected that any cluster is significant
        return 0.0
    return (-math.log(one)) ** (volumes.dim / 2) / c


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
        The Z threshold.
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
    z : array_like
        The (H, W) Z map.
    fwhm_px : float
        Smoothness of the map (FWHM of its kernel, pixels).
    cluster_threshold : float
        The cluster-forming Z threshold.
    alpha : float
        Family-wise error rate.
    region : shape or bool array, optional
        The search region (default: the whole map).

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
