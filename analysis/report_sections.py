"""The report's sections: one builder function each, ``build(ctx, section)``.

:data:`DEFAULT_SECTIONS` lists them in page order; :mod:`analysis.report` runs them (the
deferred ones, which read what the others found, last). A builder raises
:class:`~analysis.report_base.Absent` when its inputs do not exist and
:class:`~stimuli.InputError` when they are bad; the page then says so and the other sections
are still built.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_save_npz
from stimuli.contracts.relevance import explain_command
from stimuli.contracts.variants import parse_variant_name

from .alignment import (
    align_maps,
    condition_descriptives,
    condition_effects,
    noise_ceiling,
    shift_null,
)
from .model_stats import (
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
from .reliability import fisher_mean, fisher_z
from .report_base import Absent, GroupCI, ReportContext, Section, fmt, p_text, plural
from .report_figures import (
    plot_alignment,
    plot_conditions,
    plot_map_grid,
    plot_matrix,
    short_name,
)
from .report_masking import build_masking, masking_findings
from .report_similarity import add_baselines, similarity_findings

__all__ = ["SectionSpec", "DEFAULT_SECTIONS", "CONDITION_ORDER"]

CONDITION_ORDER = ("random", "guided", "antiguided")
# the conditions are compared after each staircase's burn-in, on revealed area rather than bubble count
# (guided apertures overlap: the same count shows fewer pixels; analysis.revealed)
DVS = (("accuracy_after_burn_in", "accuracy (proportion correct)"),
       ("mean_revealed_px", "revealed area per trial (px)"),
       ("threshold_revealed_px", "revealed area at the target accuracy (px)"))
# what the guided finding tests: the area at the staircase's target accuracy (the mean area per trial is
# biased there: the staircase holds guided and random trials at slightly different accuracies)
GUIDED_DVS = (("accuracy_after_burn_in", True, "accuracy", 3, ""),
              ("threshold_revealed_px", False, "revealed area at the target accuracy", 4, " px"))


@dataclass(frozen=True)
class SectionSpec:
    """A registered section: its anchor ``key``, ``title``, builder and whether it runs after
    the others (``deferred``: it reads what they found)."""

    key: str
    title: str
    build: Callable[[ReportContext, Section], None]
    deferred: bool = False


def _ordered(conditions) -> list[str]:
    present = list(dict.fromkeys(conditions))
    return [c for c in CONDITION_ORDER if c in present] + sorted(c for c in present if c not in CONDITION_ORDER)


def _sorted_groups(ctx: ReportContext, task: str, cis: dict[str, GroupCI]) -> list[GroupCI]:
    reference = ctx.reference_key(task)
    return sorted(cis.values(), key=lambda g: (g.group.key != reference, g.group.kind == "model", g.group.key))


def _no_trials_message(ctx: ReportContext, task: str) -> str:
    roots = [r for r in (ctx.config.data.people, ctx.config.data.simulated) if r]
    return (f"no trial files of task '{task}' under {' or '.join(roots) or 'no data root'} "
            f"(sub-*/ses-*/beh/sub-*_ses-*_task-{task}_beh.tsv); run sessions with "
            f"python -m experiments run experiments/bubbles_{task}.yaml --participant ID --session 1")


# ----------------------------------------------------------------------------- overview
def build_overview(ctx: ReportContext, sec: Section) -> None:
    config = ctx.config
    try:
        stim = ctx.stim()
        aperture = "with a face aperture" if stim.aperture is not None else "without a face aperture"
        sec.text(f"Stimulus set '{stim.name}': {len(stim)} images of {stim.shape[0]} x {stim.shape[1]} pixels, "
                 f"{aperture}. Statistical tests use alpha = {config.alpha} and the search region "
                 f"'{config.ci.search_region}' ({int(ctx.region().sum())} pixels). Seed of every random "
                 f"draw: {config.seed}.")
    except InputError as error:
        sec.note(str(error), "error")
    rows = []
    for task in config.tasks:
        for group in ctx.groups(task):
            rows.append({"task": task, "observers": group.label, "kind": group.kind,
                         "participants": len(group.participants), "data_root": group.data_root})
    if rows:
        sec.table("observers", pd.DataFrame(rows), "Trial files found, by observer")
    else:
        for task in config.tasks:
            sec.note(_no_trials_message(ctx, task))
    variants = ctx.variants()
    if variants:
        sec.text(f"Relevance maps of {len(variants)} variant(s): {', '.join(variants)}.")
    else:
        sec.note(f"No relevance maps of set '{config.stimuli}' under {config.results}/relevance/.")
    sec.html('<p>How this page was made: <a href="provenance.json">provenance.json</a> (command, config, '
             'seeds, git commit, package versions, input file hashes).</p>')


# ----------------------------------------------------------------------------- CIs
def build_ci(ctx: ReportContext, sec: Section) -> None:
    config = ctx.config
    sec.text(f"Classification images (CIs) from the stored bubble centres, Z-scored ({config.ci.z} null), "
             "group CI = sum Z / sqrt(n). Outlines: pixel test (yellow) and cluster test (cyan; forming "
             f"threshold Z > {config.ci.cluster_threshold:g}) of Stat4Ci (random field theory, alpha = "
             f"{config.alpha}); dashed white: the search region. Participants with fewer than "
             f"{config.exclusion.min_trials} main trials in a condition are excluded from it"
             + (" and from every other condition" if config.exclusion.require_all_conditions else "") + ".")
    tables: dict[str, list[pd.DataFrame]] = {"summary": [], "participants": [], "clusters": [], "exclusions": []}
    found = False
    for task in config.tasks:
        cis = ctx.ci(task)
        if not cis:
            sec.note(_no_trials_message(ctx, task) if not ctx.groups(task)
                     else f"task {task}: no classification image could be computed (see Problems)")
            continue
        found = True
        for gci in _sorted_groups(ctx, task, cis):
            group, outputs = gci.group, gci.outputs
            for name in tables:
                frame = getattr(outputs, name)
                if len(frame):
                    tables[name].append(frame.assign(observers=group.key).pipe(
                        lambda f: f[["observers"] + [c for c in f.columns if c != "observers"]]))
            sec.heading(f"{task}: {group.label} ({plural(len(group.participants), 'participant')})")
            for condition in _ordered(gci.maps):
                summary = outputs.summary.set_index("condition").loc[condition]
                sec.figure(gci.figures[f"group_{condition}"],
                           f"{task}, {condition}: group CI of {plural(int(summary.n_participants), 'participant')}, "
                           f"{int(summary.n_trials)} trials; {plural(int(summary.n_pixel_sig), 'significant pixel')}, "
                           f"{plural(int(summary.n_clusters_sig), 'significant cluster')}", width=340)
            if len(group.participants) > 1:
                for condition in _ordered(gci.maps):
                    key = f"participants_{condition}"
                    if key in gci.figures:
                        sec.figure(gci.figures[key], f"{task}, {condition}: each participant's CI", width=500)
    if not found:
        raise Absent(" ".join(_no_trials_message(ctx, t) for t in config.tasks))
    frames = {name: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
              for name, parts in tables.items()}
    sec.table("ci_summary", frames["summary"], "Group CIs: thresholds and significant areas",
              columns=["observers", "task", "condition", "n_participants", "n_trials", "accuracy", "fwhm_px",
                       "pixel_threshold", "n_pixel_sig", "max_z", "cluster_size_threshold", "n_clusters_sig"])
    clusters = frames["clusters"]
    ctx.write_table("ci_clusters", clusters)
    if len(clusters):
        clusters = clusters[(clusters["level"] == "group") & clusters["significant"].astype(bool)]
    sec.table("ci_clusters", clusters, "Significant group clusters (the CSV lists every cluster, participants' "
              "too)", columns=["observers", "task", "condition", "size_px", "peak_z", "p"], write=False)
    sec.table("ci_participants", frames["participants"], "Participants per condition",
              columns=["observers", "task", "condition", "participant", "n_trials", "accuracy", "mean_revealed_px",
                       "max_z", "n_pixel_sig", "included", "reason"])
    exclusions = frames["exclusions"]
    if len(exclusions):
        sec.table("ci_exclusions", exclusions, "Left out, and why")
    else:
        ctx.write_table("ci_exclusions", pd.DataFrame(columns=["observers", "participant", "condition", "where",
                                                              "reason"]))
        sec.text("No participant or file was excluded.")


# ----------------------------------------------------------------------------- relevance
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


def build_relevance(ctx: ReportContext, sec: Section) -> None:
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


# ----------------------------------------------------------------------------- similarity
def build_similarity(ctx: ReportContext, sec: Section) -> None:
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


# ----------------------------------------------------------------------------- alignment
def _load_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def build_alignment(ctx: ReportContext, sec: Section) -> None:
    import pingouin as pg

    config = ctx.config
    settings = config.alignment
    region = ctx.region()
    metric = settings.metric
    sec.text(f"Each participant's and the group CI ({settings.reference} observers, condition "
             f"'{settings.condition}') against each variant's set-level relevance map and each model observer's "
             f"CI ({metric} correlation inside the search region). Null: the reference map circularly shifted by "
             f"random offsets ({settings.null_draws} draws). Noise ceiling: split-half reliability of the group CI "
             "over random halves of the participants, Spearman-Brown corrected; a map cannot be expected to "
             "correlate with the group CI above its square root.")
    try:
        maps = ctx.variant_maps() if ctx.variants() else {}
    except InputError:
        maps = {}
    relevance = {name: summary_map(m, config.models.relevance_map) for name, m in maps.items()}
    done = False
    all_group, all_participants, all_tests, ceilings = [], [], [], []
    for task in config.tasks:
        cis = ctx.ci(task)
        key = ctx.reference_key(task)
        reference = cis.get(key) if key else None
        if not ctx.groups(task):
            sec.note(_no_trials_message(ctx, task))
            continue
        if reference is None:
            sec.note(f"task {task}: no CIs of '{settings.reference}' observers to compare with the models "
                     + ("(no such observers: set alignment.reference to one of "
                        + ", ".join(sorted({g.key for g in ctx.groups(task)} | {g.kind for g in ctx.groups(task)}))
                        + ")" if key is None else "(see Problems)"))
            continue
        if settings.condition not in reference.maps:
            sec.note(f"task {task}: the {reference.group.label} have no group CI in condition "
                     f"'{settings.condition}' (they have: {', '.join(reference.maps) or 'none'})")
            continue
        human = _load_npz(reference.maps[settings.condition])
        references = {name: ("relevance", m) for name, m in relevance.items()}
        for gci in cis.values():
            if gci.group.kind == "model" and settings.condition in gci.maps:
                references[f"observer:{gci.group.variant or gci.group.key}"] = (
                    "model observer", _load_npz(gci.maps[settings.condition])["z"].astype(np.float64))
        if not references:
            sec.note(f"task {task}: no relevance maps and no model observers to compare the CIs with")
            continue
        done = True
        participants = [str(p) for p in human["participants"]]
        humans = {"group": human["z"].astype(np.float64)}
        humans.update({f"sub-{p}": z.astype(np.float64) for p, z in zip(participants, human["participant_z"])})
        table = align_maps(humans, {k: v for k, (_, v) in references.items()}, region=region,
                           top_percents=(config.models.top_percent,))
        table.insert(0, "task", task)
        table.insert(1, "observers", reference.group.key)
        table["kind"] = table["reference"].map({k: kind for k, (kind, _) in references.items()})
        group_rows = table[table["human"] == "group"].copy()
        nulls = [shift_null(humans["group"], references[r][1], region=region, n=settings.null_draws,
                            seed=config.seed + i, method=metric) for i, r in enumerate(group_rows["reference"])]
        group_rows["null_mean"] = [n["null_mean"] for n in nulls]
        group_rows["null_q95"] = [n["null_q95"] for n in nulls]
        group_rows["p_shift"] = [n["p"] for n in nulls]
        group_rows["p_shift_fdr"] = _fdr(group_rows["p_shift"])
        ceiling = None
        if len(participants) >= 2:
            ceiling = noise_ceiling(human["participant_z"], region=region, n_splits=settings.noise_splits,
                                    seed=config.seed, method=metric)
            ceilings.append({"task": task, "observers": reference.group.key, "condition": settings.condition,
                             **ceiling})
        all_group.append(group_rows)
        person_rows = table[table["human"] != "group"]
        all_participants.append(person_rows)
        if len(participants) >= 2:
            tests = []
            for name, rows in person_rows.groupby("reference", sort=False):
                z = fisher_z(rows[metric].to_numpy())
                z = z[np.isfinite(z)]
                if len(z) >= 2 and np.std(z) > 1e-9:
                    test = pg.ttest(z, 0.0)
                    tests.append({"task": task, "observers": reference.group.key, "reference": name,
                                  "kind": references[name][0], "n": len(z), "mean_r": float(np.tanh(z.mean())),
                                  "T": float(test["T"].iloc[0]), "p_val": float(test["p_val"].iloc[0]),
                                  "cohen_d": float(test["cohen_d"].iloc[0])})
            if tests:
                tests = pd.DataFrame(tests)
                tests["p_fdr"] = _fdr(tests["p_val"])
                all_tests.append(tests)
        ordered = group_rows.sort_values(metric, ascending=False)
        sec.figure(plot_alignment(ordered, ctx.figure_path(f"alignment_{task}_{settings.condition}"), value=metric,
                                  ceiling=ceiling["ceiling"] if ceiling else None,
                                  title=f"{task}, {settings.condition}: group CI of the {reference.group.label}",
                                  label=f"{metric} r with the group CI"),
                   f"{task}: agreement of the {reference.group.label}' group CI with each variant's relevance map "
                   "(blue) and each model observer's CI (orange); tick: 95th percentile of the shift null", width=640)
        ctx.facts.setdefault("alignment", {})[task] = {"group": group_rows, "ceiling": ceiling,
                                                        "observers": reference.group.label}
    if not done:
        raise Absent("nothing to align (see the notes above)")
    sec.table("alignment_group", pd.concat(all_group, ignore_index=True),
              "Group CI against each reference map, with the shift null (p_shift, FDR-corrected p_shift_fdr)",
              columns=["task", "reference", "kind", metric, f"dice_top{float(config.models.top_percent):g}",
                       "null_mean", "null_q95", "p_shift", "p_shift_fdr"])
    if ceilings:
        sec.table("alignment_noise_ceiling", pd.DataFrame(ceilings), "Human noise ceiling: split-half reliability "
                  "(r_half), Spearman-Brown corrected (reliability), its square root (ceiling); lower/upper: Nili et "
                  "al.'s bounds for one participant's CI",
                  columns=["task", "observers", "n_participants", "r_half", "reliability", "ceiling", "lower",
                           "upper"])
    participants_table = pd.concat(all_participants, ignore_index=True)
    ctx.write_table("alignment_participants", participants_table)
    if all_tests:
        sec.table("alignment_participant_tests", pd.concat(all_tests, ignore_index=True),
                  "Participants' CIs against each reference map: one-sample t-test of the Fisher-z correlation "
                  "across participants (pingouin ttest; FDR across references). Every participant's value: "
                  "tables/alignment_participants.csv")


def _fdr(p_values) -> np.ndarray:
    import pingouin as pg

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = pg.multicomp(p[ok], method="fdr_bh")[1]
    return out


# ----------------------------------------------------------------------------- conditions
def _burn_in(table: pd.DataFrame) -> int:
    """The staircase burn-in the participants' summaries left out (``burn_in_trials``)."""
    values = table["burn_in_trials"].dropna().unique() if "burn_in_trials" in table.columns else []
    if len(values) != 1:
        raise InputError("the participants' table does not say which staircase burn-in it left out "
                         "(column burn_in_trials)")
    return int(values[0])


