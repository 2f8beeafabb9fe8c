"""The convolutional encoder/decoder pair of the grid-latent models: image -> a grid of vectors
-> image.

The VQ-VAE (van den Oord et al. 2017, section 4.1) and the grid dVAE (the idea of DALL-E's dVAE,
Ramesh et al. 2021) use the same pair and differ only in the bottleneck between them
(:class:`vaelab.models.grid.GridAutoEncoder`). Each cell of the grid sees a patch of the image
through the stride-2 :class:`~vaelab.nn.backbones.ConvTrunk`; plain 3×3 convolutions and
residual blocks widen that view at the grid's resolution, and a 1×1 convolution gives the
bottleneck's input channels per cell (``D`` for vector quantisation, ``K`` logits for the
Gumbel-softmax). The decoder mirrors it from the bottleneck's output channels.

Both are ``nn.Sequential`` so their layers keep the indices (``encoder.0``, ``encoder.1`` …)
under which checkpoints store their weights:

- encoder: ``ConvTrunk``, ``conv_layers`` × (3×3 conv, act), ``ResidualStack`` if
  ``res_blocks``, 1×1 conv;
- decoder: 3×3 conv, ``ResidualStack`` if ``res_blocks`` else act, ``conv_layers`` × (3×3 conv,
  act), ``ConvTrunkDecoder``.
"""

from __future__ import annotations

from torch import nn

from vaelab.nn.backbones import ConvTrunk, ConvTrunkDecoder, ResidualStack, activation


def _plain_convs(channels: int, n: int, act: str) -> list[nn.Module]:
    """``n`` × (3×3 conv, act) at constant width and resolution."""
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), activation(act)]
    return layers


class GridEncoder(nn.Sequential):
    """``(B, C, H, W) -> (B, ch[-1], h, w) -> (B, out_channels, h, w)`` with ``h = H / 2^len(ch)``."""

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...], act: str,
                 out_channels: int, conv_layers: int = 0, res_blocks: int = 0):
        ch = channels[-1]
        super().__init__(ConvTrunk(image_shape[0], channels, act),
                         *_plain_convs(ch, conv_layers, act),
                         *[ResidualStack(ch, res_blocks, act)] * bool(res_blocks),
                         nn.Conv2d(ch, out_channels, 1))


class GridDecoder(nn.Sequential):
    """``(B, in_channels, h, w) -> (B, ch[-1], h, w) -> (B, C, H, W)`` logits / means."""

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...], act: str,
                 in_channels: int, conv_layers: int = 0, res_blocks: int = 0):
        ch = channels[-1]
        super().__init__(nn.Conv2d(in_channels, ch, 3, padding=1),
                         ResidualStack(ch, res_blocks, act) if res_blocks else activation(act),
                         *_plain_convs(ch, conv_layers, act),
                         ConvTrunkDecoder(image_shape[0], channels, act))
