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

Z-transform, two ways (``z=``):

``"analytic"``
    Under H0 accuracy does not depend on where the apertures fall. With centres drawn
    independently from a density ``d`` (estimated from all centres, or given), ``m = d * h``
    and ``q = d * h^2`` (``h`` the aperture), ``E[CI] = sum_t w_t n_t m`` and
    ``Var[CI] = sum_t w_t^2 n_t (q - m^2)``; ``Z = (CI - E) / sqrt(Var)``. Linear too.
``"permutation"``
    Mean and standard deviation of the CI over random permutations of the weights.

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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from stimuli.bubbles import aperture_profiles, parse_centres
from stimuli.errors import InputError

from .stat4ci import FWHM_PER_SIGMA

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
    "aperture_ci",
    "ClassificationImage",
    "compute_ci",
    "classification_image",
    "group_z",
]

Z_METHODS = ("analytic", "permutation")
CI_COLUMNS = ("correct", "bubbles", "sigma_px")
# beyond this many (unique row x unique column) cells, accumulate per centre instead of on a grid
_MAX_CELLS_PER_PIXEL = 4


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise InputError(f"grid shape must be two positive integers (height, width), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _row_name(index: Any) -> str:
    # read_trials keeps a 0-based index of data rows: line = index + 2 (the header is line 1)
    if isinstance(index, (int, np.integer)):
        return f"line {int(index) + 2}"
    return f"row {index!r}"


@dataclass(frozen=True)
class BubbleTrials:
    """One trial table's bubbles, parsed once: what every CI computation reads.

    ``centres`` (M, 2) are all trials' [row, col] centres stacked; ``trial_of`` (M,) says
    which trial (0..N-1) each belongs to.
    """

    shape: tuple[int, int]
    centres: np.ndarray
    trial_of: np.ndarray
    correct: np.ndarray  # (N,) float 0/1
    sigma_px: np.ndarray  # (N,) aperture sigma per trial
    where: str = "trials"

    @property
    def n_trials(self) -> int:
        return len(self.correct)

    @property
    def n_bubbles(self) -> np.ndarray:
        return np.bincount(self.trial_of, minlength=self.n_trials)

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    def with_sigma(self, sigma_px: float) -> BubbleTrials:
        """The same trials rebuilt with apertures of ``sigma_px`` (a different kernel)."""
        sigma = float(sigma_px)
        if not math.isfinite(sigma) or sigma <= 0:
            raise InputError(f"sigma_px must be a positive number of pixels, got {sigma_px!r}")
        return replace(self, sigma_px=np.full(self.n_trials, sigma))

    def subset(self, keep: np.ndarray) -> BubbleTrials:
        """The trials where boolean ``keep`` (N,) is True."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        on = keep[self.trial_of]
        return replace(self, centres=self.centres[on], trial_of=new_index[self.trial_of[on]],
                       correct=self.correct[keep], sigma_px=self.sigma_px[keep])


def parse_bubble_trials(trials: pd.DataFrame, shape: Sequence[int], *, where: str = "trials") -> BubbleTrials:
    """Check and parse a trial table (trial-file format) for CI computation.

    Needs columns ``correct`` (0/1), ``bubbles`` (JSON [row, col] list) and ``sigma_px``.
    Every problem is one :class:`~stimuli.InputError` naming ``where`` and the line
    (the header is line 1, as in the trial file).
    """
    height, width = _check_shape(shape)
    missing = [c for c in CI_COLUMNS if c not in trials.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}")
    if len(trials) == 0:
        raise InputError(f"{where}: no trials")
    correct = pd.to_numeric(trials["correct"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(correct, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}, {_row_name(trials.index[i])}: 'correct' must be 0 or 1, "
                         f"got {trials['correct'].iloc[i]!r}")
    sigma = pd.to_numeric(trials["sigma_px"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(sigma) & (sigma > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}, {_row_name(trials.index[i])}: 'sigma_px' must be a positive number, "
                         f"got {trials['sigma_px'].iloc[i]!r}")
    parts, owners = [], []
    for i, (index, text) in enumerate(zip(trials.index, trials["bubbles"])):
        row = f"{where}, {_row_name(index)}"
        centres = parse_centres(text, row)
        outside = ((centres[:, 0] < 0) | (centres[:, 0] > height - 1)
                   | (centres[:, 1] < 0) | (centres[:, 1] > width - 1))
        if outside.any():
            r, c = centres[outside][0]
            raise InputError(f"{row}: bubble centre [{r:g}, {c:g}] lies outside the {height}x{width} "
                             "stimulus grid (centres are [row, col])")
        parts.append(centres)
        owners.append(np.full(len(centres), i, dtype=np.int64))
    return BubbleTrials(
        shape=(height, width),
        centres=np.concatenate(parts) if parts else np.zeros((0, 2)),
        trial_of=np.concatenate(owners) if owners else np.zeros(0, np.int64),
        correct=correct,
        sigma_px=sigma,
        where=where,
    )


def concat_bubble_trials(parts: Sequence[BubbleTrials], where: str | None = None) -> BubbleTrials:
    """Several parsed tables (e.g. one participant's sessions) as one, trials in order."""
    if not parts:
        raise InputError("no trials to concatenate")
    if len({p.shape for p in parts}) > 1:
        raise InputError(f"trial tables on different grids: {sorted({p.shape for p in parts})}")
    offsets = np.cumsum([0] + [p.n_trials for p in parts[:-1]])
    return BubbleTrials(
        shape=parts[0].shape,
        centres=np.concatenate([p.centres for p in parts]),
        trial_of=np.concatenate([p.trial_of + o for p, o in zip(parts, offsets)]),
        correct=np.concatenate([p.correct for p in parts]),
        sigma_px=np.concatenate([p.sigma_px for p in parts]),
        where=where or " + ".join(p.where for p in parts),
    )


def trial_weights(correct: Any, n_bubbles: Any = None) -> np.ndarray:
    """Per-trial CI weights: ``correct - mean`` or, with varying ``n_bubbles``, the
    residuals of the least-squares fit ``correct ~ 1 + n_bubbles``.

    Examples
    --------
    >>> trial_weights([1, 0, 1, 1]).tolist()
    [0.25, -0.75, 0.25, 0.25]
    """
    correct = np.asarray(correct, dtype=np.float64)
    if n_bubbles is None or np.ptp(np.asarray(n_bubbles)) == 0:
        return correct - correct.mean()
    design = np.column_stack([np.ones(len(correct)), np.asarray(n_bubbles, dtype=np.float64)])
    beta, *_ = np.linalg.lstsq(design, correct, rcond=None)
    return correct - design @ beta


def aperture_sum(shape: Sequence[int], centres: Any, sigma_px: float, weights: Any = None) -> np.ndarray:
    """The weighted, unclipped sum of apertures ``sum_i w_i g_i(p)`` on the grid (float64).

    Weights are accumulated on the grid of the centres' distinct rows x columns and
    convolved once with the separable aperture profiles. ``weights`` (M,) gives one (H, W)
    map; (K, M) gives K maps at once (permutations).

    Examples
    --------
    >>> from stimuli import bubbles_mask
    >>> centres = [[5, 5], [20, 9]]
    >>> np.allclose(aperture_sum((32, 32), centres, 3.0), bubbles_mask((32, 32), centres, 3.0))
    True
    """
    height, width = _check_shape(shape)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    m = len(centres)
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    single = w.ndim == 1
    w = np.atleast_2d(w)
    if w.shape[1] != m:
        raise InputError(f"{w.shape[1]} weights for {m} centres")
    if m == 0:
        out = np.zeros((len(w), height, width))
        return out[0] if single else out
    rows, row_of = np.unique(centres[:, 0], return_inverse=True)
    cols, col_of = np.unique(centres[:, 1], return_inverse=True)
    zeros_r, zeros_c = np.zeros(len(rows)), np.zeros(len(cols))
    row_profiles = aperture_profiles((height, width), np.column_stack([rows, zeros_r]), sigma_px)[0]
    col_profiles = aperture_profiles((height, width), np.column_stack([zeros_c, cols]), sigma_px)[1]
    cells = len(rows) * len(cols)
    if cells <= _MAX_CELLS_PER_PIXEL * height * width:
        # accumulate: grid[k, r, c] = sum of weights of the centres at (rows[r], cols[c])
        onehot = sparse.csr_matrix((np.ones(m), (row_of * len(cols) + col_of, np.arange(m))),
                                   shape=(cells, m))
        grid = np.asarray(onehot @ w.T).T.reshape(len(w), len(rows), len(cols))
        out = row_profiles.T @ grid @ col_profiles
    else:  # many fractional centres: one profile pair per centre, still one product per map
        r, c = row_profiles[row_of], col_profiles[col_of]
        out = np.stack([r.T @ (wk[:, None] * c) for wk in w])
    return out[0] if single else out


def centre_histogram(centres: Any, shape: Sequence[int]) -> np.ndarray:
    """Count of centres at each pixel (rounded to the nearest pixel): a sampling density."""
    height, width = _check_shape(shape)
    points = np.rint(np.asarray(centres, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    points[:, 0] = np.clip(points[:, 0], 0, height - 1)
    points[:, 1] = np.clip(points[:, 1], 0, width - 1)
    flat = np.bincount(points[:, 0] * width + points[:, 1], minlength=height * width)
    return flat.reshape(height, width).astype(np.float64)


class CentreDensity:
    """Where bubble centres fall (a sampling density), with its aperture moments cached.

    ``moments(sigma)`` gives ``(E[h], E[h^2])`` maps of one aperture of ``sigma`` whose
    centre is drawn from the density: the ingredients of the analytic null. Build one per
    condition and pass it to every participant's :func:`compute_ci`.

    Examples
    --------
    >>> density = CentreDensity(np.ones((8, 8)))
    >>> mean, square = density.moments(2.0)
    >>> bool((square <= mean).all())
    True
    """

    def __init__(self, density: Any, shape: Sequence[int] | None = None, *, centres: Any = None) -> None:
        if centres is not None:
            self.shape = _check_shape(shape)
            self.points = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
            self.mass = np.full(len(self.points), 1.0 / max(len(self.points), 1))
        else:
            grid = np.asarray(density, dtype=np.float64)
            if grid.ndim != 2 or (shape is not None and grid.shape != tuple(shape)):
                raise InputError(f"centre density must be an (H, W) map on the grid, got shape {grid.shape}")
            if not np.isfinite(grid).all() or (grid < 0).any() or grid.sum() <= 0:
                raise InputError("centre density must be finite, non-negative and not all zero")
            self.shape = grid.shape
            rr, cc = np.nonzero(grid)
            self.points = np.column_stack([rr, cc]).astype(np.float64)
            self.mass = grid[rr, cc] / grid.sum()
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def moments(self, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
        key = float(sigma_px)
        if key not in self._cache:
            mean = aperture_sum(self.shape, self.points, key, self.mass)
            # h^2 is an aperture of sigma / sqrt(2)
            square = aperture_sum(self.shape, self.points, key / math.sqrt(2.0), self.mass)
            self._cache[key] = (mean, square)
        return self._cache[key]


def _kernel_groups(bt: BubbleTrials, smooth_px: float) -> list[tuple[float, np.ndarray]]:
    """(kernel sigma, trial mask) for each distinct kernel sqrt(sigma^2 + smooth^2)."""
    smooth = float(smooth_px)
    if not math.isfinite(smooth) or smooth < 0:
        raise InputError(f"smoothing sigma must be zero or a positive number of pixels, got {smooth_px!r}")
    kernel = np.round(np.sqrt(bt.sigma_px**2 + smooth**2), 9)
    return [(float(k), kernel == k) for k in np.unique(kernel)]


def aperture_ci(bt: BubbleTrials, weights: Any, smooth_px: float = 0.0) -> np.ndarray:
    """``sum_t w_t X_t`` for per-trial ``weights`` (N,) or (K, N), kernels widened by ``smooth_px``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[-1] != bt.n_trials:
        raise InputError(f"{w.shape[-1]} weights for {bt.n_trials} trials")
    total = 0.0
    for sigma, in_group in _kernel_groups(bt, smooth_px):
        on = in_group[bt.trial_of]
        total = total + aperture_sum(bt.shape, bt.centres[on], sigma, w[..., bt.trial_of[on]])
    return np.asarray(total)


@dataclass(frozen=True)
class ClassificationImage:
    """A CI with its null moments and Z-score; every field a plain array or number."""

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


def _zscore(ci: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    # pixels no aperture can reach have no variance: they carry no evidence, Z = 0
    tiny = 1e-9 * float(np.max(sd, initial=0.0))
    z = np.zeros_like(ci)
    ok = sd > tiny
    z[ok] = (ci[ok] - mean[ok]) / sd[ok]
    return z


def _analytic_moments(bt: BubbleTrials, weights: np.ndarray, smooth_px: float,
                      centre_density: Any) -> tuple[np.ndarray, np.ndarray]:
    if centre_density is None:
        density = CentreDensity(None, bt.shape, centres=bt.centres)
    elif isinstance(centre_density, CentreDensity):
        density = centre_density
    else:
        density = CentreDensity(centre_density, bt.shape)
    if density.shape != bt.shape:
        raise InputError(f"centre density {density.shape} and grid {bt.shape} differ in shape")
    n = bt.n_bubbles.astype(np.float64)
    mean = np.zeros(bt.shape)
    var = np.zeros(bt.shape)
    for sigma, in_group in _kernel_groups(bt, smooth_px):
        m, q = density.moments(sigma)  # E[h(p)], E[h(p)^2]
        mean += float(np.sum(weights[in_group] * n[in_group])) * m
        var += float(np.sum(weights[in_group] ** 2 * n[in_group])) * np.clip(q - m**2, 0.0, None)
    return mean, np.sqrt(var)


def _permutation_moments(bt: BubbleTrials, weights: np.ndarray, smooth_px: float, n_permutations: int,
                         rng: np.random.Generator, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros(bt.shape)
    total_sq = np.zeros(bt.shape)
    done = 0
    while done < n_permutations:
        k = min(chunk, n_permutations - done)
        perms = np.stack([rng.permutation(weights) for _ in range(k)])
        maps = aperture_ci(bt, perms, smooth_px)
        total += maps.sum(axis=0)
        total_sq += (maps**2).sum(axis=0)
        done += k
    mean = total / n_permutations
    var = np.clip(total_sq / n_permutations - mean**2, 0.0, None) * n_permutations / (n_permutations - 1)
    return mean, np.sqrt(var)


def compute_ci(bt: BubbleTrials, *, smooth_px: float = 0.0, z: str = "analytic",
               centre_density: np.ndarray | CentreDensity | None = None, n_permutations: int = 1000,
               seed: int | None = 0, covariate: bool = True, chunk: int = 32) -> ClassificationImage:
    """The CI of parsed trials, its null moments and Z-score.

    Parameters
    ----------
    bt : parsed trials (:func:`parse_bubble_trials`).
    smooth_px : extra Gaussian smoothing (sigma, px); 0 keeps the apertures' own smoothing.
    z : ``"analytic"`` or ``"permutation"`` (see the module docstring).
    centre_density : sampling density of bubble centres for the analytic null, an (H, W)
        map or a :class:`CentreDensity`; None estimates it from ``bt``'s own centres (pass
        one ``CentreDensity(centre_histogram(...))`` pooled over participants to share it).
    n_permutations, seed : for ``z="permutation"``.
    covariate : regress accuracy on the number of bubbles when it varies.
    """
    if z not in Z_METHODS:
        raise InputError(f"unknown Z-transform '{z}' (choose {', '.join(Z_METHODS)})")
    if bt.n_trials < 2:
        raise InputError(f"{bt.where}: a CI needs at least 2 trials, got {bt.n_trials}")
    if np.ptp(bt.correct) == 0:
        raise InputError(f"{bt.where}: all {bt.n_trials} trials are "
                         f"{'correct' if bt.correct[0] else 'incorrect'}; accuracy does not vary, no CI")
    weights = trial_weights(bt.correct, bt.n_bubbles if covariate else None)
    ci = aperture_ci(bt, weights, smooth_px)
    if z == "analytic":
        mean, sd = _analytic_moments(bt, weights, smooth_px, centre_density)
        n_perm = 0
    else:
        if int(n_permutations) < 2:
            raise InputError(f"permutation Z needs at least 2 permutations, got {n_permutations}")
        n_perm = int(n_permutations)
        mean, sd = _permutation_moments(bt, weights, smooth_px, n_perm, np.random.default_rng(seed), chunk)
    kernel = math.sqrt(float(np.mean(bt.sigma_px**2)) + float(smooth_px) ** 2)
    return ClassificationImage(
        z=_zscore(ci, mean, sd), ci=ci, null_mean=mean, null_sd=sd, weights=weights,
        n_trials=bt.n_trials, accuracy=bt.accuracy, kernel_sigma_px=kernel,
        fwhm_px=kernel * FWHM_PER_SIGMA, z_method=z, n_permutations=n_perm,
        seed=seed if z == "permutation" else None,
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
    """Group CI from participants' Z maps: ``sum_i Z_i / sqrt(n)`` (a unit-variance field under H0)."""
    stack = np.asarray(z_maps, dtype=np.float64)
    if stack.ndim != 3 or len(stack) == 0:
        raise InputError(f"group CI needs a stack of (n, H, W) Z maps, got shape {stack.shape}")
    if not np.isfinite(stack).all():
        raise InputError("participant Z maps contain NaN or infinite values")
    return stack.sum(axis=0) / math.sqrt(len(stack))
