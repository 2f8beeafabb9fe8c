"""The mathematics of the hierarchical VAE and the VAE-GAN (fast; tiny configs, 8×8 digits)."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import vaelab
from vaelab import losses
from vaelab.distributions import DiagonalGaussian
from vaelab.models.hvae import hierarchical_kl
from vaelab.nn.discriminators import ImageDiscriminator, PatchDiscriminator

from .conftest import assert_objectives_reach_only_their_group


def fixed(shape, seed, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# --- hierarchical VAE -----------------------------------------------------------------------

def test_hierarchical_kl_terms_match_torch_distributions():
    b, d1, d2 = 5, 6, 3
    mean1, logvar1 = fixed((b, d1), 1), fixed((b, d1), 2, 0.5)
    z1 = mean1 + torch.exp(0.5 * logvar1) * fixed((b, d1), 3)
    prior_mean1, prior_logvar1 = fixed((b, d1), 4), fixed((b, d1), 5, 0.5)
    mean2, logvar2 = fixed((b, d2), 6), fixed((b, d2), 7, 0.5)
    kl_1, kl_2 = hierarchical_kl(z1, DiagonalGaussian(mean1, logvar1),
                                 DiagonalGaussian(prior_mean1, prior_logvar1), DiagonalGaussian(mean2, logvar2))
    assert kl_1.shape == kl_2.shape == (b,)

    q1 = Normal(mean1, torch.exp(0.5 * logvar1))
    p1 = Normal(prior_mean1, torch.exp(0.5 * prior_logvar1))
    # kl_1 is the single-sample estimate log q(z₁|x) − log p(z₁|z₂) at the sampled z₁
    assert torch.allclose(kl_1, (q1.log_prob(z1) - p1.log_prob(z1)).sum(1), atol=1e-5)

    q2 = Normal(mean2, torch.exp(0.5 * logvar2))
    p2 = Normal(torch.zeros_like(mean2), torch.ones_like(mean2))
    assert torch.allclose(kl_2, kl_divergence(q2, p2).sum(1), atol=1e-5)
    # ... and the closed form equals a Monte-Carlo estimate
    torch.manual_seed(0)
    s = q2.sample((200_000,))  # (S, B, d₂)
    per_sample = (q2.log_prob(s) - p2.log_prob(s)).sum(-1)  # (S, B)
    tol = 5 * per_sample.std(0) / math.sqrt(len(s))
    assert ((per_sample.mean(0) - kl_2).abs() < tol).all()


def test_hvae_kl_terms_are_unbiased_monte_carlo_estimates(digits):
    """The model's kl_1 + kl_2, averaged over many draws, equals an independent Monte-Carlo
    estimate of KL(q(z₁, z₂|x) || p(z₁, z₂)) built with torch.distributions from its networks."""
    torch.manual_seed(0)
    model = vaelab.create("hvae", tiny=True)
    vaelab.fit(model, digits.subset(256, 64), epochs=1, batch_size=32, progress=False)
    model.train()
    x = digits.test_x[:1].expand(20_000, -1, -1, -1)  # one image, many posterior draws
    with torch.no_grad():
        torch.manual_seed(1)
        out = model.loss(x)
        kl_1_model, kl_2_model = float(out.terms["kl_1"]), float(out.terms["kl_2"])

        torch.manual_seed(2)
        mean1, logvar1 = model.posterior(x)
        q1 = Normal(mean1, torch.exp(0.5 * logvar1))
        z1 = q1.sample()
        mean2, logvar2 = model.posterior_top(z1)
        q2 = Normal(mean2, torch.exp(0.5 * logvar2))
        z2 = q2.sample()
        pm1, plv1 = model.prior_bottom(z2)
        p1 = Normal(pm1, torch.exp(0.5 * plv1))
        p2 = Normal(torch.zeros_like(z2), torch.ones_like(z2))
        mc_1 = (q1.log_prob(z1) - p1.log_prob(z1)).sum(1)  # (S,)
        mc_2 = (q2.log_prob(z2) - p2.log_prob(z2)).sum(1)  # (S,)

    n = len(x)
    for name, model_value, mc in (("kl_1", kl_1_model, mc_1), ("kl_2", kl_2_model, mc_2),
                                  ("kl", kl_1_model + kl_2_model, mc_1 + mc_2)):
        tol = 6 * float(mc.std()) / math.sqrt(n) + 1e-3  # both sides are MC estimates
        assert abs(model_value - float(mc.mean())) < tol, (name, model_value, float(mc.mean()))
    assert math.isclose(float(out.terms["kl"]), kl_1_model + kl_2_model, rel_tol=1e-5)
    assert math.isclose(float(out.terms["neg_elbo"]), float(out.terms["recon"] + out.terms["kl"]),
                        rel_tol=1e-5)


def test_hvae_latent_levels_and_decode_from_z1():
    torch.manual_seed(0)
    model = vaelab.create("hvae", tiny=True).eval()
    c = model.config
    assert model.info.latent_shapes == ((c.latent_dim,), (c.top_latent_dim,))
    assert model.info.levels == 2 and model.info.can_sample and model.info.variational
    x = torch.rand(3, *c.image_shape)
    latent = model.encode(x)
    z1, z2 = latent.z
    assert z1.shape == (3, c.latent_dim) and z2.shape == (3, c.top_latent_dim)
    assert len(latent.mean) == len(latent.logvar) == 2
    # p(x|z₁): the image ignores z₂
    assert torch.equal(model.decode((z1, z2)), model.decode((z1, torch.randn_like(z2))))
    assert torch.equal(model.decode((z1, z2)), model.decode(z1))


def test_hvae_samples_from_the_top_prior_down():
    torch.manual_seed(0)
    model = vaelab.create("hvae", tiny=True).eval()
    c = model.config
    images = model.sample(16, generator=torch.Generator().manual_seed(7))
    assert images.shape == (16, *c.image_shape)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    # the same draws by hand: z₂ ~ N(0, I), then z₁ ~ p(z₁|z₂), then the decoder's mean
    g = torch.Generator().manual_seed(7)
    z2 = torch.randn(16, c.top_latent_dim, generator=g)
    pm1, plv1 = model.prior_bottom(z2)
    z1 = pm1 + torch.exp(0.5 * plv1) * torch.randn(16, c.latent_dim, generator=g)
    assert torch.allclose(images, torch.sigmoid(model.decoder(z1)), atol=1e-6)
    again = model.sample(16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(images, again)


# --- VAE-GAN and discriminators -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["image", "patch"])
@pytest.mark.parametrize("feature_weight", [0.0, 1.0])
def test_vaegan_objectives_reach_only_their_own_group(kind, feature_weight):
    torch.manual_seed(0)
    model = vaelab.create("vae-gan", tiny=True, discriminator=kind, feature_weight=feature_weight).train()
    groups = model.optimizer_groups()
    assert list(groups) == ["generator", "discriminator"]  # generator steps first
    gen_ids = {id(p) for p in groups["generator"]}
    disc_ids = {id(p) for p in groups["discriminator"]}
    assert not gen_ids & disc_ids
    assert gen_ids | disc_ids == {id(p) for p in model.parameters()}
    assert disc_ids == {id(p) for p in model.discriminator.parameters()}

    x = torch.rand(16, *model.config.image_shape)
    out = model.loss(x)
    assert set(out.objectives) == {"generator", "discriminator"}
    assert torch.equal(out.total, out.objectives["generator"])
    if feature_weight:
        assert "feature" in out.terms
    assert_objectives_reach_only_their_group(model, out, groups)


def test_gan_losses_are_the_non_saturating_bce():
    fake, real = fixed((4, 1), 1), fixed((4, 1), 2)
    expected_g = -torch.log(torch.sigmoid(fake)).squeeze(1)
    assert torch.allclose(losses.gan_generator_loss(fake), expected_g, atol=1e-6)
    expected_d = (-torch.log(torch.sigmoid(real))).mean() + (-torch.log(1 - torch.sigmoid(fake))).mean()
    assert torch.allclose(losses.gan_discriminator_loss(real, fake), expected_d, atol=1e-6)
    grid = fixed((4, 1, 3, 3), 3)  # patch logits: one loss per image, averaged over the grid
    assert losses.gan_generator_loss(grid).shape == (4,)


def test_discriminator_shapes_and_patch_receptive_field():
    x = torch.rand(2, 1, 28, 28)
    assert ImageDiscriminator((1, 28, 28))(x).shape == (2, 1)
    logits, feats = ImageDiscriminator((1, 28, 28))(x, return_features=True)
    assert feats.shape == (2, 64 * 7 * 7)
    patch = PatchDiscriminator((1, 28, 28))
    assert patch(x).shape == (2, 1, 7, 7)
    assert PatchDiscriminator((1, 8, 8), (4, 8))(torch.rand(2, 1, 8, 8)).shape == (2, 1, 2, 2)
    # the input region one logit depends on is a square of receptive_field pixels
    torch.manual_seed(0)
    patch = PatchDiscriminator((1, 64, 64))
    x = torch.rand(1, 1, 64, 64, requires_grad=True)
    patch(x)[0, 0, 8, 8].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().squeeze(1)
    cols = x.grad[0, 0].abs().sum(0).nonzero().squeeze(1)
    assert patch.receptive_field == 18
    assert int(rows[-1] - rows[0] + 1) <= 18 and int(cols[-1] - cols[0] + 1) <= 18
    assert int(rows[-1] - rows[0] + 1) >= 14  # most of the field is really used


# --- training -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hvae", "vae-gan"])
def test_one_epoch_on_digits_is_finite_and_the_elbo_improves(name, digits):
    data = digits.subset(256, 128)
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True)
    before = vaelab.train.evaluate_loss(model, data.test_x, data.test_y, vaelab.TrainSettings())
    history = vaelab.fit(model, data, epochs=1, batch_size=32, lr=3e-3, progress=False)
    record = history["epochs"][-1]
    for split in ("train", "val"):
        for term, value in record[split].items():
            assert math.isfinite(value), (split, term)
    assert record["val"]["neg_elbo"] < before["neg_elbo"]
    for p in model.parameters():
        assert torch.isfinite(p).all()
