"""The VAE family: VAE (Kingma & Welling 2014), β-VAE (Higgins et al. 2017) and the conditional
VAE (Sohn et al. 2015), with MLP or conv backbones and Bernoulli or Gaussian decoders.

Loss: ``-ELBO_β = E_q[-log p(x|z)] + β · KL(q(z|x) || N(0, I))`` with one reparameterised sample,
``z = μ + σ ⊙ ε``. β can be warmed up linearly or cyclically (:func:`vaelab.schedules.kl_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaelab import losses, schedules
from vaelab.distributions import DiagonalGaussian
from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.nn.backbones import Decoder, Encoder
from vaelab.registry import register

TINY = {"image_shape": (1, 8, 8), "hidden": (16,), "channels": (4, 8), "latent_dim": 2}


@dataclass(frozen=True)
class VAEConfig(BaseConfig):
    latent_dim: int = 16  # number of Gaussian latent units
    beta: float = 1.0  # weight of the KL term (1 = the ELBO)
    kl_warmup: str = "none"  # KL weight schedule: none, linear or cyclical
    warmup_steps: int = 0  # optimisation steps the warm-up lasts (all cycles, for cyclical)
    warmup_cycles: int = 4  # number of cycles for the cyclical warm-up


@dataclass(frozen=True)
class BetaVAEConfig(VAEConfig):
    beta: float = 4.0  # β > 1 trades reconstruction for a more factorised latent


@dataclass(frozen=True)
class CVAEConfig(VAEConfig):
    pass  # the label's one-hot is concatenated to the encoder and decoder inputs


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
    """``z = μ + σ ⊙ ε``, ``ε ~ N(0, I)``: a sample that gradients flow through to μ and log σ²."""
    return DiagonalGaussian(mean, logvar).sample(generator)


def gaussian_from(params: torch.Tensor) -> DiagonalGaussian:
    """An encoder's ``(B, 2D)`` output as ``N(mean, exp(logvar))``, the log-variance clamped to
    [−30, 20] so that ``exp()`` stays finite early in training."""
    mean, logvar = params.chunk(2, dim=1)
    return DiagonalGaussian(mean, logvar.clamp(-30.0, 20.0))


@register("beta-vae", BetaVAEConfig, family="variational", tiny=TINY,
          description="β-VAE: the VAE with its KL weighted by β (default 4) for a smoother, more disentangled latent")
@register("vae", VAEConfig, family="variational", tiny=TINY,
          description="Variational autoencoder: Gaussian latent, trained on the ELBO; samples from N(0, I)")
class VAE(AutoEncoder):
    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        cond = c.num_classes if self.conditional else 0
        self.encoder = Encoder(c.image_shape, 2 * c.latent_dim, c.backbone, c.hidden, c.channels,
                               c.activation, cond_dim=cond)
        self.decoder = Decoder(c.image_shape, c.latent_dim, c.backbone, tuple(reversed(c.hidden)),
                               c.channels, c.activation, cond_dim=cond)

    conditional = False

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(latent="continuous", variational=True, conditional=self.conditional,
                         latent_shapes=((self.config.latent_dim,),), can_sample=True,
                         likelihood=self.config.likelihood)

    def posterior(self, x: torch.Tensor, y=None) -> DiagonalGaussian:
        """``q(z|x)``, a diagonal Gaussian with mean and log-variance ``(B, D)`` each. It unpacks
        as ``mean, logvar = model.posterior(x)``."""
        return gaussian_from(self.encoder(x, self.condition(y)))

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        q = self.posterior(x, y)
        return Latent(z=q.mode(), mean=q.mean, logvar=q.logvar)

    def decode_params(self, z, y=None) -> torch.Tensor:
        return self.decoder(z, self.condition(y))

    def kl_weight(self, step: int) -> float:
        c = self.config
        return schedules.kl_weight(step, c.beta, c.kl_warmup, c.warmup_steps, c.warmup_cycles)

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        q = self.posterior(x, y)
        recon = self.recon_nll(self.decode_params(q.sample(), y), x)
        kl = q.kl().sum(1)
        beta = self.kl_weight(step)
        terms = losses.elbo_terms(recon, kl, beta)
        terms["beta"] = torch.tensor(beta)
        return LossOutput(terms["total"], terms)

    @torch.no_grad()
    def log_importance_weights(self, x: torch.Tensor, y=None, k: int = 1) -> torch.Tensor:
        """``log p(x|z) + log p(z) - log q(z|x)`` for ``k`` samples ``z ~ q(z|x)``: ``(k, B)``."""
        q = self.posterior(x, y)
        z = q.sample(sample_shape=(k,))  # (k, B, D)
        log_q = q.log_prob(z).sum(-1)  # (k, B)
        log_prior = DiagonalGaussian.standard(z).log_prob(z).sum(-1)
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        ys = None if y is None else y.unsqueeze(0).expand(k, *y.shape).reshape(-1)
        log_px = -self.recon_nll(self.decode_params(z.reshape(-1, z.shape[-1]), ys), xs).view(k, -1)
        return log_px + log_prior - log_q

    def sample(self, n: int, y=None, generator=None) -> torch.Tensor:
        if self.conditional and y is None:
            y = torch.arange(n) % self.config.num_classes
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        z = z.to(next(self.parameters()).device)
        return self.decode(z, None if y is None else y.to(z.device))


@register("cvae", CVAEConfig, family="variational", tiny=TINY,
          description="Conditional VAE: the digit label is given to encoder and decoder, so you can ask for a digit")
class ConditionalVAE(VAE):
    conditional = True
