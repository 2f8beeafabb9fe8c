"""Latent map: where a model puts each test digit, beside the best linear 2-D view (PCA).

Each dot is a test image at its code (or a PCA/UMAP projection of it when the latent has more
than two dimensions), coloured by digit; picking one compares how the model and PCA with the
same number of dimensions rebuild it, and which test images are its neighbours in the latent.
For 2-D latents a grid decoded over the latent plane shows the manifold the decoder learnt.
Uses only the coordinates evaluation cached; originals and PCA need the dataset on disk.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from vaelab import viz
from vaelab.app.catalogue import Card, choices
from vaelab.app.state import Loaded, decode, load, pca_for, test_image
from vaelab.app.widgets import IMG, LATEX, default_choice, fmt, model_picker

PROJ_LATENT, PROJ_PCA, PROJ_UMAP = "the latent itself (2-D)", "PCA of the latent", "UMAP of the latent (cached)"
PREFERRED_MODELS = ("vae-2d", "ae-2d", "digits-vae-2d", "digits-ae-2d")  # the first one shipped is shown


def _label(m: Loaded, label: int | None) -> torch.Tensor | None:
    if not m.info.conditional:
        return None
    return torch.tensor([int(label or 0)])


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


def pca_size(m: Loaded) -> tuple[int, str]:
    """How many PCA components compare with this model's latent, and why: as many as the latent
    has numbers; for discrete codes, one per code position (each position holds one code)."""
    if m.info.latent == "discrete":
        positions = sum(int(np.prod(s)) for s in (m.info.index_shapes or ()))
        return positions, f"one component per code position ({positions})"
    return m.info.latent_dim, f"as many components as latent numbers ({m.info.latent_dim})"


def pca_reconstruct(m: Loaded, i: int) -> tuple[np.ndarray | None, str]:
    x = test_image(m, i)
    if x is None:
        return None, f"PCA needs the {m.card.dataset.upper()} images, which are not on this machine"
    d, why = pca_size(m)
    pixels = x[0].numel()
    if d >= pixels:
        return None, (f"PCA with {d} components would copy the {pixels} pixels exactly, so there is "
                      "nothing to compare")
    pca = pca_for(m.card.dataset, d)
    flat = x.flatten(1).numpy()
    rec = pca.inverse_transform(pca.transform(flat)).reshape(x.shape[-2:])
    return np.clip(rec, 0, 1), f"PCA with {pca.n_components_} components, {why}"


def projection_choices(m: Loaded) -> list[str]:
    if m.arrays["coords_model"].shape[1] == 2 and m.card.latent_dim == 2:
        return [PROJ_LATENT]
    out = [PROJ_PCA]
    if "coords_model_umap" in m.arrays:
        out.append(PROJ_UMAP)
    return out


def views_note(m: Loaded, options: list[str]) -> str:
    """Which 2-D views apply to this model (the radio lists all three)."""
    if options == [PROJ_LATENT]:
        return f"{m.card.name} has a 2-D latent: the map is the latent itself."
    return f"{m.card.name} has a {m.card.latent_dim}-D latent: choose " + " or ".join(options) + "."


def map_titles(m: Loaded, projection: str) -> tuple[str, str]:
    emb = m.metrics.get("embedding", {})
    k = emb.get("knn_k", 5)
    key = "model_umap" if projection == PROJ_UMAP else "model"
    what = {PROJ_LATENT: "latent", PROJ_PCA: "latent, PCA to 2-D", PROJ_UMAP: "latent, UMAP to 2-D"}[projection]
    return (f"{m.card.name} ({what}): {k}-NN acc {fmt(emb.get('knn_' + key))}, "
            f"trust {fmt(emb.get('trust_' + key))}",
            f"PCA of the pixels: {k}-NN acc {fmt(emb.get('knn_pca'))}, trust {fmt(emb.get('trust_pca'))}")


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
        return None, f"The manifold grid needs a 2-D continuous latent; {m.card.name} has {latent_words(m)[0]}."
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
def neighbour_space(m: Loaded) -> tuple[np.ndarray, str]:
    """Where neighbours are searched, and its name: the cached test latents when evaluation kept
    them, else the 2-D map (the latent itself for 2-D models, its PCA projection otherwise)."""
    if "latent_test" in m.arrays:
        return m.arrays["latent_test"], "in the latent"
    if m.arrays["coords_model"].shape[1] == 2 and m.card.latent_dim == 2:
        return m.arrays["coords_model"], "in the latent"
    return m.arrays["coords_model"], "in the 2-D PCA view of the latent"


def nearest_neighbours(m: Loaded, i: int, k: int = 8) -> tuple[np.ndarray, list[int]]:
    """The ``k`` test images closest to test image ``i`` in :func:`neighbour_space`: a strip of
    originals, or ``None`` without the dataset."""
    space, _ = neighbour_space(m)
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
    parts.append(f"Its {len(nearest)} nearest test images {neighbour_space(m)[1]}: {same} of them are {digit}s"
                 + (" (shown below)." if strip is not None else
                    f" ({', '.join(str(int(m.labels[j])) for j in nearest)}; images need the dataset)."))
    show = lambda im: viz.placeholder_image() if im is None else viz.to_display(im)  # noqa: E731
    neighbours = strip if strip is not None else viz.strip(np.full((len(nearest), 8, 8), 0.25), 84)
    return show(x), show(rec), show(pca), neighbours, " ".join(parts)


def latent_words(m: Loaded) -> tuple[str, str]:
    """The latent in words and as a set, from the model's info: ``("a 16-D latent", "\\mathbb{R}^{16}")``
    or, for discrete codes, ``("7×7 map of codes from a 512-entry codebook", "\\{1..512\\}^{7×7}")``."""
    info = m.info
    if info.latent == "discrete":
        k, shapes = info.codebook_size, [tuple(s) for s in info.index_shapes]
        sizes = ["×".join(str(n) for n in s) for s in shapes]
        space = " \\times ".join(f"\\{{1,\\dots,{k}\\}}^{{{n}}}" for n in sizes)
        if all(len(s) == 1 for s in shapes):
            return f"{' + '.join(sizes)} categorical variables of {k} categories each", space
        maps = "a " + sizes[0] + " map" if len(sizes) == 1 else " and ".join(sizes) + " maps"
        return f"{maps} of codes, each from a {k}-entry codebook", space
    d = m.card.latent_dim
    article = "an" if str(d).startswith("8") or d in (11, 18) else "a"  # "an 8-D", "an 18-D"
    return f"{article} {d}-D latent", f"\\mathbb{{R}}^{{{d}}}"


def latent_map_markdown(m: Loaded) -> str:
    emb, rec = m.metrics.get("embedding", {}), m.metrics.get("reconstruction", {})
    d = m.card.latent_dim
    words, space = latent_words(m)
    flat_2d = m.info.latent == "continuous" and d == 2
    pca_d, _ = pca_size(m)
    return "\n".join([
        f"**What you see.** Each dot is one of {m.n_test:,} test images (up to {viz.MAX_POINTS:,} drawn), coloured "
        f"by its digit. Left: where **{m.card.name}** puts it ({words}"
        + ("" if flat_2d else ", projected to 2-D") + "). Right: the first two principal components of the "
        "same images' pixels — the best *linear* 2-D view. Move the slider to pick an image and compare "
        "how the model and PCA with the same number of dimensions rebuild it.",
        "",
        "$$\\text{PCA: } \\hat x = \\bar x + W_d W_d^{\\top}(x-\\bar x) \\qquad "
        "\\text{autoencoder: } \\hat x = g_\\theta\\big(f_\\phi(x)\\big),\\; z = f_\\phi(x) \\in " + space + "$$",
        "",
        f"**Live numbers** (test set, from `metrics.json`): reconstruction MSE per pixel "
        f"{fmt(rec.get('mse'), 4)} vs PCA-{rec.get('pca_dims', pca_d)} {fmt(rec.get('pca_mse'), 4)} "
        f"(ratio {fmt(rec.get('mse_ratio_to_pca'), 2)}); {emb.get('knn_k', 5)}-NN accuracy in the full latent "
        f"{fmt(emb.get('knn_latent_full'))}. *k-NN accuracy*: how often the {emb.get('knn_k', 5)} nearest training "
        "points share the digit. *Trustworthiness* (1 = no false neighbours): "
        "$T(k)=1-\\frac{2}{nk(2n-3k-1)}\\sum_i\\sum_{j\\in U_k(i)}\\big(r(i,j)-k\\big)$.",
    ])


def select_map_model(name: str, projection: str | None, index: int):
    """Switching models: the figure, the manifold, the explanation, the picked images and the
    updated controls (projection choices, index range). Uses only cached coordinates."""
    m = load(name)
    options = projection_choices(m)
    projection = projection if projection in options else options[0]
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    grid, grid_caption = manifold(name, int(m.labels[i]))
    original, rec, pca, neighbours, caption = pick(name, i)
    # the radio keeps all three choices: a request that still carries the previous model's view
    # (a switch can send two) must pass Gradio's check of the value against the choices; the
    # view that applies is chosen here and sent back
    return (map_figure(name, projection, i),
            gr.update(value=projection, interactive=len(options) > 1, info=views_note(m, options)),
            gr.update(maximum=m.n_test - 1, value=i),
            latent_map_markdown(m), original, rec, pca, neighbours, caption,
            gr.update(value=grid, visible=grid is not None), grid_caption)


def pick_point(name: str, projection: str, index: int):
    """Picking a test image: the figure with its star, the three images, the neighbours, the caption."""
    return (map_figure(name, projection, index), *pick(name, index))


# --- layout and wiring -------------------------------------------------------------------------

def model_choices(cards: list[Card]) -> list[tuple[str, str]]:
    """Every evaluated checkpoint has a map."""
    return choices(cards)


def default_model(cards: list[Card]) -> str | None:
    return default_choice(model_choices(cards), PREFERRED_MODELS)


def render(cards: list[Card]):
    """The tab and its events. Returns the page load's ``(inputs, outputs)`` for
    :func:`select_map_model`, or ``None`` when there is no checkpoint to show."""
    options = model_choices(cards)
    with gr.Tab("Latent map"):
        with gr.Row():
            model = model_picker(options, PREFERRED_MODELS, label="Model (grouped by family)", scale=3,
                                 elem_id="map-model")
            projection = gr.Radio([PROJ_LATENT, PROJ_PCA, PROJ_UMAP], value=PROJ_LATENT,
                                  label="2-D view of the latent", scale=2)
        plot = gr.Plot(label="Test images in the model's latent (left) and in PCA of the pixels (right)",
                       elem_id="map-plot")
        index = gr.Slider(0, 100, value=0, step=1, label="Pick a test image (its star moves in both maps)")
        with gr.Row():
            original = gr.Image(label="original", **IMG)
            model_recon = gr.Image(label="model's reconstruction", **IMG)
            pca_recon = gr.Image(label="PCA's reconstruction (same size of code)", **IMG)
        neighbours = gr.Image(label="nearest test images (see the caption for where)", height=100, buttons=[],
                              interactive=False, type="numpy")
        pick_caption = gr.Markdown()
        explanation = gr.Markdown(latex_delimiters=LATEX)
        with gr.Row():
            grid = gr.Image(label="decoded manifold over the latent plane", height=480, width=480,
                            buttons=[], interactive=False, image_mode="L", type="numpy")
            grid_caption = gr.Markdown()

    outputs = [plot, projection, index, explanation, original, model_recon, pca_recon, neighbours, pick_caption,
               grid, grid_caption]
    inputs = [model, projection, index]
    model.input(select_map_model, inputs, outputs, api_name="latent_map")
    projection.input(select_map_model, inputs, outputs, api_name="latent_map_projection")
    index.input(pick_point, [model, projection, index],
                [plot, original, model_recon, pca_recon, neighbours, pick_caption],
                api_name="pick_point", show_progress="hidden", trigger_mode="always_last")
    return (inputs, outputs) if default_model(cards) else None
