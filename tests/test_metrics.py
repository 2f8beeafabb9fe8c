"""Metrics against cases with known answers, and `eval` over every registered variant."""

import json

import numpy as np
import pytest
import torch

import vaelab
from vaelab import metrics
from vaelab.artifacts import load_artifacts
from vaelab.evaluate import EvalSettings, evaluate
from vaelab.registry import list_variants


def test_perfect_reconstruction_has_zero_mse():
    x = torch.rand(4, 1, 5, 5)
    assert metrics.mse_per_pixel(x, x) == 0.0
    assert metrics.mse_per_pixel(x + 0.5, x) == pytest.approx(0.25)


def test_bce_of_binary_images_reconstructed_exactly_is_near_zero():
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5))
    assert metrics.bce_per_image(x, x) < 16 * 1e-5


def test_uniform_usage_has_perplexity_k_and_one_code_has_one():
    counts = metrics.codebook_usage(torch.arange(64).repeat(3), 64)
    health = metrics.codebook_health(counts)
    assert health["perplexity"] == pytest.approx(64) and health["dead_codes"] == 0
    one = metrics.codebook_health(metrics.codebook_usage(torch.zeros(100, dtype=torch.long), 8))
    assert one["perplexity"] == pytest.approx(1.0) and one["used_codes"] == 1 and one["dead_codes"] == 7


def test_knn_of_labels_as_coordinates_is_perfect():
    rng = np.random.default_rng(0)
    ytr, yte = rng.integers(0, 10, 200), rng.integers(0, 10, 50)
    emb = lambda y: np.stack([y, np.zeros_like(y)], 1).astype(float)  # noqa: E731
    assert metrics.knn_accuracy(emb(ytr), ytr, emb(yte), yte) == 1.0


def test_trustworthiness_of_an_isometry_is_one():
    x = np.random.default_rng(0).normal(size=(100, 2))
    assert metrics.trustworthiness(x, x * 3 + 1) == pytest.approx(1.0)


def test_active_units_counts_varying_posterior_means():
    means = torch.zeros(500, 3)
    means[:, 0] = torch.randn(500)  # varies: active
    means[:, 1] = 0.05 * torch.randn(500)  # variance 0.0025 < 0.01: inactive
    count, var = metrics.active_units(means)
    assert count == 1 and var[2] == 0


def test_frechet_distance_known_values():
    a = np.random.default_rng(0).normal(size=(5000, 3))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance(a, a + np.array([2.0, 0, 0])) == pytest.approx(4.0, abs=1e-6)


def test_iwae_bound_is_above_elbo_and_tightens_with_k():
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True).eval()
    x = torch.bernoulli(torch.rand(32, 1, 8, 8))
    torch.manual_seed(1)
    w = model.log_importance_weights(x, k=2000)
    neg_elbo = (-w).mean(0).mean()
    bounds = [metrics.iwae_nll(w[:k]).mean() for k in (1, 10, 100, 2000)]
    assert bounds[0] == pytest.approx(float(-w[0].mean()))
    # log-likelihood bound >= ELBO, i.e. NLL bound <= -ELBO, and it decreases with k
    assert bounds[-1] <= neg_elbo
    assert all(b2 <= b1 + 1e-4 for b1, b2 in zip(bounds, bounds[1:]))


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_importance_weights_average_to_the_models_own_elbo(name):
    """E_q[log w] is the ELBO, so the mean log-weight must match the loss's -ELBO; for hvae the
    one-level formula (z₁ scored under N(0, I)) is about 1 % off, beyond this tolerance."""
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True).eval()
    x = torch.bernoulli(torch.rand(8, 1, 8, 8))
    torch.manual_seed(0)
    mc = -model.log_importance_weights(x, k=4000).mean(0)
    torch.manual_seed(1)
    with torch.no_grad():
        terms = [model.loss(x).terms["neg_elbo"] for _ in range(2000)]
    assert float(mc.mean()) == pytest.approx(float(torch.stack(terms).mean()), rel=0.003)
    assert metrics.iwae_nll(model.log_importance_weights(x, k=500)).mean() <= mc.mean()


