"""Latent sliders: what each dimension of a VAE's latent means, and how much information it carries.

One slider per latent dimension (the 32 with most KL), ordered by KL; dimensions the model
stopped using (posterior collapse) are marked inactive and barely change the decoded image.
Beside them: a traversal of one dimension, samples from the prior, the interpolation between two
test images' posterior means, and the ELBO written out with the model's own test-set numbers.
Only models with one flat Gaussian latent (``Card.has_sliders``) are offered.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from vaelab import viz
from vaelab.app.catalogue import Card, choices
from vaelab.app.pixel_image import PixelImage
from vaelab.app.state import Loaded, decode, load
from vaelab.app.widgets import LATEX, default_choice, follow_trained, keyed, model_picker
from vaelab.metrics import ACTIVE_UNIT_THRESHOLD, KL_INACTIVE_NATS

MAX_SLIDERS = 32  # the sliders tab shows the 32 dimensions with most KL
SLIDER_RANGE = 3.0  # sliders span ±3 prior standard deviations
START_TEST, START_PRIOR = "a test image's posterior mean", "the prior mean (all zeros)"
PREFERRED_MODELS = ("vae-16", "digits-vae-8", "vae-2d", "digits-vae-2d")  # the first one shipped is shown


def slider_dims(m: Loaded) -> list[int]:
    """Latent dimensions in the order the sliders show them: most KL first (at most 32)."""
    order = m.metrics.get("posterior", {}).get("dims_by_kl") or list(range(m.card.latent_dim))
    return [int(d) for d in order[:MAX_SLIDERS]]


def dim_is_active(m: Loaded, d: int) -> bool:
    post = m.metrics.get("posterior", {})
    kl = post.get("kl_per_dim", [1.0] * m.card.latent_dim)[d]
    var = post.get("posterior_mean_variance", [1.0] * m.card.latent_dim)[d]
    return kl >= KL_INACTIVE_NATS and var > ACTIVE_UNIT_THRESHOLD


def dim_name(m: Loaded, d: int) -> str:
    """``z7``; for a spatial latent (channels, rows, columns) flattened, where the number sits:
    ``z[2, 1, 7]`` (channel 2, row 1, column 7)."""
    shape = getattr(m.model, "latent_shape", ())
    if len(shape) == 3:
        return "z[" + ", ".join(str(int(i)) for i in np.unravel_index(d, shape)) + "]"
    return f"z{d}"


def dim_label(m: Loaded, d: int) -> str:
    kl = m.metrics.get("posterior", {}).get("kl_per_dim", [float("nan")] * m.card.latent_dim)[d]
    if dim_is_active(m, d):
        return f"{dim_name(m, d)} · KL {kl:.2f} nats"
    return f"{dim_name(m, d)} · inactive (collapsed, KL {kl:.3f})"


def start_latent(m: Loaded, start: str, index: int) -> np.ndarray:
    if start == START_PRIOR or "latent_test" not in m.arrays:
        return np.zeros(m.card.latent_dim, np.float32)
    i = int(np.clip(int(index or 0), 0, m.n_test - 1))
    return m.arrays["latent_test"][i].astype(np.float32).copy()


SLIDER_STEP = 0.05  # a slider moves in these steps; one within half a step of its start was not moved


def latent_from_sliders(m: Loaded, values, start: str = START_PRIOR, index: int = 0) -> np.ndarray:
    """Slider values (in KL order) -> a latent vector, starting from the chosen start (a test
    image's whole posterior mean, or the prior mean): a slider the user has not moved (still at
    its start, which the ±3 range may have clipped) keeps the start's exact value, a moved one
    sets its number, and the numbers without a slider (beyond the 32 shown) keep the start's."""
    base = start_latent(m, start, index)
    z = base.copy()
    for d, v in zip(slider_dims(m), values):
        v = 0.0 if v is None else float(v)
        if not np.isfinite(v):
            raise gr.Error(f"{dim_name(m, d)} is {v}: each latent slider takes a number between "
                           f"{-SLIDER_RANGE:g} and {SLIDER_RANGE:g}.")
        shown = float(np.clip(round(float(base[d]), 2), -SLIDER_RANGE, SLIDER_RANGE))
        if abs(v - shown) > SLIDER_STEP / 2 + 1e-9:
            z[d] = v
    return z


