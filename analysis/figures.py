"""Figures of classification images: Z maps over the mean face, significant areas outlined.

matplotlib runs headless (Agg) and is imported only when a figure is drawn.

Examples
--------
>>> plot_ci(z, mean_face, pixel_sig, cluster_sig, "gender, random", "ci.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stimuli.contracts.provenance import atomic_write_bytes

__all__ = ["plot_ci", "plot_ci_grid"]

# outline colours: pixel test, cluster test
PIXEL_COLOUR = "#ffd92f"
CLUSTER_COLOUR = "#00e5ff"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, z: np.ndarray, background: np.ndarray | None, limit: float,
          pixel_sig: np.ndarray | None, cluster_sig: np.ndarray | None):
    if background is not None:
        ax.imshow(background, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    image = ax.imshow(z, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.6 if background is not None else 1.0,
                      interpolation="nearest")
    for mask, colour in ((cluster_sig, CLUSTER_COLOUR), (pixel_sig, PIXEL_COLOUR)):
        if mask is not None and mask.any() and not mask.all():
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def _save(fig, path: str | os.PathLike) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def finish_figure(fig, path: str | os.PathLike, title: str | None = None) -> Path:
    """Title (if any), lay out, write ``fig`` as PNG to ``path`` and close it, even on error."""
    try:
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        _pyplot().close(fig)


def plot_ci(z: np.ndarray, background: np.ndarray | None, pixel_sig: np.ndarray | None,
            cluster_sig: np.ndarray | None, title: str, path: str | os.PathLike, *,
            region: np.ndarray | None = None) -> Path:
    """One Z map over ``background`` (grey, [0, 1]) with pixel-test (yellow) and
    cluster-test (cyan) areas outlined, and the search ``region`` dashed; written as PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    limit = max(3.0, float(np.nanmax(np.abs(z))))
    image = _draw(ax, z, background, limit, pixel_sig, cluster_sig)
    if region is not None and region.any() and not region.all():
        ax.contour(region.astype(float), levels=[0.5], colors=["white"], linewidths=0.8, linestyles="dashed")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Z")
    ax.set_title(title, fontsize=9)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_ci_grid(maps: Sequence[np.ndarray], titles: Sequence[str], background: np.ndarray | None,
                 significant: Sequence[np.ndarray | None], path: str | os.PathLike, *,
                 suptitle: str = "", columns: int = 5) -> Path:
    """Small multiples (e.g. one CI per participant) on a shared Z scale."""
    plt = _pyplot()
    n = max(len(maps), 1)
    columns = min(columns, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.3 * rows), squeeze=False)
    limit = max([3.0] + [float(np.nanmax(np.abs(m))) for m in maps])
    for ax in axes.ravel()[len(maps):]:
        ax.axis("off")
    image = None
    for ax, z, title, sig in zip(axes.ravel(), maps, titles, significant):
        image = _draw(ax, z, background, limit, sig, None)
        ax.set_title(title, fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label="Z")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
