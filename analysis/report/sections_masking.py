"""The report's masking section: the tables of ``python -m model evaluate``.

Transfer by relation of source and target, the baselines (random blobs inside the face
aperture, each source's set-mean map) and the asymmetries of relative transfer, each pair
tested by the bootstrap over images that ``model evaluate`` did (:mod:`analysis.masking_transfer`).
The findings rows on masking are in :mod:`analysis.report.findings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError

from ..masking_transfer import (
    asymmetry_tests,
    evaluate_command,
    oriented_asymmetry,
    source_relation,
    transfer_levels,
    transfer_relations,
    transfer_tests,
)
from ..readers.masking import read_masking
from .charts import plot_curves
from .context import ReportContext
from .page import Section
from .plots import plot_matrix
from .registry import Absent, register_section

__all__: list[str] = []  # the builder is reached through the registry


@register_section("masking", "Relevance-based masking")
def build_masking(ctx: ReportContext, sec: Section) -> None:
    """Masking curves, the transfer matrix and its asymmetries, the baselines and the tests between relations."""
    config = ctx.config
    folder = config.models.evaluate
    if not folder:
        raise Absent("no model evaluate output named in the config (models.evaluate: "
                      f"{config.results}/evaluate/<name>); make one with: python -m model evaluate CONFIG.yaml")
    if not Path(folder).is_dir():
        raise Absent(f"{folder} does not exist; make it with: {evaluate_command(folder)}")
    tables = read_masking(folder)
    ctx.inputs.extend(sorted((Path(folder) / "tables").glob("*.csv")))
    mode = tables.mode
    accuracy = tables.accuracy.copy()
    within = str(accuracy["random_within"].iloc[0]) if "random_within" in accuracy.columns else "grid"
    set_means = any(str(s).startswith("setmean:") for s in accuracy["source"])
    sec.text(f"Relevance-based masking (python -m model evaluate, {folder}): each source variant's most relevant "
             f"pixels are {'removed from' if mode == 'remove' else 'kept in'} the target variant's held-out "
             "images and the target's accuracy measured. Transfer M[source, target] is the area over the "
             "perturbation curve (AOPC; higher: the source's map finds more of the target's evidence); relative "
             "transfer scales it between random masks (0) and the target's own map (1), so targets that break "
             "more easily are compared fairly. Baselines: random blobs of the same area drawn "
             f"{'inside the face aperture' if within == 'aperture' else 'anywhere on the grid'}"
             + ("; each source's set-mean map applied to every image (does a per-image map beat where that "
                "variant's relevance usually lies?)." if set_means else "."))
    if within != "aperture":
        sec.note("Random masks were drawn over the whole grid, partly on the blank background: they flatter every "
                 "map that points at the face. Re-run python -m model evaluate (random_within: aperture).")
    accuracy["relation"] = [source_relation(s, t) for s, t in zip(accuracy["source"], accuracy["target"])]
    curves = (accuracy.groupby(["mode", "relation", "fraction"], sort=False)["accuracy"]
              .agg(["mean", "std", "count"]).reset_index())
    ctx.write_table("masking_curves", curves)
    order = {r: i for i, r in enumerate(("same", "seed", "task", "pretrain", "other", "set-mean map", "random"))}
    curves = curves.sort_values(["mode", "relation"], key=lambda c: c.map(order) if c.name == "relation" else c)
    chance = float(tables.accuracy["chance"].iloc[0]) if "chance" in tables.accuracy.columns else None
    sec.figure(plot_curves(curves.assign(relation=curves["relation"].replace({"same": "own map"})), "fraction",
                           "mean", "relation", ctx.figure_path("masking_curves"), panel="mode",
                           title="Target accuracy after masking, by the source's relation to the target",
                           xlabel="fraction of pixels", ylabel="accuracy (mean over pairs)", reference=chance),
               "Masking curves: mean target accuracy by fraction of pixels masked, one line per relation of source "
               "and target (own map, another seed, task, pretraining; set-mean maps and random blobs as baselines; "
               "dotted: chance)", width=460 * curves["mode"].nunique())
    _masking_baselines(ctx, sec, tables)
    transfer = transfer_relations(tables.transfer)
    names = sorted(set(transfer["source"]) | set(transfer["target"]))
    matrix = transfer.pivot(index="source", columns="target", values="aopc").reindex(index=names, columns=names)
    relative = transfer.pivot(index="source", columns="target", values="relative").reindex(index=names, columns=names)
    ctx.write_table("masking_matrix", matrix.reset_index())
    ctx.write_table("masking_matrix_relative", relative.reset_index())
    sec.figure(plot_matrix(matrix, ctx.figure_path("masking_transfer"), title=f"Masking transfer (AOPC, {mode})",
                           label="AOPC", xlabel="target", ylabel="source"),
               "Transfer matrix: rows are the source of the map, columns the target model", width=520)
    asym = relative - relative.T
    limit = float(np.nanmax(np.abs(asym.to_numpy()))) if np.isfinite(asym.to_numpy()).any() else 1.0
    sec.figure(plot_matrix(asym, ctx.figure_path("masking_asymmetry"), vmin=-(limit or 1.0), vmax=limit or 1.0,
                           title="Asymmetry of relative transfer R[a, b] - R[b, a]", label="relative difference",
                           cmap="RdBu_r", xlabel="b", ylabel="a", fmt="{:+.2f}"),
               "Asymmetry: positive where a's map serves b better than b's map serves a, each relative to its "
               "target's random masks and own map (a raw AOPC difference would also reflect how fragile each "
               "target is)", width=520)
    aggregations = {"pairs": ("aopc", "size"), "aopc_mean": ("aopc", "mean"), "relative_mean": ("relative", "mean")}
    if "relative_setmean" in transfer.columns:
        aggregations["setmean_relative_mean"] = ("relative_setmean", "mean")
    by_relation = (transfer.groupby("relation").agg(**aggregations).reset_index()
                   .sort_values("relation", key=lambda c: c.map(order)).reset_index(drop=True))
    sec.table("masking_by_relation", by_relation, "Transfer by relation of source and target (same = own map; "
              "setmean_relative_mean: the sources' set-mean maps on the same targets, on the same relative scale)")
    ctx.write_table("masking_transfer", transfer)
    facts: dict[str, Any] = {"by_relation": by_relation, "mode": mode, "bootstrap": tables.bootstrap}
    levels = transfer_levels(transfer, "relative")
    if levels["relation"].nunique() >= 2:
        ctx.write_table("masking_levels", levels)
        try:
            anova, pairwise = transfer_tests(levels)
        except InputError as error:
            sec.note(f"No test between relations: {error}")
        else:
            facts["pairwise"] = pairwise
            sec.table("masking_level_anova", anova, "Relative transfer across relations: repeated-measures ANOVA "
                      "(targets as the repeated measure; pingouin)")
            sec.table("masking_level_pairwise", pairwise, "Paired tests between relations (FDR-corrected p_corr, "
                      "Cohen's d)", columns=["A", "B", "mean_A", "mean_B", "T", "dof", "p_unc", "p_corr", "cohen"])
    _masking_asymmetry(ctx, sec, tables, facts)
    ctx.facts["masking"] = facts


def _masking_baselines(ctx: ReportContext, sec: Section, tables) -> None:
    """Per target: AOPC of its own maps, its set-mean map and random blobs, with bootstrap CIs."""
    aopc = tables.aopc
    if aopc is None or "aopc_ci_low" not in aopc.columns:
        return
    aopc = aopc[aopc["mode"] == tables.mode]
    rows = []
    for target, group in aopc.groupby("target", sort=False):
        by_source = group.set_index("source")
        row: dict[str, Any] = {"target": target}
        for key, source in (("own", target), ("setmean", f"setmean:{target}"), ("random", "random")):
            if source in by_source.index:
                r = by_source.loc[source]
                row.update({f"{key}": r["aopc"], f"{key}_ci_low": r["aopc_ci_low"], f"{key}_ci_high": r["aopc_ci_high"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    metric = str(aopc["metric"].iloc[0]) if "metric" in aopc.columns and len(aopc) else "the score"
    sec.table("masking_baselines", table, f"AOPC ({metric}, mean over each target's images, 95% bootstrap CI over "
              "images) of the target's own per-image maps, its set-mean map on every image, and random blobs")


def _masking_asymmetry(ctx: ReportContext, sec: Section, tables, facts: dict[str, Any]) -> None:
    oriented = oriented_asymmetry(tables.asymmetry)
    ctx.write_table("masking_asymmetry_pairs", oriented)
    tests = asymmetry_tests(oriented, alpha=ctx.config.alpha)
    facts["asymmetry"] = tests
    column = "relative_asymmetry" if tables.bootstrap else "asymmetry"
    facts["largest"] = tables.asymmetry.loc[tables.asymmetry[column].abs().idxmax()] if len(tables.asymmetry) \
        else None
    if not tables.bootstrap:
        sec.note("This evaluate output has no per-image bootstrap of the asymmetries (an older python -m model "
                 "evaluate): the raw AOPC differences below are not tested. Re-run the evaluation.")
    sec.table("masking_asymmetry_tests", tests, "Directed asymmetries of the pairs that differ in one factor: for "
              "direction x->y, the mean over pairs of R[x variant, y variant] - R[y variant, x variant] (relative "
              "transfer; positive: x's maps serve y's models better than the reverse). Each pair is tested on its "
              "own by a bootstrap over images; n_first / n_second count the pairs significant after FDR correction "
              "across all pairs in favour of x / y (pairs share variants, so no test across pairs)")
