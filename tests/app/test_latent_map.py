"""The latent map tab's handlers, called as plain functions.

MNIST-only checks skip (with the reason) when MNIST is not on the machine.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from vaelab.app import catalogue, state
from vaelab.app.tabs import latent_map

from .conftest import AE2, VAE2, VAE8


def test_select_map_model_returns_every_output():
    fig, proj, index, md, original, rec, pca, nn, caption, grid, grid_caption = latent_map.select_map_model(VAE2, None, 3)
    assert isinstance(fig, go.Figure) and fig.layout.height
    titles = [a.text for a in fig.layout.annotations]
    assert "5-NN acc" in titles[0] and "trust" in titles[0] and titles[1].startswith("PCA of the pixels")
    assert proj["value"] == latent_map.PROJ_LATENT and index["maximum"] == state.load(VAE2).n_test - 1
    assert "$$" in md and "Live numbers" in md
    for im in (original, rec, pca):
        assert im.dtype == np.uint8 and im.shape[0] >= 200
    assert "Test image #3" in caption and "nearest test images" in caption and nn.dtype == np.uint8
    assert grid["visible"] and grid["value"].shape[0] >= 400 and "Gaussian quantiles" in grid_caption


def test_latent_map_for_a_higher_dimensional_latent_offers_pca_and_umap():
    out = latent_map.select_map_model(VAE8, latent_map.PROJ_LATENT, 0)
    assert out[1]["value"] == latent_map.PROJ_PCA and latent_map.PROJ_UMAP in out[1]["info"]
    assert "choices" not in out[1]  # the radio keeps all three (see select_map_model)
    assert not out[9]["visible"] and "2-D continuous latent" in out[10]  # no manifold for d = 8
    fig_umap = latent_map.map_figure(VAE8, latent_map.PROJ_UMAP, 0)
    assert "UMAP" in fig_umap.layout.annotations[0].text


def test_ae_manifold_spans_the_codes():
    grid, caption = latent_map.manifold(AE2)
    assert grid.dtype == np.uint8 and "percentile" in caption


def test_pick_point_moves_the_star():
    fig, original, rec, pca, nn, caption = latent_map.pick_point(AE2, latent_map.PROJ_LATENT, 10)
    stars = [t for t in fig.data if t.name == "picked #10"]
    assert len(stars) == 2  # one per panel
    coords = state.load(AE2).arrays["coords_model"][10]
    assert np.allclose([stars[0].x[0], stars[0].y[0]], coords)


def test_without_mnist_mnist_only_views_say_why(no_data, monkeypatch):
    """An MNIST checkpoint with no MNIST on disk decodes its cached latent and explains the gaps."""
    m = state.load(VAE2)
    fake = state.Loaded(catalogue.Card(**{**m.card.__dict__, "dataset": "mnist"}), m.model, m.metrics, m.arrays)
    monkeypatch.setitem(state._MODELS, (str(state.checkpoints_dir()), "fake-mnist"), fake)
    original, rec, pca, nn, caption = latent_map.pick("fake-mnist", 4)
    assert "not on this machine" in caption and "decoded from the cached latent" in caption
    assert "images need the dataset" in caption
    assert "PCA reconstruction missing" in caption
    assert rec.std() > 0 and original.std() == 0  # a reconstruction; a placeholder original


def test_pick_with_mnist(mnist, monkeypatch):
    cards = [c for c in catalogue.scan_checkpoints() if c.dataset == "mnist"]
    if not cards:
        pytest.skip("no evaluated MNIST checkpoint in this checkpoints folder")
    from ..conftest import mnist_dir
    monkeypatch.setenv("VAELAB_DATA", str(mnist_dir()))  # where the mnist fixture found it
    state._DATA.pop("mnist", None)
    original, rec, pca, nn, caption = latent_map.pick(cards[0].name, 0)
    assert "PCA with" in caption and original.std() > 0


def test_pca_beside_a_discrete_model_has_one_component_per_code_position():
    m = state.load("vq-vae")
    d, why = latent_map.pca_size(m)
    assert d == 49 and "code position" in why  # a 7×7 code map, not 3,136 (or 784: an exact copy)
    continuous = state.load(VAE8)
    assert latent_map.pca_size(continuous)[0] == 8


def test_neighbours_say_which_space_they_were_found_in():
    assert latent_map.neighbour_space(state.load(VAE8))[1] == "in the latent"
    assert latent_map.neighbour_space(state.load("vq-vae"))[1] == "in the 2-D PCA view of the latent"
    *_, caption = latent_map.pick("vq-vae", 0)
    assert "nearest test images in the 2-D PCA view of the latent" in caption


def test_a_discrete_latent_is_described_as_codes_not_as_dimensions():
    md = latent_map.latent_map_markdown(state.load("vq-vae"))
    assert "7×7 map of codes, each from a 512-entry codebook" in md and "64-D" not in md
    assert "\\{1,\\dots,512\\}^{7×7}" in md  # z's set in the formula, not R^64
    assert "20 categorical variables of 10 categories" in latent_map.latent_words(state.load("gumbel-vae"))[0]
    assert latent_map.latent_words(state.load(VAE8))[0] == "an 8-D latent"
    assert latent_map.latent_words(state.load("vae-16"))[0] == "a 16-D latent"
