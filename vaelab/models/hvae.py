"""A hierarchical VAE with two stochastic levels, z₁ next to the image and z₂ above it.

Generative path, top-down: ``p(z₂) = N(0, I)``, ``p(z₁|z₂) = N(μ_p(z₂), σ²_p(z₂))`` with a learned
mean and log-variance, ``p(x|z₁)`` the usual decoder. Inference path, bottom-up:
``q(z₁|x)`` then ``q(z₂|z₁)``, both Gaussian — the two-layer models of Rezende et al. 2014 and
Burda et al. 2015 (section 5: "two stochastic layers"), whose difficulties with inactive top
units Sønderby et al. 2016 (Ladder VAE) address with KL warm-up, which this model has too.

Loss, one reparameterised sample ``z₁ ~ q(z₁|x)``, ``z₂ ~ q(z₂|z₁)``::

    -ELBO = E_q[-log p(x|z₁)] + kl_1 + kl_2
    kl_1  = log q(z₁|x) - log p(z₁|z₂)           at the sampled z₁, z₂ (single-sample estimate)
    kl_2  = KL(q(z₂|z₁) || N(0, I))              closed form, given the sampled z₁

``kl_1`` is estimated at the sampled pair rather than in closed form because z₂ is drawn *from*
z₁: the analytic ``KL(q(z₁|x) || p(z₁|z₂))`` at a fixed z₂ averages over a fresh z₁ that is
independent of z₂ and so is not the ELBO's term (it overstates the KL when p(z₁|z₂) has learned
to predict z₁). ``kl_2`` is exact given z₁, since nothing below depends on z₂. Both are unbiased,
so ``kl_1 + kl_2`` is an unbiased estimate of ``KL(q(z₁, z₂|x) || p(z₁, z₂))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaelab import losses
from vaelab.models.base import Latent, LossOutput, ModelInfo
from vaelab.distributions import DiagonalGaussian
from vaelab.models.vae import VAE, VAEConfig, gaussian_from
from vaelab.nn.backbones import mlp
from vaelab.registry import register

TINY = {"image_shape": (1, 8, 8), "hidden": (16,), "channels": (4, 8), "latent_dim": 4,
        "top_latent_dim": 2, "level_hidden": (8,)}

@dataclass(frozen=True)
class HVAEConfig(VAEConfig):
    latent_dim: int = 32  # d₁: Gaussian units of the bottom level z₁, the one the image is decoded from
    top_latent_dim: int = 16  # d₂: Gaussian units of the top level z₂, whose prior is N(0, I)
    level_hidden: tuple[int, ...] = (256,)  # MLP widths of q(z₂|z₁) and of p(z₁|z₂)


def hierarchical_kl(z1: torch.Tensor, q1: DiagonalGaussian, p1: DiagonalGaussian,
                    q2: DiagonalGaussian) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``(kl_1, kl_2)``, each ``(B,)``, for the two-level model (see module docstring).

    ``z1`` ``(B, d₁)``: the sample of ``q1 = q(z₁|x)``; ``p1 = p(z₁|z₂)`` at the sampled z₂;
    ``q2 = q(z₂|z₁)`` at the sampled z₁, ``(B, d₂)``.
    """
    kl_1 = (q1.log_prob(z1) - p1.log_prob(z1)).sum(1)
    kl_2 = q2.kl().sum(1)
    return kl_1, kl_2


@register("hvae", HVAEConfig, family="hierarchical", tiny=TINY,
          description="Hierarchical VAE: two Gaussian latent levels, z₂ ~ N(0, I) on top of a learned p(z₁|z₂)")
