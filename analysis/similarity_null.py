"""Nulls for the map-similarity findings: is a similarity more than the design gives for free?

Two variants' relevance maps can agree without any training signal: they share a frozen
pretrained trunk, LRP maps of any network follow the face's edges, and any two face-centred
maps correlate. So each similarity across seeds, tasks or pretraining is set against the same
statistic for *baselines* of the same variants (``python -m model explain --baseline KIND``,
files ``<set>.baseline-<kind>.npz``, :func:`stimuli.contracts.relevance.baseline_set`):

``untrained``
    each variant with the layers it trained re-initialised (independent seeds) and left
    untrained: everything the design holds fixed, nothing that training put there;
``random``
    each variant with every layer re-initialised (the last step of the sanity cascade).

Maps are first *oriented* (:func:`oriented`): each multiplied by the sign of the logit it
explains. LRP maps sum to that logit, so a map of a negative logit is mostly negative; an
untrained head's logit for a class has an arbitrary sign (a re-initialised VGG head on the
Caffe-form trunk gave logits of -88 to -17 for the true class), and without orienting, two
baselines would correlate at +r or -r by the luck of their heads' signs: a null far too easy
to beat. Oriented maps compare how the evidence is spread, whatever its sign; for trained
maps only misclassified, negative-logit images change.

Per image and relation, the similarity is the Fisher-z mean over the pairs of that relation
(:func:`paired_levels`, trained and baseline side by side on the images both have). The
effect is ``tanh(mean z)`` over images, its baseline the same of the baseline pairs, and
their difference gets a percentile bootstrap CI over images (:func:`baseline_contrasts`);
pretraining is compared with seeds and tasks the same way, raw and as excess over the
baseline (:func:`level_contrasts`). Inference is over images, conditional on the trained
networks: the CIs say how sure one can be for *these* networks on other images like these,
not for other training runs (the per-pair table, :func:`pair_baselines`, shows the spread
over seeds). The verdict rules are :func:`similarity_verdict` and :func:`pretrain_verdict`.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(1.0, 0.3, 40)
>>> value, low, high = bootstrap_statistic({"t": z, "b": z - 0.5}, lambda c: np.tanh(c["t"].mean())
...                                        - np.tanh(c["b"].mean()), n_boot=500, seed=1)
>>> bool(low > 0)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.relevance import (
    BASELINE_KINDS,
    RelevanceMaps,
)

from .model_stats import LEVELS, per_image_similarity
from .reliability import fisher_z

__all__ = [
    "BASELINE_KINDS",
    "oriented",
    "baseline_similarity",
    "paired_levels",
    "bootstrap_statistic",
    "baseline_contrasts",
    "level_contrasts",
    "pair_baselines",
    "similarity_verdict",
    "pretrain_verdict",
    "trained_layers_text",
]

CONTRAST_COLUMNS = ["relation", "baseline", "n_images", "n_pairs", "effect_r", "baseline_r", "difference",
                    "ci_low", "ci_high", "n_boot", "seed"]


def oriented(maps: RelevanceMaps, stimulus_id: Sequence[str] | None = None) -> RelevanceMaps:
    """Each map times the sign of the logit it explains (of its sum where the logit is 0 or not
    finite), optionally only the maps of ``stimulus_id`` (in the order of ``maps``).

    Parameters
    ----------
    maps : RelevanceMaps
        A variant's maps.
    stimulus_id : sequence of str, optional
        Only these images.

    Returns
    -------
    RelevanceMaps
        The oriented maps.

    Examples
    --------
    >>> from analysis.model_stats import relevance_maps
    >>> m = relevance_maps(np.array([[[1.0, 2.0]], [[-1.0, -3.0]]]), "v")
    >>> oriented(m).relevance.tolist()
    [[[1.0, 2.0]], [[1.0, 3.0]]]
    """
    keep = np.ones(len(maps), bool) if stimulus_id is None else np.isin(maps.stimulus_id, list(stimulus_id))
    relevance = maps.relevance[keep]
    logit = np.asarray(maps.logit[keep], dtype=np.float64)
    sums = relevance.sum(axis=(1, 2), dtype=np.float64)
    sign = np.where(np.isfinite(logit) & (logit != 0), np.sign(logit), np.sign(sums))
    sign[sign == 0] = 1.0
    return RelevanceMaps((relevance * sign[:, None, None]).astype(np.float32), maps.stimulus_id[keep],
                         maps.target[keep], maps.prediction[keep], maps.logit[keep], maps.meta)


def baseline_similarity(baselines: Mapping[str, RelevanceMaps], pairs: Sequence[tuple[str, str]], *,
                        region: Any = None) -> pd.DataFrame:
    """:func:`analysis.model_stats.per_image_similarity` of the baselines of ``pairs`` (those with both).

    Parameters
    ----------
    baselines : mapping of str to RelevanceMaps
        variant -> its baseline maps of one kind.
    pairs : sequence of (str, str)
        The trained pairs.
    region : bool array, optional
        Pixels compared (default: all).

    Returns
    -------
    pandas.DataFrame
        :func:`analysis.model_stats.per_image_similarity` of the baseline pairs.
    """
    pairs = [(a, b) for a, b in pairs if a in baselines and b in baselines]
    return per_image_similarity(dict(baselines), region=region, pairs=pairs)


def paired_levels(trained: pd.DataFrame, baseline: pd.DataFrame, metric: str = "spearman",
                  levels: Sequence[str] = LEVELS) -> pd.DataFrame:
    """Per image and relation: the Fisher-z mean similarity of the trained pairs (``z``) and of the
    same pairs' baselines (``z_baseline``), on the (pair, image) cells both tables have.

    Columns: ``stimulus_id``, ``relation``, ``z``, ``z_baseline``, ``n_pairs``.

    Parameters
    ----------
    trained, baseline : pandas.DataFrame
        Per-image pair tables of the trained maps and of one kind of baselines.
    metric : str
        The similarity compared, ``spearman`` or ``pearson``.
    levels : sequence of str
        The relations kept.

    Returns
    -------
    pandas.DataFrame
        One row per image and relation.
    """
    keys = ["variant_a", "variant_b", "relation", "stimulus_id"]
    cells = trained[keys + [metric]].merge(baseline[keys + [metric]], on=keys, suffixes=("", "_baseline"))
    cells = cells[cells["relation"].isin(levels) & cells[metric].notna() & cells[f"{metric}_baseline"].notna()]
    if cells.empty:
        return pd.DataFrame(columns=["stimulus_id", "relation", "z", "z_baseline", "n_pairs"])
    cells = cells.assign(z=fisher_z(cells[metric]), z_baseline=fisher_z(cells[f"{metric}_baseline"]))
    out = (cells.groupby(["relation", "stimulus_id"], sort=False)
           .agg(z=("z", "mean"), z_baseline=("z_baseline", "mean"), n_pairs=("z", "size")).reset_index())
    order = {level: i for i, level in enumerate(levels)}
    out = out.sort_values(["relation", "stimulus_id"], key=lambda c: c.map(order) if c.name == "relation" else c)
    return out[["stimulus_id", "relation", "z", "z_baseline", "n_pairs"]].reset_index(drop=True)


def bootstrap_statistic(columns: Mapping[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], float], *,
                        n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """``statistic`` of per-image columns, with a percentile bootstrap CI over images.

    Every column holds one value per image (the same images, in the same order); a resample
    draws images with replacement and keeps each image's values together (paired).
    Returns (value, CI low, CI high); NaN bounds with fewer than 3 images.

    Parameters
    ----------
    columns : mapping of str to numpy.ndarray
        Per-image values, one array per column.
    statistic : callable
        Maps a dict of (resampled) columns to a number.
    n_boot : int
        Bootstrap draws.
    seed : int
        Their seed.
    confidence : float
        Level of the CI.

    Returns
    -------
    value, low, high : float
        The statistic and its CI.
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    n = len(next(iter(arrays.values())))
    value = float(statistic(arrays))
    if n < 3 or n_boot < 1:
        return value, float("nan"), float("nan")
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    draws = np.array([statistic({k: v[i] for k, v in arrays.items()}) for i in index])
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return value, float(low), float(high)


