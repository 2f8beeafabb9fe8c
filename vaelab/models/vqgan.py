"""VQ-GAN (Esser, Rombach & Ommer, "Taming Transformers for High-Resolution Image Synthesis",
CVPR 2021): a VQ-VAE whose reconstructions are also judged by a patch discriminator and compared
with their inputs in the feature space of a fixed network.

The model is :class:`vaelab.models.vqvae.VQVAE` (same encoder, EMA codebook with k-means
initialisation and dead-code restart, decoder, ``info``, code-prior support) plus two terms
(paper, eqs. 4–6):

- ``feature``: ``feature_weight · ‖f(x) − f(x̂)‖²`` summed over the features of a frozen network
  ``f``, batch mean. Esser et al. use LPIPS on a pretrained VGG; no pretrained network can be
  downloaded here, so ``f`` is the penultimate layer (128 units) of the project's own MNIST
  classifier (:mod:`vaelab.classifier`, shipped in ``checkpoints/classifier/``). It is loaded from
  its own folder (``feature_net``; a relative path is taken from the repository root), kept frozen
  and in eval mode, and held *outside* the model's modules: it is neither a parameter nor in the
  state dict, so the model's safetensors never contain it. The config is checked when the model is
  built: with ``feature_weight > 0`` a missing folder or an image size the classifier does not take
  raises :class:`FeatureNetworkError` naming the folder it looked in. There is no silent fallback:
  models on other image sizes (the tiny 1×8×8 preset, 8×8 digits) must say ``feature_weight=0``.
- ``adv``: ``adv_weight · L_adv`` with the non-saturating GAN loss ``L_adv = −log D(x̂)``
  (:func:`vaelab.losses.gan_generator_loss`) from a PatchGAN discriminator
  (:class:`vaelab.nn.discriminators.PatchDiscriminator`, Isola et al. 2017), averaged over its
  grid of patch logits. As in the paper's code, the GAN is switched on only from training step
  ``disc_start``: before it, both the generator's adversarial term and the discriminator's
  objective are multiplied by 0 (the discriminator does not learn either). The weight is fixed;
  the paper's adaptive weight (ratio of the reconstruction and GAN gradient norms at the
  decoder's last layer) is not implemented.

The reconstruction term stays the model's likelihood (Bernoulli by default) rather than the
paper's L1, so the numbers compare with the VQ-VAE's.

Two optimiser groups, stepped in this order by :func:`vaelab.train.fit`: ``generator`` (encoder,
decoder, and the codebook when it is a learned parameter, ``ema=False``) minimises
``recon + commitment (+ codebook) + feature + adv``; ``discriminator`` minimises
``−log D(x) − log(1 − D(sg[x̂]))`` on real images and *detached* reconstructions. The generator's
adversarial term runs the discriminator with detached copies of its weights
(``torch.func.functional_call``), so neither objective reaches the other group's parameters.

Named terms: ``recon``, ``commitment`` (``codebook``), ``feature`` and ``adv`` (weighted, their sum
is ``total``, the generator's objective), ``disc`` (the discriminator's objective, 0 before
``disc_start``), ``d_real``/``d_fake`` (D's mean P(real) on real images and reconstructions),
``gan_on`` (1 from ``disc_start``) and ``perplexity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.func import functional_call

from vaelab import losses
from vaelab.models.base import LossOutput
from vaelab.models.vqvae import TINY as VQ_TINY
from vaelab.models.vqvae import VQVAE, VQVAEConfig
from vaelab.nn.discriminators import make_discriminator
from vaelab.paths import checkpoint_path
from vaelab.registry import register


class FeatureNetworkError(ValueError):
    """The feature term was asked for, but its network is missing or does not fit the images."""


@dataclass(frozen=True)
class VQGANConfig(VQVAEConfig):
    disc_channels: tuple[int, ...] = (32, 64)  # output channels of the patch discriminator's stride-2 stages (28×28 -> 7×7 patch logits)
    adv_weight: float = 0.1  # weight of the generator's non-saturating GAN loss (patch mean, per image) next to the recon nats
    disc_start: int = 500  # training step from which the GAN terms count (both objectives are 0 before; ~1 MNIST epoch at batch 128)
    feature_weight: float = 1.0  # weight of ‖f(x) − f(x̂)‖² on the classifier's features; 0 disables the term and the network
    feature_net: str = "checkpoints/classifier"  # folder of the vaelab classifier giving f; a relative path is inside the checkpoints folder ($VAELAB_CHECKPOINTS)


# tiny 1×8×8 test preset: the shipped classifier takes 28×28 images, so the feature term is off;
# the GAN starts at once so the discriminator's gradients are exercised
TINY = {**VQ_TINY, "disc_channels": (4, 8), "disc_start": 0, "feature_weight": 0.0}


def feature_net_folder(config: VQGANConfig) -> Path:
    """Where the feature network is read from: ``feature_net``, through
    :func:`vaelab.paths.checkpoint_path` (a relative path is inside the checkpoints folder)."""
    return checkpoint_path(config.feature_net)


def check_feature_net(config: VQGANConfig) -> Path:
    """Raise :class:`FeatureNetworkError` unless the feature network's folder holds a vaelab
    classifier for this config's image shape; returns the folder. Reads only its config.json."""
    import json

    from vaelab.classifier import KIND
    from vaelab.checkpoint import CONFIG

    folder = feature_net_folder(config)
    path = folder / CONFIG
    hint = ("set feature_net to a classifier folder for these images (python -m vaelab "
            "train-classifier), or disable the term with feature_weight=0")
    if not path.is_file():
        raise FeatureNetworkError(f"vq-gan: feature_weight={config.feature_weight} needs the feature "
                                  f"network, but there is no classifier in {folder} (looked for {path}); {hint}")
    meta = json.loads(path.read_text())
    if meta.get("kind") != KIND:
        raise FeatureNetworkError(f"vq-gan: {folder} holds no classifier (kind {meta.get('kind')!r}); {hint}")
    shape = tuple(meta["config"]["image_shape"])
    if shape != tuple(config.image_shape):
        raise FeatureNetworkError(f"vq-gan: the classifier in {folder} takes {shape} images, these are "
                                  f"{tuple(config.image_shape)}; {hint}")
    return folder


