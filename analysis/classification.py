"""Classification images (CIs) from Bubbles trials, through the linearity of Gaussian apertures.

A trial ``t`` shows ``n_t`` Gaussian apertures ``g_i(p) = exp(-|p - c_i|^2 / (2 sigma^2))``
at centres ``c_i`` (:func:`stimuli.bubbles.aperture_profiles`). The quantity that is linear
in the centres is the **unclipped sum of apertures** ``X_t(p) = sum_i g_i(p)``: what
:func:`stimuli.bubbles_mask` computes before clipping to 1. The CI is

    CI(p) = sum_t w_t X_t(p) = sum_i w_t(i) g_i(p),

with ``w_t = correct_t - mean accuracy`` (the classic CI) or, when the number of bubbles
varies (a staircase), the residual of ``correct`` regressed on ``1 + n_bubbles`` (the
multiple-regression form, which keeps "more bubbles, more correct" out of the map; with a
fixed count both are the same). Instead of stacking ``N`` masks, the weights are accumulated
at the centres on the grid and convolved once with the aperture: two matrix products with
the separable profiles (:func:`aperture_sum`), exact, with no truncation or border effect.

Relation to the mask shown: on screen the mask is ``min(X_t, 1)``. The two agree wherever
apertures do not pile up above 1 (sparse bubbles); where they overlap, ``X_t`` counts each
aperture and the clipped mask saturates. The linear CI is the regression on the apertures
themselves (Stat4Ci's "plane of bubbles" smoothed by the bubble), not on the clipped pixels.

Smoothing a CI with a normalised Gaussian of ``s`` px equals, on the unbounded plane and up
to a constant factor, the CI built with apertures of ``sqrt(sigma^2 + s^2)``; that is what
``smooth_px`` computes (exactly, also at the borders). The RFT tests then use
``FWHM = sqrt(sigma^2 + s^2) * sqrt(8 ln 2)``.

The null, per trial (the analytic moments)
------------------------------------------
Trial ``t``'s ``n_t`` centres are independent draws from a density ``d(t)`` on the grid: the
same for every trial of a random condition (uniform over the region) or of a guided
condition with a set-mean map, the trial's own face's density when a guided condition uses
per-image maps (``maps: per_image``). For one aperture ``g`` (of the trial's kernel) whose
centre ``c`` is drawn from ``d``::

    m_d(p) = E[g(p - c)]   = sum_u d(u) g(p - u)   = (g * d)(p)
    q_d(p) = E[g(p - c)^2] = sum_u d(u) g(p - u)^2 = (g^2 * d)(p)    (g^2: an aperture of sigma / sqrt 2)

so, ``X_t`` being a sum of ``n_t`` independent apertures,
``E[X_t] = n_t m_d(t)`` and ``Var[X_t] = n_t (q_d(t) - m_d(t)^2)``. Under H0 the answer does
not depend on where the apertures fell, given the trial's face and number of bubbles; the
weights are functions of answers, faces and counts only, so given them the trials' ``X_t``
stay independent with those moments and

    E[CI](p)   = sum_t w_t   n_t m_d(t)(p)
    Var[CI](p) = sum_t w_t^2 n_t (q_d(t)(p) - m_d(t)(p)^2),      Z = (CI - E) / sqrt(Var).

When every trial shares ``d`` this is ``E = (sum_t w_t n_t) m`` and
``Var = (sum_t w_t^2 n_t)(q - m^2)``, the one-density formula. One pooled density
``dbar = sum_s pi_s d_s`` in place of per-face densities ``d_s`` is wrong as soon as
accuracy differs between faces: the true mean is ``sum_s (sum_{t in s} w_t n_t) m_s``, the
pooled one ``(sum_t w_t n_t) mbar``; their difference grows in proportion to the number of
trials and the sd only as its square root, so the pooled Z drifts away from 0 wherever the
faces' densities differ (a spurious map; ``tests/analysis/test_guided_null.py`` shows it).

Trials are grouped in **strata** (``BubbleTrials.stratum``: the label of the density they
were drawn from; :mod:`analysis.ci_null`). The weights are the residuals of ``correct`` on
one intercept per stratum (plus ``n_bubbles`` when it varies): centred within each face, so
the faces' different accuracies do not enter the CI through their different densities
(``sum_{t in s} w_t = 0``); what is left of ``E`` (``sum_{t in s} w_t n_t`` need not be 0
within a face) is removed exactly by the per-trial moments. With one stratum these are the
weights above. The Z is exact in mean and variance only if ``d(t)`` is the density the
centres were drawn from: guided densities are rebuilt from the session's files, a random
condition's (one density) is estimated from all participants' pooled centres.

Z-transform, two ways (``z=``):

``"analytic"``
    ``Z = (CI - E) / sqrt(Var)`` with the per-trial moments above. The densities are given
    (one map for all trials, or one per stratum: ``python -m analysis ci`` rebuilds guided
    densities from the session's relevance file, :mod:`analysis.guided_densities`) or
    estimated from the trials' own centres (one histogram per stratum). Linear too.
``"permutation"``
    Mean and standard deviation of the CI over Freedman-Lane permutations: residuals of
    the reduced model permuted within strata and residualised on it again.

Examples
--------
>>> import pandas as pd
>>> rows = [{"correct": c, "bubbles": b, "sigma_px": 3.0}
...         for c, b in [(1, "[[10,10]]"), (0, "[[20,20]]"), (1, "[[10,12]]"), (0, "[[22,20]]")]]
>>> z = classification_image(pd.DataFrame(rows), (32, 32))
>>> z.shape, bool(z[10, 11] > 0 > z[21, 20])
((32, 32), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError

from .apertures import (
    CI_COLUMNS,
    BubbleTrials,
    aperture_ci,
    aperture_sum,
    centre_histogram,
    concat_bubble_trials,
    parse_bubble_trials,
)
from .ci_null import CentreDensity, DensitySpec, TrialNull, trial_weights
from .rft import FWHM_PER_SIGMA

__all__ = [
    "Z_METHODS",
    "CI_COLUMNS",
    "BubbleTrials",
    "parse_bubble_trials",
    "concat_bubble_trials",
    "trial_weights",
    "aperture_sum",
    "centre_histogram",
    "CentreDensity",
    "TrialNull",
    "aperture_ci",
    "ClassificationImage",
    "permutation_z",
    "compute_ci",
    "classification_image",
    "group_z",
]

Z_METHODS = ("analytic", "permutation")


@dataclass(frozen=True)
class ClassificationImage:
    """A CI with its null moments and Z-score (plain arrays and numbers, and the null it used).

    Parameters
    ----------
    z, ci, null_mean, null_sd : numpy.ndarray
        The (H, W) Z map, raw CI and the null's mean and standard deviation.
    weights : numpy.ndarray
        The per-trial weights (N,) the CI sums.
    n_trials : int
        Trials in the CI.
    accuracy : float
        Their proportion correct.
    kernel_sigma_px, fwhm_px : float
        Effective kernel sigma and the map's FWHM (pixels).
    z_method : str
        ``analytic`` or ``permutation``.
    n_permutations : int
        Permutations of a permutation Z (0 for analytic).
    seed : int or None
        Seed of the permutations.
    null : TrialNull, optional
        The null the analytic moments came from.
    """

    z: np.ndarray  # (H, W) Z-scored CI
    ci: np.ndarray  # (H, W) raw CI, sum_t w_t X_t
    null_mean: np.ndarray  # (H, W) expected CI under H0
    null_sd: np.ndarray  # (H, W) its standard deviation
    weights: np.ndarray  # (N,) trial weights
    n_trials: int
    accuracy: float
    kernel_sigma_px: float  # rms over trials of sqrt(sigma^2 + smooth^2)
    fwhm_px: float
    z_method: str
    n_permutations: int
    seed: int | None
    null: TrialNull | None = None  # reduced model, strata, densities: what permutation tests reuse


def _zscore(ci: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    # pixels no aperture can reach have no variance: they carry no evidence, Z = 0
    tiny = 1e-9 * float(np.max(sd, initial=0.0))
    z = np.zeros_like(ci)
    ok = sd > tiny
    z[ok] = (ci[ok] - mean[ok]) / sd[ok]
    return z


def permutation_z(bt: BubbleTrials, ci: ClassificationImage, weights: np.ndarray,
                  smooth_px: float = 0.0) -> np.ndarray:
    """Z maps (K, H, W) of the CIs of permuted ``weights`` (K, N), Z-scored as ``ci`` was.

    Analytic Z: each permuted weight vector gets its own null moments (the same statistic
    as the observed map, on permuted data). Permutation Z: ``ci``'s permutation moments.

    Parameters
    ----------
    bt : BubbleTrials
        The parsed trials.
    ci : ClassificationImage
        The observed CI (its null and Z method are reused).
    weights : numpy.ndarray
        Permuted weights (K, N).
    smooth_px : float
        Extra smoothing sigma (pixels), as for ``ci``.

    Returns
    -------
    numpy.ndarray
        (K, H, W) Z maps.
    """
    maps = aperture_ci(bt, weights, smooth_px)
    if ci.z_method == "analytic":
        if ci.null is None:
            raise InputError("the CI carries no null model; compute it with compute_ci")
        mean, sd = ci.null.analytic_moments(bt, weights, smooth_px)
    else:
        mean, sd = ci.null_mean[None], ci.null_sd[None]
    tiny = 1e-9 * float(np.max(sd, initial=0.0))
    ok = sd > tiny
    out = np.zeros_like(maps)
    np.divide(maps - mean, sd, out=out, where=ok)
    return out


def _permutation_moments(bt: BubbleTrials, null: TrialNull, weights: np.ndarray, smooth_px: float,
                         n_permutations: int, rng: np.random.Generator, chunk: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros(bt.shape)
    total_sq = np.zeros(bt.shape)
    done = 0
    while done < n_permutations:
        k = min(chunk, n_permutations - done)
        maps = aperture_ci(bt, null.permuted_weights(weights, k, rng), smooth_px)
        total += maps.sum(axis=0)
        total_sq += (maps**2).sum(axis=0)
        done += k
    mean = total / n_permutations
    var = np.clip(total_sq / n_permutations - mean**2, 0.0, None) * n_permutations / (n_permutations - 1)
    return mean, np.sqrt(var)


def compute_ci(bt: BubbleTrials, *, smooth_px: float = 0.0, z: str = "analytic",
               centre_density: DensitySpec = None, n_permutations: int = 1000,
               seed: int | None = 0, covariate: bool = True, chunk: int = 32) -> ClassificationImage:
    """The CI of parsed trials, its null moments and Z-score.

    Parameters
    ----------
    bt : parsed trials (:func:`parse_bubble_trials`); ``bt.stratum`` labels each trial's
        centre density when they differ (e.g. per-image guided maps).
    smooth_px : extra Gaussian smoothing (sigma, px); 0 keeps the apertures' own smoothing.
    z : ``"analytic"`` or ``"permutation"`` (see the module docstring).
    centre_density : sampling density of bubble centres for the analytic null: an (H, W)
        map or a :class:`CentreDensity` shared by all trials, or a mapping from each stratum
        label to its density; None estimates it from ``bt``'s own centres, per stratum
        (pass one ``CentreDensity(centre_histogram(...))`` pooled over participants to share it).
    n_permutations, seed : for ``z="permutation"``.
    covariate : regress accuracy on the number of bubbles when it varies.

    Returns
    -------
    ClassificationImage
        The CI, its null moments, Z map and the settings used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bt = BubbleTrials((16, 16), rng.integers(0, 16, (200, 2)).astype(float), np.repeat(np.arange(100), 2),
    ...                   (rng.random(100) < 0.7).astype(float), np.full(100, 2.0))
    >>> result = compute_ci(bt)
    >>> result.z.shape, result.null.labels
    ((16, 16), ('',))
    """
    if z not in Z_METHODS:
        raise InputError(f"unknown Z-transform '{z}' (choose {', '.join(Z_METHODS)})")
    if bt.n_trials < 2:
        raise InputError(f"{bt.where}: a CI needs at least 2 trials, got {bt.n_trials}")
    if np.ptp(bt.correct) == 0:
        raise InputError(f"{bt.where}: all {bt.n_trials} trials are "
                         f"{'correct' if bt.correct[0] else 'incorrect'}; accuracy does not vary, no CI")
    null = TrialNull.build(bt, covariate=covariate, centre_density=centre_density, analytic=z == "analytic")
    weights = null.weights(bt.correct)
    ci = aperture_ci(bt, weights, smooth_px)
    if z == "analytic":
        mean, sd = null.analytic_moments(bt, weights, smooth_px)
        n_perm = 0
    else:
        if int(n_permutations) < 2:
            raise InputError(f"permutation Z needs at least 2 permutations, got {n_permutations}")
        n_perm = int(n_permutations)
        mean, sd = _permutation_moments(bt, null, weights, smooth_px, n_perm, np.random.default_rng(seed), chunk)
    kernel = math.sqrt(float(np.mean(bt.sigma_px**2)) + float(smooth_px) ** 2)
    return ClassificationImage(
        z=_zscore(ci, mean, sd), ci=ci, null_mean=mean, null_sd=sd, weights=weights,
        n_trials=bt.n_trials, accuracy=bt.accuracy, kernel_sigma_px=kernel,
        fwhm_px=kernel * FWHM_PER_SIGMA, z_method=z, n_permutations=n_perm,
        seed=seed if z == "permutation" else None, null=null,
    )


def classification_image(trials: pd.DataFrame, shape: Sequence[int], sigma_px: float | None = None, *,
                         smooth_px: float = 0.0, z: str = "analytic", n_permutations: int = 1000,
                         seed: int | None = 0, centre_density: np.ndarray | None = None) -> np.ndarray:
    """The Z-scored classification image (H, W) of one trial table.

    Parameters
    ----------
    trials : DataFrame in the trial-file format (at least ``correct``, ``bubbles``,
        ``sigma_px``); every row is used, so filter phases or conditions first.
    shape : (height, width) of the stimulus grid.
    sigma_px : aperture sigma to rebuild the masks with; None (default) uses each trial's
        ``sigma_px`` column.
    smooth_px, z, n_permutations, seed, centre_density : see :func:`compute_ci`.

    Returns
    -------
    numpy.ndarray
        The (H, W) Z map: positive where revealing a pixel went with correct answers.

    Examples
    --------
    >>> import pandas as pd
    >>> trials = pd.DataFrame({"correct": [1, 0], "bubbles": ["[[4,4]]", "[[12,12]]"], "sigma_px": 2.0})
    >>> z = classification_image(trials, (16, 16))
    >>> bool(z[4, 4] > 0 and z[12, 12] < 0)
    True
    """
    bt = parse_bubble_trials(trials, shape)
    if sigma_px is not None:
        bt = bt.with_sigma(sigma_px)
    return compute_ci(bt, smooth_px=smooth_px, z=z, n_permutations=n_permutations, seed=seed,
                      centre_density=centre_density).z


def group_z(z_maps: Any) -> np.ndarray:
    """Group CI from participants' Z maps: ``sum_i Z_i / sqrt(n)`` (a unit-variance field under H0).

    Parameters
    ----------
    z_maps : array_like
        The participants' (H, W) Z maps, stacked (P, H, W) or as a sequence.

    Returns
    -------
    numpy.ndarray
        The (H, W) group Z map.

    Examples
    --------
    >>> group_z([np.ones((2, 2)), np.ones((2, 2))]).round(3).tolist()
    [[1.414, 1.414], [1.414, 1.414]]
    """
    stack = np.asarray(z_maps, dtype=np.float64)
    if stack.ndim != 3 or len(stack) == 0:
        raise InputError(f"group CI needs a stack of (n, H, W) Z maps, got shape {stack.shape}")
    if not np.isfinite(stack).all():
        raise InputError("participant Z maps contain NaN or infinite values")
    return stack.sum(axis=0) / math.sqrt(len(stack))