def decode_sliders(name: str, label: int, start: str, index, *values) -> np.ndarray:
    """The image decoded from the current slider values over the chosen start (the handler
    behind every drag)."""
    m = load(name)
    return viz.to_display(decode(m, latent_from_sliders(m, values, start, _start_index(m, index))[None], label)[0])


def _start_index(m: Loaded, index) -> int:
    try:
        return int(np.clip(int(float(index or 0)), 0, m.n_test - 1))
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"The test image is a number from 0 to {m.n_test - 1}.")


SUMMARY = ("**Each slider sets one number of the VAE's latent code; the decoder turns the code into the "
           "image.** The sliders are ordered by how much information each number carries (its KL); "
           "collapsed ones barely change the image.")

FORMULAS = "\n".join([
    "The decoder $p_\\theta(x\\mid z)$ of a VAE turns any point $z$ into an image. Each slider sets one "
    "latent dimension, ordered by how much information it carries (its KL); dimensions the model stopped "
    "using (*posterior collapse*: $q(z_j\\mid x)\\approx p(z_j)$) are marked inactive and barely change the "
    "image. Start from a test image's posterior mean, or from the prior's centre, and drag.",
    "",
    "$$\\log p(x) \\;\\ge\\; \\mathrm{ELBO}(x) = \\mathbb{E}_{q_\\phi(z\\mid x)}\\big[\\log p_\\theta(x\\mid z)\\big] "
    "- \\mathrm{KL}\\big(q_\\phi(z\\mid x)\\,\\|\\,p(z)\\big),\\qquad "
    "\\mathrm{KL} = \\sum_j \\tfrac12\\big(\\mu_j^2+\\sigma_j^2-1-\\log\\sigma_j^2\\big)$$",
    "",
    f"*Active unit*: a dimension whose posterior mean varies across images, "
    f"$\\mathrm{{Cov}}_x(\\mathbb{{E}}_q[z_u]) > {ACTIVE_UNIT_THRESHOLD}$. The importance-weighted bound "
    "averages $k$ samples inside the log and is tighter than the ELBO.",
])


def elbo_markdown(m: Loaded) -> str:
    """The model's own numbers in the ELBO (kept in view above the sliders)."""
    loss, post, lik = m.metrics.get("loss", {}), m.metrics.get("posterior", {}), m.metrics.get("likelihood", {})
    recon, kl, beta = loss.get("recon"), loss.get("kl"), loss.get("beta", 1.0)
    lines = []
    if isinstance(recon, (int, float)) and isinstance(kl, (int, float)):
        lines.append(f"**{m.card.display}, test set** (in nats per image — information measured with natural "
                     "logarithms; 1 nat ≈ 1.44 bits): "
                     f"$-\\mathrm{{ELBO}} = \\underbrace{{{recon:.2f}}}_{{\\text{{reconstruction}}}} + "
                     f"\\underbrace{{{kl:.2f}}}_{{\\mathrm{{KL}}}} = {recon + kl:.2f}$.")
        if beta != 1.0:
            lines.append(f"It was trained on $\\text{{recon}} + \\beta\\,\\mathrm{{KL}}$ with $\\beta = {beta:g}$.")
    au, dims = post.get("active_units"), post.get("latent_dims", m.card.latent_dim)
    facts = []
    if au is not None:
        facts.append(f"active units {au} of {dims}")
    if isinstance(lik.get("iwae_nll"), (int, float)):
        facts.append(f"importance-weighted bound ($k={lik.get('iw_samples')}$) $-\\log p(x) \\le {lik['iwae_nll']:.2f}$")
    if facts:
        lines.append("Also: " + "; ".join(facts) + ".")
    return " ".join(lines)


