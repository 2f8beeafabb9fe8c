"""What every discrete bottleneck returns, and the perplexity of code usage.

Vector quantisation (van den Oord et al. 2017, :mod:`vaelab.nn.quantize`) and the Gumbel-softmax
(Jang et al. 2016, :mod:`vaelab.nn.gumbel`) sit in the same place: between an encoder that
outputs one vector per position and a decoder that reads one code vector per position. As in
deep-vector-quantization (Karpathy), both return the same result, :class:`BottleneckOutput`, so
one encoder/decoder pair (:class:`vaelab.models.grid.GridAutoEncoder`) takes either and a model
only adds its own terms (reconstruction, KL weight) to the bottleneck's named ones.

:func:`perplexity` is the one place its formula lives; the quantiser's batch statistic, the
Gumbel models' code usage and :func:`vaelab.metrics.perplexity` over a whole test set call it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def perplexity(p_or_counts: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``exp(−Σ_k p_k log p_k)`` of the distribution along ``dim``, with ``0 · log 0 = 0``.

    ``p_or_counts`` holds counts (any non-negative dtype) or probabilities; each slice along
    ``dim`` is normalised by its sum (an all-zero slice counts as one code used). ``K`` for
    uniform use of ``K`` codes, 1 when one code takes everything. Returned with ``dim`` reduced,
    ``(K,) -> ()`` or ``(N, K) -> (N,)``, in float64 (counts over a whole test set keep their
    precision); callers that log it next to float32 losses cast it.
    """
    p = p_or_counts.double()
    tiny = torch.finfo(p.dtype).tiny
    p = p / p.sum(dim, keepdim=True).clamp_min(tiny)
    entropy = -(p * torch.log(p.clamp_min(tiny))).sum(dim)  # 0·log 0 = 0
    return entropy.exp()


class BottleneckOutput(NamedTuple):
    """The result of a discrete bottleneck, whichever it is. ``losses`` are what the model adds
    to its objective (vector quantisation: ``commitment``, and ``codebook`` without EMA;
    Gumbel-softmax: ``kl`` = KL(q || uniform)), each summed per image and averaged over the
    batch; ``stats`` are logged, never minimised."""

    z_q: torch.Tensor  # what the decoder takes: (B, D, h, w) codes, or the (B, N, K) codes themselves
    indices: torch.Tensor  # int64 code index per position / variable: (B, h, w) or (B, N)
    losses: dict[str, torch.Tensor]  # named batch-mean loss terms, scalars
    stats: dict[str, torch.Tensor]  # named scalars to log: "perplexity" of this batch's code usage
    logits: torch.Tensor | None = None  # Gumbel-softmax: the categorical posterior's logits; VQ: None

    @property
    def perplexity(self) -> torch.Tensor:
        """The code-usage perplexity of this batch, which every bottleneck reports."""
        return self.stats["perplexity"]
