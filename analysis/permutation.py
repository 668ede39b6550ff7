"""Max-statistic permutation test: the non-parametric alternative to the RFT thresholds.

Each permutation rebuilds every participant's CI from Freedman-Lane permuted weights
(Freedman & Lane, 1983; Winkler et al., 2014): the residuals of the reduced model
(per-stratum intercepts and the number of bubbles, :mod:`analysis.ci_null`) are permuted
*within strata* (trials drawn from the same centre density, e.g. the same face in a
per-image guided condition), added to the reduced model's fitted values and residualised
on it again, which is the permuted residuals residualised again. The permuted CIs are
Z-scored as the observed one was (analytic Z: each permuted weight vector with its own null
moments; permutation Z: the participant's permutation moments), the group map
``sum Z / sqrt(n)`` is formed and its maximum over the search region and the size of its
largest cluster above the cluster-forming threshold are recorded. The ``1 - alpha``
quantiles of those maxima are family-wise thresholds (Nichols & Holmes, 2002).

Permuting the residuals without residualising them again (as before) leaves them
correlated with the number of bubbles, which the CI of unclipped apertures scales with, so
the permuted maps were too variable and the thresholds too high (over-conservative).

Examples
--------
>>> result = max_statistic_test([bt], [ci], region=(32, 32), n_permutations=200)  # doctest: +SKIP
>>> result.pixel_threshold                                                        # doctest: +SKIP
3.61
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from stimuli.contracts.errors import InputError

from .classification import BubbleTrials, ClassificationImage, permutation_z
from .search_region import search_region_mask

__all__ = ["MaxStatistic", "max_statistic_test", "permutation_quantile"]

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def permutation_quantile(null: Any, alpha: float) -> float:
    """The conservative ``1 - alpha`` quantile of a permutation distribution.

    The ``ceil((1 - alpha)(K + 1))``-th smallest of the K values, so that
    P(max >= threshold) <= alpha when the observed map is one more exchangeable draw.

    Parameters
    ----------
    null : array_like
        The K values of the permutation distribution.
    alpha : float
        The error rate.

    Returns
    -------
    float
        The threshold.

    Examples
    --------
    >>> permutation_quantile(np.arange(1, 20), 0.05)
    19.0
    """
    values = np.sort(np.asarray(null, dtype=np.float64))
    rank = math.ceil((1 - alpha) * (len(values) + 1))
    return float(values[min(rank, len(values)) - 1])


@dataclass(frozen=True)
class MaxStatistic:
    """Permutation distributions of the group map's maximum and of its largest cluster.

    Parameters
    ----------
    max_z, max_cluster_px : numpy.ndarray
        Each permutation's maximum Z and largest cluster (pixels).
    pixel_threshold, cluster_size_threshold : float
        The ``1 - alpha`` quantiles of the two.
    cluster_threshold : float
        The cluster-forming Z threshold.
    alpha : float
        The family-wise error rate.
    n_permutations : int
        Permutations drawn.
    seed : int
        Their seed.
    """

    max_z: np.ndarray  # (K,)
    max_cluster_px: np.ndarray  # (K,)
    pixel_threshold: float
    cluster_size_threshold: float
    cluster_threshold: float
    alpha: float
    n_permutations: int
    seed: int

    def pixel_pvalues(self, z: Any) -> np.ndarray:
        """Family-wise p-value of each pixel: (1 + #{max >= z}) / (K + 1)."""
        z = np.asarray(z, dtype=np.float64)
        ordered = np.sort(self.max_z)
        exceed = len(ordered) - np.searchsorted(ordered, z, side="left")
        return (1 + exceed) / (len(ordered) + 1)

    def cluster_pvalues(self, sizes: Any) -> np.ndarray:
        """Family-wise p-value of clusters of the given sizes."""
        sizes = np.asarray(sizes, dtype=np.float64)
        ordered = np.sort(self.max_cluster_px)
        exceed = len(ordered) - np.searchsorted(ordered, sizes, side="left")
        return (1 + exceed) / (len(ordered) + 1)


def max_statistic_test(participants: Sequence[BubbleTrials], cis: Sequence[ClassificationImage], *,
                       region: Any, smooth_px: float = 0.0, cluster_threshold: float = 2.7,
                       alpha: float = 0.05, n_permutations: int = 1000, seed: int = 0,
                       chunk: int = 16, progress: Any = None) -> MaxStatistic:
    """Permutation thresholds for a group CI.

    Parameters
    ----------
    participants, cis : each participant's parsed trials and the CI computed from them
        (its weights, reduced model, strata and null are reused).
    region : search region, an (H, W) shape or boolean mask.
    smooth_px : the smoothing used for ``cis``.
    progress : optional callable ``progress(n)`` told how many permutations are done.

    Returns
    -------
    MaxStatistic
        The permutation distributions and thresholds.
    """
    if len(participants) == 0 or len(participants) != len(cis):
        raise InputError("max-statistic test needs one CI per participant, and at least one")
    if int(n_permutations) < 1:
        raise InputError(f"number of permutations must be positive, got {n_permutations}")
    if any(ci.null is None for ci in cis):
        raise InputError("max-statistic test needs CIs from compute_ci (they carry their null model)")
    mask = search_region_mask(region)
    if mask.shape != participants[0].shape:
        raise InputError(f"search region {mask.shape} and grid {participants[0].shape} differ in shape")
    rng = np.random.default_rng(seed)
    k_total = int(n_permutations)
    max_z = np.empty(k_total)
    max_cluster = np.zeros(k_total)
    scale = 1.0 / math.sqrt(len(participants))
    done = 0
    while done < k_total:
        k = min(chunk, k_total - done)
        total = np.zeros((k, *mask.shape))
        for bt, ci in zip(participants, cis):
            total += permutation_z(bt, ci, ci.null.permuted_weights(ci.weights, k, rng), smooth_px)
        total *= scale
        max_z[done:done + k] = total[:, mask].max(axis=1)
        for j in range(k):
            labels, count = ndimage.label((total[j] > cluster_threshold) & mask, structure=_FOUR_CONNECTED)
            if count:
                max_cluster[done + j] = np.bincount(labels.ravel())[1:].max()
        done += k
        if progress is not None:
            progress(k)
    return MaxStatistic(
        max_z=max_z, max_cluster_px=max_cluster,
        pixel_threshold=permutation_quantile(max_z, alpha),
        cluster_size_threshold=permutation_quantile(max_cluster, alpha),
        cluster_threshold=float(cluster_threshold), alpha=float(alpha),
        n_permutations=k_total, seed=int(seed),
    )
