"""Stacked autoencoder: greedy layer-wise pretraining, then end-to-end fine-tuning
(Bengio et al. 2007; Vincent et al. 2010, section 3.5).

Layer ``i`` of the encoder and its mirror in the decoder are first trained as a one-layer
autoencoder of the (frozen) representation below them; then the whole stack is fine-tuned on the
image reconstruction. The trainer runs the phases this model declares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.nn.backbones import activation
from vaelab.registry import register


@dataclass(frozen=True)
class StackedAEConfig(BaseConfig):
    hidden: tuple[int, ...] = (256, 64)  # widths of the stacked layers below the code (784-256-64-32)
    latent_dim: int = 32  # code size (the top layer)
    pretrain_epochs: int = 2  # epochs of greedy pretraining per layer, before the fine-tuning epochs


@register("stacked-ae", StackedAEConfig, family="classic",
          tiny={"image_shape": (1, 8, 8), "hidden": (16,), "latent_dim": 4, "pretrain_epochs": 1},
          description="Stacked autoencoder: layers pretrained greedily one at a time, then fine-tuned together")
class StackedAutoencoder(AutoEncoder):
    def __init__(self, config: StackedAEConfig):
        super().__init__(config)
        if config.backbone != "mlp":
            raise ValueError("stacked-ae is an MLP model; set backbone=mlp")
        sizes = [math.prod(config.image_shape), *config.hidden, config.latent_dim]
        self.sizes = sizes
        self.enc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dec_layers = nn.ModuleList(nn.Linear(b, a) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = activation(config.activation)
        self.phase = "finetune"

    @property
    def depth(self) -> int:
        return len(self.enc_layers)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(latent="continuous", variational=False, conditional=False,
                         latent_shapes=((self.config.latent_dim,),), likelihood=self.config.likelihood)

    # layer-wise pieces ------------------------------------------------------------------------
    def up(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Encoder layer ``i``; the top layer (the code) is linear."""
        h = self.enc_layers[i](h)
        return h if i == self.depth - 1 else self.act(h)

    def down(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Decoder layer ``i`` (mirror of encoder layer ``i``); layer 0 outputs image logits/means."""
        h = self.dec_layers[i](h)
        return h if i == 0 else self.act(h)

    # the contract -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y=None) -> Latent:
        h = x.flatten(1)
        for i in range(self.depth):
            h = self.up(h, i)
        return Latent(z=h)

    def decode_params(self, z, y=None) -> torch.Tensor:
        h = z
        for i in reversed(range(self.depth)):
            h = self.down(h, i)
        return h.reshape(-1, *self.config.image_shape)

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        if self.phase == "finetune":
            recon = self.recon_nll(self.decode_params(self.encode(x).z), x).mean()
            return LossOutput(recon, {"recon": recon, "total": recon})
        level = int(self.phase.split("-")[1])
        h = x.flatten(1)
        with torch.no_grad():  # layers below are frozen during this layer's pretraining
            for i in range(level):
                h = self.up(h, i)
        out = self.down(self.up(h, level), level)
        if level == 0:
            recon = self.recon_nll(out.reshape(x.shape), x).mean()
        else:  # reconstruct the hidden representation below: squared error per example
            recon = F.mse_loss(out, h, reduction="none").sum(1).mean()
        return LossOutput(recon, {"recon": recon, "total": recon})

    # training hooks ---------------------------------------------------------------------------
    def training_phases(self, epochs: int) -> list[tuple[str, int]]:
        pre = [(f"pretrain-{i}", self.config.pretrain_epochs) for i in range(self.depth)]
        return [p for p in pre if p[1] > 0] + [("finetune", epochs)]

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        if self.phase == "finetune":
            return {"model": list(self.parameters())}
        level = int(self.phase.split("-")[1])
        return {"model": [*self.enc_layers[level].parameters(), *self.dec_layers[level].parameters()]}
