"""Gumbel temperature: how the Gumbel-softmax turns a soft distribution into a hard choice.

For the models whose codes are drawn with the Gumbel-softmax (the grid dVAE, the 20×10
categorical VAE): a temperature τ on a log scale; for a chosen test image, each position's soft
sample ``softmax((log π + g)/τ)`` as a heatmap with its entropy, the image decoded from the soft
codes beside the straight-through hard ones, several samples at τ, the reconstruction error
against τ with the current τ marked, the training schedule of τ with where the shipped model
ended, and the gap between the relaxed objective and the exact discrete one as τ varies — the
bias the relaxation buys a model trained on soft samples (a straight-through model minimises the
exact one; its bias is in the gradient). Images are the ones the model trained on (binarized
for a model trained on binarized digits). The Gumbel noise ``g`` is fixed by a seed, so moving τ alone changes
the picture.
"""

from __future__ import annotations

import functools
import json
import math

import gradio as gr
import numpy as np
import torch

from vaelab import viz
from vaelab.app.catalogue import Card
from vaelab.app.charts import line_chart
from vaelab.app.pixel_image import CSS as PIXEL_CSS
from vaelab.app.serving import bounded
from vaelab.app.state import Loaded, load, reconstruct_test, test_image
from vaelab.app.widgets import LATEX, asset, follow_trained, keyed, model_picker, tab_intro, whole_number
from vaelab.folders import read_json
from vaelab.nn.gumbel import categorical_kl_uniform, gumbel_noise, one_hot

TAU_MIN, TAU_MAX = 0.05, 10.0
CURVE_TAUS = np.geomspace(TAU_MIN, TAU_MAX, 17)
NOISE_DRAWS = 16
SUMMARY = ("**A discrete code cannot be differentiated through, so training draws a *soft* one: "
           "softmax((log π + g)/τ).** Low τ makes it almost one-hot (a hard choice), high τ spreads it "
           "out. Move τ and watch the choice harden.")


def gumbel_models(cards: list[Card]) -> list[Card]:
    """Checkpoints whose codes are drawn with the Gumbel-softmax (they expose their posterior's
    logits and a temperature schedule)."""
    out = []
    for c in cards:
        if c.size.startswith("discrete"):
            model = load(c.name).model
            if callable(getattr(model, "posterior_logits", None)) and callable(getattr(model, "temperature", None)):
                out.append(c)
    return out


def tau_of(log_tau) -> float:
    """The slider moves log10 τ; τ itself, clipped to the range shown."""
    try:
        v = float(log_tau)
    except (TypeError, ValueError):
        v = float("nan")
    if not math.isfinite(v):
        raise gr.Error(f"τ is set on a log scale between {TAU_MIN:g} and {TAU_MAX:g}.")
    return float(np.clip(10 ** v, TAU_MIN, TAU_MAX))


def trained_binarized(m: Loaded) -> bool:
    """Whether the model trained (and evaluation scored it) on binarized images."""
    h = read_json(m.card.folder, "history.json", {}) or {}
    return isinstance(h, dict) and (h.get("settings") or {}).get("binarize") == "dynamic"


@functools.lru_cache(maxsize=4)
def _binarized_test_set(dataset_name: str) -> torch.Tensor | None:
    """The test images binarized exactly as evaluation scores a binarized model (each pixel
    drawn black or white by its grey level, from a generator seeded as ``EvalSettings.seed``)."""
    from vaelab.app.state import dataset
    from vaelab.evaluate import EvalSettings

    data = dataset(dataset_name)
    if data is None:
        return None
    return torch.bernoulli(data.test_x, generator=torch.Generator().manual_seed(EvalSettings().seed))