def build_conditions(ctx: ReportContext, sec: Section) -> None:
    config = ctx.config
    start = len(sec.blocks)  # the introduction goes here once the burn-in is known
    descriptives, anovas, pairwise, found, burn_ins = [], [], [], False, set()
    for task in config.tasks:
        for gci in _sorted_groups(ctx, task, ctx.ci(task)):
            table = gci.outputs.participants
            table = table[table["included"].astype(bool)] if len(table) else table
            conditions = _ordered(table["condition"]) if len(table) else []
            if len(conditions) < 2:
                continue
            found = True
            burn_in = _burn_in(table)
            burn_ins.add(burn_in)
            label = f"{task}: {gci.group.label}"
            desc = condition_descriptives(table, [d for d, _ in DVS], conditions)
            descriptives.append(desc.assign(task=task, observers=gci.group.key))
            sec.figure(plot_conditions(table, DVS, ctx.figure_path(f"conditions_{task}_{gci.group.key}"),
                                       conditions=conditions, title=label),
                       f"{label}: each participant (grey) and the mean with its standard error (black)", width=680)
            facts = {"label": gci.group.label, "kind": gci.group.kind, "descriptives": desc, "pairwise": {},
                     "burn_in": burn_in}
            for dv, _ in DVS:
                try:
                    result = condition_effects(table, dv, conditions=conditions)
                except InputError as error:
                    if table["participant"].nunique() >= 2:
                        sec.note(f"{label}, {dv}: {error}")
                    continue
                anovas.append(result["anova"].assign(task=task, observers=gci.group.key))
                pairwise.append(result["pairwise"].assign(task=task, observers=gci.group.key))
                facts["pairwise"][dv] = result["pairwise"]
                if result["dropped"]:
                    sec.note(f"{label}, {dv}: left out for missing a condition: "
                             + ", ".join(f"sub-{p}" for p in result["dropped"]))
            ctx.facts.setdefault("conditions", {})[(task, gci.group.key)] = facts
    if not found:
        raise Absent("no observer group has trials in two or more conditions")
    sec.text("Accuracy and the area the bubbles revealed (the sum of each trial's mask over the face aperture, in "
             "pixels), by how the bubbles were placed (random, guided by a model's relevance, antiguided). They are "
             "compared on revealed area, not on the number of bubbles: guided apertures pile up where the model "
             "looks and overlap, so the same number of them shows fewer pixels. The staircase holds accuracy near "
             "its target, so help from model-relevant pixels shows as less revealed area for the same accuracy. "
             f"The first {' or '.join(str(b) for b in sorted(burn_ins))} main trials of each staircase (its burn-in, "
             "while QUEST moves away from its start value) are left out. The revealed area at the target accuracy "
             "is fitted to the trials after the burn-in (QUEST's Weibull on log10 revealed area, its slope and "
             "lapse rate fixed): the staircase, which works on the number of bubbles, holds guided and random "
             "trials at slightly different accuracies, so the mean area per trial is shown but not what the "
             "finding tests. Paired tests across participants (pingouin rm_anova and pairwise_tests, "
             "FDR-corrected).")
    sec.blocks.insert(start, sec.blocks.pop())
    front = ["task", "observers"]
    desc = pd.concat(descriptives, ignore_index=True)
    sec.table("conditions_descriptives", desc[front + [c for c in desc.columns if c not in front]],
              "Mean, SD and standard error by condition", max_rows=24)
    if anovas:
        frame = pd.concat(anovas, ignore_index=True)
        sec.table("conditions_anova", frame[front + [c for c in frame.columns if c not in front]],
                  "Repeated-measures ANOVA across conditions (participants as the repeated measure)")
        frame = pd.concat(pairwise, ignore_index=True)
        sec.table("conditions_pairwise", frame, "Paired tests between conditions (FDR-corrected p_corr, Cohen's d)",
                  columns=["task", "observers", "dv", "A", "B", "mean_A", "mean_B", "T", "dof", "p_unc", "p_corr",
                           "cohen"], max_rows=24)


