"""Train: pick a variant and its knobs, press Train, and watch it learn.

Training runs as a job of :mod:`vaelab.jobs` (its own process, one job at a time by default, each
within a time limit); this tab submits it and streams what the job reports: the loss terms per
step, the validation loss per epoch, fixed test images rebuilt after every epoch, the latent map
(and, for discrete models, how many codes are in use) every epoch, and the time left. Stop ends
it between two steps keeping the last finished epoch; Resume continues exactly; afterwards a
scrubber replays the epochs, and the checkpoint downloads as a zip.

Hosting: ``VAELAB_TRAINING_JOBS`` (jobs at a time, default 1), ``VAELAB_TRAINING_MINUTES`` (each
job's limit, default 10), ``VAELAB_RUNS`` (where jobs write, default a temporary folder).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from vaelab import viz
from vaelab.app.charts import line_chart
from vaelab.app.pixel_image import PixelImage
from vaelab.app.state import runs_dir
from vaelab.app.widgets import LATEX
from vaelab.jobs import QUEUED, RUNNING, Job, JobQueue, JobSpec

SUMMARY = ("**Train a model here and watch it learn.** Pick a kind of autoencoder and a dataset, set the "
           "knobs that matter for it, press Train: the loss falls step by step, and after every epoch the "
           "same test digits are rebuilt and the latent map is redrawn.")
FORMULAS = {
    "classic": r"$$\min_\theta \; \frac1N \sum_i \ell\big(x_i,\; g_\theta(f_\theta(x_i))\big) \;+\; \lambda\,\Omega$$"
               r" reconstruction error, plus the variant's penalty $\Omega$ (noise, sparsity, contraction) when it has one.",
    "variational": r"$$\mathcal{L}(x) = \underbrace{\mathbb{E}_{q(z|x)}[-\log p(x|z)]}_{\text{recon}}"
                   r" + \beta\,\underbrace{\mathrm{KL}\big(q(z|x)\,\|\,p(z)\big)}_{\text{kl}}$$",
    "hierarchical": r"$$\mathcal{L}(x) = \mathbb{E}_q[-\log p(x|z_1)] + \beta\,\big(\mathrm{KL}(q(z_2|x)\|p(z_2))"
                    r" + \mathbb{E}\,\mathrm{KL}(q(z_1|x,z_2)\|p(z_1|z_2))\big)$$",
    "discrete": r"$$\mathcal{L}(x) = -\log p(x|z_q) + \|\mathrm{sg}[z_e] - e\|^2 + \beta\,\|z_e - \mathrm{sg}[e]\|^2$$"
                r" (vector quantisation), or the ELBO with Gumbel-softmax codes at temperature $\tau$ (dVAE).",
    "adversarial": r"$$\mathcal{L} = \text{reconstruction} + \lambda_{\text{adv}}\,\text{(the discriminator's loss "
                   r"on the decoder's images)}$$, the discriminator trained in turn to tell real from rebuilt.",
}
EMPTY_CHART = "The chart fills in once training starts."
# step terms that are settings or statistics, not parts of the loss (neg_elbo repeats total;
# d_real / d_fake are the discriminator's mean outputs; perplexities are left out too)
NOT_LOSSES = {"beta", "kl_weight", "temperature", "tau", "neg_elbo", "lr", "gan_on", "d_real", "d_fake"}


def env_number(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, default))
    except ValueError:
        return default
    return v if math.isfinite(v) and v > 0 else default


# VAELAB_CLASSROOM=1: a class of thirty pressing Train at once. Short jobs (two minutes each, enough for
# the 8×8 digits, which train in seconds), as many at once as the server has cores, and room for the
# whole class to wait; each visitor still has one job at a time. VAELAB_TRAINING_JOBS and
# VAELAB_TRAINING_MINUTES override either setting.
CLASSROOM = os.environ.get("VAELAB_CLASSROOM", "").lower() in ("1", "true", "yes")
MAX_RUNNING = int(env_number("VAELAB_TRAINING_JOBS", max(2, os.cpu_count() or 2) if CLASSROOM else 1))
MAX_WAITING = 40 if CLASSROOM else 8  # jobs waiting at once, all sessions together
KEEP_RUNS = 6 * 3600  # seconds a job's folder is kept (a model still in a session's pickers is kept longer)
TIME_LIMIT = env_number("VAELAB_TRAINING_MINUTES", 2 if CLASSROOM else 10) * 60
# a job's model, counted before anything is built (the largest the knobs allow, a Gumbel VAE with
# 64 variables of 1,024 categories, has 35 million: 140 MB here and about four times that in training)
MAX_PARAMETERS = 10_000_000
QUEUE = JobQueue(max_running=MAX_RUNNING)
JOBS: dict[str, Job] = {}  # id -> job, for the page's Stop / Resume / scrubber


# --- the knobs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Knob:
    """One control: the config (or training) field it sets, its label, and its safe limits."""

    field: str
    label: str
    kind: str  # "int", "float", "choice", "bool"
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    info: str = ""
    train: bool = False  # a TrainSettings field (else a model config field)


KNOBS = (
    Knob("latent_dim", "latent size", "int", 1, 256, info="numbers per image in the code: 2 gives a map you can "
                                                          "see; more give sharper rebuilds"),
    Knob("num_variables", "categorical variables", "int", 1, 64, info="one-of-K choices per image"),
    Knob("codebook_size", "codebook size K", "int", 2, 1024, info="how many code vectors"),
    Knob("restart", "restart dead codes", "bool", info="re-seed unused code vectors from the encoder's outputs"),
    Knob("beta", "β", "float", 0.0, 20.0),
    Knob("kl_warmup", "KL warm-up", "choice", choices=("none", "linear", "cyclical")),
    Knob("warmup_steps", "warm-up steps", "int", 0, 20000),
    Knob("tau_start", "τ at the start", "float", 0.05, 10.0),
    Knob("tau_floor", "lowest τ", "float", 0.05, 10.0),
    Knob("tau_rate", "τ decay per step", "float", 0.0, 0.01, info="τ = max(floor, start·e^(−rate·step))"),
    Knob("noise", "noise type", "choice", choices=("masking", "gaussian", "salt_pepper")),
    Knob("noise_level", "noise level", "float", 0.0, 0.95),
    Knob("sparsity_weight", "sparsity weight", "float", 0.0, 10.0),
    Knob("rho", "target activation ρ", "float", 0.01, 0.5),
    Knob("k", "active units k", "int", 1, 256),
    Knob("contractive_weight", "contraction weight", "float", 0.0, 1.0),
    Knob("pretrain_epochs", "layer-wise pretraining epochs", "int", 0, 10),
    Knob("epochs", "epochs", "int", 1, 200, train=True),
    Knob("batch_size", "batch size", "int", 8, 512, train=True),
    Knob("lr", "learning rate", "float", 1e-5, 0.05, train=True),
)
TRAIN_DEFAULTS = {"epochs": 10, "batch_size": 128, "lr": 1e-3}
# The 1,437 training images of the 8×8 digits make an epoch a fraction of a second: smaller
# batches, a higher learning rate, more epochs and a smaller MLP (64 inputs) reach a good model in
# seconds (a 2-D VAE: validation loss 24.2 in about 5 s on one core, below the shipped
# digits-vae-2d's 24.3 after 300 epochs of the defaults).
DATASET_TRAIN = {"digits": {"epochs": 60, "batch_size": 32, "lr": 3e-3}}
DIGITS_HIDDEN = (128, 64)
TAB_LATENT = 2  # the latent size the tab starts at (a map you can look at; raise it for sharper rebuilds)


def variants() -> list:
    from vaelab.registry import list_variants

    return list_variants()


def variant_choices() -> list[tuple[str, str]]:
    return [(f"{e.name} — {e.description}", e.name) for e in variants()]


def defaults(variant: str, dataset: str = "mnist") -> dict:
    """The variant's config defaults (the knobs it has) and the training defaults for ``dataset``."""
    from vaelab.registry import get_entry

    entry = get_entry(variant)
    out = {f.name: f.default for f in dataclasses.fields(entry.config_cls) if f.default is not dataclasses.MISSING}
    if out.get("latent_dim") and not out.get("codebook_size") and not {"k", "sparsity_weight"} & set(out):
        out["latent_dim"] = TAB_LATENT  # the demo a class expects: a 2-D latent it can see as a map
    return {**out, **TRAIN_DEFAULTS, **DATASET_TRAIN.get(dataset, {})}