def _r_difference(columns: dict[str, np.ndarray]) -> float:
    return float(np.tanh(columns["z"].mean()) - np.tanh(columns["z_baseline"].mean()))


def baseline_contrasts(paired: Mapping[str, pd.DataFrame], *, n_boot: int = 2000, seed: int = 0,
                       confidence: float = 0.95) -> pd.DataFrame:
    """Per relation and baseline kind: the trained similarity, the baseline's and their difference.

    ``paired`` maps a baseline kind to its :func:`paired_levels` table. ``effect_r`` and
    ``baseline_r`` are ``tanh`` of the mean Fisher z over images; ``difference`` is their
    difference, with a percentile bootstrap CI over images (``ci_low``, ``ci_high``).

    Parameters
    ----------
    paired : mapping of str to pandas.DataFrame
        baseline kind -> :func:`paired_levels`.
    n_boot : int
        Bootstrap draws.
    seed : int
        Their seed.
    confidence : float
        Level of the CIs.

    Returns
    -------
    pandas.DataFrame
        :data:`CONTRAST_COLUMNS`, one row per relation and baseline kind.
    """
    rows = []
    for kind, table in paired.items():
        for relation, group in table.groupby("relation", sort=False):
            value, low, high = bootstrap_statistic({"z": group["z"].to_numpy(), "z_baseline": group["z_baseline"]
                                                    .to_numpy()}, _r_difference, n_boot=n_boot, seed=seed,
                                                   confidence=confidence)
            rows.append({"relation": relation, "baseline": kind, "n_images": len(group),
                         "n_pairs": int(group["n_pairs"].max()), "effect_r": float(np.tanh(group["z"].mean())),
                         "baseline_r": float(np.tanh(group["z_baseline"].mean())), "difference": value,
                         "ci_low": low, "ci_high": high, "n_boot": n_boot, "seed": seed})
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


