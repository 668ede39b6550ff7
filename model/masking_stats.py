"""Masking statistics: AOPC per image, relative transfer and its asymmetry, bootstrapped over images.

From a target's per-image masking curves (:func:`model.transfer.masking_curves`; fraction 0
included: unmasked for ``remove``, fully hidden for ``keep``) on a uniform fraction grid:

* ``aopc`` per image (Samek et al., 2017): the mean over the fractions of
  ``score(unmasked) - score(remove f)``; for ``keep`` the mean gain ``score(keep f) - score(keep 0)``.
  The score is the true-class probability (``p_true``, default), correctness (``accuracy``) or
  correctness weighted so that its mean is the balanced accuracy (``balanced_accuracy``). A
  (source, target) AOPC is the mean over the target's images, with a bootstrap CI over images.
* relative transfer ``(aopc - aopc_random) / (aopc_own - aopc_random)``: 0 = random blobs,
  1 = the target's own map. It is what transfer and asymmetry are measured on: the raw
  ``M[a, b] - M[b, a]`` mixes map quality with how fragile each target is.
* the asymmetry ``relative_ab - relative_ba`` of each pair, with a bootstrap CI and p over
  images (paired when both targets were tested on the same images), not a t-test over pairs.

Bootstrap resamples are seeded (``seed``, recorded as ``boot_seed`` in every table) and shared by
every source of a target, and by the targets tested on the same images.

Examples
--------
>>> ab = np.full(40, 0.5); ba = np.full(40, 0.25); zero = np.zeros(40)
>>> out = asymmetry_bootstrap(ab, zero, np.ones(40), ba, zero, 0.5 * np.ones(40), n_boot=200)
>>> round(out["difference"], 6), round(out["relative_ab"], 6)
(0.0, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.variants import variant_relation

from .masking import RANDOM, SET_MEAN, set_mean_name

__all__ = [
    "image_aopc",
    "bootstrap_indices",
    "bootstrap_p",
    "relative_transfer",
    "asymmetry_bootstrap",
    "aopc_table",
    "transfer_table",
    "asymmetry_table",
    "group_table",
    "baseline_summary",
    "matrix",
]

def is_baseline(source: str) -> bool:
    """Random masks or a set-mean map, not a variant's per-image maps."""
    return source == RANDOM or source.startswith(SET_MEAN)


def image_aopc(per_image: pd.DataFrame) -> pd.DataFrame:
    """AOPC of every image, per (source, target, mode), on each score.

    Parameters
    ----------
    per_image : pandas.DataFrame
        The per-image rows of :func:`model.transfer.masking_curves` (fraction 0 included).

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target``, ``mode``, ``stimulus_id``, ``label``, ``aopc_p_true``,
        ``aopc_accuracy``, ``aopc_balanced_accuracy``, ``fractions`` (0 included).

    Examples
    --------
    >>> rows = pd.DataFrame({"source": "a", "target": "t", "mode": "remove", "fraction": [0.0, 0.5, 1.0],
    ...                      "stimulus_id": "x", "label": 0, "p_true": [0.9, 0.6, 0.3], "correct": [1, 1, 0],
    ...                      "weight": 1.0})
    >>> float(image_aopc(rows).aopc_p_true.iloc[0].round(6))
    0.3
    """
    parts = []
    for (source, target, mode), group in per_image.groupby(["source", "target", "mode"], sort=False):
        ids = pd.unique(group["stimulus_id"])
        sign = 1.0 if mode == "remove" else -1.0
        out = {"source": source, "target": target, "mode": mode, "stimulus_id": ids}
        first = group.drop_duplicates("stimulus_id").set_index("stimulus_id").loc[ids]
        out["label"] = first["label"].to_numpy()
        for score in ("p_true", "correct"):
            wide = group.pivot(index="stimulus_id", columns="fraction", values=score).loc[ids].sort_index(axis=1)
            values = wide.to_numpy(np.float64)
            out["aopc_" + ("accuracy" if score == "correct" else score)] = sign * (values[:, :1] - values).mean(1)
            out["fractions"] = values.shape[1]
        out["aopc_balanced_accuracy"] = first["weight"].to_numpy(np.float64) * out["aopc_accuracy"]
        parts.append(pd.DataFrame(out))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_indices(n: int, n_boot: int, seed: Any) -> np.ndarray:
    """(n_boot, n) image indices drawn with replacement (seeded).

    Parameters
    ----------
    n : int
        Images.
    n_boot : int
        Resamples.
    seed : int or sequence of int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        int64 (n_boot, n).
    """
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided bootstrap p of ``value == 0``.

    Twice the smaller tail share of the resampled values at or beyond 0 (add-one corrected, so
    never 0).

    Parameters
    ----------
    boot : numpy.ndarray
        Resampled values (non-finite ones are left out).

    Returns
    -------
    float
        The two-sided p value (NaN with no finite value).

    Examples
    --------
    >>> bootstrap_p(np.array([0.1, 0.2, 0.3])), bootstrap_p(np.array([-1.0, 1.0]))
    (0.5, 1.0)
    """
    boot = np.asarray(boot, dtype=np.float64)
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return math.nan
    below = (np.sum(boot <= 0) + 1) / (len(boot) + 1)
    above = (np.sum(boot >= 0) + 1) / (len(boot) + 1)
    return float(min(1.0, 2 * min(below, above)))


def _interval(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return math.nan, math.nan
    low, high = np.percentile(boot, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)


def relative_transfer(aopc: np.ndarray, random: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``(mean aopc - mean random) / (mean own - mean random)`` over the last axis (images).

    Parameters
    ----------
    aopc : numpy.ndarray
        Per-image AOPC of the source's maps on the target.
    random : numpy.ndarray
        Of random masks on the target.
    own : numpy.ndarray
        Of the target's own maps.

    Returns
    -------
    numpy.ndarray
        0 = random blobs, 1 = the target's own map (one value per leading index).

    Examples
    --------
    >>> round(float(relative_transfer(np.array([0.3]), np.array([0.1]), np.array([0.5]))), 6)
    0.5
    """
    mean_random = np.mean(random, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.mean(aopc, axis=-1) - mean_random) / (np.mean(own, axis=-1) - mean_random)


