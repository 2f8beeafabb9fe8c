"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a
learned similarity metric"): a VAE whose decoder doubles as a GAN generator, judged by a
discriminator on its outputs.

Two optimiser groups, stepped in this order by :func:`vaelab.train.fit`:

- ``generator`` (encoder + decoder) minimises ``-ELBO_β + adv_weight · L_adv
  (+ feature_weight · L_feat)``, where ``L_adv`` is the non-saturating GAN loss
  ``-log D(x̃)`` (Goodfellow et al. 2014) on the reconstructions ``x̃ = Dec(z), z ~ q(z|x)`` and,
  as in Larsen et al. (section 2.2), on decoded prior samples ``x_p = Dec(z_p), z_p ~ N(0, I)``;
  ``L_feat = ½‖D_l(x̃) − D_l(x)‖²`` is the paper's learned similarity on the discriminator's last
  hidden layer (off by default: the pixel likelihood stays the reconstruction term).
- ``discriminator`` minimises ``-log D(x) - log(1 - D(x̃)) - log(1 - D(x_p))`` on the real batch
  and the *detached* fakes.

The two objectives do not reach each other's parameters at all: the generator's terms run the
discriminator with detached copies of its weights (``torch.func.functional_call``), and the
discriminator's run on detached images. So each group's gradient is exactly its own objective's,
whatever order or optimiser the trainer uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call

from vaelab import losses
from vaelab.models.base import LossOutput
from vaelab.models.vae import TINY as VAE_TINY
from vaelab.models.vae import VAE, VAEConfig
from vaelab.nn.discriminators import make_discriminator
from vaelab.registry import register

TINY = {**VAE_TINY, "disc_channels": (4, 8)}


@dataclass(frozen=True)
class VAEGANConfig(VAEConfig):
    discriminator: str = "image"  # "image" (one logit per image) or "patch" (PatchGAN: a grid of logits)
    disc_channels: tuple[int, ...] = (32, 64)  # output channels of the discriminator's stride-2 conv stages
    adv_weight: float = 1.0  # weight of the generator's adversarial loss, added to the VAE loss (nats per image); 10 wrecked MNIST reconstructions in 5 epochs
    feature_weight: float = 0.0  # weight of ½‖D_l(x̃) − D_l(x)‖² on D's last hidden layer (Larsen's learned similarity)
    adv_on_samples: bool = True  # also show D decoded prior samples z ~ N(0, I), not only reconstructions


@register("vae-gan", VAEGANConfig, family="adversarial", tiny=TINY,
          description="VAE-GAN: a VAE whose decoder is also a GAN generator, sharpened by a discriminator")
class VAEGAN(VAE):
    def __init__(self, config: VAEGANConfig):
        super().__init__(config)
        self.discriminator = make_discriminator(config.discriminator, config.image_shape,
                                                config.disc_channels)

    def optimizer_groups(self) -> dict[str, list]:
        """Generator (encoder + decoder) first, then the discriminator."""
        disc = {id(p) for p in self.discriminator.parameters()}
        generator = [p for p in self.parameters() if p.requires_grad and id(p) not in disc]
        return {"generator": generator,
                "discriminator": [p for p in self.discriminator.parameters() if p.requires_grad]}

    def _frozen_discriminator(self, images: torch.Tensor):
        """``(logits, features)`` of the discriminator with detached weights: gradients reach the
        images (and so the generator) but never the discriminator's parameters."""
        weights = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, weights, (images,), {"return_features": True})

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        c = self.config
        q = self.posterior(x)  # (B, D)
        z = q.sample()
        recon_params = self.decode_params(z)  # (B, C, H, W)
        recon = self.recon_nll(recon_params, x)  # (B,)
        kl = q.kl().sum(1)  # (B,)
        beta = self.kl_weight(step)
        terms = losses.elbo_terms(recon, kl, beta)
        terms["beta"] = torch.tensor(beta)
        vae_loss = terms.pop("total")

        fakes = [losses.params_to_image(recon_params, c.likelihood)]  # x̃, (B, C, H, W)
        if c.adv_on_samples:
            z_prior = torch.randn_like(z)  # (B, D)
            fakes.append(self.decode(z_prior))  # x_p
        fake = torch.cat(fakes)  # (kB, C, H, W), k = 1 or 2

        # generator side: the discriminator's verdict, through frozen weights
        fake_logits, fake_features = self._frozen_discriminator(fake)
        adv = losses.gan_generator_loss(fake_logits).mean()
        generator_objective = vae_loss + c.adv_weight * adv
        terms["adv"] = adv
        if c.feature_weight > 0:
            _, real_features = self._frozen_discriminator(x)
            diff = fake_features[:len(x)] - real_features.detach()  # reconstructions vs their inputs
            feature = 0.5 * losses.sum_per_image(diff.pow(2)).mean()
            generator_objective = generator_objective + c.feature_weight * feature
            terms["feature"] = feature

        # discriminator side: real batch vs detached fakes
        real_logits = self.discriminator(x)
        fake_logits_d = self.discriminator(fake.detach())
        disc = losses.gan_discriminator_loss(real_logits, fake_logits_d)
        terms["disc"] = disc
        terms["d_real"] = torch.sigmoid(real_logits).mean().detach()  # D's mean P(real) on real images
        terms["d_fake"] = torch.sigmoid(fake_logits_d).mean().detach()  # ... and on generated ones
        terms["total"] = generator_objective
        return LossOutput(generator_objective, terms,
                          objectives={"generator": generator_objective, "discriminator": disc})
