"""The names of what evaluation writes into a checkpoint's ``metrics.json``, in one place.

:mod:`vaelab.evaluate` writes sections (``reconstruction``, ``likelihood``, ...) of named numbers;
every reader that is not evaluation itself — the README's results table, the Hub's model card,
the app's Models table, the command line — asks for a number by its dotted name through
:func:`metric`, which refuses a name that is not listed here. ``tests/test_metric_keys.py``
checks that every name listed is found in a real ``metrics.json`` and that every ``metric(...)``
call in the package names a listed key, so a reader cannot ask for a key evaluation never writes.
"""

from __future__ import annotations

import math

KEYS: dict[str, str] = {
    # reconstruction: on the whole test set
    "reconstruction.mse": "squared error per pixel of the model's rebuilds",
    "reconstruction.bce": "binary cross-entropy per image, nats",
    "reconstruction.pca_mse": "PCA's squared error per pixel with as many components as the latent has numbers",
    "reconstruction.pca_dims": "the number of PCA components",
    "reconstruction.mse_ratio_to_pca": "the model's error over PCA's",
    # the model's own objective on the test set
    "loss.total": "the model's training objective",
    "loss.neg_elbo": "the negative ELBO, nats per image (variational models)",
    # the importance-weighted bound (Burda et al. 2015)
    "likelihood.iwae_nll": "−log p(x) bounded with k importance samples, nats per image",
    "likelihood.iwae_nll_se": "its standard error over the images scored",
    "likelihood.iw_samples": "k, the importance samples per image",
    "likelihood.images": "how many test images were scored",
    "likelihood.whole_test_set": "whether they were all of the test set",
    # the posterior
    "posterior.active_units": "latent dimensions whose posterior mean varies across images",
    "posterior.latent_dims": "latent dimensions",
    # the 2-D maps
    "embedding.knn_model": "5-NN accuracy in the model's 2-D map",
    "embedding.trust_model": "trustworthiness of the model's 2-D map",
    "embedding.knn_pca": "5-NN accuracy in PCA's 2-D map of the pixels",
    "embedding.knn_umap": "5-NN accuracy in UMAP's 2-D map of the pixels",
    "embedding.knn_latent_full": "5-NN accuracy in the whole latent",
    "embedding.model_projection": "how the model's latent became the 2-D map, in words",
    # discrete codes (the first level; per level in codebook.levels)
    "codebook.levels": "code use per level (bottom first)",
    "codebook.usage_fraction": "share of the codebook used on the test set",
    "codebook.used_codes": "codes used on the test set",
    "codebook.perplexity": "exp of the entropy of code use",
    "codebook.codebook_size": "K",
    "codebook.per_variable": "code use counted per categorical variable (models whose positions are independent variables)",
    # the shipped classifier
    "classifier.accuracy_on_reconstructions": "the classifier's accuracy on the rebuilds",
    "classifier.frechet_distance_samples": "Fréchet distance of samples in the classifier's feature space",
    # the whole file
    "binarized_test_set": "whether the test set was binarized as the model was trained",
}


def metric(metrics: dict, name: str, default=None):
    """The number (or section) ``name`` (dotted, e.g. ``"likelihood.iwae_nll"``) of a
    ``metrics.json`` dict, or ``default`` when the file lacks it. A name that is not in
    :data:`KEYS` is a programming error: it raises ``KeyError``."""
    if name not in KEYS:
        raise KeyError(f"{name!r} is not a metrics key evaluation writes (see vaelab.metric_keys.KEYS)")
    value = metrics
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def with_se(value: float, se: float | None) -> str:
    """A Monte-Carlo figure to the precision its standard error allows: the error rounded to one
    significant figure, the value to the same decimal place (``82.8 ± 0.8``); without a standard
    error, one decimal."""
    if se is None or not math.isfinite(se) or se <= 0:
        return f"{value:.1f}"
    places = max(0, -math.floor(math.log10(se)))
    return f"{value:.{places}f} ± {se:.{places}f}"
