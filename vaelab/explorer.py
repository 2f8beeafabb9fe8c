"""The app's state and handlers: plain functions of plain values, so tests call them directly.

State lives in module-level caches keyed by checkpoint name (models, metrics, cached artifacts)
and by dataset name (test/train images, fitted PCA); a Gradio session only carries names. Models
load on first use. With no dataset on disk everything still works from what evaluation cached in
each checkpoint (``artifacts.safetensors``: 2-D coordinates, labels, test-set latents); views
that need the original images say why they are missing.

The formulas each tab shows are in the ``*_markdown`` functions beside the numbers they plug in.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vaelab import viz
from vaelab.metrics import ACTIVE_UNIT_THRESHOLD, KL_INACTIVE_NATS
from vaelab.preprocess import is_blank, preprocess, sketch_to_ink

ROOT = Path(__file__).resolve().parents[1]
MAX_SLIDERS = 32  # the sliders tab shows the 32 dimensions with most KL
SLIDER_RANGE = 3.0  # sliders span ±3 prior standard deviations
START_TEST, START_PRIOR = "a test image's posterior mean", "the prior mean (all zeros)"
PROJ_LATENT, PROJ_PCA, PROJ_UMAP = "the latent itself (2-D)", "PCA of the latent", "UMAP of the latent (cached)"


from vaelab.paths import checkpoints_dir, classifier_dir  # noqa: E402  (re-exported for the app)


# --- the checkpoint catalogue ----------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """What the picker needs to know about a checkpoint, read from its JSON files only."""

    name: str
    folder: Path
    variant: str
    family: str
    description: str
    purpose: str
    dataset: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    variational: bool  # the model's info: a posterior and a prior (ELBO, KL per dimension)
    has_sliders: bool  # one flat Gaussian latent: the sliders tab applies
    size: str = ""  # how big the latent is, for labels ("16-D", "discrete codes, K=512")

    @property
    def label(self) -> str:
        extra = f" — for: {self.purpose}" if self.purpose else ""
        data = "8×8 digits" if self.dataset == "digits" else self.dataset.upper()
        return f"[{self.family}] {self.name} · {data}, {self.size} · {self.description}{extra}"


def short_description(text: str) -> str:
    """The registry's one-liner without architecture details: "Vanilla autoencoder, shallow MLP
    784-32-784" -> "Vanilla autoencoder"; a bare name before a colon keeps what follows it."""
    head, _, tail = text.partition(":")
    head = head.split(",")[0].strip()
    if tail and len(head.split()) <= 2:
        head = f"{head}: {tail.strip().split(';')[0]}"
    return head


def scan_checkpoints(folder: str | os.PathLike | None = None) -> list[Card]:
    """Every evaluated checkpoint in ``folder`` (``config.json`` + weights + metrics + artifacts)
    whose variant this library knows, grouped by family in the registry's order. What a model is
    comes from the ``info`` its config.json records (:func:`vaelab.checkpoint.read_info`)."""
    from vaelab.checkpoint import CheckpointError, read_info
    from vaelab.registry import FAMILIES, get_entry

    folder = Path(folder) if folder else checkpoints_dir()
    cards = []
    for config_path in sorted(folder.glob("*/config.json")):
        ckpt = config_path.parent
        if ckpt.name.startswith(".") or not all((ckpt / f).is_file() for f in
                                                ("model.safetensors", "metrics.json", "artifacts.safetensors")):
            continue  # still training, or not evaluated yet
        try:
            meta = json.loads(config_path.read_text())
            entry = get_entry(meta["variant"])
            info = read_info(ckpt)
        except (KeyError, ValueError, OSError, CheckpointError):
            continue  # a classifier, or a variant from a newer vaelab
        config = meta.get("config", {})
        shapes = [tuple(s) for s in info["latent_shapes"]]
        gaussian = info["latent"] == "continuous" and info["variational"]
        discrete = info["latent"] == "discrete"
        dims = int(config.get("latent_dim", 0)) if discrete else sum(math.prod(s) for s in shapes)
        cards.append(Card(
            name=ckpt.name, folder=ckpt, variant=entry.name, family=entry.family,
            description=short_description(entry.description), purpose=meta.get("purpose", ""),
            dataset=meta.get("dataset") or "digits",
            image_shape=tuple(config.get("image_shape", (1, 28, 28))),
            latent_dim=dims, variational=info["variational"],
            has_sliders=gaussian and len(shapes) == 1 and len(shapes[0]) == 1,
            size=f"discrete codes, K={info['codebook_size']}" if discrete else f"{dims}-D"))
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(cards, key=lambda c: (rank.get(c.family, len(rank)), c.name))