def setup_sliders(name: str, start: str, index: int, label: int) -> dict:
    """Choosing a model or a starting point, by output name: the ``explanation``, the ``decoded``
    image, the traversal's ``dim`` choices, the ``label`` and ``start_index`` controls, the three
    strips (``traversal``, ``samples``, ``interpolation`` to the next test image), and updates for
    ``row_0``…``row_7`` and ``z_0``…``z_31`` (the sliders, most KL first)."""
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
    values = [float(np.clip(round(float(z[d]), 2), -SLIDER_RANGE, SLIDER_RANGE)) for d in dims]
    image = decode_sliders(name, label, start, i, *values)
    dim_choices = [(dim_label(m, d), d) for d in dims]
    where = "the test image's values" if start == START_TEST and "latent_test" in m.arrays else "0, the prior mean"
    extra = (f" The first {MAX_SLIDERS} of {m.card.latent_dim} numbers by KL have sliders; the other "
             f"{m.card.latent_dim - MAX_SLIDERS} keep {where}." if m.card.latent_dim > MAX_SLIDERS else "")
    clipped = sum(abs(float(z[d])) > SLIDER_RANGE for d in dims)
    if clipped:
        extra += (f" {clipped} of the starting values lie beyond ±{SLIDER_RANGE:g}: their sliders sit at the end of "
                  "the range, and the image uses the true values until you move them.")
    return {"explanation": elbo_markdown(m) + extra, "decoded": image,
            "dim": gr.update(choices=dim_choices, value=dims[0]),
            "label": gr.update(visible=m.info.conditional, value=label),
            "start_index": gr.update(maximum=m.n_test - 1, value=i),
            "traversal": traverse(name, label, dims[0], start, i, *values), "samples": sample_prior(name, label, 0),
            "interpolation": interpolate(name, i, (i + 1) % m.n_test, label),
            **{f"row_{r}": u for r, u in enumerate(rows)}, **{f"z_{j}": u for j, u in enumerate(updates)}}


def traverse(name: str, label: int, dim: int, start: str, index, *values, steps: int = 9) -> np.ndarray:
    """One dimension swept over −3…3 with the others as the sliders and the start set them: a
    strip of images."""
    m = load(name)
    z = latent_from_sliders(m, values, start, _start_index(m, index))
    d = int(dim if dim is not None else slider_dims(m)[0])
    if not 0 <= d < m.card.latent_dim:
        raise gr.Error(f"{m.card.display} has latent dimensions 0 to {m.card.latent_dim - 1}; there is no dimension {d}.")
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
        raise gr.Error(f"{name} has no cached test latents to interpolate between")
    ia, ib = (int(np.clip(int(v or 0), 0, m.n_test - 1)) for v in (a, b))
    za, zb = m.arrays["latent_test"][ia], m.arrays["latent_test"][ib]
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    return viz.strip(decode(m, (1 - t) * za + t * zb, label))


# --- layout and wiring -------------------------------------------------------------------------

def model_choices(cards: list[Card]) -> list[tuple[str, str]]:
    """Only checkpoints with one flat Gaussian latent have sliders."""
    return choices([c for c in cards if c.has_sliders])


def default_model(cards: list[Card]) -> str | None:
    return default_choice(model_choices(cards), PREFERRED_MODELS)


