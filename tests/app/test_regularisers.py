"""The Regularisers tab: its pictures and numbers against direct computations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from vaelab import viz
from vaelab.app import catalogue, state
from vaelab.app.tabs import regularisers as rg

CARDS = catalogue.scan_checkpoints()
needs_data = pytest.mark.skipif(state.dataset("mnist") is None,
                                reason="the MNIST test images are not here (set VAELAB_DATA to a folder with MNIST/raw/)")


def names(cards):
    return [c.name for c in cards]


@needs_data
@pytest.mark.parametrize("name", names(rg.denoising_models(CARDS)))
def test_the_corruption_shown_is_the_one_the_model_trains_with(name):
    m = state.load(name)
    noise, level = rg.trained_noise(m)
    assert (noise, level) == (m.model.config.noise, m.model.config.noise_level)
    x = rg._images(m)[5:6]
    model = copy.deepcopy(m.model).train()
    torch.manual_seed(11)
    trained_on = model.corrupt(x)  # what the training loss feeds the encoder
    assert not torch.equal(trained_on, x)
    assert torch.equal(rg.corrupted(x, noise, level, 11), trained_on)
    plain = rg.plain_baseline(CARDS, m.card)
    out = rg.show_denoising(name, plain.name, noise, level, 5, 11)
    with torch.no_grad():
        tiles = [x[0], trained_on[0].clamp(0, 1), m.model.reconstruct(trained_on).clamp(0, 1)[0],
                 state.load(plain.name).model.reconstruct(trained_on).clamp(0, 1)[0]]
    assert np.array_equal(out["den_strip"], viz.to_display(viz.tile(tiles, cols=4, pad=2), pixels=600))


def _finite_difference_norm(encoder, x: torch.Tensor, h: float = 1e-4) -> float:
    enc = copy.deepcopy(encoder).double().eval()
    flat = x.double().flatten()
    cols = []
    with torch.no_grad():
        for i in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[i] = h
            plus = enc((flat + e).view_as(x).double())
            minus = enc((flat - e).view_as(x).double())
            cols.append(((plus - minus) / (2 * h)).flatten())
    return float(torch.stack(cols).norm())


@needs_data
@pytest.mark.parametrize("name", names(rg.contractive_models(CARDS)))
def test_the_jacobian_norm_matches_finite_differences_for_the_model_and_its_plain_twin(name):
    m = state.load(name)
    plain = state.load(rg.plain_baseline(CARDS, m.card).name)
    x = rg._images(m)[3:4]
    for model in (m, plain):
        shown = rg.jacobian_norms(model, x).item()
        assert shown == pytest.approx(_finite_difference_norm(model.model.encoder, x), rel=1e-3)
    # the contractive penalty is what training minimised: its own closed form gives the same number
    assert rg.jacobian_norms(m, x).item() ** 2 == pytest.approx(m.model.contractive_penalty(x).item(), rel=1e-4)


@needs_data
@pytest.mark.parametrize("name", names(rg.sparse_models(CARDS)))
def test_active_units_count_what_the_histogram_shows(name):
    m = state.load(name)
    k = 20 if rg.is_k_sparse(m) else None
    z = rg.codes(m, k)
    active = rg.active_mask(m, z)
    counts, edges = rg.histogram(m, z)
    if rg.is_k_sparse(m):
        assert int(counts[0]) == int((z == 0).sum()) and int(counts[1:].sum()) == int(active.sum())
        assert (active.sum(1) == k).all()
    else:
        edge = int(np.argmin(np.abs(edges - rg.ACTIVE)))
        assert edges[edge] == pytest.approx(rg.ACTIVE)
        assert int(counts[edge:].sum()) == int(active.sum())  # the orange bars hold exactly the active units
    out = rg.show_sparse(name, k or 1, 0)
    mean_active = float(active.float().sum(1).mean())
    assert f"{mean_active:.1f} of {m.model.config.latent_dim} units are active" in out["sp_numbers"]


@needs_data
def test_keeping_fewer_units_rebuilds_worse():
    [name] = [n for n in names(rg.sparse_models(CARDS)) if rg.is_k_sparse(state.load(n))] or [None]
    if name is None:
        pytest.skip("no k-sparse model shipped")
    ks, errs = rg.k_curve(name)
    assert errs[0] > errs[-1] and ks[0] == 1


def test_gaussian_corruption_is_shown_as_training_makes_it_unclipped():
    """Training adds Gaussian noise without clipping to 0…1 (``corrupt``); the models in the panel
    must see the same, not a clipped copy."""
    from vaelab.models.classic import corrupt

    x = torch.rand(2, 1, 8, 8)
    shown = rg.corrupted(x, "gaussian", 0.5, 3)
    assert torch.equal(shown, corrupt(x, "gaussian", 0.5, torch.Generator().manual_seed(3)))
    assert shown.min() < 0 or shown.max() > 1


def _cards(*names_):
    return [c for c in CARDS if c.name in names_]


@pytest.mark.parametrize("regularised, plain", [("contractive-ae", "ae-32-sigmoid"), ("denoising-ae", "ae-256-32"),
                                                ("sparse-ae", "ae-64-sigmoid"), ("k-sparse-ae", "ae-100")])
def test_each_regulariser_is_compared_with_a_plain_twin_that_differs_only_in_the_penalty(regularised, plain):
    """Like with like: the baseline has the same network, code size, code non-linearity and
    training recipe (read from the two checkpoints' own files); the panel says so."""
    shipped = {c.name: c for c in CARDS}
    if regularised not in shipped or plain not in shipped:
        pytest.skip(f"{regularised} or {plain} is not shipped in this checkout")
    like = shipped[regularised]
    chosen = rg.plain_baseline(CARDS, like)
    assert chosen.name == plain
    assert rg.differences(like, chosen) == []
    assert "the only difference is the penalty" in rg.baseline_note(like, chosen)
    ae32 = shipped.get("ae-32")
    if regularised == "contractive-ae" and ae32 is not None:  # the old baseline: a linear code, another recipe
        assert "code activation identity instead of sigmoid" in rg.baseline_note(like, ae32)


@needs_data
def test_the_shipped_sparse_autoencoder_is_sparse_as_the_panel_says():
    """Its units' mean activation is near the target ρ and few units are active per image; the
    panel quotes the mean activation beside ρ."""
    if "sparse-ae" not in names(CARDS):
        pytest.skip("sparse-ae is not shipped in this checkout")
    m = state.load("sparse-ae")
    z = rg.codes(m)
    rho = m.model.config.rho
    assert float(z.mean()) <= 1.5 * rho
    assert float(rg.active_mask(m, z).float().mean()) <= 0.25  # "few code units per image"
    out = rg.show_sparse("sparse-ae", 1, 0)
    assert f"mean activation is **{float(z.mean()):.3f}**, against the target ρ = {rho:g}" in out["sp_numbers"]


@needs_data
def test_k_and_its_chart_show_for_the_k_sparse_model_only():
    sparse = names(rg.sparse_models(CARDS))
    for name in sparse:
        out = rg.show_sparse(name, 10, 0)
        k_sparse = rg.is_k_sparse(state.load(name))
        assert out["sp_k"]["visible"] == k_sparse and out["sp_curve"]["visible"] == k_sparse
        assert bool(out["sp_curve"]["value"]) == k_sparse
