"""The report's similarity section: human RDMs from similarity judgements against model RDMs.

Registered by :mod:`analysis.report` as section ``rsa``; settings under ``rsa:`` in the report
config (:class:`~analysis.report_base.RSASettings`). For each observer group with trial files
of the similarity task (people; simulated observers; each model observer) it shows the group
RDM, the split-half reliability, and every model RDM's RSA with the participants (bars with
bootstrap CIs over stimuli and subjects, the noise ceiling as a band, permutation p-values),
and compares variants that make the same kind of RDM (bootstrap CIs of the differences).
Model RDMs are the files of ``python -m model rdm`` (:mod:`stimuli.contracts.rdm`). Simulated
observers built on a known embedding (recorded in their sidecars) add that embedding's RDM
as a model: the check that the pipeline recovers what it was given.

Examples
--------
>>> path = plot_rdms([np.eye(3)[::-1] + np.eye(3)[:, ::-1]], ["demo"], "rdm.png")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_save_npz
from stimuli.contracts.rdm import load_rdms, rdm_command, rdm_path
from stimuli.contracts.trials import sidecar_path

from .figures import _pyplot, _save, finish_figure
from .rdm import HumanRDMs, embedding_rdm, split_half_reliability
from .readers.similarity import load_human_rdms
from .report_base import (
    Absent,
    ObserverGroup,
    ReportContext,
    RSASettings,
    Section,
    fmt,
    p_text,
    plural,
)
from .report_figures import short_name
from .report_sections import _fdr
from .rsa import upper
from .rsa_tables import compare_models, rsa_table

__all__ = ["discover_rdm_variants", "plot_rdms", "plot_rsa_bars", "build_rsa"]

TRUTH = "truth:embedding"


def discover_rdm_variants(stimuli: str, results: str | os.PathLike = "results") -> list[str]:
    """Every variant with model RDMs of the set ``stimuli`` under ``<results>/rdm/``."""
    folder = Path(results) / "rdm"
    return sorted(p.parent.name for p in folder.glob(f"*/{stimuli}.npz")) if folder.is_dir() else []


def _percentiles(rdm: np.ndarray) -> np.ndarray:
    """An RDM's off-diagonal values as percentiles (0..100; NaN kept): RDMs of different scales compare."""
    out = np.full(rdm.shape, np.nan)
    values = upper(rdm)
    keep = np.isfinite(values)
    ranks = np.full(values.shape, np.nan)
    ranks[keep] = 100 * (stats.rankdata(values[keep]) - 1) / max(keep.sum() - 1, 1)
    rows, cols = np.triu_indices(len(rdm), 1)
    out[rows, cols] = ranks
    out[cols, rows] = ranks
    np.fill_diagonal(out, 0.0)
    return out


