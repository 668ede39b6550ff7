"""The report's sections on the data and the people: data and settings, classification images,
people and models (alignment), accuracy by condition, and the problems met.

Each builder registers itself (:func:`~analysis.report.registry.register_section`); the
timing and quality-control section is in :mod:`analysis.report.sections_quality`.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pingouin as pg

from stimuli.contracts.errors import InputError

from ..alignment import (
    align_maps,
    condition_descriptives,
    condition_effects,
    noise_ceiling,
    shift_null,
)
from ..model_stats import summary_map
from ..multiple import fdr
from ..reliability import fisher_z
from .charts import plot_alignment, plot_conditions
from .context import GroupCI, ReportContext
from .page import Section, plural
from .registry import Absent, register_section

__all__ = ["CONDITION_ORDER", "DVS", "ordered_conditions"]  # the builders are reached through the registry

CONDITION_ORDER = ("random", "guided", "antiguided")


# the conditions are compared after each staircase's burn-in, on revealed area rather than bubble count
# (guided apertures overlap: the same count shows fewer pixels; analysis.revealed)
DVS = (("accuracy_after_burn_in", "accuracy (proportion correct)"),
       ("mean_revealed_px", "revealed area per trial (px)"),
       ("threshold_revealed_px", "revealed area at the target accuracy (px)"))


def ordered_conditions(conditions) -> list[str]:
    """The conditions present, in :data:`CONDITION_ORDER` first, any others after (sorted).

    Parameters
    ----------
    conditions : iterable of str
        Condition labels (repeats allowed).

    Returns
    -------
    list of str
        Each condition once, in page order.

    Examples
    --------
    >>> ordered_conditions(["guided", "zoom", "random", "guided"])
    ['random', 'guided', 'zoom']
    """
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


@register_section("overview", "Data and settings")
def build_overview(ctx: ReportContext, sec: Section) -> None:
    """The stimulus set, the settings, the observer groups found and the variants with maps."""
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


@register_section("ci", "Classification images")
def build_ci(ctx: ReportContext, sec: Section) -> None:
    """Every observer group's classification images with the Stat4Ci tests (figures and tables)."""
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
            for condition in ordered_conditions(gci.maps):
                summary = outputs.summary.set_index("condition").loc[condition]
                sec.figure(gci.figures[f"group_{condition}"],
                           f"{task}, {condition}: group CI of {plural(int(summary.n_participants), 'participant')}, "
                           f"{int(summary.n_trials)} trials; {plural(int(summary.n_pixel_sig), 'significant pixel')}, "
                           f"{plural(int(summary.n_clusters_sig), 'significant cluster')}", width=340)
            if len(group.participants) > 1:
                for condition in ordered_conditions(gci.maps):
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


def _load_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@register_section("alignment", "People and models")
def build_alignment(ctx: ReportContext, sec: Section) -> None:
    """The reference observers' CIs against every variant's relevance map and model observer's CI."""
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
        group_rows["p_shift_fdr"] = fdr(group_rows["p_shift"])
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
                tests["p_fdr"] = fdr(tests["p_val"])
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


def _burn_in(table: pd.DataFrame) -> int:
    """The staircase burn-in the participants' summaries left out (``burn_in_trials``)."""
    values = table["burn_in_trials"].dropna().unique() if "burn_in_trials" in table.columns else []
    if len(values) != 1:
        raise InputError("the participants' table does not say which staircase burn-in it left out "
                         "(column burn_in_trials)")
    return int(values[0])


@register_section("conditions", "Accuracy by condition")
def build_conditions(ctx: ReportContext, sec: Section) -> None:
    """Accuracy and revealed area by condition, with the repeated-measures tests."""
    config = ctx.config
    start = len(sec.blocks)  # the introduction goes here once the burn-in is known
    descriptives, anovas, pairwise, found, burn_ins = [], [], [], False, set()
    for task in config.tasks:
        for gci in _sorted_groups(ctx, task, ctx.ci(task)):
            table = gci.outputs.participants
            table = table[table["included"].astype(bool)] if len(table) else table
            conditions = ordered_conditions(table["condition"]) if len(table) else []
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


@register_section("problems", "Problems and exclusions", deferred=True)
def build_problems(ctx: ReportContext, sec: Section) -> None:
    """Every problem met while reading the inputs (built last)."""
    if not ctx.problems:
        sec.text("None: every input was read and every participant included.")
        return
    sec.text(f"{len(ctx.problems)} problem(s) found while reading the inputs; each was left out and the rest of "
             "the report was produced without it.")
    items = "".join(f"<li>{html.escape(p)}</li>" for p in ctx.problems)
    sec.html(f'<ul class="problems">{items}</ul>')
    ctx.write_table("problems", pd.DataFrame({"problem": ctx.problems}))
