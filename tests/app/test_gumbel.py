"""The Gumbel temperature tab: its numbers against direct computations from the logits."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from vaelab.app import catalogue, state
from vaelab.app.tabs import gumbel as gb

MODELS = [c.name for c in gb.gumbel_models(catalogue.scan_checkpoints())]
pytestmark = pytest.mark.skipif(not MODELS, reason="no Gumbel-softmax model among the checkpoints")


@pytest.mark.parametrize("name", MODELS)
def test_the_soft_samples_entropy_is_the_one_computed_from_the_logits(name):
    m = state.load(name)
    x, _ = gb.input_image(m, 4)
    for log_tau in (-1.0, 0.0, 0.7):
        out = gb.move_tau(name, log_tau, 4, 1)
        tau = 10 ** log_tau
        # independently: the encoder's logits, the same seeded Gumbel noise, softmax over the categories
        with torch.no_grad():
            logits = m.model.posterior_logits(x)
        g = -torch.log(-torch.log(torch.rand((6, *logits.shape[1:]), generator=torch.Generator().manual_seed(1))
                                  .clamp(1e-20, 1)))
        dim = m.model.quantizer.dim
        y = torch.softmax((logits + g[:1]) / tau, dim).movedim(dim, -1).reshape(-1, m.model.quantizer.codebook_size)
        h = float(-(y * torch.log(y.clamp_min(1e-30))).sum(-1).mean())
        shown = float(re.search(r"entropy is \*\*([\d.]+) nats", out["entropy"]).group(1))
        assert shown == pytest.approx(h, abs=2e-3), (log_tau, shown, h)


def test_low_tau_hardens_the_choice_and_high_tau_spreads_it():
    name = MODELS[0]
    low, high = gb.move_tau(name, -1.3, 0, 0), gb.move_tau(name, 1.0, 0, 0)
    h = lambda out: float(re.search(r"entropy is \*\*([\d.]+)", out["entropy"]).group(1))  # noqa: E731
    k = state.load(name).model.quantizer.codebook_size
    assert h(low) < 0.2 < h(high) <= math.log(k) + 1e-6


def test_the_hard_codes_do_not_depend_on_tau_and_the_soft_ones_do():
    name = MODELS[0]
    a, b = gb.move_tau(name, -0.5, 2, 0), gb.move_tau(name, 0.5, 2, 0)
    assert np.array_equal(a["hard"], b["hard"]) and not np.array_equal(a["soft"], b["soft"])


def test_the_gap_is_relaxed_minus_exact():
    c = gb.curves(MODELS[0], 2, 0)
    note = gb.show(MODELS[0], 0.0, 2, 0)["gap_note"]
    relaxed, exact, gap = (float(v) for v in re.search(
        r"objective is ([\d.]+) nats against the exact ([\d.]+): a gap of ([+-][\d.]+)", note).groups())
    assert gap == pytest.approx(relaxed - exact, abs=0.011) and exact == pytest.approx(c["exact"], abs=0.006)


@pytest.mark.parametrize("bad", ["hot", float("nan"), None])
def test_a_tau_that_is_not_a_number_is_a_clear_error(bad):
    import gradio as gr
    with pytest.raises(gr.Error, match="log scale"):
        gb.move_tau(MODELS[0], bad, 0, 0)


def test_moving_tau_answers_only_what_moves():
    quick = gb.move_tau(MODELS[0], 0.3, 0, 0)
    assert set(quick) == set(gb.QUICK)
    settled = gb.settle_tau(MODELS[0], 0.3, 0, 0)
    assert set(settled) == {"formula", "gap_note"} and "\\tau = 2" in settled["formula"]


def _independent_objectives(m, x, seed, tau):
    """Recomputed from the logits: the exact objective with a Gumbel-max sample per draw (the
    argmax of the *perturbed* logits), and the relaxed one at ``tau``; both + KL(q ‖ uniform)."""
    from vaelab.nn.gumbel import categorical_kl_uniform, gumbel_noise

    q = m.model.quantizer
    with torch.no_grad():
        logits = m.model.posterior_logits(x)
        g = gumbel_noise((gb.NOISE_DRAWS, *logits.shape[1:]), torch.Generator().manual_seed(seed))
        k = q.codebook_size
        hard = torch.nn.functional.one_hot((logits + g).argmax(q.dim), k).movedim(-1, q.dim).float()
        xs = x.expand(gb.NOISE_DRAWS, *x.shape[1:])
        kl = float(categorical_kl_uniform(logits, q.dim).sum())
        exact = float(m.model.recon_nll(m.model.decode_params(q.codes_to_z(hard)), xs).mean()) + kl
        soft = torch.softmax((logits + g) / tau, q.dim)
        relaxed = float(m.model.recon_nll(m.model.decode_params(q.codes_to_z(soft)), xs).mean()) + kl
        noiseless = torch.nn.functional.one_hot(logits.argmax(q.dim), k).movedim(-1, q.dim).float()
        argmax_only = float(m.model.recon_nll(m.model.decode_params(q.codes_to_z(noiseless)), x).mean()) + kl
    return exact, relaxed, argmax_only


@pytest.mark.parametrize("name", MODELS)
def test_the_exact_objective_uses_a_gumbel_max_sample_and_the_note_quotes_the_tau_shown(name):
    m = state.load(name)
    x, _ = gb.input_image(m, 3)
    tau = 10 ** 0.13  # not one of the curve's points
    exact, relaxed, argmax_only = _independent_objectives(m, x, 5, tau)
    c = gb.curves(name, 3, 5)
    assert c["exact"] == pytest.approx(exact, rel=1e-5)
    assert abs(argmax_only - exact) > 1e-3  # the noiseless argmax is another number: the test can tell
    note = gb.show(name, 0.13, 3, 5)["gap_note"]
    shown_tau, shown_relaxed = re.search(r"At τ = ([\d.]+) the relaxed objective is ([\d.]+)", note).groups()
    assert float(shown_tau) == pytest.approx(tau, abs=5e-3)  # the τ the live line shows, not the nearest point
    assert float(shown_relaxed) == pytest.approx(relaxed, abs=0.006)


@pytest.mark.parametrize("name", MODELS)
def test_a_model_trained_on_binarized_digits_is_scored_on_binarized_ones(name):
    m = state.load(name)
    if state.test_image(m, 0) is None:
        pytest.skip("the test images are not here")
    x, what = gb.input_image(m, 7)
    if gb.trained_binarized(m):
        from vaelab.evaluate import EvalSettings

        data = state.dataset(m.card.dataset)
        j = int(m.arrays["test_index"][7])
        want = torch.bernoulli(data.test_x, generator=torch.Generator().manual_seed(EvalSettings().seed))[j:j + 1]
        assert torch.equal(x, want) and "binarized" in what
    else:
        assert torch.equal(x, state.test_image(m, 7))


@pytest.mark.parametrize("name", MODELS)
def test_the_gap_note_says_where_the_bias_is_for_a_straight_through_model(name):
    m = state.load(name)
    note = gb.show(name, 0.0, 1, 0)["gap_note"]
    if m.model.quantizer.hard:
        assert "trained straight-through" in note and "Its bias is in the gradient" in note
    else:
        assert "trained on soft samples" in note
