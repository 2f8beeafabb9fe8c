"""``python -m vaelab eval CHECKPOINT``: every metric that applies to the model; with ``write``
(``eval --write``) also stored in the checkpoint's ``metrics.json``, beside the cached artifacts
the app draws from without a dataset. Scoring alone never touches the folder, so trying ``eval``
on a shipped checkpoint cannot overwrite the numbers it ships with.

Sections are a table of ``(name, applies(info), compute(ctx))``; a section that does not apply
to a model (IWAE for a deterministic autoencoder, codebook health for a continuous latent) is
skipped, so no section knows a class name. Each section reports its time when done, and the long
loops inside them (encoding, the IWAE bound, projections, sampling) show a progress bar.

The defaults keep one MNIST model to a few minutes on two CPU cores; :class:`EvalSettings` says
which numbers are computed on a subset and how to get the full-set ones.

Artifacts (``artifacts.safetensors``, format in :mod:`vaelab.artifacts`): 2-D test-set coordinates
for the model and for PCA (and UMAP) of the pixels, the labels, the test indices they belong to,
the posterior means/codes of the test set where small, codebook usage counts and per-dimension KL.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vaelab import metrics
from vaelab.artifacts import ARTIFACTS, save_artifacts  # noqa: F401  (ARTIFACTS re-exported: the file's name)
from vaelab.checkpoint import METRICS, load_checkpoint, read_config, read_json
from vaelab.folders import write_json
from vaelab.data import Dataset, load_dataset
from vaelab.losses import gaussian_kl
from vaelab.models.base import ModelInfo


@dataclass(frozen=True)
class EvalSettings:
    iw_samples: int = 1000  # k of the importance-weighted bound (Burda et al. use 5000; >= 1000 compares)
    iw_images: int | None = 1000  # first test images scored by the IWAE bound (None = all: ~10x the time)
    n_train: int = 10000  # train images used to fit k-NN, PCA and UMAP of embeddings
    n_trust: int = 2000  # test images used for trustworthiness (O(n²) memory)
    fd_samples: int = 5000  # samples (and test images) for the Fréchet distance; a code prior draws them slowly
    knn_k: int = 5  # neighbours for k-NN accuracy and trustworthiness
    umap: bool = True  # also compute UMAP coordinates (slow the first time; cached)
    umap_latent_max_dims: int = 64  # UMAP of the model's latent only up to this many dimensions
    seed: int = 0  # seeds binarization and sampling
    batch_size: int = 500  # images per forward pass


@dataclass
class Context:
    model: object
    info: ModelInfo
    data: Dataset
    test_x: torch.Tensor  # as the model is scored on (binarized if it was trained binarized)
    settings: EvalSettings
    binarized: bool
    step: int = 0  # optimisation steps the checkpoint was trained for: loss schedules (warm-up, τ) as at its end
    bars: bool = False  # show tqdm progress bars inside long sections
    cache: dict = field(default_factory=dict)

    def bar(self, iterable=None, desc: str = "", total: int | None = None, unit: str = "batch"):
        """A transient tqdm bar (gone when done: the section's timing line replaces it)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=f"  {desc}", total=total, unit=unit, leave=False, disable=not self.bars)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None, which: str):
        """Latents of ``x`` in batches: flat vectors, means, log-variances, indices per level."""
        flats, means, logvars, indices = [], [], [], []
        bs = self.settings.batch_size
        with torch.no_grad():
            for i in self.bar(range(0, len(x), bs), f"encoding the {which} images"):
                lat = self.model.encode(x[i:i + bs], None if y is None else y[i:i + bs])
                flats.append(lat.flat())
                if lat.mean is not None and not isinstance(lat.mean, tuple):
                    means.append(lat.mean)
                    logvars.append(lat.logvar)
                if lat.indices is not None:
                    idx = lat.indices if isinstance(lat.indices, tuple) else (lat.indices,)
                    indices.append(idx)
        out = {"flat": torch.cat(flats)}
        if means:
            out["mean"], out["logvar"] = torch.cat(means), torch.cat(logvars)
        if indices:
            out["indices"] = tuple(torch.cat(level) for level in zip(*indices))
        return out

    @property
    def test_latent(self):
        if "test" not in self.cache:
            self.cache["test"] = self.encode(self.test_x, self.data.test_y, "test")
        return self.cache["test"]

    @property
    def train_latent(self):
        if "train" not in self.cache:
            n = self.settings.n_train
            self.cache["train"] = self.encode(self.data.train_x[:n], self.data.train_y[:n], "train")
        return self.cache["train"]

    def reconstructions(self) -> torch.Tensor:
        if "recon" not in self.cache:
            bs = self.settings.batch_size
            with torch.no_grad():
                self.cache["recon"] = torch.cat([
                    self.model.reconstruct(self.test_x[i:i + bs], self.data.test_y[i:i + bs])
                    for i in self.bar(range(0, len(self.test_x), bs), "reconstructing the test images")])
        return self.cache["recon"]


Section = tuple[str, Callable[[ModelInfo], bool], Callable[[Context], dict]]
SECTIONS: list[Section] = []
ARTIFACT_MAKERS: list[Callable[[Context], dict]] = []


def section(name: str, applies: Callable[[ModelInfo], bool] = lambda info: True):
    def decorate(fn):
        SECTIONS.append((name, applies, fn))
        return fn
    return decorate


# --- sections --------------------------------------------------------------------------------

@section("reconstruction")
def reconstruction(ctx: Context) -> dict:
    recon = ctx.reconstructions().clamp(0, 1)
    x = ctx.test_x
    d, pixels = ctx.info.latent_dim, x[0].numel()
    out = {"mse": metrics.mse_per_pixel(recon, x), "bce": metrics.bce_per_image(recon, x),
           "latent_numbers": d, "pixels": pixels}
    if d >= pixels:  # PCA with as many components as pixels is exact: no comparison to make
        out["pca_note"] = (f"the latent holds {d} numbers for {pixels} pixels; PCA at that size "
                           "reconstructs exactly, so the AE/PCA ratio is not defined")
        return out
    n = ctx.settings.n_train
    pca = torch.tensor(metrics.pca_reconstruction(ctx.data.train_x[:n].flatten(1).numpy(),
                                                  x.flatten(1).numpy(), d)).reshape(x.shape).float()
    out.update({"pca_dims": d, "pca_mse": metrics.mse_per_pixel(pca.clamp(0, 1), x),
                "pca_bce": metrics.bce_per_image(pca, x)})
    out["mse_ratio_to_pca"] = out["mse"] / out["pca_mse"] if out["pca_mse"] > 0 else float("inf")
    return out


@section("loss")
def loss_terms(ctx: Context) -> dict:
    """The model's own loss terms on the test set (the ELBO and its terms for VAEs)."""
    from vaelab.train import TrainSettings, evaluate_loss

    torch.manual_seed(ctx.settings.seed)  # sampling inside the loss
    # test_x is already binarized when the model was trained binarized
    settings = TrainSettings(seed=ctx.settings.seed, val_batch_size=ctx.settings.batch_size)
    return evaluate_loss(ctx.model, ctx.test_x, ctx.data.test_y, settings, ctx.step)


@section("likelihood", lambda info: info.variational)
def likelihood(ctx: Context) -> dict:
    s = ctx.settings
    x = ctx.test_x[:s.iw_images or None]  # 0 or None: all of them
    y = ctx.data.test_y[:s.iw_images or None]
    try:
        ctx.model.log_importance_weights(x[:1], y[:1], k=1)
    except TypeError as error:
        return {"skipped": str(error)}
    torch.manual_seed(s.seed)
    nll, elbo = [], []
    chunk = max(1, 20000 // max(1, s.iw_samples))  # images per call keep k·B decoder passes bounded
    with torch.no_grad(), ctx.bar(desc=f"IWAE bound, k={s.iw_samples}", total=len(x), unit="img") as bar:
        for i in range(0, len(x), chunk):
            # (k, B) log-weights, drawn 500 samples at a time
            w = torch.cat([ctx.model.log_importance_weights(x[i:i + chunk], y[i:i + chunk], k=min(500, s.iw_samples - j))
                           for j in range(0, s.iw_samples, 500)])
            nll.append(metrics.iwae_nll(w))
            elbo.append(-w.mean(0))
            bar.update(w.shape[1])
    nll, elbo = torch.cat(nll).double(), torch.cat(elbo).double()
    se = lambda v: float(v.std() / math.sqrt(len(v))) if len(v) > 1 else None  # noqa: E731  (over images)
    return {"iwae_nll": float(nll.mean()), "iwae_nll_se": se(nll), "neg_elbo_mc": float(elbo.mean()),
            "neg_elbo_mc_se": se(elbo), "iw_samples": s.iw_samples, "images": len(x),
            "whole_test_set": len(x) == len(ctx.test_x),
            "binarization": "stochastic, fixed seed" if ctx.binarized else "none (grey levels)"}


@section("posterior", lambda info: info.variational)
def posterior(ctx: Context) -> dict:
    lat = ctx.test_latent
    if "mean" not in lat:
        return {"skipped": "posterior means per level are not a single tensor"}
    kl = gaussian_kl(lat["mean"], lat["logvar"]).mean(0)  # (D,): mean over test images
    count, var = metrics.active_units(lat["mean"])
    order = torch.argsort(kl, descending=True)
    return {"kl_per_dim": kl.tolist(), "active_units": count, "latent_dims": len(kl),
            "posterior_mean_variance": var.tolist(), "dims_by_kl": order.tolist()}


@section("codebook", lambda info: info.latent == "discrete")
def codebook(ctx: Context) -> dict:
    k = ctx.info.codebook_size
    levels = [metrics.codebook_health(metrics.codebook_usage(idx, k)) for idx in ctx.test_latent["indices"]]
    out = {"levels": levels, **levels[0]}
    if not getattr(ctx.info, "shared_codebook", True):
        # each position is its own categorical variable: pooling their counts would hide a variable
        # stuck on one category behind the others' use, so each is counted apart
        idx = ctx.test_latent["indices"][0].reshape(len(ctx.test_x), -1)  # (N, variables)
        per = [metrics.codebook_health(metrics.codebook_usage(idx[:, v], k)) for v in range(idx.shape[1])]
        out["per_variable"] = {"variables": len(per),
                               "used_codes_mean": float(np.mean([p["used_codes"] for p in per])),
                               "perplexity_mean": float(np.mean([p["perplexity"] for p in per])),
                               "perplexity_min": float(min(p["perplexity"] for p in per)),
                               "perplexity_max": float(max(p["perplexity"] for p in per))}
        out["pooled_over_variables"] = True
    return out


@section("embedding")
def embedding(ctx: Context) -> dict:
    from vaelab.projections import pca_2d, umap_2d

    s = ctx.settings
    ytr = ctx.data.train_y[:s.n_train].numpy()
    yte = ctx.data.test_y.numpy()
    tr_lat, te_lat = ctx.train_latent["flat"].numpy(), ctx.test_latent["flat"].numpy()
    px_tr = ctx.data.train_x[:s.n_train].flatten(1).numpy()
    px_te = ctx.data.test_x.flatten(1).numpy()
    # name -> (project, train features, test features); each map is projected, then scored
    maps = {"model": (pca_2d, tr_lat, te_lat), "pca": (pca_2d, px_tr, px_te)}
    if s.umap:
        maps["umap"] = (umap_2d, px_tr, px_te)
        if 2 < tr_lat.shape[1] <= s.umap_latent_max_dims:
            maps["model_umap"] = (umap_2d, tr_lat, te_lat)
    trust_idx = slice(0, s.n_trust)
    out = {"knn_k": s.knn_k, "n_train": len(ytr), "n_test": len(yte), "n_trust": min(s.n_trust, len(yte)),
           "model_projection": "latent itself" if tr_lat.shape[1] == 2 else "PCA of the latent",
           "knn_latent_full": metrics.knn_accuracy(tr_lat, ytr, te_lat, yte, s.knn_k)}
    coords = {}
    with ctx.bar(desc="2-D maps", total=len(maps), unit="map") as bar:
        for name, (project, train, test) in maps.items():
            bar.set_postfix_str(name)
            tr, te = project(train, test)  # (n_train, 2), (n_test, 2)
            out[f"knn_{name}"] = metrics.knn_accuracy(tr, ytr, te, yte, s.knn_k)
            out[f"trust_{name}"] = metrics.trustworthiness(px_te[trust_idx], te[trust_idx], s.knn_k)
            coords[name] = te
            bar.update()
    ctx.cache["coords"] = coords
    return out


def _classifier():
    from vaelab.paths import classifier_dir

    folder = classifier_dir()
    if not (folder / "config.json").is_file():
        return None
    from vaelab.classifier import load_classifier  # shipped by the project
    return load_classifier(folder)


@section("classifier")
def classifier_metrics(ctx: Context) -> dict:
    clf = _classifier()
    if clf is None or tuple(clf.config.image_shape) != tuple(ctx.test_x.shape[1:]):
        return {"skipped": "no shipped classifier for this image size"}
    labels, _ = clf.predict(ctx.reconstructions().clamp(0, 1))
    out = {"accuracy_on_reconstructions": float((labels == ctx.data.test_y).float().mean()),
           "accuracy_on_originals": float((clf.predict(ctx.data.test_x)[0] == ctx.data.test_y).float().mean())}
    if ctx.info.can_sample:
        torch.manual_seed(ctx.settings.seed)
        n = min(ctx.settings.fd_samples, len(ctx.test_x))
        y = ctx.data.test_y[:n] if ctx.info.conditional else None
        with torch.no_grad():
            samples = torch.cat([ctx.model.sample(min(500, n - i), None if y is None else y[i:i + 500])
                                 for i in ctx.bar(range(0, n, 500), f"sampling {n} images")]).clamp(0, 1)
        out["frechet_distance_samples"] = metrics.frechet_distance(
            clf.features(samples).numpy(), clf.features(ctx.data.test_x[:n]).numpy())
        out["frechet_samples"] = n
    return out


# --- driver ----------------------------------------------------------------------------------

def artifacts(ctx: Context, results: dict) -> dict[str, np.ndarray]:
    """The arrays the app draws from, at full precision (:func:`save_artifacts` compacts them)."""
    arrays = {"test_labels": ctx.data.test_y.numpy(), "test_index": np.arange(len(ctx.data.test_y))}
    for name, te in ctx.cache.get("coords", {}).items():
        arrays[f"coords_{name}"] = np.asarray(te)
    lat = ctx.test_latent
    if ctx.info.latent == "continuous" and lat["flat"].shape[1] <= 64:
        arrays["latent_test"] = lat["flat"].numpy()
    if "indices" in lat:
        for i, idx in enumerate(lat["indices"]):
            arrays[f"indices_level{i}"] = idx.numpy().astype(np.int16 if ctx.info.codebook_size < 32768 else np.int32)
            arrays[f"usage_level{i}"] = metrics.codebook_usage(idx, ctx.info.codebook_size).numpy()
    if "posterior" in results and "kl_per_dim" in results["posterior"]:
        arrays["kl_per_dim"] = np.asarray(results["posterior"]["kl_per_dim"], dtype=np.float32)
    return arrays


def evaluate(folder: str | Path, data: Dataset | None = None, settings: EvalSettings | None = None,
             write: bool = False, progress: Callable[[str], None] | None = print) -> dict:
    """Compute every applicable section for the checkpoint in ``folder`` and return the results.

    ``write``: also store them in ``folder/metrics.json`` and the app's cached arrays in
    ``folder/artifacts.safetensors`` (both replaced). ``progress``: called with one line per
    finished section and its time; ``None`` is silent and shows no progress bars either.
    """
    settings = settings or EvalSettings()
    folder = Path(folder)
    meta = read_config(folder)
    model = load_checkpoint(folder)
    if data is None:
        data = load_dataset(meta.get("dataset") or "digits")
    history = read_json(folder, "history.json", {}) or {}
    binarized = history.get("settings", {}).get("binarize") == "dynamic"
    test_x = data.test_x
    if binarized:
        test_x = torch.bernoulli(test_x, generator=torch.Generator().manual_seed(settings.seed))
    epochs = history.get("epochs") or [{}]
    ctx = Context(model, model.info, data, test_x, settings, binarized, step=epochs[-1].get("step", 0),
                  bars=progress is not None)
    results: dict = {"variant": meta["variant"], "dataset": data.name, "test_images": len(test_x),
                     "binarized_test_set": binarized, "settings": settings.__dict__}
    timings = {}
    for name, applies, compute in SECTIONS:
        if not applies(ctx.info):
            continue
        start = time.perf_counter()
        results[name] = compute(ctx)
        timings[name] = round(time.perf_counter() - start, 3)
        if progress:
            progress(f"  {name:<15} {timings[name]:7.1f}s")
    results["seconds"] = timings
    if write:
        write_json(folder / METRICS, results)
        save_artifacts(folder, artifacts(ctx, results))
    return results


def summary_rows(results: dict) -> list[tuple[str, str]]:
    """Flat ``(metric, value)`` rows for the printed table."""
    rows = []

    def add(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                add(f"{prefix}{k}.", v)
            elif isinstance(v, float):
                rows.append((prefix + k, f"{v:.4f}"))
            elif isinstance(v, (int, str, bool)) and not isinstance(v, list):
                rows.append((prefix + k, str(v)))

    add("", {k: v for k, v in results.items() if k not in ("settings", "seconds")})
    return rows
