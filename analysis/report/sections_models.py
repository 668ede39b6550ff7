"""The report's sections on the models: relevance maps per variant, and the stability and
generalisation of the maps (similarity between variants, set against baseline maps).

The similarity section compares each relation's similarity with that of the variants' baseline
maps (``<set>.baseline-<kind>.npz``, :mod:`analysis.similarity_null`) and writes
``tables/similarity_vs_baseline.csv`` (per relation and baseline),
``similarity_pairs_vs_baseline.csv`` (per pair of variants) and
``similarity_pretrain_contrasts.csv``; :mod:`analysis.report.findings` turns them into the
findings rows. The masking section is in :mod:`analysis.report.sections_masking`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_save_npz
from stimuli.contracts.relevance import BASELINE_KINDS, baseline_command, explain_command
from stimuli.contracts.variants import parse_variant_name

from ..model_stats import (
    LEVELS,
    level_summary,
    level_tests,
    mean_map_similarity,
    per_image_similarity,
    relation_levels,
    seed_icc,
    similarity_matrix,
    summary_map,
    variant_reliability,
)
from ..readers.relevance import load_baseline_maps
from ..reliability import fisher_mean
from ..similarity_null import (
    baseline_contrasts,
    baseline_similarity,
    level_contrasts,
    oriented,
    pair_baselines,
    paired_levels,
    trained_layers_text,
)
from .context import ReportContext
from .page import Section, plural
from .plots import plot_map_grid, plot_matrix, short_name
from .registry import Absent, register_section

__all__ = ["N_BOOT", "add_baselines"]  # the builders are reached through the registry


N_BOOT = 2000  # bootstrap resamples of the images for every CI of a difference


BASELINE_TEXT = {
    "untrained": "untrained: each variant's trained layers re-initialised (an independent seed per variant), "
                 "not trained",
    "random": "random: every layer re-initialised",
}


def _require_maps(ctx: ReportContext, minimum: int = 1) -> dict[str, Any]:
    variants = ctx.variants()
    config = ctx.config
    if not variants:
        raise Absent(f"no relevance maps of set '{config.stimuli}' under {config.results}/relevance/; make them "
                     f"with: {explain_command('VARIANT', config.stimuli, config.results)}")
    maps = ctx.variant_maps()
    if not maps:
        raise InputError("none of the relevance files could be used (see Problems)")
    if len(maps) < minimum:
        raise Absent(f"needs relevance maps of at least {minimum} variants; found {len(maps)} "
                     f"({', '.join(maps)})")
    return maps


@register_section("relevance", "Relevance maps per variant")
def build_relevance(ctx: ReportContext, sec: Section) -> None:
    """Each variant's set-level relevance map, its reliability and the agreement across seeds."""
    config = ctx.config
    maps = _require_maps(ctx)
    kind = config.models.relevance_map
    region = ctx.region()
    names = list(maps)
    described = {"mean": "mean relevance", "positive": "mean positive relevance",
                 "absolute": "mean absolute relevance"}[kind]
    summaries = np.stack([summary_map(maps[n], kind) for n in names]).astype(np.float32)
    atomic_save_npz(ctx.out / "maps" / "relevance_maps.npz", maps=summaries, variants=np.asarray(names, dtype=str),
                    kind=np.asarray(kind), n_images=np.asarray([len(maps[n]) for n in names], dtype=np.int64))
    path = plot_map_grid(list(summaries), [short_name(n) for n in names],
                         ctx.background(), ctx.figure_path("relevance_maps"), region=region,
                         suptitle=f"{described} over the set's images (each map scaled to its own maximum)")
    sec.figure(path, f"Relevance maps per variant: {described} over the mean face (maps/relevance_maps.npz)")
    rows = []
    for name, m in maps.items():
        try:
            spec = parse_variant_name(name)
            factors = {"pretrain": spec.pretrain, "task": spec.task, "seed": spec.seed}
        except InputError:
            factors = {"pretrain": "", "task": "", "seed": ""}
        sums = m.relevance.sum(axis=(1, 2)).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(m.logit != 0, sums / m.logit, np.nan)
        rows.append({"variant": name, **factors, "n_maps": len(m), "composite": m.meta.get("composite", ""),
                     "accuracy": float(np.mean(m.prediction == m.target)),
                     "median_sum_over_logit": float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else np.nan})
    sec.table("relevance_variants", pd.DataFrame(rows), "Variants: maps, explained output and conservation "
              "(sum of relevance / explained logit)")
    reliability = variant_reliability(maps, region=region, kind=kind, n_splits=config.models.split_half_splits,
                                      seed=config.seed)
    ctx.facts["reliability"] = reliability
    sec.table("relevance_reliability", reliability, "Reliability of each variant's set-level map: split-half over "
              "random halves of the images, Spearman-Brown corrected (r_full)")
    icc = seed_icc(maps, region=region, kind=kind)
    if len(icc):
        ctx.write_table("relevance_seed_icc", icc)
        sec.table("relevance_seed_icc", icc[icc["Type"].isin(["ICC(C,1)", "ICC(A,1)"])], "Agreement of the "
                  "set-level maps across seeds (pingouin intraclass_corr, pixels as targets, seeds as raters; "
                  "single-map consistency C and absolute agreement A: every type in the CSV)",
                  columns=["family", "seeds", "Type", "ICC", "CI95", "pval", "n_pixels"], write=False)
        ctx.facts["seed_icc"] = icc


