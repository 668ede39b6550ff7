"""Every figure of the analysis: one small-multiples helper and one way to write a PNG.

:func:`small_multiples` lays out a grid of panels, :func:`shared_colorbar` puts one colour
scale beside them and :func:`finish_figure` titles, writes (atomically, as PNG) and closes a
figure. Every ``plot_*`` function below draws one PNG with them and returns its path:
classification images (Z maps over the mean face, significant areas outlined), relevance maps,
matrices, curves, condition effects, alignment bars, RDMs and RSA bars. matplotlib runs
headless (Agg) and is imported only when a figure is drawn.

Examples
--------
>>> fig, axes = small_multiples(5, columns=4, panel=(2.0, 2.0))
>>> len(axes), sum(ax.axison for ax in axes)
(8, 5)
>>> pyplot().close(fig)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from stimuli.contracts.provenance import atomic_write_bytes

from ..rsa import upper

__all__ = ["pyplot", "small_multiples", "shared_colorbar", "finish_figure", "short_name", "plot_ci",
           "plot_ci_grid", "plot_map_grid", "plot_matrix", "plot_rdms"]

# outline colours: pixel test, cluster test
PIXEL_COLOUR = "#ffd92f"
CLUSTER_COLOUR = "#00e5ff"


def pyplot():
    """matplotlib's pyplot on the headless Agg backend (imported on first use).

    Returns
    -------
    module
        ``matplotlib.pyplot``.
    """
    import matplotlib  # noqa: PLC0415 -- heavy; only a figure needs it

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # noqa: PLC0415 -- as above

    return plt


def small_multiples(n: int, *, columns: int, panel: tuple[float, float], margin: tuple[float, float] = (0.0, 0.0)):
    """A grid of panels for ``n`` small multiples; the panels beyond ``n`` are switched off.

    Parameters
    ----------
    n : int
        How many panels are drawn (at least one panel is made).
    columns : int
        Panels per row at most (fewer when ``n`` is smaller).
    panel : (float, float)
        Width and height of one panel in inches.
    margin : (float, float)
        Inches added to the figure's width and height (room for a colour bar and a title).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : list of matplotlib.axes.Axes
        Every panel of the grid in reading order (``axes[:n]`` are the ones to draw on).
    """
    plt = pyplot()
    count = max(n, 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(panel[0] * columns + margin[0], panel[1] * rows + margin[1]),
                             squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.axis("off")
    return fig, axes


def shared_colorbar(fig, image, axes, *, label: str, fraction: float = 0.025, pad: float = 0.02) -> None:
    """One colour bar for ``image`` beside ``axes`` (an Axes or a list of them); nothing when
    ``image`` is None (no panel was drawn).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    image : matplotlib.cm.ScalarMappable or None
        What the panels drew (their shared scale).
    axes : Axes or list of Axes
        The panels the bar belongs to.
    label : str
        The bar's label.
    fraction, pad : float
        matplotlib's colour bar size and distance.
    """
    if image is not None:
        fig.colorbar(image, ax=axes, fraction=fraction, pad=pad, label=label)


def finish_figure(fig, path: str | os.PathLike, title: str | None = None, *, tight: bool = True) -> Path:
    """Title (if any), lay out, write ``fig`` as PNG to ``path`` and close it, even on error.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : path-like
        The PNG file (written atomically; folders are made).
    title : str, optional
        A title over the whole figure.
    tight : bool
        Apply matplotlib's tight layout (off for figures with a colour bar across panels).

    Returns
    -------
    Path
        ``path``.
    """
    try:
        if title:
            fig.suptitle(title, fontsize=10)
        if tight:
            fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        return atomic_write_bytes(path, buffer.getvalue())
    finally:
        pyplot().close(fig)


def short_name(name: str) -> str:
    """A variant name without the architecture prefix, for axis labels.

    Parameters
    ----------
    name : str
        A variant name (or any label).

    Returns
    -------
    str
        The label to show.

    Examples
    --------
    >>> short_name("vgg16-imagenet-gender-s0"), short_name("vgg16-bn-faces-identity-s1")
    ('imagenet-gender-s0', 'bn-faces-identity-s1')
    """
    for prefix in ("vgg16-bn-", "vgg16-"):
        if name.startswith(prefix):
            return ("bn-" if prefix == "vgg16-bn-" else "") + name[len(prefix):]
    return name


def _outline(ax, mask: np.ndarray | None, colour: str, width: float, style: str = "solid") -> None:
    if mask is not None and mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=width, linestyles=style)


def _draw_ci(ax, z: np.ndarray, background: np.ndarray | None, limit: float,
             pixel_sig: np.ndarray | None, cluster_sig: np.ndarray | None):
    if background is not None:
        ax.imshow(background, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    image = ax.imshow(z, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.6 if background is not None else 1.0,
                      interpolation="nearest")
    _outline(ax, cluster_sig, CLUSTER_COLOUR, 1.2)
    _outline(ax, pixel_sig, PIXEL_COLOUR, 1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def plot_ci(z: np.ndarray, background: np.ndarray | None, pixel_sig: np.ndarray | None,
            cluster_sig: np.ndarray | None, title: str, path: str | os.PathLike, *,
            region: np.ndarray | None = None) -> Path:
    """One Z map over ``background`` (grey, [0, 1]) with pixel-test (yellow) and
    cluster-test (cyan) areas outlined, and the search ``region`` dashed; written as PNG.

    Parameters
    ----------
    z : ndarray (H, W)
        The classification image (Z).
    background : ndarray (H, W) or None
        The mean face, in [0, 1].
    pixel_sig, cluster_sig : ndarray (H, W) of bool or None
        The significant pixels of the pixel and cluster tests.
    title : str
        The panel's title.
    path : path-like
        The PNG file.
    region : ndarray (H, W) of bool, optional
        The search region of the tests, outlined dashed in white.

    Returns
    -------
    Path
        The PNG written (``path``).
    """
    fig, (ax,) = small_multiples(1, columns=1, panel=(4.2, 4.2))
    limit = max(3.0, float(np.nanmax(np.abs(z))))
    image = _draw_ci(ax, z, background, limit, pixel_sig, cluster_sig)
    _outline(ax, region, "white", 0.8, "dashed")
    shared_colorbar(fig, image, ax, label="Z", fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    return finish_figure(fig, path, tight=False)


def plot_ci_grid(maps: Sequence[np.ndarray], titles: Sequence[str], background: np.ndarray | None,
                 significant: Sequence[np.ndarray | None], path: str | os.PathLike, *,
                 suptitle: str = "", columns: int = 5) -> Path:
    """Small multiples (e.g. one CI per participant) on a shared Z scale.

    Parameters
    ----------
    maps : sequence of ndarray (H, W)
        The Z maps.
    titles : sequence of str
        One title per map.
    background : ndarray (H, W) or None
        The mean face.
    significant : sequence of ndarray or None
        Each map's significant pixels (outlined), or None.
    path : path-like
        The PNG file.
    suptitle : str
        A title over the grid.
    columns : int
        Panels per row.

    Returns
    -------
    Path
        ``path``.
    """
    fig, axes = small_multiples(len(maps), columns=columns, panel=(2.2, 2.3))
    limit = max([3.0] + [float(np.nanmax(np.abs(m))) for m in maps])
    image = None
    for ax, z, title, sig in zip(axes, maps, titles, significant):
        image = _draw_ci(ax, z, background, limit, sig, None)
        ax.set_title(title, fontsize=8)
    shared_colorbar(fig, image, axes, label="Z", fraction=0.03)
    return finish_figure(fig, path, suptitle, tight=False)


def plot_map_grid(maps: Sequence[np.ndarray], titles: Sequence[str], background: np.ndarray | None,
                  path: str | os.PathLike, *, label: str = "relevance / max |relevance|",
                  suptitle: str = "", columns: int = 4, region: np.ndarray | None = None) -> Path:
    """Small multiples of maps, each scaled by its own largest absolute value, over ``background``.

    Parameters
    ----------
    maps : sequence of ndarray (H, W)
        The maps (one-sided colours when none is negative).
    titles : sequence of str
        One title per map.
    background : ndarray (H, W) or None
        The mean face.
    path : path-like
        The PNG file.
    label : str
        The colour bar's label.
    suptitle : str
        A title over the grid.
    columns : int
        Panels per row.
    region : ndarray (H, W) of bool, optional
        The search region, outlined on every panel.

    Returns
    -------
    Path
        ``path``, written.
    """
    fig, axes = small_multiples(len(maps), columns=columns, panel=(2.5, 2.7), margin=(0.8, 0.4))
    for ax in axes:
        ax.axis("off")
    image = None
    # maps without negative values get a one-sided scale (no wasted half of a diverging one)
    signed = any(float(np.nanmin(m)) < 0 for m in maps)
    cmap, low = ("RdBu_r", -1.0) if signed else ("Reds", 0.0)
    for ax, values, title in zip(axes, maps, titles):
        values = np.asarray(values, dtype=np.float64)
        scale = float(np.nanmax(np.abs(values))) or 1.0
        if background is not None:
            ax.imshow(background, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        image = ax.imshow(values / scale, cmap=cmap, vmin=low, vmax=1, interpolation="nearest",
                          alpha=0.7 if background is not None else 1.0)
        _outline(ax, region, "white", 0.6, "dashed")
        ax.set_title(title, fontsize=8)
    shared_colorbar(fig, image, axes, label=label)
    return finish_figure(fig, path, suptitle, tight=False)


def plot_matrix(matrix: pd.DataFrame, path: str | os.PathLike, *, title: str = "", label: str = "",
                vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
                fmt: str = "{:.2f}", xlabel: str = "", ylabel: str = "") -> Path:
    """A labelled heatmap of a (rows x columns) table, each cell annotated with its value.

    Parameters
    ----------
    matrix : DataFrame
        The values, its index and columns the labels.
    path : path-like
        The PNG file.
    title, label, xlabel, ylabel : str
        The title, the colour bar's label and the axis labels.
    vmin, vmax : float, optional
        The colour scale's ends.
    cmap : str
        The colour map.
    fmt : str
        How a cell's value is written.

    Returns
    -------
    Path
        ``path``.
    """
    values = matrix.to_numpy(dtype=np.float64)
    rows, cols = values.shape
    size = max(3.2, 0.55 * max(rows, cols) + 2.2)
    fig, (ax,) = small_multiples(1, columns=1, panel=(size + 1.0, size))
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
    shared_colorbar(fig, image, ax, label=label, fraction=0.046, pad=0.04)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    return finish_figure(fig, path, tight=False)


def _percentiles(rdm: np.ndarray) -> np.ndarray:
    """An RDM's off-diagonal values as percentiles (0..100; NaN kept): RDMs of different scales compare."""
    out = np.full(rdm.shape, np.nan)
    values = upper(rdm)
    keep = np.isfinite(values)
    ranks = np.full(values.shape, np.nan)
    ranks[keep] = 100 * (stats.rankdata(values[keep]) - 1) / max(keep.sum() - 1, 1)
    rows, cols = np.triu_indices(len(rdm), 1)
    out[rows, cols] = ranks
    out[cols, rows] = ranks
    np.fill_diagonal(out, 0.0)
    return out


