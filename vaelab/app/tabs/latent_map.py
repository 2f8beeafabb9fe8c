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
from vaelab.app import latent_canvas as canvas
from vaelab.app.catalogue import Card, choices
from vaelab.app.pixel_image import PixelImage
from vaelab.app.state import Loaded, decode, load, pca_for, reconstruct_test, test_image
from vaelab.app.widgets import LATEX, default_choice, fmt, follow_trained, keyed, model_picker

PROJ_LATENT, PROJ_PCA, PROJ_UMAP = "the latent (2-D)", "PCA", "UMAP"
VIEW_OF = {PROJ_LATENT: "latent", PROJ_PCA: "pca", PROJ_UMAP: "umap"}
PROJ_OF = {v: k for k, v in VIEW_OF.items()}
PREFERRED_MODELS = ("vae-2d", "ae-2d", "digits-vae-2d", "digits-ae-2d")  # the first one shipped is shown


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
    rec = pca.inverse_transform(pca.transform(flat)).reshape(x.shape[1:])
    if pca.n_components_ < d:
        why += f"; capped at {pca.n_components_}, the most its fitting images allow"
    return np.clip(rec, 0, 1), f"PCA with {pca.n_components_} components, {why}"


def projection_choices(m: Loaded) -> list[str]:
    """The 2-D views that apply to this model, as the radio names them."""
    return [PROJ_OF[v] for v in canvas.available_views(m)]


def projection_for(m: Loaded, projection: str | None) -> str:
    """The view to show: ``projection`` when it applies, else the model's default (UMAP when
    evaluation cached it for a latent of more than two numbers)."""
    return PROJ_OF[canvas.resolve_view(m, VIEW_OF.get(projection))]


UNAVAILABLE = {PROJ_LATENT: "vl-no-latent", PROJ_PCA: "vl-no-pca", PROJ_UMAP: "vl-no-umap"}
# a view that does not apply to the chosen model is greyed out and cannot be clicked (the radio keeps
# all three choices: a request still carrying the previous model's view must pass Gradio's check)
VIEWS_CSS = "\n".join(
    f'.{cls} label:has(input[value="{view}"]) {{ opacity: 0.4; pointer-events: none; text-decoration: line-through; }}'
    for view, cls in UNAVAILABLE.items())


def unavailable_classes(options: list[str]) -> list[str]:
    return [cls for view, cls in UNAVAILABLE.items() if view not in options]


def views_note(m: Loaded, options: list[str]) -> str:
    """Which 2-D views apply to this model, and why the others do not."""
    if options == [PROJ_LATENT]:
        return f"{m.card.display} has a 2-D latent: the map is the latent itself (PCA or UMAP would only turn it)."
    why = [f"not {PROJ_LATENT}: the latent has {m.card.latent_dim:,} numbers" if m.info.latent == "continuous"
           else f"not {PROJ_LATENT}: the latent is a map of codes"]
    if PROJ_UMAP not in options:
        dims = m.metrics.get("settings", {}).get("umap_latent_max_dims")
        why.append(f"no {PROJ_UMAP}: evaluation maps a latent with UMAP only up to {dims} numbers" if dims
                   else f"no {PROJ_UMAP}: evaluation did not compute one for this model")
    return (f"{m.card.display}: {latent_words(m)[0]}; choose " + " or ".join(options) + " (" + "; ".join(why) + ").")


@torch.no_grad()
def manifold(name: str, label: int = 0, n: int = 15) -> tuple[np.ndarray | None, str]:
    """For 2-D latents: decode an ``n``×``n`` grid over the latent plane. VAEs: over Gaussian
    quantiles (equal prior mass per cell); other models: over the range of the test codes."""
    m = load(name)
    if not (m.single_vector_latent and m.card.latent_dim == 2):
        return None, f"The manifold grid needs a 2-D continuous latent; {m.card.display} has {latent_words(m)[0]}."
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


