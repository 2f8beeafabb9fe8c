"""β comparison: the same VAE trained with the KL weighted by β, side by side.

For the shipped β series (models that differ only in β, found from their configs): the rate–
distortion plane (each model's KL against its reconstruction term, with the ELBO's iso-lines),
the same test digits rebuilt by each, samples from each prior, each latent's 2-D map on shared
axes, the KL each latent dimension carries (where collapse begins), and a traversal of each
model's k-th most informative dimension, synchronised across models. Everything comes from the
checkpoints' metrics and cached latents; the originals need the dataset.
"""

from __future__ import annotations

import functools
import html

import gradio as gr
import numpy as np
import torch

from vaelab import viz
from vaelab.app.catalogue import Card, beta_series
from vaelab.app.pixel_image import CSS as PIXEL_CSS
from vaelab.app.pixel_image import PixelImage
from vaelab.app.state import Loaded, decode, load, reconstruct_test, test_image
from vaelab.app.widgets import LATEX, keyed, tab_intro
from vaelab.metrics import KL_INACTIVE_NATS
from vaelab.viz import png_data_url

N_INPUTS, N_SAMPLES, STEPS = 8, 8, 9
RANKS = ["1st", "2nd", "3rd", "4th"]
SUMMARY = ("**One VAE, trained with the KL term weighted by β.** Small β rebuilds digits sharply but "
           "leaves the latent ragged; large β pulls every code towards the prior — smoother, blurrier, "
           "and past some β whole dimensions switch off (posterior collapse).")
FORMULA = ("$$\\mathcal L_\\beta(x) = \\underbrace{\\mathbb E_{q_\\phi(z\\mid x)}\\big[-\\log p_\\theta(x\\mid z)\\big]}"
           "_{\\text{distortion } D} + \\beta\\,\\underbrace{\\mathrm{KL}\\big(q_\\phi(z\\mid x)\\,\\|\\,p(z)\\big)}"
           "_{\\text{rate } R},\\qquad -\\mathrm{ELBO} = D + R \\;(\\beta = 1)$$")


def series_names(cards: list[Card]) -> list[str]:
    return [c.name for c in beta_series(cards)]


def _loss(m: Loaded) -> tuple[float, float]:
    loss = m.metrics.get("loss", {})
    return float(loss.get("recon", np.nan)), float(loss.get("kl", np.nan))


def beta_label(m: Loaded) -> str:
    return f"β = {m.card.beta:g}"


# --- the rate-distortion plane (SVG: five points redraw instantly) -------------------------------

