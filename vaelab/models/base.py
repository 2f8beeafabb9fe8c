"""The one model contract every variant honours.

A model answers the same questions whatever its class, so the trainer, the checkpoint loader,
the metrics and the app never look at class names:

- ``encode(x, y) -> Latent``: the latent, carrying what the variant has (mean and log-variance,
  codebook indices, logits, one entry per level for hierarchical models);
- ``decode(z, y) -> images`` and ``decode_params(z, y) -> decoder output`` (logits or means);
- ``reconstruct(x, y) -> images`` (deterministic: posterior mean / argmax / nearest code);
- ``loss(x, y, step) -> LossOutput``: named terms with one ``total``;
- ``sample(n, y) -> images`` where ``info.can_sample``;
- ``info``: what the model *is* (:class:`ModelInfo`).

Training hooks with defaults that fit most models: ``optimizer_groups`` (one optimiser per
group; adversarial models return a generator and a discriminator group) and
``training_phases``/``set_phase`` (the stacked autoencoder's greedy layer-wise pretraining).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from vaelab import losses


@dataclass(frozen=True)
class BaseConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the images; set from the dataset
    backbone: str = "mlp"  # "mlp" (fully connected) or "conv" (stride-2 convolutions, then MLP head)
    hidden: tuple[int, ...] = (512, 256)  # MLP widths after the input/trunk, encoder order; decoder mirrors
    channels: tuple[int, ...] = (32, 64)  # conv backbone: output channels of each stride-2 stage
    activation: str = "relu"  # non-linearity between layers (relu, leaky_relu, elu, gelu, sigmoid, tanh, identity)
    latent_dim: int = 32  # number of latent units
    likelihood: str = "bernoulli"  # decoder likelihood: bernoulli (logits, BCE), gaussian (fixed sigma) or mse
    gaussian_sigma: float = 0.1  # standard deviation of the gaussian likelihood
    num_classes: int = 10  # label count, for conditional models and colouring plots


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, so callers can switch views on and off without knowing its class."""

    latent: str  # "continuous" or "discrete"
    variational: bool  # has a posterior q(z|x) and a prior: ELBO, KL, sampling from the prior
    conditional: bool  # encode/decode/sample take labels y
    latent_shapes: tuple[tuple[int, ...], ...]  # shape of z per level, batch dimension excluded
    codebook_size: int | None = None  # K for discrete latents (per level)
    index_shapes: tuple[tuple[int, ...], ...] | None = None  # discrete: shape of the index map per level, (h, w) or (N,)
    can_sample: bool = False  # sample(n) produces images
    has_prior: bool = False  # a learned prior over codes is attached
    likelihood: str = "bernoulli"
    # discrete: every position draws from one codebook (a VQ code map, the dVAE's grid); False:
    # each position is a categorical variable of its own (the 20×10 Gumbel VAE's 20 variables), so
    # code use is counted per variable, not pooled
    shared_codebook: bool = True

    @property
    def levels(self) -> int:
        return len(self.latent_shapes)

    @property
    def latent_dim(self) -> int:
        """Total number of latent numbers per image (all levels, flattened)."""
        total = 0
        for shape in self.latent_shapes:
            n = 1
            for s in shape:
                n *= s
            total += n
        return total


@dataclass
class Latent:
    """The result of ``encode``. ``z`` is what ``decode`` takes: one tensor, or a tuple with one
    tensor per level (top level last) for hierarchical models. Other fields are filled where the
    variant has them, with the same per-level convention."""

    z: torch.Tensor | tuple[torch.Tensor, ...]
    mean: torch.Tensor | tuple | None = None  # Gaussian posterior means  (B, D)
    logvar: torch.Tensor | tuple | None = None  # Gaussian posterior log-variances  (B, D)
    indices: torch.Tensor | tuple | None = None  # codebook indices  (B, h, w) or (B, N)
    logits: torch.Tensor | tuple | None = None  # categorical logits  (B, N, K) / (B, K, h, w)
    extras: dict = field(default_factory=dict)  # variant-specific (pre-quantisation z_e, ...)

    def flat(self) -> torch.Tensor:
        """All of ``z`` flattened to ``(B, D)``: one vector per image for projections and k-NN."""
        parts = self.z if isinstance(self.z, tuple) else (self.z,)
        return torch.cat([p.reshape(p.shape[0], -1) for p in parts], 1)


