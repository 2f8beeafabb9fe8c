"""Codebook: how a discrete autoencoder uses its codes, and what each code draws.

For every shipped model whose latent is a map of codes (VQ-VAE with and without dead-code
restart, both levels of VQ-VAE-2, the grid dVAE, VQ-GAN): how often each code is used over the
whole test set, sorted, with perplexity and dead codes; what the most used codes draw on their
own; the code vectors in one 2-D projection with the encoder's outputs; a test image's code map
where a cell can be given another code and the image re-decoded; samples from the prior over
codes at a chosen temperature; and, for models whose training recorded it, how code use evolved
epoch by epoch (collapse without restart, its absence with). Counts come from the code maps
evaluation cached for the test set, so everything but the encoder outputs works without data.
"""

from __future__ import annotations

import functools
import json

import gradio as gr
import numpy as np
import torch

from vaelab import metrics, viz
from vaelab.app.catalogue import Card
from vaelab.app.pixel_image import PixelImage
from vaelab.app.serving import bounded
from vaelab.app.state import Loaded, load, test_image
from vaelab.app.widgets import LATEX, asset, follow_trained, keyed, model_picker, tab_intro, whole_number
from vaelab.checkpoint import read_info
from vaelab.folders import read_json

ATLAS = 64  # codes shown in the atlas, most used first
SUMMARY = ("**A discrete autoencoder describes each image as a small map of codes, each picked from a "
           "codebook of K learned vectors.** How many of the K does it actually use? Click a cell of an "
           "image's code map and give it another code to see what the code draws.")
FORMULA = ("$$z_q(x)_{ij} = e_{k^*},\\quad k^* = \\arg\\min_k \\lVert z_e(x)_{ij} - e_k \\rVert,\\qquad "
           "\\text{perplexity} = \\exp\\Big(-\\sum_k p_k \\log p_k\\Big),\\; p_k = \\frac{n_k}{\\sum_j n_j}$$\n\n"
           "Perplexity is the number of equally used codes that would give the same entropy: $K$ when "
           "every code is used equally, 1 when one code takes everything. A *dead* code is never picked.")


def codebook_models(cards: list[Card]) -> list[Card]:
    """Checkpoints whose latent is one or more 2-D maps of codes."""
    out = []
    for c in cards:
        if not c.size.startswith("discrete"):
            continue
        info = read_info(c.folder)
        if info.get("codebook_size") and all(len(s) == 2 for s in info.get("index_shapes") or [()]):
            out.append(c)
    return out


def level_names(m: Loaded) -> list[str]:
    n = m.info.levels
    return ["codes"] if n == 1 else (["bottom (fine)", "top (coarse)"] if n == 2 else [f"level {i}" for i in range(n)])


def _level(m: Loaded, level) -> int:
    names = level_names(m)
    return names.index(level) if level in names else 0


def test_maps(m: Loaded, i: int) -> list[np.ndarray]:
    """Test image ``i``'s code map at every level (from the cached test codes)."""
    return [m.arrays[f"indices_level{lv}"][i].astype(np.int64) for lv in range(m.info.levels)]


@torch.no_grad()
def decode_maps(m: Loaded, maps: list[np.ndarray]) -> torch.Tensor:
    idx = [torch.as_tensor(np.asarray(a, np.int64))[None] for a in maps]
    z = m.model.latent_from_indices(idx[0] if len(idx) == 1 else tuple(idx))
    return m.model.decode(z).clamp(0, 1)[0]


def counts(m: Loaded, level: int) -> np.ndarray:
    """How often each code is used over every position of every cached test code map."""
    return metrics.codebook_usage(torch.as_tensor(m.arrays[f"indices_level{level}"].astype(np.int64)),
                                  m.info.codebook_size).numpy()


# --- figures ---------------------------------------------------------------------------------------