@pytest.fixture(scope="module")
def small_digits():
    return vaelab.load_dataset("digits").subset(400, 120)


@pytest.mark.parametrize("name", [e.name for e in list_variants()])
def test_eval_runs_on_every_variant(name, tmp_path, small_digits):
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True)
    vaelab.fit(model, small_digits, epochs=1, batch_size=100, progress=False, out_dir=tmp_path / "ck")
    settings = EvalSettings(iw_samples=20, n_train=400, n_trust=100, umap=False, batch_size=60)
    results = evaluate(tmp_path / "ck", small_digits, settings, write=True, progress=None)
    info = model.info
    assert {"reconstruction", "loss", "embedding"} <= set(results)
    assert ("likelihood" in results) == info.variational
    assert ("codebook" in results) == (info.latent == "discrete")
    assert 0 <= results["embedding"]["knn_model"] <= 1
    # AE-vs-PCA at the same size exists exactly when the latent is smaller than the image
    assert ("mse_ratio_to_pca" in results["reconstruction"]) == (info.latent_dim < 64)
    stored = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert stored["variant"] == name
    arrays = load_artifacts(tmp_path / "ck")
    assert arrays["coords_model"].shape == (120, 2) and arrays["coords_pca"].shape == (120, 2)
    assert np.array_equal(arrays["test_labels"], small_digits.test_y.numpy())
    assert ("kl_per_dim" in arrays) == ("kl_per_dim" in results.get("posterior", {}))
    # the checkpoint still loads, and re-saving keeps the metrics beside it
    vaelab.save_checkpoint(vaelab.load_checkpoint(tmp_path / "ck"), tmp_path / "ck")
    assert (tmp_path / "ck" / "metrics.json").is_file()


def test_umap_projection_is_cached(tmp_path):
    import time

    from vaelab.projections import umap_2d

    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 10)).astype(np.float32), rng.normal(size=(50, 10)).astype(np.float32)
    start = time.perf_counter()
    tr1, te1 = umap_2d(train, test, cache_dir=tmp_path)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    tr2, te2 = umap_2d(train, test, cache_dir=tmp_path)
    warm = time.perf_counter() - start
    assert tr1.shape == (300, 2) and te1.shape == (50, 2)
    assert np.array_equal(te1, te2) and warm < cold
    assert len(list(tmp_path.glob("umap-*.safetensors"))) == 1


def test_no_pca_ratio_when_the_latent_is_as_large_as_the_image(tmp_path, small_digits):
    torch.manual_seed(0)
    model = vaelab.create("vq-vae", tiny=True, latent_dim=32)  # 32 × 2 × 2 = 128 numbers > 64 pixels
    assert model.info.latent_dim >= 64
    vaelab.save_checkpoint(model, tmp_path / "ck", dataset="digits")
    settings = EvalSettings(iw_samples=2, n_train=400, n_trust=100, umap=False, batch_size=60)
    rec = evaluate(tmp_path / "ck", small_digits, settings, progress=None)["reconstruction"]
    assert "mse_ratio_to_pca" not in rec and "exactly" in rec["pca_note"]


def test_loss_section_scores_the_model_as_training_left_it(tmp_path, small_digits):
    """A KL warm-up of 6 steps over 2 epochs of 4 steps: the test loss is the full ELBO (β = 1),
    not the step-0 loss that would weight the KL by 0."""
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True, kl_warmup="linear", warmup_steps=6)
    vaelab.fit(model, small_digits, epochs=2, batch_size=100, progress=False, out_dir=tmp_path / "ck")
    settings = EvalSettings(iw_samples=5, n_train=400, n_trust=100, umap=False, batch_size=60)
    loss = evaluate(tmp_path / "ck", small_digits, settings, progress=None)["loss"]
    assert loss["beta"] == 1.0
    assert loss["total"] == pytest.approx(loss["neg_elbo"])