def pick(name: str, index: int) -> dict:
    """Images for test image ``index``: ``original``, ``model_recon``, ``pca_recon``, its
    ``neighbours`` in the latent (a strip) and a ``caption``; a missing image is a panel saying why."""
    m = load(name)
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    x = test_image(m, i)
    rec, how = reconstruct_test(m, i)
    pca, pca_how = pca_reconstruct(m, i)
    digit = int(m.labels[i])
    parts = [f"**Test image #{i}** ({m.noun} {m.class_name(digit)})."]
    if x is None:
        parts.append(f"Original not shown: the {m.card.dataset.upper()} test images are not on this machine.")
    parts.append(f"Model: {how}." if rec is not None else f"Model reconstruction unavailable: {how}.")
    if x is not None and rec is not None:
        parts.append(f"Squared error per pixel: model {float(((rec - x) ** 2).mean()):.4f}")
        if pca is not None:
            parts[-1] += f", PCA {float(((torch.as_tensor(pca) - x[0]) ** 2).mean()):.4f}."
    parts.append(f"PCA: {pca_how}." if pca is not None else f"PCA reconstruction missing: {pca_how}.")
    strip, nearest = nearest_neighbours(m, i)
    same = sum(int(m.labels[j]) == digit for j in nearest)
    alike = f"are {digit}s" if m.classes is None else f"share its class ({m.class_name(digit)})"
    parts.append(f"Its {len(nearest)} nearest test images {neighbour_space(m)[1]}: {same} of them {alike}"
                 + (" (shown below)." if strip is not None else
                    f" ({', '.join(str(int(m.labels[j])) for j in nearest)}; images need the dataset)."))
    missing = {"original": f"The original is not on this server (no {m.card.dataset.upper()} here)",
               "model": "No reconstruction: " + how, "pca": "No PCA reconstruction: " + pca_how}
    show = lambda im, why: viz.placeholder_image(why) if im is None else viz.to_display(im)  # noqa: E731
    neighbours = strip if strip is not None else viz.placeholder_image(
        f"The nearest images need the {m.card.dataset.upper()} test images (their digits are in the caption)",
        84, width=len(nearest) * 84)
    return {"original": show(x, missing["original"]), "model_recon": show(rec, missing["model"]),
            "pca_recon": show(pca, missing["pca"]), "neighbours": neighbours, "caption": " ".join(parts)}


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




SUMMARY = ("**Each dot is a test image, placed where the model puts it.** Hover to see it, click to pick "
           "it; on a 2-D model, drag in the left map to see what the decoder draws there.")


def about_model(m: Loaded) -> str:
    """One line on the chosen model (its label in the picker is short) and the views it has."""
    purpose = f" Shipped for: {m.card.purpose}." if m.card.purpose else ""
    views = views_note(m, projection_choices(m)).split(": ", 1)[-1]
    return f"**{m.card.display}** — {m.card.description}.{purpose} {views[0].upper() + views[1:]}"


_PCA_TEST: dict = {}


def pca_test_mse(dataset_name: str, d: int) -> float | None:
    """PCA's squared error per pixel over the whole test set with ``d`` components (fitted on the
    training images, as every PCA here is), or ``None`` without the dataset."""
    from vaelab.app.state import dataset

    key = (dataset_name, int(d))
    if key not in _PCA_TEST:
        data, pca = dataset(dataset_name), pca_for(dataset_name, d)
        if data is None or pca is None:
            return None
        flat = data.test_x.flatten(1).numpy()
        rec = np.clip(pca.inverse_transform(pca.transform(flat)), 0, 1)
        _PCA_TEST[key] = float(((rec - flat) ** 2).mean())
    return _PCA_TEST[key]


def live_numbers(m: Loaded) -> str:
    """The model's test-set numbers, kept under the map: its reconstruction error beside PCA's with
    the components the caption compares with (:func:`pca_size`)."""
    emb, rec = m.metrics.get("embedding", {}), m.metrics.get("reconstruction", {})
    pca_d, _ = pca_size(m)
    k = emb.get("knn_k", 5)
    mse, pca_mse = rec.get("mse"), rec.get("pca_mse") if rec.get("pca_dims") == pca_d else None
    pixels = int(np.prod(m.card.image_shape))
    if pca_mse is None and pca_d < pixels:
        pca_mse = pca_test_mse(m.card.dataset, pca_d)
    ratio = mse / pca_mse if isinstance(mse, (int, float)) and pca_mse else None
    if pca_d >= pixels:
        pca_text = f"PCA with {pca_d} components would copy the {pixels} pixels exactly (no comparison)"
    elif pca_mse is None:
        pca_text = f"PCA-{pca_d} needs the {m.card.dataset.upper()} images, which are not on this server"
    else:
        pca_text = f"PCA-{pca_d} {fmt(pca_mse, 4)} (ratio {fmt(ratio, 2)})"
    return (f"**{m.card.display}, test set:** reconstruction error (MSE per pixel) {fmt(mse, 4)} vs {pca_text} · "
            f"{k}-NN accuracy in the full latent {fmt(emb.get('knn_latent_full'))} (the share of test images whose "
            f"{m.noun} their {k} nearest training images' majority vote gets right)")


