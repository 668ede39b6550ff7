"""Error rates of tests measured by simulation: a count over random runs, held as a rate.

Examples
--------
>>> low, high = clopper_pearson(9, 200)
>>> round(low, 3), round(high, 3)
(0.021, 0.084)
"""

from __future__ import annotations

from scipy import stats

__all__ = ["clopper_pearson"]


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a rate ``k / n``: scipy's ``binomtest``.

    Parameters
    ----------
    k : int
        Runs in which the event happened (e.g. a test rejected a true null).
    n : int
        Runs.
    confidence : float
        Coverage of the two-sided interval.

    Returns
    -------
    low, high : float
        Bounds of the rate; 0 and 1 at the edges.
    """
    interval = stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="exact")
    return float(interval.low), float(interval.high)
