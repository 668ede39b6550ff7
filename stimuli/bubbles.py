"""Bubble masks: Gaussian apertures on the stimulus grid (Gosselin & Schyns, 2001).

:func:`bubbles_mask` is the one mask builder of the platform: the PsychoPy trial loop,
the simulated and model observers and the analysis (which rebuilds every mask from the
centres stored in a trial file, :func:`mask_from_trial`) all call it.

A trial's **revealed area** is the sum of its clipped mask over the face aperture (the
prepared set's ``aperture.png``; the whole grid when the set has none), in pixels:
:func:`mask_area` of the mask shown, written by the session as ``revealed_px``, and
:func:`revealed_area` of a trial row (the same number, from the row's centres), which the
analysis uses for trial files written before that column existed.

An aperture centred at (r0, c0) with standard deviation ``sigma_px`` is
``g(r, c) = exp(-((r - r0)**2 + (c - c0)**2) / (2 sigma**2))``: 1 at its centre and
exp(-1/2) one sigma away. Apertures combine by summing and clipping to [0, 1] (the classic
rule, bubblemask's ``sum_merge``; ``merge="sum"``) or as ``1 - prod(1 - g_i)``
(``merge="prob"``). The stimulus is ``mask * face + (1 - mask) * background``.

Examples
--------
>>> mask = bubbles_mask((64, 64), [[32, 32]], sigma_px=4)
>>> float(mask[32, 32]), round(float(mask[32, 36]), 4)
(1.0, 0.6065)
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import ThreadpoolController

from .contracts.centres import parse_centres
from .contracts.errors import InputError

__all__ = [
    "MERGE_RULES",
    "bubbles_mask",
    "aperture_profiles",
    "max_sensible_bubbles",
    "CentreSampler",
    "sample_centres",
    "compose",
    "mask_from_trial",
    "REVEALED_COLUMNS",
    "aperture_pixels",
    "mask_area",
    "revealed_area",
]

MERGE_RULES = ("sum", "prob")
Merge = Literal["sum", "prob"]
# Beyond this truncation radius (in sigmas) an aperture is below 1e-12: exact at float32.
_TRUNCATE_SIGMAS = math.sqrt(2 * math.log(1e12))


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise InputError(f"mask shape must be two positive integers (height, width), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _check_sigma(sigma_px: float) -> float:
    sigma = float(sigma_px)
    if not math.isfinite(sigma) or sigma <= 0:
        raise InputError(f"bubble sigma must be a positive number of pixels, got {sigma_px!r}")
    return sigma


def max_sensible_bubbles(shape: Sequence[int], sigma_px: float) -> int:
    """The most bubbles that still leave part of the face hidden.

    Past this count the apertures' summed area (2 pi sigma^2 each) covers the image five
    times over, so the mask is fully open and a trial carries no information.

    Parameters
    ----------
    shape : sequence of int
        (height, width) of the stimulus grid.
    sigma_px : float
        Aperture standard deviation in pixels.

    Returns
    -------
    int
        The largest sensible number of bubbles.
    """
    height, width = _check_shape(shape)
    sigma = _check_sigma(sigma_px)
    return max(1, math.ceil(5 * height * width / (2 * math.pi * sigma**2)))


def _check_centres(centres: Any, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(centres, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(f"bubble centres must be a list of [row, col] pairs, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("bubble centres contain NaN or infinite values")
    height, width = shape
    inside = (array[:, 0] >= 0) & (array[:, 0] <= height - 1) & (array[:, 1] >= 0) & (array[:, 1] <= width - 1)
    if not inside.all():
        bad = array[~inside][0]
        raise InputError(
            f"bubble centre [{bad[0]:g}, {bad[1]:g}] lies outside the {height}x{width} stimulus grid "
            "(centres are [row, col])"
        )
    return array


@functools.lru_cache(maxsize=64)
def _gaussian_rows(length: int, sigma: float) -> np.ndarray:
    """Read-only (length, length) view: row ``length - 1 - p`` is the profile centred at pixel p.

    One table of exp(-d^2 / (2 sigma^2)) for d = -(length - 1) .. length - 1, seen through
    a sliding window, so a whole-pixel profile is a row copy instead of ``length`` exps.
    """
    distance = np.arange(-(length - 1), length, dtype=np.float64)
    table = np.exp((-0.5 / sigma**2) * distance**2)
    table.flags.writeable = False
    return sliding_window_view(table, length)


def _profiles(positions: np.ndarray, length: int, sigma: float) -> np.ndarray:
    """(n, length) Gaussian profiles centred at ``positions`` along one axis."""
    whole = positions.astype(np.int64)
    if np.array_equal(whole, positions):
        # whole-pixel centres (what the samplers draw): the same numbers as the formula
        # below, bit for bit, from a cached table
        return _gaussian_rows(length, sigma)[(length - 1) - whole]
    return np.exp((-0.5 / sigma**2) * (np.arange(length)[None, :] - positions[:, None]) ** 2)


def aperture_profiles(
    shape: Sequence[int], centres: Any, sigma_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column profiles of each aperture: (n, H) and (n, W), float64.

    An aperture is the outer product of its two profiles; :func:`bubbles_mask` and the
    analysis' linear classification images share them.

    Parameters
    ----------
    shape : (int, int)
        (height, width) of the stimulus grid.
    centres : array-like
        (n, 2) [row, col] centres, inside the grid.
    sigma_px : float
        The apertures' standard deviation in pixels.

    Returns
    -------
    rows, cols : numpy.ndarray
        (n, H) and (n, W): aperture ``i`` is ``np.outer(rows[i], cols[i])``.

    Examples
    --------
    >>> rows, cols = aperture_profiles((8, 6), [[4, 3]], 2.0)
    >>> rows.shape, cols.shape, float(rows[0, 4] * cols[0, 3])
    ((1, 8), (1, 6), 1.0)
    """
    height, width = _check_shape(shape)
    sigma = _check_sigma(sigma_px)
    points = _check_centres(centres, (height, width))
    return _profiles(points[:, 0], height, sigma), _profiles(points[:, 1], width, sigma)


