"""Regularisers: what the classic penalties do to an autoencoder, each beside a plain one.

* **Denoising** — the noise the model trained with (type and level, changeable), a corrupted test
  image, the denoising model's rebuild beside the plain autoencoder's, and the error on clean
  images against the noise level for both.
* **Sparse** — the histogram of code activations over test images, the share of units active on
  an image; for the k-sparse model, how many units are kept at encoding time and what that does
  to the rebuild.
* **Contractive** — the encoder Jacobian's Frobenius norm ``‖∂h/∂x‖_F`` for each test image, as
  the colour of its point on a 2-D map of the codes, beside a plain autoencoder's; and how far a
  small random change of the input moves the code.

The plain autoencoder is the shipped model with no penalty (the ``Autoencoder`` class itself) and
the same code size when there is one. Models are chosen by what they declare (a noise level, a
sparsity setting, a contraction penalty), never by name.
"""

from __future__ import annotations

import functools
import math

import gradio as gr
import numpy as np
import torch

from vaelab import viz
from vaelab.app.catalogue import Card
from vaelab.app.charts import line_chart
from vaelab.app.pixel_image import PixelImage
from vaelab.app.state import Loaded, dataset, load
from vaelab.app.widgets import LATEX, keyed, tab_intro, whole_number
from vaelab.losses import jacobian_frobenius_autograd
from vaelab.models.classic import Autoencoder, corrupt, keep_top_k

SUMMARY = ("**A plain autoencoder only has to copy its input; a regulariser asks for more.** Denoising: rebuild "
           "the clean image from a damaged one. Sparsity: use few code units per image. Contraction: let small "
           "changes of the input barely move the code. Each is shown beside a plain autoencoder.")
NOISES = ("masking", "gaussian", "salt_pepper")
NOISE_LEVELS = np.round(np.linspace(0.0, 0.9, 10), 2)
N_IMAGES = 500  # test images behind each curve, histogram and map
ACTIVE = 0.1  # a code unit is active on an image when its activation exceeds this (0 for k-sparse: non-zero)
NO_DATA = "This view needs the test images, which are not on this server."


# --- which models ------------------------------------------------------------------------------

def _config(c: Card) -> dict:
    return load(c.name).model.config.__dict__


def denoising_models(cards: list[Card]) -> list[Card]:
    return [c for c in cards if c.family == "classic" and "noise_level" in _config(c)]


def sparse_models(cards: list[Card]) -> list[Card]:
    return [c for c in cards if c.family == "classic" and ("sparsity_weight" in _config(c) or "k" in _config(c))]


def contractive_models(cards: list[Card]) -> list[Card]:
    return [c for c in cards if c.family == "classic" and callable(getattr(load(c.name).model, "contractive_penalty", None))]


ARCHITECTURE = ("image_shape", "backbone", "hidden", "channels", "activation", "latent_dim", "code_activation",
                "likelihood")  # what a plain baseline must share with the regularised model
RECIPE = ("lr", "lr_schedule", "batch_size", "binarize", "weight_decay")  # and how both were trained


@functools.lru_cache(maxsize=64)
def _recorded(folder) -> tuple[dict, dict]:
    """A checkpoint's config fields and training settings, from its JSON files (no weights)."""
    from vaelab.folders import read_json

    meta = read_json(folder, "config.json", {}) or {}
    history = read_json(folder, "history.json", {}) or {}
    settings = history.get("settings", {}) if isinstance(history, dict) else {}
    return dict(meta.get("config", {})), dict(settings) if isinstance(settings, dict) else {}


def _defaults() -> dict:
    from vaelab.models.classic import AEConfig
    from vaelab.train import TrainSettings

    return {**AEConfig().__dict__, **TrainSettings().__dict__}