def usage_svg(c: np.ndarray, title: str, width: int = 520, height: int = 170, colour: str = "#4e79a7") -> str:
    """Code use sorted from most to least used, one bar per code; dead codes leave the tail empty."""
    k = len(c)
    order = np.sort(c)[::-1]
    top = max(1, int(order[0]))
    L, B, T = 40, 22, 18
    bw = (width - L - 4) / k
    bars = "".join(f'<rect x="{L + j * bw:.2f}" y="{T + (height - T - B) * (1 - v / top):.1f}" '
                   f'width="{max(bw - 0.2, 0.6):.2f}" height="{(height - T - B) * v / top:.1f}" fill="{colour}"/>'
                   for j, v in enumerate(order) if v > 0)
    used = int((c > 0).sum())
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
            f'aria-label="{title}">'
            f'<text x="{L}" y="12" font-size="12" font-weight="600">{title}</text>{bars}'
            f'<line x1="{L}" y1="{height - B}" x2="{width - 4}" y2="{height - B}" stroke="#9aa0a6"/>'
            f'<text x="{L - 4}" y="{T + 8}" font-size="10" text-anchor="end" fill="#5f6368">{top:,}</text>'
            f'<text x="{L - 4}" y="{height - B}" font-size="10" text-anchor="end" fill="#5f6368">0</text>'
            f'<text x="{L}" y="{height - 6}" font-size="11" fill="#5f6368">codes, most used first: {used} of {k} '
            f'used</text></svg>')


def stats_markdown(m: Loaded, level: int) -> str:
    c = counts(m, level)
    h = metrics.codebook_health(torch.as_tensor(c))
    shapes = m.info.index_shapes[level]
    return (f"**{m.card.display}, {level_names(m)[level]}:** {h['used_codes']} of {h['codebook_size']} codes used, "
            f"**{h['dead_codes']} dead**; perplexity **{h['perplexity']:.1f}** "
            f"({h['perplexity_fraction']:.0%} of K) over {int(c.sum()):,} positions "
            f"({m.n_test:,} test images × {shapes[0]}×{shapes[1]} cells).")


CARRIES = 0.1  # a code "draws something" when its patch changes the picture by ≥ this share of the largest change
CANDIDATES = 256  # the most used codes the atlas looks among


