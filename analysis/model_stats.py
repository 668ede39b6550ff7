"""Statistics of relevance maps across model variants: the seed study's comparisons.

Crawford et al. (arXiv 2006.16795) asked whether LRP maps of VGG-16 face classifiers are
stable across random seeds, generalise across finetuning tasks and across pretraining data.
Here every pair of variants is compared image by image (:func:`per_image_similarity`) and
through their mean maps (:func:`mean_map_similarity`); a pair's *relation* is the one factor
its names differ in (:func:`stimuli.contracts.variants.variant_relation`: ``seed``, ``task``,
``pretrain``, or ``other``). :func:`relation_levels` averages the per-image similarity of
the pairs of each relation (Fisher z) into one value per image and relation, and
:func:`level_tests` tests the relations against each other with images as the repeated
measure (pingouin ``rm_anova`` and ``pairwise_tests`` with FDR correction and Cohen's d).
These test against 0 and against each other; the nulls that say whether a similarity is more
than the design gives for free (the same statistic for untrained and randomised baselines of
the same variants) are in :mod:`analysis.similarity_null`.
Reliability: :func:`variant_reliability` (split-half over images, Spearman-Brown) and
:func:`seed_icc` (ICC of the mean maps of variants that differ only in seed). Masking
transfer (the tables of ``python -m model evaluate``) is :mod:`analysis.masking_transfer`
(its names can still be imported from here).

All tables are tidy :class:`pandas.DataFrame` (one row per observation).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> base = rng.random((6, 8, 8))
>>> maps = {name: relevance_maps(base + rng.normal(scale=s, size=base.shape), name)
...         for name, s in [("vgg16-imagenet-gender-s0", 0.1), ("vgg16-imagenet-gender-s1", 0.1),
...                         ("vgg16-faces-gender-s0", 1.0)]}
>>> table = per_image_similarity(maps)
>>> table.groupby("relation")["spearman"].mean().round(1).to_dict()
{'other': 0.3, 'pretrain': 0.3, 'seed': 0.9}
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from stimuli.contracts.errors import InputError
from stimuli.contracts.relevance import RelevanceMaps, map_chunks
from stimuli.contracts.variants import parse_variant_name, variant_relation

from .metrics import compare_maps
from .reliability import fisher_mean, fisher_z, map_icc, split_half
from .repeated import repeated_measures

__all__ = [
    "LEVELS",
    "relevance_maps",
    "summary_map",
    "pair_relation",
    "per_image_similarity",
    "mean_map_similarity",
    "similarity_matrix",
    "relation_levels",
    "level_summary",
    "level_tests",
    "variant_reliability",
    "seed_icc",
]

SIMILARITY_CHUNK_BYTES = 2**27  # per_image_similarity holds about this much of the maps at once
# the relations the seed study compares, in the order it reports them
LEVELS = ("seed", "task", "pretrain")
MAP_KINDS = ("mean", "positive", "absolute")  # summary_map's kinds


def relevance_maps(relevance: np.ndarray, variant: str, stimulus_id: Sequence[str] | None = None) -> RelevanceMaps:
    """A :class:`~stimuli.contracts.relevance.RelevanceMaps` from an array (tests, notebooks).

    Parameters
    ----------
    relevance : numpy.ndarray
        (N, H, W) maps.
    variant : str
        The variant's name (recorded in ``meta``).
    stimulus_id : sequence of str, optional
        The images' ids (default: ``img000``, ...).

    Returns
    -------
    RelevanceMaps
        The maps, targets and predictions zero, logits their sums.
    """
    relevance = np.asarray(relevance, dtype=np.float32)
    n = len(relevance)
    ids = np.asarray(stimulus_id if stimulus_id is not None else [f"img{i:03d}" for i in range(n)], dtype=str)
    zeros = np.zeros(n, dtype=np.int64)
    return RelevanceMaps(relevance, ids, zeros, zeros, relevance.sum(axis=(1, 2)), {"variant": variant})


def summary_map(maps: RelevanceMaps, kind: str = "mean") -> np.ndarray:
    """A variant's set-level map: the ``mean`` relevance, the mean ``positive`` part or ``absolute``.

    Parameters
    ----------
    maps : RelevanceMaps
        A variant's maps.
    kind : str
        ``mean``, ``positive`` or ``absolute``.

    Returns
    -------
    numpy.ndarray
        The (H, W) set-level map.
    """
    if kind not in MAP_KINDS:
        raise InputError(f"unknown relevance summary '{kind}' (choose {', '.join(MAP_KINDS)})")
    if kind == "absolute":
        total, count = np.zeros(maps.relevance.shape[1:]), 0
        for _, chunk in map_chunks(maps):  # a chunk at a time: the maps may be a large file's
            chunk = chunk[np.isfinite(chunk).all(axis=(1, 2))]
            total, count = total + np.abs(chunk).sum(axis=0, dtype=np.float64), count + len(chunk)
        return (total / count).astype(np.float32) if count else maps.mean_map()
    return maps.mean_map(positive=kind == "positive")


def pair_relation(a: str, b: str) -> str:
    """:func:`stimuli.contracts.variants.variant_relation`, or ``other`` when a name is not a variant name.

    Parameters
    ----------
    a, b : str
        Two variant names.

    Returns
    -------
    str
        ``same``, ``seed``, ``task``, ``pretrain``, ... or ``other``.

    Examples
    --------
    >>> pair_relation("vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1")
    'seed'
    """
    try:
        return variant_relation(a, b)
    except InputError:
        return "other"


def _varies(values: np.ndarray) -> bool:
    """More spread than rounding error (a t-test of constant values is undefined)."""
    return bool(np.std(values) > 1e-9 * max(1.0, float(np.abs(values).max())))


def _pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(names, 2))


def _standardised(values: np.ndarray, ranks: bool) -> np.ndarray:
    """Rows centred and scaled to unit norm (of ranks for Spearman), so a dot product is r."""
    if ranks:
        values = stats.rankdata(values, axis=1)
    values = values - values.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(values, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values / norm).astype(np.float32)  # a constant map gives NaN rows: r is NaN


def per_image_similarity(maps: dict[str, RelevanceMaps], *, region: Any = None,
                         pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Spearman and Pearson correlation of two variants' maps of the same image, for every pair.

    Images are matched by ``stimulus_id``; pixels restricted to ``region`` (bool (H, W)).
    Columns: ``variant_a``, ``variant_b``, ``relation``, ``stimulus_id``, ``spearman``,
    ``pearson``.

    Parameters
    ----------
    maps : dict of str to RelevanceMaps
        variant -> its maps (matched by ``stimulus_id``).
    region : bool array, optional
        Pixels compared (default: all).
    pairs : sequence of (str, str), optional
        The pairs (default: every pair).

    Returns
    -------
    pandas.DataFrame
        One row per pair and image.
    """
    names = list(maps)
    pairs = list(pairs) if pairs is not None else _pairs(names)
    columns = ["variant_a", "variant_b", "relation", "stimulus_id", "spearman", "pearson"]
    used = list(dict.fromkeys(name for pair in pairs for name in pair))
    if not used:
        return pd.DataFrame(columns=columns)
    index = {name: maps[name].index for name in used}
    mask = np.ones(maps[used[0]].relevance.shape[1:], bool) if region is None else np.asarray(region, bool)
    order = list(dict.fromkeys(sid for name in used for sid in index[name]))
    # images a chunk at a time (every variant's maps of those images standardised once), so memory
    # holds a chunk of each variant's maps, about 128 MB in all, whatever the set's size
    step = max(1, int(SIMILARITY_CHUNK_BYTES // (max(int(mask.sum()), 1) * 8 * len(used))))
    parts: dict[tuple[str, str], list[pd.DataFrame]] = {pair: [] for pair in pairs}
    for start in range(0, len(order), step):
        chunk = order[start:start + step]
        standard = {}
        for name in used:
            present = [sid for sid in chunk if sid in index[name]]
            flat = maps[name].take([index[name][sid] for sid in present])[:, mask].astype(np.float64)
            standard[name] = ({sid: i for i, sid in enumerate(present)}, _standardised(flat, True),
                              _standardised(flat, False))
        for a, b in pairs:
            (in_a, ranks_a, raw_a), (in_b, ranks_b, raw_b) = standard[a], standard[b]
            common = [sid for sid in in_a if sid in in_b]
            if not common:
                continue
            ia = np.array([in_a[s] for s in common])
            ib = np.array([in_b[s] for s in common])
            parts[(a, b)].append(pd.DataFrame({
                "variant_a": a, "variant_b": b, "relation": pair_relation(a, b), "stimulus_id": common,
                "spearman": np.clip(np.einsum("ij,ij->i", ranks_a[ia], ranks_b[ib]), -1, 1).astype(np.float64),
                "pearson": np.clip(np.einsum("ij,ij->i", raw_a[ia], raw_b[ib]), -1, 1).astype(np.float64),
                "_row": [index[a][s] for s in common]}))
    tables = [pd.concat(found).sort_values("_row", kind="stable").drop(columns="_row")
              for found in parts.values() if found]  # each pair in the order of its first variant's maps
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)


def mean_map_similarity(maps: dict[str, RelevanceMaps], *, region: Any = None, kind: str = "mean",
                        top_percents: Sequence[float] = (10.0,)) -> pd.DataFrame:
    """Every pair's set-level maps (:func:`summary_map`) compared with :func:`analysis.compare_maps`.

    Columns: ``variant_a``, ``variant_b``, ``relation``, then the metrics (``pearson``,
    ``spearman``, ``dice_top10``, ``iou_top10``, ``histogram_intersection``).

    Parameters
    ----------
    maps, region
        As for :func:`per_image_similarity`.
    kind : str
        The set-level map (:func:`summary_map`).
    top_percents : sequence of float
        The top-k% overlaps computed.

    Returns
    -------
    pandas.DataFrame
        One row per pair.
    """
    summaries = {name: summary_map(m, kind) for name, m in maps.items()}
    rows = []
    for a, b in _pairs(list(maps)):
        row = compare_maps(summaries[a], summaries[b], region=region, top_percents=top_percents)
        rows.append({"variant_a": a, "variant_b": b, "relation": pair_relation(a, b), **row})
    return pd.DataFrame(rows, columns=["variant_a", "variant_b", "relation"] + (list(rows[0])[3:] if rows else []))


def similarity_matrix(table: pd.DataFrame, metric: str = "spearman", *, names: Sequence[str] | None = None,
                      diagonal: float = 1.0) -> pd.DataFrame:
    """A symmetric variant x variant matrix from a pair table (per-image tables are averaged
    in Fisher-z space first).

    Parameters
    ----------
    table : pandas.DataFrame
        A pair table (``variant_a``, ``variant_b`` and ``metric``).
    metric : str
        The column shown.
    names : sequence of str, optional
        The variants, in order (default: all, sorted).
    diagonal : float
        The value of the diagonal.

    Returns
    -------
    pandas.DataFrame
        The square matrix.
    """
    if metric not in table.columns:
        raise InputError(f"similarity table has no column '{metric}'")
    values = table.groupby(["variant_a", "variant_b"], sort=False)[metric].apply(fisher_mean)
    names = list(names) if names is not None else list(dict.fromkeys(
        list(table["variant_a"]) + list(table["variant_b"])))
    matrix = pd.DataFrame(np.nan, index=names, columns=names)
    for (a, b), value in values.items():
        if a in matrix.index and b in matrix.index:
            matrix.loc[a, b] = matrix.loc[b, a] = value
    for name in names:
        matrix.loc[name, name] = diagonal
    return matrix


def relation_levels(per_image: pd.DataFrame, metric: str = "spearman",
                    levels: Sequence[str] = LEVELS) -> pd.DataFrame:
    """One similarity per image and relation: the Fisher-z mean over the pairs of that relation.

    Columns: ``stimulus_id``, ``relation``, ``z`` (Fisher z), ``r`` (back-transformed),
    ``n_pairs``. Only ``levels`` that occur are kept; images missing a level are dropped
    so that every image has every level (a repeated measure).

    Parameters
    ----------
    per_image : pandas.DataFrame
        :func:`per_image_similarity`.
    metric : str
        The similarity averaged: ``spearman`` or ``pearson``.
    levels : sequence of str
        The relations kept, in the order reported.

    Returns
    -------
    pandas.DataFrame
        One row per image and relation.
    """
    table = per_image[per_image["relation"].isin(levels) & per_image[metric].notna()]
    if table.empty:
        return pd.DataFrame(columns=["stimulus_id", "relation", "z", "r", "n_pairs"])
    grouped = table.assign(z=fisher_z(table[metric])).groupby(["stimulus_id", "relation"], sort=False)
    out = grouped.agg(z=("z", "mean"), n_pairs=("z", "size")).reset_index()
    present = [level for level in levels if level in set(out["relation"])]
    complete = out.groupby("stimulus_id")["relation"].nunique() == len(present)
    out = out[out["stimulus_id"].isin(complete.index[complete])]
    out["relation"] = pd.Categorical(out["relation"], categories=present, ordered=True)
    out = out.sort_values(["relation", "stimulus_id"], kind="stable").reset_index(drop=True)
    out["relation"] = out["relation"].astype(str)
    out["r"] = np.tanh(out["z"])
    return out[["stimulus_id", "relation", "z", "r", "n_pairs"]]


def level_summary(levels: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean similarity per relation over images, with a t-based CI in Fisher-z space.

    Columns: ``relation``, ``n_images``, ``n_pairs``, ``mean_r``, ``ci_low``, ``ci_high``,
    ``t`` and ``p_val`` of the one-sample test of z > 0 across images (pingouin ``ttest``).

    Parameters
    ----------
    levels : pandas.DataFrame
        :func:`relation_levels`.
    confidence : float
        Level of the CIs.

    Returns
    -------
    pandas.DataFrame
        One row per relation.
    """
    import pingouin as pg  # lazy: importing pingouin takes about 2 s; few paths need it

    rows = []
    for relation, group in levels.groupby("relation", sort=False):
        z = group["z"].to_numpy()
        n = len(z)
        row = {"relation": relation, "n_images": n, "n_pairs": int(group["n_pairs"].max()),
               "mean_r": float(np.tanh(z.mean())), "ci_low": np.nan, "ci_high": np.nan, "t": np.nan,
               "p_val": np.nan}
        if n >= 2 and _varies(z):
            half = stats.t.ppf(0.5 + confidence / 2, n - 1) * z.std(ddof=1) / np.sqrt(n)
            test = pg.ttest(z, 0.0, alternative="greater")
            row.update(ci_low=float(np.tanh(z.mean() - half)), ci_high=float(np.tanh(z.mean() + half)),
                       t=float(test["T"].iloc[0]), p_val=float(test["p_val"].iloc[0]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["relation", "n_images", "n_pairs", "mean_r", "ci_low", "ci_high", "t",
                                       "p_val"])


def level_tests(levels: pd.DataFrame, *, padjust: str = "fdr_bh") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Do the relations differ? Images are the repeated measure, Fisher z the dependent variable.

    Returns pingouin's ``rm_anova`` table (with ``ng2``, the generalised eta squared) and
    its ``pairwise_tests`` (paired t-tests with ``p_unc``, ``p_corr`` FDR-corrected, ``cohen``
    d) through :func:`analysis.repeated.repeated_measures`, with the relations' mean
    similarities as ``mean_r_A`` / ``mean_r_B``.
    Needs at least two relations and two images; otherwise an InputError says what is missing.

    Parameters
    ----------
    levels : pandas.DataFrame
        :func:`relation_levels` (images are the subjects, relations the levels).
    padjust : str
        pingouin's p-value correction of the paired tests.

    Returns
    -------
    anova, pairwise : pandas.DataFrame
        The rm-ANOVA and the paired tests with the mean similarities.
    """
    present = list(dict.fromkeys(levels["relation"]))
    n_images = levels["stimulus_id"].nunique()
    if len(present) < 2:
        raise InputError(f"comparing relations needs at least two of {', '.join(LEVELS)}; found "
                         f"{', '.join(present) or 'none'} (the variants differ in too few factors)")
    if n_images < 3:
        raise InputError(f"comparing relations needs at least 3 images with every relation, got {n_images}")
    anova, pairwise = repeated_measures(levels, "z", "relation", "stimulus_id", padjust=padjust)
    pairwise["mean_r_A"] = np.tanh(pairwise.pop("mean_A"))
    pairwise["mean_r_B"] = np.tanh(pairwise.pop("mean_B"))
    return anova, pairwise


def variant_reliability(maps: dict[str, RelevanceMaps], *, region: Any = None, kind: str = "mean",
                        n_splits: int = 50, seed: int = 0) -> pd.DataFrame:
    """Split-half reliability of each variant's set-level map over random halves of the images.

    Columns: ``variant``, ``n_images``, ``r_half``, ``r_full`` (Spearman-Brown), ``r_half_sd``,
    ``n_splits``, ``seed``.

    Parameters
    ----------
    maps, region, kind
        As for :func:`mean_map_similarity`.
    n_splits : int
        Random halvings of the images.
    seed : int
        Seed of the halvings.

    Returns
    -------
    pandas.DataFrame
        One row per variant.
    """
    rows = []
    for name, m in maps.items():
        stack = m.relevance.astype(np.float64)
        if kind == "positive":
            stack = np.clip(stack, 0, None)
        elif kind == "absolute":
            stack = np.abs(stack)
        if len(stack) < 2:
            rows.append({"variant": name, "n_images": len(stack), "r_half": np.nan, "r_full": np.nan,
                         "r_half_sd": np.nan, "n_splits": 0, "seed": seed})
            continue
        result = split_half(stack, n_splits=n_splits, seed=seed, region=region)
        rows.append({"variant": name, "n_images": result["n_items"], "r_half": result["r_half"],
                     "r_full": result["r_full"], "r_half_sd": result["r_half_sd"],
                     "n_splits": result["n_splits"], "seed": seed})
    return pd.DataFrame(rows, columns=["variant", "n_images", "r_half", "r_full", "r_half_sd", "n_splits", "seed"])


def seed_icc(maps: dict[str, RelevanceMaps], *, region: Any = None, kind: str = "mean") -> pd.DataFrame:
    """ICC of the set-level maps of variants that differ only in seed (one family per other factors).

    Columns: ``family`` (the name with ``s*`` for the seed), ``seeds``, then pingouin's ICC
    columns (``Type``, ``ICC``, ``F``, ``df1``, ``df2``, ``pval``, ``CI95``), ``n_maps``,
    ``n_pixels``. Families with one seed are left out.

    Parameters
    ----------
    maps : dict of str to RelevanceMaps
        The maps by variant name; a name that is not a variant name is passed over.
    region, kind
        As for :func:`mean_map_similarity`.

    Returns
    -------
    pandas.DataFrame
        One row per family and ICC type.
    """
    families: dict[str, list[str]] = {}
    for name in maps:
        try:
            spec = parse_variant_name(name)
        except InputError:
            continue
        family = spec.name[: spec.name.rfind("-s")] + "-s*"
        families.setdefault(family, []).append(name)
    parts = []
    for family, members in families.items():
        if len(members) < 2:
            continue
        table = map_icc({m: summary_map(maps[m], kind) for m in members}, region=region)
        seeds = " ".join(str(parse_variant_name(m).seed) for m in members)
        parts.append(table.assign(family=family, seeds=seeds))
    if not parts:
        return pd.DataFrame(columns=["family", "seeds", "Type", "ICC", "F", "df1", "df2", "pval", "CI95",
                                     "n_maps", "n_pixels"])
    out = pd.concat(parts, ignore_index=True)
    out["CI95"] = out["CI95"].map(lambda v: json.dumps([round(float(x), 4) for x in v]))
    return out[["family", "seeds"] + [c for c in out.columns if c not in ("family", "seeds")]]