def latent_map_markdown(m: Loaded) -> str:
    """The formulas and what the scores mean (in an accordion under the map)."""
    d = m.card.latent_dim
    words, space = latent_words(m)
    flat_2d = m.info.latent == "continuous" and d == 2
    emb = m.metrics.get("embedding", {})
    k = emb.get("knn_k", 5)
    return "\n".join([
        f"Left: where **{m.card.display}** puts each of the {m.n_test:,} test images ({words}"
        + ("" if flat_2d or d == 1 else ", projected to 2-D") + "). Right: the first two principal components of the "
        "same images' pixels — the best *linear* 2-D view.",
        "",
        "$$\\text{PCA: } \\hat x = \\bar x + W_d W_d^{\\top}(x-\\bar x) \\qquad "
        "\\text{autoencoder: } \\hat x = g_\\theta\\big(f_\\phi(x)\\big),\\; z = f_\\phi(x) \\in " + space + "$$",
        "",
        f"*{k}-NN accuracy* (in a 2-D view, or in the full latent where the text says so): the share of test "
        f"images whose {m.noun} the majority vote of their {k} nearest training images, measured in that space, gets "
        "right. "
        "*Trustworthiness* (1 = no false neighbours in the 2-D view): "
        "$T(k)=1-\\frac{2}{nk(2n-3k-1)}\\sum_i\\sum_{j\\in U_k(i)}\\big(r(i,j)-k\\big)$.",
        "",
        "For a VAE the encoder gives a distribution, not a point: $q_\\phi(z\\mid x)=\\mathcal N(\\mu,\\,"
        "\\mathrm{diag}\\,\\sigma^2)$. On a 2-D VAE the dashed ellipse around the picked image is "
        "$\\mu \\pm 2\\sigma$, where about 86 % of its codes fall.",
    ])


def map_value(m: Loaded, projection: str, i: int) -> str:
    """The map's value for test image ``i`` picked: with its posterior ellipse on a 2-D VAE."""
    return canvas.map_value(m.card.name, VIEW_OF[projection], i,
                            ellipse=canvas.posterior_ellipse(m, test_image(m, i)))


def _index(m: Loaded, index) -> int:
    try:
        i = int(index or 0)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"A test image is picked by its number, 0 to {m.n_test - 1}; {index!r} is not one.")
    return int(np.clip(i, 0, m.n_test - 1))


def show_map(name: str, projection: str | None, index) -> dict:
    """Switching models or views, first what the map needs: its value, the view control, the
    picker's range, the line about the model and its numbers (small, so the map repaints first)."""
    m = load(name)
    options = projection_choices(m)
    projection = projection_for(m, projection)
    i = _index(m, index)
    # the radio keeps all three choices: a request that still carries the previous model's view
    # (a switch can send two) must pass Gradio's check of the value against the choices; the
    # view that applies is chosen here and sent back
    return {"map": map_value(m, projection, i),
            "projection": gr.update(value=projection, interactive=True, elem_classes=unavailable_classes(options)),
            "index": gr.update(maximum=m.n_test - 1, value=i),
            "about": about_model(m), "numbers": live_numbers(m)}


def show_details(name: str, projection: str | None, index) -> dict:
    """Then the rest of the tab: the picked image's row, the formulas and (2-D latents) the
    decoded manifold."""
    m = load(name)
    i = _index(m, index)
    grid, grid_caption = manifold(name, int(m.labels[i]))
    return {"formulas": latent_map_markdown(m), **pick(name, i),
            "grid": gr.update(value=grid, visible=grid is not None), "grid_caption": grid_caption}


def select_map_model(name: str, projection: str | None, index) -> dict:
    """Everything a model switch changes (:func:`show_map` and :func:`show_details`). Uses only
    cached data."""
    return {**show_map(name, projection, index), **show_details(name, projection, index)}


def pick_point(name: str, projection: str | None, index) -> dict:
    """Picking a test image by its number: the map's marker (and ellipse) and the image row."""
    return {**pick_marker(name, projection, index), **pick_row(name, index)}


def pick_marker(name: str, projection: str | None, index) -> dict:
    """The map's value with test image ``index`` picked (answered first: the marker moves at once)."""
    m = load(name)
    return {"map": map_value(m, projection_for(m, projection), _index(m, index))}


