"""Discriminators for adversarial autoencoders: real-vs-generated critics on images.

- :class:`ImageDiscriminator`: one logit per image, the DCGAN-style critic (Radford et al. 2016:
  stride-2 convolutions, leaky ReLU, no pooling) used by the VAE-GAN (Larsen et al. 2016), whose
  last hidden layer also gives the "learned similarity" features of that paper.
- :class:`PatchDiscriminator`: a grid of logits, each judging one receptive-field patch — the
  PatchGAN of Isola et al. 2017 (pix2pix), as used by VQ-GAN (Esser et al. 2021). It penalises
  local texture and blur rather than global layout, which the reconstruction loss already covers.

Both take images ``(B, C, H, W)`` in [0, 1] and return raw logits, for the BCE-with-logits losses
in :mod:`vaelab.losses` (``gan_generator_loss``, ``gan_discriminator_loss``). ``forward(x,
return_features=True)`` also returns the last hidden activations, for feature-matching terms.
They use no batch norm, so a discriminator's output for an image never depends on the rest of
the batch (real and fake batches can be scored separately).
"""

from __future__ import annotations

import torch
from torch import nn

from vaelab.nn.backbones import ConvTrunk, conv_grid

DISCRIMINATORS: dict[str, type] = {}


def _register(name: str):
    def decorate(cls):
        DISCRIMINATORS[name] = cls
        return cls
    return decorate


@_register("image")
class ImageDiscriminator(nn.Module):
    """``(B, C, H, W) -> (B, 1)`` logits: stride-2 4×4 conv stages, then a linear layer.

    Features (``return_features=True``): the flattened last conv stage, ``(B, channels[-1]·h·w)``.
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...] = (32, 64),
                 act: str = "leaky_relu"):
        super().__init__()
        h, w = conv_grid(image_shape, len(channels))
        self.trunk = ConvTrunk(image_shape[0], channels, act)  # (B, C, H, W) -> (B, channels[-1], h, w)
        self.head = nn.Linear(channels[-1] * h * w, 1)  # (B, channels[-1]·h·w) -> (B, 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.trunk(x).flatten(1)  # (B, F)
        logits = self.head(features)  # (B, 1)
        return (logits, features) if return_features else logits


@_register("patch")
class PatchDiscriminator(nn.Module):
    """``(B, C, H, W) -> (B, 1, H / 2^n, W / 2^n)`` logits, one per patch: stride-2 4×4 conv
    stages, then a stride-1 3×3 convolution to one channel (no linear layer, so it runs on any
    image size whose sides halve ``n`` times).

    Each logit sees a square of :attr:`receptive_field` pixels (18 for two stages: 28×28 MNIST
    gets a 7×7 grid of 18×18 patches). Features: the last conv stage, ``(B, channels[-1], h, w)``.
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...] = (32, 64),
                 act: str = "leaky_relu"):
        super().__init__()
        conv_grid(image_shape, len(channels))  # raises early on sides that do not halve
        self.n_stages = len(channels)
        self.trunk = ConvTrunk(image_shape[0], channels, act)
        self.head = nn.Conv2d(channels[-1], 1, 3, padding=1)

    @property
    def receptive_field(self) -> int:
        """Side in input pixels of the square each output logit depends on."""
        rf, jump = 1, 1
        for _ in range(self.n_stages):  # 4×4 kernels, stride 2
            rf, jump = rf + 3 * jump, jump * 2
        return rf + 2 * jump  # the final 3×3, stride 1

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.trunk(x)  # (B, channels[-1], h, w)
        logits = self.head(features)  # (B, 1, h, w)
        return (logits, features) if return_features else logits


def make_discriminator(kind: str, image_shape, channels: tuple[int, ...] = (32, 64),
                       act: str = "leaky_relu") -> nn.Module:
    """A discriminator by name: ``image`` or ``patch``."""
    try:
        cls = DISCRIMINATORS[kind]
    except KeyError:
        raise ValueError(f"unknown discriminator {kind!r}; choose one of {sorted(DISCRIMINATORS)}") from None
    return cls(tuple(image_shape), tuple(channels), act)
