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
draws from torch's global RNG, so seeded training is deterministic); :class:`GumbelQuantizer`
wraps them as a bottleneck that switches on ``model.eval()`` and returns the same
:class:`~vaelab.nn.bottleneck.BottleneckOutput` as the vector quantiser, so the two swap in one
encoder/decoder pair (as in Karpathy's deep-vector-quantization).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.nn.bottleneck import BottleneckOutput, perplexity


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

    ``p̄`` is the mean of ``codes`` over ``pooled_dims`` (counted with the categories moved last:
    the batch, and the grid positions when they share one codebook); remaining non-category
    dimensions (separate variables with their own categories) get a perplexity each, and the mean
    is returned, in the dtype of ``codes``. 1 = one code used for everything; K = all codes used
    equally.
    """
    codes = codes.movedim(dim, -1)  # categories last
    p = codes.mean(dim=[d % codes.dim() for d in pooled_dims])  # (..., K)
    return perplexity(p).mean().to(codes.dtype)


class GumbelQuantizer(nn.Module):
    """The Gumbel-softmax bottleneck: logits -> :class:`~vaelab.nn.bottleneck.BottleneckOutput`,
    the contract :class:`vaelab.nn.quantize.VectorQuantizer` honours too.

    With ``code_dim`` it owns a codebook ``(K, D)`` shared by every position, and ``z_q`` is the
    codes' mixture of codebook rows (a 1×1 convolution for a grid: ``(B, K, h, w) -> (B, D, h, w)``,
    DALL-E's dVAE); without, the codes are ``z_q`` themselves (the categorical VAE's ``(B, N, K)``).

    How the codes are drawn (``sample``):

    - ``"relaxed"`` (default in training): a Gumbel-softmax sample at temperature ``tau``, or with
      ``hard`` its straight-through one-hot;
    - ``"argmax"`` (default in evaluation): the one-hot argmax of the logits, no noise;
    - ``"exact"``: an exact one-hot categorical sample (Gumbel-max) without gradient, from
      ``generator``: an unbiased sample of the discrete model, for its −ELBO.

    Losses: ``kl`` = KL(q || Uniform(K)) summed per image, batch mean (unweighted: the model
    weights it). Stats: ``perplexity`` of the argmax codes of the batch, pooled over batch and
    positions when they share the codebook, else one per variable, averaged.
    """

    def __init__(self, codebook_size: int, dim: int = -1, hard: bool = False,
                 code_dim: int | None = None):
        super().__init__()
        self.codebook_size = codebook_size  # K: categories per variable / codebook entries
        self.dim = dim  # the category dimension of the logits
        self.hard = hard  # straight-through: one-hot forward, soft gradients backward
        if code_dim:  # row k is code k's vector; a one-hot picks rows
            self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))
        else:
            self.register_parameter("codebook", None)

    def codes_to_z(self, codes: torch.Tensor) -> torch.Tensor:
        """One-hot or relaxed codes (shape of the logits) -> ``z_q``: through the codebook, with
        its ``D`` in place of the ``K`` categories, or unchanged without one."""
        if self.codebook is None:
            return codes
        return (codes.movedim(self.dim, -1) @ self.codebook).movedim(-1, self.dim)  # (..., K)·(K, D)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Index map ``(B, h, w)`` / ``(B, N)`` -> the ``z_q`` of its one-hot codes."""
        dtype = torch.get_default_dtype() if self.codebook is None else self.codebook.dtype
        return self.codes_to_z(one_hot(indices.long(), self.codebook_size, self.dim, dtype))

    def draw(self, logits: torch.Tensor, sample: str, tau: float,
             generator: torch.Generator | None) -> torch.Tensor:
        """Codes of the shape of ``logits``, drawn as ``sample`` says (see the class)."""
        if sample == "relaxed":
            return gumbel_softmax(logits, tau, self.hard, self.dim, generator)
        if sample == "exact":
            return categorical_sample(logits, self.dim, generator)
        if sample == "argmax":
            return one_hot(logits.argmax(self.dim), self.codebook_size, self.dim, logits.dtype)
        raise ValueError(f"unknown sample {sample!r}; choose relaxed, argmax or exact")

    def forward(self, logits: torch.Tensor, tau: float = 1.0, sample: str | None = None,
                generator: torch.Generator | None = None) -> BottleneckOutput:
        """``logits`` ``(B, K, h, w)`` or ``(B, N, K)`` (categories at ``dim``); ``sample``
        defaults to ``relaxed`` in training and ``argmax`` in evaluation."""
        sample = sample or ("relaxed" if self.training else "argmax")
        codes = self.draw(logits, sample, tau, generator)  # shape of the logits
        kl = categorical_kl_uniform(logits, self.dim)  # (B, h, w) / (B, N)
        assigned = one_hot(logits.detach().argmax(self.dim), self.codebook_size)  # (B, ..., K)
        # a shared codebook pools every position; otherwise each variable has its own categories
        pooled = tuple(range(assigned.dim() - 1)) if self.codebook is not None else (0,)
        return BottleneckOutput(self.codes_to_z(codes), codes.detach().argmax(self.dim),
                                {"kl": kl.reshape(len(kl), -1).sum(1).mean()},
                                {"perplexity": code_perplexity(assigned, -1, pooled)}, logits)

    def extra_repr(self) -> str:
        d = None if self.codebook is None else self.codebook.shape[1]
        return f"K={self.codebook_size}, dim={self.dim}, hard={self.hard}, code_dim={d}"