def fixed_config(variant: str, dataset: str) -> dict:
    """Config the page does not ask for but the dataset needs: a smaller MLP for the 8×8 digits; no
    perceptual loss where the shipped classifier cannot read the images."""
    d, out = defaults(variant, dataset), {}
    if dataset == "digits" and d.get("backbone") == "mlp" and len(d.get("hidden") or ()) >= 2 \
            and max(d["hidden"]) > max(DIGITS_HIDDEN):
        out["hidden"] = DIGITS_HIDDEN
    if d.get("feature_net") and d.get("feature_weight") and dataset != "mnist":
        out["feature_weight"] = 0.0  # the perceptual loss's classifier reads 28×28 MNIST digits only
    return out


def applies(knob: Knob, variant: str) -> bool:
    d = defaults(variant)
    if knob.train:
        return True
    if knob.field not in d:
        return False
    if knob.field == "latent_dim":  # discrete models are sized by their codebook instead
        return not d.get("codebook_size") and d.get("latent_dim", 0) > 0
    return True


def knob_label(knob: Knob, variant: str) -> str:
    if knob.field == "beta" and "codebook_size" in defaults(variant):
        return "commitment weight β"
    if knob.field == "beta":
        return "β (weight of the KL term)"
    return knob.label


def available_datasets() -> list[tuple[str, str]]:
    """``digits`` always (bundled); the torchvision sets whose files are on this server."""
    from vaelab.data import TORCHVISION_SETS, data_dir

    out = [("8×8 digits (bundled, trains in seconds)", "digits")]
    for name, folder in TORCHVISION_SETS.items():
        if (data_dir() / folder / "raw").is_dir() and any((data_dir() / folder / "raw").iterdir()):
            out.append((f"{folder} (28×28)", name))
    return out


