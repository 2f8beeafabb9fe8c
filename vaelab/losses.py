"""Pure loss functions: tensors in, tensors out, no module state.

Conventions: images are ``(B, C, H, W)`` in [0, 1]; every per-image loss is *summed* over pixels
and latent units and *averaged* over the batch, so numbers read as nats per image and compare
with published tables (Kingma & Welling 2014, appendix B; Burda et al. 2015).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaelab.distributions import DiagonalGaussian

LIKELIHOODS = ("bernoulli", "gaussian", "mse")


def reconstruction_nll(params: torch.Tensor, x: torch.Tensor, likelihood: str,
                       sigma: float = 1.0) -> torch.Tensor:
    """Per-image negative log-likelihood (or squared error) of ``x`` under the decoder output.

    - ``bernoulli``: ``params`` are logits; BCE summed over pixels (Kingma & Welling, C.1).
    - ``gaussian``: ``params`` are means, fixed standard deviation ``sigma``; the full Gaussian
      NLL including its constant, so it is a proper likelihood.
    - ``mse``: sum of squared errors, the plain autoencoder's objective (no constant).
    Returns shape ``(B,)``.
    """
    dims = tuple(range(1, x.dim()))
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(params, x, reduction="none").sum(dims)
    if likelihood == "gaussian":  # N(x; params, σ²) per pixel, log σ² = 2 log σ
        logvar = torch.full_like(params, 2 * math.log(sigma))
        return DiagonalGaussian(params, logvar).nll(x).sum(dims)
    if likelihood == "mse":
        return ((x - params) ** 2).sum(dims)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {LIKELIHOODS}")


def params_to_image(params: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Decoder output -> image: the Bernoulli mean for logits, the mean itself otherwise."""
    return torch.sigmoid(params) if likelihood == "bernoulli" else params


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per latent unit, closed form (Kingma & Welling, B),
    from :class:`~vaelab.distributions.DiagonalGaussian`. Same shape as ``mean``; sum over units
    for the per-image KL."""
    return DiagonalGaussian(mean, logvar).kl()


def sum_per_image(t: torch.Tensor) -> torch.Tensor:
    """Sum every dimension but the batch one: ``(B, ...) -> (B,)``."""
    return t.reshape(t.shape[0], -1).sum(1)


def elbo_terms(recon_nll: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Batch-mean terms of the (β-weighted) negative ELBO from per-image ``recon_nll`` and ``kl``.

    ``-ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z))``; the β-VAE (Higgins et al. 2017) weights
    the KL by β. ``neg_elbo`` is always reported with β = 1 so models compare.
    """
    recon = recon_nll.mean()
    kl_mean = kl.mean()
    return {"total": recon + beta * kl_mean, "recon": recon, "kl": kl_mean,
            "neg_elbo": recon + kl_mean}


def bernoulli_kl(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)) per unit: the sparse autoencoder's penalty
    (Ng, "Sparse autoencoder" CS294A notes), with ``rho_hat`` the mean activation of each unit."""
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


def sigmoid_jacobian_frobenius(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Exact ||∂h/∂x||_F² per sample for ``h = sigmoid(W x + b)`` (Rifai et al. 2011, eq. 5).

    ``J_ji = h_j (1 - h_j) W_ji``, so ``||J||² = Σ_j (h_j (1 - h_j))² Σ_i W_ji²``.
    ``h``: ``(B, H)``; ``weight``: ``(H, D)``. Returns ``(B,)``.
    """
    return ((h * (1 - h)) ** 2 * weight.pow(2).sum(1)).sum(1)


def jacobian_frobenius_autograd(fn, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """||∂fn(x)/∂x||_F² per sample by autograd, one backward pass per output unit.

    For any encoder; costs ``H`` backward passes for an ``H``-unit code. ``x``: ``(B, ...)``,
    ``fn(x)``: ``(B, H)``; samples must not interact (no batch norm). Returns ``(B,)``.
    """
    x = x.detach().requires_grad_(True) if not x.requires_grad else x
    h = fn(x)
    total = x.new_zeros(x.shape[0])
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=create_graph, retain_graph=True)
        total = total + g.reshape(g.shape[0], -1).pow(2).sum(1)
    return total


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(G(z))`` per image (Goodfellow et al. 2014,
    section 3): BCE of the discriminator's logits on generated images against "real".

    ``fake_logits``: ``(B, 1)`` for an image discriminator or ``(B, 1, h, w)`` for a patch one;
    patch losses are averaged over the grid. Returns ``(B,)``.
    """
    per_logit = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits),
                                                   reduction="none")
    return per_logit.reshape(per_logit.shape[0], -1).mean(1)


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss ``-log D(x) - log(1 - D(G(z)))``, BCE with logits, as a scalar:
    the batch mean over real images plus the batch mean over generated ones (the two batches may
    differ in size). Logit shapes as in :func:`gan_generator_loss`."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="none")
    return real.mean() + fake.mean()
