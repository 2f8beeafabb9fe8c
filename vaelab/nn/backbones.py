"""Encoder and decoder backbones for small images, chosen by config.

Two kinds, for any ``(C, H, W)`` whose sides halve cleanly once per conv stage
(1×28×28 MNIST-sized: 28→14→7; 1×8×8 scikit-learn digits: 8→4→2):

- ``mlp``: flatten, hidden layers, a linear head — the seeds' 784-…-d networks;
- ``conv``: stride-2 4×4 convolutions (one per entry of ``channels``), then a linear head;
  the decoder mirrors it with transposed convolutions.

``ConvTrunk``/``ConvTrunkDecoder`` are exposed on their own for models whose latent is a spatial
grid (VQ-VAE, grid dVAE). Encoders take an optional ``cond`` vector (a one-hot label for
conditional models) concatenated to the flattened input (MLP) or flattened features (conv).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def mlp(sizes: list[int], act: str, final_act: str | None = None) -> nn.Sequential:
    """Linear layers ``sizes[0] -> … -> sizes[-1]`` with ``act`` between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        if not last:
            layers.append(activation(act))
        elif final_act:
            layers.append(activation(final_act))
    return nn.Sequential(*layers)


def conv_grid(image_shape: tuple[int, int, int], n_stages: int) -> tuple[int, int]:
    """Spatial size after ``n_stages`` stride-2 stages; raises if a side does not halve evenly."""
    _, h, w = image_shape
    for _ in range(n_stages):
        if h % 2 or w % 2:
            raise ValueError(f"image {image_shape} does not halve evenly {n_stages} times; "
                             "use fewer conv channels or the mlp backbone")
        h, w = h // 2, w // 2
    return h, w


class ConvTrunk(nn.Module):
    """``(B, C, H, W) -> (B, channels[-1], H / 2^n, W / 2^n)``."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], act: str):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), activation(act)]
            prev = ch
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResidualStack(nn.Module):
    """``n`` residual blocks ``x + conv1x1(act(conv3x3(act(x))))`` at constant resolution, then an
    activation (van den Oord et al. 2017, section 4.1). Each block widens the receptive field by
    two cells of the grid; ``n = 0`` is the identity."""

    def __init__(self, channels: int, n: int, act: str, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(1, channels // 2)
        self.blocks = nn.ModuleList(
            nn.Sequential(activation(act), nn.Conv2d(channels, hidden, 3, padding=1), activation(act),
                          nn.Conv2d(hidden, channels, 1)) for _ in range(n))
        self.out = activation(act) if n else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class ConvTrunkDecoder(nn.Module):
    """``(B, channels[-1], h, w) -> (B, out_channels, h·2^n, w·2^n)``; no final activation."""

    def __init__(self, out_channels: int, channels: tuple[int, ...], act: str):
        super().__init__()
        rev = list(reversed(channels))
        layers: list[nn.Module] = []
        for i, ch in enumerate(rev):
            nxt = rev[i + 1] if i + 1 < len(rev) else out_channels
            layers.append(nn.ConvTranspose2d(ch, nxt, 4, stride=2, padding=1))
            if i + 1 < len(rev):
                layers.append(activation(act))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class Encoder(nn.Module):
    """Image (and optional condition) -> vector of ``out_dim``: ``(B, C, H, W) -> (B, out_dim)``."""

    def __init__(self, image_shape, out_dim: int, backbone: str = "mlp",
                 hidden: tuple[int, ...] = (512, 256), channels: tuple[int, ...] = (32, 64),
                 act: str = "relu", cond_dim: int = 0, final_act: str | None = None):
        super().__init__()
        self.backbone = backbone
        if backbone == "mlp":
            self.trunk = nn.Flatten()
            feat = math.prod(image_shape)
            self.head = mlp([feat + cond_dim, *hidden, out_dim], act, final_act)
        elif backbone == "conv":
            h, w = conv_grid(image_shape, len(channels))
            self.trunk = nn.Sequential(ConvTrunk(image_shape[0], channels, act), nn.Flatten())
            feat = channels[-1] * h * w
            self.head = mlp([feat + cond_dim, *hidden, out_dim], act, final_act)
        else:
            raise ValueError(f"unknown backbone {backbone!r}; choose mlp or conv")

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        f = self.trunk(x)
        if cond is not None:
            f = torch.cat([f, cond], 1)
        return self.head(f)


class Decoder(nn.Module):
    """Vector (and optional condition) -> image-shaped decoder output ``(B, C, H, W)``.

    The output is the likelihood's parameter (logits or means), with no final activation.
    """

    def __init__(self, image_shape, in_dim: int, backbone: str = "mlp",
                 hidden: tuple[int, ...] = (256, 512), channels: tuple[int, ...] = (32, 64),
                 act: str = "relu", cond_dim: int = 0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        if backbone == "mlp":
            self.head = mlp([in_dim + cond_dim, *hidden, math.prod(image_shape)], act)
            self.trunk = nn.Unflatten(1, self.image_shape)
        elif backbone == "conv":
            h, w = conv_grid(image_shape, len(channels))
            grid = (channels[-1], h, w)
            # the head ends in an activation: the trunk's first layer expects features
            self.head = mlp([in_dim + cond_dim, *hidden, math.prod(grid)], act, final_act=act)
            self.trunk = nn.Sequential(nn.Unflatten(1, grid),
                                       ConvTrunkDecoder(image_shape[0], channels, act))
        else:
            raise ValueError(f"unknown backbone {backbone!r}; choose mlp or conv")

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], 1)
        return self.trunk(self.head(z))