@torch.no_grad()
def painted(m: Loaded, level: int, codes) -> torch.Tensor:
    """Images ``(len(codes), C, H, W)``: a map of the level's most used code (the background, the
    other levels' too) with each code painted on a patch in the middle, a third of the map across;
    decoded as one batch."""
    codes = np.asarray(codes, np.int64).reshape(-1)
    firsts = [int(np.argmax(counts(m, lv))) for lv in range(m.info.levels)]
    maps = [np.full((len(codes), *s), firsts[lv], np.int64) for lv, s in enumerate(m.info.index_shapes)]
    h, w = maps[level].shape[1:]
    ph, pw = max(1, h // 3), max(1, w // 3)
    top, left = (h - ph) // 2, (w - pw) // 2
    maps[level][:, top:top + ph, left:left + pw] = codes[:, None, None]
    idx = [torch.from_numpy(a) for a in maps]
    out = []
    for i in range(0, len(codes), 64):
        z = m.model.latent_from_indices(idx[0][i:i + 64] if len(idx) == 1 else tuple(t[i:i + 64] for t in idx))
        out.append(m.model.decode(z).clamp(0, 1))
    return torch.cat(out)


@functools.lru_cache(maxsize=16)
def atlas_codes(name: str, level: int) -> tuple[list[int], int]:
    """Up to ``ATLAS`` of the most used codes that draw something on the background (a code
    painted like the background leaves it as it is: a map filled with it is all black), in order of
    use, and how many of the most used ones were passed over for changing little."""
    m = load(name)
    c = counts(m, level)
    order = [int(k) for k in np.argsort(-c)[:CANDIDATES] if c[k] > 0]
    images = painted(m, level, [order[0]] + order)
    change = (images[1:] - images[:1]).abs().flatten(1).mean(1)  # against the background alone
    floor = max(CARRIES * float(change.max()), 1e-3)
    chosen = [k for k, d in zip(order, change.tolist()) if d >= floor][:ATLAS]
    passed = sum(1 for k, d in zip(order, change.tolist()) if d < floor and c[k] >= c[chosen[-1]]) if chosen else 0
    return chosen, passed


@functools.lru_cache(maxsize=16)
def atlas(name: str, level: int) -> np.ndarray:
    """The most used codes that draw something, each painted on a patch in the middle of a map
    of the background code (see :func:`atlas_codes`)."""
    m = load(name)
    codes, _ = atlas_codes(name, level)
    if not codes:
        return viz.placeholder_image("No code changes this model's background", 120, width=480)
    return viz.grid_image(list(painted(m, level, codes)), cols=8, pixels=8 * 29 * 2, pad=1)


def atlas_note(name: str, level: int) -> str:
    m = load(name)
    codes, passed = atlas_codes(name, level)
    h, w = m.info.index_shapes[level]
    if not codes:
        return (f"None of this level's codes, painted on the middle {max(1, h // 3)}×{max(1, w // 3)} cells of a map "
                "of the most used code, changes the picture: over a blank map of the other level, it draws nothing "
                "on its own.")
    return (f"The {len(codes)} most used codes that draw something, each painted on the middle "
            f"{max(1, h // 3)}×{max(1, w // 3)} cells of a map of the most used code (the background), in order of "
            f"use; {passed} codes used as often were left out: painted there, they barely change the background "
            "(a map filled with one of them alone is blank).")


@functools.lru_cache(maxsize=16)
def projection(name: str, level: int) -> tuple[np.ndarray | None, str]:
    """The level's code vectors in the first two principal components, dot size by use (grey:
    dead), with the encoder's outputs for 200 test images as small dots when the data is here."""
    from PIL import Image, ImageDraw

    m = load(name)
    books = m.model.codebooks()
    if level >= len(books) or books[level] is None:
        return None, "This level's codes are one-hot choices with no vectors to project."
    e = books[level].detach().double().numpy()
    c = counts(m, level)
    z_e = None
    x = [test_image(m, i) for i in range(min(200, m.n_test))]
    if all(v is not None for v in x):
        with torch.no_grad():
            lat = m.model.encode(torch.cat(x))
        ze = lat.extras.get("z_e")
        if ze is not None:
            ze = ze[level] if isinstance(ze, tuple) else ze
            z_e = ze.permute(0, 2, 3, 1).reshape(-1, ze.shape[1]).double().numpy()
    mean = e.mean(0)
    basis = np.linalg.svd(e - mean, full_matrices=False)[2][:2]
    pe = (e - mean) @ basis.T
    pz = None if z_e is None else (z_e - mean) @ basis.T
    both = pe if pz is None else np.concatenate([pe, pz])
    lo, hi = np.percentile(both, 1, axis=0), np.percentile(both, 99, axis=0)
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    size = 320
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    to = lambda p: ((p[0] - lo[0]) / (hi[0] - lo[0]) * size, (hi[1] - p[1]) / (hi[1] - lo[1]) * size)  # noqa: E731
    if pz is not None:
        for p in pz[::max(1, len(pz) // 3000)]:
            x0, y0 = to(p)
            d.point((x0, y0), fill=(190, 190, 190))
    top = max(1, c.max())
    for p, n in zip(pe, c):
        x0, y0 = to(p)
        r = 1.5 + 5 * np.sqrt(n / top)
        d.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=(78, 121, 167) if n else (180, 60, 60))
    d.rectangle((0, 0, size - 1, size - 1), outline=(150, 150, 150))
    if pz is not None:
        outputs = "; grey: the encoder's outputs for 200 test images, before snapping to the nearest code."
    elif all(v is not None for v in x):  # the images are here: the bottleneck has no encoder vectors
        outputs = ("; no encoder outputs to show beside them: a Gumbel bottleneck does not snap an encoder vector to "
                   "the nearest code, it draws each cell's code from the encoder's probabilities and passes the "
                   "decoder that code's vector (a mix of them, in training).")
    else:
        outputs = "; the encoder's outputs need the test images, which are not on this server."
    how = "Blue: code vectors (area ∝ use); red: dead codes" + outputs
    return np.asarray(img), how


def history_codes(m: Loaded) -> list[dict]:
    """The per-epoch code use training recorded (``[]`` for models trained before it was)."""
    h = read_json(m.card.folder, "history.json", {}) or {}
    return [e for e in h.get("epochs", []) if "codes" in e]


def replay_svg(names: list[str], width: int = 520, height: int = 200) -> str:
    """Codes used per epoch for every codebook model whose training recorded it."""
    series = []
    for n in names:
        m = load(n)
        recs = history_codes(m)
        if recs:
            series.append((n, [r["codes"][0]["used_codes"] for r in recs], m.info.codebook_size))
    if not series:
        return ('<p class="vl-small">None of these models recorded its code use per epoch (vaelab\'s training '
                'records it: <code>python -m vaelab zoo --only vq-vae vq-vae-no-restart</code> retrains the '
                'shipped pair).</p>')
    L, B, T, R = 40, 26, 10, 110
    n_ep = max(len(s[1]) for s in series)
    k = max(s[2] for s in series)
    sx = lambda e: L + e / max(1, n_ep - 1) * (width - L - R)  # noqa: E731
    sy = lambda u: T + (1 - u / k) * (height - T - B)  # noqa: E731
    colours = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1"]
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
           f'aria-label="codes used per epoch">',
           f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" fill="none" stroke="#9aa0a6"/>',
           f'<text x="{L - 4}" y="{T + 8}" font-size="10" text-anchor="end">{k}</text>',
           f'<text x="{L - 4}" y="{height - B}" font-size="10" text-anchor="end">0</text>',
           f'<text x="{(L + width - R) / 2}" y="{height - 6}" font-size="11" text-anchor="middle">epoch (1 … {n_ep}) '
           f'→ codes used on the validation images</text>']
    for j, (n, used, _) in enumerate(series):
        col = colours[j % len(colours)]
        out.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="'
                   + " ".join(f"{sx(e):.1f},{sy(u):.1f}" for e, u in enumerate(used)) + '"/>')
        out.append(f'<text x="{width - R + 6}" y="{sy(used[-1]) + 4:.1f}" font-size="11" fill="{col}">{n}</text>')
    out.append("</svg>")
    return "".join(out)


