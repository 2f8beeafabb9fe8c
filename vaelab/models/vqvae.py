"""Vector-quantised autoencoders: VQ-VAE (van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete
Representation Learning", 2017) and its two-level version VQ-VAE-2 (Razavi, van den Oord &
Vinyals, "Generating Diverse High-Fidelity Images with VQ-VAE-2", 2019).

The encoder maps an image to a grid of ``D``-vectors, each replaced by its nearest codebook entry
(:class:`vaelab.nn.quantize.VectorQuantizer`); the decoder sees only the codes. The VQ-VAE is the
grid autoencoder (:class:`vaelab.models.grid.GridAutoEncoder`) with this quantiser in its slot: the
grid dVAE is the same pair with a Gumbel-softmax quantiser. The loss is
``recon + ‖sg[z_e] − e‖² + β ‖z_e − sg[e]‖²`` (paper, eq. 3; the codebook term is dropped when
the codebook follows EMAs). The models have no prior of their own: ``can_sample`` is False until
a code prior (:mod:`vaelab.prior`, a gated PixelCNN over the index maps) is attached, which
decodes its samples through ``latent_from_indices``.

Shapes (MNIST 1×28×28 with ``channels=(32, 64)``; scikit-learn digits 1×8×8 in brackets):

- vq-vae: code grid 7×7 (tiny, ``channels=(4, 8)``: 2×2);
- vq-vae-2: bottom grid 7×7, top grid 4×4 (tiny, ``channels=(8,)``: bottom 4×4, top 2×2).
  The top encoder is a 3×3 stride-2 convolution with padding 1, so ``h_top = ceil(h_bottom / 2)``;
  the way back is a 3×3 stride-2 transposed convolution, which gives ``2·h_top − 1`` and needs
  ``output_padding = h_bottom − (2·h_top − 1)`` (0 for 7 ← 4, 1 for 4 ← 2) to land on the
  bottom grid again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.models.code_prior import CodePriorMixin
from vaelab.models.grid import GridAutoEncoder, check_grid_backbone
from vaelab.nn.backbones import ConvTrunk, activation, conv_grid
from vaelab.nn.bottleneck import BottleneckOutput
from vaelab.nn.grid import GridDecoder
from vaelab.nn.quantize import QuantizerConfig, VectorQuantizer
from vaelab.registry import register


@dataclass(frozen=True)
class VQVAEConfig(BaseConfig):
    backbone: str = "conv"  # always conv: the latent is the trunk's spatial grid
    hidden: tuple[int, ...] = ()  # unused: there is no MLP head, the codes are the grid itself
    channels: tuple[int, ...] = (32, 64)  # stride-2 conv stages of the trunk; 28×28 -> 7×7 code grid
    latent_dim: int = 64  # D: dimension of each code vector
    codebook_size: int = 512  # K: codes per codebook (one codebook per level)
    beta: float = 0.25  # β: weight of the commitment term
    ema: bool = True  # codebook learned by exponential moving averages instead of the codebook term
    decay: float = 0.99  # γ: EMA decay
    epsilon: float = 1e-5  # Laplace smoothing of the EMA cluster sizes
    restart: bool = True  # re-seed dead codes from recent encoder outputs
    restart_after: int = 100  # training steps without use after which a code counts as dead
    restart_threshold: float = 0.0  # also restart codes whose EMA usage per step falls below this (0 = off)
    kmeans_init: bool = True  # codebook starts as k-means centroids of the first batch's encoder outputs
    kmeans_iters: int = 10  # Lloyd iterations of that k-means
    res_blocks: int = 0  # residual 3×3 blocks after the encoder's trunk and before the decoder's
    # upsampling (the paper uses 2): a wider view per grid cell, so fewer cells see only background

    def quantizer_config(self) -> QuantizerConfig:
        return QuantizerConfig(codebook_size=self.codebook_size, code_dim=self.latent_dim,
                               beta=self.beta, ema=self.ema, decay=self.decay,
                               epsilon=self.epsilon,
                               restart_after=self.restart_after if self.restart else 0,
                               restart_threshold=self.restart_threshold,
                               kmeans_init=self.kmeans_init, kmeans_iters=self.kmeans_iters)


@dataclass(frozen=True)
class VQVAE2Config(VQVAEConfig):
    pass  # same knobs; both levels share K and D, each level has its own codebook


TINY = {"image_shape": (1, 8, 8), "channels": (4, 8), "latent_dim": 4, "codebook_size": 16,
        "restart_after": 2, "kmeans_iters": 3}
TINY2 = {**TINY, "channels": (8,)}  # one stage: 8×8 -> bottom 4×4 -> top 2×2


def _loss_terms(recon: torch.Tensor, levels: dict[str, BottleneckOutput]) -> dict[str, torch.Tensor]:
    """Sum the levels' VQ terms onto the reconstruction term; stats (perplexity) per level."""
    terms = {"recon": recon}
    for q in levels.values():
        for name, value in q.losses.items():
            terms[name] = terms[name] + value if name in terms else value
    terms["total"] = sum(terms.values())
    for level, q in levels.items():
        terms.update({f"{name}{level}": value for name, value in q.stats.items()})
    return terms


