"""Multiple comparisons: the Benjamini-Hochberg false discovery rate over a family of p-values.

Examples
--------
>>> fdr([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
[0.03, 0.04, nan, 0.04]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pingouin as pg

__all__ = ["fdr"]


def fdr(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg FDR-adjusted p-values (pingouin ``multicomp``, ``fdr_bh``).

    Parameters
    ----------
    p_values : sequence of float
        The family's p-values; NaN marks a test that was not run and is left out of the family.

    Returns
    -------
    ndarray of float
        The adjusted p-values in the same order, NaN where the input is not finite.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = pg.multicomp(p[ok], method="fdr_bh")[1]
    return out
