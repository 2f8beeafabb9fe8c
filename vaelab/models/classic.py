"""The classic autoencoder family: vanilla (shallow and deep), convolutional, linear, denoising,
sparse, k-sparse and contractive autoencoders.

They share one class, :class:`Autoencoder`, whose training loss is
``recon(x, decode(code(corrupt(x)))) + Σ weight · penalty`` — each variant changes one piece:
the corruption (denoising; Vincent et al. 2008), the code (k-sparse; Makhzani & Frey 2013) or
the penalty (sparse, Ng's CS294A notes; contractive, Rifai et al. 2011).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaelab import losses
from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.nn.backbones import Decoder, Encoder
from vaelab.registry import register

TINY = {"image_shape": (1, 8, 8), "hidden": (16,), "channels": (4, 8), "latent_dim": 4}


@dataclass(frozen=True)
class AEConfig(BaseConfig):
    hidden: tuple[int, ...] = ()  # MLP widths between input and code; () is the shallow 784-32-784
    latent_dim: int = 32  # code size
    code_activation: str = "identity"  # non-linearity on the code units


@dataclass(frozen=True)
class DeepAEConfig(AEConfig):
    hidden: tuple[int, ...] = (128, 64)  # 784-128-64-32-64-128-784


@dataclass(frozen=True)
class ConvAEConfig(AEConfig):
    backbone: str = "conv"  # stride-2 convolutions: 28 -> 14 -> 7, then a linear code


@dataclass(frozen=True)
class DenoisingAEConfig(AEConfig):
    hidden: tuple[int, ...] = (256,)  # one hidden layer each side
    noise: str = "masking"  # corruption in training: gaussian, masking or salt_pepper
    noise_level: float = 0.3  # gaussian: std; masking: fraction of pixels zeroed; salt_pepper: fraction set to 0 or 1


@dataclass(frozen=True)
class SparseAEConfig(AEConfig):
    latent_dim: int = 64  # overcomplete-ish code; sparsity, not size, limits it
    code_activation: str = "sigmoid"  # units in (0, 1) so their mean activation is a Bernoulli rate
    penalty: str = "kl"  # "kl": Σ_j KL(ρ || ρ̂_j) on mean activations; "l1": mean Σ_j |z_j|
    rho: float = 0.05  # target mean activation ρ for the KL penalty
    sparsity_weight: float = 1.0  # weight of the penalty in the loss


@dataclass(frozen=True)
class KSparseAEConfig(AEConfig):
    latent_dim: int = 100  # code size; only k of them are non-zero in training
    k: int = 25  # units kept (largest activations) in training
    alpha: float = 3.0  # at encoding keep alpha·k units (alpha > 1), as in Makhzani & Frey


@dataclass(frozen=True)
class ContractiveAEConfig(AEConfig):
    code_activation: str = "sigmoid"  # sigmoid code: with hidden=() the Jacobian penalty is exact in closed form
    # λ in recon + λ ||∂h/∂x||²_F. On MNIST (BCE summed per image, 20 epochs): λ = 0.03 shrinks the
    # penalty from 79 to 7 at PCA-level error; λ = 1 leaves the code nearly constant.
    contractive_weight: float = 0.03


@dataclass(frozen=True)
class LinearAEConfig(BaseConfig):
    latent_dim: int = 32  # code size (compare with PCA at the same number of components)
    likelihood: str = "mse"  # squared error, the objective PCA minimises
    tied: bool = False  # decoder weight is the encoder weight transposed (W_dec = W_encᵀ)


def corrupt(x: torch.Tensor, noise: str, level: float, generator=None) -> torch.Tensor:
    """Corrupt images for denoising (Vincent et al. 2008, section 3.2)."""
    if noise == "none" or level == 0:
        return x
    if noise == "gaussian":
        return x + level * torch.randn(x.shape, generator=generator, device=x.device)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    if noise == "masking":
        return x * (u >= level)
    if noise == "salt_pepper":
        salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
        return torch.where(u < level, salt.to(x.dtype), x)
    raise ValueError(f"unknown noise {noise!r}; choose gaussian, masking or salt_pepper")


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """Zero all but the ``k`` largest entries of each row of ``z`` ``(B, D)``."""
    k = max(1, min(k, z.shape[1]))
    idx = z.topk(k, dim=1).indices
    mask = torch.zeros_like(z).scatter_(1, idx, 1.0)
    return z * mask


@register("conv-ae", ConvAEConfig, family="classic", tiny=TINY,
          description="Convolutional autoencoder: stride-2 convolutions to a 32-d code and back")
@register("deep-ae", DeepAEConfig, family="classic", tiny=TINY,
          description="Vanilla autoencoder, deep MLP 784-128-64-32-64-128-784")
@register("ae", AEConfig, family="classic", tiny=TINY,
          description="Vanilla autoencoder, shallow MLP 784-32-784: the baseline everything compares to")
class Autoencoder(AutoEncoder):
    """Deterministic autoencoder. Its training loss is
    ``recon(x, decode(train_code(corrupt(x)))) + Σ weight · penalty``; variants override one of
    ``corrupt``, ``train_code``, ``penalties``."""

    def __init__(self, config: AEConfig):
        super().__init__(config)
        c = config
        final = None if c.code_activation == "identity" else c.code_activation
        self.encoder = Encoder(c.image_shape, c.latent_dim, c.backbone, c.hidden, c.channels,
                               c.activation, final_act=final)
        self.decoder = Decoder(c.image_shape, c.latent_dim, c.backbone, tuple(reversed(c.hidden)),
                               c.channels, c.activation)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(latent="continuous", variational=False, conditional=False,
                         latent_shapes=((self.config.latent_dim,),),
                         likelihood=self.config.likelihood)

    # pieces a variant changes ------------------------------------------------------------
    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The input the encoder sees in the training loss."""
        return x

    def train_code(self, x: torch.Tensor) -> torch.Tensor:
        """The code the training loss decodes."""
        return self.encoder(x)

    def penalties(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, tuple[torch.Tensor, float]]:
        """Named ``(value, weight)`` pairs added to the reconstruction term."""
        return {}

    # the contract --------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y=None) -> Latent:
        return Latent(z=self.encoder(x))

    def decode_params(self, z, y=None) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        x_in = self.corrupt(x)
        z = self.train_code(x_in)
        recon = self.recon_nll(self.decoder(z), x).mean()
        terms = {"recon": recon}
        total = recon
        for name, (value, weight) in self.penalties(x_in, z).items():
            terms[name] = value
            total = total + weight * value
        terms["total"] = total
        return LossOutput(total, terms)