@register("vq-gan", VQGANConfig, family="adversarial", tiny=TINY,
          description="VQ-GAN: a VQ-VAE sharpened by a patch discriminator and a feature-matching loss")
class VQGAN(VQVAE):
    def __init__(self, config: VQGANConfig):
        super().__init__(config)
        if config.feature_weight > 0:
            check_feature_net(config)  # fail when the model is built, not at the first step
        # (B, C, H, W) -> (B, 1, h, w) patch logits
        self.discriminator = make_discriminator("patch", config.image_shape, config.disc_channels)
        # the classifier, loaded on first use; object.__setattr__ keeps it out of the submodules,
        # so it is not in parameters(), state_dict() or the saved weights
        object.__setattr__(self, "_feature_net", None)

    # --- the frozen feature network -------------------------------------------------------
    def feature_network(self):
        """The frozen classifier giving ``f`` (loaded from ``feature_net`` on first call)."""
        if self.config.feature_weight <= 0:
            raise FeatureNetworkError("vq-gan: this model has feature_weight=0, so no feature network")
        if self._feature_net is None:
            from vaelab.classifier import load_classifier

            net = load_classifier(check_feature_net(self.config))  # eval mode, requires_grad False
            object.__setattr__(self, "_feature_net", net)
        return self._feature_net

    def feature_distance(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """``‖f(x) − f(x̂)‖²`` per image ``(B,)`` for images ``(B, C, H, W)`` in [0, 1]; the
        gradient reaches ``x̂`` only (``f(x)`` is a constant, ``f``'s weights are frozen)."""
        net = self.feature_network().to(x_hat.device).eval()  # eval: BN running stats, no dropout
        with torch.no_grad():
            target = net.features(x)  # (B, F)
        return losses.sum_per_image((net.features(x_hat) - target).pow(2))  # (B,)

    # --- training -------------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list]:
        """Generator (encoder, decoder, learned codebook) first, then the discriminator."""
        disc = {id(p) for p in self.discriminator.parameters()}
        return {"generator": [p for p in self.parameters() if p.requires_grad and id(p) not in disc],
                "discriminator": [p for p in self.discriminator.parameters() if p.requires_grad]}

    def _frozen_discriminator(self, images: torch.Tensor) -> torch.Tensor:
        """Patch logits ``(B, 1, h, w)`` with detached discriminator weights: the gradient
        reaches the images (so the generator) and never the discriminator's parameters."""
        weights = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, weights, (images,))

    def gan_factor(self, step: int) -> float:
        """1 from ``disc_start`` on, 0 before: the GAN terms' on/off switch (a function of the step)."""
        return 1.0 if step >= self.config.disc_start else 0.0

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        c = self.config
        terms, params = self.vq_terms(x)  # recon, commitment (, codebook), total, perplexity
        x_hat = losses.params_to_image(params, c.likelihood)  # (B, C, H, W) in [0, 1]
        on = self.gan_factor(step)

        if c.feature_weight > 0:
            terms["feature"] = c.feature_weight * self.feature_distance(x, x_hat).mean()
        else:
            terms["feature"] = x.new_zeros(())
        # generator side: D's verdict on the reconstructions, through frozen weights
        terms["adv"] = on * c.adv_weight * losses.gan_generator_loss(self._frozen_discriminator(x_hat)).mean()
        generator_objective = terms["total"] + terms["feature"] + terms["adv"]
        terms["total"] = generator_objective

        # discriminator side: real images vs detached reconstructions, (B, 1, h, w) logits each
        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(x_hat.detach())
        disc = on * losses.gan_discriminator_loss(real_logits, fake_logits)
        terms["disc"] = disc
        terms["d_real"] = torch.sigmoid(real_logits).mean().detach()
        terms["d_fake"] = torch.sigmoid(fake_logits).mean().detach()
        terms["gan_on"] = torch.tensor(on)
        return LossOutput(generator_objective, terms,
                          objectives={"generator": generator_objective, "discriminator": disc})
