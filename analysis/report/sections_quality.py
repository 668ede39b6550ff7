"""The report's timing and quality-control section: the QC table per participant, the
exclusions by the ``qc:`` rules, and a figure per observer group with a row per participant
(the staircase trace and the accuracy over trials).

Writes ``tables/qc.csv`` (one row per participant, :data:`analysis.quality.QC_COLUMNS` with
``task`` and ``observers``), ``tables/qc_exclusions.csv``, ``tables/qc_staircase.csv`` (bubbles
per trial), ``tables/qc_accuracy_windows.csv`` and ``figures/qc_<task>_<observers>[_<part>].png``.
Participants the QC excludes are left out of the group statistics (classification images,
conditions, alignment) unless ``qc.drop_excluded`` is false; ``ci_exclusions.csv`` lists them too.

Examples
--------
>>> from analysis.report.registry import SECTIONS
>>> SECTIONS["qc"].title
'Timing and quality control'
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..quality import GroupQuality, QCRules
from .context import ReportContext
from .page import Section, plural
from .plots import finish_figure, small_multiples
from .registry import Absent, register_section

__all__ = ["plot_quality", "rules_text", "ROWS_PER_FIGURE"]  # the builder is reached through the registry

ROWS_PER_FIGURE = 12  # participants per QC figure (more: several figures)
_COLOURS = {"random": "#4c72b0", "guided": "#dd8452", "antiguided": "#55a868"}
# what the page shows (the CSV keeps every column, under its own names); timing not measured is said
_SHOWN = {"task": "task", "observers": "observers", "participant": "participant", "n_trials": "trials",
          "accuracy": "accuracy", "chance": "chance", "p_above_chance": "p (above chance)",
          "rt_median_s": "RT median (s)", "rt_iqr_s": "RT IQR (s)", "dropped_frame_trials": "trials with dropped frames",
          "frame_interval_median_ms": "frame interval median (ms)", "frame_interval_p99_ms": "frame interval p99 (ms)",
          "dropped_frame_share": "dropped frames (share)", "final_n_bubbles": "final bubbles",
          "excluded": "excluded"}  # the reasons: in the exclusions table below
_TIMING = ("dropped_frame_trials", "dropped_frame_trial_share", "frame_interval_median_ms", "frame_interval_p99_ms",
           "dropped_frame_share")


def rules_text(rules: QCRules, alpha: float) -> str:
    """The exclusion rules in words.

    Parameters
    ----------
    rules : QCRules
        The ``qc:`` rules of the config.
    alpha : float
        The report's alpha (the binomial test's level unless the rules set one).

    Returns
    -------
    str
        One paragraph.

    Examples
    --------
    >>> rules_text(QCRules(max_dropped_frame_share=None), 0.05)[:60]
    'A participant is excluded when dropped frames occurred on mo'
    """
    parts = []
    if rules.max_dropped_trial_share is not None:
        parts.append(f"dropped frames occurred on more than {rules.max_dropped_trial_share:.1%} of main trials")
    if rules.max_dropped_frame_share is not None:
        parts.append(f"more than {rules.max_dropped_frame_share:.1%} of the recorded frames were dropped")
    if rules.accuracy_above_chance:
        level = rules.alpha if rules.alpha is not None else alpha
        chance = f"{rules.chance:g}" if rules.chance is not None else "one over the number of answers"
        parts.append(f"accuracy over the main trials is not above chance ({chance}; one-sided exact binomial test, "
                     f"alpha = {level:g})")
    if not parts:
        return "No exclusion rule is set (qc: in the config); every participant is kept."
    return ("A participant is excluded when " + "; or ".join(parts) + ". Timing rules apply only where timing was "
            "measured (observers without a screen record none).")


def _label(participant: str, excluded: bool) -> str:
    return f"sub-{participant}" + (" (excluded)" if excluded else "")


def plot_quality(table: pd.DataFrame, trace: pd.DataFrame, windows: pd.DataFrame, path: str | os.PathLike, *,
                 title: str = "", targets: dict[str, float] | None = None) -> Path:
    """A row per participant: bubbles per trial of each staircase with its final estimate
    (dashed), and accuracy over windows of trials with chance (grey) and the staircase's
    target accuracy (dotted; ``targets``: participant -> target, where recorded).

    Parameters
    ----------
    table : DataFrame
        The QC table, one row per participant (``participant``, ``excluded``, ``chance``).
    trace : DataFrame
        Bubbles per trial of each staircase (``participant``, ``session``, ``staircase``,
        ``condition``, ``staircase_trial``, ``n_bubbles``, ``final_n_bubbles``).
    windows : DataFrame
        Accuracy per window of trials (``participant``, ``first_trial``, ``last_trial``, ``accuracy``).
    path : path-like
        The PNG file.
    title : str
        A title over the figure.
    targets : dict, optional
        participant -> the staircase's target accuracy.

    Returns
    -------
    Path
        ``path``.
    """
    n = max(len(table), 1)
    fig, panels = small_multiples(2 * n, columns=2, panel=(5.0, 1.9), margin=(0.0, 0.7))
    axes = [panels[i:i + 2] for i in range(0, len(panels), 2)]
    for row, qc in zip(axes, table.itertuples()):
        stair, acc = row
        own = trace[trace["participant"] == qc.participant]
        for (session, staircase), part in own.groupby(["session", "staircase"], sort=False):
            condition = str(part["condition"].iloc[0])
            colour = _COLOURS.get(condition, None)
            lines = stair.plot(part["staircase_trial"], part["n_bubbles"], lw=0.9, color=colour,
                               label=f"{staircase} (ses {session})")
            stair.axhline(float(part["final_n_bubbles"].iloc[0]), ls="--", lw=0.8, color=lines[0].get_color())
        stair.set_ylabel("bubbles", fontsize=8)
        stair.set_title(f"{_label(qc.participant, bool(qc.excluded))}: staircase (final estimate dashed)",
                        fontsize=8, color="#b3261e" if qc.excluded else "black")
        if len(own):
            stair.legend(fontsize=6, loc="upper right")
        mine = windows[windows["participant"] == qc.participant]
        middle = (mine["first_trial"] + mine["last_trial"]) / 2
        acc.plot(middle, mine["accuracy"], marker="o", ms=3, lw=0.9, color="black")
        if math.isfinite(qc.chance):
            acc.axhline(qc.chance, color="grey", lw=0.8)
        target = (targets or {}).get(qc.participant)
        if target is not None:
            acc.axhline(target, color="grey", lw=0.8, ls=":")
        acc.set_ylim(-0.02, 1.02)
        acc.set_ylabel("accuracy", fontsize=8)
        acc.set_title(f"{_label(qc.participant, bool(qc.excluded))}: accuracy per window (chance grey, target dotted)",
                      fontsize=8, color="#b3261e" if qc.excluded else "black")
        for ax in row:
            ax.tick_params(labelsize=7)
    axes[-1][0].set_xlabel("trial of the staircase", fontsize=8)
    axes[-1][1].set_xlabel("answered main trial", fontsize=8)
    return finish_figure(fig, path, title)


def _display(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.astype(object).copy()
    for column in _TIMING:
        if column in shown.columns:
            shown[column] = [v if isinstance(v, (int, float, np.number)) and math.isfinite(float(v))
                             else "not measured" for v in table[column]]
    shown["excluded"] = ["yes" if v else "no" for v in table["excluded"].astype(bool)]
    return shown[list(_SHOWN)].rename(columns=_SHOWN)


def _figures(ctx: ReportContext, sec: Section, task: str, key: str, label: str, quality: GroupQuality) -> None:
    table = quality.table
    chunks = [table.iloc[i:i + ROWS_PER_FIGURE] for i in range(0, len(table), ROWS_PER_FIGURE)]
    for number, chunk in enumerate(chunks, start=1):
        suffix = f"_{number}" if len(chunks) > 1 else ""
        path = plot_quality(chunk, quality.trace, quality.windows, ctx.figure_path(f"qc_{task}_{key}{suffix}"),
                            title=f"{task}: {label}" + (f" ({number} of {len(chunks)})" if suffix else ""),
                            targets=quality.targets)
        sec.figure(path, f"{task}, {label}: staircase trace (bubbles per trial, each staircase's final estimate "
                         f"dashed) and accuracy over windows of {ctx.config.qc.accuracy_window} trials", width=900)


@register_section("qc", "Timing and quality control")
def build_quality(ctx: ReportContext, sec: Section) -> None:
    """The QC section (see the module docstring)."""
    config = ctx.config
    sec.text("Per participant: answered main trials, accuracy and its one-sided binomial test against chance, "
             "response times (median, interquartile range), trials with dropped frames (trial file), frame "
             "intervals (median and 99th percentile, from the session's *_events.tsv) and the share of dropped "
             "frames, and the staircase's final estimate (bubbles; geometric mean over staircases). 'not measured': "
             "the observer had no screen (simulated and model observers) or the session saved no frame intervals.")
    sec.text(rules_text(config.qc, config.alpha) + (
        " Excluded participants are left out of the group statistics (classification images, conditions, "
        "alignment) and listed below." if config.qc.drop_excluded else
        " Excluded participants are listed but kept in the group statistics (qc.drop_excluded: false)."))
    groups = []
    for task in config.tasks:
        for group in ctx.groups(task):
            quality = ctx.quality(task)[group.key]
            for reason in quality.skipped:  # the classification images report the same file
                sec.note(f"{group.label}: left out of the QC: {reason}")
            if len(quality.table):
                groups.append((task, group, quality))
    if not groups:
        raise Absent("no trial files to check (no observer group has readable trial files of "
                     f"{', '.join(config.tasks)})")
    front = ["task", "observers"]
    tag = [{"task": task, "observers": group.key} for task, group, _ in groups]
    table = pd.concat([q.table.assign(**t) for (_, _, q), t in zip(groups, tag)], ignore_index=True)
    table = table[front + [c for c in table.columns if c not in front]]
    ctx.write_table("qc", table)
    sec.table("qc", _display(table), "Quality control per participant (timing not measured: observers without a "
              "screen); every column in", max_rows=40, write=False)
    excluded = table[table["excluded"].astype(bool)][front + ["participant", "reasons"]]
    ctx.write_table("qc_exclusions", excluded)
    if len(excluded):
        sec.table("qc_exclusions", excluded, "Excluded by the QC rules, and why", write=False)
    else:
        sec.text("No participant was excluded by the QC rules.")
    for task, group, quality in groups:  # the figures, a row per participant
        sec.heading(f"{task}: {group.label} ({plural(len(quality.table), 'participant')}, "
                    f"{len(quality.excluded)} excluded)")
        _figures(ctx, sec, task, group.key, group.label, quality)
    ctx.write_table("qc_staircase", pd.concat([q.trace.assign(**t) for (_, _, q), t in zip(groups, tag)],
                                              ignore_index=True))
    ctx.write_table("qc_accuracy_windows", pd.concat([q.windows.assign(**t) for (_, _, q), t in zip(groups, tag)],
                                                     ignore_index=True))
