"""The figure builders the app draws with: arrays in, plotly figures or numpy images out."""

from __future__ import annotations

import numpy as np
import torch

from vaelab import viz


def test_figures_have_explicit_heights():
    c = np.random.default_rng(0).normal(size=(50, 2))
    y = np.arange(50) % 10
    assert viz.latent_map_figure(c, c, y, ("a", "b"), picked=3).layout.height == viz.MAP_HEIGHT
    assert viz.drawing_map_figure(c, y, c[0], "t").layout.height
    assert viz.empty_figure("nothing").layout.height


def test_display_subset_keeps_the_picked_point():
    idx = viz.display_subset(10_000, keep=9_999)
    assert len(idx) == viz.MAX_POINTS + 1 and idx[-1] == 9_999


def test_image_helpers():
    assert viz.to_display(torch.ones(1, 1, 28, 28)).shape == (224, 224)
    assert viz.to_display(np.zeros((8, 8))).shape == (224, 224)
    assert viz.strip(np.zeros((9, 8, 8))).shape[1] > 8 * 9
    assert viz.grid_image(np.zeros((225, 1, 8, 8)), cols=15).shape[0] >= 400


def test_map_axes_have_titles_and_outliers_do_not_squash_the_bulk():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(2000, 2))
    coords[:10] *= 400  # a few far-off codes, as ae-2d has
    fig = viz.latent_map_figure(coords, rng.normal(size=(2000, 2)), np.arange(2000) % 10, ("a", "b"),
                                picked=0, axis_titles=(("z₁", "z₂"), ("PC 1", "PC 2")))
    layout = fig.to_plotly_json()["layout"]  # what the browser receives
    assert layout["xaxis"]["title"]["text"] == "z₁" and layout["yaxis2"]["title"]["text"] == "PC 2"
    lo, hi = layout["xaxis"]["range"]
    assert -5 < lo < -2 and 2 < hi < 5  # the 1st–99th percentile plus a margin, not ±400
    assert "range" not in layout["xaxis2"]  # no outliers there: plotly's own autorange