def rd_svg(names: list[str], selected: str, width: int = 460, height: int = 340) -> str:
    """KL (rate) against the reconstruction term (distortion), one point per β, the selected one
    ringed; dashed lines are the ELBO's iso-lines ``D + R = const``."""
    models = [load(n) for n in names]
    pts = [(_loss(m)[1], _loss(m)[0]) for m in models]  # (rate, distortion)
    rs, ds = [p[0] for p in pts], [p[1] for p in pts]
    r0, r1 = 0.0, max(rs) * 1.15
    d0, d1 = min(ds) - 0.08 * (max(ds) - min(ds) + 1), max(ds) + 0.08 * (max(ds) - min(ds) + 1)
    L, R, T, B = 56, 14, 14, 44
    sx = lambda r: L + (r - r0) / (r1 - r0) * (width - L - R)  # noqa: E731
    sy = lambda d: T + (d1 - d) / (d1 - d0) * (height - T - B)  # noqa: E731
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="rate against distortion, one point per beta" style="max-width:{width}px">',
             f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" fill="none" stroke="#9aa0a6"/>']
    # iso-ELBO lines through each model's own -ELBO
    for m, (r, d) in zip(models, pts):
        total = r + d  # D + R = const: from (r0, total - r0) to (r1, total - r1)
        x_a, y_a, x_b, y_b = sx(r0), sy(total - r0), sx(r1), sy(total - r1)
        parts.append(f'<line x1="{x_a:.1f}" y1="{y_a:.1f}" x2="{x_b:.1f}" y2="{y_b:.1f}" stroke="#c4c7cc" '
                     f'stroke-dasharray="4 3" clip-path="inset(0)"/>')
    for t in np.linspace(r0, r1, 5):
        parts.append(f'<text x="{sx(t):.1f}" y="{height - B + 16}" font-size="11" text-anchor="middle" '
                     f'fill="#5f6368">{t:.0f}</text>')
    for t in np.linspace(d0, d1, 5):
        parts.append(f'<text x="{L - 6}" y="{sy(t) + 4:.1f}" font-size="11" text-anchor="end" fill="#5f6368">{t:.0f}</text>')
    parts.append(f'<text x="{(L + width - R) / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
                 'rate: KL(q(z|x) ‖ p(z)), nats</text>')
    parts.append(f'<text transform="translate(14 {(T + height - B) / 2}) rotate(-90)" font-size="12" '
                 'text-anchor="middle">distortion: −log p(x|z), nats</text>')
    parts.append(f'<polyline fill="none" stroke="#4e79a7" stroke-width="1.5" points="'
                 + " ".join(f"{sx(r):.1f},{sy(d):.1f}" for r, d in pts) + '"/>')
    for m, (r, d) in zip(models, pts):
        chosen = m.card.name == selected
        parts.append(f'<circle cx="{sx(r):.1f}" cy="{sy(d):.1f}" r="{8 if chosen else 5}" '
                     f'fill="{"#f28e2b" if chosen else "#4e79a7"}" stroke="#202124" stroke-width="{2 if chosen else 1}"/>')
        parts.append(f'<text x="{sx(r) + 10:.1f}" y="{sy(d) - 8:.1f}" font-size="12" '
                     f'font-weight="{700 if chosen else 400}">β={m.card.beta:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def elbo_table(names: list[str], selected: str) -> str:
    """Each model's own numbers in the objective: D, R, β·R, the objective and −ELBO."""
    rows = ["| β | distortion D | rate R (KL) | β·R | D + β·R (trained on) | −ELBO = D + R | active units |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in names:
        m = load(n)
        d, r = _loss(m)
        b = m.card.beta
        au = m.metrics.get("posterior", {}).get("active_units", "–")
        mark = "**" if n == selected else ""
        rows.append(f"| {mark}{b:g}{mark} | {d:.2f} | {r:.2f} | {b * r:.2f} | {d + b * r:.2f} | {d + r:.2f} | "
                    f"{au} of {m.card.latent_dim} |")
    return "\n".join(rows)


def kl_heatmap(names: list[str], selected: str) -> str:
    """An HTML table: one row per β, its latent dimensions sorted by KL, each cell its KL in nats
    (shaded; a dimension under the inactive threshold is struck through)."""
    kls = [sorted(load(n).metrics.get("posterior", {}).get("kl_per_dim", []), reverse=True) for n in names]
    top = max((max(k) for k in kls if k), default=1.0)
    out = ['<table class="vl-kl"><tr><th>β</th>'
           + "".join(f"<th>{j + 1}</th>" for j in range(max(len(k) for k in kls))) + "</tr>"]
    for n, k in zip(names, kls):
        m = load(n)
        style = ' class="vl-sel"' if n == selected else ""
        cells = []
        for v in k:
            alpha = min(1.0, v / top) if top > 0 else 0
            dead = v < KL_INACTIVE_NATS
            cells.append(f'<td style="background: rgba(78,121,167,{alpha:.2f}); color: {"#fff" if alpha > 0.55 else "#202124"}"'
                         f'{" title=inactive" if dead else ""}>{"<s>" if dead else ""}{v:.2f}{"</s>" if dead else ""}</td>')
        out.append(f"<tr{style}><th>{m.card.beta:g}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


KL_CSS = """
.vl-kl { border-collapse: collapse; font-size: 12px; }
.vl-kl th, .vl-kl td { border: 1px solid #d0d3d8; padding: 3px 6px; text-align: right; }
.vl-kl tr.vl-sel th, .vl-kl tr.vl-sel td { outline: 2px solid #f28e2b; outline-offset: -2px; }
"""


# --- image grids (cached: they do not depend on the selected β) --------------------------------

def _mark_row(grid: np.ndarray, row: int, rows: int, cell: int) -> np.ndarray:
    """An orange frame (as bright grey in this grey image: a white border) around ``row``."""
    g = grid.copy()
    h = g.shape[0] // rows
    y0, y1 = row * h, min(g.shape[0], (row + 1) * h) - 1
    g[y0:y0 + 2, :] = 255
    g[y1 - 1:y1 + 1, :] = 255
    g[y0:y1, :2] = 255
    g[y0:y1, -2:] = 255
    return g


@functools.lru_cache(maxsize=8)
def reconstructions(names: tuple[str, ...], start: int) -> tuple[np.ndarray, str]:
    """The same ``N_INPUTS`` test images rebuilt by each model (one row per β; originals on top
    when the dataset is here)."""
    first = load(names[0])
    idx = [(start + k) % first.n_test for k in range(N_INPUTS)]
    rows, note = [], ""
    originals = [test_image(first, i) for i in idx]
    if all(x is not None for x in originals):
        rows.append([x[0] for x in originals])
    else:
        note = "Originals are not shown: the test images are not on this server; each row decodes its cached codes."
    for n in names:
        m = load(n)
        rows.append([reconstruct_test(m, i)[0][0] for i in idx])
    grid = viz.grid_image([im for row in rows for im in row], cols=N_INPUTS, pixels=2 * (N_INPUTS * 29 + 1), pad=1)
    return grid, note


@functools.lru_cache(maxsize=8)
def samples(names: tuple[str, ...], seed: int) -> np.ndarray:
    """``N_SAMPLES`` draws from each model's prior, the same z ~ N(0, I) for every β."""
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(N_SAMPLES, load(names[0]).card.latent_dim, generator=g)
    ims = [im for n in names for im in decode(load(n), z)]
    return viz.grid_image(ims, cols=N_SAMPLES, pixels=2 * (N_SAMPLES * 29 + 1), pad=1)


@functools.lru_cache(maxsize=16)
def traversals(names: tuple[str, ...], rank: int, start: int) -> np.ndarray:
    """For each β: its ``rank``-th most informative dimension swept over −3…3, the others at a
    test image's posterior mean (the same image for every β)."""
    ims = []
    for n in names:
        m = load(n)
        order = m.metrics.get("posterior", {}).get("dims_by_kl") or list(range(m.card.latent_dim))
        d = int(order[min(rank, len(order) - 1)])
        z0 = m.arrays["latent_test"][start % m.n_test].astype(np.float32)
        zs = np.repeat(z0[None], STEPS, 0)
        zs[:, d] = np.linspace(-3, 3, STEPS)
        ims += list(decode(m, zs))
    return viz.grid_image(ims, cols=STEPS, pixels=2 * (STEPS * 29 + 1), pad=1)


@functools.lru_cache(maxsize=8)
def latent_maps(names: tuple[str, ...], size: int = 200) -> np.ndarray:
    """Each model's 2-D map of the test codes (PCA of its latent, as evaluation cached it) on
    shared axes, side by side, coloured by digit."""
    coords = [load(n).arrays["coords_model"] for n in names]
    labels = load(names[0]).labels
    allc = np.concatenate(coords)
    lo, hi = np.percentile(allc, 1, axis=0), np.percentile(allc, 99, axis=0)
    span = (hi - lo).max() * 1.1
    centre = (lo + hi) / 2
    from PIL import Image, ImageDraw

    panels = []
    for n, c in zip(names, coords):
        im = Image.fromarray(viz.scatter_image(c, labels, centre - span / 2, centre + span / 2, size))
        ImageDraw.Draw(im).text((6, 4), f"β = {load(n).card.beta:g}", fill=(32, 33, 36),
                                font=viz.font(14))
        panels.append(np.asarray(im))
    gap = np.full((size, 6, 3), 255, np.uint8)
    out = []
    for p in panels:
        out += [p, gap]
    return np.concatenate(out[:-1], axis=1)


# --- handlers ----------------------------------------------------------------------------------

def _rank(rank) -> int:
    return RANKS.index(rank) if rank in RANKS else 0


def _start(names, start) -> int:
    try:
        return int(start or 0) % load(names[0]).n_test
    except (TypeError, ValueError, OverflowError):
        raise gr.Error("The first test image is picked by its number.")


def _series(names) -> tuple[str, ...]:
    names = tuple(names or ())
    if len(names) < 3:
        raise gr.Error("No β series is shipped with this app (three or more models that differ only in β).")
    return names


def _views(names, html_of) -> str:
    """One block per β (``data-beta`` = its model); the page shows the chosen one (:data:`SWITCH_JS`)."""
    return "".join(f'<div data-beta="{html.escape(n)}">{html_of(n)}</div>' for n in names)


def rd_views(names: list[str]) -> str:
    """The rate–distortion plane once per β, that β's point ringed: choosing β is instant."""
    return _views(names, lambda n: rd_svg(list(names), n))


def traversal_views(names: tuple[str, ...], rank, start) -> str:
    """The traversal grid once per β, that β's row framed (the grid itself is cached)."""
    grid = traversals(names, _rank(rank), start)
    return _views(names, lambda n: f'<img class="vl-px" src="{png_data_url(_mark_row(grid, names.index(n), len(names), STEPS))}" '
                                   f'alt="traversals, one row per β, β = {load(n).card.beta:g} framed">')


def select_beta(names: list[str], selected: str, rank, start) -> dict:
    """Choosing β, the part the server writes: the model's numbers in the objective, the table
    and the KL rows with its row marked. (The plane's ringed point and the traversal's framed row
    switch in the page at once: :func:`rd_views`, :func:`traversal_views`.)"""
    names = _series(names)
    selected = selected if selected in names else names[len(names) // 2]
    m = load(selected)
    d, r = _loss(m)
    return {"table": elbo_table(list(names), selected), "kl": kl_heatmap(list(names), selected),
            "numbers": (f"**{beta_label(m)}** ({selected}): distortion D = {d:.2f}, rate R = {r:.2f} nats; "
                        f"trained on D + {m.card.beta:g}·R = {d + m.card.beta * r:.2f}; "
                        f"−ELBO = D + R = {d + r:.2f}.")}


def change_rank(names: list[str], rank, start) -> dict:
    """Another dimension to traverse: every β's traversal again."""
    names = _series(names)
    return {"traversal": traversal_views(names, rank, _start(names, start))}


def show_series(names: list[str], selected: str, rank, start, seed) -> dict:
    """Everything: the planes and traversals for every β, the numbers for the chosen one, the
    rebuilds, the prior samples and the maps."""
    names = _series(names)
    start = _start(names, start)
    grid, note = reconstructions(names, start)
    return {**select_beta(list(names), selected, rank, start), "rd": rd_views(names),
            "traversal": traversal_views(names, rank, start), "recons": grid, "recons_note": note,
            "samples": samples(names, int(seed or 0)), "maps": latent_maps(names)}


# The chosen β's block is shown in the plane and the traversal; the rest hidden. Each component
# runs this once; it follows the radio (a change event bubbling from #beta-choice) and re-applies
# itself when the server sends new blocks (another traversal rank, another first image).
SWITCH_JS = """
const root = element.closest('[id^=beta-]') || element;  // the block outlives the HTML the server replaces
const apply = () => {
  const on = document.querySelector('#beta-choice input:checked');
  const blocks = root.querySelectorAll('[data-beta]');
  if (!blocks.length) return;
  const value = on ? on.value : null;
  const known = [...blocks].some(b => b.dataset.beta === value);
  blocks.forEach((b, i) => {
    const hide = known ? b.dataset.beta !== value : i !== Math.floor(blocks.length / 2);
    if (b.hidden !== hide) b.hidden = hide;
  });
};
document.addEventListener('change', e => { if (e.target.closest && e.target.closest('#beta-choice')) apply(); });
new MutationObserver(muts => { if (muts.some(m => m.type === 'childList')) apply(); })
  .observe(root, {childList: true, subtree: true});
apply();
"""


# --- layout and wiring -------------------------------------------------------------------------

def render(cards: list[Card]):
    """The tab. Returns the page load's ``(fn, inputs, outputs)``, or ``None`` without a series."""
    names = series_names(cards)
    with gr.Tab("β comparison"):
        if not tab_intro(SUMMARY, bool(names), "No β series is shipped with this app: it needs three or more models "
                         "that differ only in β (train them with `python -m vaelab zoo --only beta-vae-1 beta-vae-4 …`)."):
            return None
        state_names = gr.State(names)
        with gr.Row():
            selected = gr.Radio([(f"β = {load(n).card.beta:g}", n) for n in names], value=names[len(names) // 2],
                                label="Highlight one β", scale=3, elem_id="beta-choice")
            rank = gr.Radio(RANKS[:3], value=RANKS[0], label="Traverse each model's … most informative dimension",
                            scale=2, elem_id="beta-rank")
            start = gr.Number(0, precision=0, label="first test image", scale=1, minimum=0)
        c = {}
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                c["rd"] = gr.HTML(label="rate against distortion", elem_id="beta-rd", js_on_load=SWITCH_JS)
            with gr.Column(scale=1, min_width=300):
                c["numbers"] = gr.Markdown()
                c["traversal"] = gr.HTML(label="traversal of each β's chosen dimension, −3 … 3 (rows: β ascending; "
                                               "the highlighted β framed)", show_label=True, container=True,
                                         elem_id="beta-traversal", js_on_load=SWITCH_JS, css_template=PIXEL_CSS)
        with gr.Accordion("The objective with β, and each model's own numbers", open=False):
            gr.Markdown(FORMULA, latex_delimiters=LATEX)
            c["table"] = gr.Markdown(latex_delimiters=LATEX)
        c["recons"] = PixelImage(label="the same test digits rebuilt by each β (top row: originals; then β ascending)",
                                 alt="reconstructions, one row per β", elem_id="beta-recons")
        c["recons_note"] = gr.Markdown(elem_classes=["vl-small"])
        c["samples"] = PixelImage(label="samples from each prior, the same z for every β (rows: β ascending)",
                                  alt="prior samples, one row per β")
        c["maps"] = PixelImage(label="each latent's 2-D map (PCA of the codes), shared axes, β ascending left to right",
                               alt="latent maps, one per β")
        c["kl"] = gr.HTML(label="KL per latent dimension, most informative first (struck through: inactive)",
                          show_label=True, container=True, css_template=KL_CSS, elem_id="beta-kl")
        seed = gr.Number(0, precision=0, visible=False)

    inputs = [state_names, selected, rank, start]
    selected.change(keyed(select_beta, c), inputs, [c["table"], c["kl"], c["numbers"]], api_name="beta_select",
                    show_progress="hidden", trigger_mode="always_last")
    rank.change(keyed(change_rank, c), [state_names, rank, start], c["traversal"], api_name="beta_rank",
                show_progress="hidden", trigger_mode="always_last")
    start.submit(keyed(show_series, c), inputs + [seed], list(c.values()), api_name="beta_start")
    return keyed(show_series, c), inputs + [seed], list(c.values())