def plot_rdms(rdms: Sequence[np.ndarray], titles: Sequence[str], path: str | os.PathLike, *,
              labels: Sequence[str] | None = None, columns: int = 4, suptitle: str = "") -> Path:
    """Small multiples of RDMs, each shown as percentiles of its own dissimilarities."""
    plt = _pyplot()
    n = max(len(rdms), 1)
    columns = min(columns, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns + 0.9, 3.0 * rows + 0.4), squeeze=False)
    image = None
    for ax in axes.ravel():
        ax.axis("off")
    for ax, rdm, title in zip(axes.ravel(), rdms, titles):
        image = ax.imshow(_percentiles(np.asarray(rdm, dtype=np.float64)), cmap="viridis", vmin=0, vmax=100,
                          interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("on")
        if labels is not None and len(labels) <= 30:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
            ax.set_yticks(range(len(labels)), labels, fontsize=5)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02, label="dissimilarity (percentile)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_rsa_bars(table: pd.DataFrame, path: str | os.PathLike, *, title: str = "",
                  label: str = "RSA (mean over participants)", alpha: float = 0.05) -> Path:
    """Horizontal bars: each model's mean RSA with the participants, its bootstrap CI, the noise
    ceiling as a grey band (lower to upper bound) and * where the FDR-corrected permutation p < alpha."""
    plt = _pyplot()
    table = table.reset_index(drop=True)
    height = max(2.4, 0.34 * len(table) + 1.3)
    fig, ax = plt.subplots(figsize=(6.8, height))
    positions = np.arange(len(table))[::-1]
    lower, upper_bound = float(table["ceiling_lower"].iloc[0]), float(table["ceiling_upper"].iloc[0])
    if np.isfinite(lower) and np.isfinite(upper_bound):
        ax.axvspan(lower, upper_bound, color="0.82", zorder=0,
                   label=f"noise ceiling {lower:.2f}-{upper_bound:.2f}")
    colours = ["#55a868" if m == TRUTH else "#4c72b0" for m in table["model"]]
    ax.barh(positions, table["rsa_subjects"], color=colours, height=0.62, zorder=2)
    low = (table["rsa_subjects"] - table["subjects_ci_low"]).clip(lower=0)
    high = (table["subjects_ci_high"] - table["rsa_subjects"]).clip(lower=0)
    if np.isfinite(low).any():
        ax.errorbar(table["rsa_subjects"], positions, xerr=[low.fillna(0), high.fillna(0)], fmt="none",
                    ecolor="black", elinewidth=1, capsize=3, zorder=3, label="95% bootstrap CI")
    if "p_fdr" in table.columns:
        for y, value, p in zip(positions, table["rsa_subjects"], table["p_fdr"]):
            if np.isfinite(p) and p < alpha:
                ax.text(value + 0.01 if value >= 0 else value - 0.04, y, "*", va="center", fontsize=11, zorder=4)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(positions, [short_name(str(m)) for m in table["model"]], fontsize=7)
    ax.set_xlabel(label, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return finish_figure(fig, path)


def _known_embedding(group: ObserverGroup, ids: list[str]) -> np.ndarray | None:
    """The RDM of the embedding every session of a simulated group was built on, if they share one."""
    if group.kind != "simulated":
        return None
    found = None
    for path in group.files:
        try:
            info = json.loads(sidecar_path(path).read_text()).get("Observer", {}).get("embedding")
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or "values" not in info:
            return None
        key = (json.dumps(info["values"]), tuple(info.get("stimulus_id", [])), info.get("metric", "euclidean"))
        if found is not None and key != found:
            return None  # sessions on different embeddings: no single truth
        found = key
    if found is None or not set(ids) <= set(found[1]):
        return None
    values, names, metric = np.asarray(json.loads(found[0]), dtype=np.float64), list(found[1]), found[2]
    return embedding_rdm(values[[names.index(s) for s in ids]], metric)


def _model_rdms(ctx: ReportContext, stimuli: str, ids: list[str]) -> dict[str, np.ndarray]:
    settings, results = _settings(ctx), ctx.config.results
    variants = list(settings.variants) if settings.variants else discover_rdm_variants(stimuli, results)
    models: dict[str, np.ndarray] = {}
    for variant in variants:
        try:
            rdms = load_rdms(variant, stimuli, results).subset(ids)
        except InputError as error:
            ctx.warn(f"model RDMs of {variant}: {error}; left out")
            continue
        ctx.inputs.append(rdm_path(variant, stimuli, results))
        wanted = settings.model_rdms or rdms.names
        lacking = [n for n in wanted if n not in rdms.rdms]
        if lacking and settings.model_rdms:
            ctx.warn(f"model RDMs of {variant} have no '{lacking[0]}' (they have {', '.join(rdms.names)})")
        for name in wanted:
            if name in rdms.rdms:
                models[f"{variant}:{name}"] = rdms.rdms[name]
    return models


def _human(ctx: ReportContext, group: ObserverGroup) -> HumanRDMs:
    settings = _settings(ctx)
    files: dict[str, list[str]] = {}
    for path in group.files:
        participant = Path(path).name.split("_")[0].removeprefix("sub-")
        files.setdefault(participant, []).append(path)
    ctx.inputs.extend(Path(p) for p in group.files)
    return load_human_rdms(files, method=settings.rdm, dims=settings.dims, seed=ctx.config.seed,
                           warn=ctx.warn)


def _settings(ctx: ReportContext) -> RSASettings:
    return ctx.config.rsa or RSASettings()


def _group_rsa(ctx: ReportContext, sec: Section, group: ObserverGroup, human: HumanRDMs,
               models: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    settings, config = _settings(ctx), ctx.config
    if len(human.participants) < 2:
        sec.note(f"{group.label}: {plural(len(human.participants), 'participant')}; RSA with a noise ceiling "
                 "needs at least 2.")
        return None
    bar = None
    total = settings.bootstraps
    if total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"RSA bootstrap ({group.key})", unit="draw",
                   disable=None if ctx.progress is None else not ctx.progress, leave=False)
    try:
        table, draws = rsa_table(models, human.subjects, method=settings.method, permutations=settings.permutations,
                                 bootstraps=settings.bootstraps, over=settings.bootstrap_over, alpha=config.alpha,
                                 seed=config.seed, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    table.insert(0, "observers", group.label)
    table["p_fdr"] = _fdr(table["p_perm"])
    pairs = pd.DataFrame()
    if draws:
        names = list(models)
        same_kind = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                     if a.partition(":")[2] == b.partition(":")[2] and TRUTH not in (a, b)]
        if same_kind:
            pairs = compare_models(table, draws, statistic="subjects", alpha=config.alpha, pairs=same_kind)
            pairs.insert(0, "observers", group.label)
            pairs["p_fdr"] = _fdr(pairs["p_boot"])
    return table, pairs


def build_rsa(ctx: ReportContext, sec: Section) -> None:
    config = ctx.config
    settings = _settings(ctx)
    stimuli = settings.stimuli or config.stimuli
    groups = ctx.groups(settings.task)
    if not groups:
        roots = [r for r in (config.data.people, config.data.simulated) if r]
        raise Absent(f"no trial files of task '{settings.task}' under {' or '.join(roots) or 'no data root'}; run "
                     "python -m experiments run experiments/similarity.yaml --participant ID --session 1 "
                     "(--observer simulated for simulated observers)")
    method_text = {"spearman": "Spearman rho", "kendall_a": "Kendall tau-a", "pearson": "Pearson r"}[settings.method]
    rdm_text = ("an embedding fitted to each participant's triplets (its Euclidean distances)"
                if settings.rdm == "embedding" else "the proportion of triplets in which a pair was not chosen together")
    sec.text(f"Similarity judgements (task '{settings.task}'). Triplets give a participant's RDM from {rdm_text}; "
             "ratings from (7 - mean rating) / 6. The group RDM is the mean of the participants' RDMs. Each model "
             f"RDM (python -m model rdm) is compared with every participant's RDM ({method_text} between upper "
             "triangles); bars show the mean with a 95% bootstrap CI (resampling "
             f"{settings.bootstrap_over if settings.bootstrap_over != 'both' else 'stimuli and participants'}, "
             f"{settings.bootstraps} draws) against the noise ceiling (grey: lower bound leave one participant out, "
             f"upper bound all participants; Nili et al., 2014); * marks a permutation test of the stimulus labels "
             f"({settings.permutations} permutations, FDR across models) below alpha = {config.alpha}.")
    models_note = None
    reliability, tables, pairs_tables, rdm_figures = [], [], [], []
    for group in groups:
        try:
            human = _human(ctx, group)
        except InputError as error:
            ctx.warn(f"{group.label}, task {settings.task}: no RDMs ({error})")
            continue
        models = _model_rdms(ctx, stimuli, human.ids)
        if not models and models_note is None:
            models_note = (f"No model RDMs of set '{stimuli}' under {config.results}/rdm/; make them with "
                           f"{rdm_command('VARIANT', stimuli, config.results)}")
        truth = _known_embedding(group, human.ids)
        if truth is not None:
            models = {TRUTH: truth, **models}
        atomic_save_npz(ctx.out / "maps" / f"rdm_{group.key}.npz", group=human.group.astype(np.float32),
                        subjects=human.subjects.astype(np.float32), stimulus_id=np.asarray(human.ids, dtype=str),
                        participants=np.asarray(human.participants, dtype=str), judgement=np.asarray(human.judgement),
                        method=np.asarray(human.method))
        rel = split_half_reliability(human, n_splits=settings.split_half_splits, seed=config.seed, dims=settings.dims)
        reliability.append(rel.assign(observers=group.label))
        shown = {f"{group.label}: group RDM": human.group}
        variants_shown = list(dict.fromkeys(m.partition(":")[0] for m in models if m != TRUTH))[:7]
        for variant in variants_shown:
            first = next(m for m in models if m.startswith(f"{variant}:"))
            preferred = f"{variant}:penultimate" if f"{variant}:penultimate" in models else first
            shown[short_name(preferred)] = models[preferred]
        if truth is not None:
            shown["known embedding (simulated truth)"] = truth
        figure = plot_rdms(list(shown.values()), list(shown), ctx.figure_path(f"rdm_{group.key}"), labels=human.ids,
                           suptitle=f"{group.label}: RDMs over {len(human.ids)} faces ({human.judgement}, {human.method})")
        rdm_figures.append(figure)
        sec.heading(f"{group.label} ({plural(len(human.participants), 'participant')}, {human.judgement}s)")
        sec.figure(figure, f"{group.label}: group RDM and model RDMs as percentiles (maps/rdm_{group.key}.npz)",
                   width=760)
        if not models:
            continue
        result = _group_rsa(ctx, sec, group, human, models)
        if result is None:
            continue
        table, pairs = result
        tables.append(table)
        if len(pairs):
            pairs_tables.append(pairs)
        sec.figure(plot_rsa_bars(table, ctx.figure_path(f"rsa_{group.key}"), alpha=config.alpha,
                                 title=f"{group.label}: model RDMs against the participants' RDMs",
                                 label=f"{method_text} with participants' RDMs (mean)"),
                   f"{group.label}: RSA of every model RDM with the noise ceiling (tables/rsa.csv)", width=620)
        best = table[table.model != TRUTH].sort_values("rsa_subjects", ascending=False).head(1)
        if len(best):
            row = best.iloc[0]
            sec.text(f"{group.label}: the closest model RDM is {row.model} (mean {method_text} "
                     f"{fmt(row.rsa_subjects)} [{fmt(row.subjects_ci_low)}, {fmt(row.subjects_ci_high)}], "
                     f"group RDM {fmt(row.rsa_group)}, permutation {p_text(row.p_perm)}) against a noise ceiling of "
                     f"{fmt(row.ceiling_lower)}-{fmt(row.ceiling_upper)}.")
        if truth is not None:
            row = table[table.model == TRUTH].iloc[0]
            sec.text(f"{group.label}: the embedding the simulated observers were built on is recovered with "
                     f"{method_text} {fmt(row.rsa_group)} (group RDM) and {fmt(row.rsa_subjects)} (mean over "
                     f"participants; ceiling {fmt(row.ceiling_lower)}-{fmt(row.ceiling_upper)}).")
    if models_note:
        sec.note(models_note)
    if reliability:
        sec.table("rsa_reliability", pd.concat(reliability, ignore_index=True)[
            ["observers", "unit", "n", "r_half", "reliability", "n_splits"]],
            "Split-half reliability of the RDMs: random halves of each participant's trials, and of the "
            "participants (group); Spearman between halves, Spearman-Brown corrected")
    if tables:
        everything = pd.concat(tables, ignore_index=True)
        ctx.facts["rsa"] = everything
        sec.table("rsa", everything, "RSA of every model RDM with each observer group",
                  columns=["observers", "model", "rsa_subjects", "subjects_ci_low", "subjects_ci_high", "rsa_group",
                           "p_perm", "p_fdr", "ceiling_lower", "ceiling_upper", "n_stimuli", "n_subjects"])
    if pairs_tables:
        sec.table("rsa_model_comparisons", pd.concat(pairs_tables, ignore_index=True),
                  "Differences between variants making the same kind of RDM (mean RSA over participants): "
                  "bootstrap CI and two-sided bootstrap p, FDR-corrected within each observer group",
                  columns=["observers", "model_a", "model_b", "relation", "difference", "ci_low", "ci_high",
                           "p_boot", "p_fdr"])
    if not rdm_figures:
        raise InputError(f"no similarity trial file of task '{settings.task}' could be read (see the problems)")