# ----------------------------------------------------------------------------- findings
SEED_STUDY = {
    "seed": "LRP maps are stable across random initialisations (seeds).",
    "task": "Maps generalise across finetuning tasks (gender, identity).",
    "pretrain": "Maps generalise markedly less across pretraining data (ImageNet vs faces) than across "
                "seeds or tasks, with asymmetries.",
    "guided": "Not tested there. The platform's question: are the pixels a model finds relevant diagnostic for "
              "an observer (guided bubbles need less revealed area or give higher accuracy than random ones)?",
    "alignment": "Not tested there. The platform's question: do observers' classification images match the "
                 "models' relevance maps?",
}


def _contrast(pairwise: pd.DataFrame, a: str, b: str) -> dict[str, float] | None:
    """The row comparing levels a and b (either order) as mean_a, mean_b, p_corr, d (a - b)."""
    for _, row in pairwise.iterrows():
        if {row["A"], row["B"]} == {a, b}:
            flip = row["A"] != a
            mean_a, mean_b = ("mean_r_B", "mean_r_A") if flip else ("mean_r_A", "mean_r_B")
            if "mean_r_A" not in row:
                mean_a, mean_b = ("mean_B", "mean_A") if flip else ("mean_A", "mean_B")
            return {"mean_a": float(row[mean_a]), "mean_b": float(row[mean_b]), "p": float(row["p_corr"]),
                    "d": -float(row["cohen"]) if flip else float(row["cohen"]), "T": float(row["T"])}
    return None