def pick_row(name: str, index) -> dict:
    """Then the picked image's row: original, reconstructions, neighbours, caption."""
    m = load(name)
    return pick(name, _index(m, index))


def map_clicked(value, name: str, projection: str | None) -> dict:
    """A point clicked in the map (its value carries the pick): the image row, the picker and
    the ellipse. A value for another model (a switch in flight) changes nothing."""
    v = canvas.read_value(value)
    if v.get("model") != name or v.get("pick") is None:
        return {}
    m = load(name)
    i = _index(m, v.get("pick"))
    return {"map": map_value(m, projection_for(m, projection), i), "index": i, **pick(name, i)}


# --- layout and wiring -------------------------------------------------------------------------

def model_choices(cards: list[Card]) -> list[tuple[str, str]]:
    """Every evaluated checkpoint has a map."""
    return choices(cards)


def default_model(cards: list[Card]) -> str | None:
    return default_choice(model_choices(cards), PREFERRED_MODELS)


def render(cards: list[Card], mine=None):
    """The tab and its events (``mine``: the session's trained models, joining the picker).
    Returns the page load's ``(inputs, outputs)`` for :func:`select_map_model`, or ``None`` when
    there is no checkpoint to show."""
    options = model_choices(cards)
    with gr.Tab("Latent map"):
        gr.Markdown(SUMMARY)
        with gr.Row(equal_height=False):
            model = model_picker(options, PREFERRED_MODELS, label="Model", scale=2, elem_id="map-model")
            if mine is not None:
                follow_trained(mine, model, lambda extra: model_choices(cards + extra))
            projection = gr.Radio([PROJ_LATENT, PROJ_PCA, PROJ_UMAP], value=PROJ_LATENT,
                                  label="2-D view of the latent", scale=3, elem_id="map-view")
            index = gr.Slider(0, 100, value=0, step=1, label="Test image # (or click a dot)", scale=2,
                              elem_id="map-index")
        c = {"model": model, "projection": projection, "index": index}
        c["map"] = canvas.latent_canvas(elem_id="map-canvas", label="latent map")
        c["about"] = gr.Markdown(elem_classes=["vl-small"])
        c["numbers"] = gr.Markdown(elem_classes=["vl-small"], latex_delimiters=LATEX)
        with gr.Row():
            c["original"] = PixelImage(label="original", width=230, alt="the test image")
            c["model_recon"] = PixelImage(label="model's reconstruction", elem_id="map-recon", width=230,
                                          alt="the model's reconstruction")
            c["pca_recon"] = PixelImage(label="PCA's reconstruction (same size of code)", width=230,
                                        alt="PCA's reconstruction")
        c["neighbours"] = PixelImage(label="nearest test images (see the caption for where)", height=100,
                                     alt="the nearest test images")
        c["caption"] = gr.Markdown()
        with gr.Accordion("The formulas, and what the scores mean", open=False):
            c["formulas"] = gr.Markdown(latex_delimiters=LATEX)
        with gr.Accordion("The decoded manifold: a grid over the 2-D latent", open=False):
            with gr.Row():
                c["grid"] = PixelImage(label="decoded manifold over the latent plane", width=480,
                                       alt="the decoded manifold")
                c["grid_caption"] = gr.Markdown()

    outputs = [v for k, v in c.items() if k != "model"]
    inputs = [model, projection, index]
    # .change, not .input: the dropdown fires .input twice per choice, and each answer re-renders the tab
    first = ["map", "projection", "index", "about", "numbers"]
    details = [v for k, v in c.items() if k not in first and k != "model"]
    for event, name in ((model.change, "latent_map"), (projection.input, "latent_map_projection")):
        event(keyed(show_map, c), inputs, [c[k] for k in first], api_name=name, show_progress="hidden",
              trigger_mode="always_last").then(keyed(show_details, c), inputs, details,
                                               api_name=name + "_details", show_progress="hidden")
    pick_outputs = [c[k] for k in ("map", "original", "model_recon", "pca_recon", "neighbours", "caption")]
    index.input(keyed(pick_marker, c), inputs, [c["map"]], api_name="pick_point", show_progress="hidden",
                trigger_mode="always_last").then(keyed(pick_row, c), [model, index], pick_outputs[1:],
                                                 api_name="pick_row", show_progress="hidden")
    c["map"].input(keyed(map_clicked, c), [c["map"], model, projection], pick_outputs + [index],
                   api_name="map_clicked", show_progress="hidden", trigger_mode="always_last")
    return (keyed(select_map_model, c), inputs, outputs) if default_model(cards) else None