def choices(cards: list[Card]) -> list[tuple[str, str]]:
    return [(c.label, c.name) for c in cards]


def card(name: str) -> Card:
    for c in scan_checkpoints():
        if c.name == name:
            return c
    raise KeyError(f"no evaluated checkpoint named {name!r} in {checkpoints_dir()}")


# --- caches: models + artifacts, datasets, PCA -------------------------------------------------

@dataclass
class Loaded:
    card: Card
    model: torch.nn.Module
    metrics: dict
    arrays: dict[str, np.ndarray]

    @property
    def info(self):
        return self.model.info

    @property
    def labels(self) -> np.ndarray:
        return self.arrays["test_labels"]

    @property
    def n_test(self) -> int:
        return len(self.arrays["test_labels"])

    @property
    def single_vector_latent(self) -> bool:
        """``decode`` takes one ``(B, D)`` tensor, so a cached latent row can be decoded."""
        info = self.info
        return info.latent == "continuous" and info.levels == 1 and len(info.latent_shapes[0]) == 1


_MODELS: dict[tuple[str, str], Loaded] = {}
_DATA: dict[str, object] = {}
_PCA: dict[tuple[str, int], object] = {}
_LOCK = threading.RLock()


def clear_caches() -> None:
    with _LOCK:
        _MODELS.clear()
        _DATA.clear()
        _PCA.clear()


def load(name: str) -> Loaded:
    """The checkpoint ``name`` with its metrics and artifacts, loaded once per process."""
    from vaelab.artifacts import load_artifacts
    from vaelab.checkpoint import load_checkpoint

    key = (str(checkpoints_dir()), name)
    hit = _MODELS.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        if key not in _MODELS:
            c = card(name)
            model = load_checkpoint(c.folder)
            for p in model.parameters():
                p.requires_grad_(False)
            _MODELS[key] = Loaded(c, model, json.loads((c.folder / "metrics.json").read_text()),
                                  load_artifacts(c.folder))
        return _MODELS[key]


def dataset(name: str):
    """The dataset ``name`` if it is on this machine (never downloads), else ``None``."""
    if name in _DATA:
        return _DATA[name]
    from vaelab.data import DatasetNotFoundError, load_dataset

    with _LOCK:
        if name not in _DATA:
            try:
                _DATA[name] = load_dataset(name, download=False)
            except (DatasetNotFoundError, ImportError, RuntimeError, OSError):
                _DATA[name] = None
        return _DATA[name]


