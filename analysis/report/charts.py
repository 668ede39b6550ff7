"""The report's charts: curves, condition effects and bars (alignment, RSA), drawn with the
one figure helper of :mod:`analysis.report.plots` (panels, colour bars, the PNG writer).

Examples
--------
>>> table = pd.DataFrame({"reference": ["a", "b"], "kind": "relevance", "spearman": [0.4, 0.1]})
>>> plot_alignment(table, "alignment.png", null=None)                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .plots import finish_figure, pyplot, short_name, small_multiples

__all__ = ["plot_curves", "plot_conditions", "plot_alignment", "plot_rsa_bars"]


def plot_curves(table: pd.DataFrame, x: str, y: str, hue: str, path: str | os.PathLike, *,
                panel: str | None = None, title: str = "", xlabel: str = "", ylabel: str = "",
                band: tuple[str, str] | None = None, reference: float | None = None) -> Path:
    """Mean ``y`` against ``x``, one line per ``hue`` value, one panel per ``panel`` value.

    Parameters
    ----------
    table : DataFrame
        The points.
    x, y, hue : str
        Columns: the horizontal axis, the vertical axis, one line per value.
    path : path-like
        The PNG file.
    panel : str, optional
        Column with one panel per value (sharing the vertical axis).
    title, xlabel, ylabel : str
        The title and axis labels.
    band : (str, str), optional
        Two columns (low, high) drawn as a shaded interval.
    reference : float, optional
        A horizontal dotted line (e.g. chance).

    Returns
    -------
    Path
        ``path``.
    """
    panels = list(dict.fromkeys(table[panel])) if panel else [None]
    fig, axes = pyplot().subplots(1, len(panels), figsize=(4.0 * len(panels) + 0.6, 3.4), squeeze=False,
                                  sharey=True)
    for ax, value in zip(axes[0], panels):
        part = table if value is None else table[table[panel] == value]
        for name, group in part.groupby(hue, sort=False):
            group = group.sort_values(x)
            line = ax.plot(group[x], group[y], marker="o", markersize=3, linewidth=1.4, label=str(name))[0]
            if band:
                ax.fill_between(group[x], group[band[0]], group[band[1]], color=line.get_color(), alpha=0.15,
                                linewidth=0)
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle=":", linewidth=1)
        ax.set_title(str(value) if value is not None else title, fontsize=9)
        ax.set_xlabel(xlabel or x, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel or y, fontsize=8)
    axes[0][-1].legend(fontsize=7, loc="best", frameon=False)
    return finish_figure(fig, path, title if panel else None)


def plot_conditions(table: pd.DataFrame, dvs: Sequence[tuple[str, str]], path: str | os.PathLike, *,
                    conditions: Sequence[str], title: str = "", reference: dict[str, float] | None = None) -> Path:
    """One panel per dependent variable: each participant's values across conditions (grey
    lines) and the mean with its standard error (black).

    Parameters
    ----------
    table : DataFrame
        One row per participant and condition (``participant``, ``condition``, the variables).
    dvs : sequence of (str, str)
        (column, axis label) of each dependent variable.
    path : path-like
        The PNG file.
    conditions : sequence of str
        The conditions, in axis order.
    title : str
        A title over the panels.
    reference : dict, optional
        column -> a horizontal dotted line.

    Returns
    -------
    Path
        ``path``.
    """
    fig, axes = small_multiples(len(dvs), columns=len(dvs), panel=(3.6, 3.4), margin=(0.4, 0.0))
    positions = {c: i for i, c in enumerate(conditions)}
    for ax, (dv, label) in zip(axes, dvs):
        data = table[table["condition"].isin(conditions)]
        for _, person in data.groupby("participant"):
            person = person.sort_values("condition", key=lambda s: s.map(positions))
            ax.plot(person["condition"].map(positions), person[dv], color="0.7", linewidth=0.8, marker=".",
                    markersize=4)
        means = data.groupby("condition")[dv].agg(["mean", "sem"]).reindex(conditions)
        ax.errorbar(range(len(conditions)), means["mean"], yerr=means["sem"].fillna(0), color="black",
                    marker="o", linewidth=1.8, capsize=4)
        if reference and dv in reference:
            ax.axhline(reference[dv], color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(conditions)), conditions, fontsize=8)
        ax.set_xlim(-0.4, len(conditions) - 0.6)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return finish_figure(fig, path, title)


def _bar_axes(table: pd.DataFrame, width: float, per_row: float, base: float, least: float):
    """One panel for horizontal bars, one per row of ``table`` (top to bottom in table order)."""
    table = table.reset_index(drop=True)
    fig, (ax,) = small_multiples(1, columns=1, panel=(width, max(least, per_row * len(table) + base)))
    return fig, ax, np.arange(len(table))[::-1], table


def plot_alignment(table: pd.DataFrame, path: str | os.PathLike, *, value: str = "spearman",
                   null: str | None = "null_q95", ceiling: float | None = None, title: str = "",
                   label: str = "Spearman r with the group CI") -> Path:
    """Horizontal bars: each reference map's agreement with the group CI, the 95th percentile
    of its shift null as a tick, and the human noise ceiling as a dashed line.

    Parameters
    ----------
    table : DataFrame
        One row per reference map (``reference``, ``kind``, ``value``, ``null``).
    path : path-like
        The PNG file.
    value : str
        The column of the agreement.
    null : str, optional
        The column of the null's 95th percentile.
    ceiling : float, optional
        The noise ceiling.
    title, label : str
        The title and the axis label.

    Returns
    -------
    Path
        The bar chart's PNG.
    """
    fig, ax, positions, table = _bar_axes(table, 6.4, 0.32, 1.2, 2.2)
    colours = ["#4c72b0" if kind == "relevance" else "#dd8452" for kind in table.get("kind", ["relevance"] * len(table))]
    ax.barh(positions, table[value], color=colours, height=0.65)
    if null and null in table.columns:
        ax.scatter(table[null], positions, marker="|", s=180, color="black", label="null 95th percentile")
    if ceiling is not None and np.isfinite(ceiling):
        ax.axvline(ceiling, color="#c44e52", linestyle="--", linewidth=1.2, label=f"noise ceiling {ceiling:.2f}")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(positions, [short_name(str(r)) for r in table["reference"]], fontsize=7)
    ax.set_xlabel(label, fontsize=8)
    ax.set_title(title, fontsize=9)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return finish_figure(fig, path)


def plot_rsa_bars(table: pd.DataFrame, path: str | os.PathLike, *, title: str = "",
                  label: str = "RSA (mean over participants)", alpha: float = 0.05,
                  highlight: str | None = None) -> Path:
    """Horizontal bars: each model's mean RSA with the participants, its bootstrap CI, the noise
    ceiling as a grey band (lower to upper bound) and * where the FDR-corrected permutation p < alpha.

    Parameters
    ----------
    table : DataFrame
        One row per model (``model``, ``rsa_subjects``, ``subjects_ci_low``, ``subjects_ci_high``,
        ``ceiling_lower``, ``ceiling_upper``, optionally ``p_fdr``).
    path : path-like
        The PNG file.
    title, label : str
        The title and the axis label.
    alpha : float
        The level below which a bar gets its star.
    highlight : str, optional
        A model drawn in another colour (the simulated observers' known embedding).

    Returns
    -------
    Path
        The PNG of the bars.
    """
    fig, ax, positions, table = _bar_axes(table, 6.8, 0.34, 1.3, 2.4)
    lower, upper_bound = float(table["ceiling_lower"].iloc[0]), float(table["ceiling_upper"].iloc[0])
    if np.isfinite(lower) and np.isfinite(upper_bound):
        ax.axvspan(lower, upper_bound, color="0.82", zorder=0,
                   label=f"noise ceiling {lower:.2f}-{upper_bound:.2f}")
    colours = ["#55a868" if m == highlight else "#4c72b0" for m in table["model"]]
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
