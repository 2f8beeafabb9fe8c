"""Discrete VAEs with a Gumbel-softmax bottleneck (Jang et al. 2016; Maddison et al. 2016).

- ``gumbel-vae``: the categorical VAE of Jang, Gu & Poole 2016 (arXiv:1611.01144, §4.2):
  20 categorical variables of 10 categories, MLP encoder 784-512-256 -> 200 logits, decoder
  200-256-512-784 with a Bernoulli likelihood. The paper reports 101.5 nats −ELBO on binarized
  MNIST (Table 2, Gumbel-Softmax).
- ``dvae``: a grid of categorical codes over the image, the idea of DALL-E's dVAE (Ramesh et al.
  2021, "Zero-Shot Text-to-Image Generation", §2.1): a conv trunk gives K logits per grid cell,
  the Gumbel-softmax sample picks a mixture of codebook vectors (a 1×1 convolution / matmul with
  the codebook), and a conv decoder maps the code grid back to the image.

Both minimise ``E_q[−log p(x|z)] + w · KL(q(z|x) || Uniform)``, with the relaxed sample in
training and τ annealed by :func:`vaelab.schedules.temperature`. In ``eval`` mode, ``encode``
and ``reconstruct`` take the argmax code; the *loss* instead draws an exact categorical sample
(hard, from a fixed-seed generator, so validation is reproducible), which makes ``neg_elbo`` an
unbiased one-sample estimate of the true discrete −ELBO rather than of the relaxed objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaelab import losses, schedules
from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.nn.backbones import ConvTrunk, ConvTrunkDecoder, Decoder, Encoder, activation, conv_grid
from vaelab.nn.gumbel import GumbelSoftmax, categorical_sample, code_perplexity, one_hot
from vaelab.models.code_prior import CodePriorMixin
from vaelab.registry import register

EVAL_SEED = 0  # seed of the categorical samples the loss draws in eval mode


@dataclass(frozen=True)
class GumbelConfig(BaseConfig):
    codebook_size: int = 10  # K: categories per latent variable
    hard: bool = False  # straight-through: exactly one-hot forward, soft-sample gradients backward
    tau_start: float = 1.0  # Gumbel-softmax temperature at step 0
    tau_floor: float = 0.5  # temperature never goes below this (Jang et al. use 0.5)
    tau_schedule: str = "exp"  # exp (decay to the floor), cosine (to the floor over tau_steps) or constant
    tau_rate: float = 1e-4  # exp schedule: τ = max(floor, start · exp(−rate · step))
    tau_steps: int = 10000  # cosine schedule: steps from start to floor
    tau_every: int = 1  # update τ only every this many steps (a staircase; 1 = every step)
    kl_weight: float = 1.0  # weight of KL(q || uniform) in the total (1 = the ELBO)
    kl_warmup: str = "none"  # KL weight schedule: none, linear or cyclical (vaelab.schedules.kl_weight)
    warmup_steps: int = 0  # optimisation steps the KL warm-up lasts


@dataclass(frozen=True)
class GumbelVAEConfig(GumbelConfig):
    num_variables: int = 20  # N: independent categorical latent variables
    codebook_size: int = 10  # K: categories per variable (the paper's 20 × 10)
    hidden: tuple[int, ...] = (512, 256)  # encoder widths 784-512-256 -> N·K logits; decoder mirrors
    latent_dim: int = 0  # unused: the latent is N one-hot vectors of size K


@dataclass(frozen=True)
class DVAEConfig(GumbelConfig):
    backbone: str = "conv"  # unused: the dVAE is always convolutional
    channels: tuple[int, ...] = (32, 64)  # stride-2 stages; the code grid is H / 2^len (28 -> 7)
    codebook_size: int = 64  # K: codebook entries, shared by every grid cell
    embed_dim: int = 32  # D: size of each codebook vector, the channels of z
    # straight-through by default: with soft samples the decoder learns to read the continuous
    # mixture weights (3 MNIST epochs: relaxed train −ELBO 98.5 vs discrete val 146.0 nats)
    hard: bool = True
    latent_dim: int = 0  # unused: z is a (D, h, w) grid of codebook vectors


class GumbelAutoEncoder(CodePriorMixin, AutoEncoder):
    """What both Gumbel-softmax models share. Subclasses build the networks and define
    ``posterior_logits`` (categories along ``category_dim``), ``codes_to_z`` and ``decode_params``."""

    category_dim: int  # where the K categories sit in the logits (-1 for (B, N, K); 1 for (B, K, h, w))

    def __init__(self, config: GumbelConfig):
        super().__init__(config)
        self.bottleneck = GumbelSoftmax(hard=config.hard, dim=self.category_dim)

    # --- subclasses -----------------------------------------------------------------------
    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def codes_to_z(self, codes: torch.Tensor) -> torch.Tensor:
        """One-hot or relaxed codes (shape of the logits) -> the ``z`` the decoder takes."""
        raise NotImplementedError

    @property
    def index_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------
    def temperature(self, step: int) -> float:
        c = self.config
        return schedules.temperature(step, c.tau_start, c.tau_floor, c.tau_schedule, c.tau_rate,
                                     c.tau_steps, c.tau_every)

    def kl_weight(self, step: int) -> float:
        c = self.config
        return schedules.kl_weight(step, c.kl_weight, c.kl_warmup, c.warmup_steps)

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        logits = self.posterior_logits(x)
        out = self.bottleneck(logits, self.temperature(0))
        return Latent(z=self.codes_to_z(out.codes), indices=out.indices, logits=logits)

    def latent_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        codes = one_hot(indices.long(), self.config.codebook_size, self.category_dim)
        return self.codes_to_z(codes.to(next(self.parameters()).dtype))

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        logits = self.posterior_logits(x)
        tau = self.temperature(step)
        if self.training:
            out = self.bottleneck(logits, tau)
            codes, kl = out.codes, out.kl
        else:  # an exact discrete sample: neg_elbo estimates the true −ELBO
            gen = torch.Generator(device=logits.device).manual_seed(EVAL_SEED)
            codes = categorical_sample(logits, self.category_dim, gen)
            kl = self.bottleneck(logits, tau).kl
        recon = self.recon_nll(self.decode_params(self.codes_to_z(codes)), x)  # (B,)
        weight = self.kl_weight(step)
        terms = losses.elbo_terms(recon, losses.sum_per_image(kl), weight)
        assigned = one_hot(logits.detach().argmax(self.category_dim), self.config.codebook_size)
        terms["temperature"] = torch.tensor(tau)
        terms["kl_weight"] = torch.tensor(weight)
        terms["perplexity"] = self.usage_perplexity(assigned)
        return LossOutput(terms["total"], terms)

    def usage_perplexity(self, assigned: torch.Tensor) -> torch.Tensor:
        """Perplexity of the argmax codes in the batch; ``assigned`` is one-hot ``(B, ..., K)``.
        By default each variable has its own K categories: one perplexity per variable, averaged."""
        return code_perplexity(assigned, -1, (0,))

    def fixed_prior_indices(self, n: int, generator=None) -> torch.Tensor:
        """Codes from the uniform prior, one category per variable / grid cell; ``sample``
        (:class:`vaelab.models.code_prior.CodePriorMixin`) decodes them, or a learned prior's when attached."""
        indices = torch.randint(0, self.config.codebook_size, (n, *self.index_shape),
                                generator=generator)
        return indices.to(next(self.parameters()).device)


