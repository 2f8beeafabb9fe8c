"""The gated PixelCNN: an autoregressive network over code-index maps (van den Oord, Kalchbrenner,
Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image Generation with PixelCNN Decoders",
NeurIPS 2016).

- a **vertical stack** (masked ``k×k`` convolutions that see the current row and the rows
  above) and a **horizontal stack** (masked ``1×k`` convolutions that see the current row to
  the left); the vertical stack reaches the horizontal one only after a one-row shift down, so
  position ``(i, j)`` sees exactly the positions before it in raster order, with no blind spot
  (paper, section 2.2);
- **gated units** ``tanh(W_f * x + V_f c) ⊙ σ(W_g * x + V_g c)`` in both stacks (paper, eq. 2–4),
  where ``c`` is an optional conditioning map: for VQ-VAE-2's bottom prior, the top level's
  indices, embedded, upsampled to the bottom grid and added inside every gate;
- residual connections on the horizontal stack after the first layer.

Shape conventions: an index map is ``(B, h, w)``; a one-dimensional index shape ``(N,)`` (a
Gumbel-softmax VAE's ``N`` categorical variables) is treated as a ``1×N`` grid. A
:class:`CodePrior` holds one :class:`GatedPixelCNN` per level of a model, in the order of
``Latent.indices`` (bottom first, top last); level ``l`` is conditioned on level ``l + 1``.
Training, saving and attaching a prior to a model live in :mod:`vaelab.prior`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# --- configs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PriorConfig:
    """The architecture knobs a user picks; the per-level shapes come from the model."""

    channels: int = 64  # C: feature channels of both stacks (each gated conv outputs 2C)
    layers: int = 5  # gated layers; row i sees rows i-1 … i-layers-1, and ~layers·(k//2) columns left in its own row
    kernel_size: int = 3  # k (odd): vertical convs are k×k (masked to the upper half), horizontal 1×k


@dataclass(frozen=True)
class PixelCNNConfig:
    """One level's PixelCNN, fully specified (this is what ``prior/config.json`` stores)."""

    codebook_size: int  # K: categories per position (the level's codebook size)
    index_shape: tuple[int, ...]  # the level's index shape as in ModelInfo.index_shapes: (h, w) or (N,)
    channels: int = 64  # C: feature channels of both stacks
    layers: int = 5  # number of gated layers (the first uses the type-A mask that hides the current position)
    kernel_size: int = 3  # k (odd): vertical convs k×k masked to rows ≤ centre, horizontal 1×k masked to the left
    cond_codebook_size: int = 0  # K of the conditioning level (the level above); 0 = unconditioned
    cond_index_shape: tuple[int, ...] | None = None  # index shape of the conditioning level, or None

    @property
    def grid(self) -> tuple[int, int]:
        return as_grid(self.index_shape)


def as_grid(shape: tuple[int, ...]) -> tuple[int, int]:
    """An index shape as a 2-D grid: ``(h, w)`` stays, ``(N,)`` becomes ``(1, N)``."""
    shape = tuple(shape)
    if len(shape) == 1:
        return (1, shape[0])
    if len(shape) == 2:
        return shape
    raise ValueError(f"index shape {shape} is neither (h, w) nor (N,)")


# --- building blocks --------------------------------------------------------------------------

