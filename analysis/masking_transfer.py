"""Masking transfer: the tables of ``python -m model evaluate``, by relation and their asymmetries.

:func:`analysis.readers.read_masking` reads an evaluate folder; :func:`transfer_levels` and
:func:`transfer_tests` compare relative transfer across relations of source and target (same
map, another seed, task, pretraining) with targets as the repeated measure;
:func:`oriented_asymmetry` orients each pair's asymmetry of relative transfer by the factor
its variants differ in, and :func:`asymmetry_tests` counts, per relation, the pairs whose
bootstrap test over images (done by ``model evaluate``) is significant after FDR correction.

Examples
--------
>>> source_relation("setmean:vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1")
'set-mean map'
>>> source_relation("vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1")
'seed'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from stimuli.contracts.errors import InputError
from stimuli.contracts.variants import parse_variant_name

from .model_stats import pair_relation
from .repeated import repeated_measures

__all__ = [
    "MASKING_RELATIONS",
    "MaskingTables",
    "is_baseline_source",
    "source_relation",
    "evaluate_command",
    "transfer_relations",
    "transfer_levels",
    "transfer_tests",
    "oriented_asymmetry",
    "asymmetry_tests",
]

MASKING_RELATIONS = ("same", "seed", "task", "pretrain")
SET_MEAN = "setmean:"  # the evaluate tables' set-mean-map baseline sources: setmean:<variant>
ASYMMETRY_BOOTSTRAP = ("relative_asymmetry", "relative_asymmetry_ci_low", "relative_asymmetry_ci_high",
                       "relative_asymmetry_p")


@dataclass
class MaskingTables:
    """The tables of one ``python -m model evaluate`` output folder that the analysis reads.

    Parameters
    ----------
    folder : Path
        The evaluate output folder.
    mode : str
        The masking mode of the transfer tables (``remove`` or ``keep``).
    accuracy, transfer, asymmetry : pandas.DataFrame
        ``accuracy.csv``, ``transfer_<mode>.csv`` (variants' maps only) and ``asymmetry_<mode>.csv``.
    aopc : pandas.DataFrame, optional
        ``aopc.csv`` when the folder has one.
    """

    folder: Path
    mode: str  # the masking mode of the transfer tables (remove or keep)
    accuracy: pd.DataFrame  # source, target, mode, fraction, accuracy, ...
    transfer: pd.DataFrame  # source, target, mode, aopc, aopc_own, aopc_random, relative (+ CIs, set-mean)
    asymmetry: pd.DataFrame  # a, b, mode, m_ab, m_ba, asymmetry, relative_asymmetry (+ bootstrap CI and p)
    aopc: pd.DataFrame | None = None  # per (source, target, mode), baselines included (tables/aopc.csv)

    @property
    def bootstrap(self) -> bool:
        """Whether the asymmetry table holds the per-pair bootstrap over images (newer evaluate output)."""
        return all(c in self.asymmetry.columns for c in ASYMMETRY_BOOTSTRAP)


def is_baseline_source(source: str) -> bool:
    """``random`` blobs or a ``setmean:<variant>`` map: a masking baseline, not a variant's maps.

    Parameters
    ----------
    source : str
        A masking source of the evaluate tables.

    Returns
    -------
    bool
        Whether it is a baseline.

    Examples
    --------
    >>> is_baseline_source("random"), is_baseline_source("vgg16-imagenet-gender-s0")
    (True, False)
    """
    return source == "random" or str(source).startswith(SET_MEAN)


def source_relation(source: str, target: str) -> str:
    """A masking source's relation to the target: ``random``, ``set-mean map`` or :func:`pair_relation`.

    Parameters
    ----------
    source : str
        The source of the masks.
    target : str
        The variant tested.

    Returns
    -------
    str
        The relation.
    """
    if source == "random":
        return "random"
    if str(source).startswith(SET_MEAN):
        return "set-mean map"
    return pair_relation(source, target)


def evaluate_command(folder: str | Path) -> str:
    """The command that makes an evaluate folder ``<out>/evaluate/<name>`` (for messages).

    Parameters
    ----------
    folder : path
        The evaluate folder.

    Returns
    -------
    str
        The command line.
    """
    folder = Path(folder)
    out = folder.parent.parent
    out_flag = "" if str(out) in ("results", ".") else f" --out {out}"
    return f"python -m model evaluate CONFIG.yaml{out_flag} (CONFIG named '{folder.name}', e.g. model/configs/)"


def transfer_relations(transfer: pd.DataFrame) -> pd.DataFrame:
    """The transfer table with each (source, target) pair's ``relation`` (``same`` = own map).

    Parameters
    ----------
    transfer : pandas.DataFrame
        A transfer table (``source``, ``target``, ...).

    Returns
    -------
    pandas.DataFrame
        The table with a ``relation`` column.
    """
    return transfer.assign(relation=[pair_relation(s, t) for s, t in zip(transfer["source"], transfer["target"])])


def transfer_levels(transfer: pd.DataFrame, value: str = "relative",
                    levels: Sequence[str] = MASKING_RELATIONS) -> pd.DataFrame:
    """One transfer value per target and relation (the mean over the sources of that relation),
    kept only for targets that have every relation present: the repeated measure of
    :func:`analysis.repeated.repeated_measures`. ``value`` is the relative transfer by default
    (random masks 0, the target's own map 1: comparable across targets of unequal fragility);
    baseline sources (random, set-mean maps) are left out.

    Parameters
    ----------
    transfer : pandas.DataFrame
        A transfer table.
    value : str
        The column averaged (``relative`` or ``aopc``).
    levels : sequence of str
        The relations, in order.

    Returns
    -------
    pandas.DataFrame
        ``target``, ``relation`` and the value.
    """
    table = transfer_relations(transfer[[not is_baseline_source(s) for s in transfer["source"]]])
    table = table[table["relation"].isin(levels) & np.isfinite(pd.to_numeric(table[value], errors="coerce"))]
    out = table.groupby(["target", "relation"], sort=False)[value].mean().reset_index()
    present = [level for level in levels if level in set(out["relation"])]
    complete = out.groupby("target")["relation"].nunique() == len(present)
    out = out[out["target"].isin(complete.index[complete])].reset_index(drop=True)
    return out.rename(columns={value: "value"}).assign(measure=value)


def transfer_tests(levels: pd.DataFrame, *, padjust: str = "fdr_bh") -> tuple[pd.DataFrame, pd.DataFrame]:
    """rm-ANOVA and paired tests of transfer across relations, targets as the repeated measure.

    Parameters
    ----------
    levels : pandas.DataFrame
        :func:`transfer_levels` (targets are the subjects, relations the levels).
    padjust : str
        pingouin's p-value correction.

    Returns
    -------
    anova, pairwise : pandas.DataFrame
        As :func:`analysis.repeated.repeated_measures` returns them.
    """
    present = list(dict.fromkeys(levels["relation"]))
    n = levels["target"].nunique()
    if len(present) < 2 or n < 3:
        raise InputError(f"comparing masking transfer across relations needs 2+ relations and 3+ targets with "
                         f"each; found {', '.join(present) or 'none'} and {n} target(s)")
    return repeated_measures(levels, "value", "relation", "target", padjust=padjust)


def oriented_asymmetry(asymmetry: pd.DataFrame) -> pd.DataFrame:
    """Asymmetries of pairs that differ in one factor, oriented by that factor's levels.

    For a pair that differs only in, e.g., pretraining (imagenet vs faces), ``direction`` is
    ``faces->imagenet`` (levels sorted) and ``oriented`` is the asymmetry of the faces variant's
    maps on the imagenet variant over the reverse: positive when the first level's maps serve
    the other better. The asymmetry is that of *relative* transfer (``relative_ab -
    relative_ba``, each target's own map and random masks as its 1 and 0, so a more fragile
    target does not pass for a better-served one; ``measure`` = ``relative``) with its bootstrap
    CI and p over images (``ci_low``, ``ci_high``, ``p_boot``, oriented too); tables of an older
    evaluate without them give the raw AOPC difference (``measure`` = ``raw``, no CI).
    Columns: ``a``, ``b``, ``relation``, ``direction``, ``measure``, ``oriented``, ``ci_low``,
    ``ci_high``, ``p_boot``, ``abs_asymmetry``.

    Parameters
    ----------
    asymmetry : pandas.DataFrame
        An asymmetry table (``a``, ``b``, ``m_ab``, ``m_ba``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per pair that differs in one factor, with ``relation`` and ``direction``.
    """
    columns = ["a", "b", "relation", "direction", "measure", "oriented", "ci_low", "ci_high", "p_boot",
               "abs_asymmetry"]
    boot = all(c in asymmetry.columns for c in ASYMMETRY_BOOTSTRAP)
    rows = []
    for r in asymmetry.to_dict("records"):
        relation = pair_relation(r["a"], r["b"])
        if relation in ("same", "other"):
            continue
        spec_a, spec_b = parse_variant_name(r["a"]), parse_variant_name(r["b"])
        level_a, level_b = str(getattr(spec_a, relation)), str(getattr(spec_b, relation))
        sign = 1.0 if level_a <= level_b else -1.0
        first, second = sorted((level_a, level_b))
        value = float(r["relative_asymmetry"] if boot else r["asymmetry"])
        low, high = ((float(r["relative_asymmetry_ci_low"]), float(r["relative_asymmetry_ci_high"])) if boot
                     else (np.nan, np.nan))
        if sign < 0:
            low, high = -high, -low
        rows.append({"a": r["a"], "b": r["b"], "relation": relation, "direction": f"{first}->{second}",
                     "measure": "relative" if boot else "raw", "oriented": sign * value, "ci_low": low,
                     "ci_high": high, "p_boot": float(r["relative_asymmetry_p"]) if boot else np.nan,
                     "abs_asymmetry": abs(value)})
    return pd.DataFrame(rows, columns=columns)


def asymmetry_tests(oriented: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per relation and direction: how many pairs are asymmetric, each tested on its own images.

    Every pair's bootstrap p (over images, :func:`oriented_asymmetry`) is FDR-corrected
    (Benjamini-Hochberg) over all the pairs of the table; ``n_first`` counts the pairs
    significantly asymmetric in favour of the direction's first level (its maps serve the other
    level's models better), ``n_second`` the reverse. No t-test across pairs: the pairs share
    variants, so they are not independent. Columns: ``relation``, ``direction``, ``measure``,
    ``n_pairs``, ``mean`` (oriented), ``mean_abs``, ``n_first``, ``n_second``, ``p_fdr_min``
    (NaN counts and p without bootstrap columns).

    Parameters
    ----------
    oriented : pandas.DataFrame
        :func:`oriented_asymmetry`.
    alpha : float
        The false discovery rate.

    Returns
    -------
    pandas.DataFrame
        One row per relation and direction.
    """
    columns = ["relation", "direction", "measure", "n_pairs", "mean", "mean_abs", "n_first", "n_second",
               "p_fdr_min"]
    table = oriented.copy()
    p = pd.to_numeric(table["p_boot"], errors="coerce").to_numpy(np.float64) if len(table) else np.array([])
    table["p_fdr"] = np.nan
    finite = np.isfinite(p)
    if finite.any():
        table.loc[finite, "p_fdr"] = stats.false_discovery_control(p[finite], method="bh")
    rows = []
    for (relation, direction), group in table.groupby(["relation", "direction"], sort=False):
        values = group["oriented"].to_numpy(np.float64)
        tested = bool(np.isfinite(group["p_fdr"]).any())
        significant = group["p_fdr"] < alpha
        rows.append({"relation": relation, "direction": direction, "measure": group["measure"].iloc[0],
                     "n_pairs": len(values), "mean": float(values.mean()), "mean_abs": float(np.abs(values).mean()),
                     "n_first": int((significant & (group["oriented"] > 0)).sum()) if tested else np.nan,
                     "n_second": int((significant & (group["oriented"] < 0)).sum()) if tested else np.nan,
                     "p_fdr_min": float(group["p_fdr"].min()) if tested else np.nan})
    return pd.DataFrame(rows, columns=columns)