def replay_epoch(name: str, epoch) -> dict:
    """Code use on the validation images after ``epoch`` (1-based), as training recorded it."""
    m = load(name)
    recs = history_codes(m)
    if not recs:
        return {"epoch_usage": f'<p class="vl-small">{load(name).card.display} has no per-epoch record of its code '
                                f'use (it was trained elsewhere, or before vaelab recorded it).</p>',
                "epoch": gr.update(visible=False)}
    try:
        e = int(epoch or len(recs))
    except (TypeError, ValueError, OverflowError):
        e = len(recs)
    e = min(max(e, 1), len(recs))
    level = recs[e - 1]["codes"][0]
    svg = usage_svg(np.asarray(level["counts"]),
                    f"{name} after epoch {e} of {len(recs)}: {level['used_codes']} codes used, "
                    f"perplexity {level['perplexity']:.1f}", colour="#59a14f")
    return {"epoch_usage": svg, "epoch": gr.update(maximum=max(2, len(recs)), value=e, visible=True)}


# --- the code map editor (in the page: a click selects a cell, Apply asks the server to decode) ------

def _data_url(image: torch.Tensor) -> str:
    return viz.png_data_url(viz.to_display(image))


def editor_value(m: Loaded, level: int, maps: list[np.ndarray], *, sel=None, edited=(), original=None,
                 note: str = "") -> str:
    """The editor's whole state, as the page holds it: every level's map (edited and as encoded),
    the selected and edited cells, each code's use on the test set, and both decodings."""
    c = counts(m, level)
    used = (np.log1p(c) / max(np.log1p(c).max(), 1e-9)).round(2).tolist()
    original = [np.asarray(a) for a in (original if original is not None else maps)]
    return json.dumps({"model": m.card.name, "level": level, "maps": [np.asarray(a).tolist() for a in maps],
                       "original": [a.tolist() for a in original], "sel": sel,
                       "edited": [list(e) for e in edited], "used": used, "counts": c.astype(int).tolist(),
                       "k_max": m.info.codebook_size - 1, "decoded": _data_url(decode_maps(m, maps)),
                       "decoded_original": _data_url(decode_maps(m, original)), "note": note})


def _read(value) -> dict:
    try:
        v = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return v if isinstance(v, dict) else {}


def _test_index(m: Loaded, index) -> int:
    try:
        return int(index or 0) % m.n_test
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"A test image is picked by its number, 0 to {m.n_test - 1}.")


def show_image(name: str, level, index) -> dict:
    """A test image's code map at the chosen level in the editor (nothing edited yet), and the image."""
    m = load(name)
    lv, i = _level(m, level), _test_index(m, index)
    maps = test_maps(m, i)
    x = test_image(m, i)
    return {"cells": editor_value(m, lv, maps),
            "original": viz.placeholder_image("The original is not on this server") if x is None else viz.to_display(x[0])}


def _maps_of(m: Loaded, v: dict, key: str) -> list[np.ndarray]:
    """The editor's maps, checked: one per level, each the model's shape, every code in range."""
    try:
        maps = [np.asarray(a, np.int64) for a in v[key]]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise gr.Error("The code map could not be read: pick the test image again.")
    shapes = [tuple(s) for s in m.info.index_shapes]
    if [a.shape for a in maps] != shapes or any(((a < 0) | (a >= m.info.codebook_size)).any() for a in maps):
        raise gr.Error(f"The code map does not fit {m.card.display}: pick the test image again.")
    return maps