class HierarchicalVAE(VAE):
    """The VAE's encoder is ``q(z₁|x)`` and its decoder ``p(x|z₁)``; two small MLPs add
    ``q(z₂|z₁)`` (``up``) and ``p(z₁|z₂)`` (``prior1``)."""

    def __init__(self, config: HVAEConfig):
        super().__init__(config)
        c = config
        self.up = mlp([c.latent_dim, *c.level_hidden, 2 * c.top_latent_dim], c.activation)  # (B, d₁) -> (B, 2·d₂)
        self.prior1 = mlp([c.top_latent_dim, *c.level_hidden, 2 * c.latent_dim], c.activation)  # (B, d₂) -> (B, 2·d₁)

    @property
    def info(self) -> ModelInfo:
        c = self.config
        return ModelInfo(latent="continuous", variational=True, conditional=False,
                         latent_shapes=((c.latent_dim,), (c.top_latent_dim,)), can_sample=True,
                         likelihood=c.likelihood)

    def posterior_top(self, z1: torch.Tensor) -> DiagonalGaussian:
        """``q(z₂|z₁)``, mean and log-variance ``(B, d₂)`` each."""
        return gaussian_from(self.up(z1))

    def prior_bottom(self, z2: torch.Tensor) -> DiagonalGaussian:
        """``p(z₁|z₂)``, mean and log-variance ``(B, d₁)`` each."""
        return gaussian_from(self.prior1(z2))

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        """Posterior means level by level: ``z = (μ₁(x), μ₂(μ₁(x)))``, top level last."""
        q1 = self.posterior(x)
        q2 = self.posterior_top(q1.mode())
        return Latent(z=(q1.mode(), q2.mode()), mean=(q1.mean, q2.mean), logvar=(q1.logvar, q2.logvar))

    def decode_params(self, z, y=None) -> torch.Tensor:
        """``z`` is the tuple ``(z₁, z₂)`` that :meth:`encode` gives (or z₁ alone); the image
        depends on z₁ only — ``p(x|z₁)`` — so z₂ is not used here. To see what a top-level code
        means, go down first: ``z₁ = prior_bottom(z₂)[0]``, as :meth:`sample` does."""
        z1 = z[0] if isinstance(z, (tuple, list)) else z
        return self.decoder(z1)

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        q1 = self.posterior(x)  # (B, d₁)
        z1 = q1.sample()
        q2 = self.posterior_top(z1)  # (B, d₂)
        z2 = q2.sample()
        recon = self.recon_nll(self.decoder(z1), x)  # (B,)
        kl_1, kl_2 = hierarchical_kl(z1, q1, self.prior_bottom(z2), q2)
        beta = self.kl_weight(step)
        terms = losses.elbo_terms(recon, kl_1 + kl_2, beta)
        terms["kl_1"] = kl_1.mean()
        terms["kl_2"] = kl_2.mean()
        terms["beta"] = torch.tensor(beta)
        return LossOutput(terms["total"], terms)

    @torch.no_grad()
    def log_importance_weights(self, x: torch.Tensor, y=None, k: int = 1) -> torch.Tensor:
        """``log p(x|z₁) + log p(z₁|z₂) + log N(z₂; 0, I) − log q(z₁|x) − log q(z₂|z₁)`` for ``k``
        samples ``(z₁, z₂) ~ q``, shape ``(k, B)``. The VAE's one-level version would score z₁
        under N(0, I) instead of the learned ``p(z₁|z₂)``, so this model needs its own."""
        q1 = self.posterior(x)  # (B, d₁)
        z1 = q1.sample(sample_shape=(k,))  # (k, B, d₁)
        flat1 = z1.reshape(-1, z1.shape[-1])
        q2 = self.posterior_top(flat1)  # (k·B, d₂)
        z2 = q2.sample()
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_px = -self.recon_nll(self.decoder(flat1), xs)
        log_p = (self.prior_bottom(z2).log_prob(flat1).sum(1)
                 + DiagonalGaussian.standard(z2).log_prob(z2).sum(1))
        log_q = q1.log_prob(z1).sum(-1).reshape(-1) + q2.log_prob(z2).sum(1)
        return (log_px + log_p - log_q).view(k, -1)

    def sample(self, n: int, y=None, generator=None) -> torch.Tensor:
        """Ancestral sampling from the top: ``z₂ ~ N(0, I)``, ``z₁ ~ p(z₁|z₂)``, image = mean of
        ``p(x|z₁)``."""
        device = next(self.parameters()).device
        z2 = torch.randn(n, self.config.top_latent_dim, generator=generator).to(device)
        p1 = self.prior_bottom(z2)
        # the noise is drawn on the CPU (where a generator lives) and moved, as in VAE.sample
        eps = torch.randn(p1.mean.shape, generator=generator).to(device)  # (n, d₁)
        z1 = p1.mean + p1.std * eps
        return self.decode((z1, z2))