def differences(like: Card, plain: Card) -> list[str]:
    """What differs between the regularised model and its plain baseline besides the penalty,
    in words (``[]``: only the penalty)."""
    (c1, s1), (c2, s2), d = _recorded(like.folder), _recorded(plain.folder), _defaults()
    out = []
    for key in ARCHITECTURE:
        a, b = c1.get(key, d.get(key)), c2.get(key, d.get(key))
        if a != b:
            out.append(f"{key.replace('_', ' ')} {_word(b)} instead of {_word(a)}")
    for key in RECIPE:
        a, b = s1.get(key, d.get(key)), s2.get(key, d.get(key))
        if a != b:
            out.append(f"trained with {key.replace('_', ' ')} {_word(b)} instead of {_word(a)}")
    e1, e2 = s1.get("epochs"), s2.get("epochs")
    if e1 != e2:
        out.append(f"at most {e2} epochs instead of {e1}")
    return out


def _word(v) -> str:
    return "none" if v in ((), []) else "×".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def plain_baseline(cards: list[Card], like: Card) -> Card | None:
    """The shipped autoencoder with no penalty at all (the ``ae`` variant, no corruption) that
    differs least from ``like``: on the same data, and where one exists the same network, code
    non-linearity and training recipe, so that the panel compares the penalty alone."""
    plain = [c for c in cards if c.family == "classic" and c.variant == "ae" and c.dataset == like.dataset
             and c.name != like.name]
    return min(plain, key=lambda c: (len(differences(like, c)), c.name), default=None)


def baseline_note(like: Card, plain: Card | None) -> str:
    """One line saying what the comparison holds fixed, and what it does not."""
    if plain is None:
        return "No plain autoencoder on the same data is shipped, so there is nothing to compare with."
    diff = differences(like, plain)
    if not diff:
        return (f"The plain autoencoder **{plain.display}** has the same network, code and training recipe as "
                f"**{like.display}**: the only difference is the penalty.")
    return (f"The plain autoencoder **{plain.display}** differs from **{like.display}** in more than the penalty: "
            + "; ".join(diff) + ". Part of any gap below comes from that.")


def _images(m: Loaded, n: int = N_IMAGES) -> torch.Tensor | None:
    data = dataset(m.card.dataset)
    return None if data is None else data.test_x[:n]


def _index(m: Loaded, index) -> int:
    try:
        return int(index or 0) % N_IMAGES
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"A test image is picked by its number, 0 to {N_IMAGES - 1}.")


# --- denoising ---------------------------------------------------------------------------------

def trained_noise(m: Loaded) -> tuple[str, float]:
    """The corruption the model was trained with (its config)."""
    return m.model.config.noise, float(m.model.config.noise_level)


def corrupted(x: torch.Tensor, noise: str, level: float, seed: int) -> torch.Tensor:
    """``x`` corrupted exactly as in training (:func:`vaelab.models.classic.corrupt`), with a fixed
    seed: Gaussian noise is not clipped to 0…1 there, so it is not clipped here either (only the
    picture of it is)."""
    return corrupt(x, noise, level, torch.Generator().manual_seed(int(seed)))


@functools.lru_cache(maxsize=16)
def denoising_curve(name: str, plain: str | None, noise: str) -> dict:
    """Error on the clean images (MSE per pixel) of each model's rebuild of the corrupted ones,
    at every noise level in :data:`NOISE_LEVELS`."""
    m = load(name)
    x = _images(m)
    out = {"levels": NOISE_LEVELS.tolist()}
    for key, model_name in (("model", name), ("plain", plain)):
        if model_name is None:
            continue
        model = load(model_name).model
        with torch.no_grad():
            out[key] = [float(((model.reconstruct(corrupted(x, noise, lv, 0)).clamp(0, 1) - x) ** 2).mean())
                        for lv in NOISE_LEVELS]
    return out