def level_contrasts(paired: pd.DataFrame, *, target: str = "pretrain", others: Sequence[str] = ("seed", "task"),
                    baseline: str = "untrained", n_boot: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> pd.DataFrame:
    """How much lower ``target`` (pretraining) similarity is than each of ``others``, paired over images.

    ``raw``: ``r_other - r_target`` of the trained maps; ``excess``: the same of each
    relation's excess over its baseline (``(r_other - r_other,baseline) - (r_target -
    r_target,baseline)``): a gap the design gives for free does not count. Percentile bootstrap
    CI over the images that have both relations. Columns: ``target``, ``versus``, ``kind``,
    ``baseline``, ``n_images``, ``difference``, ``ci_low``, ``ci_high``, ``n_boot``, ``seed``.

    Parameters
    ----------
    paired : pandas.DataFrame
        :func:`paired_levels` of one baseline kind.
    target : str
        The relation compared.
    others : sequence of str
        The relations it is compared with.
    baseline : str
        The baseline kind (named in the table).
    n_boot, seed, confidence
        As for :func:`baseline_contrasts`.

    Returns
    -------
    pandas.DataFrame
        One row per other relation and comparison (raw, excess).
    """
    wide = paired.pivot_table(index="stimulus_id", columns="relation", values=["z", "z_baseline"])
    rows = []
    for other in others:
        if target not in paired["relation"].values or other not in paired["relation"].values:
            continue
        both = wide.dropna(subset=[("z", target), ("z", other)])
        columns = {"t": both[("z", target)].to_numpy(), "o": both[("z", other)].to_numpy(),
                   "tb": both[("z_baseline", target)].to_numpy(), "ob": both[("z_baseline", other)].to_numpy()}

        def raw(c):
            return float(np.tanh(c["o"].mean()) - np.tanh(c["t"].mean()))

        def excess(c):
            return float((np.tanh(c["o"].mean()) - np.tanh(c["ob"].mean()))
                         - (np.tanh(c["t"].mean()) - np.tanh(c["tb"].mean())))

        for kind, statistic in (("raw", raw), ("excess", excess)):
            value, low, high = bootstrap_statistic(columns, statistic, n_boot=n_boot, seed=seed,
                                                   confidence=confidence)
            rows.append({"target": target, "versus": other, "kind": kind, "baseline": baseline,
                         "n_images": len(both), "difference": value, "ci_low": low, "ci_high": high,
                         "n_boot": n_boot, "seed": seed})
    return pd.DataFrame(rows, columns=["target", "versus", "kind", "baseline", "n_images", "difference", "ci_low",
                                       "ci_high", "n_boot", "seed"])


def pair_baselines(trained: pd.DataFrame, baselines: Mapping[str, pd.DataFrame],
                   metric: str = "spearman") -> pd.DataFrame:
    """Every pair's mean similarity (Fisher z over images) next to its baselines', on common images.

    Columns: ``variant_a``, ``variant_b``, ``relation``, ``baseline``, ``n_images``,
    ``r_trained``, ``r_baseline``, ``difference``: the spread over seeds and tasks that the
    image-level CIs do not show.

    Parameters
    ----------
    trained : pandas.DataFrame
        Per-image pair table of the trained maps.
    baselines : mapping of str to pandas.DataFrame
        baseline kind -> its per-image pair table.
    metric : str
        ``spearman`` or ``pearson``.

    Returns
    -------
    pandas.DataFrame
        One row per pair and baseline kind.
    """
    keys = ["variant_a", "variant_b", "relation", "stimulus_id"]
    parts = []
    for kind, table in baselines.items():
        cells = trained[keys + [metric]].merge(table[keys + [metric]], on=keys, suffixes=("", "_baseline"))
        cells = cells.dropna(subset=[metric, f"{metric}_baseline"])
        if cells.empty:
            continue
        cells = cells.assign(z=fisher_z(cells[metric]), zb=fisher_z(cells[f"{metric}_baseline"]))
        grouped = cells.groupby(["variant_a", "variant_b", "relation"], sort=False).agg(
            n_images=("z", "size"), z=("z", "mean"), zb=("zb", "mean")).reset_index()
        grouped["r_trained"] = np.tanh(grouped.pop("z"))
        grouped["r_baseline"] = np.tanh(grouped.pop("zb"))
        grouped["difference"] = grouped["r_trained"] - grouped["r_baseline"]
        parts.append(grouped.assign(baseline=kind))
    columns = ["variant_a", "variant_b", "relation", "baseline", "n_images", "r_trained", "r_baseline", "difference"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def similarity_verdict(rows: pd.DataFrame, *, stable_r: float = 0.5) -> str:
    """The verdict on "maps are stable / generalise" for one relation from its
    :func:`baseline_contrasts` rows (one per baseline kind).

    ``agrees`` only when, against every baseline, the CI of the difference lies above 0 and the
    trained similarity reaches ``stable_r``; ``differs`` otherwise; ``no null`` when there is
    no baseline to compare with (a similarity without a null is not evidence).

    Parameters
    ----------
    rows : pandas.DataFrame
        One relation's :func:`baseline_contrasts` rows.
    stable_r : float
        The similarity called stable.

    Returns
    -------
    str
        The verdict (``agrees``, ...).

    Examples
    --------
    >>> row = {"relation": "seed", "baseline": "untrained", "effect_r": 0.8, "ci_low": 0.1, "ci_high": 0.2}
    >>> similarity_verdict(pd.DataFrame([row])), similarity_verdict(pd.DataFrame([{**row, "ci_low": -0.01}]))
    ('agrees', 'differs')
    """
    if rows.empty:
        return "no null"
    lows = pd.to_numeric(rows["ci_low"], errors="coerce")
    if lows.isna().any():
        return "no null"
    ok = bool((lows > 0).all() and (rows["effect_r"] >= stable_r).all())
    return "agrees" if ok else "differs"


def pretrain_verdict(contrasts: pd.DataFrame) -> str:
    """The verdict on "maps generalise less across pretraining than across seeds and tasks".

    ``agrees`` only when pretraining similarity is lower than that of every other relation
    present by more than the CI (the CI of the difference above 0), both raw and as excess over
    the baseline; ``not measured`` without a contrast; ``differs`` otherwise.

    Parameters
    ----------
    contrasts : pandas.DataFrame
        :func:`level_contrasts`.

    Returns
    -------
    str
        ``agrees``, ``differs`` or why there is no verdict.

    Examples
    --------
    >>> rows = [{"versus": v, "kind": k, "ci_low": 0.05} for v in ("seed", "task") for k in ("raw", "excess")]
    >>> pretrain_verdict(pd.DataFrame(rows))
    'agrees'
    """
    if contrasts.empty:
        return "not measured"
    lows = pd.to_numeric(contrasts["ci_low"], errors="coerce")
    if lows.isna().any():
        return "not measured"
    return "agrees" if bool((lows > 0).all()) else "differs"


def trained_layers_text(baselines: Mapping[str, Mapping[str, RelevanceMaps]]) -> str:
    """What the variants trained, read from the ``untrained`` baseline maps' ``meta`` (their
    ``trainable`` part and first re-initialised layer), e.g. ``block5 (from features.24 on)``.

    Parameters
    ----------
    baselines : mapping of str to mapping of str to RelevanceMaps
        kind -> variant -> baseline maps.

    Returns
    -------
    str
        A short text, empty when unknown.
    """
    seen: dict[str, str] = {}
    for maps in baselines.get("untrained", {}).values():
        record = maps.meta.get("baseline") or {}
        layers = record.get("reinitialised") or []
        if record.get("trainable"):
            seen.setdefault(str(record["trainable"]), str(layers[0]) if layers else "?")
    return "; ".join(f"{part} (layers from {first} on)" for part, first in seen.items())
