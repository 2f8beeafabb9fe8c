"""The Gumbel-softmax bottleneck: a differentiable stand-in for sampling a categorical variable.

Jang, Gu & Poole 2016, "Categorical Reparameterization with Gumbel-Softmax" (arXiv:1611.01144),
and Maddison, Mnih & Teh 2016, "The Concrete Distribution" (arXiv:1611.00712). For logits
``log π`` over K categories,

    y = softmax((log π + g) / τ),   g_k = −log(−log u_k),   u_k ~ Uniform(0, 1),

is a point on the simplex whose argmax is an exact sample of Categorical(π) (the Gumbel-max
trick), and which approaches that one-hot sample as τ → 0. The *straight-through* variant
(Jang et al. §2.2) outputs the exact one-hot sample forward and passes the soft sample's
gradient backward. At evaluation the bottleneck takes the argmax of the logits, without noise.

Pure functions do the mathematics (each takes an optional ``torch.Generator``; without one it
draws from torch's global RNG, so seeded training is deterministic); :class:`GumbelSoftmax`
wraps them as a parameter-free layer that switches on ``model.eval()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def gumbel_noise(shape, generator: torch.Generator | None = None, device=None,
                 dtype=torch.float32) -> torch.Tensor:
    """Standard Gumbel noise ``g = −log(−log u)``, ``u ~ U(0, 1)``, of the given shape."""
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    # torch.rand is in [0, 1): keep u > 0 so that −log u is finite
    u = u.clamp_min(torch.finfo(dtype).tiny)
    return -torch.log(-torch.log(u))


def one_hot(indices: torch.Tensor, k: int, dim: int = -1, dtype=torch.float32) -> torch.Tensor:
    """Indices ``(...)`` -> one-hot with the K categories placed at ``dim`` of the result."""
    y = F.one_hot(indices, k).to(dtype)  # (..., K)
    return y.movedim(-1, dim)


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool = False, dim: int = -1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A Gumbel-softmax sample with the same shape as ``logits`` (categories along ``dim``).

    ``logits`` are unnormalised log-probabilities (softmax is shift-invariant, so they serve
    as ``log π``). With ``hard``, the result is exactly one-hot, the argmax of
    ``logits + g`` (an exact categorical sample), while its gradient is the soft sample's.
    """
    perturbed = logits + gumbel_noise(logits.shape, generator, logits.device, logits.dtype)
    y_soft = torch.softmax(perturbed / tau, dim=dim)
    if not hard:
        return y_soft
    # argmax of the perturbed logits, not of y_soft: at tiny τ the softmax can underflow to ties
    y_hard = one_hot(perturbed.argmax(dim), logits.shape[dim], dim, logits.dtype)
    # y_soft − y_soft.detach() is exactly zero, so the forward value is exactly one-hot, and its
    # derivative is the identity, so the backward pass sees the soft sample
    return y_hard + (y_soft - y_soft.detach())


def categorical_sample(logits: torch.Tensor, dim: int = -1,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """An exact one-hot categorical sample (Gumbel-max), no gradient; shape of ``logits``."""
    with torch.no_grad():
        perturbed = logits + gumbel_noise(logits.shape, generator, logits.device, logits.dtype)
        return one_hot(perturbed.argmax(dim), logits.shape[dim], dim, logits.dtype)


def categorical_kl_uniform(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """KL(q || Uniform(K)) = Σ_k q_k log(q_k K) per categorical variable, ``q = softmax(logits)``.

    Returns ``logits`` with ``dim`` reduced: ``(B, N, K) -> (B, N)`` or ``(B, K, h, w) -> (B, h, w)``.
    """
    log_q = torch.log_softmax(logits, dim=dim)
    return (log_q.exp() * log_q).sum(dim) + math.log(logits.shape[dim])


def code_perplexity(codes: torch.Tensor, dim: int = -1, pooled_dims: tuple[int, ...] = (0,)) -> torch.Tensor:
    """Perplexity ``exp(H(p̄))`` of code usage, from one-hot (or soft) codes.

    ``p̄`` is the mean of ``codes`` over ``pooled_dims`` (the batch, and the grid positions when
    they share one codebook); remaining non-category dimensions (separate variables with their
    own categories) get a perplexity each, and the mean is returned. 1 = one code used for
    everything; K = all codes used equally.
    """
    codes = codes.movedim(dim, -1)  # categories last
    pooled = [d % (codes.dim()) for d in pooled_dims]
    p = codes.mean(dim=pooled)  # (..., K)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    return entropy.exp().mean()


@dataclass
class GumbelOutput:
    """What the bottleneck returns (the swappable-bottleneck triple plus the posterior)."""

    codes: torch.Tensor  # relaxed or one-hot codes, shape of the logits
    indices: torch.Tensor  # argmax category per variable, logits' shape without ``dim``
    kl: torch.Tensor  # KL(q || uniform) per variable, logits' shape without ``dim``
    logits: torch.Tensor  # the posterior's logits, unchanged


class GumbelSoftmax(nn.Module):
    """Parameter-free layer: logits -> codes. Training: a Gumbel-softmax sample at temperature
    ``tau`` (straight-through one-hot with ``hard``); evaluation: one-hot argmax, no noise."""

    def __init__(self, hard: bool = False, dim: int = -1):
        super().__init__()
        self.hard = hard  # straight-through: one-hot forward, soft gradients backward
        self.dim = dim  # the category dimension of the logits

    def forward(self, logits: torch.Tensor, tau: float = 1.0,
                generator: torch.Generator | None = None) -> GumbelOutput:
        if self.training:
            codes = gumbel_softmax(logits, tau, self.hard, self.dim, generator)
            indices = codes.detach().argmax(self.dim)
        else:
            indices = logits.argmax(self.dim)
            codes = one_hot(indices, logits.shape[self.dim], self.dim, logits.dtype)
        return GumbelOutput(codes, indices, categorical_kl_uniform(logits, self.dim), logits)

    def extra_repr(self) -> str:
        return f"hard={self.hard}, dim={self.dim}"