def show_denoising(name: str, plain: str | None, noise: str, level, index, seed) -> dict:
    m = load(name)
    if noise not in NOISES:
        raise gr.Error(f"Choose a noise: {', '.join(NOISES)}.")
    try:
        level = float(level)
    except (TypeError, ValueError):
        level = math.nan
    if not 0 <= level <= 0.95:
        raise gr.Error("The noise level goes from 0 to 0.95.")
    x = _images(m)
    if x is None:
        return {"den_strip": None, "den_numbers": NO_DATA, "den_curve": ""}
    i = _index(m, index)
    clean = x[i:i + 1]
    noisy = corrupted(clean, noise, level, int(seed or 0))
    with torch.no_grad():
        rebuilt = m.model.reconstruct(noisy).clamp(0, 1)
        plain_rebuilt = load(plain).model.reconstruct(noisy).clamp(0, 1) if plain else None
    tiles = [clean[0], noisy[0].clamp(0, 1), rebuilt[0]] + ([plain_rebuilt[0]] if plain_rebuilt is not None else [])
    err = float(((rebuilt - clean) ** 2).mean())
    plain_err = float(((plain_rebuilt - clean) ** 2).mean()) if plain_rebuilt is not None else None
    t_noise, t_level = trained_noise(m)
    curve = denoising_curve(name, plain, noise)
    series = [(f"{m.card.display} (denoising)", curve["levels"], curve["model"])]
    if "plain" in curve:
        series.append((f"{load(plain).card.display} (plain)", curve["levels"], curve["plain"]))
    numbers = (f"**{m.card.display}** was trained on images with **{t_noise.replace('_', '-')} noise at level "
               f"{t_level:g}** (the controls start there). On this image: error of its rebuild against the clean "
               f"image {err:.4f}" + (f", the plain autoencoder's {plain_err:.4f}" if plain_err is not None else "")
               + " (mean squared error per pixel)."
               + (" Gaussian noise leaves some pixels below 0 or above 1: the models see them so, as in training; "
                  "the picture clips them." if noise == "gaussian" and level > 0 else "")
               + "  \n" + baseline_note(m.card, load(plain).card if plain else None))
    return {"den_strip": viz.to_display(viz.tile(tiles, cols=len(tiles), pad=2), pixels=150 * len(tiles)),
            "den_numbers": numbers,
            "den_curve": line_chart(series, f"{noise.replace('_', '-')} noise level",
                                    f"error on the clean images ({N_IMAGES})", marker=level,
                                    marker_label=f"level {level:g}")}


# --- sparsity ----------------------------------------------------------------------------------

def is_k_sparse(m: Loaded) -> bool:
    return "k" in m.model.config.__dict__


def codes(m: Loaded, k: int | None = None) -> torch.Tensor:
    """Codes of the first :data:`N_IMAGES` test images; for a k-sparse model, ``k`` units kept."""
    x = _images(m)
    with torch.no_grad():
        if is_k_sparse(m):
            return keep_top_k(m.model.encoder(x), k or m.model.encode(x[:1]).z.ne(0).sum().item())
        return m.model.encode(x).z


def active_mask(m: Loaded, z: torch.Tensor) -> torch.Tensor:
    """Which units are active on which image: non-zero for a k-sparse code, else above :data:`ACTIVE`."""
    return z.ne(0) if is_k_sparse(m) else z.abs() > ACTIVE