@dataclass
class LossOutput:
    """Named loss terms, batch means. ``total`` is what the optimiser minimises; ``terms`` are
    logged each epoch. ``objectives`` maps an optimizer group to the scalar it minimises; by
    default the one group ``model`` minimises ``total``."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    objectives: dict[str, torch.Tensor] | None = None

    def objective(self, group: str) -> torch.Tensor:
        if self.objectives is None:
            return self.total
        return self.objectives[group]


class SamplingNotSupported(RuntimeError):
    """Raised by ``sample`` on models whose latent has no prior to sample from."""


class Trainable(nn.Module, metaclass=ABCMeta):
    """What :class:`vaelab.train.Training` needs of a module: ``loss(x, y, step) -> LossOutput``
    and the training hooks below, with defaults that fit most models. Every autoencoder is one;
    so is the objective a code prior trains on (:class:`vaelab.prior.PriorObjective`). ``loss``
    is abstract: a subclass without one cannot be instantiated (``TypeError`` naming it)."""

    @abstractmethod
    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, step: int = 0) -> LossOutput:
        """Named loss terms of a batch, with the ``total`` the optimiser minimises."""

    # --- training hooks -------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimiser; the trainer steps each group on its own objective."""
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def training_phases(self, epochs: int) -> list[tuple[str, int]]:
        """``(phase, epochs)`` pairs the trainer runs in order; most models have one phase."""
        return [("train", epochs)]

    def set_phase(self, phase: str) -> None:
        """Called by the trainer at the start of each phase."""


class AutoEncoder(Trainable):
    """Base class: an encoder, a decoder and the contract above. ``info``, ``encode``,
    ``decode_params`` and ``loss`` are abstract: a variant missing one fails when it is built,
    with a ``TypeError`` naming what is missing, not at its first call."""

    config: BaseConfig

    def __init__(self, config: BaseConfig):
        super().__init__()
        self.config = config

    # --- what the model is ----------------------------------------------------------------
    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """What the model is (:class:`ModelInfo`)."""

    # --- the contract ---------------------------------------------------------------------
    def condition(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """One-hot labels for conditional models, ``None`` otherwise."""
        if not self.info.conditional:
            return None
        if y is None:
            raise ValueError("this model is conditional: pass labels y")
        return F.one_hot(y.long(), self.config.num_classes).float()

    @abstractmethod
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Latent:
        """Images ``(B, C, H, W)`` -> :class:`Latent` (deterministic: posterior mean, nearest
        code, argmax)."""

    @abstractmethod
    def decode_params(self, z, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder output: the likelihood's parameters (logits or means), ``(B, C, H, W)``."""

    def decode(self, z, y: torch.Tensor | None = None) -> torch.Tensor:
        """Latent -> images ``(B, C, H, W)`` (Bernoulli means for logit decoders)."""
        return losses.params_to_image(self.decode_params(z, y), self.config.likelihood)

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic reconstruction: decode the posterior mean / nearest code / argmax."""
        was_training = self.training
        self.eval()
        try:
            return self.decode(self.encode(x, y).z, y)
        finally:
            self.train(was_training)

    @abstractmethod
    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, step: int = 0) -> LossOutput:
        """The model's objective on a batch: named terms (per-image sums, batch means) and a total."""

    def log_importance_weights(self, x: torch.Tensor, y: torch.Tensor | None = None,
                               k: int = 1) -> torch.Tensor:
        """Variational models: ``log p(x, z_i) - log q(z_i | x)`` for ``k`` posterior samples,
        shape ``(k, B)``; the importance-weighted bound (Burda et al. 2015) is built from it."""
        raise TypeError(f"{type(self).__name__} is not a variational model: it has no likelihood bound")

    def latent_from_indices(self, indices):
        """Discrete models: codebook indices (as in ``Latent.indices``) -> the ``z`` that
        ``decode`` takes. Priors over codes sample indices and decode through this."""
        raise TypeError(f"{type(self).__name__} has a continuous latent: it has no code indices")

    def codebooks(self) -> list[torch.Tensor | None]:
        """Discrete models: each level's code vectors ``(K, D)``, in the order of
        ``Latent.indices`` (``None`` for a level whose codes are one-hot, with no vectors).
        Continuous models: ``[]``."""
        return []

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise SamplingNotSupported(f"{type(self).__name__} has no prior to sample from")

    def recon_nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction term under this model's likelihood, ``(B,)``."""
        return losses.reconstruction_nll(params, x, self.config.likelihood,
                                         self.config.gaussian_sigma)

    # --- checkpoint hooks -----------------------------------------------------------------
    def attach_extras(self, folder, device: str | torch.device = "cpu") -> None:
        """Called by :func:`vaelab.checkpoint.load_checkpoint` after the weights are loaded:
        attach what is saved beside them (a discrete model's code prior). Default: nothing."""

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename keys of a state dict written by an older vaelab to this version's names (the
        loader calls it on every checkpoint's weights). Default: unchanged."""
        return state

    def parameters_meant_to_learn(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters that the final phase's objectives should reach (for the contract tests)."""
        return ((n, p) for n, p in self.named_parameters() if p.requires_grad)