@register("vq-vae", VQVAEConfig, family="discrete", tiny=TINY,
          description="VQ-VAE: each cell of a conv feature grid is snapped to the nearest of K learned codes")
class VQVAE(GridAutoEncoder):
    """The grid autoencoder with a vector quantiser in its slot: encoder ``(B, C, H, W) ->
    (B, D, h, w)`` (trunk, residual blocks when ``res_blocks``, 1×1 conv), nearest codes, decoder
    (3×3 conv, residual blocks or an activation, transposed trunk)."""

    def __init__(self, config: VQVAEConfig):
        super().__init__(config, lambda: VectorQuantizer(config.quantizer_config()),
                         encoder_out=config.latent_dim, decoder_in=config.latent_dim,
                         res_blocks=config.res_blocks)

    @property
    def info(self) -> ModelInfo:
        c = self.config
        return ModelInfo(latent="discrete", variational=False, conditional=False,
                         latent_shapes=((c.latent_dim, *self.grid),),
                         codebook_size=c.codebook_size, index_shapes=(self.grid,),
                         can_sample=self.has_prior, has_prior=self.has_prior,
                         likelihood=c.likelihood)

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        z_e = self.encoder(x)  # (B, D, h, w)
        q = self.quantizer(z_e, update=False)  # encoding never changes the codebook
        return Latent(z=q.z_q, indices=q.indices, extras={"z_e": z_e})

    def vq_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The VQ-VAE's terms (``recon``, ``commitment`` (, ``codebook``), ``total``,
        ``perplexity``) and the decoder output ``(B, C, H, W)`` they were computed from."""
        q = self.quantizer(self.encoder(x))  # updates EMA / usage / restarts in training mode
        params = self.decode_params(q.z_q)  # (B, C, H, W) logits / means
        return _loss_terms(self.recon_nll(params, x).mean(), {"": q}), params

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        terms, _ = self.vq_terms(x)
        return LossOutput(terms["total"], terms)


@register("vq-vae-2", VQVAE2Config, family="discrete", tiny=TINY2,
          description="VQ-VAE-2: a coarse top code map for global shape and a finer bottom map conditioned on it")
class VQVAE2(CodePriorMixin, AutoEncoder):
    def __init__(self, config: VQVAE2Config):
        super().__init__(config)
        check_grid_backbone(config)
        c = config
        ch, d, act = c.channels[-1], c.latent_dim, c.activation
        hb, wb = conv_grid(c.image_shape, len(c.channels))
        ht, wt = (hb + 1) // 2, (wb + 1) // 2  # 3×3, stride 2, padding 1: ceil(h / 2)
        self.grids = ((hb, wb), (ht, wt))  # bottom, top
        pad = (hb - (2 * ht - 1), wb - (2 * wt - 1))  # output_padding back to the bottom grid

        def up(cin: int, cout: int) -> nn.ConvTranspose2d:  # (B, cin, ht, wt) -> (B, cout, hb, wb)
            return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=pad)

        # bottom features: (B, C, H, W) -> (B, ch, hb, wb)
        self.encoder_bottom = ConvTrunk(c.image_shape[0], c.channels, act)
        # top features: (B, ch, hb, wb) -> (B, ch, ht, wt) -> top z_e (B, D, ht, wt)
        self.encoder_top = nn.Sequential(nn.Conv2d(ch, ch, 3, stride=2, padding=1), activation(act),
                                         nn.Conv2d(ch, ch, 3, padding=1), activation(act),
                                         nn.Conv2d(ch, d, 1))
        self.quantizer_top = VectorQuantizer(c.quantizer_config())
        # the top codes, decoded back to the bottom grid, condition the bottom: (B, D, ht, wt) -> (B, ch, hb, wb)
        self.decoder_top = nn.Sequential(up(d, ch), activation(act))
        # bottom z_e from [bottom features, decoded top]: (B, 2ch, hb, wb) -> (B, D, hb, wb)
        self.pre_bottom = nn.Conv2d(2 * ch, d, 1)
        self.quantizer_bottom = VectorQuantizer(c.quantizer_config())
        # the image decoder sees both levels: top codes upsampled to the bottom grid, concatenated
        self.upsample_top = up(d, d)  # (B, D, ht, wt) -> (B, D, hb, wb)
        # (B, 2D, hb, wb) -> (B, C, H, W): the grid autoencoder's decoder, from both levels' codes
        self.decoder = GridDecoder(c.image_shape, c.channels, act, 2 * d)

    @property
    def info(self) -> ModelInfo:
        c = self.config
        return ModelInfo(latent="discrete", variational=False, conditional=False,
                         latent_shapes=tuple((c.latent_dim, *g) for g in self.grids),
                         codebook_size=c.codebook_size, index_shapes=self.grids,
                         can_sample=self.has_prior, has_prior=self.has_prior,
                         likelihood=c.likelihood)

    def quantize(self, x: torch.Tensor, update: bool | None = None
                 ) -> tuple[BottleneckOutput, BottleneckOutput, torch.Tensor, torch.Tensor]:
        """Both levels: (bottom output, top output, bottom z_e, top z_e); top first, since the
        bottom is conditioned on the quantised top."""
        h_bottom = self.encoder_bottom(x)  # (B, ch, hb, wb)
        z_e_top = self.encoder_top(h_bottom)  # (B, D, ht, wt)
        top = self.quantizer_top(z_e_top, update=update)
        z_e_bottom = self.pre_bottom(torch.cat([h_bottom, self.decoder_top(top.z_q)], 1))  # (B, D, hb, wb)
        bottom = self.quantizer_bottom(z_e_bottom, update=update)
        return bottom, top, z_e_bottom, z_e_top

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        bottom, top, z_e_bottom, z_e_top = self.quantize(x, update=False)
        return Latent(z=(bottom.z_q, top.z_q), indices=(bottom.indices, top.indices),
                      extras={"z_e": (z_e_bottom, z_e_top)})

    def decode_params(self, z, y=None) -> torch.Tensor:
        z_bottom, z_top = z  # (B, D, hb, wb), (B, D, ht, wt)
        return self.decoder(torch.cat([z_bottom, self.upsample_top(z_top)], 1))

    def latent_from_indices(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        i_bottom, i_top = indices  # (B, hb, wb), (B, ht, wt)
        return self.quantizer_bottom.lookup(i_bottom), self.quantizer_top.lookup(i_top)

    def codebooks(self) -> list[torch.Tensor | None]:
        return [self.quantizer_bottom.codebook, self.quantizer_top.codebook]  # the order of the indices

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        bottom, top, _, _ = self.quantize(x)
        recon = self.recon_nll(self.decode_params((bottom.z_q, top.z_q)), x).mean()
        terms = _loss_terms(recon, {"_bottom": bottom, "_top": top})
        return LossOutput(terms["total"], terms)