def _guided_finding(ctx: ReportContext) -> list[dict[str, str]]:
    alpha = ctx.config.alpha
    rows = []
    for (task, _key), facts in ctx.facts.get("conditions", {}).items():
        if facts["kind"] == "model":
            continue
        desc = facts["descriptives"].set_index(["dv", "condition"])
        if ("accuracy_after_burn_in", "guided") not in desc.index or ("accuracy_after_burn_in", "random") not in desc.index:
            continue
        parts, helped, hurt = [], [], []
        # revealed area, not bubble count: guided apertures overlap, so equal counts show fewer pixels
        for dv, better_if_higher, label, digits, unit in GUIDED_DVS:
            guided, random = desc.loc[(dv, "guided"), "mean"], desc.loc[(dv, "random"), "mean"]
            c = _contrast(facts["pairwise"][dv], "guided", "random") if dv in facts["pairwise"] else None
            stat = f" (paired t, FDR {p_text(c['p'])}, d = {fmt(c['d'], 2)})" if c else " (no test: too few participants)"
            parts.append(f"{label} {fmt(guided, digits)}{unit} guided vs {fmt(random, digits)}{unit} random{stat}")
            if c and c["p"] < alpha:
                (helped if (c["mean_a"] > c["mean_b"]) == better_if_higher else hurt).append(label)
        n = int(desc.loc[("accuracy_after_burn_in", "guided"), "n"])
        tested = any(_contrast(facts["pairwise"][dv], "guided", "random")
                     for dv, *_ in GUIDED_DVS if dv in facts["pairwise"])
        verdict = ("helped" if helped and not hurt else "hurt" if hurt and not helped
                   else "mixed" if helped else "no detectable difference" if tested else "not tested")
        measured = ("; ".join(parts) + f" (after the first {facts['burn_in']} trials of each staircase; revealed "
                    "area: the mask's sum over the face aperture, at the target accuracy from QUEST's psychometric "
                    "function fitted on log10 area).")
        rows.append({"topic": f"Model-relevant pixels and observers ({task}, {facts['label']}, n = {n})",
                     "seed_study": SEED_STUDY["guided"], "measured": measured,
                     "verdict": verdict + (f" ({', '.join(helped + hurt)})" if helped or hurt else "")})
    if not rows:
        rows.append({"topic": "Model-relevant pixels and observers", "seed_study": SEED_STUDY["guided"],
                     "measured": "No observer group ran both guided and random conditions.",
                     "verdict": "not measured"})
    return rows


