"""The square grid a face set is prepared on: framing a photograph, resizing it, the face aperture.

``"pad"`` framing keeps the whole photograph on a square of its long side (ORL's 92x112
portraits keep forehead and chin); ``"crop"`` cuts a centred square of its short side.
:func:`stimuli.prepare.prepare_faces` uses these before equalising.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from .contracts.errors import InputError

__all__ = ["FRAMINGS", "DEFAULT_APERTURE", "frame_square", "resize", "elliptical_aperture"]

FRAMINGS = ("pad", "crop")
Framing = Literal["pad", "crop"]
# (centre row, centre col, radius rows, radius cols) as fractions of the square grid, fitted by
# eye to the mean prepared ORL face (pad framing): hair line to chin, ear to ear.
DEFAULT_APERTURE = (0.52, 0.5, 0.47, 0.36)


def frame_square(image: np.ndarray, framing: Framing = "pad") -> tuple[np.ndarray, tuple[slice, slice]]:
    """Frame a (H, W) image to a square; returns it and the slices the photograph covers.

    ``"pad"`` centres the image on a square of its long side, filled with the image's mean
    (so the seam is invisible once equalised); ``"crop"`` keeps a centred square of its
    short side.

    Parameters
    ----------
    image : numpy.ndarray
        The (H, W) photograph.
    framing : {"pad", "crop"}
        How it becomes square.

    Returns
    -------
    square : numpy.ndarray
        The square image.
    covered : tuple of slice
        (rows, cols) of the square that the photograph covers.

    Examples
    --------
    >>> square, (rows, cols) = frame_square(np.ones((112, 92)), "pad")
    >>> square.shape, cols
    ((112, 112), slice(10, 102, None))
    """
    if framing not in FRAMINGS:
        raise InputError(f"unknown framing '{framing}' (choose {', '.join(FRAMINGS)})")
    height, width = image.shape
    if framing == "crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return image[top:top + side, left:left + side], (slice(0, side), slice(0, side))
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = np.full((side, side), float(image.mean()), dtype=np.float32)
    square[top:top + height, left:left + width] = image
    return square, (slice(top, top + height), slice(left, left + width))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a square float image to ``size`` x ``size`` (Lanczos, antialiased), float32.

    Parameters
    ----------
    image : numpy.ndarray
        A square float image.
    size : int
        The new side.

    Returns
    -------
    numpy.ndarray
        (size, size) float32.
    """
    if image.shape == (size, size):
        return image.astype(np.float32, copy=False)
    resized = Image.fromarray(np.asarray(image, dtype=np.float32)).resize(
        (size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float32)


def elliptical_aperture(
    shape: Sequence[int], ellipse: Sequence[float] = DEFAULT_APERTURE
) -> np.ndarray:
    """Boolean (H, W) elliptical face aperture.

    Parameters
    ----------
    shape : sequence of int
        (height, width) of the grid.
    ellipse : sequence of float
        (centre row, centre col, radius rows, radius cols) as fractions of the grid height
        and width.

    Returns
    -------
    numpy.ndarray
        True inside the ellipse.

    Examples
    --------
    >>> elliptical_aperture((9, 9), (0.5, 0.5, 0.5, 0.5))[4].all()
    np.True_
    """
    if len(ellipse) != 4 or not all(np.isfinite(v) for v in ellipse) or min(ellipse[2:]) <= 0:
        raise InputError(f"aperture ellipse {tuple(ellipse)} must be four numbers: centre row, centre col, "
                         "radius rows, radius cols (fractions of the grid, radii > 0)")
    height, width = int(shape[0]), int(shape[1])
    # pixel centres in grid fractions
    rows = (np.arange(height) + 0.5)[:, None] / height
    cols = (np.arange(width) + 0.5)[None, :] / width
    inside = ((rows - ellipse[0]) / ellipse[2]) ** 2 + ((cols - ellipse[1]) / ellipse[3]) ** 2 <= 1.0
    if not inside.any():
        raise InputError(f"aperture ellipse {tuple(ellipse)} covers no pixel of a {height}x{width} grid")
    return inside
