"""The vector-quantisation bottleneck of the VQ-VAE (van den Oord, Vinyals & Kavukcuoglu,
"Neural Discrete Representation Learning", NeurIPS 2017).

Each ``D``-dimensional encoder output ``z_e`` at a grid cell is replaced by its nearest code
``e_k`` of a codebook ``{e_1 … e_K}``. The argmin has no gradient, so the decoder's gradient is
copied straight through to the encoder (``z_q = z_e + sg[e - z_e]``), and two terms train the
codebook and keep the encoder near it (paper, eq. 3):

- codebook   ``‖sg[z_e] − e‖²``: moves the codes towards the encoder outputs, not the encoder;
- commitment ``β ‖z_e − sg[e]‖²``: moves the encoder towards its codes, not the codes.

Options, all in :class:`QuantizerConfig`:

- ``ema``: the codebook follows exponential moving averages of the cluster sizes and sums
  (paper, appendix A.1) instead of the codebook term, with Laplace smoothing of the sizes;
- ``restart_after``: codes unused for that many training steps are re-seeded from encoder
  outputs of the current batch (dead-code restart; e.g. Dhariwal et al. 2020, "Jukebox");
- ``kmeans_init``: the codebook starts as k-means centroids of the first training batch's
  encoder outputs (Łańcucki et al. 2020, "Robust training of vector quantized bottleneck models").

The pieces that hold the mathematics (:func:`nearest_code`, :func:`ema_update`,
:func:`codebook_loss`, :func:`commitment_loss`, :func:`kmeans`, and
:func:`vaelab.nn.bottleneck.perplexity`) are pure functions so they can be tested on hand-made
tensors. :class:`VectorQuantizer` returns the bottleneck contract
(:class:`vaelab.nn.bottleneck.BottleneckOutput`) that the Gumbel-softmax quantiser returns too.
Every random choice uses torch's global RNG, which the trainer seeds, so seeded training is
deterministic. All state (codebook, EMA averages, usage counts, step counters) is in buffers or
parameters, so it is saved with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaelab.nn.bottleneck import BottleneckOutput, perplexity


@dataclass(frozen=True)
class QuantizerConfig:
    codebook_size: int = 512  # K: number of code vectors
    code_dim: int = 64  # D: dimension of each code vector (channels of z_e)
    beta: float = 0.25  # β: weight of the commitment term
    ema: bool = True  # codebook learned by exponential moving averages (no codebook loss term)
    decay: float = 0.99  # γ: EMA decay of cluster sizes and sums
    epsilon: float = 1e-5  # ε: Laplace smoothing of the EMA cluster sizes
    restart_after: int = 0  # re-seed codes unused for this many training steps; 0 = never
    restart_threshold: float = 0.0  # with ema and restarts: also re-seed codes whose EMA cluster size
    # (average uses per step) falls below this (Dhariwal et al. 2020); evens out usage
    kmeans_init: bool = False  # initialise the codebook by k-means on the first training batch
    kmeans_iters: int = 10  # Lloyd iterations of that k-means

    def __post_init__(self):
        if not 0 <= self.restart_threshold < 1:  # a re-seeded code starts at EMA size 1
            raise ValueError(f"restart_threshold must be in [0, 1), got {self.restart_threshold}: "
                             "a re-seeded code starts with an EMA cluster size of 1")


# --- pure functions ---------------------------------------------------------------------------

def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``‖z_n − e_k‖² = ‖z_n‖² − 2 z_n·e_k + ‖e_k‖²`` for ``z`` ``(N, D)``, ``codebook`` ``(K, D)``
    -> ``(N, K)``; one matrix product, no ``(N, K, D)`` intermediate."""
    return (z.pow(2).sum(1, keepdim=True)  # (N, 1)
            - 2.0 * z @ codebook.t()  # (N, K)
            + codebook.pow(2).sum(1)[None, :])  # (1, K)


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code for each row: ``(N, D), (K, D) -> (N,)`` int64."""
    return squared_distances(z, codebook).argmin(1)


def codebook_loss(z_e: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``‖sg[z_e] − e‖²`` summed per image, batch mean: its gradient reaches only the codes.
    ``z_e``, ``e``: ``(B, D, h, w)`` (``e`` the selected codes)."""
    return (z_e.detach() - e).pow(2).reshape(len(e), -1).sum(1).mean()