def apply_code(value, code) -> dict:
    """Give the selected cell another code and decode the edited map."""
    v = _read(value)
    if not v.get("model") or not v.get("sel"):
        raise gr.Error("Click a cell of the code map first.")
    try:
        m = load(v["model"])
    except (KeyError, TypeError, ValueError):
        raise gr.Error("That model is not available here: choose one from the list.")
    k_max = m.info.codebook_size - 1
    k = whole_number(code, 0, k_max, f"{m.card.display} has codes 0 to {k_max}: a code is a whole number in that range.")
    lv = v.get("level") if isinstance(v.get("level"), int) and 0 <= v["level"] < m.info.levels else 0
    maps, original = _maps_of(m, v, "maps"), _maps_of(m, v, "original")
    try:
        r, c = (int(t) for t in v["sel"])
    except (TypeError, ValueError):
        raise gr.Error("Click a cell of the code map first.")
    if not (0 <= r < maps[lv].shape[0] and 0 <= c < maps[lv].shape[1]):
        raise gr.Error("That cell is not in the map.")
    maps[lv][r, c] = k
    edited = {tuple(e) for e in v.get("edited", []) if isinstance(e, list) and len(e) == 2} | {(r, c)}
    edited = sorted(e for e in edited if maps[lv][e] != original[lv][e])
    note = f"Cell ({r}, {c}) now holds code **{k}** ({len(edited)} cell(s) differ from the encoder's map)."
    return {"cells": editor_value(m, lv, maps, sel=[r, c], edited=edited, original=original, note=note)}


def edit_cell(request: dict) -> dict:
    """The editor's Apply (a server function the page calls): ``{"value", "code"}`` → the new
    ``{"value"}``, or ``{"error"}`` with what to do."""
    request = request if isinstance(request, dict) else {}
    try:
        return {"value": apply_code(request.get("value"), request.get("code"))["cells"]}
    except gr.Error as error:
        return {"error": str(error.message)}


def sample_prior(name: str, temperature, seed) -> dict:
    """Eight images from the model's prior over code maps at ``temperature``."""
    m = load(name)
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    if not np.isfinite(t) or not 0.05 <= t <= 5:
        raise gr.Error("The temperature must be a number between 0.05 and 5.")
    if not m.info.can_sample:
        return {"samples": viz.placeholder_image(f"{m.card.display} has no prior over its codes", 84, width=8 * 84),
                "samples_note": (f"No samples: {m.card.display} comes with no prior over its code maps, so there is "
                                 "nothing to draw codes from. A vaelab model gets one with `vaelab train-prior`.")}
    try:
        with torch.no_grad():
            ims = m.model.sample(8, generator=torch.Generator().manual_seed(int(seed or 0)), temperature=t)
    except Exception as error:  # no prior trained for this model
        return {"samples": viz.placeholder_image(f"{m.card.display} has no trained prior over its codes", 84, width=8 * 84),
                "samples_note": f"No samples: {error}"}
    if getattr(m.model, "_code_prior", None) is None:
        note = (f"Eight code maps with every code drawn independently from {m.card.display}'s own uniform prior "
                "(no learned prior over its codes yet: τ does not apply).")
    else:
        note = (f"Eight code maps drawn from the learned PixelCNN prior, each logit divided by τ = {t:g} "
                "(τ < 1: the most likely codes; τ > 1: more varied, more broken).")
    return {"samples": viz.strip(list(ims.clamp(0, 1)), 84), "samples_note": note}


def select_model(name: str, level, index, names: list[str]) -> dict:
    """Choosing a model or level: usage, numbers, atlas, projection, the image's code map, replay."""
    m = load(name)
    lv = _level(m, level)
    proj, how = projection(name, lv)
    return {"level": gr.update(choices=level_names(m), value=level_names(m)[lv], visible=m.info.levels > 1),
            "usage": usage_svg(counts(m, lv), f"{name}, {level_names(m)[lv]}: use of each code on the test set"),
            "stats": stats_markdown(m, lv), "atlas": atlas(name, lv), "atlas_note": atlas_note(name, lv),
            "projection": gr.update(value=proj, visible=proj is not None), "projection_note": how,
            "replay": replay_svg(list(names)), **replay_epoch(name, None),
            **show_image(name, level_names(m)[lv], index)}


API = {"codebook_edit": edit_cell}  # the editor's Apply, for API clients (the page calls it directly)


# --- layout and wiring -------------------------------------------------------------------------

