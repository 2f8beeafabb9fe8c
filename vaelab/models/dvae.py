"""Discrete VAEs with a Gumbel-softmax bottleneck (Jang et al. 2016; Maddison et al. 2016).

- ``gumbel-vae``: the categorical VAE of Jang, Gu & Poole 2016 (arXiv:1611.01144, §4.2):
  20 categorical variables of 10 categories, MLP encoder 784-512-256 -> 200 logits, decoder
  200-256-512-784 with a Bernoulli likelihood. The paper reports 101.5 nats −ELBO on binarized
  MNIST (Table 2, Gumbel-Softmax).
- ``dvae``: a grid of categorical codes over the image, the idea of DALL-E's dVAE (Ramesh et al.
  2021, "Zero-Shot Text-to-Image Generation", §2.1): a conv trunk gives K logits per grid cell,
  the Gumbel-softmax sample picks a mixture of codebook vectors (a 1×1 convolution / matmul with
  the codebook), and a conv decoder maps the code grid back to the image. It is the grid
  autoencoder of the VQ-VAE (:class:`vaelab.models.grid.GridAutoEncoder`) with a Gumbel-softmax
  quantiser in the slot where the VQ-VAE has its vector quantiser.

Both put the bottleneck in a :class:`vaelab.nn.gumbel.GumbelQuantizer` (for the dVAE it owns the
codebook; for the categorical VAE the codes are ``z`` themselves), which returns the same
:class:`vaelab.nn.bottleneck.BottleneckOutput` as the vector quantiser. Both minimise
``E_q[−log p(x|z)] + w · KL(q(z|x) || Uniform)``, with the relaxed sample in training and τ
annealed by :func:`vaelab.schedules.temperature`. In ``eval`` mode, ``encode``
and ``reconstruct`` take the argmax code; the *loss* instead draws an exact categorical sample
(hard, from a fixed-seed generator, so validation is reproducible), which makes ``neg_elbo`` an
unbiased one-sample estimate of the true discrete −ELBO rather than of the relaxed objective.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch

from vaelab import losses, schedules
from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.models.code_prior import CodePriorMixin
from vaelab.models.grid import GridAutoEncoder
from vaelab.nn.backbones import Decoder, Encoder
from vaelab.nn.gumbel import GumbelQuantizer
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
    """What both Gumbel-softmax models share: the ELBO loss, τ and KL-weight schedules, the
    uniform prior. Subclasses build ``encoder``, ``quantizer`` (a :class:`GumbelQuantizer` with
    categories along ``category_dim``) and ``decoder``, and define ``posterior_logits``."""

    category_dim: int  # where the K categories sit in the logits (-1 for (B, N, K); 1 for (B, K, h, w))

    # --- subclasses -----------------------------------------------------------------------
    @abstractmethod
    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the categorical posterior's logits, categories along ``category_dim``."""

    @property
    @abstractmethod
    def index_shape(self) -> tuple[int, ...]:
        """The shape of one image's code indices: ``(N,)`` variables or an ``(h, w)`` grid."""

    # --- shared ---------------------------------------------------------------------------
    def make_quantizer(self, code_dim: int | None = None) -> GumbelQuantizer:
        """The Gumbel-softmax bottleneck over ``category_dim``; with ``code_dim``, its own codebook."""
        c = self.config
        return GumbelQuantizer(c.codebook_size, self.category_dim, c.hard, code_dim)

    def temperature(self, step: int) -> float:
        c = self.config
        return schedules.temperature(step, c.tau_start, c.tau_floor, c.tau_schedule, c.tau_rate,
                                     c.tau_steps, c.tau_every)

    def kl_weight(self, step: int) -> float:
        c = self.config
        return schedules.kl_weight(step, c.kl_weight, c.kl_warmup, c.warmup_steps)

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        q = self.quantizer(self.posterior_logits(x), self.temperature(0))
        return Latent(z=q.z_q, indices=q.indices, logits=q.logits)

    def latent_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.lookup(indices).to(next(self.parameters()).dtype)

    def codebooks(self) -> list[torch.Tensor | None]:
        return [getattr(self.quantizer, "codebook", None)]

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        logits = self.posterior_logits(x)
        tau = self.temperature(step)
        if self.training:
            q = self.quantizer(logits, tau)
        else:  # an exact discrete sample: neg_elbo estimates the true −ELBO
            gen = torch.Generator(device=logits.device).manual_seed(EVAL_SEED)
            q = self.quantizer(logits, tau, sample="exact", generator=gen)
        recon = self.recon_nll(self.decode_params(q.z_q), x)  # (B,)
        weight = self.kl_weight(step)
        terms = losses.elbo_terms(recon, q.losses["kl"], weight)  # the KL is already a batch mean
        terms["temperature"] = torch.tensor(tau)
        terms["kl_weight"] = torch.tensor(weight)
        terms.update(q.stats)  # perplexity of the argmax codes
        return LossOutput(terms["total"], terms)

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
        self.quantizer = self.make_quantizer()  # no codebook: z is the (B, N, K) codes themselves
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
                         can_sample=True, has_prior=self.has_prior, likelihood=c.likelihood,
                         shared_codebook=False)

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        return self.encoder(x).view(-1, c.num_variables, c.codebook_size)  # (B, N, K)

    def decode_params(self, z, y=None) -> torch.Tensor:
        return self.decoder(z.flatten(1))  # (B, N·K) -> (B, C, H, W)


@register("dvae", DVAEConfig, family="discrete",
          tiny={"image_shape": (1, 8, 8), "channels": (4, 8), "codebook_size": 8, "embed_dim": 4},
          description="Grid dVAE (DALL-E's idea): a 7×7 grid of codes from a K-entry codebook, chosen by Gumbel-softmax")
class DVAE(GumbelAutoEncoder, GridAutoEncoder):
    """The grid autoencoder with a Gumbel-softmax quantiser that owns the codebook: encoder
    ``(B, C, H, W) -> (B, K, h, w)`` logits (trunk, one 3×3 conv, 1×1 conv), codes mapped
    through the ``(K, D)`` codebook to ``z`` ``(B, D, h, w)``, decoder (3×3 conv, one more 3×3
    conv, transposed trunk).

    Checkpoints written before the codebook moved into the quantiser store it as ``codebook``;
    :meth:`upgrade_state_dict` renames it to ``quantizer.codebook``, so they load unchanged.
    """

    category_dim = 1  # logits and codes are (B, K, h, w)

    def __init__(self, config: DVAEConfig):
        super().__init__(config, lambda: self.make_quantizer(config.embed_dim),
                         encoder_out=config.codebook_size, decoder_in=config.embed_dim,
                         conv_layers=1)

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

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``codebook`` (the top-level parameter of older versions) -> ``quantizer.codebook``."""
        return {("quantizer.codebook" if k == "codebook" else k): v for k, v in state.items()}