def _boot_relative(aopc, random, own, index: np.ndarray) -> np.ndarray:
    return relative_transfer(aopc[index], random[index], own[index])


def asymmetry_bootstrap(ab: np.ndarray, random_b: np.ndarray, own_b: np.ndarray, ba: np.ndarray,
                        random_a: np.ndarray, own_a: np.ndarray, *, n_boot: int = 2000, seed: Any = 0,
                        confidence: float = 0.95, paired: bool = True) -> dict[str, float]:
    """Is a's map worth more to b than b's map to a, relative to each target's baselines?

    Parameters
    ----------
    ab, random_b, own_b : numpy.ndarray
        Per-image AOPC on target b of a's maps, random masks and b's own maps (the same images).
    ba, random_a, own_a : numpy.ndarray
        Likewise on target a.
    n_boot : int
        Resamples of images.
    seed : int or sequence of int
        Seed of the resamples.
    confidence : float
        Level of the CI.
    paired : bool
        Both targets saw the same images in the same order: one resample serves both.

    Returns
    -------
    dict of str to float
        ``relative_ab``, ``relative_ba``, their ``difference``, its bootstrap ``ci_low``/``ci_high``
        and two-sided ``p`` (:func:`bootstrap_p`).
    """
    # the resamples asymmetry_table draws for the first (and, paired, only) image set
    index_b = bootstrap_indices(len(ab), n_boot, [seed, 0])
    index_a = index_b if paired and len(ba) == len(ab) else bootstrap_indices(len(ba), n_boot, [seed, 1])
    boot = _boot_relative(ab, random_b, own_b, index_b) - _boot_relative(ba, random_a, own_a, index_a)
    rel_ab, rel_ba = float(relative_transfer(ab, random_b, own_b)), float(relative_transfer(ba, random_a, own_a))
    low, high = _interval(boot, confidence)
    return {"relative_ab": rel_ab, "relative_ba": rel_ba, "difference": rel_ab - rel_ba, "ci_low": low,
            "ci_high": high, "p": bootstrap_p(boot)}


class _PerImage:
    """Per-image AOPC vectors by (source, target) of one mode, and each target's resamples."""

    def __init__(self, aopc_images: pd.DataFrame, mode: str, metric: str, n_boot: int, seed: int):
        table = aopc_images[aopc_images["mode"] == mode]
        self.column, self.n_boot, self.seed = f"aopc_{metric}", n_boot, seed
        self.values: dict[tuple[str, str], np.ndarray] = {}
        self.ids: dict[str, tuple[str, ...]] = {}
        for (source, target), group in table.groupby(["source", "target"], sort=False):
            ids = tuple(group["stimulus_id"].astype(str))
            if self.ids.setdefault(target, ids) != ids:  # every source of a target: the same images
                group = group.set_index(group["stimulus_id"].astype(str)).loc[list(self.ids[target])]
            self.values[(source, target)] = group[self.column].to_numpy(np.float64)
        self._index: dict[tuple[str, ...], np.ndarray] = {}

    def index(self, target: str) -> np.ndarray:
        """The resamples of ``target``'s images: the same for every target tested on the same images."""
        ids = self.ids[target]
        if ids not in self._index:
            self._index[ids] = bootstrap_indices(len(ids), self.n_boot, [self.seed, len(self._index)])
        return self._index[ids]

    def get(self, source: str, target: str) -> np.ndarray | None:
        return self.values.get((source, target))

    def relative(self, source: str, target: str) -> tuple[float, np.ndarray] | None:
        parts = [self.get(source, target), self.get(RANDOM, target), self.get(target, target)]
        if any(p is None for p in parts):
            return None
        return float(relative_transfer(*parts)), _boot_relative(*parts, self.index(target))


