"""Draw: your own digit through every kind of bottleneck.

The drawing is preprocessed as the training data was made (MNIST: fitted to 20×20 and centred
by centre of mass in 28×28; the 8×8 digits: block-averaged), shown as the image the models
actually see, reconstructed by one shipped model per variant, placed in a 2-D latent, and read
by the shipped classifier. A digit unlike the training data comes back as the nearest thing a
model knows.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import gradio as gr
import torch

from vaelab import viz
from vaelab.app.pixel_image import PixelImage
from vaelab.app import latent_canvas as canvas
from vaelab.app import state
from vaelab.app.catalogue import Card, scan_checkpoints, trained_cards
from vaelab.app.draw_pad import draw_pad
from vaelab.viz import png_data_url
from vaelab.app.state import load
from vaelab.app.widgets import LATEX, follow_trained, keyed
from vaelab.paths import checkpoints_dir, classifier_dir
from vaelab.preprocess import DrawingError, is_blank, preprocess, sketch_to_ink

PCA2 = "PCA, 2 components"  # the linear 2-D bottleneck, offered beside the models when the data is here
DEFAULT_STRONG = 3  # the default rebuilds: the 2-D map's model, PCA-2, and this many strong models
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
    candidates: list[Card] = field(default_factory=list)  # every unconditional model of this image size
    dataset: str = "digits"  # the models' training data (PCA-2 is fitted on it)

    def choices(self) -> list[str]:
        """What the user can pick to rebuild the drawing: every model, then PCA-2."""
        return [c.name for c in self.candidates] + [PCA2]

    def default(self) -> list[str]:
        """A set that shows the bottleneck: a 2-D model and PCA with 2 components (both squeeze
        the drawing through two numbers) beside a few high-capacity models."""
        names = [self.map_card.name] if self.map_card else []
        names.append(PCA2)
        strong = [c.name for c in self.recon if c.latent_dim != 2 and c.name not in names]
        return names + strong[:DEFAULT_STRONG]


DRAWABLE = ((1, 28, 28), (1, 8, 8))  # the grey digit sizes a drawing is prepared for (vaelab.preprocess)


def drawable(cards) -> list[Card]:
    """The cards a drawing can be given to: grey 28×28 or 8×8 images, unconditional."""
    return [c for c in cards if tuple(c.image_shape) in DRAWABLE and c.variant != "cvae"]


def draw_plan(cards: list[Card] | None = None) -> DrawPlan:
    """Which models the draw tab uses — the shipped checkpoints, or ``cards`` (models given to
    ``vaelab.explore``): 28×28 ones if any exist, else the 8×8 digits ones; per variant the one
    that reconstructs best; unconditional models only."""
    key = str(checkpoints_dir()) if cards is None else "explored:" + ",".join(sorted(c.name for c in cards))
    if key in state._PLANS:
        return state._PLANS[key]
    cards = drawable(scan_checkpoints() if cards is None else cards)
    shapes = {c.image_shape for c in cards}
    shape = (1, 28, 28) if (1, 28, 28) in shapes else (1, 8, 8) if (1, 8, 8) in shapes else next(iter(shapes), (1, 28, 28))
    same = [c for c in cards if c.image_shape == shape]
    best: dict[str, Card] = {}
    for c in sorted(same, key=_recon_mse):
        best.setdefault(c.variant, c)
    rank = {v: i for i, v in enumerate(DRAW_VARIANT_ORDER)}
    recon = sorted(best.values(), key=lambda c: (rank.get(c.variant, len(rank)), c.name))[:MAX_DRAW_MODELS]
    two_d = [c for c in same if c.latent_dim == 2 and c.family in ("classic", "variational", "explored")]
    two_d.sort(key=lambda c: (not c.variational, c.variant != "vae", c.name))
    rank_all = sorted(same, key=lambda c: (rank.get(c.variant, len(rank)), c.name))
    plan = DrawPlan(shape, recon, two_d[0] if two_d else None, rank_all,
                    same[0].dataset if same else "digits")
    state._PLANS[key] = plan
    return plan


def _classifier():
    folder = classifier_dir()
    if not (folder / "config.json").is_file():
        return None, "classifier not available (no `checkpoints/classifier/` shipped)"
    if "classifier" not in state._DATA:
        try:
            from vaelab.classifier import load_classifier
            state._DATA["classifier"] = (load_classifier(folder), "")
        except Exception as error:  # a missing module or an unreadable folder: say so, don't crash
            state._DATA["classifier"] = (None, f"classifier not available ({type(error).__name__}: {error})")
    return state._DATA["classifier"]


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


SUMMARY = ("**Draw a digit and watch each model squeeze it through its bottleneck and rebuild it.** "
           "A digit unlike the training data comes back as the nearest thing the model knows.")


def draw_markdown(plan: DrawPlan) -> str:
    """How the drawing is prepared and the formula of what each model does (in an accordion)."""
    size = f"{plan.image_shape[-2]}×{plan.image_shape[-1]}"
    prep = ("cropped to the ink, scaled to fit 20×20 keeping its shape, and centred by its centre of mass "
            "in 28×28, exactly as MNIST was made" if plan.image_shape[-1] == 28 else
            "cropped to the ink, fitted to 32×32 and averaged over 4×4 blocks, as scikit-learn's 8×8 "
            "digits were made (no 28×28 models are shipped here)")
    return "\n".join([
        f"Your drawing is inverted to white-on-black, {prep}: the {size} image shown is what every model "
        "sees. Each autoencoder encodes it to a code $z$ and decodes the code back to an image:",
        "",
        "$$x \\;\\xrightarrow{\\;f_\\phi\\;}\\; z \\;\\xrightarrow{\\;g_\\theta\\;}\\; \\hat x, \\qquad "
        "z \\in \\mathbb{R}^d \\text{ (AE, VAE: posterior mean)} \\;\\text{ or }\\; z = e_{k^*},\\; "
        "k^* = \\arg\\min_k \\lVert f_\\phi(x) - e_k \\rVert \\text{ (VQ-VAE)}$$",
        "",
        "Each rebuild is captioned with its squared error per pixel, "
        "$\\mathrm{MSE} = \\frac{1}{n}\\sum_i (x_i - \\hat x_i)^2$. PCA with 2 components is the best "
        "*linear* two-number bottleneck; a 2-D autoencoder is the non-linear one.",
    ])


EMPTY_DRAWING = ("Draw a digit in the box (it is empty): press and drag with a mouse, a pen or a finger. "
                 "Undo takes the last stroke back; Clear empties the box.")


def pca2_rebuild(plan: DrawPlan, x: torch.Tensor) -> torch.Tensor | None:
    """The drawing through PCA with 2 components of the training images, or None without them."""
    pca = state.pca_for(plan.dataset, 2)
    if pca is None:
        return None
    flat = x.flatten(1).numpy()
    return torch.from_numpy(pca.inverse_transform(pca.transform(flat))).reshape(x.shape).float().clamp(0, 1)


@torch.no_grad()
def trained_for(plan: DrawPlan, names) -> list[Card]:
    """This session's trained models that can rebuild the drawing (same image size, unconditional)."""
    return [c for c in trained_cards(names) if c.image_shape == plan.image_shape and c.variant != "cvae"]


