"""The β comparison tab: its series, the teaching numbers it plots, and its handlers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vaelab.app import catalogue, state
from vaelab.app.tabs import beta

NAMES = beta.series_names(catalogue.scan_checkpoints())
pytestmark = pytest.mark.skipif(len(NAMES) < 3, reason="no beta series among the checkpoints")


def test_the_series_differs_only_in_beta_and_is_ordered():
    cards = {c.name: c for c in catalogue.scan_checkpoints()}
    betas = [cards[n].beta for n in NAMES]
    assert betas == sorted(betas) and len(set(betas)) == len(betas) and betas[0] <= 0.5 and betas[-1] >= 8
    assert len({cards[n].design for n in NAMES}) == 1


def test_the_plane_plots_each_models_evaluated_rate_and_distortion():
    """The points of the rate-distortion SVG are the evaluated KL and reconstruction terms."""
    svg = beta.rd_svg(NAMES, NAMES[1])
    xs = [float(v) for v in re.findall(r'<circle cx="([\d.]+)"', svg)]
    ys = [float(v) for v in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    rates = [state.load(n).metrics["loss"]["kl"] for n in NAMES]
    dists = [state.load(n).metrics["loss"]["recon"] for n in NAMES]
    # screen positions are an affine map of (rate, distortion): fit it, and every point sits on it
    (ax, bx), (ay, by) = np.polyfit(rates, xs, 1), np.polyfit(dists, ys, 1)
    assert ax > 0 and ay < 0  # rate to the right, distortion upwards
    assert np.abs(np.polyval((ax, bx), rates) - xs).max() < 0.2  # the SVG rounds to 0.1 px
    assert np.abs(np.polyval((ay, by), dists) - ys).max() < 0.2
    radii = [int(v) for v in re.findall(r'<circle [^>]*r="(\d+)"', svg)]
    assert radii.count(8) == 1 and radii.index(8) == 1  # the selected one is ringed


def test_the_table_adds_up_each_models_objective():
    table = beta.elbo_table(NAMES, NAMES[0])
    for n, line in zip(NAMES, table.splitlines()[2:]):
        cells = [c.strip("* ") for c in line.strip("|").split("|")]
        b, d, r, br, obj, elbo = (float(c) for c in cells[:6])
        m = state.load(n)
        assert b == m.card.beta and d == pytest.approx(m.metrics["loss"]["recon"], abs=0.006)
        assert r == pytest.approx(m.metrics["loss"]["kl"], abs=0.006)
        assert obj == pytest.approx(d + b * r, abs=0.006 * (1 + b)) and elbo == pytest.approx(d + r, abs=0.02)  # cells are rounded to 0.01


def test_collapse_shows_as_struck_through_dimensions():
    html = beta.kl_heatmap(NAMES, NAMES[-1])
    rows = html.split("<tr")[2:]
    from vaelab.metrics import KL_INACTIVE_NATS
    for n, row in zip(NAMES, rows):
        kl = state.load(n).metrics["posterior"]["kl_per_dim"]
        assert row.count("<s>") == sum(v < KL_INACTIVE_NATS for v in kl)


def test_selecting_beta_switches_in_the_page_between_blocks_built_for_every_beta():
    import base64
    import io
    import re

    from PIL import Image

    rd = beta.rd_views(NAMES)
    blocks = re.findall(r'<div data-beta="([^"]+)">(.*?)</div>', rd, flags=re.S)
    assert [n for n, _ in blocks] == NAMES
    for n, svg in blocks:  # each block rings its own β's point
        assert svg.count('r="8"') == 1 and f"font-weight=\"700\">β={state.load(n).card.beta:g}<" in svg
    trav = beta.traversal_views(tuple(NAMES), "2nd", 0)
    images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(src))))
              for src in re.findall(r'src="data:image/png;base64,([^"]+)"', trav)]
    assert len(images) == len(NAMES)
    grid = beta.traversals(tuple(NAMES), 1, 0)
    for row, img in enumerate(images):  # the same grid, with that β's row framed
        assert np.array_equal(img, beta._mark_row(grid, row, len(NAMES), beta.STEPS))
    assert not np.array_equal(images[0], images[2])
    out = beta.select_beta(NAMES, NAMES[2], "2nd", 0)
    assert set(out) == {"table", "kl", "numbers"}  # the server writes only the chosen β's numbers
    assert f"β = {state.load(NAMES[2]).card.beta:g}" in out["numbers"]


def test_show_series_builds_every_panel():
    out = beta.show_series(NAMES, NAMES[1], "1st", 3, 0)
    rows = len(NAMES) + (0 if out["recons_note"] else 1)
    assert out["recons"].shape[0] >= rows * 28 and out["samples"].shape[0] >= len(NAMES) * 28
    assert out["maps"].shape[1] >= len(NAMES) * 150 and out["maps"].ndim == 3


def test_a_series_of_fewer_than_three_is_a_clear_error():
    import gradio as gr
    with pytest.raises(gr.Error, match="β series"):
        beta.select_beta(NAMES[:1], NAMES[0], "1st", 0)
