"""The latent map tab's handlers, called as plain functions.

MNIST-only checks skip (with the reason) when MNIST is not on the machine.
"""

from __future__ import annotations

import numpy as np
import json

import pytest

from vaelab.app import catalogue, state
from vaelab.app.tabs import latent_map

from .conftest import AE2, VAE2, VAE8


def test_select_map_model_returns_every_output():
    out = latent_map.select_map_model(VAE2, None, 3)
    v = json.loads(out["map"])
    assert v["model"] == VAE2 and v["view"] == "latent" and v["pick"] == 3
    assert out["projection"]["value"] == latent_map.PROJ_LATENT
    assert out["index"]["maximum"] == state.load(VAE2).n_test - 1
    assert "$$" in out["formulas"] and "test set" in out["numbers"] and VAE2 in out["about"]
    for key in ("original", "model_recon", "pca_recon"):
        assert out[key].dtype == np.uint8 and out[key].shape[0] >= 200
    assert "Test image #3" in out["caption"] and "nearest test images" in out["caption"]
    assert out["neighbours"].dtype == np.uint8
    assert out["grid"]["visible"] and out["grid"]["value"].shape[0] >= 400
    assert "Gaussian quantiles" in out["grid_caption"]


def test_a_2d_vae_pick_carries_its_posterior_ellipse():
    v = json.loads(latent_map.select_map_model(VAE2, None, 3)["map"])
    m = state.load(VAE2)
    lat = m.model.encode(state.test_image(m, 3))
    assert np.allclose(v["ellipse"]["mu"], lat.mean[0].numpy(), atol=1e-5)
    assert np.allclose(v["ellipse"]["sigma"], lat.logvar[0].mul(0.5).exp().numpy(), atol=1e-5)
    assert json.loads(latent_map.select_map_model(AE2, None, 3)["map"])["ellipse"] is None  # no posterior


def test_latent_map_for_a_higher_dimensional_latent_defaults_to_umap():
    out = latent_map.select_map_model(VAE8, latent_map.PROJ_LATENT, 0)
    # the 2-D view of a 2-D model does not apply: UMAP (cached) is the default for d > 2
    assert out["projection"]["value"] == latent_map.PROJ_UMAP and latent_map.PROJ_PCA in out["about"]
    assert "choices" not in out["projection"]  # the radio keeps all three (see select_map_model)
    assert not out["grid"]["visible"] and "2-D continuous latent" in out["grid_caption"]
    assert json.loads(out["map"])["view"] == "umap"
    # a view the user chose is kept when it applies
    assert latent_map.select_map_model(VAE8, latent_map.PROJ_PCA, 0)["projection"]["value"] == latent_map.PROJ_PCA


def test_a_stale_view_from_the_previous_model_is_not_an_error():
    """Switching 2-D -> 8-D -> discrete sends the old view along: each gets a view that applies."""
    for name, stale in ((VAE8, latent_map.PROJ_LATENT), (VAE2, latent_map.PROJ_UMAP), ("vq-vae", latent_map.PROJ_UMAP),
                        (VAE2, latent_map.PROJ_PCA)):
        out = latent_map.select_map_model(name, stale, 0)
        assert out["projection"]["value"] in latent_map.projection_choices(state.load(name))


def test_pick_point_moves_the_marker_only():
    out = latent_map.pick_point(AE2, latent_map.PROJ_LATENT, 10)
    v = json.loads(out["map"])
    assert v["pick"] == 10 and v["model"] == AE2 and "Test image #10" in out["caption"]
    assert set(out) == {"map", "original", "model_recon", "pca_recon", "neighbours", "caption"}


def test_a_click_in_the_map_picks_that_image():
    value = json.dumps({"model": VAE2, "view": "latent", "pick": 42})
    out = latent_map.map_clicked(value, VAE2, latent_map.PROJ_LATENT)
    assert out["index"] == 42 and "Test image #42" in out["caption"] and json.loads(out["map"])["pick"] == 42
    # a click that still names the previous model, or a value that is not JSON, changes nothing
    assert latent_map.map_clicked(value, AE2, latent_map.PROJ_LATENT) == {}
    assert latent_map.map_clicked("not json", VAE2, latent_map.PROJ_LATENT) == {}
    assert latent_map.map_clicked(json.dumps({"model": VAE2, "pick": 10**9}), VAE2, None)["index"] == \
        state.load(VAE2).n_test - 1