@register_section("similarity", "Stability and generalisation of relevance maps")
def build_similarity(ctx: ReportContext, sec: Section) -> None:
    """Similarity of the variants' maps, by the relation of the pair, against the baselines."""
    config = ctx.config
    maps = _require_maps(ctx, 2)
    region = ctx.region()
    names = list(maps)
    sec.text("Every pair of variants compared on the same images (Spearman correlation of the two maps of an "
             "image inside the search region), and through their set-level maps. A pair's relation is the one "
             "factor its names differ in: seed, finetuning task or pretraining data ('other': several).")
    per_image = per_image_similarity(maps, region=region)
    ctx.write_table("similarity_per_image", per_image)
    mean_maps = mean_map_similarity(maps, region=region, kind=config.models.relevance_map,
                                    top_percents=(config.models.top_percent,))
    ctx.write_table("similarity_mean_maps", mean_maps)
    label = f"{float(config.models.top_percent):g}"
    matrix = similarity_matrix(per_image, "spearman", names=names)
    ctx.write_table("similarity_matrix_per_image", matrix.reset_index(names="variant"))
    sec.figure(plot_matrix(matrix, ctx.figure_path("similarity_per_image"), vmin=-1 if matrix.min().min() < 0 else 0,
                           vmax=1, label="mean Spearman r", title="Per-image map similarity (mean over images)"),
               "Per-image similarity of relevance maps between variants (tables/similarity_per_image.csv)", width=520)
    if len(mean_maps):
        means = similarity_matrix(mean_maps, "spearman", names=names)
        sec.figure(plot_matrix(means, ctx.figure_path("similarity_mean_maps"), vmin=-1 if means.min().min() < 0 else 0,
                               vmax=1, label="Spearman r", title="Similarity of the set-level maps"),
                   "Similarity of the variants' set-level maps (tables/similarity_mean_maps.csv)", width=520)
    by_relation = (per_image.groupby("relation")
                   .agg(n_pairs=("variant_a", lambda s: len(set(zip(s, per_image.loc[s.index, "variant_b"])))),
                        per_image_spearman=("spearman", fisher_mean))
                   .reset_index())
    if len(mean_maps):
        agg = mean_maps.groupby("relation").agg(mean_map_spearman=("spearman", fisher_mean),
                                                **{f"mean_map_dice_top{label}": (f"dice_top{label}", "mean")})
        by_relation = by_relation.merge(agg.reset_index(), on="relation", how="left")
    sec.table("similarity_by_relation", by_relation, "Similarity by relation of the pair (Fisher-z means)")
    ctx.facts["similarity_by_relation"] = by_relation
    levels = relation_levels(per_image)
    if levels.empty:
        sec.note(f"No pair of variants differs in exactly one of {', '.join(LEVELS)}: the seed study's "
                 "comparisons need such pairs.")
        return
    ctx.write_table("similarity_levels", levels)
    summary = level_summary(levels)
    ctx.facts["level_summary"] = summary
    sec.table("similarity_level_summary", summary, "Per-image similarity by relation: mean over images with a 95% "
              "CI (Fisher z) and the one-sample t-test of similarity > 0 across images (pingouin)")
    add_baselines(ctx, sec, maps, per_image, region)
    try:
        anova, pairwise = level_tests(levels)
    except InputError as error:
        sec.note(f"No test between relations: {error}")
        return
    ctx.facts["level_pairwise"] = pairwise
    sec.table("similarity_level_anova", anova, "Repeated-measures ANOVA across relations (images as the "
              "repeated measure, Fisher z; pingouin rm_anova, ng2 = generalised eta squared)")
    sec.table("similarity_level_pairwise", pairwise, "Paired tests between relations (FDR-corrected p_corr, "
              "Cohen's d)", columns=["A", "B", "mean_r_A", "mean_r_B", "T", "dof", "p_unc", "p_corr", "cohen"])


