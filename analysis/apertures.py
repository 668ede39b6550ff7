"""Parsed Bubbles trials and the linear route to a classification image (CI).

The pieces every CI computation shares: :class:`BubbleTrials` (one trial table's bubbles,
parsed once), :func:`aperture_sum` (the weighted, unclipped sum of Gaussian apertures through
two matrix products with the separable profiles) and :func:`aperture_ci` (``sum_t w_t X_t``
for one or many weight vectors). The statistics built on them live in
:mod:`analysis.ci_null` (the null) and :mod:`analysis.classification` (the CI and its Z).

Examples
--------
>>> bt = BubbleTrials((16, 16), np.array([[4.0, 4.0], [12.0, 12.0]]), np.array([0, 1]),
...                   np.array([1.0, 0.0]), np.array([2.0, 2.0]))
>>> ci = aperture_ci(bt, [0.5, -0.5])
>>> bool(ci[4, 4] > 0 > ci[12, 12])
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from stimuli.bubbles import aperture_profiles
from stimuli.contracts.centres import parse_centres
from stimuli.contracts.errors import InputError

__all__ = [
    "CI_COLUMNS",
    "BubbleTrials",
    "parse_bubble_trials",
    "concat_bubble_trials",
    "aperture_sum",
    "aperture_ci",
    "centre_histogram",
    "kernel_groups",
]

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
    which trial (0..N-1) each belongs to. ``stratum`` (N,) optionally labels the centre
    density each trial's centres were drawn from (e.g. its face, in a guided condition with
    per-image maps): trials of one label share a density; None means all trials share one.

    Parameters
    ----------
    shape : tuple of int
        The stimulus grid (H, W).
    centres : numpy.ndarray
        (M, 2) [row, col] centres of all trials.
    trial_of : numpy.ndarray
        (M,) the trial (0..N-1) of each centre.
    correct : numpy.ndarray
        (N,) 0/1 answers.
    sigma_px : numpy.ndarray
        (N,) aperture sigma of each trial (pixels).
    where : str
        Where the trials came from (for messages).
    stratum : numpy.ndarray, optional
        (N,) label of each trial's centre density.
    """

    shape: tuple[int, int]
    centres: np.ndarray
    trial_of: np.ndarray
    correct: np.ndarray  # (N,) float 0/1
    sigma_px: np.ndarray  # (N,) aperture sigma per trial
    where: str = "trials"
    stratum: np.ndarray | None = None  # (N,) str: label of each trial's centre density

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
                       correct=self.correct[keep], sigma_px=self.sigma_px[keep],
                       stratum=None if self.stratum is None else self.stratum[keep])

    def with_strata(self, labels: Any) -> BubbleTrials:
        """The same trials with each one's centre-density label (N,), or None for one shared density."""
        if labels is None:
            return replace(self, stratum=None)
        labels = np.asarray(labels, dtype=str)
        if labels.shape != (self.n_trials,):
            raise InputError(f"{self.where}: {labels.size} centre-density labels for {self.n_trials} trials")
        return replace(self, stratum=labels)