def mnist_available() -> bool:
    from vaelab.data import data_dir

    return (data_dir() / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def dataset_status() -> str:
    """One line on which dataset the app can use and what that means, without loading it."""
    from vaelab.data import data_dir

    if mnist_available():
        return (f"MNIST found in `{data_dir()}`: views that show original test images, nearest "
                "neighbours and PCA reconstructions use it.")
    return ("MNIST not found (set `VAELAB_DATA` to a folder holding `MNIST/raw/`): the app uses "
            "scikit-learn's bundled 8×8 digits and what the shipped checkpoints cached (2-D maps, "
            "latents, metrics). MNIST models still decode and draw; their original test images, "
            "nearest neighbours and PCA reconstructions are not shown.")


def pca_for(dataset_name: str, dims: int):
    """PCA with ``dims`` components fitted on (up to 10,000) training images, cached."""
    key = (dataset_name, dims)
    if key not in _PCA:
        data = dataset(dataset_name)
        if data is None:
            return None
        from sklearn.decomposition import PCA

        train = data.train_x[:10000].flatten(1).numpy()
        dims = min(dims, train.shape[1])
        _PCA[key] = PCA(dims, svd_solver="randomized" if dims < 100 else "full", random_state=0).fit(train)
    return _PCA[key]


def test_image(m: Loaded, i: int) -> torch.Tensor | None:
    """Test image ``i`` of the cached artifacts, ``(1, C, H, W)``, if the dataset is here."""
    data = dataset(m.card.dataset)
    if data is None:
        return None
    j = int(m.arrays["test_index"][i])
    return data.test_x[j:j + 1] if j < len(data.test_x) else None


def _label(m: Loaded, label: int | None) -> torch.Tensor | None:
    if not m.info.conditional:
        return None
    return torch.tensor([int(label or 0)])


@torch.no_grad()
def decode(m: Loaded, z: np.ndarray | torch.Tensor, label: int | None = None) -> torch.Tensor:
    """Latent rows ``(B, D)`` -> images ``(B, C, H, W)`` in [0, 1]."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, m.card.latent_dim)
    y = None if not m.info.conditional else torch.full((len(z),), int(label or 0))
    return m.model.decode(z, y).clamp(0, 1)


@torch.no_grad()
def reconstruct_test(m: Loaded, i: int) -> tuple[torch.Tensor | None, str]:
    """The model's reconstruction of test image ``i``: from the image when the dataset is
    here, else by decoding the latent cached at evaluation. Returns (image, how)."""
    x = test_image(m, i)
    label = int(m.labels[i])
    if x is not None:
        return m.model.reconstruct(x, _label(m, label)).clamp(0, 1), "reconstruction of the original"
    if m.single_vector_latent and "latent_test" in m.arrays:
        return decode(m, m.arrays["latent_test"][i:i + 1], label), "decoded from the cached latent"
    if m.info.latent == "discrete" and "indices_level0" in m.arrays and m.info.levels == 1:
        idx = torch.as_tensor(m.arrays["indices_level0"][i:i + 1].astype(np.int64))
        return m.model.decode(m.model.latent_from_indices(idx)).clamp(0, 1), "decoded from the cached codes"
    return None, "no cached latent to decode and no dataset to encode"


def pca_reconstruct(m: Loaded, i: int) -> tuple[np.ndarray | None, str]:
    x = test_image(m, i)
    if x is None:
        return None, f"PCA needs the {m.card.dataset.upper()} images, which are not on this machine"
    pca = pca_for(m.card.dataset, m.info.latent_dim)
    flat = x.flatten(1).numpy()
    rec = pca.inverse_transform(pca.transform(flat)).reshape(x.shape[-2:])
    return np.clip(rec, 0, 1), f"PCA with {pca.n_components_} components"


# --- latent map tab ----------------------------------------------------------------------------

def projection_choices(m: Loaded) -> list[str]:
    if m.arrays["coords_model"].shape[1] == 2 and m.card.latent_dim == 2:
        return [PROJ_LATENT]
    out = [PROJ_PCA]
    if "coords_model_umap" in m.arrays:
        out.append(PROJ_UMAP)
    return out


def _fmt(v, digits=3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "n/a"


def map_titles(m: Loaded, projection: str) -> tuple[str, str]:
    emb = m.metrics.get("embedding", {})
    k = emb.get("knn_k", 5)
    key = "model_umap" if projection == PROJ_UMAP else "model"
    what = {PROJ_LATENT: "latent", PROJ_PCA: "latent, PCA to 2-D", PROJ_UMAP: "latent, UMAP to 2-D"}[projection]
    return (f"{m.card.name} ({what}): {k}-NN acc {_fmt(emb.get('knn_' + key))}, "
            f"trust {_fmt(emb.get('trust_' + key))}",
            f"PCA of the pixels: {k}-NN acc {_fmt(emb.get('knn_pca'))}, trust {_fmt(emb.get('trust_pca'))}")


def map_coords(m: Loaded, projection: str) -> np.ndarray:
    return m.arrays["coords_model_umap" if projection == PROJ_UMAP and "coords_model_umap" in m.arrays
                    else "coords_model"]


def map_figure(name: str, projection: str, index: int):
    m = load(name)
    if projection not in projection_choices(m):
        projection = projection_choices(m)[0]
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    axes = ("z₁", "z₂") if projection == PROJ_LATENT else ((("PC 1", "PC 2") if projection == PROJ_PCA
                                                             else ("UMAP 1", "UMAP 2")))
    return viz.latent_map_figure(map_coords(m, projection), m.arrays["coords_pca"], m.labels,
                                 map_titles(m, projection), picked=i, axis_titles=(axes, ("PC 1", "PC 2")))


@torch.no_grad()
def manifold(name: str, label: int = 0, n: int = 15) -> tuple[np.ndarray | None, str]:
    """For 2-D latents: decode an ``n``×``n`` grid over the latent plane. VAEs: over Gaussian
    quantiles (equal prior mass per cell); other models: over the range of the test codes."""
    m = load(name)
    if not (m.single_vector_latent and m.card.latent_dim == 2):
        return None, (f"The manifold grid needs a 2-D continuous latent; {m.card.name} has "
                      f"{m.card.latent_dim} {m.info.latent} dimensions.")
    if m.info.variational:
        q = torch.linspace(0.05, 0.95, n)
        axis = torch.special.ndtri(q).numpy()
        xs, ys = axis, axis
        how = f"z over Gaussian quantiles 5%…95% (±{axis[-1]:.2f}), equal prior mass per cell"
    else:
        c = m.arrays["coords_model"]
        lo, hi = np.percentile(c, 1, axis=0), np.percentile(c, 99, axis=0)
        xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        how = f"z₁ in [{lo[0]:.2f}, {hi[0]:.2f}], z₂ in [{lo[1]:.2f}, {hi[1]:.2f}] (1st–99th percentile of the test codes)"
    zz = np.array([[x, y] for y in ys[::-1] for x in xs], np.float32)  # top row = largest z₂
    images = decode(m, zz, label)
    cond = f" conditioned on digit {label}" if m.info.conditional else ""
    return viz.grid_image(images, cols=n, pad=1), f"Decoded {n}×{n} grid{cond}: {how}. z₁ grows to the right, z₂ upwards."


def nearest_neighbours(m: Loaded, i: int, k: int = 8) -> tuple[np.ndarray, list[int]]:
    """The ``k`` test images closest to test image ``i`` in the model's latent (its cached test
    latents, else its 2-D map): a strip of originals, or ``None`` without the dataset."""
    space = m.arrays.get("latent_test", m.arrays["coords_model"])
    d = ((space - space[i]) ** 2).sum(1)
    d[i] = np.inf
    nearest = [int(j) for j in np.argsort(d)[:k]]
    images = [test_image(m, j) for j in nearest]
    if any(im is None for im in images):
        return None, nearest
    return viz.strip([im[0] for im in images], pixels_per_image=84), nearest


def pick(name: str, index: int):
    """Images for test image ``index``: original, model reconstruction, PCA reconstruction,
    its nearest neighbours in the latent (strip), caption."""
    m = load(name)
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    x = test_image(m, i)
    rec, how = reconstruct_test(m, i)
    pca, pca_how = pca_reconstruct(m, i)
    digit = int(m.labels[i])
    parts = [f"**Test image #{i}** (digit {digit})."]
    if x is None:
        parts.append(f"Original not shown: the {m.card.dataset.upper()} test images are not on this machine.")
    parts.append(f"Model: {how}." if rec is not None else f"Model reconstruction unavailable: {how}.")
    if x is not None and rec is not None:
        parts.append(f"Squared error per pixel: model {float(((rec - x) ** 2).mean()):.4f}")
        if pca is not None:
            parts[-1] += f", PCA {float(((torch.as_tensor(pca) - x[0, 0]) ** 2).mean()):.4f}."
    parts.append(f"PCA: {pca_how}." if pca is not None else f"PCA reconstruction missing: {pca_how}.")
    strip, nearest = nearest_neighbours(m, i)
    same = sum(int(m.labels[j]) == digit for j in nearest)
    parts.append(f"Its {len(nearest)} nearest test images in the latent: {same} of them are {digit}s"
                 + (" (shown below)." if strip is not None else
                    f" ({', '.join(str(int(m.labels[j])) for j in nearest)}; images need the dataset)."))
    show = lambda im: viz.placeholder_image() if im is None else viz.to_display(im)  # noqa: E731
    neighbours = strip if strip is not None else viz.strip(np.full((len(nearest), 8, 8), 0.25), 84)
    return show(x), show(rec), show(pca), neighbours, " ".join(parts)


def latent_map_markdown(m: Loaded) -> str:
    emb, rec = m.metrics.get("embedding", {}), m.metrics.get("reconstruction", {})
    d = m.card.latent_dim
    return "\n".join([
        f"**What you see.** Each dot is one of {m.n_test:,} test images (up to {viz.MAX_POINTS:,} drawn), coloured "
        f"by its digit. Left: where **{m.card.name}** puts it ({d}-D latent"
        + ("" if d == 2 else ", projected to 2-D") + "). Right: the first two principal components of the "
        "same images' pixels — the best *linear* 2-D view. Move the slider to pick an image and compare "
        "how the model and PCA with the same number of dimensions rebuild it.",
        "",
        "$$\\text{PCA: } \\hat x = \\bar x + W_d W_d^{\\top}(x-\\bar x) \\qquad "
        "\\text{autoencoder: } \\hat x = g_\\theta\\big(f_\\phi(x)\\big),\\; z = f_\\phi(x) \\in \\mathbb{R}^{" + str(d) + "}$$",
        "",
        f"**Live numbers** (test set, from `metrics.json`): reconstruction MSE per pixel "
        f"{_fmt(rec.get('mse'), 4)} vs PCA-{rec.get('pca_dims', d)} {_fmt(rec.get('pca_mse'), 4)} "
        f"(ratio {_fmt(rec.get('mse_ratio_to_pca'), 2)}); {emb.get('knn_k', 5)}-NN accuracy in the full latent "
        f"{_fmt(emb.get('knn_latent_full'))}. *k-NN accuracy*: how often the {emb.get('knn_k', 5)} nearest training "
        "points share the digit. *Trustworthiness* (1 = no false neighbours): "
        "$T(k)=1-\\frac{2}{nk(2n-3k-1)}\\sum_i\\sum_{j\\in U_k(i)}\\big(r(i,j)-k\\big)$.",
    ])


def select_map_model(name: str, projection: str | None, index: int):
    """Switching models: the figure, the manifold, the explanation, the picked images and the
    updated controls (projection choices, index range). Uses only cached coordinates."""
    import gradio as gr

    m = load(name)
    options = projection_choices(m)
    projection = projection if projection in options else options[0]
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    grid, grid_caption = manifold(name, int(m.labels[i]))
    original, rec, pca, neighbours, caption = pick(name, i)
    return (map_figure(name, projection, i),
            gr.update(choices=options, value=projection, interactive=len(options) > 1),
            gr.update(maximum=m.n_test - 1, value=i),
            latent_map_markdown(m), original, rec, pca, neighbours, caption,
            gr.update(value=grid, visible=grid is not None), grid_caption)


def pick_point(name: str, projection: str, index: int):
    """Picking a test image: the figure with its star, the three images, the neighbours, the caption."""
    return (map_figure(name, projection, index), *pick(name, index))


# --- latent sliders tab --------------------------------------------------------------------------

def slider_dims(m: Loaded) -> list[int]:
    """Latent dimensions in the order the sliders show them: most KL first (at most 32)."""
    order = m.metrics.get("posterior", {}).get("dims_by_kl") or list(range(m.card.latent_dim))
    return [int(d) for d in order[:MAX_SLIDERS]]


def dim_is_active(m: Loaded, d: int) -> bool:
    post = m.metrics.get("posterior", {})
    kl = post.get("kl_per_dim", [1.0] * m.card.latent_dim)[d]
    var = post.get("posterior_mean_variance", [1.0] * m.card.latent_dim)[d]
    return kl >= KL_INACTIVE_NATS and var > ACTIVE_UNIT_THRESHOLD


def dim_label(m: Loaded, d: int) -> str:
    kl = m.metrics.get("posterior", {}).get("kl_per_dim", [float("nan")] * m.card.latent_dim)[d]
    if dim_is_active(m, d):
        return f"z{d} · KL {kl:.2f} nats"
    return f"z{d} · inactive (collapsed, KL {kl:.3f})"


def start_latent(m: Loaded, start: str, index: int) -> np.ndarray:
    if start == START_PRIOR or "latent_test" not in m.arrays:
        return np.zeros(m.card.latent_dim, np.float32)
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    return m.arrays["latent_test"][i].astype(np.float32)


def latent_from_sliders(m: Loaded, values) -> np.ndarray:
    """Slider values (in KL order) -> a latent vector; dimensions beyond the 32 shown stay at 0,
    the prior mean (they have the least KL, so they matter least)."""
    z = np.zeros(m.card.latent_dim, np.float32)
    for d, v in zip(slider_dims(m), values):
        z[d] = float(v if v is not None else 0.0)
    return z


def decode_sliders(name: str, label: int, *values) -> np.ndarray:
    """The image decoded from the current slider values (the handler behind every drag)."""
    m = load(name)
    return viz.to_display(decode(m, latent_from_sliders(m, values)[None], label)[0])


def elbo_markdown(m: Loaded) -> str:
    loss, post, lik = m.metrics.get("loss", {}), m.metrics.get("posterior", {}), m.metrics.get("likelihood", {})
    recon, kl, beta = loss.get("recon"), loss.get("kl"), loss.get("beta", 1.0)
    lines = [
        "**What you see.** The decoder $p_\\theta(x\\mid z)$ of a VAE turns any point $z$ into an image. "
        "Each slider sets one latent dimension, ordered by how much information it carries (its KL); "
        "dimensions the model stopped using (*posterior collapse*: $q(z_j\\mid x)\\approx p(z_j)$) are marked "
        "inactive and barely change the image. Start from a test image's posterior mean, or from the "
        "prior's centre, and drag.",
        "",
        "$$\\log p(x) \\;\\ge\\; \\mathrm{ELBO}(x) = \\mathbb{E}_{q_\\phi(z\\mid x)}\\big[\\log p_\\theta(x\\mid z)\\big] "
        "- \\mathrm{KL}\\big(q_\\phi(z\\mid x)\\,\\|\\,p(z)\\big),\\qquad "
        "\\mathrm{KL} = \\sum_j \\tfrac12\\big(\\mu_j^2+\\sigma_j^2-1-\\log\\sigma_j^2\\big)$$",
    ]
    if isinstance(recon, (int, float)) and isinstance(kl, (int, float)):
        lines += ["", f"**{m.card.name}, test set** (nats per image): "
                  f"$$-\\mathrm{{ELBO}} = \\underbrace{{{recon:.2f}}}_{{-\\mathbb{{E}}_q[\\log p(x|z)]}} + "
                  f"\\underbrace{{{kl:.2f}}}_{{\\mathrm{{KL}}}} = {recon + kl:.2f}$$"]
        if beta != 1.0:
            lines.append(f"It was trained on $\\text{{recon}} + \\beta\\,\\mathrm{{KL}}$ with $\\beta = {beta:g}$.")
    au, dims = post.get("active_units"), post.get("latent_dims", m.card.latent_dim)
    facts = []
    if au is not None:
        facts.append(f"active units {au} of {dims} ($\\mathrm{{Cov}}_x(\\mathbb{{E}}_q[z_u]) > {ACTIVE_UNIT_THRESHOLD}$)")
    if isinstance(lik.get("iwae_nll"), (int, float)):
        facts.append(f"importance-weighted bound ($k={lik.get('iw_samples')}$) $-\\log p(x) \\le {lik['iwae_nll']:.2f}$")
    if facts:
        lines.append("Also: " + "; ".join(facts) + ".")
    return "\n".join(lines)


def setup_sliders(name: str, start: str, index: int, label: int):
    """Choosing a model or a starting point: the explanation, the decoded image, the traversal's
    dimension choices, the label and start-image controls, the three strips (traversal, prior
    samples, interpolation to the next test image), 8 slider-row and 32 slider updates."""
    import gradio as gr

    m = load(name)
    if not m.card.has_sliders:
        raise gr.Error(f"{name} has no Gaussian latent with per-dimension KL; pick a VAE.")
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    if m.info.conditional and start == START_TEST:
        label = int(m.labels[i])
    z = start_latent(m, start, i)
    dims = slider_dims(m)
    rows = [gr.update(visible=4 * r < len(dims)) for r in range(MAX_SLIDERS // 4)]
    updates = []
    for j in range(MAX_SLIDERS):
        if j < len(dims):
            d = dims[j]
            updates.append(gr.update(visible=True, label=dim_label(m, d),
                                     value=float(np.clip(round(float(z[d]), 2), -SLIDER_RANGE, SLIDER_RANGE))))
        else:
            updates.append(gr.update(visible=False, value=0.0))
    values = [float(np.clip(z[d], -SLIDER_RANGE, SLIDER_RANGE)) for d in dims]
    image = decode_sliders(name, label, *values)
    dim_choices = [(dim_label(m, d), d) for d in dims]
    extra = (f" The first {MAX_SLIDERS} of {m.card.latent_dim} dimensions by KL are shown; the rest stay at 0."
             if m.card.latent_dim > MAX_SLIDERS else "")
    strips = (traverse(name, label, dims[0], *values), sample_prior(name, label, 0),
              interpolate(name, i, (i + 1) % m.n_test, label))
    return (elbo_markdown(m) + extra, image, gr.update(choices=dim_choices, value=dims[0]),
            gr.update(visible=m.info.conditional, value=label),
            gr.update(maximum=m.n_test - 1, value=i), *strips, *rows, *updates)


def traverse(name: str, label: int, dim: int, *values, steps: int = 9) -> np.ndarray:
    """One dimension swept over −3…3 with the others at the slider values: a strip of images."""
    m = load(name)
    z = latent_from_sliders(m, values)
    d = int(dim if dim is not None else slider_dims(m)[0])
    zs = np.repeat(z[None], steps, 0)
    zs[:, d] = np.linspace(-SLIDER_RANGE, SLIDER_RANGE, steps)
    return viz.strip(decode(m, zs, label))


def sample_prior(name: str, label: int, seed: int, n: int = 10) -> np.ndarray:
    """``n`` images decoded from ``z ~ N(0, I)`` (seeded)."""
    m = load(name)
    g = torch.Generator().manual_seed(int(seed or 0))
    z = torch.randn(n, m.card.latent_dim, generator=g)
    return viz.strip(decode(m, z, label))


def interpolate(name: str, a: int, b: int, label: int, steps: int = 9) -> np.ndarray:
    """Decode the straight line between the posterior means of test images ``a`` and ``b``."""
    m = load(name)
    if "latent_test" not in m.arrays:
        import gradio as gr
        raise gr.Error(f"{name} has no cached test latents to interpolate between")
    ia, ib = (int(np.clip(int(v or 0), 0, m.n_test - 1)) for v in (a, b))
    za, zb = m.arrays["latent_test"][ia], m.arrays["latent_test"][ib]
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    return viz.strip(decode(m, (1 - t) * za + t * zb, label))


# --- draw tab ------------------------------------------------------------------------------------

DRAW_VARIANT_ORDER = ("ae", "vae", "vq-vae", "dvae", "gumbel-vae", "linear-ae", "beta-vae", "vq-vae-2",
                      "conv-ae", "deep-ae", "denoising-ae", "sparse-ae", "hvae")
MAX_DRAW_MODELS = 6


def _recon_mse(c: Card) -> float:
    try:
        return float(json.loads((c.folder / "metrics.json").read_text())["reconstruction"]["mse"])
    except (KeyError, ValueError, OSError, TypeError):
        return float("inf")


@dataclass
class DrawPlan:
    image_shape: tuple[int, int, int]
    recon: list[Card] = field(default_factory=list)  # one per variant, best reconstruction first
    map_card: Card | None = None  # a 2-D continuous model for "where does it land"


_PLANS: dict[str, DrawPlan] = {}


def draw_plan() -> DrawPlan:
    """Which checkpoints the draw tab uses: 28×28 ones if any exist, else the 8×8 digits ones;
    per variant the one that reconstructs best; unconditional models only."""
    key = str(checkpoints_dir())
    if key in _PLANS:
        return _PLANS[key]
    cards = [c for c in scan_checkpoints() if c.variant != "cvae"]
    shapes = {c.image_shape for c in cards}
    shape = (1, 28, 28) if (1, 28, 28) in shapes else (1, 8, 8) if (1, 8, 8) in shapes else next(iter(shapes), (1, 28, 28))
    same = [c for c in cards if c.image_shape == shape]
    best: dict[str, Card] = {}
    for c in sorted(same, key=_recon_mse):
        best.setdefault(c.variant, c)
    rank = {v: i for i, v in enumerate(DRAW_VARIANT_ORDER)}
    recon = sorted(best.values(), key=lambda c: (rank.get(c.variant, len(rank)), c.name))[:MAX_DRAW_MODELS]
    two_d = [c for c in same if c.latent_dim == 2 and c.family in ("classic", "variational")]
    two_d.sort(key=lambda c: (not c.variational, c.variant != "vae", c.name))
    plan = DrawPlan(shape, recon, two_d[0] if two_d else None)
    _PLANS[key] = plan
    return plan


def _classifier():
    folder = classifier_dir()
    if not (folder / "config.json").is_file():
        return None, "classifier not available (no `checkpoints/classifier/` shipped)"
    if "classifier" not in _DATA:
        try:
            from vaelab.classifier import load_classifier
            _DATA["classifier"] = (load_classifier(folder), "")
        except Exception as error:  # a missing module or an unreadable folder: say so, don't crash
            _DATA["classifier"] = (None, f"classifier not available ({type(error).__name__}: {error})")
    return _DATA["classifier"]


def classify(x: torch.Tensor) -> str:
    clf, why = _classifier()
    if clf is None:
        return why
    shape = tuple(getattr(getattr(clf, "config", None), "image_shape", x.shape[1:]))
    if shape != tuple(x.shape[1:]):
        return f"classifier not available for {x.shape[-2]}×{x.shape[-1]} images (it reads {shape[-2]}×{shape[-1]})"
    labels, probs = clf.predict(x)
    p = torch.as_tensor(probs)[0]
    top = torch.argsort(p, descending=True)[:3]
    return ("**Classifier reads:** " + ", ".join(f"**{int(k)}** ({float(p[k]):.0%})" for k in top)
            + f" — its guess: {int(torch.as_tensor(labels)[0])}.")


def draw_markdown(plan: DrawPlan) -> str:
    size = f"{plan.image_shape[-2]}×{plan.image_shape[-1]}"
    prep = ("cropped to the ink, scaled to fit 20×20 keeping its shape, and centred by its centre of mass "
            "in 28×28, exactly as MNIST was made" if plan.image_shape[-1] == 28 else
            "cropped to the ink, fitted to 32×32 and averaged over 4×4 blocks, as scikit-learn's 8×8 "
            "digits were made (no 28×28 models are shipped here)")
    return "\n".join([
        f"**What you see.** Draw a digit. It is inverted to white-on-black, {prep}: the {size} image on "
        "the left is what every model sees. Each autoencoder squeezes it through its bottleneck and "
        "rebuilds it; a digit unlike the training data comes back as the nearest thing the model knows.",
        "",
        "$$x \\;\\xrightarrow{\\;f_\\phi\\;}\\; z \\;\\xrightarrow{\\;g_\\theta\\;}\\; \\hat x, \\qquad "
        "z \\in \\mathbb{R}^d \\text{ (AE, VAE: posterior mean)} \\;\\text{ or }\\; z = e_{k^*},\\; "
        "k^* = \\arg\\min_k \\lVert f_\\phi(x) - e_k \\rVert \\text{ (VQ-VAE)}$$",
    ])


EMPTY_DRAWING = "Draw a digit in the box (the canvas is empty). Use the brush; the eraser or ✕ clears it."


@torch.no_grad()
def draw(value):
    """A drawing -> (model input image, [(reconstruction, caption)], latent map figure,
    classifier reading, message). Empty or cleared drawings give a message, not an error."""
    plan = draw_plan()
    ink = sketch_to_ink(value)
    map_card = plan.map_card
    if is_blank(ink):
        fig = _draw_map(map_card, None)
        return viz.placeholder_image(), [], fig, "", EMPTY_DRAWING
    x = torch.from_numpy(preprocess(ink, plan.image_shape))
    gallery = []
    for c in plan.recon:
        m = load(c.name)
        rec = m.model.reconstruct(x).clamp(0, 1)
        err = float(((rec - x) ** 2).mean())
        gallery.append((viz.to_display(rec[0], 160), f"{c.name}: MSE {err:.3f}"))
    point = None
    if map_card is not None:
        m = load(map_card.name)
        point = m.model.encode(x).flat()[0].numpy()
    msg = (f"Reconstructions by {len(plan.recon)} models at {plan.image_shape[-2]}×{plan.image_shape[-1]}"
           + (": " + ", ".join(f"{c.name} ({c.family}, {c.size})" for c in plan.recon) + "."
              if plan.recon else ": none shipped for this image size."))
    return viz.to_display(x[0]), gallery, _draw_map(map_card, point), classify(x), msg


def _draw_map(c: Card | None, point):
    if c is None:
        return viz.empty_figure("no 2-D model shipped for this image size")
    m = load(c.name)
    where = "" if point is None else f": your drawing at ({point[0]:.2f}, {point[1]:.2f})"
    return viz.drawing_map_figure(m.arrays["coords_model"], m.labels, point,
                                  f"Where it lands in {c.name}'s 2-D latent{where}")


# --- models tab ----------------------------------------------------------------------------------

def variants_table() -> str:
    from vaelab.registry import list_variants

    rows = ["| variant | family | what it is |", "| --- | --- | --- |"]
    rows += [f"| `{e.name}` | {e.family} | {e.description} |" for e in list_variants()]
    return "\n".join(rows)


def checkpoints_table(cards: list[Card] | None = None) -> str:
    cards = scan_checkpoints() if cards is None else cards
    if not cards:
        return f"No evaluated checkpoints in `{checkpoints_dir()}`."
    rows = ["| checkpoint | family | data | latent | recon MSE (PCA) | 5-NN acc | used for |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in cards:
        m = json.loads((c.folder / "metrics.json").read_text())
        rec, emb = m.get("reconstruction", {}), m.get("embedding", {})
        rows.append(f"| `{c.name}` | {c.family} | {c.dataset} {c.image_shape[-2]}×{c.image_shape[-1]} | "
                    f"{c.size} | {_fmt(rec.get('mse'), 4)} ({_fmt(rec.get('pca_mse'), 4)}) | "
                    f"{_fmt(emb.get('knn_latent_full'))} | {c.purpose or '—'} |")
    return "\n".join(rows)