_BLAS = None


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Run the mask's matrix product on the calling thread.

    A (H, n) @ (n, W) product takes ~0.3 ms on one core, but BLAS splits it over threads and
    on a busy machine (other processes, PsychoPy's own threads) waiting for them costs 10-30x.
    """
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def bubbles_mask(
    shape: Sequence[int], centres: Any, sigma_px: float, *, merge: Merge = "sum"
) -> np.ndarray:
    """The (H, W) float32 mask in [0, 1] of Gaussian apertures at ``centres``.

    Parameters
    ----------
    shape : sequence of int
        (height, width) of the stimulus grid.
    centres : array-like
        [row, col] centres (pixels, may be fractional), e.g. a trial's ``bubbles``.
    sigma_px : float
        Standard deviation of each aperture in pixels.
    merge : {"sum", "prob"}
        ``"sum"`` (sum and clip to 1, the classic rule) or ``"prob"`` (1 - prod(1 - g)).

    Returns
    -------
    numpy.ndarray
        Float32 values in [0, 1], shape (H, W).

    Examples
    --------
    >>> m = bubbles_mask((128, 128), [[10, 20], [64, 64]], 5.0)
    >>> m.shape, m.dtype, float(m.max())
    ((128, 128), dtype('float32'), 1.0)
    """
    if merge not in MERGE_RULES:
        raise InputError(f"unknown merge rule '{merge}' (choose {', '.join(MERGE_RULES)})")
    rows, cols = aperture_profiles(shape, centres, sigma_px)
    height, width = rows.shape[1], cols.shape[1]
    if rows.shape[0] == 0:
        return np.zeros((height, width), dtype=np.float32)
    if merge == "sum":
        # separable: sum_i r_i(y) c_i(x) is one (H, n) @ (n, W) product, float64 then rounded
        with _one_blas_thread():
            total = rows.T @ cols
        # clip and round to float32 in one pass
        return np.minimum(total, 1.0, out=np.empty((height, width), np.float32), casting="same_kind")
    # prob: multiply (1 - g_i) inside each aperture's window, where g_i > 1e-12
    sigma = float(sigma_px)
    radius = int(math.ceil(_TRUNCATE_SIGMAS * sigma))
    hidden = np.ones((height, width), dtype=np.float64)
    points = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    for i, (r0, c0) in enumerate(points):
        top, bottom = max(0, int(r0) - radius), min(height, int(r0) + radius + 2)
        left, right = max(0, int(c0) - radius), min(width, int(c0) + radius + 2)
        hidden[top:bottom, left:right] *= 1.0 - np.outer(rows[i, top:bottom], cols[i, left:right])
    return (1.0 - hidden).astype(np.float32)


class CentreSampler:
    """Draws bubble centres (whole pixels) from a weight map, fast for many masks.

    The cumulative distribution is built once; each draw is a binary search.

    Parameters
    ----------
    shape : sequence of int
        (height, width) of the stimulus grid.
    weights : numpy.ndarray, optional
        An (H, W) non-negative map: ``None`` for uniform over the image, a boolean region
        (uniform inside it, e.g. the face aperture) or a density (guided sampling).
    """

    def __init__(self, shape: Sequence[int], weights: np.ndarray | None = None) -> None:
        self.shape = _check_shape(shape)
        if weights is None:
            self.cdf = None
            return
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != self.shape:
            raise InputError(f"sampling weights have shape {weights.shape}, the stimulus grid is {self.shape}")
        if not np.isfinite(weights).all():
            raise InputError("sampling weights contain NaN or infinite values")
        if (weights < 0).any():
            raise InputError("sampling weights must be non-negative")
        total = weights.sum()
        if total <= 0:
            raise InputError("sampling weights are all zero: no pixel can hold a bubble")
        self.cdf = np.cumsum(weights.ravel()) / total
        self.cdf[-1] = 1.0

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` centres as an (n, 2) int64 array of [row, col]."""
        if int(n) != n or n < 0:
            raise InputError(f"number of bubbles must be a non-negative integer, got {n!r}")
        height, width = self.shape
        if self.cdf is None:
            flat = rng.integers(0, height * width, size=int(n))
        else:
            flat = np.searchsorted(self.cdf, rng.random(int(n)), side="right")
            flat = np.minimum(flat, height * width - 1)
        return np.stack(np.divmod(flat, width), axis=1).astype(np.int64)


def sample_centres(
    shape: Sequence[int],
    n: int,
    seed: int | np.random.Generator,
    *,
    weights: np.ndarray | None = None,
    sigma_px: float | None = None,
) -> np.ndarray:
    """Draw ``n`` bubble centres; the same ``seed`` gives the same centres on any machine.

    With ``sigma_px`` given, ``n`` is checked against :func:`max_sensible_bubbles`.

    Parameters
    ----------
    shape : sequence of int
        (height, width) of the stimulus grid.
    n : int
        How many centres.
    seed : int or numpy.random.Generator
        The seed (or generator) they are drawn with.
    weights : numpy.ndarray, optional
        Where to draw them (see :class:`CentreSampler`).
    sigma_px : float, optional
        The aperture size, to check ``n``.

    Returns
    -------
    numpy.ndarray
        (n, 2) [row, col] centres.
    """
    if sigma_px is not None and n > max_sensible_bubbles(shape, sigma_px):
        raise InputError(
            f"{n} bubbles of sigma {sigma_px:g} px would open the whole {shape[0]}x{shape[1]} image "
            f"(at most {max_sensible_bubbles(shape, sigma_px)} are sensible)"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return CentreSampler(shape, weights).sample(n, rng)


def compose(face: np.ndarray, mask: np.ndarray, background: float) -> np.ndarray:
    """The stimulus ``mask * face + (1 - mask) * background`` (float32).

    Parameters
    ----------
    face : numpy.ndarray
        The (H, W) face in [0, 1].
    mask : numpy.ndarray
        The (H, W) mask in [0, 1].
    background : float
        The grey shown where the mask is closed.

    Returns
    -------
    numpy.ndarray
        ``mask * face + (1 - mask) * background``, as float32.

    Examples
    --------
    >>> compose(np.ones((1, 2)), np.array([[1.0, 0.0]]), 0.5).tolist()
    [[1.0, 0.5]]
    """
    if face.shape != mask.shape:
        raise InputError(f"face {face.shape} and mask {mask.shape} differ in shape")
    face = face.astype(np.float32, copy=False)
    return (face - np.float32(background)) * mask + np.float32(background)


def mask_from_trial(
    trial: Mapping[str, Any], shape: Sequence[int], *, merge: Merge = "sum", where: str = "trial"
) -> np.ndarray:
    """Rebuild the mask shown on a trial from its row (``bubbles`` and ``sigma_px``).

    Parameters
    ----------
    trial : mapping
        One row of a trial file.
    shape : sequence of int
        (height, width) of the stimulus grid.
    merge : {"sum", "prob"}
        How overlapping apertures combine (see :func:`bubbles_mask`).
    where : str
        The row's place, for error messages.

    Returns
    -------
    numpy.ndarray
        The (H, W) float32 mask.
    """
    for key in ("bubbles", "sigma_px"):
        if key not in trial:
            raise InputError(f"{where}: column '{key}' is missing")
    centres = parse_centres(trial["bubbles"], where)
    return bubbles_mask(shape, centres, float(trial["sigma_px"]), merge=merge)


# trial-file columns of the revealed area (the sessions write them, the analysis reads them)
REVEALED_COLUMNS: dict[str, str] = {
    "revealed_px": "Revealed area: the sum of this trial's mask (stimuli.bubbles_mask, clipped to [0, 1]) "
                   "over the prepared set's face aperture (the whole stimulus grid when the set has none), "
                   "in stimulus-grid pixels; stimuli.bubbles.revealed_area recomputes it from the row.",
    "revealed_fraction": "revealed_px divided by the number of pixels in the face aperture (the whole grid "
                         "when the set has none): the share of the face the bubbles showed, 0 to 1.",
}


def _check_aperture(aperture: Any, shape: tuple[int, int]) -> np.ndarray | None:
    if aperture is None:
        return None
    region = np.asarray(aperture)
    if region.shape != shape:
        raise InputError(f"face aperture has shape {region.shape}, the stimulus grid is {shape}")
    if region.dtype != bool:
        region = region > 0.5 if np.issubdtype(region.dtype, np.floating) else region != 0
    if not region.any():
        raise InputError("face aperture is empty: no pixel of the face can be revealed")
    return region


def aperture_pixels(shape: Sequence[int], aperture: Any = None) -> int:
    """Number of pixels in the face aperture (``None``: every pixel of the grid).

    Parameters
    ----------
    shape : (int, int)
        (height, width) of the stimulus grid.
    aperture : array-like of bool, optional
        The (H, W) face aperture of the prepared set.

    Returns
    -------
    int
        The pixels a revealed area is a share of.

    Examples
    --------
    >>> aperture_pixels((10, 20)), aperture_pixels((2, 2), [[True, False], [True, True]])
    (200, 3)
    """
    shape = _check_shape(shape)
    region = _check_aperture(aperture, shape)
    return shape[0] * shape[1] if region is None else int(region.sum())


def mask_area(mask: np.ndarray, aperture: Any = None) -> float:
    """The revealed area of a mask: its sum over the face aperture (``None``: the whole grid), in pixels.

    The mask is the one a trial showed (:func:`bubbles_mask`, already clipped to [0, 1]), so a
    pixel half-revealed counts half. Summed in float64.

    Parameters
    ----------
    mask : numpy.ndarray
        (H, W) mask in [0, 1].
    aperture : array-like of bool, optional
        (H, W) face aperture; ``None`` counts the whole grid.

    Returns
    -------
    float
        The revealed area in pixels.

    Examples
    --------
    >>> mask = bubbles_mask((64, 64), [[32, 32]], sigma_px=4)
    >>> round(mask_area(mask), 1)           # one aperture: 2 pi sigma^2
    100.5
    >>> aperture = np.zeros((64, 64), dtype=bool); aperture[:, :32] = True
    >>> round(mask_area(mask, aperture), 1)  # only the columns left of the centre count
    45.3
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"a mask is an (H, W) array, got shape {mask.shape}")
    region = _check_aperture(aperture, (int(mask.shape[0]), int(mask.shape[1])))
    values = mask if region is None else mask[region]
    return float(values.sum(dtype=np.float64))


def revealed_area(
    trial: Mapping[str, Any], shape: Sequence[int], aperture: Any = None, *, merge: Merge = "sum",
    where: str = "trial",
) -> float:
    """The revealed area of a trial, from its row: :func:`mask_area` of :func:`mask_from_trial`.

    Parameters
    ----------
    trial : a trial-file row (mapping) with ``bubbles`` (JSON [row, col] centres) and ``sigma_px``.
    shape : (height, width) of the stimulus grid.
    aperture : boolean (H, W) face aperture of the prepared set, or ``None`` for the whole grid.
    merge : the session's merge rule (its sidecar's ``MaskMergeRule``).
    where : the row's place in its file, for error messages.

    Returns
    -------
    float
        The revealed area in pixels: the ``revealed_px`` the session wrote (to the 10
        significant digits of the file).

    Examples
    --------
    >>> row = {"bubbles": "[[16,16],[16,18]]", "sigma_px": 3}
    >>> apart = bubbles_mask((32, 32), [[16, 16]], 3).sum() * 2
    >>> overlap = revealed_area(row, (32, 32))
    >>> bool(overlap < apart)                 # the two apertures overlap: less than twice one
    True
    """
    return mask_area(mask_from_trial(trial, shape, merge=merge, where=where), aperture)
