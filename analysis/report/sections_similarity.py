"""The report's similarity section: human RDMs from similarity judgements against model RDMs.

Registered as the optional section ``rsa`` (in a report when its config has ``rsa:``, the
settings :class:`~analysis.report.config.RSASettings`, or ``sections`` names it). For each observer group with trial files
of the similarity task (people; simulated observers; each model observer) it shows the group
RDM, the split-half reliability, and every model RDM's RSA with the participants (bars with
bootstrap CIs over stimuli and subjects, the noise ceiling as a band, permutation p-values),
and compares variants that make the same kind of RDM (bootstrap CIs of the differences).
Model RDMs are the files of ``python -m model rdm`` (:mod:`stimuli.contracts.rdm`). Simulated
observers built on a known embedding (recorded in their sidecars) add that embedding's RDM
as a model: the check that the pipeline recovers what it was given.

Examples
--------
>>> from analysis.report.registry import SECTIONS
>>> SECTIONS["rsa"].optional
True
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_save_npz
from stimuli.contracts.rdm import load_rdms, rdm_command, rdm_path
from stimuli.contracts.trials import sidecar_path

from ..multiple import fdr
from ..rdm import HumanRDMs, embedding_rdm, split_half_reliability
from ..readers.similarity import load_human_rdms
from ..rsa_tables import compare_models, rsa_table
from .charts import plot_rsa_bars
from .config import RSASettings
from .context import ObserverGroup, ReportContext, discover_rdm_variants
from .page import Section, fmt, p_text, plural
from .plots import plot_rdms, short_name
from .registry import Absent, register_section

__all__ = ["TRUTH"]  # the builder is reached through the registry

TRUTH = "truth:embedding"  # the model name of the simulated observers' known embedding


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
    table["p_fdr"] = fdr(table["p_perm"])
    pairs = pd.DataFrame()
    if draws:
        names = list(models)
        same_kind = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                     if a.partition(":")[2] == b.partition(":")[2] and TRUTH not in (a, b)]
        if same_kind:
            pairs = compare_models(table, draws, statistic="subjects", alpha=config.alpha, pairs=same_kind)
            pairs.insert(0, "observers", group.label)
            pairs["p_fdr"] = fdr(pairs["p_boot"])
    return table, pairs


@register_section("rsa", "Face similarity: people and models", optional=True)
def build_rsa(ctx: ReportContext, sec: Section) -> None:
    """Every observer group's RDMs, their reliability and every model RDM's RSA with them (see the module)."""
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
        sec.figure(plot_rsa_bars(table, ctx.figure_path(f"rsa_{group.key}"), alpha=config.alpha, highlight=TRUTH,
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
