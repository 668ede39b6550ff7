"""The ``bubbles`` column of a trial file: the aperture centres of a trial as JSON text.

One format for every observer and every reader: a JSON list of ``[row, col]`` pairs on the
stimulus grid (integers where the centre is a whole pixel), written by :func:`format_centres`
and read back by :func:`parse_centres`, which refuses a cell that is not that in one line.

Examples
--------
>>> text = format_centres([[3, 4.5], [10, 2]])
>>> text
'[[3,4.5],[10,2]]'
>>> parse_centres(text).tolist()
[[3.0, 4.5], [10.0, 2.0]]
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["format_centres", "parse_centres"]


def format_centres(centres: Any) -> str:
    """Centres as the JSON text stored in a trial file's ``bubbles`` column.

    Parameters
    ----------
    centres : array-like
        (n, 2) [row, col] centres.

    Returns
    -------
    str
        A JSON list of [row, col] pairs.
    """
    array = np.asarray(centres).reshape(-1, 2)
    values = [[int(v) if float(v).is_integer() else float(v) for v in pair] for pair in array.tolist()]
    return json.dumps(values, separators=(",", ":"))


def parse_centres(text: Any, where: str = "bubbles") -> np.ndarray:
    """Parse a trial file's ``bubbles`` cell into an (n, 2) float64 array.

    Parameters
    ----------
    text : object
        The cell (JSON text, or an already parsed list).
    where : str
        The cell's place, for the error message.

    Returns
    -------
    numpy.ndarray
        (n, 2) [row, col] centres.
    """
    if isinstance(text, (list, tuple, np.ndarray)):
        value = text
    else:
        try:
            value = json.loads(str(text))
        except (json.JSONDecodeError, TypeError):
            raise InputError(f"{where}: cannot parse bubble centres {str(text)[:40]!r} "
                             "(expected a JSON list of [row, col])") from None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: bubble centres are not numbers: {str(text)[:40]!r}") from None
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        raise InputError(f"{where}: bubble centres must be finite [row, col] pairs: {str(text)[:40]!r}")
    return array