def show_variant(variant: str, dataset: str = "digits") -> dict:
    """The knobs that apply to ``variant``, at its defaults for ``dataset``; its family's formula."""
    from vaelab.registry import get_entry

    if variant not in {e.name for e in variants()}:
        raise gr.Error("Choose a kind of autoencoder from the list.")
    d = defaults(variant, dataset)
    out = {}
    for knob in KNOBS:
        on = applies(knob, variant)
        out[knob.field] = gr.update(visible=on, label=knob_label(knob, variant),
                                    **({"value": d[knob.field]} if on and knob.field in d else {}))
    entry = get_entry(variant)
    out["formula"] = f"**{entry.name}** ({entry.family}): {entry.description}\n\n" + FORMULAS.get(entry.family, "")
    return out


def make_spec(variant: str, dataset: str, values: dict) -> JobSpec:
    """The job for these knob values, checked against each knob's limits; a clear error otherwise."""
    if variant not in {e.name for e in variants()}:
        raise gr.Error("Choose a kind of autoencoder from the list.")
    if dataset not in {v for _, v in available_datasets()}:
        raise gr.Error(f"The dataset {dataset!r} is not on this server; choose one of the list.")
    config, train = {}, {}
    for knob in KNOBS:
        if not applies(knob, variant) or knob.field not in values:
            continue
        v = values[knob.field]
        name = knob_label(knob, variant)
        if knob.kind in ("int", "float"):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise gr.Error(f"{name}: a number, please.")
            if not math.isfinite(v) or not knob.lo <= v <= knob.hi:
                raise gr.Error(f"{name} must be between {knob.lo:g} and {knob.hi:g} (got {v:g}).")
            if knob.kind == "int":
                if v != int(v):
                    raise gr.Error(f"{name} is a whole number (got {v:g}).")
                v = int(v)
        elif knob.kind == "choice":
            if v not in knob.choices:
                raise gr.Error(f"{name}: choose one of {', '.join(knob.choices)}.")
        elif knob.kind == "bool":
            v = bool(v)
        (train if knob.train else config)[knob.field] = v
    if "k" in config and "latent_dim" in config and config["k"] > config["latent_dim"]:
        raise gr.Error(f"active units k ({config['k']}) cannot exceed the latent size ({config['latent_dim']}).")
    if "tau_floor" in config and "tau_start" in config and config["tau_floor"] > config["tau_start"]:
        raise gr.Error("The lowest τ must not be above τ at the start.")
    spec = JobSpec(variant, dataset, {**fixed_config(variant, dataset), **config}, train, time_limit=TIME_LIMIT)
    check_builds(spec)
    return spec


def check_builds(spec: JobSpec) -> None:
    """Count the model's parameters (on the ``meta`` device, refusing more than
    :data:`MAX_PARAMETERS`), then build it and take its loss on two images here, before it waits in
    the queue: a combination that cannot train is refused with the reason at once."""
    import torch

    from vaelab.app.state import dataset as load_data
    from vaelab.registry import create

    data = load_data(spec.dataset)
    if data is None:
        raise gr.Error(f"The dataset {spec.dataset!r} could not be read on this server.")
    try:
        with torch.device("meta"):  # its size first, without memory
            n = sum(p.numel() for p in create(spec.variant, image_shape=data.image_shape, **spec.config).parameters())
    except Exception as error:  # the model's own message says what does not fit
        raise gr.Error(f"{spec.variant} cannot be trained with these settings on {spec.dataset}: {error}")
    if n > MAX_PARAMETERS:
        raise gr.Error(f"These settings make a model of {n:,} parameters; training on this server takes at most "
                       f"{MAX_PARAMETERS:,}. Lower the sizes (latent size, categorical variables, codebook size).")
    try:
        torch.manual_seed(0)
        model = create(spec.variant, image_shape=data.image_shape, **spec.config)
        with torch.no_grad():
            model.loss(data.train_x[:2], data.train_y[:2], step=0)
    except Exception as error:  # the model's own message says what does not fit
        raise gr.Error(f"{spec.variant} cannot be trained with these settings on {spec.dataset}: {error}")


