"""The mathematics of the Gumbel-softmax bottleneck (Jang et al. 2016; Maddison et al. 2016)
and of the Gumbel models' temperature schedule."""

import math

import pytest
import torch
from scipy import stats

import vaelab
from vaelab import schedules
from vaelab.nn.gumbel import (GumbelQuantizer, categorical_kl_uniform, categorical_sample,
                              code_perplexity, gumbel_softmax)

LOGITS = torch.tensor([1.5, 0.2, -0.7, 0.9, -2.0])  # K = 5, unnormalised


@pytest.mark.parametrize("hard", [False, True])
def test_argmax_frequencies_match_softmax_probabilities(hard):
    # Gumbel-max: argmax(log π + g) ~ Categorical(π), whatever τ
    n = 20000
    g = torch.Generator().manual_seed(0)
    y = gumbel_softmax(LOGITS.expand(n, -1), tau=0.7, hard=hard, generator=g)
    counts = torch.bincount(y.argmax(-1), minlength=5).double()
    expected = torch.softmax(LOGITS.double(), 0) * n
    _, p = stats.chisquare(counts.numpy(), expected.numpy())
    assert p > 1e-3, (counts, expected)


def test_exact_categorical_sample_frequencies():
    n = 20000
    g = torch.Generator().manual_seed(1)
    y = categorical_sample(LOGITS.expand(n, -1), generator=g)
    assert torch.equal(y.sum(-1), torch.ones(n))
    counts = y.sum(0).double()
    _, p = stats.chisquare(counts.numpy(), (torch.softmax(LOGITS.double(), 0) * n).numpy())
    assert p > 1e-3


def test_hard_samples_are_exactly_one_hot_and_carry_soft_gradients():
    logits = torch.randn(64, 7, 10, generator=torch.Generator().manual_seed(0), requires_grad=True)
    weights = torch.randn(64, 7, 10, generator=torch.Generator().manual_seed(1))

    hard = gumbel_softmax(logits, 0.5, hard=True, generator=torch.Generator().manual_seed(2))
    soft = gumbel_softmax(logits, 0.5, hard=False, generator=torch.Generator().manual_seed(2))
    # exactly one-hot: every entry is 0 or 1 and each row sums to exactly 1
    assert torch.all((hard == 0) | (hard == 1))
    assert torch.equal(hard.sum(-1), torch.ones(64, 7))
    assert torch.equal(hard.argmax(-1), soft.argmax(-1))  # the same noise gives the same sample

    (g_hard,) = torch.autograd.grad((weights * hard).sum(), logits)
    (g_soft,) = torch.autograd.grad((weights * soft).sum(), logits)
    assert g_hard.abs().sum() > 0
    assert torch.allclose(g_hard, g_soft)


def test_categories_can_sit_on_any_dimension():
    logits = torch.randn(4, 6, 3, 3)  # (B, K, h, w), as in the grid dVAE
    y = gumbel_softmax(logits, 0.5, hard=True, dim=1, generator=torch.Generator().manual_seed(0))
    assert y.shape == logits.shape and torch.equal(y.sum(1), torch.ones(4, 3, 3))