def draw(value, chosen: list[str] | None = None, plan: DrawPlan | None = None) -> dict:
    """A drawing and the names of the models (and PCA-2) that should rebuild it -> ``seen`` (the
    image the models get), ``recons`` (each rebuild with its caption, as one HTML strip of inline
    images: nothing to fetch afterwards), ``map`` (where it lands in a
    2-D latent, with its posterior's ±2σ ellipse for a VAE), the classifier's ``reading`` and a
    ``message``. Empty or cleared drawings give a message, not an error; ``chosen=None`` is the
    default set; ``plan``: the tab's models (default: the shipped ones)."""
    plan = plan or draw_plan()
    yours = {c.name: c for c in trained_for(plan, chosen or [])}
    chosen = plan.default() if chosen is None else [n for n in chosen if n in plan.choices() or n in yours]
    try:
        ink = sketch_to_ink(value)
    except DrawingError as error:
        raise gr.Error(f"This drawing cannot be read: {error}. Draw on the pad, or send a PNG data URL.")
    if is_blank(ink):
        return {"seen": viz.placeholder_image("Draw a digit: this is where the image the models see appears"),
                "recons": recons_html([]), "map": _map_value(plan, None), "reading": "",
                "message": EMPTY_DRAWING}
    x = torch.from_numpy(preprocess(ink, plan.image_shape))
    gallery, notes = [], []
    by_name = {c.name: c for c in plan.candidates} | yours
    for name in chosen:
        if name == PCA2:
            rec = pca2_rebuild(plan, x)
            if rec is None:
                notes.append(f"PCA-2 needs the {plan.dataset.upper()} training images, which are not on this server")
                continue
            label, size_ = "PCA", "2 components"
        else:
            c = by_name[name]
            rec = load(name).model.reconstruct(x).clamp(0, 1)
            label, size_ = c.display, c.size
        err = float(((rec - x) ** 2).mean())
        gallery.append((rec[0], label, f"{size_} · MSE {err:.3f}"))
    size = f"{plan.image_shape[-2]}×{plan.image_shape[-1]}"
    if not chosen:
        msg = "Pick at least one model below to rebuild the drawing."
    else:
        msg = (f"Rebuilt at {size} by {len(gallery)} of the chosen. The 2-D ones squeeze your digit "
               "through two numbers; compare them with the high-capacity models.")
    if notes:
        msg += " " + "; ".join(notes) + "."
    return {"seen": viz.to_display(x[0]), "recons": recons_html(gallery), "map": _map_value(plan, x),
            "reading": classify(x), "message": msg}


RECONS_CSS = """
.vl-recons { display: flex; flex-wrap: wrap; gap: 10px; }
.vl-recons figure { margin: 0; width: 100px; text-align: center; font-size: 12px; line-height: 1.25; }
.vl-recons img { width: 100px; height: 100px; image-rendering: pixelated; background: #000; display: block; }
.vl-empty { color: var(--body-text-color-subdued); font-size: 14px; padding: 8px 0; }
"""