def commitment_loss(z_e: torch.Tensor, e: torch.Tensor, beta: float) -> torch.Tensor:
    """``β ‖z_e − sg[e]‖²`` summed per image, batch mean: its gradient reaches only the encoder."""
    return beta * (z_e - e.detach()).pow(2).reshape(len(z_e), -1).sum(1).mean()


def straight_through(z_e: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``z_e + sg[e − z_e]``: equals ``e`` in value, passes the gradient unchanged to ``z_e``."""
    return z_e + (e - z_e).detach()


def code_counts(indices: torch.Tensor, k: int) -> torch.Tensor:
    """How often each of ``k`` codes occurs in ``indices`` (any shape) -> ``(k,)`` int64."""
    return torch.bincount(indices.reshape(-1), minlength=k)


def ema_update(cluster_size: torch.Tensor, embed_sum: torch.Tensor, z: torch.Tensor,
               indices: torch.Tensor, decay: float, epsilon: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One EMA step of the codebook (van den Oord et al. 2017, appendix A.1, eqs. 6–8).

    ``N_i ← γ N_i + (1 − γ) n_i`` and ``m_i ← γ m_i + (1 − γ) Σ_{j: k_j = i} z_j``, with ``n_i`` the
    number of rows of ``z`` assigned to code ``i``. The sizes are Laplace-smoothed,
    ``Ñ_i = (N_i + ε) / (n + K ε) · n`` with ``n = Σ_i N_i``, so a code with ``N_i → 0`` never
    divides by zero; then ``e_i = m_i / Ñ_i``.

    ``cluster_size``: ``(K,)``; ``embed_sum``: ``(K, D)``; ``z``: ``(N, D)``; ``indices``: ``(N,)``.
    Returns new ``(cluster_size, embed_sum, codebook)``; inputs are not modified.
    """
    k = cluster_size.shape[0]
    onehot = torch.zeros(len(indices), k, dtype=z.dtype, device=z.device)  # (N, K)
    onehot[torch.arange(len(indices), device=z.device), indices] = 1.0
    n_i = onehot.sum(0)  # (K,)
    sums = onehot.t() @ z  # (K, D)
    new_size = decay * cluster_size + (1.0 - decay) * n_i
    new_sum = decay * embed_sum + (1.0 - decay) * sums
    n = new_size.sum()
    smoothed = (new_size + epsilon) / (n + k * epsilon) * n  # (K,)
    return new_size, new_sum, new_sum / smoothed[:, None]


def kmeans(z: torch.Tensor, k: int, iters: int = 10) -> torch.Tensor:
    """Lloyd's k-means of the rows of ``z`` ``(N, D)`` -> centroids ``(k, D)``.

    Starts from ``k`` distinct random rows (with replacement when ``N < k``, then jittered so
    they differ); an empty cluster keeps its previous centroid. Uses the global RNG.
    """
    n = len(z)
    if n >= k:
        centroids = z[torch.randperm(n, device=z.device)[:k]].clone()
    else:
        centroids = z[torch.randint(n, (k,), device=z.device)].clone()
        centroids += 1e-3 * z.std() * torch.randn_like(centroids)
    for _ in range(iters):
        idx = nearest_code(z, centroids)  # (N,)
        counts = code_counts(idx, k).to(z.dtype)  # (k,)
        sums = torch.zeros_like(centroids).index_add_(0, idx, z)  # (k, D)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


# --- the module -------------------------------------------------------------------------------

class VectorQuantizer(nn.Module):
    """``z_e`` ``(B, D, h, w)`` -> :class:`~vaelab.nn.bottleneck.BottleneckOutput` (``z_q``
    ``(B, D, h, w)``, ``indices`` ``(B, h, w)``, losses ``commitment`` (+ ``codebook`` without EMA),
    stat ``perplexity`` of this batch's code usage); updates its state in training mode (the
    losses and ``z_q`` always use the codebook as it was before the update).

    State: ``codebook`` ``(K, D)`` (a parameter, or a buffer with ``ema``), ``usage`` ``(K,)``
    cumulative code counts over training, ``steps_unused`` ``(K,)`` training steps since each
    code was last chosen, ``initialised`` (k-means done), and with ``ema`` the averages
    ``cluster_size`` ``(K,)`` and ``embed_sum`` ``(K, D)``.
    """

    def __init__(self, config: QuantizerConfig):
        super().__init__()
        self.config = c = config
        codebook = torch.randn(c.codebook_size, c.code_dim)  # replaced by k-means when asked
        if c.ema:
            self.register_buffer("codebook", codebook)
            # start consistent with the codebook: m_i / N_i = e_i, so early steps average from it
            self.register_buffer("cluster_size", torch.ones(c.codebook_size))
            self.register_buffer("embed_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("usage", torch.zeros(c.codebook_size, dtype=torch.long))
        self.register_buffer("steps_unused", torch.zeros(c.codebook_size, dtype=torch.long))
        self.register_buffer("initialised", torch.tensor(not c.kmeans_init))

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of an index map: ``(B, h, w)`` -> ``(B, D, h, w)``."""
        return self.codebook[indices].permute(0, 3, 1, 2).contiguous()

    def forward(self, z_e: torch.Tensor, update: bool | None = None) -> BottleneckOutput:
        """Quantise ``z_e`` ``(B, D, h, w)``. ``update`` (default: ``self.training``) runs the
        training bookkeeping: k-means initialisation, usage counts, EMA step, dead-code restart."""
        update = self.training if update is None else update
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)  # (B·h·w, D)
        if update and not bool(self.initialised):
            self._kmeans_init(flat.detach())
        with torch.no_grad():
            indices = nearest_code(flat, self.codebook)  # (B·h·w,)
        e = self.codebook[indices].reshape(b, h, w, d).permute(0, 3, 1, 2)  # (B, D, h, w)
        losses = {"commitment": commitment_loss(z_e, e, self.config.beta)}
        if not self.config.ema:
            losses["codebook"] = codebook_loss(z_e, e)
        z_q = straight_through(z_e, e)
        counts = code_counts(indices, self.codebook_size)  # (K,)
        if update:
            self._update(flat.detach(), indices, counts)
        return BottleneckOutput(z_q, indices.reshape(b, h, w), losses,
                                {"perplexity": perplexity(counts).float()})  # float32, as the losses

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        centroids = kmeans(flat, self.codebook_size, self.config.kmeans_iters)
        self.codebook.copy_(centroids)
        if self.config.ema:
            self.cluster_size.fill_(1.0)
            self.embed_sum.copy_(centroids)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        """Training-step bookkeeping, after the losses used the current codebook."""
        c = self.config
        self.usage += counts
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        if c.ema:
            size, sums, codebook = ema_update(self.cluster_size, self.embed_sum, flat, indices,
                                              c.decay, c.epsilon)
            self.cluster_size.copy_(size)
            self.embed_sum.copy_(sums)
            self.codebook.copy_(codebook)
        if c.restart_after > 0:
            self.restart_dead_codes(flat)

    @torch.no_grad()
    def restart_dead_codes(self, flat: torch.Tensor) -> torch.Tensor:
        """Re-seed codes unused for ``restart_after`` steps (or, with ``restart_threshold`` and EMA,
        whose EMA cluster size is below it) with random rows of ``flat`` ``(N, D)`` (this batch's
        encoder outputs); returns the re-seeded indices."""
        dead = self.steps_unused >= self.config.restart_after
        if self.config.ema and self.config.restart_threshold > 0:
            dead |= self.cluster_size < self.config.restart_threshold
        dead = torch.nonzero(dead).reshape(-1)
        if len(dead) == 0:
            return dead
        if len(flat) >= len(dead):
            pick = torch.randperm(len(flat), device=flat.device)[:len(dead)]
        else:
            pick = torch.randint(len(flat), (len(dead),), device=flat.device)
        self.codebook[dead] = flat[pick]
        if self.config.ema:
            self.cluster_size[dead] = 1.0  # as at initialisation: m_i / N_i = e_i
            self.embed_sum[dead] = flat[pick]
        self.steps_unused[dead] = 0
        return dead

    def usage_fraction(self) -> float:
        """Fraction of codes chosen at least once during training."""
        return float((self.usage > 0).float().mean())

    def usage_perplexity(self) -> float:
        """Perplexity of the cumulative training usage counts."""
        return float(perplexity(self.usage))

    def extra_repr(self) -> str:
        c = self.config
        return (f"K={c.codebook_size}, D={c.code_dim}, beta={c.beta}, ema={c.ema}, "
                f"restart_after={c.restart_after}, restart_threshold={c.restart_threshold}, kmeans_init={c.kmeans_init}")