@register("gumbel-vae", GumbelVAEConfig, family="discrete",
          tiny={"image_shape": (1, 8, 8), "hidden": (16,), "num_variables": 4, "codebook_size": 5},
          description="Categorical VAE (Jang et al. 2016): 20 variables × 10 categories through a Gumbel-softmax")
class GumbelVAE(GumbelAutoEncoder):
    category_dim = -1  # logits and codes are (B, N, K)

    def __init__(self, config: GumbelVAEConfig):
        super().__init__(config)
        c = config
        n_code = c.num_variables * c.codebook_size
        self.encoder = Encoder(c.image_shape, n_code, c.backbone, c.hidden, c.channels, c.activation)
        self.decoder = Decoder(c.image_shape, n_code, c.backbone, tuple(reversed(c.hidden)),
                               c.channels, c.activation)

    @property
    def index_shape(self) -> tuple[int, ...]:
        return (self.config.num_variables,)

    @property
    def info(self) -> ModelInfo:
        c = self.config
        return ModelInfo(latent="discrete", variational=True, conditional=False,
                         latent_shapes=((c.num_variables, c.codebook_size),),
                         codebook_size=c.codebook_size, index_shapes=(self.index_shape,),
                         can_sample=True, has_prior=self.has_prior, likelihood=c.likelihood)

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        return self.encoder(x).view(-1, c.num_variables, c.codebook_size)  # (B, N, K)

    def codes_to_z(self, codes: torch.Tensor) -> torch.Tensor:
        return codes  # z is the (B, N, K) codes themselves

    def decode_params(self, z, y=None) -> torch.Tensor:
        return self.decoder(z.flatten(1))  # (B, N·K) -> (B, C, H, W)