def recons_html(rebuilds: list[tuple[torch.Tensor, str, str]]) -> str:
    """The rebuilds as a strip of figures: each image inline (a PNG of the model's own pixels,
    scaled up crisp by the page) over its caption."""
    if not rebuilds:
        return '<div class="vl-recons vl-empty">The rebuilds appear here when you draw.</div>'
    figures = "".join(
        f'<figure><img src="{png_data_url(image)}" alt="{html.escape(name)}\'s rebuild">'
        f"<figcaption><b>{html.escape(name)}</b><br>{html.escape(score)}</figcaption></figure>"
        for image, name, score in rebuilds)
    return f'<div class="vl-recons">{figures}</div>'


@torch.no_grad()
def where_it_lands(plan: DrawPlan, x: torch.Tensor) -> dict | None:
    """The drawing in the 2-D map model's latent: ``{"mu", "sigma"}`` (σ from a VAE's posterior,
    0 for a deterministic encoder)."""
    if plan.map_card is None:
        return None
    m = load(plan.map_card.name)
    ell = canvas.posterior_ellipse(m, x)
    if ell is not None:
        return ell
    z = m.model.encode(x).flat()[0, :2]
    return {"mu": [float(v) for v in z], "sigma": [0.0, 0.0]}


def _map_value(plan: DrawPlan, x: torch.Tensor | None) -> str:
    if plan.map_card is None:
        return ""
    drawing = None if x is None else where_it_lands(plan, x)
    return canvas.map_value(plan.map_card.name, "latent", None, drawing=drawing, panels=1, pickable=False,
                            pad=False)


def map_heading(plan: DrawPlan) -> str:
    if plan.map_card is None:
        return "No 2-D model is shipped for this image size, so there is no map to place the drawing in."
    c = plan.map_card
    what = "its posterior's ±2σ ellipse" if c.variational else "its code"
    return (f"**Where it lands** in {c.name}'s 2-D latent (red star: your drawing, with {what}). "
            "Hover a dot to see which test digit sits there.")


# --- layout and wiring -------------------------------------------------------------------------

def render_note(cards) -> None:
    """In an app over explored models none of which takes a grey digit: the tab says what it is
    for and why it does not apply (no load to run)."""
    with gr.Tab("Draw"):
        gr.Markdown(SUMMARY)
        shapes = ", ".join(sorted({"×".join(map(str, c.image_shape)) for c in cards}))
        gr.Markdown(f"**Drawing is for grey digit models**: it turns a drawing into a grey 28×28 (or 8×8) digit the "
                    f"way MNIST was prepared. The model here takes {shapes} images, which a drawing cannot be made "
                    "into; run `python app.py` for the shipped digit models.")
    return None


def render(mine=None, cards: list[Card] | None = None):
    """The tab and its event, over the shipped checkpoints or ``cards`` (explored models that take
    grey digits). Returns the page load's ``(handler, inputs, outputs)``."""
    with gr.Tab("Draw"):
        gr.Markdown(SUMMARY)
        with gr.Row():
            with gr.Column(scale=3, min_width=280):
                pad = draw_pad(elem_id="draw-pad")
                message = gr.Markdown(EMPTY_DRAWING, elem_classes=["vl-small"])
            with gr.Column(scale=5, min_width=300):
                with gr.Row():
                    seen = PixelImage(label="what the models see", elem_id="seen", width=150, scale=0,
                                      min_width=170, alt="the drawing as the models see it")
                    reading = gr.Markdown()
                recons = gr.HTML(recons_html([]), label="each model's rebuild of your drawing", show_label=True,
                                 elem_id="recons", css_template=RECONS_CSS, container=True, padding=True)
            with gr.Column(scale=4, min_width=300):
                gr.Markdown(map_heading(draw_plan(cards)), elem_classes=["vl-small"])
                latent_map = canvas.latent_canvas(elem_id="draw-map", label="the drawing in a 2-D latent")
        plan = draw_plan(cards)
        chosen = gr.CheckboxGroup(plan.choices(), value=plan.default(), elem_id="draw-models",
                                  label="Who rebuilds your drawing (the default pairs two-number bottlenecks "
                                        "with high-capacity models)")
        if mine is not None:
            follow_trained(mine, chosen, lambda extra: plan.choices() + [(c.short_label, c.name)
                                                                         for c in trained_for(plan, [c.name for c in extra])])
        with gr.Accordion("How the drawing is prepared, and the formula", open=False):
            gr.Markdown(draw_markdown(plan), latex_delimiters=LATEX)

    c = {"seen": seen, "recons": recons, "map": latent_map, "reading": reading, "message": message}
    inputs = [pad, chosen]

    def draw_here(value, chosen=None):
        return draw(value, chosen, plan)

    draw_here.__doc__ = draw.__doc__
    gr.on([pad.input, chosen.input], keyed(draw_here, c), inputs, list(c.values()), api_name="draw",
          show_progress="hidden", trigger_mode="always_last")
    return keyed(draw_here, c), inputs, list(c.values())