def test_a_picked_index_that_is_not_a_number_is_a_clear_error():
    import gradio as gr
    with pytest.raises(gr.Error, match="picked by its number"):
        latent_map.pick_point(AE2, latent_map.PROJ_LATENT, "seven")


def test_ae_manifold_spans_the_codes():
    grid, caption = latent_map.manifold(AE2)
    assert grid.dtype == np.uint8 and "percentile" in caption


def test_without_mnist_mnist_only_views_say_why(no_data, monkeypatch):
    """An MNIST checkpoint with no MNIST on disk decodes its cached latent and explains the gaps."""
    m = state.load(VAE2)
    fake = state.Loaded(catalogue.Card(**{**m.card.__dict__, "dataset": "mnist"}), m.model, m.metrics, m.arrays)
    monkeypatch.setitem(state._MODELS, (str(state.checkpoints_dir()), "fake-mnist"), fake)
    out = latent_map.pick("fake-mnist", 4)
    original, rec, caption = out["original"], out["model_recon"], out["caption"]
    assert "not on this machine" in caption and "decoded from the cached latent" in caption
    assert "images need the dataset" in caption
    assert "PCA reconstruction missing" in caption
    assert rec.std() > 0  # a reconstruction
    assert original.std() > 0 and (original == 60).mean() > 0.8  # a placeholder panel with words on it


def test_pick_with_mnist(mnist, monkeypatch):
    cards = [c for c in catalogue.scan_checkpoints() if c.dataset == "mnist"]
    if not cards:
        pytest.skip("no evaluated MNIST checkpoint in this checkpoints folder")
    from ..conftest import mnist_dir
    monkeypatch.setenv("VAELAB_DATA", str(mnist_dir()))  # where the mnist fixture found it
    state._DATA.pop("mnist", None)
    out = latent_map.pick(cards[0].name, 0)
    assert "PCA with" in out["caption"] and out["original"].std() > 0


def test_pca_beside_a_discrete_model_has_one_component_per_code_position():
    m = state.load("vq-vae")
    d, why = latent_map.pca_size(m)
    assert d == 49 and "code position" in why  # a 7×7 code map, not 3,136 (or 784: an exact copy)
    continuous = state.load(VAE8)
    assert latent_map.pca_size(continuous)[0] == 8


def test_neighbours_say_which_space_they_were_found_in():
    assert latent_map.neighbour_space(state.load(VAE8))[1] == "in the latent"
    assert latent_map.neighbour_space(state.load("vq-vae"))[1] == "in the 2-D PCA view of the latent"
    assert "nearest test images in the 2-D PCA view of the latent" in latent_map.pick("vq-vae", 0)["caption"]


def test_a_discrete_latent_is_described_as_codes_not_as_dimensions():
    md = latent_map.latent_map_markdown(state.load("vq-vae"))
    assert "7×7 map of codes, each from a 512-entry codebook" in md and "64-D" not in md
    assert "\\{1,\\dots,512\\}^{7×7}" in md  # z's set in the formula, not R^64
    assert "20 categorical variables of 10 categories" in latent_map.latent_words(state.load("gumbel-vae"))[0]
    assert latent_map.latent_words(state.load(VAE8))[0] == "an 8-D latent"
    assert latent_map.latent_words(state.load("vae-16"))[0] == "a 16-D latent"


def test_the_map_is_answered_before_the_images():
    """A switch or a typed pick answers the map first (small: no images), then the rest."""
    first = latent_map.show_map(VAE2, latent_map.PROJ_LATENT, 5)
    assert set(first) == {"map", "projection", "index", "about", "numbers"}
    assert len(first["map"]) < 1000
    assert set(latent_map.pick_marker(VAE2, latent_map.PROJ_LATENT, 5)) == {"map"}
    rest = latent_map.show_details(VAE2, latent_map.PROJ_LATENT, 5)
    assert {"original", "model_recon", "caption", "grid", "formulas"} <= set(rest) and not set(rest) & set(first)
