"""The latent sliders tab's handlers, called as plain functions."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.app import state
from vaelab.app.tabs import sliders as sliders_tab

from .conftest import AE2, VAE8


def test_setup_sliders_orders_by_kl_and_marks_inactive_dims():
    out = sliders_tab.setup_sliders(VAE8, sliders_tab.START_TEST, 5, 0)
    md, image, dim, label = out["explanation"], out["decoded"], out["dim"], out["label"]
    traversal, samples, interpolation = out["traversal"], out["samples"], out["interpolation"]
    rows = [out[f"row_{r}"] for r in range(sliders_tab.MAX_SLIDERS // 4)]
    sliders = [out[f"z_{j}"] for j in range(sliders_tab.MAX_SLIDERS)]
    assert len(sliders) == sliders_tab.MAX_SLIDERS
    post = state.load(VAE8).metrics["posterior"]
    assert "ELBO" in md and f"active units {post['active_units']} of 8" in md and "$-\\mathrm{ELBO}" in md  # its numbers
    assert "$$" in sliders_tab.FORMULAS and "KL" in sliders_tab.FORMULAS  # the formula, in its accordion
    order = state.load(VAE8).metrics["posterior"]["dims_by_kl"]
    visible = [s for s in sliders if s["visible"]]
    assert len(visible) == 8 and visible[0]["label"].startswith(f"z{order[0]} ")
    dead = sum(k < 0.01 or v <= 0.01 for k, v in zip(post["kl_per_dim"], post["posterior_mean_variance"]))
    assert 0 < dead < 8 and sum("inactive" in s["label"] for s in visible) == dead
    assert [r["visible"] for r in rows] == [True, True] + [False] * 6
    z = state.load(VAE8).arrays["latent_test"][5]
    assert visible[0]["value"] == pytest.approx(z[order[0]], abs=0.01)
    assert image.dtype == np.uint8 and dim["value"] == order[0] and not label["visible"]
    for strip in (traversal, samples, interpolation):
        assert strip.dtype == np.uint8 and strip.shape[1] > 5 * strip.shape[0]


def test_setup_from_the_prior_starts_at_zero():
    out = sliders_tab.setup_sliders(VAE8, sliders_tab.START_PRIOR, 0, 0)
    assert all(out[f"z_{j}"]["value"] == 0 for j in range(sliders_tab.MAX_SLIDERS))


def test_setup_rejects_a_model_without_sliders():
    import gradio as gr

    with pytest.raises(gr.Error):
        sliders_tab.setup_sliders(AE2, sliders_tab.START_TEST, 0, 0)


def test_decode_sliders_changes_with_the_active_slider_only_a_little_with_an_inactive_one():
    base = sliders_tab.decode_sliders(VAE8, 0, sliders_tab.START_PRIOR, 0, *[0.0] * 8).astype(float)
    moved = sliders_tab.decode_sliders(VAE8, 0, sliders_tab.START_PRIOR, 0, 2.5, *[0.0] * 7).astype(float)  # the most informative dim
    dead = sliders_tab.decode_sliders(VAE8, 0, sliders_tab.START_PRIOR, 0, *[0.0] * 7, 2.5).astype(float)  # the least informative one
    assert np.abs(moved - base).mean() > 5 * np.abs(dead - base).mean()


def test_traverse_sample_interpolate():
    t = sliders_tab.traverse(VAE8, 0, 3, sliders_tab.START_PRIOR, 0, *[0.0] * 8)
    s = sliders_tab.sample_prior(VAE8, 0, 1)
    i = sliders_tab.interpolate(VAE8, 0, 7, 0)
    assert t.shape[1] > t.shape[0] and s.shape[1] > s.shape[0] and i.shape[1] > i.shape[0]
    assert np.array_equal(sliders_tab.sample_prior(VAE8, 0, 1), s)  # seeded


def test_a_non_number_on_a_slider_is_a_clear_error():
    import gradio as gr

    values = [0.0] * sliders_tab.MAX_SLIDERS
    values[1] = float("nan")
    with pytest.raises(gr.Error, match="between -3 and 3"):
        sliders_tab.decode_sliders(VAE8, 0, sliders_tab.START_PRIOR, 0, *values)


def test_traversing_a_dimension_the_model_lacks_is_a_clear_error():
    import gradio as gr

    with pytest.raises(gr.Error, match="no dimension 99"):
        sliders_tab.traverse(VAE8, 0, 99, sliders_tab.START_PRIOR, 0, *([0.0] * sliders_tab.MAX_SLIDERS))


def test_a_slider_is_marked_inactive_exactly_when_its_dimension_carries_no_information():
    """Recomputed from the model on its test images: a dimension is inactive when its mean KL is
    below 0.01 nats *or* its posterior mean barely varies across images (variance ≤ 0.01, Burda et
    al.'s active-unit rule); every other one is labelled with its KL."""
    import torch

    from vaelab.data import load_dataset

    m = state.load(VAE8)
    x = load_dataset("digits").test_x
    with torch.no_grad():
        lat = m.model.encode(x)
    mu, logvar = lat.mean.double(), lat.logvar.double()
    kl = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).mean(0)
    var = mu.var(0)
    for d in range(m.card.latent_dim):
        inactive = bool(kl[d] < 0.01 or var[d] <= 0.01)
        label = sliders_tab.dim_label(m, d)
        assert ("inactive" in label) == inactive, (d, float(kl[d]), float(var[d]), label)
        assert sliders_tab.dim_is_active(m, d) == (not inactive)


def test_the_inactive_rule_needs_both_information_and_variation():
    """Each side of each threshold: KL 0.5 with a varying mean is active; KL below 0.01, or a mean
    that does not vary (≤ 0.01) though the KL is large, is not."""
    from types import SimpleNamespace

    post = {"kl_per_dim": [0.5, 0.005, 0.5, 0.011, 0.009],
            "posterior_mean_variance": [0.3, 0.3, 0.008, 0.02, 0.02]}
    m = SimpleNamespace(metrics={"posterior": post}, card=SimpleNamespace(latent_dim=5))
    assert [sliders_tab.dim_is_active(m, d) for d in range(5)] == [True, False, False, True, False]