def plot_rdms(rdms: Sequence[np.ndarray], titles: Sequence[str], path: str | os.PathLike, *,
              labels: Sequence[str] | None = None, columns: int = 4, suptitle: str = "") -> Path:
    """Small multiples of RDMs, each shown as percentiles of its own dissimilarities.

    Parameters
    ----------
    rdms : sequence of ndarray (N, N)
        The RDMs.
    titles : sequence of str
        One title per RDM.
    path : path-like
        The PNG file.
    labels : sequence of str, optional
        The stimuli (tick labels when there are at most 30).
    columns : int
        Panels per row.
    suptitle : str
        A title over the grid.

    Returns
    -------
    Path
        ``path``.
    """
    fig, axes = small_multiples(len(rdms), columns=columns, panel=(3.0, 3.0), margin=(0.9, 0.4))
    image = None
    for ax, rdm, title in zip(axes, rdms, titles):
        image = ax.imshow(_percentiles(np.asarray(rdm, dtype=np.float64)), cmap="viridis", vmin=0, vmax=100,
                          interpolation="nearest")
        ax.set_title(title, fontsize=8)
        if labels is not None and len(labels) <= 30:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
            ax.set_yticks(range(len(labels)), labels, fontsize=5)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    shared_colorbar(fig, image, axes, label="dissimilarity (percentile)")
    return finish_figure(fig, path, suptitle, tight=False)