@register("denoising-ae", DenoisingAEConfig, family="classic", tiny=TINY,
          description="Denoising autoencoder: reconstructs clean images from corrupted ones")
class DenoisingAutoencoder(Autoencoder):
    """Encodes a corrupted image, scored on the clean one (Vincent et al. 2008)."""

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        return corrupt(x, c.noise, c.noise_level) if self.training else x


@register("sparse-ae", SparseAEConfig, family="classic", tiny=TINY,
          description="Sparse autoencoder: KL (or L1) penalty keeps code units mostly off")
class SparseAutoencoder(Autoencoder):
    """Sigmoid code units pushed towards a mean activation ρ (KL) or towards zero (L1)."""

    def penalties(self, x, z):
        c = self.config
        if c.penalty == "kl":
            value = losses.bernoulli_kl(c.rho, z.mean(0)).sum()
        elif c.penalty == "l1":
            value = z.abs().sum(1).mean()
        else:
            raise ValueError(f"unknown sparsity penalty {c.penalty!r}; choose kl or l1")
        return {"sparsity": (value, c.sparsity_weight)}


@register("k-sparse-ae", KSparseAEConfig, family="classic", tiny={**TINY, "latent_dim": 8, "k": 2},
          description="k-sparse autoencoder: only the k largest code units survive in training")
class KSparseAutoencoder(Autoencoder):
    """Linear code; training keeps the k largest units, encoding keeps alpha·k (Makhzani & Frey 2013)."""

    def train_code(self, x):
        return keep_top_k(self.encoder(x), self.config.k)

    def encode(self, x, y=None) -> Latent:
        c = self.config
        return Latent(z=keep_top_k(self.encoder(x), int(round(c.alpha * c.k))))


@register("contractive-ae", ContractiveAEConfig, family="classic", tiny={**TINY, "hidden": ()},
          description="Contractive autoencoder: penalises the encoder Jacobian so codes ignore small changes")
class ContractiveAutoencoder(Autoencoder):
    """Penalty ``λ ||∂h/∂x||²_F`` (Rifai et al. 2011). Exact closed form when the encoder is one
    sigmoid layer (the default); by autograd, one backward pass per code unit, otherwise."""

    @property
    def jacobian_method(self) -> str:
        c = self.config
        one_sigmoid_layer = c.hidden == () and c.backbone == "mlp" and c.code_activation == "sigmoid"
        return "exact-sigmoid" if one_sigmoid_layer else "autograd"

    def contractive_penalty(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``||∂code/∂x||²_F`` per image, ``(B,)``."""
        if self.jacobian_method == "exact-sigmoid":
            z = self.encoder(x) if z is None else z
            return losses.sigmoid_jacobian_frobenius(z, self.encoder.head[0].weight)
        return losses.jacobian_frobenius_autograd(self.encoder, x, create_graph=self.training)

    def penalties(self, x, z):
        return {"contractive": (self.contractive_penalty(x, z).mean(), self.config.contractive_weight)}


@register("linear-ae", LinearAEConfig, family="classic",
          tiny={"image_shape": (1, 8, 8), "latent_dim": 4},
          description="Linear autoencoder (no non-linearity): learns PCA's subspace, 'PCA as a two-layer perceptron'")
class LinearAutoencoder(AutoEncoder):
    """``x̂ = W_dec (W_enc x + b_enc) + b_dec``; with ``tied``, ``W_dec = W_encᵀ``.

    Trained to convergence on squared error it reaches PCA's reconstruction error at the same
    dimension (Baldi & Hornik 1989): its code spans the principal subspace, though not
    necessarily along the principal axes.
    """

    def __init__(self, config: LinearAEConfig):
        super().__init__(config)
        d_in = 1
        for s in config.image_shape:
            d_in *= s
        self.enc = nn.Linear(d_in, config.latent_dim)
        self.dec_bias = nn.Parameter(torch.zeros(d_in))
        self.dec_weight = None if config.tied else nn.Parameter(torch.empty(d_in, config.latent_dim))
        if self.dec_weight is not None:
            nn.init.kaiming_uniform_(self.dec_weight, a=5 ** 0.5)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(latent="continuous", variational=False, conditional=False,
                         latent_shapes=((self.config.latent_dim,),),
                         likelihood=self.config.likelihood)

    def encode(self, x: torch.Tensor, y=None) -> Latent:
        return Latent(z=self.enc(x.flatten(1)))

    def decode_params(self, z, y=None) -> torch.Tensor:
        w = self.enc.weight.t() if self.dec_weight is None else self.dec_weight  # (D_in, d)
        return F.linear(z, w, self.dec_bias).reshape(-1, *self.config.image_shape)

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        recon = self.recon_nll(self.decode_params(self.encode(x).z), x).mean()
        return LossOutput(recon, {"recon": recon, "total": recon})
