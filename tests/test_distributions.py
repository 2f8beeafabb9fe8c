"""The one Gaussian posterior: its density, KL and sampling against torch.distributions, and the
places that use it (VAE loss, importance weights, Gaussian likelihood) agree with it."""

import math

import torch
from torch.distributions import Normal, kl_divergence

import vaelab
from vaelab import losses
from vaelab.distributions import DiagonalGaussian


def params(seed, shape=(5, 4)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), 0.7 * torch.randn(shape, generator=g)


def test_log_prob_matches_torch_normal():
    mean, logvar = params(0)
    z = torch.randn(3, *mean.shape, generator=torch.Generator().manual_seed(1))
    q = DiagonalGaussian(mean, logvar)
    expected = Normal(mean, torch.exp(0.5 * logvar)).log_prob(z)
    assert torch.allclose(q.log_prob(z), expected, atol=1e-5)
    assert torch.allclose(q.nll(z), -expected, atol=1e-5)


def test_kl_to_standard_normal_and_to_another_gaussian_match_torch():
    (m1, lv1), (m2, lv2) = params(2), params(3)
    q, p = DiagonalGaussian(m1, lv1), DiagonalGaussian(m2, lv2)
    tq, tp = Normal(m1, torch.exp(0.5 * lv1)), Normal(m2, torch.exp(0.5 * lv2))
    assert torch.allclose(q.kl(p), kl_divergence(tq, tp), atol=1e-5)
    std = Normal(torch.zeros_like(m1), torch.ones_like(m1))
    assert torch.allclose(q.kl(), kl_divergence(tq, std), atol=1e-5)
    assert torch.allclose(q.kl(DiagonalGaussian.standard(m1)), q.kl(), atol=1e-6)
    assert torch.allclose(losses.gaussian_kl(m1, lv1), q.kl())
    assert torch.allclose(q.kl(q), torch.zeros_like(m1), atol=1e-6)


def test_sample_is_reparameterised_seeded_and_has_the_right_moments():
    mean, logvar = torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([0.0, math.log(4.0)], requires_grad=True)
    q = DiagonalGaussian(mean, logvar)
    a = q.sample(torch.Generator().manual_seed(5), sample_shape=(200_000,))
    b = q.sample(torch.Generator().manual_seed(5), sample_shape=(200_000,))
    assert a.shape == (200_000, 2) and torch.equal(a, b)
    assert torch.allclose(a.mean(0), mean, atol=0.02)
    assert torch.allclose(a.std(0), torch.tensor([1.0, 2.0]), atol=0.02)
    a.sum().backward()
    assert mean.grad is not None and logvar.grad is not None  # gradients flow through the sample
    assert torch.equal(q.mode(), mean)


def test_vae_uses_the_posterior_for_its_loss_and_importance_weights():
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True).eval()
    x = torch.rand(6, *model.config.image_shape, generator=torch.Generator().manual_seed(0))
    q = model.posterior(x)
    assert isinstance(q, DiagonalGaussian)
    mean, logvar = q  # unpacks to the parameters
    lat = model.encode(x)
    assert torch.equal(lat.z, mean) and torch.equal(lat.logvar, logvar)
    # the loss's KL is the posterior's closed-form KL to N(0, I)
    out = model.loss(x)
    assert math.isclose(float(out.terms["kl"]), float(q.kl().sum(1).mean()), rel_tol=1e-5)
    # one importance weight, recomputed by hand from the same noise
    torch.manual_seed(1)
    w = model.log_importance_weights(x, k=1)[0]
    torch.manual_seed(1)
    z = q.sample(sample_shape=(1,))[0]
    log_px = -model.recon_nll(model.decode_params(z), x)
    by_hand = log_px + Normal(0.0, 1.0).log_prob(z).sum(1) - Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    assert torch.allclose(w, by_hand, atol=1e-4)


def test_gaussian_likelihood_is_the_normal_density():
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    mu = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    nll = losses.reconstruction_nll(mu, x, "gaussian", sigma=0.3)
    assert torch.allclose(nll, -Normal(mu, 0.3).log_prob(x).flatten(1).sum(1), atol=1e-4)