def parse_bubble_trials(trials: pd.DataFrame, shape: Sequence[int], *, where: str = "trials") -> BubbleTrials:
    """Check and parse a trial table (trial-file format) for CI computation.

    Needs columns ``correct`` (0/1), ``bubbles`` (JSON [row, col] list) and ``sigma_px``.
    Every problem is one :class:`~stimuli.InputError` naming ``where`` and the line
    (the header is line 1, as in the trial file).

    Parameters
    ----------
    trials : pandas.DataFrame
        A trial table (trial-file format).
    shape : sequence of int
        The stimulus grid (H, W).
    where : str
        Where the table came from (for messages).

    Returns
    -------
    BubbleTrials
        The parsed trials.
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
    """Several parsed tables (e.g. one participant's sessions) as one, trials in order.

    Centre-density labels are kept; a part without labels gets the label ``''``.

    Parameters
    ----------
    parts : sequence of BubbleTrials
        Parsed tables on one grid.
    where : str, optional
        Where the result came from (default: the first part's).

    Returns
    -------
    BubbleTrials
        All trials, in order.
    """
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
        stratum=_concat_strata(parts),
    )


def _concat_strata(parts: Sequence[BubbleTrials]) -> np.ndarray | None:
    if all(p.stratum is None for p in parts):
        return None
    # an unlabelled part keeps the label '' (its centres' own pooled density)
    return np.concatenate([np.full(p.n_trials, "", dtype=object) if p.stratum is None
                           else p.stratum.astype(object) for p in parts]).astype(str)


def aperture_sum(shape: Sequence[int], centres: Any, sigma_px: float, weights: Any = None) -> np.ndarray:
    """The weighted, unclipped sum of apertures ``sum_i w_i g_i(p)`` on the grid (float64).

    Weights are accumulated on the grid of the centres' distinct rows x columns and
    convolved once with the separable aperture profiles. ``weights`` (M,) gives one (H, W)
    map; (K, M) gives K maps at once (permutations).

    Parameters
    ----------
    shape : sequence of int
        The grid (H, W).
    centres : array_like
        (M, 2) [row, col] centres.
    sigma_px : float
        Aperture sigma (pixels).
    weights : array_like, optional
        (M,) or (K, M) weights (default: ones).

    Returns
    -------
    numpy.ndarray
        (H, W) or (K, H, W) float64 sums.

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
    """Count of centres at each pixel (rounded to the nearest pixel): a sampling density.

    Parameters
    ----------
    centres : array_like
        (M, 2) [row, col] centres.
    shape : sequence of int
        The grid (H, W).

    Returns
    -------
    numpy.ndarray
        (H, W) counts.

    Examples
    --------
    >>> centre_histogram([[0, 0], [0.2, 0.1], [1, 1]], (2, 2)).tolist()
    [[2.0, 0.0], [0.0, 1.0]]
    """
    height, width = _check_shape(shape)
    points = np.rint(np.asarray(centres, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    points[:, 0] = np.clip(points[:, 0], 0, height - 1)
    points[:, 1] = np.clip(points[:, 1], 0, width - 1)
    flat = np.bincount(points[:, 0] * width + points[:, 1], minlength=height * width)
    return flat.reshape(height, width).astype(np.float64)


def kernel_groups(bt: BubbleTrials, smooth_px: float) -> list[tuple[float, np.ndarray]]:
    """(kernel sigma, trial mask) for each distinct kernel sqrt(sigma^2 + smooth^2).

    Parameters
    ----------
    bt : BubbleTrials
        The parsed trials.
    smooth_px : float
        Extra smoothing sigma (pixels).

    Returns
    -------
    list of (float, numpy.ndarray)
        Each distinct kernel sigma with the boolean (N,) mask of its trials.
    """
    smooth = float(smooth_px)
    if not math.isfinite(smooth) or smooth < 0:
        raise InputError(f"smoothing sigma must be zero or a positive number of pixels, got {smooth_px!r}")
    kernel = np.round(np.sqrt(bt.sigma_px**2 + smooth**2), 9)
    return [(float(k), kernel == k) for k in np.unique(kernel)]


def aperture_ci(bt: BubbleTrials, weights: Any, smooth_px: float = 0.0) -> np.ndarray:
    """``sum_t w_t X_t`` for per-trial ``weights`` (N,) or (K, N), kernels widened by ``smooth_px``.

    Parameters
    ----------
    bt : BubbleTrials
        The parsed trials.
    weights : array_like
        (N,) or (K, N) per-trial weights.
    smooth_px : float
        Extra smoothing sigma (pixels).

    Returns
    -------
    numpy.ndarray
        (H, W) or (K, H, W) weighted sums of the trials' masks.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[-1] != bt.n_trials:
        raise InputError(f"{w.shape[-1]} weights for {bt.n_trials} trials")
    total = 0.0
    for sigma, in_group in kernel_groups(bt, smooth_px):
        on = in_group[bt.trial_of]
        total = total + aperture_sum(bt.shape, bt.centres[on], sigma, w[..., bt.trial_of[on]])
    return np.asarray(total)


