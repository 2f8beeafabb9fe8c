"""Metrics as pure functions of tensors/arrays, each meaning what the published tables mean.

- reconstruction error (MSE per pixel, BCE per image in nats) and PCA's at the same dimension;
- the importance-weighted bound on -log p(x) (Burda et al. 2015), from ``(k, B)`` log-weights;
- per-dimension KL and active units (Burda et al. 2015, section 5.2: Cov_x(E_q[z_u]) > 0.01);
- codebook usage, perplexity and dead codes over a whole dataset (not one batch);
- k-NN accuracy (fit on train embeddings, scored on test) and trustworthiness of an embedding.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vaelab.nn import bottleneck

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active when Cov_x(E_q[z_u]) exceeds this
KL_INACTIVE_NATS = 0.01  # a dimension whose mean KL is below this carries (almost) no information about x


def mse_per_pixel(recon: torch.Tensor, x: torch.Tensor) -> float:
    """Mean squared error over pixels and images."""
    return float(((recon - x) ** 2).mean())


def bce_per_image(recon: torch.Tensor, x: torch.Tensor, eps: float = 1e-6) -> float:
    """Binary cross-entropy of ``x`` under Bernoulli means ``recon``, summed over pixels, averaged
    over images (nats). Means are clipped to [eps, 1 - eps] so PCA/linear outputs are scoreable."""
    r = recon.clamp(eps, 1 - eps)
    return float(F.binary_cross_entropy(r, x, reduction="none").flatten(1).sum(1).mean())


def pca_reconstruction(train: np.ndarray, test: np.ndarray, d: int) -> np.ndarray:
    """Test images reconstructed by PCA with ``d`` components fitted on ``train`` (flattened)."""
    from sklearn.decomposition import PCA

    d = min(d, train.shape[1], train.shape[0])
    pca = PCA(d, svd_solver="full" if train.shape[1] <= 1000 else "auto").fit(train)
    return pca.inverse_transform(pca.transform(test))


def iwae_nll(log_weights: torch.Tensor) -> torch.Tensor:
    """Per-image bound ``-log (1/k Σ_i w_i)`` from log-weights ``(k, B)``: ``log w = log p(x, z_i) -
    log q(z_i|x)``. k = 1 gives the negative ELBO; it decreases (tightens) as k grows."""
    k = log_weights.shape[0]
    return -(torch.logsumexp(log_weights, 0) - math.log(k))


def active_units(posterior_means: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, torch.Tensor]:
    """Number of units whose posterior mean varies across the data: ``Cov_x(E_q[z_u]) > threshold``.
    ``posterior_means``: ``(N, D)``. Returns the count and the per-unit variances."""
    var = posterior_means.var(0, unbiased=True)
    return int((var > threshold).sum()), var


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code is used over all positions of all images: ``(K,)`` counts."""
    return torch.bincount(indices.reshape(-1).long(), minlength=codebook_size)


def perplexity(counts: torch.Tensor) -> float:
    """``exp(H(p))`` of the usage distribution: K for uniform use, 1 for a single code
    (:func:`vaelab.nn.bottleneck.perplexity`, as a number)."""
    return float(bottleneck.perplexity(counts))


def codebook_health(counts: torch.Tensor) -> dict:
    used = int((counts > 0).sum())
    k = len(counts)
    return {"codebook_size": k, "used_codes": used, "dead_codes": k - used,
            "usage_fraction": used / k, "perplexity": perplexity(counts),
            "perplexity_fraction": perplexity(counts) / k}


def knn_accuracy(train_emb: np.ndarray, train_y: np.ndarray, test_emb: np.ndarray,
                 test_y: np.ndarray, k: int = 5) -> float:
    """k-NN classification accuracy: fit on train embeddings, score on test ones."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(train_emb, train_y).score(test_emb, test_y))


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int = 5) -> float:
    """scikit-learn's trustworthiness of ``low`` as an embedding of ``high`` (1 = neighbours kept)."""
    from sklearn.manifold import trustworthiness as tw

    return float(tw(high, low, n_neighbors=k))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b`` ``(N, F)``."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