def render(cards: list[Card], mine=None):
    models = codebook_models(cards)
    with gr.Tab("Codebook"):
        if not tab_intro(SUMMARY, bool(models), "No model with a codebook is shipped with this app."):
            return None
        names = [c.name for c in models]
        state_names = gr.State(names)
        c = {}
        with gr.Row():
            model = model_picker([(x.short_label, x.name) for x in models], ("vq-vae", "vq-vae-2"), label="Model",
                                 scale=2, elem_id="cb-model")
            if mine is not None:
                follow_trained(mine, model, lambda extra: [(x.short_label, x.name)
                                                           for x in codebook_models(models + extra)])
            c["level"] = gr.Radio(["codes"], value="codes", label="Code level", scale=2, visible=False,
                                  elem_id="cb-level")
            index = gr.Number(0, precision=0, label="test image #", scale=1, minimum=0)
        with gr.Row():
            with gr.Column(scale=3):
                c["usage"] = gr.HTML(elem_id="cb-usage")
                c["stats"] = gr.Markdown()
            with gr.Column(scale=2):
                c["replay"] = gr.HTML(label="codes used per epoch, as training went", show_label=True, container=True)
                c["epoch"] = gr.Slider(1, 2, value=1, step=1, label="replay: code use after epoch …",
                                       elem_id="cb-epoch")
                c["epoch_usage"] = gr.HTML(elem_id="cb-epoch-usage")
        with gr.Accordion("Perplexity and dead codes: the formulas", open=False):
            gr.Markdown(FORMULA, latex_delimiters=LATEX)
        gr.Markdown("**Edit a code map.** Each cell is one code of the test image's map (colour: the code, "
                    "paler = rarer). Click a cell, type a code, Apply (or Enter): the image is decoded again. "
                    "Reset goes back to the encoder's map.")
        with gr.Row():
            with gr.Column(scale=0, min_width=180):
                c["original"] = PixelImage(label="test image", width=150, alt="the test image")
            c["cells"] = gr.HTML(html_template='<div class="cm"></div>', js_on_load=asset("code_editor.js"),
                                 css_template=asset("code_editor.css"), server_functions=[bounded(edit_cell)],
                                 apply_default_css=False, elem_id="cb-cells", scale=4)
        with gr.Row():
            with gr.Column(scale=1):
                c["atlas"] = PixelImage(label=f"atlas: the most used codes that draw something ({ATLAS} at most)",
                                        alt="code atlas")
                c["atlas_note"] = gr.Markdown(elem_classes=["vl-small"])
            with gr.Column(scale=1):
                c["projection"] = PixelImage(label="code vectors and encoder outputs, first two principal components",
                                             alt="projection of codes and encoder outputs", width=320)
                c["projection_note"] = gr.Markdown(elem_classes=["vl-small"])
        with gr.Row():
            temperature = gr.Slider(0.1, 3.0, value=1.0, step=0.05, label="prior temperature τ", scale=2,
                                    elem_id="cb-temperature")
            seed = gr.Number(0, precision=0, label="seed", scale=1)
        c["samples"] = PixelImage(label="samples from the prior over code maps", height=110, alt="prior samples")
        c["samples_note"] = gr.Markdown(elem_classes=["vl-small"])

    inputs = [model, c["level"], index, state_names]
    outputs = [c[k] for k in ("level", "usage", "stats", "atlas", "atlas_note", "projection", "projection_note", "replay",
                              "epoch", "epoch_usage", "cells", "original")]
    model.change(keyed(select_model, c), inputs, outputs, api_name="codebook_model", trigger_mode="always_last")
    c["level"].input(keyed(select_model, c), inputs, outputs, api_name="codebook_level")
    index.submit(keyed(show_image, c), [model, c["level"], index], [c["cells"], c["original"]],
                 api_name="codebook_image")
    c["epoch"].input(keyed(replay_epoch, c), [model, c["epoch"]], [c["epoch_usage"], c["epoch"]],
                     api_name="codebook_epoch", show_progress="hidden", trigger_mode="always_last")
    sample = [c["samples"], c["samples_note"]]
    gr.on([temperature.release, seed.submit], keyed(sample_prior, c), [model, temperature, seed], sample,
          api_name="codebook_sample", trigger_mode="always_last")
    model.change(keyed(sample_prior, c), [model, temperature, seed], sample, api_visibility="private")

    def first(name, level, index, names, temperature, seed):
        return {**select_model(name, level, index, names), **sample_prior(name, temperature, seed)}
    return keyed(first, c), inputs + [temperature, seed], outputs + sample