# --- what the page shows of a job --------------------------------------------------------------

def _minutes(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def visitor_words(message: str) -> str:
    """A training message as a visitor reads it: without the sentences naming the server's folders
    (the status line says itself which epoch is kept), and without words the status already says."""
    import re

    sentences = re.split(r"(?<=[.!?])\s+", (message or "").strip())
    keep = [t for t in sentences if t and not re.search(r"(^|\s)/\S|kept in|checkpoint is kept|No checkpoint had", t)]
    text = " ".join(keep)
    text = re.sub(r"^stopped \(([^)]*)\)", r"\1:", text, flags=re.I)  # "stopped (time limit) at" -> "time limit: at"
    text = re.sub(r"^(Finished|Stopped|Failed)[:.]\s*", "", text)  # the bold status says it already
    return text[:1].upper() + text[1:] if text else ""


def status_line(job: Job) -> str:
    with job.lock:
        status, steps, epochs, message = job.status, list(job.steps[-1:]), len(job.epochs), job.message
        total_epochs = job.start.get("epochs") or job.spec.epochs
    if status == QUEUED:
        pos = QUEUE.position(job)
        wait = QUEUE.wait_estimate(job)
        scoring = any(j.evaluation == "running" for j in QUEUE.running())
        when = ("in a few seconds, once the job ahead has been scored" if wait < 5 and scoring else
                "in a few seconds" if wait < 5 else f"within about {_minutes(wait)}")
        return (f"**Waiting for its turn**: {pos} job{'s' if pos != 1 else ''} ahead; it starts {when} "
                f"(this server trains {QUEUE.max_running} job{'s' if QUEUE.max_running != 1 else ''} at a time).")
    if status == RUNNING:
        if not steps:
            return "**Starting** the training process and loading the data…"
        s = steps[-1]
        eta = job.eta()
        left = f" — about {_minutes(eta)} left" if eta is not None else ""
        return (f"**Training** epoch {s['epoch']} of {total_epochs}, step {s['batch']}/{s['batches']}; "
                f"{epochs} epoch{'s' if epochs != 1 else ''} done, {_minutes(s['seconds'])} so far{left}.")
    kept = f" The model is saved after epoch {job.saved_epoch}." if job.saved_epoch else " No epoch finished, so nothing was saved."
    line = f"**{status.capitalize()}.** {visitor_words(message)}{kept if status != 'finished' else ''}"
    if not job.done and job.saved_epoch:
        line += " Scoring it on the test images so the other tabs can show it…"
    return line


def loss_chart(job: Job) -> str:
    with job.lock:
        steps = list(job.steps)
        total = (job.start.get("epochs") or job.spec.epochs) * (steps[-1]["batches"] if steps else 0)
    if not steps:
        return line_chart([], "step", "loss", empty=EMPTY_CHART)
    names = [n for n in steps[-1]["terms"] if n not in NOT_LOSSES and not n.startswith("perplexity")]
    names = ["total"] + [n for n in names if n != "total"] if "total" in names else names
    xs = [s["step"] for s in steps]
    series = [(n, xs, [s["terms"].get(n, math.nan) for s in steps]) for n in names[:6]]
    positive = all(v > 0 for _, _, ys in series for v in ys if math.isfinite(v))
    return line_chart(series, "step", "loss terms per image (log scale)" if positive else "loss terms per image",
                      logy=positive, xmax=total or None, spans=phase_spans(steps))


def phase_spans(steps: list[dict]) -> list[tuple[float, float, str]]:
    """Where each training phase ran, in steps (a stacked autoencoder trains layer by layer first);
    nothing for a model with one phase."""
    spans: list[list] = []
    for s in steps:
        if spans and spans[-1][2] == s["phase"]:
            spans[-1][1] = s["step"]
        else:
            spans.append([spans[-1][1] if spans else 0, s["step"], s["phase"]])
    return [tuple(p) for p in spans] if len(spans) > 1 else []


def epoch_chart(job: Job, mark: int | None = None) -> str:
    with job.lock:
        recs = [e["record"] for e in job.epochs]
        total = job.start.get("epochs") or job.spec.epochs
    if not recs:
        return line_chart([], "epoch", "loss", empty="The validation loss appears after the first epoch.")
    xs = [r["epoch"] for r in recs]
    return line_chart([("train", xs, [r["train"]["total"] for r in recs]),
                       ("validation", xs, [r["val"]["total"] for r in recs])], "epoch", "loss per image",
                      xmax=total, marker=mark, marker_label=f"epoch {mark}" if mark else "")


def codes_chart(job: Job) -> str:
    with job.lock:
        recs = [e["record"] for e in job.epochs if "codes" in e["record"]]
    if not recs:
        return ""
    xs = [r["epoch"] for r in recs]
    levels = len(recs[0]["codes"])
    series = [(f"codes used{'' if levels == 1 else f', level {i}'}", xs, [r["codes"][i]["used_codes"] for r in recs])
              for i in range(levels)]
    return line_chart(series, "epoch", f"codes used of {recs[0]['codes'][0]['codebook_size']}")


def pictures(job: Job, epoch: int | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The watched images above their rebuilds, and the latent map, after ``epoch`` (the last one
    when ``None``)."""
    with job.lock:
        start = job.start
        snaps = list(job.epochs)
    if not start:
        return None, None
    originals = start["originals"]
    if not snaps:
        grid = viz.tile(list(originals / 255.0), cols=len(originals))
        return viz.to_display(grid, pixels=60 * len(originals)), None
    snap = snaps[-1] if epoch is None else snaps[max(0, min(len(snaps), int(epoch)) - 1)]
    grid = viz.tile(list(originals / 255.0) + list(snap["rebuilt"] / 255.0), cols=len(originals))
    pts = np.concatenate([s["points"] for s in snaps])  # one frame for every epoch: a replay stays put
    lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
    margin = 0.1 * np.maximum(hi - lo, 1e-6)
    labels = start["labels"][:len(snap["points"])]
    return viz.to_display(grid, pixels=60 * len(originals)), viz.scatter_image(snap["points"], labels, lo - margin,
                                                                                hi + margin, size=320, dot=3)


WEIGHT_NAMES = ("beta", "kl_weight")  # terms that weigh another term rather than add to the loss


def config_weights(spec) -> dict[str, float]:
    """The job's config fields that weigh a loss term (``beta``, ``*_weight``), defaults included."""
    import dataclasses

    from vaelab.registry import make_config

    try:
        config = dataclasses.asdict(make_config(spec.variant, spec.config))
    except Exception:  # an unknown variant or a bad field: no weights to offer
        return {}
    return {k: float(v) for k, v in config.items()
            if (k == "beta" or k.endswith("_weight")) and isinstance(v, (int, float)) and not isinstance(v, bool)}


def loss_equation(terms: dict[str, float], weights: dict[str, float]) -> list[tuple[str, str | None, float]] | None:
    """Which of ``terms`` add up to ``terms["total"]``, each possibly times one of ``weights``
    (named weights first, then any term that is itself a weight), checked numerically: a list of
    ``(term, weight name or None, weight)``, or ``None`` when no such sum matches. A weight scales
    only the term it is named for (``beta``/``kl_weight`` a KL term, ``sparsity_weight`` the
    ``sparsity`` term). The most terms win; among those, the one using named weights."""
    import itertools

    total = terms.get("total")
    if total is None or not math.isfinite(total):
        return None
    w = {**weights, **{k: terms[k] for k in WEIGHT_NAMES if k in terms}}
    addends = [k for k, v in terms.items() if k != "total" and k not in w and math.isfinite(v)]
    tol = 1e-3 * max(1.0, abs(total))
    def options(term: str) -> list[tuple[str | None, float]]:
        # a weight scales the term it is named for: beta and kl_weight a KL, sparsity_weight sparsity, ...
        return [(None, 1.0)] + [(n, f) for n, f in sorted(w.items())
                                if (n in WEIGHT_NAMES and "kl" in term) or n == f"{term}_weight"]

    best = None
    for size in range(min(4, len(addends)), 0, -1):
        for chosen in itertools.combinations(addends, size):
            for scales in itertools.product(*(options(k) for k in chosen)):
                if abs(sum(terms[k] * f for k, (_, f) in zip(chosen, scales)) - total) <= tol:
                    named = sum(n is not None for n, _ in scales)
                    if best is None or named > best[0]:
                        best = (named, [(k, n, f) for k, (n, f) in zip(chosen, scales)])
        if best is not None:
            return best[1]
    return None


def live_numbers(job: Job) -> str:
    """The last step's loss, written as the sum of the terms that make it (checked numerically),
    and the other numbers the model reports apart."""
    with job.lock:
        steps = job.steps[-1:]
    if not steps:
        return ""
    terms = {k: float(v) for k, v in steps[0]["terms"].items()}
    total = terms.get("total")
    if total is None:
        return ""
    equation = loss_equation(terms, config_weights(job.spec))
    used = {k for k, _, _ in equation or []} | {n for _, n, _ in equation or [] if n}
    text = f"Step {steps[0]['step']}: loss {total:.4g}"
    if equation:
        text += " = " + " + ".join(f"{k} {terms[k]:.3g}" if n is None else f"{n} {f:g} × {k} {terms[k]:.3g}"
                                   for k, n, f in equation)
    rest = [f"{k} {v:.3g}" for k, v in terms.items() if k != "total" and k not in used]
    return text + " (per image, this batch)." + (f" Also: {', '.join(rest)}." if rest else "")


def view(job: Job) -> dict:
    rebuilt, latent = pictures(job)
    with job.lock:
        done, epochs, saved = job.done, len(job.epochs), job.saved_epoch
    return {"status": status_line(job), "numbers": live_numbers(job), "losses": loss_chart(job),
            "per_epoch": epoch_chart(job),
            "rebuilt": gr.update(value=rebuilt, label=rebuilt_label(epochs or None)),
            "map": gr.update(value=latent, label=map_label(epochs or None)),
            "codes": gr.update(value=codes_chart(job), visible=bool(job.epochs and "codes" in job.epochs[-1]["record"])),
            "train": gr.update(interactive=done), "stop": gr.update(interactive=not done),
            "resume": gr.update(interactive=bool(done and saved and job.status != "finished")),
            "scrub": gr.update(visible=done and epochs > 1, maximum=max(2, epochs), value=max(1, epochs)),
            "download": gr.update(visible=bool(done and saved), value=archive(job) if done and saved else None)}


def archive(job: Job) -> str | None:
    """The job's checkpoint folder as a zip beside it (written once per saved epoch)."""
    folder = job.folder
    if not (folder / "model.safetensors").is_file():
        return None
    name = f"{folder.name}-{job.spec.dataset}-epoch{job.saved_epoch}"
    target = folder.parent / f"{name}.zip"
    if not target.is_file():
        staging = Path(tempfile.mkdtemp(dir=folder.parent))
        try:
            shutil.copytree(folder, staging / name, ignore=shutil.ignore_patterns("training_state.*", ".*"))
            made = shutil.make_archive(str(staging / name), "zip", staging, name)
            os.replace(made, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return str(target)


# --- handlers ----------------------------------------------------------------------------------

def _session(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "anonymous") if request is not None else "anonymous"


def _own(job_id: str, request: gr.Request | None) -> Job:
    job = JOBS.get(job_id or "")
    if job is None or job.owner != _session(request):
        raise gr.Error("There is no training job of yours to act on: press Train first.")
    return job


def watch(job: Job, mine: list | None = None, every: float = 0.4):
    """Yield the page's view of ``job`` whenever it changed, until it ends; the last view adds
    the trained model to this session's models (``mine``) when it was saved and evaluated."""
    seen = -1
    while True:
        with job.lock:
            version, done = job.version, job.done
        if done:
            yield {"job": job.id, **view(job), **adopt(job, list(mine or []))}
            return
        if version != seen or job.status == QUEUED:
            seen = version
            yield {"job": job.id, **view(job)}
        time.sleep(every)


def adopt(job: Job, mine: list) -> dict:
    """Register an ended job's evaluated checkpoint under a name only this session is told, and
    say where it can be used now."""
    from vaelab.app.catalogue import register_trained

    if job.evaluation != "done" or not job.saved_epoch:
        if job.evaluation and job.evaluation not in ("done", "running"):
            return {"status": status_line(job) + f" It could not be evaluated, so the other tabs cannot show it "
                                                  f"({job.evaluation}); the download still works."}
        return {}
    name = f"trained-{job.id}"
    title = f"your {job.spec.variant} ({job.spec.dataset}, epoch {job.saved_epoch}, {time.strftime('%H:%M')})"
    try:
        card = register_trained(job.folder, name, title)
    except ValueError as error:
        return {"status": status_line(job) + f" It cannot be shown in the other tabs: {error}"}
    mine = [n for n in mine if n != name] + [name]
    return {"mine": mine, "status": status_line(job) + f" It is now in this page's model pickers as "
                                                       f"“{card.short_label}” (only for you)."}


def check_settings(variant: str, dataset: str, *values) -> dict:
    """The Train button's first step: refuse settings that cannot train, with the reason, before
    anything is queued."""
    make_spec(variant, dataset, dict(zip([k.field for k in KNOBS], values)))
    return {"status": "**Queuing** the job…"}


def start_training(request: gr.Request, mine: list, variant: str, dataset: str, *values):
    """Check the settings, queue the job, and stream it (``values``: the knobs, in :data:`KNOBS`
    order; ``request`` names the browser session the job belongs to, ``mine`` lists the models
    it trained before)."""
    spec = make_spec(variant, dataset, dict(zip([k.field for k in KNOBS], values)))
    session = _session(request)
    admit(session)
    prune_runs()
    for old in [k for k, j in JOBS.items() if j.done and time.time() - (j.ended or 0) > KEEP_RUNS]:
        del JOBS[old]
    job = QUEUE.submit(spec, runs_dir() / session[:32] / f"{spec.variant}-{time.strftime('%H%M%S')}-{os.urandom(2).hex()}",
                       owner=session)
    JOBS[job.id] = job
    yield from watch(job, mine)


def admit(session: str) -> None:
    """One job at a time per browser session, and a bounded queue: a clear refusal otherwise."""
    waiting = [j for j in QUEUE.jobs if not j.done]
    if any(j.owner == session for j in waiting):
        raise gr.Error("You already have a training job queued or running: stop it first (or wait for it to end).")
    if sum(j.status == QUEUED for j in waiting) >= MAX_WAITING:
        raise gr.Error(f"{MAX_WAITING} training jobs are already waiting on this server; try again in a few minutes.")


def prune_runs(now: float | None = None) -> None:
    """Remove job folders older than :data:`KEEP_RUNS` that no job is using and no session shows."""
    from vaelab.app.catalogue import _TRAINED

    root, now = runs_dir(), now or time.time()
    if not root.is_dir():
        return
    busy = {j.folder for j in QUEUE.jobs if not j.done} | {c.folder for c in _TRAINED.values()}
    for session in root.iterdir():
        for run in session.iterdir() if session.is_dir() else ():
            try:
                old = now - run.stat().st_mtime > KEEP_RUNS
            except OSError:
                continue
            if old and run not in busy:
                shutil.rmtree(run, ignore_errors=True) if run.is_dir() else run.unlink(missing_ok=True)


def resume_training(job_id: str, mine: list, request: gr.Request = None):
    """Continue a stopped job exactly from its last saved epoch, in the same folder."""
    old = _own(job_id, request)
    if not old.done:
        raise gr.Error("This job is still running.")
    if not old.saved_epoch:
        raise gr.Error("Nothing to resume: no epoch was finished before it stopped. Press Train to start again.")
    admit(old.owner)
    job = QUEUE.submit(old.spec, old.folder, resume=True, owner=old.owner)
    job.steps, job.epochs = list(old.steps), list(old.epochs)  # the charts continue where they were
    JOBS[job.id] = job
    yield from watch(job, mine)


def stop_training(job_id: str, request: gr.Request = None) -> dict:
    job = _own(job_id, request)
    if job.done:
        return {"status": status_line(job)}
    job.stop()
    return {"status": "**Stopping** after the current step…"}


def scrub(job_id: str, epoch, request: gr.Request = None) -> dict:
    """Replay: the rebuilds and the latent map after ``epoch``."""
    job = _own(job_id, request)
    try:
        e = int(epoch)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error("Choose an epoch with the slider.")
    rebuilt, latent = pictures(job, e)
    with job.lock:
        shown = max(1, min(len(job.epochs), e))
    return {"rebuilt": gr.update(value=rebuilt, label=rebuilt_label(shown, False)),
            "map": gr.update(value=latent, label=map_label(shown, False)), "per_epoch": epoch_chart(job, mark=e)}


def rebuilt_label(epoch: int | None, last: bool = True) -> str:
    when = "after the last epoch" if epoch is None else f"after epoch {epoch}" + (" (the last)" if last else "")
    return f"test images (top) and their rebuilds {when}"


def map_label(epoch: int | None, last: bool = True) -> str:
    when = "after the last epoch" if epoch is None else f"after epoch {epoch}" + (" (the last)" if last else "")
    return f"the latent map {when} (PCA beyond 2 numbers)"


# --- layout and wiring -------------------------------------------------------------------------

def _control(knob: Knob, variant: str):
    d = defaults(variant, "digits")
    on = applies(knob, variant)
    value = d.get(knob.field, TRAIN_DEFAULTS.get(knob.field))
    common = dict(label=knob_label(knob, variant), visible=on, info=knob.info or None, min_width=160)
    if knob.kind == "bool":
        return gr.Checkbox(value=bool(value), **common)
    if knob.kind == "choice":
        return gr.Dropdown(list(knob.choices), value=value if value in knob.choices else knob.choices[0], **common)
    return gr.Number(value=value, minimum=knob.lo, maximum=knob.hi, precision=0 if knob.kind == "int" else None,
                     **common)


def render(mine: gr.State):
    """The tab. ``mine``: the session's list of models trained here (the other tabs' pickers
    listen to it)."""
    from vaelab.app.widgets import keyed

    first = "vae"
    with gr.Tab("Train"):
        gr.Markdown(SUMMARY)
        c: dict = {}
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):  # what to train
                variant = gr.Dropdown(variant_choices(), value=first, label="kind of autoencoder",
                                      elem_id="train-variant")
                dataset = gr.Radio(available_datasets(), value="digits", label="dataset", elem_id="train-data")
                with gr.Row():
                    c["train"] = gr.Button("Train", variant="primary", elem_id="train-start", min_width=80)
                    c["stop"] = gr.Button("Stop", interactive=False, elem_id="train-stop", min_width=80)
                    c["resume"] = gr.Button("Resume", interactive=False, elem_id="train-resume", min_width=80)
                c["status"] = gr.Markdown("Choose, then press **Train**.", elem_id="train-status")
                with gr.Accordion("Settings (each kind shows its own; defaults are the variant's)", open=True):
                    with gr.Row():
                        for knob in KNOBS:
                            c[knob.field] = _control(knob, first)
                with gr.Accordion("What it minimises, with this step's numbers", open=True):
                    c["formula"] = gr.Markdown(show_variant(first)["formula"], latex_delimiters=LATEX)
                    c["numbers"] = gr.Markdown()
            with gr.Column(scale=3, min_width=320):  # what it does
                with gr.Row():
                    c["losses"] = gr.HTML(line_chart([], "step", "loss", empty=EMPTY_CHART), label="loss terms per step",
                                          show_label=True, container=True, elem_id="train-losses", min_width=280)
                    c["per_epoch"] = gr.HTML(label="loss per epoch (validation: images held out of training)",
                                             show_label=True, container=True, elem_id="train-epochs", min_width=280)
                with gr.Row():
                    c["rebuilt"] = PixelImage(label=rebuilt_label(None),
                                              alt="test images and their rebuilds",
                                              empty="They appear when training starts.", elem_id="train-rebuilt",
                                              min_width=280)
                    c["map"] = PixelImage(label=map_label(None),
                                          alt="latent map", width=280, empty="It appears after the first epoch.",
                                          elem_id="train-map", min_width=280)
                c["codes"] = gr.HTML(label="codes in use after each epoch (of the held-out images' code maps)",
                                     show_label=True, container=True, visible=False)
                c["scrub"] = gr.Slider(1, 2, value=1, step=1, label="replay: after epoch …", visible=False,
                                       elem_id="train-scrub")
                c["download"] = gr.DownloadButton("Download the checkpoint (.zip)", visible=False)
        c["job"] = gr.State("")
        c["mine"] = mine

    knob_controls = [c[k.field] for k in KNOBS]
    shown = {k: c[k] for k in ("status", "numbers", "losses", "per_epoch", "codes", "rebuilt", "map", "train", "stop",
                               "resume", "scrub", "download", "job", "mine")}
    variant.change(keyed(show_variant, c), [variant, dataset], knob_controls + [c["formula"]], api_name="train_variant")
    dataset.change(keyed(show_variant, c), [variant, dataset], knob_controls + [c["formula"]], api_name="train_dataset")
    c["train"].click(keyed(check_settings, c), [variant, dataset] + knob_controls, c["status"], api_name="train_check",
                     show_progress="hidden").success(
        keyed_stream(start_training, shown), [mine, variant, dataset] + knob_controls, list(shown.values()),
        api_name="train_start", concurrency_limit=16, concurrency_id="train_watch", show_progress="hidden")
    c["resume"].click(keyed_stream(resume_training, shown), [c["job"], mine], list(shown.values()), api_name="train_resume",
                      concurrency_limit=16, concurrency_id="train_watch", show_progress="hidden")
    c["stop"].click(keyed(stop_training, c), c["job"], c["status"], api_name="train_stop")
    c["scrub"].change(keyed(scrub, c), [c["job"], c["scrub"]], [c["rebuilt"], c["map"], c["per_epoch"]],
                      api_name="train_scrub", show_progress="hidden", trigger_mode="always_last")


def keyed_stream(fn, components: dict):
    """:func:`vaelab.app.widgets.keyed` for a generator handler: every yielded dict is mapped."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for out in fn(*args, **kwargs):
            yield {components[k]: v for k, v in out.items()}
    return wrapper
