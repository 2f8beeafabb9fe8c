"""The app's handlers, figure builders and drawing preprocessing, called as plain functions.

Uses the committed digits checkpoints only; MNIST-only checks skip (with the reason) when MNIST
is not on the machine.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from vaelab import explorer as ex
from vaelab.registry import FAMILIES
from vaelab import viz
from vaelab.preprocess import digits_style, is_blank, mnist_style, preprocess, sketch_to_ink

AE2, VAE2, VAE8 = "digits-ae-2d", "digits-vae-2d", "digits-vae-8"


@pytest.fixture(autouse=True, scope="module")
def committed_checkpoints():
    """Handlers read the repository's own checkpoints, whatever VAELAB_CHECKPOINTS says."""
    mp = pytest.MonkeyPatch()
    mp.delenv("VAELAB_CHECKPOINTS", raising=False)
    yield
    mp.undo()


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No MNIST anywhere: VAELAB_DATA points at an empty folder and the dataset cache is cleared."""
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    saved = dict(ex._DATA)
    ex._DATA.clear()
    yield
    ex._DATA.clear()
    ex._DATA.update(saved)


def drawing_of_a_one(size=280) -> dict:
    canvas = np.full((size, size), 255, np.uint8)  # white paper, as the Sketchpad sends it
    canvas[40:240, 120:150] = 0  # a vertical black stroke
    return {"background": canvas, "layers": [canvas], "composite": canvas}


# --- catalogue -----------------------------------------------------------------------------------

def test_scan_finds_the_committed_checkpoints_with_labels():
    cards = {c.name: c for c in ex.scan_checkpoints()}
    assert {AE2, VAE2, VAE8} <= set(cards)
    assert cards[VAE8].has_sliders and not cards[AE2].has_sliders
    assert cards[AE2].family == "classic" and cards[VAE2].family == "variational"
    label = dict((v, k) for k, v in ex.choices(list(cards.values())))[VAE8]
    assert "[variational]" in label and "Variational autoencoder" in label and "8-D" in label
    families = [c.family for c in ex.scan_checkpoints()]
    assert families == sorted(families, key=FAMILIES.index)  # grouped by family


def test_scan_skips_unfinished_and_foreign_folders(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "config.json").write_text('{"variant": "vae", "config": {}}')
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "config.json").write_text('{"kind": "classifier"}')
    assert ex.scan_checkpoints(tmp_path) == []


def test_status_line(no_data):
    assert "not found" in ex.dataset_status() and "digits" in ex.dataset_status()


def test_models_load_once_and_lazily():
    ex.clear_caches()
    assert not ex._MODELS
    m = ex.load(VAE8)
    assert ex.load(VAE8) is m and m.info.variational and m.n_test == len(m.arrays["coords_model"])


# --- latent map ------------------------------------------------------------------------------------

def test_select_map_model_returns_every_output():
    fig, proj, index, md, original, rec, pca, nn, caption, grid, grid_caption = ex.select_map_model(VAE2, None, 3)
    assert isinstance(fig, go.Figure) and fig.layout.height
    titles = [a.text for a in fig.layout.annotations]
    assert "5-NN acc" in titles[0] and "trust" in titles[0] and titles[1].startswith("PCA of the pixels")
    assert proj["value"] == ex.PROJ_LATENT and index["maximum"] == ex.load(VAE2).n_test - 1
    assert "$$" in md and "Live numbers" in md
    for im in (original, rec, pca):
        assert im.dtype == np.uint8 and im.shape[0] >= 200
    assert "Test image #3" in caption and "nearest test images" in caption and nn.dtype == np.uint8
    assert grid["visible"] and grid["value"].shape[0] >= 400 and "Gaussian quantiles" in grid_caption


def test_latent_map_for_a_higher_dimensional_latent_offers_pca_and_umap():
    out = ex.select_map_model(VAE8, ex.PROJ_LATENT, 0)
    assert out[1]["value"] == ex.PROJ_PCA and ex.PROJ_UMAP in out[1]["choices"]
    assert not out[9]["visible"] and "2-D continuous latent" in out[10]  # no manifold for d = 8
    fig_umap = ex.map_figure(VAE8, ex.PROJ_UMAP, 0)
    assert "UMAP" in fig_umap.layout.annotations[0].text


def test_ae_manifold_spans_the_codes():
    grid, caption = ex.manifold(AE2)
    assert grid.dtype == np.uint8 and "percentile" in caption


def test_pick_point_moves_the_star():
    fig, original, rec, pca, nn, caption = ex.pick_point(AE2, ex.PROJ_LATENT, 10)
    stars = [t for t in fig.data if t.name == "picked #10"]
    assert len(stars) == 2  # one per panel
    coords = ex.load(AE2).arrays["coords_model"][10]
    assert np.allclose([stars[0].x[0], stars[0].y[0]], coords)


def test_without_mnist_mnist_only_views_say_why(no_data, monkeypatch):
    """An MNIST checkpoint with no MNIST on disk decodes its cached latent and explains the gaps."""
    m = ex.load(VAE2)
    fake = ex.Loaded(ex.Card(**{**m.card.__dict__, "dataset": "mnist"}), m.model, m.metrics, m.arrays)
    monkeypatch.setitem(ex._MODELS, (str(ex.checkpoints_dir()), "fake-mnist"), fake)
    original, rec, pca, nn, caption = ex.pick("fake-mnist", 4)
    assert "not on this machine" in caption and "decoded from the cached latent" in caption
    assert "images need the dataset" in caption
    assert "PCA reconstruction missing" in caption
    assert rec.std() > 0 and original.std() == 0  # a reconstruction; a placeholder original


def test_pick_with_mnist(mnist, monkeypatch):
    cards = [c for c in ex.scan_checkpoints() if c.dataset == "mnist"]
    if not cards:
        pytest.skip("no evaluated MNIST checkpoint in this checkpoints folder")
    from .conftest import mnist_dir
    monkeypatch.setenv("VAELAB_DATA", str(mnist_dir()))  # where the mnist fixture found it
    ex._DATA.pop("mnist", None)
    original, rec, pca, nn, caption = ex.pick(cards[0].name, 0)
    assert "PCA with" in caption and original.std() > 0


# --- sliders ---------------------------------------------------------------------------------------

def test_setup_sliders_orders_by_kl_and_marks_inactive_dims():
    out = ex.setup_sliders(VAE8, ex.START_TEST, 5, 0)
    md, image, dim, label, start_index, traversal, samples, interpolation = out[:8]
    rows, sliders = out[8:8 + ex.MAX_SLIDERS // 4], out[8 + ex.MAX_SLIDERS // 4:]
    assert len(sliders) == ex.MAX_SLIDERS
    assert "ELBO" in md and "active units 4 of 8" in md and "$$" in md
    order = ex.load(VAE8).metrics["posterior"]["dims_by_kl"]
    visible = [s for s in sliders if s["visible"]]
    assert len(visible) == 8 and visible[0]["label"].startswith(f"z{order[0]} ")
    assert sum("inactive" in s["label"] for s in visible) == 4
    assert [r["visible"] for r in rows] == [True, True] + [False] * 6
    z = ex.load(VAE8).arrays["latent_test"][5]
    assert visible[0]["value"] == pytest.approx(z[order[0]], abs=0.01)
    assert image.dtype == np.uint8 and dim["value"] == order[0] and not label["visible"]
    for strip in (traversal, samples, interpolation):
        assert strip.dtype == np.uint8 and strip.shape[1] > 5 * strip.shape[0]


def test_setup_from_the_prior_starts_at_zero():
    out = ex.setup_sliders(VAE8, ex.START_PRIOR, 0, 0)
    assert all(s["value"] == 0 for s in out[8 + ex.MAX_SLIDERS // 4:])


def test_setup_rejects_a_model_without_sliders():
    import gradio as gr

    with pytest.raises(gr.Error):
        ex.setup_sliders(AE2, ex.START_TEST, 0, 0)


def test_decode_sliders_changes_with_the_active_slider_only_a_little_with_an_inactive_one():
    base = ex.decode_sliders(VAE8, 0, *[0.0] * 8).astype(float)
    moved = ex.decode_sliders(VAE8, 0, 2.5, *[0.0] * 7).astype(float)  # the most informative dim
    dead = ex.decode_sliders(VAE8, 0, *[0.0] * 7, 2.5).astype(float)  # the least informative one
    assert np.abs(moved - base).mean() > 5 * np.abs(dead - base).mean()


def test_traverse_sample_interpolate():
    t = ex.traverse(VAE8, 0, 3, *[0.0] * 8)
    s = ex.sample_prior(VAE8, 0, 1)
    i = ex.interpolate(VAE8, 0, 7, 0)
    assert t.shape[1] > t.shape[0] and s.shape[1] > s.shape[0] and i.shape[1] > i.shape[0]
    assert np.array_equal(ex.sample_prior(VAE8, 0, 1), s)  # seeded


# --- draw ------------------------------------------------------------------------------------------

def test_draw_reconstructs_with_every_planned_model():
    seen, gallery, fig, reading, msg = ex.draw(drawing_of_a_one())
    plan = ex.draw_plan()
    assert seen.dtype == np.uint8 and len(gallery) == len(plan.recon) >= 2
    assert all("MSE" in caption for _, caption in gallery)
    assert any(t.name == "your drawing" for t in fig.data)
    assert "classifier not available" in reading or "Classifier reads" in reading
    assert "Reconstructions by" in msg


@pytest.mark.parametrize("value", [None, {"background": None, "layers": [], "composite": None},
                                   {"composite": np.full((280, 280), 255, np.uint8)}])
def test_empty_or_cleared_drawing_gives_a_message(value):
    seen, gallery, fig, reading, msg = ex.draw(value)
    assert gallery == [] and msg == ex.EMPTY_DRAWING
    assert not any(t.name == "your drawing" for t in fig.data)


def test_classifier_absent_is_said_gracefully(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELAB_CHECKPOINTS", str(tmp_path))
    ex._DATA.pop("classifier", None)
    assert ex.classify(torch.zeros(1, 1, 28, 28)).startswith("classifier not available")


# --- preprocessing ---------------------------------------------------------------------------------

def test_mnist_style_fits_20x20_and_centres_by_mass():
    ink = sketch_to_ink(drawing_of_a_one())
    x = mnist_style(ink)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    img = x[0, 0]
    rows = np.flatnonzero(img.max(1) > 0.05)
    assert rows[-1] - rows[0] + 1 in (20, 21)  # the longer side fills the 20-pixel box
    cy = (img.sum(1) * np.arange(28)).sum() / img.sum()
    cx = (img.sum(0) * np.arange(28)).sum() / img.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_sketch_to_ink_reads_grey_and_rgba():
    grey = np.full((50, 50), 255, np.uint8)
    grey[10:20, 10:20] = 0
    assert sketch_to_ink(grey)[15, 15] == 1 and sketch_to_ink(grey)[0, 0] == 0
    rgba = np.zeros((50, 50, 4), np.uint8)  # black strokes on transparent black
    rgba[10:20, 10:20, 3] = 255
    ink = sketch_to_ink({"composite": rgba})
    assert ink[15, 15] == 1 and ink[0, 0] == 0
    assert is_blank(sketch_to_ink(None)) and is_blank(sketch_to_ink(np.full((9, 9), 255, np.uint8)))


def test_digits_style_is_8x8_in_unit_range():
    x = digits_style(sketch_to_ink(drawing_of_a_one()))
    assert x.shape == (1, 1, 8, 8) and 0.5 <= x.max() <= 1.0 and x.min() == 0.0
    assert preprocess(sketch_to_ink(drawing_of_a_one()), (1, 8, 8)).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError):
        mnist_style(np.zeros((20, 20)))


# --- figure builders -------------------------------------------------------------------------------

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