def _alignment_finding(ctx: ReportContext) -> list[dict[str, str]]:
    rows = []
    alpha = ctx.config.alpha
    metric = ctx.config.alignment.metric
    for task, facts in ctx.facts.get("alignment", {}).items():
        group = facts["group"]
        relevance = group[group["kind"] == "relevance"]
        if relevance.empty:
            continue
        best = relevance.sort_values(metric, ascending=False).iloc[0]
        n_sig = int((relevance["p_shift_fdr"] < alpha).sum())
        ceiling = facts["ceiling"]
        text = (f"Group CI of the {facts['observers']} ({task}): best variant {best.reference}, "
                f"{metric} r = {fmt(best[metric], 2)} (shift null 95th percentile {fmt(best.null_q95, 2)}, "
                f"FDR {p_text(best.p_shift_fdr)}); {n_sig} of {len(relevance)} variants above their null")
        text += (f"; noise ceiling {fmt(ceiling['ceiling'], 2)}." if ceiling else "; no noise ceiling (one participant).")
        rows.append({"topic": f"Observers' CIs and models' relevance ({task})", "seed_study": SEED_STUDY["alignment"],
                     "measured": text, "verdict": "aligned" if n_sig else "not aligned beyond the null"})
    return rows


def build_findings(ctx: ReportContext, sec: Section) -> None:
    sec.text("What this run measured, next to the findings of the seed study (Crawford, Margalit, Grill-Spector & "
             "Poltoratski, 'Validation and generalization of pixel-wise relevance in CNNs trained for face "
             "classification', arXiv 2006.16795). Every statement below is computed from this run's tables.")
    sec.text("Map similarities are set against baselines of the same variants (their trained layers "
             "re-initialised and untrained; every layer re-initialised): 'agrees' needs the 95% CI of the difference "
             "above 0. Inference is over images, conditional on the trained networks (see the similarity section "
             "for the per-pair values).")
    rows = similarity_findings(ctx, SEED_STUDY)
    rows.extend(masking_findings(ctx, _contrast))
    rows.extend(_guided_finding(ctx))
    rows.extend(_alignment_finding(ctx))
    columns = ["topic", "seed_study", "design", "effect", "baseline", "difference", "measured", "verdict"]
    table = pd.DataFrame(rows, columns=columns).fillna("")
    ctx.facts["findings"] = table
    ctx.write_table("findings", table)
    body = "".join(
        f'<tr><td>{html.escape(r.topic)}</td><td>{html.escape(r.seed_study)}</td><td>{html.escape(r.design)}</td>'
        f'<td>{html.escape(r.effect)}</td><td>{html.escape(r.baseline)}</td><td>{html.escape(r.difference)}</td>'
        f'<td>{html.escape(r.measured)}</td>'
        f'<td class="verdict {html.escape(r.verdict.split(" ")[0])}">{html.escape(r.verdict)}</td></tr>'
        for r in table.itertuples())
    sec.html('<div class="table"><table class="findings"><thead><tr><th>question</th><th>seed study</th>'
             '<th>design (what differs, what is fixed)</th><th>effect</th><th>baseline (null)</th>'
             '<th>difference [95% CI]</th><th>measured here</th><th>verdict</th></tr></thead>'
             f'<tbody>{body}</tbody></table></div>')


