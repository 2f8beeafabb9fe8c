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


def _missing(font, text: str) -> list[str]:
    """Characters of ``text`` the font draws as its missing-glyph box (the same as a code point no
    font has)."""
    box = bytes(font.getmask("\U0010fffd"))
    return [ch for ch in set(text) if not ch.isspace() and bytes(font.getmask(ch)) == box]


def test_the_font_pictures_are_written_in_has_every_glyph_the_app_writes():
    from PIL import ImageFont

    from vaelab import viz

    written = "β = 0.5 τ → σ ± ∝ × · – — … ‖∂h/∂x‖ μ π ≈ ≤ ≥ KL 0123456789 The encoder's outputs (a–z, A–Z)"
    assert _missing(viz.font(14), written) == []
    assert "β" in _missing(ImageFont.load_default(size=14), "β")  # Pillow's own font has no Greek: the test can tell