def aopc_table(aopc_images: pd.DataFrame, metric: str = "p_true", *, n_boot: int = 2000, seed: int = 0,
               confidence: float = 0.95) -> pd.DataFrame:
    """AOPC per (source, target, mode): the mean over images on ``metric`` with a bootstrap CI.

    Parameters
    ----------
    aopc_images : pandas.DataFrame
        :func:`image_aopc`'s table.
    metric : {"p_true", "accuracy", "balanced_accuracy"}
        The score ``aopc`` is the mean AOPC of.
    n_boot : int
        Resamples of images (shared by every source of a target).
    seed : int
        Seed of the resamples (recorded as ``boot_seed``).
    confidence : float
        Level of the CIs.

    Returns
    -------
    pandas.DataFrame
        ``aopc`` with ``aopc_ci_low``/``_high``, and the means on every score (``aopc_p`` is the
        true-class probability's).
    """
    rows = []
    for mode in pd.unique(aopc_images["mode"]):
        data = _PerImage(aopc_images, mode, metric, n_boot, seed)
        table = aopc_images[aopc_images["mode"] == mode]
        for (source, target), group in table.groupby(["source", "target"], sort=False):
            values = data.get(source, target)
            low, high = _interval(values[data.index(target)].mean(axis=1), confidence)
            rows.append({"source": source, "target": target, "mode": mode, "metric": metric,
                         "aopc": float(values.mean()), "aopc_ci_low": low, "aopc_ci_high": high,
                         "aopc_p": float(group["aopc_p_true"].mean()),
                         "aopc_accuracy": float(group["aopc_accuracy"].mean()),
                         "aopc_balanced_accuracy": float(group["aopc_balanced_accuracy"].mean()),
                         "fractions": int(group["fractions"].iloc[0]), "n_images": len(group),
                         "n_boot": n_boot, "boot_seed": seed})
    return pd.DataFrame(rows)