def test_soft_samples_approach_one_hot_as_temperature_falls():
    logits = LOGITS.expand(5000, -1)
    gaps = []
    for tau in (2.0, 1.0, 0.3, 0.1, 0.01):
        y = gumbel_softmax(logits, tau, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(y.sum(-1), torch.ones(5000), atol=1e-5)
        gaps.append(float((1 - y.max(-1).values).mean()))  # distance from the nearest vertex
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.01
    # with the same noise, the soft sample at tiny τ sits on the hard sample's vertex
    y = gumbel_softmax(logits, 0.01, generator=torch.Generator().manual_seed(0))
    h = gumbel_softmax(logits, 0.01, hard=True, generator=torch.Generator().manual_seed(0))
    assert float((y.max(-1).values > 0.99).float().mean()) > 0.95
    assert torch.equal(y.argmax(-1), h.argmax(-1))


def test_eval_mode_is_deterministic_argmax():
    layer = GumbelQuantizer(10, dim=-1, hard=False).eval()  # no codebook: z_q is the codes
    logits = torch.randn(16, 20, 10)
    state = torch.get_rng_state()
    a, b = layer(logits, tau=1.0), layer(logits, tau=1.0)
    assert torch.equal(torch.get_rng_state(), state)  # no noise drawn
    assert torch.equal(a.z_q, b.z_q)
    assert torch.equal(a.indices, logits.argmax(-1))
    assert torch.equal(a.z_q, torch.nn.functional.one_hot(logits.argmax(-1), 10).float())
    layer.train()
    assert not torch.equal(layer(logits, 1.0).z_q, layer(logits, 1.0).z_q)  # noisy in training


@pytest.mark.parametrize("hard", [False, True])
def test_training_mode_draws_the_relaxed_sample_at_the_given_temperature(hard):
    layer = GumbelQuantizer(10, dim=-1, hard=hard).train()
    logits = torch.randn(16, 20, 10)
    out = layer(logits, tau=0.3, generator=torch.Generator().manual_seed(4))
    expected = gumbel_softmax(logits, 0.3, hard, -1, torch.Generator().manual_seed(4))
    assert torch.equal(out.z_q, expected) and torch.equal(out.indices, expected.argmax(-1))


@pytest.mark.parametrize("training", [False, True])
def test_exact_mode_is_the_categorical_sample_of_the_generator_in_either_mode(training):
    layer = GumbelQuantizer(6, dim=1, code_dim=3).train(training)  # a (B, K, h, w) grid
    logits = torch.randn(4, 6, 3, 3)
    out = layer(logits, sample="exact", generator=torch.Generator().manual_seed(2))
    codes = categorical_sample(logits, 1, torch.Generator().manual_seed(2))  # (B, K, h, w) one-hot
    assert torch.equal(out.indices, codes.argmax(1))
    assert torch.allclose(out.z_q, torch.einsum("bkhw,kd->bdhw", codes, layer.codebook))
    assert torch.equal(out.z_q, layer.lookup(out.indices))  # the rows of the sampled codes


@pytest.mark.parametrize("name", ["gumbel-vae", "dvae"])
def test_models_encode_to_argmax_in_eval(name):
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True).eval()
    x = torch.rand(8, *model.config.image_shape)
    a, b = model.encode(x), model.encode(x)
    assert torch.equal(a.z, b.z) and torch.equal(a.indices, b.indices)
    assert torch.equal(a.indices, a.logits.argmax(model.category_dim))
    # the eval loss draws a fixed-seed exact sample: reproducible
    with torch.no_grad():
        assert float(model.loss(x).total) == float(model.loss(x).total)


def test_kl_to_uniform_matches_torch_distributions():
    logits = torch.randn(32, 20, 10, generator=torch.Generator().manual_seed(0)) * 3
    ours = categorical_kl_uniform(logits)
    uniform = torch.distributions.Categorical(probs=torch.full((32, 20, 10), 0.1))
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=logits), uniform)
    assert ours.shape == (32, 20)
    assert torch.allclose(ours, ref, atol=1e-5)
    # along dim 1, as for the (B, K, h, w) grid; zero for the uniform posterior; at most log K
    grid = torch.randn(4, 8, 3, 3)
    assert torch.allclose(categorical_kl_uniform(grid, dim=1),
                          categorical_kl_uniform(grid.movedim(1, -1)), atol=1e-6)
    assert torch.allclose(categorical_kl_uniform(torch.zeros(3, 10)), torch.zeros(3), atol=1e-6)
    assert float(categorical_kl_uniform(torch.tensor([[100.0, 0, 0, 0]]))) == pytest.approx(math.log(4), abs=1e-4)


def test_code_perplexity_bounds():
    k = 8
    all_codes = torch.eye(k).repeat(4, 1)  # every code used equally
    one_code = torch.nn.functional.one_hot(torch.zeros(32, dtype=torch.long), k).float()
    assert float(code_perplexity(all_codes)) == pytest.approx(k, rel=1e-5)
    assert float(code_perplexity(one_code)) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"schedule": "exp", "rate": 1e-3},
    {"schedule": "exp", "rate": 1e-3, "every": 500},
    {"schedule": "cosine", "total_steps": 3000},
])
def test_temperature_schedule_is_monotone_and_respects_its_floor(kwargs):
    start, floor = 1.0, 0.5
    taus = [schedules.temperature(s, start=start, floor=floor, **kwargs) for s in range(0, 10000, 7)]
    assert taus[0] == start
    assert all(a >= b for a, b in zip(taus, taus[1:]))
    assert min(taus) >= floor and taus[-1] == pytest.approx(floor)


def test_temperature_staircase_updates_every_n_steps():
    t = [schedules.temperature(s, rate=1e-3, every=500) for s in (0, 499, 500, 999, 1000)]
    assert t[0] == t[1] == 1.0 and t[2] == t[3] < 1.0 and t[4] < t[3]
    assert schedules.temperature(123, schedule="constant", start=0.7) == 0.7
