"""Reliability of maps: split-half with the Spearman-Brown correction, and the ICC.

A map estimated from many items (relevance maps of many images, CIs of many participants)
is as reliable as two independent halves of those items agree: :func:`split_half` draws
random halves, averages each, correlates the two averages and corrects the mean correlation
to the full number of items with :func:`spearman_brown`. :func:`map_icc` asks how much of
the pixel variance several maps of the same thing share (pingouin's intraclass correlation,
pixels as targets and maps as raters).

Examples
--------
>>> round(spearman_brown(0.5), 3)
0.667
>>> rng = np.random.default_rng(0)
>>> signal = rng.normal(size=(16, 16))
>>> maps = signal + rng.normal(scale=2.0, size=(40, 16, 16))
>>> result = split_half(maps, n_splits=20, seed=0)
>>> 0.5 < result["r_half"] < result["r_full"] < 1
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError

from .metrics import pearson, spearman

__all__ = ["spearman_brown", "fisher_z", "fisher_mean", "split_half", "map_icc"]

_CORRELATIONS = {"spearman": spearman, "pearson": pearson}


def spearman_brown(r: float | np.ndarray, factor: float = 2.0) -> float | np.ndarray:
    """Reliability of a measure ``factor`` times as long as one whose reliability is ``r``.

    ``factor * r / (1 + (factor - 1) * r)``; with the default 2 it turns a split-half
    correlation into the reliability of the whole.

    Parameters
    ----------
    r : float or numpy.ndarray
        The reliability (or split-half correlation).
    factor : float
        How many times longer the measure is.

    Returns
    -------
    float or numpy.ndarray
        The predicted reliability.

    Examples
    --------
    >>> round(spearman_brown(0.5), 3)
    0.667
    """
    r = np.asarray(r, dtype=np.float64)
    out = factor * r / (1 + (factor - 1) * r)
    return float(out) if out.ndim == 0 else out


def fisher_z(r: Any) -> np.ndarray:
    """Fisher's z = artanh(r), clipped away from +-1 so that perfect agreement stays finite.

    Parameters
    ----------
    r : array_like
        Correlations.

    Returns
    -------
    numpy.ndarray
        Their Fisher z values.
    """
    return np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -0.999999, 0.999999))


def fisher_mean(r: Any) -> float:
    """The mean of correlations taken in Fisher-z space (NaNs ignored; NaN if none).

    Parameters
    ----------
    r : array_like
        Correlations (NaNs ignored).

    Returns
    -------
    float
        ``tanh(mean(artanh(r)))``.

    Examples
    --------
    >>> round(fisher_mean([0.5, 0.5]), 3)
    0.5
    """
    z = fisher_z(r)
    z = z[np.isfinite(z)]
    return float(np.tanh(z.mean())) if len(z) else float("nan")


def split_half(maps: Any, *, n_splits: int = 100, seed: int = 0, region: Any = None,
               method: str = "spearman") -> dict[str, float]:
    """Split-half reliability of the mean of ``maps`` (K, H, W) over random halves of the K items.

    Returns ``r_half`` (mean correlation of the two half-means, in Fisher-z space),
    ``r_full`` (Spearman-Brown corrected to all K items), ``r_half_sd``, ``n_items`` and
    ``n_splits``. Needs at least 2 items. An odd item out is left out of each split.

    Parameters
    ----------
    maps : array_like
        (K, H, W) maps of K items.
    n_splits : int
        Random halvings.
    seed : int
        Seed of the halvings.
    region : shape or bool array, optional
        Pixels compared (default: all).
    method : str
        ``spearman`` or ``pearson``.

    Returns
    -------
    dict of str to float
        ``r_half``, ``r_full``, ``r_half_sd``, ``n_items`` and the settings.
    """
    if method not in _CORRELATIONS:
        raise InputError(f"unknown correlation '{method}' (choose {', '.join(_CORRELATIONS)})")
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise InputError(f"split-half needs a stack of maps (K, H, W), got shape {maps.shape}")
    k = len(maps)
    if k < 2:
        raise InputError(f"split-half needs at least 2 maps, got {k}")
    if n_splits < 1:
        raise InputError(f"n_splits must be at least 1, got {n_splits}")
    rng = np.random.default_rng(seed)
    half = k // 2
    correlate = _CORRELATIONS[method]
    values = []
    for _ in range(n_splits):
        order = rng.permutation(k)
        a, b = maps[order[:half]].mean(axis=0), maps[order[half:2 * half]].mean(axis=0)
        values.append(correlate(a, b, region=region))
    values = np.asarray(values)
    r_half = fisher_mean(values)
    return {"r_half": r_half, "r_full": spearman_brown(r_half, k / half),
            "r_half_sd": float(np.nanstd(values)), "n_items": k, "n_splits": int(n_splits)}


def map_icc(maps: dict[str, np.ndarray], *, region: Any = None) -> pd.DataFrame:
    """Intraclass correlations of several maps of the same thing (pingouin ``intraclass_corr``).

    Pixels (inside ``region``) are the targets, the maps the raters. Returns pingouin's
    table (``Type``, ``ICC``, ``F``, ``df1``, ``df2``, ``pval``, ``CI95``) with a
    ``n_maps`` and ``n_pixels`` column. ``ICC(C,1)`` (consistency) ignores that maps may
    differ by a constant; ``ICC(A,1)`` (absolute agreement) does not.

    Parameters
    ----------
    maps : dict of str to numpy.ndarray
        name -> (H, W) map.
    region : shape or bool array, optional
        Pixels used (default: all).

    Returns
    -------
    pandas.DataFrame
        pingouin's ICC table.
    """
    import pingouin as pg  # lazy: importing pingouin takes about 2 s; few paths need it

    if len(maps) < 2:
        raise InputError(f"an ICC needs at least 2 maps, got {len(maps)}")
    names = list(maps)
    stack = np.stack([np.asarray(maps[n], dtype=np.float64) for n in names])
    mask = np.ones(stack.shape[1:], bool) if region is None else np.asarray(region, bool)
    values = stack[:, mask]  # (raters, pixels)
    if not np.isfinite(values).all():
        raise InputError("an ICC needs finite maps (a map holds NaN or infinite values)")
    n_pixels = values.shape[1]
    long = pd.DataFrame({
        "pixel": np.tile(np.arange(n_pixels), len(names)),
        "map": np.repeat(names, n_pixels),
        "value": values.ravel(),
    })
    with np.errstate(divide="ignore", invalid="ignore"):  # identical maps: zero error variance
        table = pg.intraclass_corr(long, targets="pixel", raters="map", ratings="value")
    return table.assign(n_maps=len(names), n_pixels=n_pixels)
