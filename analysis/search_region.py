"""The search region of a classification-image test, and its intrinsic volumes.

A search region is given as an (H, W) shape (the whole grid) or a boolean (H, W) mask
(:func:`search_region_mask`). The random-field tests of :mod:`analysis.stat4ci` need its
intrinsic volumes ``mu_d`` (2D: Euler characteristic, half perimeter, area).

Intrinsic volumes are counted on the pixel lattice as Worsley does: pixels are points,
neighbouring pixels (4-connectivity) are joined by unit edges and every 2x2 block of pixels
spans a unit face, so ``EC = V - E + F``, ``half perimeter = E - 2F``, ``area = F``. A full
H x W grid is the rectangle (H-1) x (W-1). Stat4Ci's own ``CiVol`` uses the disc with the
region's pixel count as its area (:func:`disc_intrinsic_volumes`, a lower bound).

Examples
--------
>>> intrinsic_volumes((4, 6))
IntrinsicVolumes(volumes=(1.0, 8.0, 15.0), n_pixels=24)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stimuli.contracts.errors import InputError

__all__ = ["IntrinsicVolumes", "search_region_mask", "intrinsic_volumes", "disc_intrinsic_volumes"]


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
        The boolean (H, W) mask (all True for a shape).

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