@register("dvae", DVAEConfig, family="discrete",
          tiny={"image_shape": (1, 8, 8), "channels": (4, 8), "codebook_size": 8, "embed_dim": 4},
          description="Grid dVAE (DALL-E's idea): a 7×7 grid of codes from a K-entry codebook, chosen by Gumbel-softmax")
class DVAE(GumbelAutoEncoder):
    category_dim = 1  # logits and codes are (B, K, h, w)

    def __init__(self, config: DVAEConfig):
        super().__init__(config)
        c = config
        ch = c.channels[-1]
        self.grid = conv_grid(c.image_shape, len(c.channels))  # (h, w)
        # (B, C, H, W) -> (B, ch, h, w) -> (B, K, h, w)
        self.encoder = nn.Sequential(
            ConvTrunk(c.image_shape[0], c.channels, c.activation),
            nn.Conv2d(ch, ch, 3, padding=1), activation(c.activation),
            nn.Conv2d(ch, c.codebook_size, 1))
        # the codebook: row k is code k's vector; a one-hot (B, K, h, w) picks rows -> (B, D, h, w)
        self.codebook = nn.Parameter(torch.randn(c.codebook_size, c.embed_dim))
        # (B, D, h, w) -> (B, ch, h, w) -> (B, C, H, W)
        self.decoder = nn.Sequential(
            nn.Conv2d(c.embed_dim, ch, 3, padding=1), activation(c.activation),
            nn.Conv2d(ch, ch, 3, padding=1), activation(c.activation),
            ConvTrunkDecoder(c.image_shape[0], c.channels, c.activation))

    @property
    def index_shape(self) -> tuple[int, ...]:
        return self.grid

    @property
    def info(self) -> ModelInfo:
        c = self.config
        return ModelInfo(latent="discrete", variational=True, conditional=False,
                         latent_shapes=((c.embed_dim, *self.grid),),
                         codebook_size=c.codebook_size, index_shapes=(self.grid,),
                         can_sample=True, has_prior=self.has_prior, likelihood=c.likelihood)

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, K, h, w)

    def codes_to_z(self, codes: torch.Tensor) -> torch.Tensor:
        # (B, K, h, w) · (K, D) -> (B, D, h, w): a 1×1 convolution with the codebook
        return torch.einsum("bkhw,kd->bdhw", codes, self.codebook)

    def decode_params(self, z, y=None) -> torch.Tensor:
        return self.decoder(z)

    def usage_perplexity(self, assigned: torch.Tensor) -> torch.Tensor:
        # one codebook shared by every cell: pool batch and grid, (B, h, w, K) -> (K,)
        return code_perplexity(assigned, -1, (0, 1, 2))
