"""Random field theory for smooth classification images: the p-values and thresholds of Stat4Ci.

Chauvin, Worsley, Schyns, Arguin & Gosselin (2005), "Accurate statistical tests for smooth
classification images", JoV 5(9):1, threshold a Z-scored, smoothed classification image with
the expected Euler characteristic (EC) of its excursion set (Worsley et al., 1996; Worsley's
``stat_threshold``, which the MATLAB Stat4Ci toolbox calls):

    P(max Z >= t)  ~  E[EC] = sum_d  mu_d(S) / FWHM^d * rho_d(t)

``mu_d(S)`` are the intrinsic volumes of the search region S (2D: Euler characteristic,
half perimeter, area; :func:`analysis.search_region.intrinsic_volumes`), ``FWHM`` is the full width at half maximum
of the Gaussian kernel that smoothed the field (``sigma * sqrt(8 ln 2)``) and ``rho_d`` the
EC densities of a unit Gaussian field per resel (:func:`ec_densities`). As in
``stat_threshold``, the pixel-test p-value is the smaller of this and the Bonferroni bound
``n_pixels * P(Z >= t)``. The cluster test (Friston et al., 1994; Cao, 1999) gives a
cluster of ``k`` connected pixels above ``t`` the corrected p-value
``1 - exp(-E[m] * exp(-(c k)^(2/D)))`` with ``E[m]`` the expected number of clusters.

The search region and its intrinsic volumes (counted on the pixel lattice as Worsley does)
are :mod:`analysis.search_region`'s; the tests on a Z map are :mod:`analysis.stat4ci`'s.

Examples
--------
>>> round(pixel_test_threshold((256, 256), fwhm_px=20.0), 3)
3.945
>>> fwhm_from_sigma(10.0)
23.548200450309494
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from stimuli.contracts.errors import InputError

from .search_region import (
    IntrinsicVolumes,
    disc_intrinsic_volumes,
    intrinsic_volumes,
    search_region_mask,
)

__all__ = ["FWHM_PER_SIGMA", "fwhm_from_sigma", "ec_densities", "expected_ec", "peak_pvalue", "rft_threshold",
           "pixel_test_threshold", "cluster_pvalue", "cluster_size_threshold"]


FWHM_PER_SIGMA = math.sqrt(8.0 * math.log(2.0))


_FOUR_LN2 = 4.0 * math.log(2.0)


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
    search_region, fwhm_px
        As for :func:`expected_ec`.
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
    search_region, fwhm_px
        As for :func:`expected_ec`.
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
    search_region, fwhm_px
        As for :func:`cluster_pvalue`.
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