# ----------------------------------------------------------------------------- problems
def build_problems(ctx: ReportContext, sec: Section) -> None:
    if not ctx.problems:
        sec.text("None: every input was read and every participant included.")
        return
    sec.text(f"{len(ctx.problems)} problem(s) found while reading the inputs; each was left out and the rest of "
             "the report was produced without it.")
    items = "".join(f"<li>{html.escape(p)}</li>" for p in ctx.problems)
    sec.html(f'<ul class="problems">{items}</ul>')
    ctx.write_table("problems", pd.DataFrame({"problem": ctx.problems}))


DEFAULT_SECTIONS: list[SectionSpec] = [
    SectionSpec("findings", "Findings next to the seed study", build_findings, deferred=True),
    SectionSpec("overview", "Data and settings", build_overview),
    SectionSpec("ci", "Classification images", build_ci),
    SectionSpec("relevance", "Relevance maps per variant", build_relevance),
    SectionSpec("similarity", "Stability and generalisation of relevance maps", build_similarity),
    SectionSpec("masking", "Relevance-based masking", build_masking),
    SectionSpec("alignment", "People and models", build_alignment),
    SectionSpec("conditions", "Accuracy by condition", build_conditions),
    SectionSpec("problems", "Problems and exclusions", build_problems, deferred=True),
]