def render(cards: list[Card], mine=None):
    """The tab and its events (``mine``: the session's trained models, joining the picker).
    Returns the page load's ``(inputs, outputs)`` for :func:`setup_sliders`, or ``None`` when no
    checkpoint has sliders."""
    with gr.Tab("Latent sliders"):
        gr.Markdown(SUMMARY)
        with gr.Row():
            model = model_picker(model_choices(cards), PREFERRED_MODELS, label="VAE model", scale=3)
            if mine is not None:
                follow_trained(mine, model, lambda extra: model_choices(cards + extra))
            start = gr.Radio([START_TEST, START_PRIOR], value=START_TEST, label="Start from", scale=2)
            start_index = gr.Slider(0, 100, value=0, step=1, label="test image", scale=1)
            label = gr.Slider(0, 9, value=0, step=1, label="digit to condition on", visible=False, scale=1)
        elbo_md = gr.Markdown(latex_delimiters=LATEX, elem_classes=["vl-small"])
        with gr.Accordion("The ELBO, and what the numbers mean", open=False):
            gr.Markdown(FORMULAS, latex_delimiters=LATEX)
        with gr.Row():
            decoded = PixelImage(label="decoded image", scale=1, elem_id="decoded", width=230, alt="the decoded image")
            with gr.Column(scale=3):
                sliders, slider_rows = [], []
                for row in range(MAX_SLIDERS // 4):
                    with gr.Row(visible=False) as slider_row:
                        slider_rows.append(slider_row)
                        sliders += [gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=0.05,
                                              label=f"z{4 * row + k}", visible=False, min_width=160,
                                              elem_id=f"z-slider-{4 * row + k}")
                                    for k in range(4)]
        with gr.Row():
            # custom values allowed: an API client that has not loaded the page yet has no choices
            dim = gr.Dropdown(label="Traverse one dimension from −3 to 3 (the others stay as set)", scale=3,
                              allow_custom_value=True)
            traverse_btn = gr.Button("Traverse", scale=1)
        traversal = PixelImage(label="traversal", height=130, alt="a traversal of one latent dimension")
        with gr.Row():
            seed = gr.Number(0, precision=0, label="seed", scale=1)
            sample_btn = gr.Button("Sample z ~ N(0, I)", scale=2)
        samples = PixelImage(label="samples from the prior", height=130, alt="samples from the prior")
        with gr.Row():
            interp_a = gr.Number(0, precision=0, label="from test image", scale=1)
            interp_b = gr.Number(1, precision=0, label="to test image", scale=1)
            interp_btn = gr.Button("Interpolate between their posterior means", scale=2)
        interpolation = PixelImage(label="interpolation", height=130, alt="an interpolation between two test images")

    setup_inputs = [model, start, start_index, label]
    c = {"explanation": elbo_md, "decoded": decoded, "dim": dim, "label": label, "start_index": start_index,
         "traversal": traversal, "samples": samples, "interpolation": interpolation,
         **{f"row_{r}": row for r, row in enumerate(slider_rows)}, **{f"z_{j}": s for j, s in enumerate(sliders)}}
    setup = keyed(setup_sliders, c)
    for trigger, name in ((model.input, "sliders_model"), (start.input, "sliders_start"),
                          (start_index.release, "sliders_start_image")):
        trigger(setup, setup_inputs, list(c.values()), api_name=name)
    gr.on([s.input for s in sliders] + [label.input], decode_sliders, [model, label, start, start_index, *sliders],
          decoded, api_name="decode", show_progress="hidden", trigger_mode="always_last",
          concurrency_limit=4, concurrency_id="decode")
    traverse_btn.click(traverse, [model, label, dim, start, start_index, *sliders], traversal, api_name="traverse",
                       concurrency_id="decode")
    dim.input(traverse, [model, label, dim, start, start_index, *sliders], traversal, api_name="traverse_dim",
              concurrency_id="decode")
    sample_btn.click(sample_prior, [model, label, seed], samples, api_name="sample",
                     concurrency_id="decode")
    interp_btn.click(interpolate, [model, interp_a, interp_b, label], interpolation,
                     api_name="interpolate", concurrency_id="decode")
    return (setup, setup_inputs, list(c.values())) if default_model(cards) else None
