"""The report's map-similarity findings against their nulls (:mod:`analysis.similarity_null`).

:func:`add_baselines` runs inside the similarity section: it reads the variants' baseline
maps (``<set>.baseline-<kind>.npz``), compares each relation's similarity with its baselines'
and writes ``tables/similarity_vs_baseline.csv`` (per relation and baseline),
``similarity_pairs_vs_baseline.csv`` (per pair of variants) and
``similarity_pretrain_contrasts.csv``. :func:`similarity_findings` turns them into the
findings rows: effect, baseline, difference with its 95% CI over images, the design and the
verdict.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from stimuli.contracts.relevance import BASELINE_KINDS, baseline_command

from .model_stats import per_image_similarity
from .readers.relevance import load_baseline_maps
from .report_base import ReportContext, Section, fmt, p_text, plural
from .similarity_null import (
    baseline_contrasts,
    baseline_similarity,
    level_contrasts,
    oriented,
    pair_baselines,
    paired_levels,
    pretrain_verdict,
    similarity_verdict,
    trained_layers_text,
)

__all__ = ["N_BOOT", "add_baselines", "similarity_findings", "DESIGN"]

N_BOOT = 2000  # bootstrap resamples of the images for every CI of a difference
WHAT = {"seed": "seed", "task": "finetuning task", "pretrain": "pretraining data"}
DESIGN = {
    "seed": "Pairs differ only in the seed (the random init of every layer the pretraining does not fill, "
            "e.g. the new head, and the batch order and mirroring); pretraining, task, architecture, data split "
            "and recipe are the same.",
    "task": "Pairs differ only in the task (gender vs identity labels, so also the output layer's size); "
            "pretraining, seed (hence the initial weights of the trained layers but the output layer), "
            "architecture, split and recipe are the same.",
    "pretrain": "Pairs differ only in the pretraining the trained layers start from (ImageNet vs the face "
                "source); task, seed, architecture, split and recipe are the same, and the frozen layers below "
                "come from each arm's source (in the demo both arms share ImageNet blocks 1-4, as the face "
                "source trained only block 5 and the FC layers).",
}
BASELINE_TEXT = {
    "untrained": "untrained: each variant's trained layers re-initialised (an independent seed per variant), "
                 "not trained",
    "random": "random: every layer re-initialised",
}


def add_baselines(ctx: ReportContext, sec: Section, maps: dict[str, Any], per_image: pd.DataFrame,
                  region: Any) -> None:
    """Compare each relation's per-image similarity with its baselines' (tables and facts)."""
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


def _ci(value: float, low: float, high: float) -> str:
    return f"{value:+.2f} [{fmt(low, 2)}, {fmt(high, 2)}]"


def _spread(pairs: pd.DataFrame, level: str, kind: str) -> str:
    rows = pairs[(pairs["relation"] == level) & (pairs["baseline"] == kind)]
    if rows.empty:
        return ""
    return (f"{kind} per pair ({plural(len(rows), 'pair')}): {fmt(rows['difference'].min(), 2)} to "
            f"{fmt(rows['difference'].max(), 2)}")


def _level_text(ctx: ReportContext, level: str) -> str:
    summary = ctx.facts.get("level_summary")
    if summary is None or level not in set(summary["relation"]):
        return ""
    row = summary.set_index("relation").loc[level]
    return (f"Variants that differ only in {WHAT[level]}: mean per-image Spearman r = {fmt(row.mean_r, 2)} "
            f"(95% CI {fmt(row.ci_low, 2)} to {fmt(row.ci_high, 2)}; {plural(int(row.n_images), 'image')}, "
            f"{plural(int(row.n_pairs), 'pair')} per image; r > 0: {p_text(row.p_val)}).")


def similarity_findings(ctx: ReportContext, seed_study: dict[str, str]) -> list[dict[str, str]]:
    """The findings rows of seed stability, task generalisation and pretraining dependence."""
    topics = {"seed": "Stability across seeds", "task": "Generalisation across finetuning tasks",
              "pretrain": "Dependence on pretraining data"}
    null = ctx.facts.get("similarity_null")
    stable = ctx.config.findings.stable_r
    rows = []
    for level, topic in topics.items():
        row = {"topic": topic, "seed_study": seed_study[level], "design": DESIGN[level], "effect": "",
               "baseline": "", "difference": ""}
        text = _level_text(ctx, level)
        if not text:
            rows.append({**row, "measured": f"No two variants with relevance maps differ only in {WHAT[level]}.",
                         "verdict": "not measured"})
            continue
        if null is None:
            rows.append({**row, "measured": text + " No baseline maps, so no null to compare with "
                         "(python -m model explain --baseline untrained|random).", "verdict": "no null"})
            continue
        if null["trained"]:
            row["design"] += f" Trained: {null['trained']}."
        contrasts = null["contrasts"]
        mine = contrasts[contrasts["relation"] == level]
        if len(mine):
            first = mine.iloc[0]
            row["effect"] = f"r = {fmt(first.effect_r, 2)} ({plural(int(first.n_images), 'image')})"
            row["baseline"] = "; ".join(f"{r.baseline} r = {fmt(r.baseline_r, 2)}" for r in mine.itertuples())
            row["difference"] = "; ".join(f"{r.baseline} {_ci(r.difference, r.ci_low, r.ci_high)}"
                                          for r in mine.itertuples())
            spreads = [s for s in (_spread(null["pairs"], level, k) for k in mine["baseline"]) if s]
            if spreads:
                text += " Difference from the baseline " + "; ".join(spreads) + "."
        if level in ("seed", "task"):
            text += (f" Criterion: the difference's 95% CI above 0 against every baseline and r >= {stable:g}; "
                     "inference over images, conditional on the trained networks.")
            rows.append({**row, "measured": text, "verdict": similarity_verdict(mine, stable_r=stable)})
            continue
        pretrain = null["pretrain"]
        parts = [f"{r.versus} - pretrain ({r.kind}) {_ci(r.difference, r.ci_low, r.ci_high)}"
                 for r in pretrain.itertuples()] if len(pretrain) else []
        if parts:
            row["difference"] = (row["difference"] + "; " if row["difference"] else "") + "; ".join(parts)
            text += (" Criterion: pretraining similarity lower than that across seeds and tasks by more than the "
                     "95% CI, raw and as excess over the untrained baseline.")
        rows.append({**row, "measured": text, "verdict": pretrain_verdict(pretrain) if len(pretrain)
                     else "not measured"})
    return rows