def histogram(m: Loaded, z: torch.Tensor, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Counts of activations per bin (edges from 0 for sigmoid codes; k-sparse: of the non-zero
    ones, with zero as its own first bar)."""
    v = z.flatten().numpy()
    if is_k_sparse(m):
        nz = v[v != 0]
        edges = np.linspace(min(nz.min(), 0), nz.max(), bins + 1) if len(nz) else np.linspace(0, 1, bins + 1)
        return np.r_[np.sum(v == 0), np.histogram(nz, edges)[0]], np.r_[np.nan, edges]
    edges = np.linspace(0, 1, bins + 1) if v.min() >= 0 and v.max() <= 1 else np.linspace(v.min(), v.max(), bins + 1)
    return np.histogram(v, edges)[0], edges


def histogram_svg(counts: np.ndarray, edges: np.ndarray, threshold: float, zero_bar: bool,
                  width: int = 460, height: int = 220) -> str:
    """Bars on a log scale; the bars counted as active in orange, the others in blue."""
    L, R, T, B = 54, 10, 10, 40
    n = len(counts)
    top = math.log10(max(counts.max(), 1) + 1)
    bw = (width - L - R) / n
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
             f'aria-label="histogram of code activations">',
             f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" fill="none" stroke="#9aa0a6"/>']
    for j, c in enumerate(counts):
        h = (height - T - B) * math.log10(c + 1) / top
        lo = edges[j] if not zero_bar else (0.0 if j == 0 else edges[j])
        on = (j > 0) if zero_bar else lo >= threshold - 1e-12
        parts.append(f'<rect x="{L + j * bw + 1:.1f}" y="{height - B - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                     f'fill="{"#f28e2b" if on else "#4e79a7"}"><title>{int(c):,} activations</title></rect>')
    labels = [(0, "0" if zero_bar else f"{edges[0]:.2g}"), (n, f"{edges[-1]:.2g}")]
    if not zero_bar:
        labels.append((int(round((threshold - edges[0]) / (edges[1] - edges[0]))), f"{threshold:g}"))
    for j, text in labels:
        parts.append(f'<text x="{L + j * bw:.1f}" y="{height - B + 14}" font-size="10" text-anchor="middle" '
                     f'fill="#5f6368">{text}</text>')
    parts.append(f'<text x="{(L + width - R) / 2}" y="{height - 8}" font-size="11" text-anchor="middle">'
                 f'{"activation (first bar: exactly zero)" if zero_bar else "activation"}</text>')
    parts.append(f'<text transform="translate(12 {(T + height - B) / 2}) rotate(-90)" font-size="11" '
                 f'text-anchor="middle">count (log scale)</text></svg>')
    return "".join(parts)


def show_sparse(name: str, k, index) -> dict:
    m = load(name)
    if _images(m) is None:
        return {"sp_hist": NO_DATA, "sp_numbers": "", "sp_strip": None, "sp_curve": ""}
    dims = m.model.config.latent_dim
    kk = whole_number(k, 1, dims, f"k is a whole number from 1 to {dims} (the code's size).") if is_k_sparse(m) else None
    z = codes(m, kk)
    act = active_mask(m, z)
    counts, edges = histogram(m, z)
    per_image = act.float().sum(1)
    i = _index(m, index)
    x = _images(m)[i:i + 1]
    with torch.no_grad():
        rebuilt = m.model.decode(z[i:i + 1]).clamp(0, 1)
    numbers = (f"**{m.card.display}**: on a test image **{per_image.mean():.1f} of {dims} units are active** on "
               f"average ({per_image.mean() / dims:.0%}; " +
               (f"exactly the {kk} kept" if kk else f"active: above {ACTIVE:g}") +
               f"); every unit is active on at least one of the {len(z)} images: "
               f"{'yes' if bool(act.any(0).all()) else f'no, {int((~act.any(0)).sum())} never are'}."
               + sparsity_target(m, z))
    out = {"sp_hist": histogram_svg(counts, edges, ACTIVE, zero_bar=is_k_sparse(m)), "sp_numbers": numbers,
           "sp_strip": viz.to_display(viz.tile([x[0], rebuilt[0]], cols=2, pad=2), pixels=300),
           # k applies to the k-sparse model only: for the others the slider and its chart are hidden
           "sp_curve": gr.update(value="", visible=False), "sp_k": gr.update(visible=bool(kk))}
    if kk:
        ks, errs = k_curve(name)
        out["sp_curve"] = gr.update(visible=True, value=line_chart(
            [("error of the rebuild", ks, errs)], "units kept when encoding (k)",
            f"mean squared error ({N_IMAGES} images)", marker=kk, marker_label=f"k = {kk}"))
    return out


def sparsity_target(m: Loaded, z: torch.Tensor) -> str:
    """For a KL-penalised model: the units' mean activation beside the target ρ it trained for."""
    c = m.model.config
    if getattr(c, "penalty", None) != "kl":
        return ""
    mean = float(z.mean())
    verdict = ("close to it" if mean <= 1.5 * c.rho else
               "above it: the penalty has not pulled the code all the way down")
    return (f" The units' mean activation is **{mean:.3f}**, against the target ρ = {c.rho:g} the penalty "
            f"(weight λ = {c.sparsity_weight:g}) pulls each unit's average towards: {verdict}.")


@functools.lru_cache(maxsize=8)
def k_curve(name: str) -> tuple[list[int], list[float]]:
    m = load(name)
    x = _images(m)
    dims = m.model.config.latent_dim
    ks = sorted({1, 2, 5, 10, 15, 25, 40, 60, 75, dims} & set(range(1, dims + 1)))
    with torch.no_grad():
        h = m.model.encoder(x)
        errs = [float(((m.model.decode(keep_top_k(h, k)).clamp(0, 1) - x) ** 2).mean()) for k in ks]
    return ks, errs


# --- contraction -------------------------------------------------------------------------------

def jacobian_norms(m: Loaded, x: torch.Tensor) -> torch.Tensor:
    """``‖∂code/∂x‖_F`` per image, by autograd (one backward pass per code unit)."""
    with torch.enable_grad():
        return jacobian_frobenius_autograd(m.model.encoder, x, create_graph=False).detach().sqrt()


@functools.lru_cache(maxsize=8)
def contraction(name: str) -> dict:
    """Each test image's code on a 2-D PCA plane and its Jacobian norm."""
    m = load(name)
    x = _images(m)
    with torch.no_grad():
        z = m.model.encode(x).z.flatten(1).double().numpy()
    centred = z - z.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return {"points": centred @ vt[:2].T, "norms": jacobian_norms(m, x).numpy()}


def norm_map(points: np.ndarray, norms: np.ndarray, vmax: float, size: int = 260) -> np.ndarray:
    """Points coloured by norm (dark blue = small, yellow = large), on one colour scale."""
    lo, hi = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    margin = 0.08 * np.maximum(hi - lo, 1e-9)
    lo, hi = lo - margin, hi + margin
    img = np.full((size, size, 3), 255, np.uint8)
    px = ((points[:, 0] - lo[0]) / (hi[0] - lo[0]) * (size - 4)).astype(int)
    py = ((hi[1] - points[:, 1]) / (hi[1] - lo[1]) * (size - 4)).astype(int)
    t = np.clip(norms / vmax, 0, 1)
    colours = np.stack([68 + t * (253 - 68), 1 + t * (231 - 1), 84 + t * (37 - 84)], 1).astype(np.uint8)  # viridis ends
    for x0, y0, col in sorted(zip(px, py, map(tuple, colours)), key=lambda p: p[2][1]):
        if 0 <= x0 < size - 3 and 0 <= y0 < size - 3:
            img[y0:y0 + 4, x0:x0 + 4] = col
    img[0, :], img[-1, :], img[:, 0], img[:, -1] = 150, 150, 150, 150
    return img


def perturbation(m: Loaded, x: torch.Tensor, eps: float, seed: int, draws: int = 20) -> float:
    """Mean ``‖h(x + δ) − h(x)‖`` over ``draws`` Gaussian changes δ with ``‖δ‖ = eps·‖x‖``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        h = m.model.encoder(x)
        d = torch.randn((draws, *x.shape[1:]), generator=g)
        d = d / d.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1)) * eps * x.norm()
        return float((m.model.encoder(x + d) - h).flatten(1).norm(dim=1).mean())


def show_contractive(name: str, plain: str | None, eps, index) -> dict:
    m = load(name)
    if _images(m) is None:
        return {"ct_maps": None, "ct_numbers": NO_DATA}
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        eps = math.nan
    if not 0 < eps <= 0.5:
        raise gr.Error("The size of the change goes from 0.01 to 0.5 (a fraction of the image's norm).")
    names = [name] + ([plain] if plain else [])
    maps = [contraction(n) for n in names]
    vmax = max(float(np.percentile(c["norms"], 99)) for c in maps)
    i = _index(m, index)
    x = _images(m)[i:i + 1]
    lines = []
    for n, c in zip(names, maps):
        mm = load(n)
        moved = perturbation(mm, x, eps, 0)
        with torch.no_grad():
            code = float(mm.model.encoder(x).norm())
        lines.append(f"**{mm.card.display}**: median ‖∂h/∂x‖_F = {np.median(c['norms']):.3g}; on image #{i}, "
                     f"{jacobian_norms(mm, x).item():.3g}; a random change of {eps:.0%} of the image moves its "
                     f"code by {moved:.3g} ({moved / max(code, 1e-12):.1%} of the code's length)")
    pictures = [norm_map(c["points"], c["norms"], vmax) for c in maps]
    gap = np.full((pictures[0].shape[0], 12, 3), 255, np.uint8)
    strip = np.concatenate(sum(([p, gap] for p in pictures), [])[:-1], axis=1)
    lines.append(baseline_note(m.card, load(plain).card if plain else None))
    return {"ct_maps": strip, "ct_numbers": "  \n".join(lines) + f"  \nColour: ‖∂h/∂x‖_F from 0 (dark) to {vmax:.3g} "
                                                                  "(yellow), one scale for both maps."}


# --- layout and wiring -------------------------------------------------------------------------

FORMULAS = {
    "denoising": r"$$\min\; \mathbb{E}_{x}\,\mathbb{E}_{\tilde x \sim q(\tilde x|x)}\; \ell\big(x,\; g(f(\tilde x))\big)$$",
    "sparse": r"$$\ell\big(x, g(h)\big) + \lambda \sum_j \mathrm{KL}(\rho\,\|\,\hat\rho_j), \quad \hat\rho_j = "
              r"\text{mean activation of unit } j$$ (k-sparse: keep only the $k$ largest units of $h$)",
    "contractive": r"$$\ell\big(x, g(f(x))\big) + \lambda\, \Big\|\frac{\partial f(x)}{\partial x}\Big\|_F^2$$",
}


def with_baseline(show, baselines: dict):
    """``show(name, plain, *rest)`` as a handler of ``(name, *rest)``: each model is compared with
    its own plain baseline (:func:`plain_baseline`), chosen once when the tab is laid out."""
    def handler(name, *rest):
        plain = baselines.get(name)
        return show(name, plain.name if plain else None, *rest)

    # not functools.wraps: Gradio reads a handler's parameters through __wrapped__, and these are
    # show's without its plain baseline
    handler.__name__, handler.__doc__ = show.__name__, show.__doc__
    return handler


def render(cards: list[Card]):
    den, sparse, contr = denoising_models(cards), sparse_models(cards), contractive_models(cards)
    with gr.Tab("Regularisers"):
        if not tab_intro(SUMMARY, bool(den or sparse or contr),
                         "No regularised autoencoder (denoising, sparse, contractive) is shipped with this app."):
            return None
        c: dict = {}
        loads = []
        if den:
            with gr.Accordion("Denoising: rebuild the clean image from a damaged one", open=True):
                gr.Markdown(FORMULAS["denoising"], latex_delimiters=LATEX)
                first = den[0]
                d_plains = {x.name: plain_baseline(cards, x) for x in den}
                noise, level = trained_noise(load(first.name))
                with gr.Row():
                    d_model = gr.Dropdown([(x.short_label, x.name) for x in den], value=first.name, label="model",
                                          scale=2)
                    d_noise = gr.Radio(list(NOISES), value=noise, label="noise", scale=2, elem_id="reg-noise")
                    d_level = gr.Slider(0, 0.95, value=level, step=0.05, label="noise level", scale=2,
                                        elem_id="reg-level")
                    d_index = gr.Number(0, precision=0, label="test image #", minimum=0, scale=1)
                    d_seed = gr.Number(0, precision=0, label="noise seed", minimum=0, scale=1)
                c["den_numbers"] = gr.Markdown()
                with gr.Row():
                    c["den_strip"] = PixelImage(label="clean · corrupted · the denoising model's rebuild · the plain "
                                                      "autoencoder's rebuild", alt="denoising comparison",
                                                elem_id="reg-den")
                    c["den_curve"] = gr.HTML(label="error against the noise level", show_label=True, container=True)
            d_inputs = [d_model, d_noise, d_level, d_index, d_seed]
            for comp, api in ((d_noise, "reg_noise"), (d_level, "reg_level"), (d_index, "reg_den_image"),
                              (d_seed, "reg_den_seed"), (d_model, "reg_den_model")):
                comp.change(keyed(with_baseline(show_denoising, d_plains), c), d_inputs, [c["den_strip"], c["den_numbers"], c["den_curve"]],
                            api_name=api, show_progress="hidden", trigger_mode="always_last")
            loads.append((keyed(with_baseline(show_denoising, d_plains), c), d_inputs, [c["den_strip"], c["den_numbers"], c["den_curve"]]))
        if sparse:
            with gr.Accordion("Sparsity: few code units per image", open=True):
                gr.Markdown(FORMULAS["sparse"], latex_delimiters=LATEX)
                first = sparse[0]
                ks = [load(x.name).model.config for x in sparse if is_k_sparse(load(x.name))]
                k_max = max((cf.latent_dim for cf in ks), default=100)
                k_start = int(round(ks[0].alpha * ks[0].k)) if ks else 1
                with gr.Row():
                    s_model = gr.Dropdown([(x.short_label, x.name) for x in sparse], value=first.name, label="model",
                                          scale=2, elem_id="reg-sparse-model")
                    s_k = gr.Slider(1, k_max, value=k_start, step=1, label="k-sparse: units kept when encoding (k)",
                                    scale=3, elem_id="reg-k", visible=is_k_sparse(load(first.name)))
                    s_index = gr.Number(0, precision=0, label="test image #", minimum=0, scale=1)
                c["sp_numbers"] = gr.Markdown()
                with gr.Row():
                    c["sp_hist"] = gr.HTML(label=f"code activations on {N_IMAGES} test images (orange: active)",
                                           show_label=True, container=True, elem_id="reg-hist")
                    c["sp_strip"] = PixelImage(label="the test image and its rebuild", alt="sparse rebuild", width=300)
                    c["sp_curve"] = gr.HTML(label="k-sparse: error against k", show_label=True, container=True,
                                            visible=is_k_sparse(load(first.name)))
            c["sp_k"] = s_k
            s_inputs = [s_model, s_k, s_index]
            s_out = [c["sp_hist"], c["sp_numbers"], c["sp_strip"], c["sp_curve"], s_k]
            for comp, api in ((s_model, "reg_sparse_model"), (s_k, "reg_k"), (s_index, "reg_sparse_image")):
                comp.change(keyed(show_sparse, c), s_inputs, s_out, api_name=api, show_progress="hidden",
                            trigger_mode="always_last")
            loads.append((keyed(show_sparse, c), s_inputs, s_out))
        if contr:
            with gr.Accordion("Contraction: small changes of the input barely move the code", open=True):
                gr.Markdown(FORMULAS["contractive"], latex_delimiters=LATEX)
                first = contr[0]
                c_plains = {x.name: plain_baseline(cards, x) for x in contr}
                with gr.Row():
                    c_model = gr.Dropdown([(x.short_label, x.name) for x in contr], value=first.name, label="model",
                                          scale=2)
                    c_eps = gr.Slider(0.01, 0.5, value=0.05, step=0.01, label="size of the random change (× the "
                                      "image's norm)", scale=2, elem_id="reg-eps")
                    c_index = gr.Number(0, precision=0, label="test image #", minimum=0, scale=1)
                c["ct_numbers"] = gr.Markdown()
                c["ct_maps"] = PixelImage(label="each test image's code (PCA plane), coloured by the encoder's Jacobian "
                                                "norm: the contractive model (left) and the plain one (right)",
                                          alt="Jacobian norm maps", elem_id="reg-jac")
            c_inputs = [c_model, c_eps, c_index]
            for comp, api in ((c_model, "reg_contractive_model"), (c_eps, "reg_eps"), (c_index, "reg_contractive_image")):
                comp.change(keyed(with_baseline(show_contractive, c_plains), c), c_inputs, [c["ct_maps"], c["ct_numbers"]], api_name=api,
                            show_progress="hidden", trigger_mode="always_last")
            loads.append((keyed(with_baseline(show_contractive, c_plains), c), c_inputs, [c["ct_maps"], c["ct_numbers"]]))
    return loads
