"""Relevance-guided bubbles: centre densities from a relevance map, and area-matched top-k masks.

Guided apertures sit where a model puts its relevance, antiguided ones where it does not; the
density is fed to :class:`stimuli.bubbles.CentreSampler`, so guided trials differ from random
ones only in where the centres come from. :func:`topk_reveal_mask` is the area-matched control:
it reveals the most (or least) relevant pixels, as much area as a bubbles mask reveals.

Examples
--------
>>> from stimuli.bubbles import CentreSampler, bubbles_mask
>>> relevance = np.zeros((64, 64)); relevance[20:30, 10:20] = 1.0
>>> density = guidance_density(relevance, sigma_px=4, strength=1.0)
>>> centres = CentreSampler(density.shape, weights=density).sample(10, np.random.default_rng(0))
>>> bool(((centres[:, 0] > 12) & (centres[:, 0] < 38)).all())
True
>>> mask = topk_reveal_mask(relevance, area_px=bubbles_mask((64, 64), centres, 4).sum())
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from .contracts.errors import InputError

__all__ = ["GUIDED_MODES", "check_relevance_map", "guidance_density", "topk_reveal_mask"]

GUIDED_MODES = ("guided", "antiguided")
Mode = Literal["guided", "antiguided"]


def check_relevance_map(
    relevance_map: np.ndarray, shape: Sequence[int] | None = None, *, name: str = "relevance map"
) -> np.ndarray:
    """A relevance map as float64 (H, W), or one InputError naming ``name`` and the problem.

    Refused: not 2-D, a shape other than ``shape`` (the stimulus grid) when given, NaN or
    infinite values, all zeros.

    Parameters
    ----------
    relevance_map : numpy.ndarray
        The map.
    shape : sequence of int, optional
        The stimulus grid it must match.
    name : str
        What the map is, for error messages.

    Returns
    -------
    numpy.ndarray
        The map as float64.
    """
    array = np.asarray(relevance_map, dtype=np.float64)
    if array.ndim != 2:
        raise InputError(f"{name}: expected one (H, W) map, got shape {array.shape}")
    if shape is not None and array.shape != tuple(int(s) for s in shape):
        raise InputError(f"{name}: shape {array.shape} differs from the stimulus grid {tuple(shape)} "
                         "(explain the model on this prepared set)")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains {int((~np.isfinite(array)).sum())} NaN or infinite value(s)")
    if not array.any():
        raise InputError(f"{name}: all zeros (no relevance to guide by)")
    return array


def _check_region(region: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if region is None:
        return None
    region = np.asarray(region)
    if region.shape != shape:
        raise InputError(f"region has shape {region.shape}, the relevance map {shape}")
    region = region.astype(bool)
    if not region.any():
        raise InputError("region is empty: no pixel can hold a bubble")
    return region


def _smooth(values: np.ndarray, sigma_px: float) -> np.ndarray:
    # 'nearest' keeps mass at the border (a relevant edge pixel stays relevant)
    return gaussian_filter(values, sigma=sigma_px, mode="nearest", truncate=4.0) if sigma_px > 0 else values


def guidance_density(
    relevance_map: np.ndarray,
    sigma_px: float,
    *,
    strength: float = 1.0,
    mode: Mode = "guided",
    region: np.ndarray | None = None,
    shape: Sequence[int] | None = None,
    name: str = "relevance map",
) -> np.ndarray:
    """Density of bubble centres (H, W, float64, sums to 1) from a relevance map.

    Positive relevance is smoothed with a Gaussian at the bubble scale (``sigma_px``) and
    scaled to [0, 1] (``s``). Guided sampling follows ``s``, antiguided its complement
    ``1 - s`` (most likely where the model sees least). The result is mixed with the uniform
    density: ``strength * relevance_density + (1 - strength) * uniform``.

    Parameters
    ----------
    relevance_map : (H, W) relevance (LRP, any sign) on the stimulus grid: one image's map or
        a set-average (``RelevanceMaps.mean_map()``).
    sigma_px : bubble standard deviation in pixels (smoothing scale); 0 for no smoothing.
    strength : in [0, 1]; the probability that a centre is placed by relevance rather than
        uniformly. 1 is fully guided, 0 is the random condition.
    mode : ``"guided"`` or ``"antiguided"``.
    region : optional boolean (H, W) map (e.g. the face aperture); centres fall only inside.
    shape : expected (H, W) of the stimulus grid; a map of another shape is refused.
    name : what the map is, for error messages (e.g. ``"relevance of s1-01 (vgg16-...)"``).

    Returns
    -------
    numpy.ndarray
        The (H, W) float64 density of centres, summing to 1.

    Examples
    --------
    >>> relevance = np.zeros((32, 32)); relevance[8, 8] = 1.0
    >>> density = guidance_density(relevance, 2.0, strength=0.5)
    >>> round(float(density.sum()), 6), bool(density[8, 8] > density[24, 24] > 0)
    (1.0, True)
    """
    if mode not in GUIDED_MODES:
        raise InputError(f"unknown guidance mode '{mode}' (choose {', '.join(GUIDED_MODES)})")
    sigma = float(sigma_px)
    if not math.isfinite(sigma) or sigma < 0:
        raise InputError(f"smoothing sigma must be a non-negative number of pixels, got {sigma_px!r}")
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"guidance strength {strength!r} must lie in [0, 1] (1 = fully guided, 0 = uniform)")
    relevance = check_relevance_map(relevance_map, shape, name=name)
    region = _check_region(region, relevance.shape)
    inside = np.ones(relevance.shape, dtype=bool) if region is None else region
    uniform = inside / inside.sum()
    positive = np.clip(relevance, 0.0, None)
    if not positive[inside].any():
        raise InputError(f"{name}: no positive relevance"
                         + (" inside the region" if region is not None else "") + " to guide by")
    smooth = _smooth(positive, sigma)
    smooth = smooth / smooth[inside].max()
    weights = (smooth if mode == "guided" else 1.0 - smooth) * inside
    total = weights.sum()
    if total <= 0:  # antiguided on a map that is flat at its maximum: nothing to avoid
        weights, total = inside.astype(np.float64), float(inside.sum())
    density = strength * (weights / total) + (1.0 - strength) * uniform
    return density / density.sum()


def topk_reveal_mask(
    relevance_map: np.ndarray,
    area_px: float,
    *,
    which: Literal["top", "bottom"] = "top",
    smooth_px: float = 0.0,
    edge_px: float = 0.0,
    region: np.ndarray | None = None,
    shape: Sequence[int] | None = None,
    name: str = "relevance map",
) -> np.ndarray:
    """A (H, W) float32 mask revealing the most (or least) relevant pixels, ``area_px`` in total.

    The area-matched control of a bubbles trial: pass ``area_px = bubbles_mask(...).sum()``
    and the revealed area (the mask's sum) equals it within 1% (for areas of 50 px or more).

    Parameters
    ----------
    relevance_map : (H, W) relevance; a per-image map or a set-average.
    area_px : revealed area to match, in pixels (sum of a bubbles mask).
    which : ``"top"`` reveals the highest relevance, ``"bottom"`` the lowest.
    smooth_px : rank pixels by relevance smoothed at this sigma (0: raw relevance).
    edge_px : soften the mask's edge with a Gaussian of this sigma, like a bubble's flank
        (0: a hard-edged mask of exactly ``round(area_px)`` pixels).
    region : optional boolean (H, W) map; only pixels inside are revealed.
    shape : expected (H, W) of the stimulus grid.
    name : what the map is, for error messages.

    Returns
    -------
    numpy.ndarray
        A float32 (H, W) reveal mask in [0, 1] whose sum is about ``area_px``.

    Examples
    --------
    >>> relevance = np.arange(100.0).reshape(10, 10)
    >>> mask = topk_reveal_mask(relevance, 20)
    >>> float(mask.sum()), bool(mask[9].all()), bool(mask[0].any())
    (20.0, True, False)
    """
    if which not in ("top", "bottom"):
        raise InputError(f"unknown top-k side '{which}' (choose top or bottom)")
    relevance = check_relevance_map(relevance_map, shape, name=name)
    region = _check_region(region, relevance.shape)
    for label, value in (("smooth_px", smooth_px), ("edge_px", edge_px)):
        if not math.isfinite(float(value)) or value < 0:
            raise InputError(f"{label} must be a non-negative number of pixels, got {value!r}")
    available = relevance.size if region is None else int(region.sum())
    area = float(area_px)
    if not math.isfinite(area) or area <= 0 or area > available:
        raise InputError(f"revealed area {area_px!r} px must be positive and at most the {available} "
                         "pixels that can be revealed")
    score = _smooth(relevance, float(smooth_px))
    if which == "bottom":
        score = -score
    flat = score.ravel()
    candidates = np.arange(flat.size) if region is None else np.flatnonzero(region.ravel())
    # most relevant first; ties broken by pixel order so the mask is deterministic
    order = candidates[np.argsort(-flat[candidates], kind="stable")]

    def build(k: int) -> np.ndarray:
        mask = np.zeros(flat.size, dtype=np.float64)
        mask[order[:k]] = 1.0
        mask = mask.reshape(relevance.shape)
        if edge_px > 0:
            mask = np.clip(gaussian_filter(mask, sigma=float(edge_px), mode="constant"), 0.0, 1.0)
            if region is not None:
                mask *= region
        return mask

    if edge_px <= 0:
        return build(int(round(area))).astype(np.float32)
    # a softened edge spills mass past the border and the region: find k whose sum matches
    low, high = 1, available
    while low < high:
        middle = (low + high) // 2
        if build(middle).sum() < area:
            low = middle + 1
        else:
            high = middle
    best = min((max(low - 1, 1), low), key=lambda k: abs(build(k).sum() - area))
    return build(best).astype(np.float32)
