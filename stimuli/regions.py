"""Named face regions on the stimulus grid (ground truth for observers, faces and tests).

A region is given by name (``eyes``, ``mouth``, ...) or as ``box:top,bottom,left,right`` in
fractions of the grid height and width. Named boxes are placed for the framing of
``python -m stimuli prepare`` on roughly aligned frontal faces (the ORL set); the synthetic
ground-truth faces, the template observer and the recovery tests all take regions from here.

Examples
--------
>>> int(region_mask("box:0.25,0.5,0,1", (8, 4)).sum())
8
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .contracts.errors import InputError

__all__ = ["NAMED_REGIONS", "region_mask", "region_box"]

# (top, bottom, left, right) as fractions of the prepared grid, read off the mean face of
# ORL prepared with the default framing (pad: 92x112 centred on a 112x112 square): the eyes'
# dark band is centred at row 0.46, the pupils at columns 0.36 and 0.64, the nose tip at row
# 0.58 and the mouth at row 0.765. "left"/"right" are as seen in the image.
NAMED_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.39, 0.53, 0.22, 0.78),
    "left_eye": (0.39, 0.53, 0.22, 0.49),
    "right_eye": (0.39, 0.53, 0.51, 0.78),
    "nose": (0.53, 0.68, 0.40, 0.60),
    "mouth": (0.70, 0.83, 0.33, 0.67),
    "forehead": (0.18, 0.36, 0.28, 0.72),
    "upper": (0.0, 0.5, 0.0, 1.0),
    "lower": (0.5, 1.0, 0.0, 1.0),
}


def region_box(spec: str) -> tuple[float, float, float, float]:
    """A region's (top, bottom, left, right) fractions from its name or ``box:...`` spec.

    Parameters
    ----------
    spec : str
        A region name (``eyes``, ``mouth``, ...) or ``box:top,bottom,left,right`` in [0, 1].

    Returns
    -------
    tuple of float
        (top, bottom, left, right) as fractions of the grid.
    """
    spec = str(spec).strip()
    if spec in NAMED_REGIONS:
        return NAMED_REGIONS[spec]
    if spec.startswith("box:"):
        try:
            values = tuple(float(v) for v in spec[4:].split(","))
        except ValueError:
            values = ()
        if len(values) == 4 and 0 <= values[0] < values[1] <= 1 and 0 <= values[2] < values[3] <= 1:
            return values  # type: ignore[return-value]
        raise InputError(f"region '{spec}': a box is box:top,bottom,left,right with fractions "
                         "0 <= top < bottom <= 1 and 0 <= left < right <= 1")
    raise InputError(f"unknown region '{spec}' (choose {', '.join(NAMED_REGIONS)} or box:top,bottom,left,right)")


def region_mask(spec: str, shape: Sequence[int]) -> np.ndarray:
    """Boolean (H, W) mask of a region on a grid of ``shape``.

    Parameters
    ----------
    spec : str
        As for :func:`region_box`.
    shape : sequence of int
        (height, width) of the grid.

    Returns
    -------
    numpy.ndarray
        True inside the region.

    Examples
    --------
    >>> int(region_mask("box:0,0.5,0,0.5", (10, 10)).sum())
    25
    """
    height, width = int(shape[0]), int(shape[1])
    top, bottom, left, right = region_box(spec)
    mask = np.zeros((height, width), dtype=bool)
    r0, r1 = int(round(top * height)), max(int(round(bottom * height)), int(round(top * height)) + 1)
    c0, c1 = int(round(left * width)), max(int(round(right * width)), int(round(left * width)) + 1)
    mask[r0:r1, c0:c1] = True
    return mask
