"""The diagonal Gaussian posterior, written once.

Every Gaussian latent in vaelab — the VAE family's ``q(z|x)``, the hierarchical VAE's
``q(z₂|z₁)`` and learned ``p(z₁|z₂)``, the standard normal prior, the importance-weighted bound
and a Gaussian decoder's likelihood — is a :class:`DiagonalGaussian`. It owns the three formulas
(after diffusers' ``DiagonalGaussianDistribution``):

- the reparameterised sample ``z = μ + σ ⊙ ε``, ``ε ~ N(0, I)`` (Kingma & Welling 2014, §2.4),
  drawn from an optional ``torch.Generator``;
- the log-density ``log N(z; μ, σ²) = −½ (log 2π + log σ² + (z − μ)² / σ²)`` per unit;
- the KL divergence to another diagonal Gaussian, in closed form, per unit:
  ``KL(q ‖ p) = ½ (log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1)``, which for
  ``p = N(0, I)`` is ``½ (μ² + σ² − 1 − log σ²)`` (Kingma & Welling 2014, appendix B).

Everything is per unit (the shape of ``mean``); sum over the latent dimensions for per-image
values (:func:`vaelab.losses.sum_per_image`).
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """``N(mean, diag(exp(logvar)))``; ``mean`` and ``logvar`` have the same shape ``(..., D)``."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar

    @classmethod
    def standard(cls, like: torch.Tensor) -> "DiagonalGaussian":
        """``N(0, I)`` with the shape, dtype and device of ``like``."""
        zeros = torch.zeros_like(like)
        return cls(zeros, zeros)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return self.logvar.exp()

    def sample(self, generator: torch.Generator | None = None,
               sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        """A reparameterised sample ``μ + σ ⊙ ε`` of shape ``sample_shape + mean.shape``;
        gradients flow to ``mean`` and ``logvar``."""
        shape = tuple(sample_shape) + tuple(self.mean.shape)
        eps = torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        """The most likely value, the mean: what ``encode`` returns as ``z``."""
        return self.mean

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z; μ, σ²)`` per unit, broadcasting ``z`` against the parameters."""
        return -0.5 * (LOG_2PI + self.logvar + (z - self.mean).pow(2) / self.logvar.exp())

    def nll(self, z: torch.Tensor) -> torch.Tensor:
        """``−log N(z; μ, σ²)`` per unit."""
        return -self.log_prob(z)

    def kl(self, other: "DiagonalGaussian | None" = None) -> torch.Tensor:
        """``KL(self ‖ other)`` per unit in closed form; ``other=None`` is ``N(0, I)``."""
        if other is None:
            return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)
        return 0.5 * (other.logvar - self.logvar
                      + (self.logvar.exp() + (self.mean - other.mean).pow(2)) / other.logvar.exp() - 1.0)

    def __iter__(self):
        """``mean, logvar = gaussian``: the parameters, for callers that want the tensors."""
        return iter((self.mean, self.logvar))

    def __repr__(self) -> str:
        return f"DiagonalGaussian(shape={tuple(self.mean.shape)})"