def transfer_table(aopc_images: pd.DataFrame, mode: str, metric: str = "p_true", *, n_boot: int = 2000,
                   seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """M[source, target] with the target's baselines, the relative transfer and bootstrap CIs.

    Parameters
    ----------
    aopc_images : pandas.DataFrame
        :func:`image_aopc`'s table.
    mode : {"remove", "keep"}
        The mode the matrix is made of.
    metric, n_boot, seed, confidence
        As :func:`aopc_table`.

    Returns
    -------
    pandas.DataFrame
        One row per (source, target): ``aopc`` (source's maps), ``aopc_own`` (target's maps),
        ``aopc_random``, ``aopc_setmean`` (NaN when not measured), ``relative`` (0 = random,
        1 = own map) with ``relative_ci_low``/``_high``, ``relative_setmean`` and ``vs_setmean``
        = aopc - aopc_setmean with its CI (> 0: the per-image maps beat the set-mean map).
    """
    data = _PerImage(aopc_images, mode, metric, n_boot, seed)
    rows = []
    for source, target in data.values:
        if is_baseline(source):
            continue
        values, index = data.get(source, target), data.index(target)
        own, rand = data.get(target, target), data.get(RANDOM, target)
        setmean = data.get(set_mean_name(source), target)
        row = {"source": source, "target": target, "mode": mode, "metric": metric, "aopc": float(values.mean()),
               "aopc_own": float(own.mean()) if own is not None else math.nan,
               "aopc_random": float(rand.mean()) if rand is not None else math.nan,
               "aopc_setmean": float(setmean.mean()) if setmean is not None else math.nan,
               "relative": math.nan, "relative_ci_low": math.nan, "relative_ci_high": math.nan,
               "relative_setmean": math.nan, "vs_setmean": math.nan, "vs_setmean_ci_low": math.nan,
               "vs_setmean_ci_high": math.nan, "n_images": len(values), "n_boot": n_boot, "boot_seed": seed}
        relative = data.relative(source, target)
        if relative is not None:
            row["relative"] = relative[0]
            row["relative_ci_low"], row["relative_ci_high"] = _interval(relative[1], confidence)
        if setmean is not None:
            if own is not None and rand is not None:
                row["relative_setmean"] = float(relative_transfer(setmean, rand, own))
            row["vs_setmean"] = float(values.mean() - setmean.mean())
            row["vs_setmean_ci_low"], row["vs_setmean_ci_high"] = _interval(
                (values[index] - setmean[index]).mean(axis=1), confidence)
        rows.append(row)
    return pd.DataFrame(rows)


def asymmetry_table(aopc_images: pd.DataFrame, mode: str, metric: str = "p_true", *, n_boot: int = 2000,
                    seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Per unordered pair {a, b}: the raw and the relative-transfer asymmetry.

    Parameters
    ----------
    aopc_images, mode, metric, n_boot, seed, confidence
        As :func:`transfer_table` (``mode``: the mode compared).

    Returns
    -------
    pandas.DataFrame
        Raw M[a, b] - M[b, a] (``asymmetry``, confounded with how fragile each target is), and
        ``relative_ab - relative_ba`` with its bootstrap CI and p over images
        (``relative_asymmetry_ci_low``/``_high``/``_p``; ``paired``: both targets saw the same
        images, resampled together).
    """
    data = _PerImage(aopc_images, mode, metric, n_boot, seed)
    names = sorted(t for t in data.ids if not is_baseline(t))
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ab, ba = data.relative(a, b), data.relative(b, a)
            if ab is None or ba is None:
                continue
            boot = ab[1] - ba[1]
            low, high = _interval(boot, confidence)
            m_ab, m_ba = float(data.get(a, b).mean()), float(data.get(b, a).mean())
            rows.append({"a": a, "b": b, "mode": mode, "metric": metric, "m_ab": m_ab, "m_ba": m_ba,
                         "asymmetry": m_ab - m_ba, "relative_ab": ab[0], "relative_ba": ba[0],
                         "relative_asymmetry": ab[0] - ba[0], "relative_asymmetry_ci_low": low,
                         "relative_asymmetry_ci_high": high, "relative_asymmetry_p": bootstrap_p(boot),
                         "paired": data.ids[a] == data.ids[b], "n_boot": n_boot, "boot_seed": seed})
    return pd.DataFrame(rows)


def group_table(transfer: pd.DataFrame) -> pd.DataFrame:
    """Transfer summarised by how source and target relate (same, seed, task, pretrain, ...).

    Parameters
    ----------
    transfer : pandas.DataFrame
        :func:`transfer_table`'s table.

    Returns
    -------
    pandas.DataFrame
        Per (mode, relation): pairs, mean and SD of ``aopc`` and ``relative``, and the set-mean
        columns' means.
    """
    columns = ["mode", "relation", "pairs", "aopc_mean", "aopc_sd", "relative_mean", "relative_sd",
               "relative_setmean_mean", "vs_setmean_mean"]
    if transfer.empty:
        return pd.DataFrame(columns=columns)
    table = transfer.assign(relation=[variant_relation(s, t) for s, t in zip(transfer.source, transfer.target)])
    for column in ("relative_setmean", "vs_setmean"):
        if column not in table.columns:
            table[column] = math.nan
    out = table.groupby(["mode", "relation"], sort=False).agg(
        pairs=("aopc", "size"), aopc_mean=("aopc", "mean"), aopc_sd=("aopc", "std"),
        relative_mean=("relative", "mean"), relative_sd=("relative", "std"),
        relative_setmean_mean=("relative_setmean", "mean"), vs_setmean_mean=("vs_setmean", "mean")).reset_index()
    return out[columns]


def baseline_summary(aopc: pd.DataFrame, mode: str) -> list[dict[str, Any]]:
    """Per variant: AOPC ``[mean, ci_low, ci_high]`` of its own maps, its set-mean map and random blobs.

    Parameters
    ----------
    aopc : pandas.DataFrame
        :func:`aopc_table`'s table.
    mode : {"remove", "keep"}
        The mode summarised.

    Returns
    -------
    list of dict
        ``variant``, ``mode``, ``metric`` and ``own``, ``setmean``, ``random`` where measured.
    """
    rows = []
    table = aopc[aopc["mode"] == mode].set_index(["source", "target"])
    for target in pd.unique(aopc["target"]):
        row: dict[str, Any] = {"variant": target, "mode": mode, "metric": str(aopc["metric"].iloc[0])}
        for key, source in (("own", target), ("setmean", set_mean_name(target)), ("random", RANDOM)):
            if (source, target) in table.index:
                r = table.loc[(source, target)]
                row[key] = [float(r["aopc"]), float(r["aopc_ci_low"]), float(r["aopc_ci_high"])]
        rows.append(row)
    return rows


def matrix(transfer: pd.DataFrame, value: str = "aopc", names: Sequence[str] | None = None) -> pd.DataFrame:
    """Wide transfer matrix: rows = source, columns = target.

    Parameters
    ----------
    transfer : pandas.DataFrame
        :func:`transfer_table`'s table.
    value : str
        The column shown.
    names : sequence of str, optional
        Row and column order (default: as pivoted).

    Returns
    -------
    pandas.DataFrame
        The matrix.
    """
    wide = transfer.pivot(index="source", columns="target", values=value)
    return wide.reindex(index=names, columns=names) if names is not None else wide
