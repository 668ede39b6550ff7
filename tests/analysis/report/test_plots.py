"""The one figure helper: a grid of panels, one colour bar, one PNG writer that closes the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from analysis.report.charts import plot_alignment, plot_conditions
from analysis.report.plots import (
    finish_figure,
    plot_ci_grid,
    plot_map_grid,
    plot_rdms,
    pyplot,
    shared_colorbar,
    small_multiples,
)


def test_small_multiples_switches_off_the_panels_it_does_not_need():
    fig, axes = small_multiples(5, columns=4, panel=(2.0, 1.5), margin=(0.5, 0.0))
    try:
        assert len(axes) == 8 and [ax.axison for ax in axes] == [True] * 5 + [False] * 3
        assert tuple(fig.get_size_inches()) == (8.5, 3.0)
    finally:
        pyplot().close(fig)
    fig, axes = small_multiples(2, columns=5, panel=(1.0, 1.0))  # fewer maps than columns: one row of 2
    assert len(axes) == 2 and tuple(fig.get_size_inches()) == (2.0, 1.0)
    pyplot().close(fig)


def test_finish_figure_writes_a_png_and_closes_the_figure(tmp_path):
    fig, axes = small_multiples(2, columns=2, panel=(2.0, 2.0))
    image = axes[0].imshow(np.eye(4))
    shared_colorbar(fig, image, axes, label="value")
    shared_colorbar(fig, None, axes, label="nothing drawn: no bar")
    assert len(fig.axes) == 3  # two panels and one bar
    path = finish_figure(fig, tmp_path / "sub" / "grid.png", "a title", tight=False)
    assert path == tmp_path / "sub" / "grid.png" and Image.open(path).format == "PNG"
    assert not pyplot().fignum_exists(fig.number)


def test_every_grid_figure_is_drawn_through_the_helper(tmp_path):
    maps = [np.random.default_rng(i).normal(size=(12, 10)) for i in range(3)]
    before = set(pyplot().get_fignums())
    paths = [plot_ci_grid(maps, ["a", "b", "c"], None, [m > 1 for m in maps], tmp_path / "ci.png", suptitle="CIs"),
             plot_map_grid(maps, ["a", "b", "c"], np.zeros((12, 10)), tmp_path / "maps.png",
                           region=np.ones((12, 10), bool)),
             plot_rdms([np.abs(m[:5, :5] + m[:5, :5].T) for m in maps], ["a", "b", "c"], tmp_path / "rdm.png",
                       labels=list("vwxyz"))]
    table = pd.DataFrame({"participant": ["1", "1", "2", "2"], "condition": ["random", "guided"] * 2,
                          "accuracy": [0.7, 0.8, 0.75, 0.8]})
    paths.append(plot_conditions(table, [("accuracy", "accuracy")], tmp_path / "c.png",
                                 conditions=["random", "guided"]))
    paths.append(plot_alignment(pd.DataFrame({"reference": ["x", "y"], "spearman": [0.3, -0.1],
                                              "null_q95": [0.1, 0.1]}), tmp_path / "a.png", ceiling=0.5))
    for path in paths:
        assert Image.open(path).size[0] > 100
    assert set(pyplot().get_fignums()) == before  # every figure closed