def add_baselines(ctx: ReportContext, sec: Section, maps: dict[str, Any], per_image: pd.DataFrame,
                  region: Any) -> None:
    """Compare each relation's per-image similarity with its baselines' (tables, and the facts
    ``similarity_null`` that the findings read).

    Parameters
    ----------
    ctx : ReportContext
        The report's inputs.
    sec : Section
        The similarity section.
    maps : dict of str to RelevanceMaps
        The variants' relevance maps.
    per_image : DataFrame
        Their per-image similarity (:func:`analysis.model_stats.per_image_similarity`).
    region : ndarray of bool or None
        The search region.
    """
    config = ctx.config
    baselines = load_baseline_maps(list(maps), config.stimuli, config.results, warn=ctx.warn)
    if not baselines:
        first = next(iter(maps))
        sec.note("No baseline maps: the similarities above have no null, so no finding below can agree. Make "
                 f"them with: {baseline_command(first, config.stimuli, ' '.join(BASELINE_KINDS), config.results)}"
                 " (and likewise for every variant).")
        return
    pairs = list(dict.fromkeys(zip(per_image["variant_a"], per_image["variant_b"])))
    baselines = {kind: {v: oriented(m) for v, m in found.items()} for kind, found in baselines.items()}
    ids = sorted({str(s) for found in baselines.values() for m in found.values() for s in m.stimulus_id})
    # the trained maps oriented the same way, on the images the baselines have
    per_image = per_image_similarity({v: oriented(m, ids) for v, m in maps.items()}, region=region, pairs=pairs)
    ctx.write_table("similarity_per_image_oriented", per_image)
    tables = {kind: baseline_similarity(found, pairs, region=region) for kind, found in baselines.items()}
    paired = {kind: paired_levels(per_image, table) for kind, table in tables.items()}
    paired = {kind: table for kind, table in paired.items() if len(table)}
    contrasts = baseline_contrasts(paired, n_boot=N_BOOT, seed=config.seed)
    pair_table = pair_baselines(per_image, tables)
    reference = "untrained" if "untrained" in paired else next(iter(paired), None)
    pretrain = (level_contrasts(paired[reference], baseline=reference, n_boot=N_BOOT, seed=config.seed)
                if reference else pd.DataFrame())
    trained = trained_layers_text(baselines)
    n_images = int(contrasts["n_images"].max()) if len(contrasts) else 0
    sec.text(f"Against a null: each relation's similarity next to the same statistic for baselines of the same "
             f"variants ({'; '.join(BASELINE_TEXT[k] for k in baselines)}), on the {plural(n_images, 'image')} "
             f"the baseline maps were made for. Maps are oriented by the sign of the logit they explain (an "
             f"untrained head's sign is arbitrary; trained maps change only where the logit is negative). "
             f"The variants trained: {trained or 'not recorded'}. Differences "
             f"have 95% percentile bootstrap CIs over images ({N_BOOT} resamples, seed {config.seed}): inference "
             "is over images, conditional on these trained networks; the spread over seeds and tasks is in the "
             "per-pair table.")
    sec.table("similarity_vs_baseline", contrasts, "Per relation: trained similarity (effect_r), its baseline's "
              "(baseline_r) and the difference with its 95% CI over images",
              columns=["relation", "baseline", "n_images", "n_pairs", "effect_r", "baseline_r", "difference",
                       "ci_low", "ci_high"])
    sec.table("similarity_pairs_vs_baseline", pair_table, "Per pair of variants: mean similarity over images "
              "(Fisher z), its baselines' and the difference", max_rows=16)
    if len(pretrain):
        sec.table("similarity_pretrain_contrasts", pretrain, "Pretraining vs seeds and tasks: how much lower the "
                  "pretraining similarity is (raw, and as excess over the baseline), with 95% CIs over images",
                  columns=["versus", "kind", "baseline", "n_images", "difference", "ci_low", "ci_high"])
    ctx.facts["similarity_null"] = {"contrasts": contrasts, "pairs": pair_table, "pretrain": pretrain,
                                    "trained": trained, "kinds": list(baselines)}