class MaskedConv2d(nn.Module):
    """A 'same'-size convolution whose ``k_h×k_w`` kernel is multiplied by a fixed 0/1 mask, so
    each output sees only the inputs the mask allows.

    Only the mask's bounding box is stored and computed (a ``2×3`` kernel for the ``3×3``
    vertical mask, ``1×1`` for the ``1×3`` type-A horizontal one), with the padding shifted so
    outputs stay aligned: the same function as the full masked kernel, with no multiplications
    by zero. The mask of that box is a buffer, saved with the weights.
    """

    def __init__(self, cin: int, cout: int, mask: torch.Tensor):
        super().__init__()
        kh, kw = mask.shape
        rows = torch.nonzero(mask.any(1)).flatten()
        cols = torch.nonzero(mask.any(0)).flatten()
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        # output (i, j) reads input (i − kh//2 + r, j − kw//2 + c) for r, c in the box; F.pad
        # takes (left, right, top, bottom) and crops where a value is negative
        self.pad = (kw // 2 - c0, c1 - kw // 2, kh // 2 - r0, r1 - kh // 2)
        box = mask[r0:r1 + 1, c0:c1 + 1].to(torch.float32).clone()  # (bh, bw), its own storage
        self.conv = nn.Conv2d(cin, cout, tuple(box.shape))
        self.register_buffer("mask", box[None, None])  # (1, 1, bh, bw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, cin, h, w) -> (B, cout, h, w)``."""
        return F.conv2d(F.pad(x, self.pad), self.conv.weight * self.mask, self.conv.bias)


def vertical_mask(k: int) -> torch.Tensor:
    """``(k, k)``: rows above the centre and the centre row (all columns). The vertical stack
    may see its own row; it is shifted down one row before it reaches the horizontal stack."""
    mask = torch.zeros(k, k)
    mask[: k // 2 + 1] = 1
    return mask


def horizontal_mask(k: int, include_centre: bool) -> torch.Tensor:
    """``(1, k)``: the columns left of the centre, plus the centre for type-B layers."""
    mask = torch.zeros(1, k)
    mask[0, : k // 2 + (1 if include_centre else 0)] = 1
    return mask


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` moved down one row (zeros in row 0): row ``i`` then holds row ``i − 1``."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def gate(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2C, h, w) -> (B, C, h, w)``: ``tanh(a) ⊙ σ(b)`` (paper, eq. 2)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of both stacks (paper, figure 2). ``first`` uses the type-A horizontal mask
    (the current position hidden) and has no residual connection."""

    def __init__(self, channels: int, kernel_size: int, first: bool, conditioned: bool):
        super().__init__()
        c = channels
        self.first = first
        self.vertical = MaskedConv2d(c, 2 * c, vertical_mask(kernel_size))  # (B, C, h, w) -> (B, 2C, h, w)
        self.vertical_to_horizontal = nn.Conv2d(2 * c, 2 * c, 1)
        self.horizontal = MaskedConv2d(c, 2 * c, horizontal_mask(kernel_size, include_centre=not first))
        self.horizontal_out = nn.Conv2d(c, c, 1)
        # V_f, V_g of eq. 4: the conditioning map enters every gate of both stacks
        self.cond_vertical = nn.Conv2d(c, 2 * c, 1) if conditioned else None
        self.cond_horizontal = nn.Conv2d(c, 2 * c, 1) if conditioned else None

    def forward(self, v: torch.Tensor, h: torch.Tensor, cond: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``v``, ``h``: ``(B, C, hh, ww)``; ``cond``: ``(B, C, hh, ww)`` or None."""
        v_pre = self.vertical(v)  # (B, 2C, hh, ww): row i sees rows ≤ i
        h_pre = self.horizontal(h) + self.vertical_to_horizontal(shift_down(v_pre))  # rows < i reach row i
        if cond is not None:
            v_pre = v_pre + self.cond_vertical(cond)
            h_pre = h_pre + self.cond_horizontal(cond)
        h_out = self.horizontal_out(gate(h_pre))  # (B, C, hh, ww)
        return gate(v_pre), h_out if self.first else h + h_out


class GatedPixelCNN(nn.Module):
    """``p(indices | cond) = Π_positions p(index_p | indices before p in raster order, cond)``
    for one level's index maps ``(B, h, w)`` with ``K`` categories."""

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = c = config
        if c.kernel_size % 2 == 0 or c.kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and ≥ 3, got {c.kernel_size}")
        if c.layers < 1:
            raise ValueError(f"a PixelCNN needs at least one layer, got {c.layers}")
        conditioned = c.cond_codebook_size > 0
        if conditioned and c.cond_index_shape is None:
            raise ValueError("a conditioned level needs cond_index_shape")
        self.embed = nn.Embedding(c.codebook_size, c.channels)  # index -> (C,)
        self.layers = nn.ModuleList(GatedLayer(c.channels, c.kernel_size, i == 0, conditioned)
                                    for i in range(c.layers))
        # (B, C, h, w) -> (B, K, h, w) logits
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c.channels, c.channels, 1), nn.ReLU(),
                                  nn.Conv2d(c.channels, c.codebook_size, 1))
        if conditioned:
            self.cond_embed = nn.Embedding(c.cond_codebook_size, c.channels)
            # after nearest upsampling to this level's grid; the whole conditioning map is
            # known, so this convolution needs no mask
            self.cond_net = nn.Sequential(nn.Conv2d(c.channels, c.channels, 3, padding=1), nn.ReLU())
        else:
            self.cond_embed = self.cond_net = None

    @property
    def conditioned(self) -> bool:
        return self.cond_net is not None

    def condition(self, cond: torch.Tensor | None) -> torch.Tensor | None:
        """Conditioning indices ``(B, *cond_index_shape)`` -> features ``(B, C, h, w)`` on this
        level's grid (embed, nearest-upsample, one 3×3 convolution); None when unconditioned."""
        if not self.conditioned:
            if cond is not None:
                raise ValueError("this level is unconditioned: pass cond=None")
            return None
        if cond is None:
            raise ValueError("this level is conditioned on the level above: pass its indices")
        b = cond.shape[0]
        grid = cond.reshape(b, *as_grid(self.config.cond_index_shape))  # (B, h', w')
        e = self.cond_embed(grid).permute(0, 3, 1, 2)  # (B, C, h', w')
        e = F.interpolate(e, size=self.config.grid, mode="nearest")  # (B, C, h, w)
        return self.cond_net(e)

    def forward_embedded(self, x: torch.Tensor, cond_features: torch.Tensor | None = None) -> torch.Tensor:
        """Embedded input ``(B, C, h, w)`` -> logits ``(B, K, h, w)`` (exposed for gradient checks)."""
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h, cond_features)
        return self.head(h)

    def logits_from_grid(self, grid: torch.Tensor, cond_features: torch.Tensor | None = None) -> torch.Tensor:
        """Index grid ``(B, h, w)`` -> logits ``(B, K, h, w)``."""
        return self.forward_embedded(self.embed(grid).permute(0, 3, 1, 2), cond_features)

    def forward(self, indices: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Indices ``(B, *index_shape)`` (and conditioning indices) -> logits ``(B, K, h, w)``."""
        grid = indices.reshape(indices.shape[0], *self.config.grid)
        return self.logits_from_grid(grid, self.condition(cond))

    def nll(self, indices: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood in nats per code map, ``(B,)`` (summed over positions)."""
        grid = indices.reshape(indices.shape[0], *self.config.grid)  # (B, h, w)
        logits = self.logits_from_grid(grid, self.condition(cond))  # (B, K, h, w)
        return F.cross_entropy(logits, grid, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0, device: torch.device | str | None = None) -> torch.Tensor:
        """Ancestral sampling in raster order -> indices ``(n, *index_shape)``.

        Each position draws from ``softmax(logits / temperature)``; ``temperature <= 0`` takes
        the argmax (deterministic). Logits of row ``i`` depend only on rows ``≤ i``, so each
        step runs the network on the rows filled so far (rows below would be masked anyway).
        """
        device = device or next(self.parameters()).device
        hh, ww = self.config.grid
        cond_features = self.condition(None if cond is None else cond.to(device))  # (n, C, h, w)
        grid = torch.zeros(n, hh, ww, dtype=torch.long, device=device)
        for i in range(hh):
            c_rows = None if cond_features is None else cond_features[:, :, : i + 1]
            for j in range(ww):
                logits = self.logits_from_grid(grid[:, : i + 1], c_rows)[:, :, i, j]  # (n, K)
                grid[:, i, j] = draw(logits, temperature, generator)
        return grid.reshape(n, *self.config.index_shape)


def draw(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One category per row of ``logits`` ``(n, K)``: a sample of ``softmax(logits / T)``, or
    the argmax when ``T <= 0`` (the limit ``T → 0``)."""
    if temperature <= 0:
        return logits.argmax(1)
    probs = torch.softmax(logits.float() / temperature, dim=1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# --- one prior per level ----------------------------------------------------------------------

def _levels(indices) -> tuple[torch.Tensor, ...]:
    return indices if isinstance(indices, tuple) else (indices,)


class CodePrior(nn.Module):
    """One :class:`GatedPixelCNN` per level, ordered like ``Latent.indices`` (bottom first, top
    last); level ``l`` is conditioned on the indices of level ``l + 1``."""

    def __init__(self, configs: tuple[PixelCNNConfig, ...]):
        super().__init__()
        self.configs = tuple(configs)
        self.levels = nn.ModuleList(GatedPixelCNN(c) for c in self.configs)

    @classmethod
    def for_model(cls, model, config: PriorConfig = PriorConfig()) -> "CodePrior":
        """A fresh prior shaped for ``model``'s index maps (``info.index_shapes``, ``codebook_size``)."""
        info = model.info
        if info.latent != "discrete" or not info.index_shapes or not info.codebook_size:
            raise TypeError(f"{type(model).__name__} has no discrete codes to fit a prior to")
        shapes = tuple(tuple(s) for s in info.index_shapes)
        k = info.codebook_size
        configs = []
        for level, shape in enumerate(shapes):
            above = shapes[level + 1] if level + 1 < len(shapes) else None
            configs.append(PixelCNNConfig(
                codebook_size=k, index_shape=shape, channels=config.channels, layers=config.layers,
                kernel_size=config.kernel_size, cond_codebook_size=k if above else 0,
                cond_index_shape=above))
        return cls(tuple(configs))

    @property
    def index_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(c.index_shape) for c in self.configs)

    def nll_per_level(self, indices) -> list[torch.Tensor]:
        """Nats per code map for each level, a list of ``(B,)`` (bottom first)."""
        levels = _levels(indices)
        out = []
        for level, net in enumerate(self.levels):
            cond = levels[level + 1] if net.conditioned else None
            out.append(net.nll(levels[level], cond))
        return out

    def nll(self, indices) -> torch.Tensor:
        """``−log p(indices)`` in nats per image, all levels, ``(B,)``."""
        return torch.stack(self.nll_per_level(indices)).sum(0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               device: torch.device | str | None = None):
        """Top level first, then each level below conditioned on the one above. Returns indices
        as ``Latent.indices`` has them: one tensor, or a tuple bottom→top."""
        drawn: list[torch.Tensor | None] = [None] * len(self.levels)
        for level in reversed(range(len(self.levels))):
            net = self.levels[level]
            cond = drawn[level + 1] if net.conditioned else None
            drawn[level] = net.sample(n, cond, generator, temperature, device)
        return drawn[0] if len(drawn) == 1 else tuple(drawn)
