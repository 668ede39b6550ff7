"""The report's findings next to the seed study (Crawford, Margalit, Grill-Spector &
Poltoratski, arXiv 2006.16795): one row per question, each computed from this run's tables.

Map similarity (seed stability, task generalisation, pretraining dependence) against its
baselines: effect, baseline, difference with its 95% CI over images, the design and the verdict
(:func:`similarity_findings`); masking transfer and its asymmetries (:func:`masking_findings`);
model-relevant pixels for observers (:func:`guided_findings`); observers' CIs against the
models' relevance (:func:`alignment_findings`). The section is built after the others: it
reads the facts they left in ``ctx.facts``.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..similarity_null import pretrain_verdict, similarity_verdict
from .context import ReportContext
from .page import Section, fmt, p_text, plural
from .registry import register_section

__all__ = ["SEED_STUDY", "DESIGN", "GUIDED_DVS", "similarity_findings", "masking_findings", "guided_findings",
           "alignment_findings"]  # the section's builder is reached through the registry


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


# what the guided finding tests: the area at the staircase's target accuracy (the mean area per trial is
# biased there: the staircase holds guided and random trials at slightly different accuracies)
GUIDED_DVS = (("accuracy_after_burn_in", True, "accuracy", 3, ""),
              ("threshold_revealed_px", False, "revealed area at the target accuracy", 4, " px"))


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


def similarity_findings(ctx: ReportContext) -> list[dict[str, str]]:
    """The findings rows of seed stability, task generalisation and pretraining dependence.

    Parameters
    ----------
    ctx : ReportContext
        Reads ``facts["level_summary"]`` and ``facts["similarity_null"]`` (the similarity section).

    Returns
    -------
    list of dict
        Three rows (seed, task, pretrain) with ``design``, ``effect``, ``baseline``, ``difference``.
    """
    topics = {"seed": "Stability across seeds", "task": "Generalisation across finetuning tasks",
              "pretrain": "Dependence on pretraining data"}
    null = ctx.facts.get("similarity_null")
    stable = ctx.config.findings.stable_r
    rows = []
    for level, topic in topics.items():
        row = {"topic": topic, "seed_study": SEED_STUDY[level], "design": DESIGN[level], "effect": "",
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


def masking_findings(ctx: ReportContext) -> list[dict[str, str]]:
    """The findings rows on masking transfer and its asymmetries.

    Parameters
    ----------
    ctx : ReportContext
        Reads ``facts["masking"]`` (the masking section; absent: two rows 'not measured').

    Returns
    -------
    list of dict
        The transfer row and the asymmetry row.
    """
    facts = ctx.facts.get("masking")
    alpha = ctx.config.alpha
    seed_study = ("Validated by relevance-based masking: another variant's map transfers across seeds and tasks "
                  "nearly as well as the target's own, markedly less across pretraining data.")
    if not facts:
        return [{"topic": "Masking transfer", "seed_study": seed_study, "verdict": "not measured",
                 "measured": "No model evaluate output in this report."},
                {"topic": "Asymmetries of transfer", "seed_study": "Transfer across pretraining is asymmetric: "
                 "one pretraining's maps serve the other's models better than the reverse.",
                 "measured": "No model evaluate output in this report.", "verdict": "not measured"}]
    rel = facts["by_relation"].set_index("relation")
    parts = [f"{name}: {fmt(rel.loc[key, 'relative_mean'], 2)}" for key, name in
             (("seed", "across seeds"), ("task", "across tasks"), ("pretrain", "across pretraining")) if key in rel.index]
    text = (f"Relative transfer ({facts['mode']} masking; 1 = as good as the target's own map, 0 = random masks), "
            f"mean over pairs: {'; '.join(parts) or 'no pair differs in one factor'}.")
    verdicts = []
    pairwise = facts.get("pairwise")
    for other in ("task", "seed"):
        c = _contrast(pairwise, "pretrain", other) if pairwise is not None else None
        if c is None:
            continue
        text += (f" Pretraining vs {other}: {fmt(c['mean_a'], 2)} vs {fmt(c['mean_b'], 2)} (paired over targets, "
                 f"FDR {p_text(c['p'])}, d = {fmt(c['d'], 2)}).")
        verdicts.append(c["mean_a"] < c["mean_b"] and c["p"] < alpha)
    rows = [{"topic": "Masking transfer", "seed_study": seed_study, "measured": text,
             "verdict": ("agrees" if all(verdicts) else "differs") if verdicts else "not measured"}]
    tests = facts["asymmetry"]
    largest = facts["largest"]
    parts = []
    for r in tests.itertuples():
        first, second = (f"s{x}" if r.relation == "seed" else x for x in r.direction.split("->"))
        better, worse = (first, second) if r.mean >= 0 else (second, first)
        factor = {"seed": "seed", "task": "task", "pretrain": "pretraining"}.get(r.relation, r.relation)
        if np.isfinite(r.n_first):
            test = (f"significant in {int(r.n_first)} pair(s) for {first} maps, {int(r.n_second)} for {second} maps "
                    f"(bootstrap over images per pair, FDR {p_text(r.p_fdr_min)} at best)")
        else:
            test = "not tested: no bootstrap in this evaluate output"
        unit = "relative transfer" if r.measure == "relative" else "AOPC"
        parts.append(f"across {factor}: {better} maps serve {worse} models better than the reverse by "
                     f"{fmt(abs(r.mean), 2)} {unit} on average ({plural(int(r.n_pairs), 'pair')}; {test})")
    text = "; ".join(parts)
    if largest is not None:
        if facts.get("bootstrap"):
            text += (f". Largest: R[{largest['a']}, {largest['b']}] - R[{largest['b']}, {largest['a']}] = "
                     f"{fmt(largest['relative_asymmetry'], 2)} (95% CI {fmt(largest['relative_asymmetry_ci_low'], 2)} "
                     f"to {fmt(largest['relative_asymmetry_ci_high'], 2)}).")
        else:
            text += (f". Largest: M[{largest['a']}, {largest['b']}] - M[{largest['b']}, {largest['a']}] = "
                     f"{fmt(largest['asymmetry'], 2)}.")
    pretrain = tests[tests["relation"] == "pretrain"]
    if pretrain.empty or not np.isfinite(pd.to_numeric(pretrain["n_first"], errors="coerce")).any():
        verdict = "not measured"
    else:  # agrees: some pair asymmetric, and all the significant ones favour the same pretraining
        first, second = int(pretrain["n_first"].sum()), int(pretrain["n_second"].sum())
        verdict = "agrees" if (first + second) and not (first and second) else "differs"
    rows.append({"topic": "Asymmetries of transfer", "seed_study": "Transfer across pretraining is asymmetric: one "
                 "pretraining's maps serve the other's models better than the reverse.",
                 "measured": text or "No pair of variants differs in exactly one factor.", "verdict": verdict})
    return rows


def guided_findings(ctx: ReportContext) -> list[dict[str, str]]:
    """Whether pixels a model finds relevant helped the observers (guided against random bubbles), one row per
    observer group that ran both, on accuracy and on the revealed area at the target accuracy.

    Parameters
    ----------
    ctx : ReportContext
        Reads ``facts["conditions"]`` (the conditions section; model observers are skipped).

    Returns
    -------
    list of dict
        One row per observer group, or one 'not measured' row.
    """
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


def alignment_findings(ctx: ReportContext) -> list[dict[str, str]]:
    """Whether the observers' group CIs match the models' relevance maps beyond the shift null, per task.

    Parameters
    ----------
    ctx : ReportContext
        Reads ``facts["alignment"]`` (the alignment section).

    Returns
    -------
    list of dict
        One row per task with relevance maps to compare.
    """
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


@register_section("findings", "Findings next to the seed study", deferred=True)
def build_findings(ctx: ReportContext, sec: Section) -> None:
    """The findings table: every row of this module's functions (built after the other sections)."""
    sec.text("What this run measured, next to the findings of the seed study (Crawford, Margalit, Grill-Spector & "
             "Poltoratski, 'Validation and generalization of pixel-wise relevance in CNNs trained for face "
             "classification', arXiv 2006.16795). Every statement below is computed from this run's tables.")
    sec.text("Map similarities are set against baselines of the same variants (their trained layers "
             "re-initialised and untrained; every layer re-initialised): 'agrees' needs the 95% CI of the difference "
             "above 0. Inference is over images, conditional on the trained networks (see the similarity section "
             "for the per-pair values).")
    rows = similarity_findings(ctx)
    rows.extend(masking_findings(ctx))
    rows.extend(guided_findings(ctx))
    rows.extend(alignment_findings(ctx))
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
