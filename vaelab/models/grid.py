"""The grid autoencoder: one encoder/decoder pair with a slot for a discrete bottleneck.

Image ``(B, C, H, W)`` -> :class:`~vaelab.nn.grid.GridEncoder` -> one vector per cell of an
``h × w`` grid -> ``quantizer`` -> ``z`` ``(B, D, h, w)`` -> :class:`~vaelab.nn.grid.GridDecoder`
-> image. The quantiser is a vector quantiser (:class:`vaelab.nn.quantize.VectorQuantizer`, the
VQ-VAE and VQ-GAN) or a Gumbel-softmax one (:class:`vaelab.nn.gumbel.GumbelQuantizer`, the grid
dVAE); both return :class:`vaelab.nn.bottleneck.BottleneckOutput`, so a model built on this class
only chooses its bottleneck and writes its loss (the swappable bottleneck of Karpathy's
deep-vector-quantization, which also calls both ``quantizer``).

No ``@register`` line: this is a base for the registered variants, not a variant.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from vaelab.models.base import AutoEncoder, BaseConfig
from vaelab.models.code_prior import CodePriorMixin
from vaelab.nn.backbones import conv_grid
from vaelab.nn.grid import GridDecoder, GridEncoder


def check_grid_backbone(config: BaseConfig) -> None:
    """Grid-latent models are always convolutional: refuse a config that asks for another backbone."""
    if config.backbone != "conv":
        raise ValueError("grid-latent models need backbone=conv: the codes form a spatial grid")


class GridAutoEncoder(CodePriorMixin, AutoEncoder):
    """``encoder`` -> ``quantizer`` -> ``decoder`` over the code grid ``self.grid`` ``(h, w)``.

    ``make_quantizer`` builds the bottleneck (called between the encoder and the decoder, so the
    seeded initialisation draws in the order the layers sit); ``encoder_out`` is its input
    channels per cell and ``decoder_in`` the channels of its ``z_q``. ``conv_layers`` and
    ``res_blocks`` shape the pair (:mod:`vaelab.nn.grid`). Subclasses write ``encode``, ``loss``
    and ``info``.
    """

    def __init__(self, config: BaseConfig, make_quantizer: Callable[[], nn.Module],
                 encoder_out: int, decoder_in: int, conv_layers: int = 0, res_blocks: int = 0):
        super().__init__(config)
        check_grid_backbone(config)
        c = config
        self.grid = conv_grid(c.image_shape, len(c.channels))  # (h, w)
        # (B, C, H, W) -> (B, encoder_out, h, w)
        self.encoder = GridEncoder(c.image_shape, c.channels, c.activation, encoder_out,
                                   conv_layers, res_blocks)
        self.quantizer = make_quantizer()
        # (B, decoder_in, h, w) -> (B, C, H, W) logits / means
        self.decoder = GridDecoder(c.image_shape, c.channels, c.activation, decoder_in,
                                   conv_layers, res_blocks)

    def decode_params(self, z, y=None) -> torch.Tensor:
        return self.decoder(z)

    def latent_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.lookup(indices)  # (B, h, w) -> (B, D, h, w)

    def codebooks(self) -> list[torch.Tensor | None]:
        return [getattr(self.quantizer, "codebook", None)]