def input_image(m: Loaded, index) -> tuple[torch.Tensor, str]:
    """Test image ``index`` as the model was trained and scored on it (binarized for a model
    trained on binarized images), or (without the dataset) the model's decoding of its cached
    codes."""
    try:
        i = int(index or 0) % m.n_test
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"A test image is picked by its number, 0 to {m.n_test - 1}.")
    x = test_image(m, i)
    if x is not None and trained_binarized(m):
        j = int(m.arrays["test_index"][i])
        return (_binarized_test_set(m.card.dataset)[j:j + 1],
                f"test image #{i}, binarized as in the model's training and evaluation")
    if x is not None:
        return x, f"test image #{i}"
    rec, how = reconstruct_test(m, i)
    if rec is None:
        raise gr.Error(f"Test image #{i} is not on this server and {m.card.display} cached no codes for it.")
    return rec, f"test image #{i} as the model rebuilds it from its cached codes (the originals are not on this server)"


@torch.no_grad()
def logits_and_noise(m: Loaded, x: torch.Tensor, seed: int, draws: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior's logits for ``x`` and ``draws`` fixed Gumbel noise tensors of their shape."""
    logits = m.model.posterior_logits(x)
    g = gumbel_noise((draws, *logits.shape[1:]), torch.Generator().manual_seed(int(seed)))
    return logits, g


def soft_codes(m: Loaded, logits: torch.Tensor, g: torch.Tensor, tau: float) -> torch.Tensor:
    """``softmax((logits + g)/τ)`` along the category dimension: (draws, *logits.shape[1:])."""
    return torch.softmax((logits + g) / tau, dim=m.model.quantizer.dim)


def hard_codes(m: Loaded, y: torch.Tensor) -> torch.Tensor:
    q = m.model.quantizer
    return one_hot(y.argmax(q.dim), q.codebook_size, q.dim, y.dtype)


@torch.no_grad()
def decode_codes(m: Loaded, codes: torch.Tensor) -> torch.Tensor:
    return m.model.decode(m.model.quantizer.codes_to_z(codes)).clamp(0, 1)


def positions_by_category(m: Loaded, y: torch.Tensor) -> np.ndarray:
    """One draw's codes as a (positions, K) matrix."""
    return y.movedim(m.model.quantizer.dim, -1).reshape(-1, m.model.quantizer.codebook_size).numpy()


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of ``p`` (0 · log 0 = 0)."""
    p = np.asarray(p, np.float64)
    return -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1)


def heatmap(p: np.ndarray, cell: int = 6) -> np.ndarray:
    """Rows: positions; columns: categories; dark blue = probability 1, white = 0."""
    v = np.clip(p, 0, 1)[..., None]
    white, blue = np.array([255, 255, 255.0]), np.array([31, 60, 120.0])
    rgb = (white * (1 - v) + blue * v).astype(np.uint8)
    return np.kron(rgb, np.ones((cell, cell, 1), np.uint8))


@functools.lru_cache(maxsize=32)
def curves(name: str, index: int, seed: int) -> dict:
    """Over ``CURVE_TAUS``, averaged over ``NOISE_DRAWS`` Gumbel draws: the squared error of the
    soft and the hard decoding, and the relaxed and exact objectives (recon NLL of the soft
    sample, or of the exact Gumbel-max sample, plus KL(q ‖ uniform))."""
    m = load(name)
    x, _ = input_image(m, index)
    logits, g = logits_and_noise(m, x, seed, NOISE_DRAWS)
    kl = float(categorical_kl_uniform(logits, m.model.quantizer.dim).sum())
    hard = hard_codes(m, logits + g)  # Gumbel-max: an exact categorical sample per draw
    with torch.no_grad():
        exact = m.model.recon_nll(m.model.decode_params(m.model.quantizer.codes_to_z(hard)),
                                  x.expand(NOISE_DRAWS, *x.shape[1:]))
    out = {"tau": CURVE_TAUS.tolist(), "soft_mse": [], "hard_mse": [], "relaxed": [],
           "exact": float(exact.mean()) + kl, "kl": kl}
    for tau in CURVE_TAUS:
        y = soft_codes(m, logits, g, float(tau))
        with torch.no_grad():
            params = m.model.decode_params(m.model.quantizer.codes_to_z(y))
            relaxed = m.model.recon_nll(params, x.expand(NOISE_DRAWS, *x.shape[1:]))
        out["soft_mse"].append(float(((decode_codes(m, y) - x) ** 2).mean()))
        out["hard_mse"].append(float(((decode_codes(m, hard_codes(m, y)) - x) ** 2).mean()))
        out["relaxed"].append(float(relaxed.mean()) + kl)
    return out


@functools.lru_cache(maxsize=64)
def relaxed_at(name: str, index: int, seed: int, tau: float) -> float:
    """The relaxed objective at exactly ``tau`` (the curve's points are at fixed τ), averaged over
    the same ``NOISE_DRAWS`` Gumbel draws as :func:`curves`."""
    m = load(name)
    x, _ = input_image(m, index)
    logits, g = logits_and_noise(m, x, seed, NOISE_DRAWS)
    kl = float(categorical_kl_uniform(logits, m.model.quantizer.dim).sum())
    with torch.no_grad():
        params = m.model.decode_params(m.model.quantizer.codes_to_z(soft_codes(m, logits, g, tau)))
        return float(m.model.recon_nll(params, x.expand(NOISE_DRAWS, *x.shape[1:])).mean()) + kl


def straight_through(m: Loaded) -> bool:
    """The model trained straight-through: its forward pass always used the hard one-hot sample."""
    return bool(getattr(m.model.quantizer, "hard", False))


def gap_note(m: Loaded, c: dict, tau: float, relaxed: float) -> str:
    """What the gap between the relaxed and the exact objective means for this model."""
    gap = (f"At τ = {tau:.3g} the relaxed objective is {relaxed:.2f} nats against the exact {c['exact']:.2f}: a gap "
           f"of {relaxed - c['exact']:+.2f} nats (averaged over {NOISE_DRAWS} Gumbel draws; KL to the uniform prior "
           f"{c['kl']:.2f} nats in both)")
    if straight_through(m):
        return (gap + f". **{m.card.display} trained straight-through**: its forward pass always used the hard "
                "one-hot sample, so the value it minimised is the exact objective, with no such gap. Its bias is in "
                "the gradient instead: the soft sample's gradient stands in for the hard sample's, which has none. "
                "The relaxed curve shows what training on soft samples at each τ would have scored.")
    return gap + (f". {m.card.display} trained on soft samples, so this gap is the bias of the objective it "
                  "minimised at that τ: low τ shrinks it, at the price of noisier gradients.")


def schedule_svg(m: Loaded, tau: float) -> str:
    """τ over training as the model's schedule set it, to the step the shipped model ended at."""
    h = read_json(m.card.folder, "history.json", {}) or {}
    last = max([e.get("step", 0) for e in h.get("epochs", [])] or [0])
    steps = np.linspace(0, max(last, 1), 60)
    taus = [m.model.temperature(int(s)) for s in steps]
    end = m.model.temperature(int(last))
    return line_chart([("τ during training", list(steps), taus)], f"training step (the model stopped at {last:,}, "
                      f"τ = {end:.3g})", "τ", marker=float(steps[-1]), marker_label="end")


def show(name: str, log_tau, index, seed) -> dict:
    """Everything at the current τ: heatmap, entropy, soft and hard decodings, samples, curves."""
    m = load(name)
    tau = tau_of(log_tau)
    x, what = input_image(m, index)
    try:
        s = int(seed or 0)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error("The seed is a whole number.")
    logits, g = logits_and_noise(m, x, s, 6)
    y = soft_codes(m, logits, g, tau)  # six draws
    p = positions_by_category(m, y[:1])
    h = entropy(p)
    k = m.model.quantizer.codebook_size
    pi = positions_by_category(m, torch.softmax(logits, m.model.quantizer.dim))
    pos = int(np.argmax(entropy(pi)))  # the position the encoder is least sure about
    top = np.argsort(-pi[pos])[:3]
    c = curves(name, int(index or 0) % m.n_test, s)
    soft, hard = decode_codes(m, y[:1])[0], decode_codes(m, hard_codes(m, y[:1]))[0]
    return {
        "heatmap": heatmap(p),
        "entropy": (f"**At τ = {tau:.3g}** ({what}): the soft sample's entropy is **{h.mean():.3f} nats** per "
                    f"position on average (0 = one-hot, log K = {math.log(k):.2f} = uniform over the {k} "
                    f"categories); {int((p.max(1) > 0.99).sum())} of {len(p)} positions are already > 99 % one "
                    f"category."),
        "soft": viz.to_display(soft), "hard": viz.to_display(hard),
        "samples": viz.strip([im for im in decode_codes(m, y)], 84),
        "formula": ("$$y_k = \\frac{\\exp\\big((\\log\\pi_k + g_k)/\\tau\\big)}{\\sum_{j=1}^{K}\\exp\\big((\\log\\pi_j + "
                    "g_j)/\\tau\\big)},\\quad g_k \\sim \\mathrm{Gumbel}(0,1),\\quad \\tau = " + f"{tau:.3g}$$\n\n"
                    f"At the position the encoder is least sure of (position {pos} of {len(pi)}), its three most "
                    "likely categories: "
                    + ", ".join(f"$\\pi_{{{int(j)}}} = {pi[pos, j]:.2f} \\to y_{{{int(j)}}} = {p[pos, j]:.2f}$" for j in top)
                    + "."),
        "error_curve": line_chart([("soft codes", c["tau"], c["soft_mse"]),
                                   ("hard (straight-through) codes", c["tau"], c["hard_mse"])], "τ (log scale)",
                                  "squared error per pixel", logx=True, marker=tau, marker_label=f"τ = {tau:.3g}",
                                  last_values=False),
        "gap_curve": line_chart([("relaxed objective", c["tau"], c["relaxed"])], "τ (log scale)", "−ELBO estimate, nats",
                                logx=True, marker=tau, marker_label=f"τ = {tau:.3g}",
                                hline=("exact (discrete sample)", c["exact"]), last_values=False),
        "gap_note": gap_note(m, c, tau, relaxed_at(name, int(index or 0) % m.n_test, s, tau)),
        "schedule": schedule_svg(m, tau),
    }


QUICK = ("heatmap", "entropy", "soft", "hard", "samples", "error_curve", "gap_curve")
LOG_TAU = (round(math.log10(TAU_MIN), 2), round(math.log10(TAU_MAX), 2))  # the slider's ends


def move_tau(name: str, log_tau, index, seed) -> dict:
    """Moving τ: the pictures and the curves with their marker (what changes while τ moves)."""
    out = show(name, log_tau, index, seed)
    return {k: out[k] for k in QUICK}


def settle_tau(name: str, log_tau, index, seed) -> dict:
    """τ let go: the formula with its numbers and the gap's sentence."""
    out = show(name, log_tau, index, seed)
    return {k: out[k] for k in ("formula", "gap_note")}


def page_view(quick: dict) -> dict:
    """:func:`move_tau`'s answer as the page draws it: pictures as PNG data URLs, charts as SVG."""
    return {k: viz.png_data_url(v) if isinstance(v, np.ndarray) else v for k, v in quick.items()}


def live_value(name: str, log_tau, index, seed) -> str:
    """The τ view's state: which model, image and noise, the τ shown, and what it shows."""
    view = page_view(move_tau(name, log_tau, index, seed))
    return json.dumps({"model": name, "log_tau": float(log_tau), "index": int(index or 0), "seed": int(seed or 0),
                       "range": LOG_TAU, "view": view})


def _request(request) -> tuple[str, float, int, int]:
    """A request from the page, checked: a Gumbel model of this app, τ, image and seed."""
    r = request if isinstance(request, dict) else {}
    name = r.get("model")
    try:
        m = load(name) if isinstance(name, str) else None
    except (KeyError, ValueError):
        m = None
    if m is None or not callable(getattr(m.model, "posterior_logits", None)):
        raise gr.Error("That model is not available here: choose one from the list.")
    index, seed = (whole_number(r.get(k), -2**31, 2**31 - 1, f"The {what} is a whole number.")
                   for k, what in (("index", "test image number"), ("seed", "noise seed")))
    return name, r.get("log_tau"), index, seed


def tau_view(request: dict) -> dict:
    """The page's τ slider (a server function): ``{"model", "log_tau", "index", "seed"}`` → the
    view at that τ, or ``{"error"}`` with what to do."""
    try:
        return {"view": page_view(move_tau(*_request(request)))}
    except gr.Error as error:
        return {"error": str(error.message)}


def settle_live(value) -> dict:
    """The page let go of τ (its value holds model, τ, image and seed): formula and gap's numbers."""
    try:
        v = json.loads(value or "{}")
    except (TypeError, ValueError):
        v = {}
    return settle_tau(*_request(v))


def shown_tau(value) -> float:
    """The log10 τ the page shows (in its value), 0 (τ = 1) before it shows any."""
    try:
        t = float(json.loads(value or "{}").get("log_tau", 0.0))
    except (TypeError, ValueError, AttributeError):
        return 0.0
    return t if math.isfinite(t) else 0.0


def show_live(name: str, value, index, seed) -> dict:
    """A model, image or seed chosen: the τ view (at the τ the page shows, read from its value)
    and everything around it."""
    log_tau = shown_tau(value)
    out = show(name, log_tau, index, seed)
    return {"live": live_value(name, log_tau, index, seed), **{k: out[k] for k in ("formula", "gap_note", "schedule")}}


API = {"gumbel_tau": tau_view}  # τ moved, for API clients (the page calls it directly)


# --- layout and wiring -------------------------------------------------------------------------

def render(cards: list[Card], mine=None):
    models = gumbel_models(cards)
    with gr.Tab("Gumbel temperature"):
        if not tab_intro(SUMMARY, bool(models), "No model with Gumbel-softmax codes is shipped with this app."):
            return None
        with gr.Row():
            model = model_picker([(c.short_label, c.name) for c in models], ("dvae", "gumbel-vae"), label="Model",
                                 scale=2, elem_id="gb-model")
            if mine is not None:
                follow_trained(mine, model, lambda extra: [(c.short_label, c.name) for c in gumbel_models(models + extra)])
            index = gr.Number(0, precision=0, label="test image #", scale=1, minimum=0)
            seed = gr.Number(0, precision=0, label="noise seed", scale=1)
        c = {}
        # τ, the pictures and the curves' markers live in the page: moving τ asks tau_view directly
        c["live"] = gr.HTML(html_template='<div class="gl"></div>', js_on_load=asset("gumbel_view.js"),
                            css_template=asset("gumbel_view.css") + PIXEL_CSS, server_functions=[bounded(tau_view)],
                            apply_default_css=False, elem_id="gb-live")
        with gr.Accordion("The Gumbel-softmax, with this τ and the encoder's own probabilities", open=False):
            c["formula"] = gr.Markdown(latex_delimiters=LATEX)
        with gr.Row():
            c["gap_note"] = gr.Markdown(elem_classes=["vl-small"])
            c["schedule"] = gr.HTML(label="τ during training", show_label=True, container=True)

    # the formula and the gap's numbers when τ is let go
    c["live"].input(keyed(settle_live, c), c["live"], [c["formula"], c["gap_note"]], show_progress="hidden",
                    api_name="gumbel_tau_settled")
    inputs = [model, c["live"], index, seed]
    outputs = [c["live"], c["formula"], c["gap_note"], c["schedule"]]
    for event, api in ((model.change, "gumbel_model"), (index.submit, "gumbel_image"), (seed.submit, "gumbel_seed")):
        event(keyed(show_live, c), inputs, outputs, api_name=api, trigger_mode="always_last")
    return keyed(show_live, c), inputs, outputs
