"""Figures of the report beyond the CIs: relevance maps, matrices, curves, condition effects.

Like :mod:`analysis.figures` (whose headless matplotlib set-up and atomic PNG writing it
shares), every function draws one PNG and returns its path.

Examples
--------
>>> plot_matrix(pd.DataFrame([[1, .5], [.5, 1]], index=["a", "b"], columns=["a", "b"]),
...             "m.png", title="similarity")                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import _pyplot, _save, finish_figure

__all__ = ["short_name", "plot_map_grid", "plot_matrix", "plot_curves", "plot_conditions", "plot_alignment"]


def short_name(name: str) -> str:
    """A variant name without the architecture prefix, for axis labels."""
    for prefix in ("vgg16-bn-", "vgg16-"):
        if name.startswith(prefix):
            return ("bn-" if prefix == "vgg16-bn-" else "") + name[len(prefix):]
    return name


def plot_map_grid(maps: Sequence[np.ndarray], titles: Sequence[str], background: np.ndarray | None,
                  path: str | os.PathLike, *, label: str = "relevance / max |relevance|",
                  suptitle: str = "", columns: int = 4, region: np.ndarray | None = None) -> Path:
    """Small multiples of maps, each scaled by its own largest absolute value, over ``background``."""
    plt = _pyplot()
    n = max(len(maps), 1)
    columns = min(columns, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.5 * columns + 0.8, 2.7 * rows + 0.4), squeeze=False)
    image = None
    for ax in axes.ravel():
        ax.axis("off")
    # maps without negative values get a one-sided scale (no wasted half of a diverging one)
    signed = any(float(np.nanmin(m)) < 0 for m in maps)
    cmap, low = ("RdBu_r", -1.0) if signed else ("Reds", 0.0)
    for ax, values, title in zip(axes.ravel(), maps, titles):
        values = np.asarray(values, dtype=np.float64)
        scale = float(np.nanmax(np.abs(values))) or 1.0
        if background is not None:
            ax.imshow(background, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        image = ax.imshow(values / scale, cmap=cmap, vmin=low, vmax=1, interpolation="nearest",
                          alpha=0.7 if background is not None else 1.0)
        if region is not None and region.any() and not region.all():
            ax.contour(region.astype(float), levels=[0.5], colors=["white"], linewidths=0.6, linestyles="dashed")
        ax.set_title(title, fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02, label=label)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_matrix(matrix: pd.DataFrame, path: str | os.PathLike, *, title: str = "", label: str = "",
                vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
                fmt: str = "{:.2f}", xlabel: str = "", ylabel: str = "") -> Path:
    """A labelled heatmap of a (rows x columns) table, each cell annotated with its value."""
    plt = _pyplot()
    values = matrix.to_numpy(dtype=np.float64)
    rows, cols = values.shape
    size = max(3.2, 0.55 * max(rows, cols) + 2.2)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks(range(cols), [short_name(str(c)) for c in matrix.columns], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(rows), [short_name(str(r)) for r in matrix.index], fontsize=7)
    for i in range(rows):
        for j in range(cols):
            if np.isfinite(values[i, j]):
                red, green, blue, _ = image.cmap(image.norm(values[i, j]))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # text readable on the cell colour
                ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_curves(table: pd.DataFrame, x: str, y: str, hue: str, path: str | os.PathLike, *,
                panel: str | None = None, title: str = "", xlabel: str = "", ylabel: str = "",
                band: tuple[str, str] | None = None, reference: float | None = None) -> Path:
    """Mean ``y`` against ``x``, one line per ``hue`` value, one panel per ``panel`` value.

    ``band`` names two columns (low, high) drawn as a shaded interval; ``reference`` a
    horizontal dotted line (e.g. chance).
    """
    plt = _pyplot()
    panels = list(dict.fromkeys(table[panel])) if panel else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels) + 0.6, 3.4), squeeze=False, sharey=True)
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
    lines) and the mean with its standard error (black)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(dvs), figsize=(3.6 * len(dvs) + 0.4, 3.4), squeeze=False)
    positions = {c: i for i, c in enumerate(conditions)}
    for ax, (dv, label) in zip(axes[0], dvs):
        data = table[table["condition"].isin(conditions)]
        for _, person in data.groupby("participant"):
            person = person.sort_values("condition", key=lambda s: s.map(positions))
            ax.plot(person["condition"].map(positions), person[dv], color="0.7", linewidth=0.8, marker=".",
                    markersize=4)
        stats = data.groupby("condition")[dv].agg(["mean", "sem"]).reindex(conditions)
        ax.errorbar(range(len(conditions)), stats["mean"], yerr=stats["sem"].fillna(0), color="black",
                    marker="o", linewidth=1.8, capsize=4)
        if reference and dv in reference:
            ax.axhline(reference[dv], color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(conditions)), conditions, fontsize=8)
        ax.set_xlim(-0.4, len(conditions) - 0.6)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return finish_figure(fig, path, title)


def plot_alignment(table: pd.DataFrame, path: str | os.PathLike, *, value: str = "spearman",
                   null: str | None = "null_q95", ceiling: float | None = None, title: str = "",
                   label: str = "Spearman r with the group CI") -> Path:
    """Horizontal bars: each reference map's agreement with the group CI, the 95th percentile
    of its shift null as a tick, and the human noise ceiling as a dashed line."""
    plt = _pyplot()
    table = table.reset_index(drop=True)
    height = max(2.2, 0.32 * len(table) + 1.2)
    fig, ax = plt.subplots(figsize=(6.4, height))
    positions = np.arange(len(table))[::-1]
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
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return finish_figure(fig, path)
