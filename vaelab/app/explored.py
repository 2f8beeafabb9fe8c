"""``vaelab.explore``: the app on a model vaelab did not train, over your own images.

:func:`register` turns a :class:`vaelab.external.Embedding` into what the app's tabs read — a
card, a loaded model with its metrics and cached arrays, its images as a dataset and their PCA —
so every tab that applies shows it like a shipped checkpoint. :func:`explore` embeds, registers
and launches the app with the tabs that apply to what the model can do (a continuous or discrete
latent, variational or not, can sample). A small folder with the model's ``config.json`` (its
``info``), ``metrics.json`` and ``artifacts.safetensors`` is written too, so what was computed can
be looked at and the tabs that read a checkpoint folder find what they expect.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path

from vaelab.app import catalogue, state
from vaelab.app.catalogue import Card
from vaelab.artifacts import save_artifacts, widen
from vaelab.checkpoint import info_to_dict
from vaelab.data import Dataset
from vaelab.external import Embedding, embed, source_of
from vaelab.folders import write_json

_ROOT: Path | None = None


def _root() -> Path:
    """Where explored models' small folders go (removed when the process exits)."""
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="vaelab-explore-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "model"


def register(e: Embedding, name: str | None = None) -> Card:
    """Make the embedded model ``e`` loadable by the app under ``name`` (unique; from its source
    when not given). Returns its card."""
    m, info = e.model, e.model.info
    source = source_of(m)
    given = (name or "").strip()
    base = _slug(given or source)
    taken = {c.name for c in catalogue.explored_cards()}
    name = base if base not in taken else next(f"{base}-{k}" for k in range(2, 10_000) if f"{base}-{k}" not in taken)
    title = (given if name == base else f"{given} ({name.rsplit('-', 1)[-1]})") if given else ""
    folder = _root() / name
    folder.mkdir(parents=True, exist_ok=True)
    data_name = f"explored:{name}"
    write_json(folder / "config.json", {"variant": "external", "source": source, "dataset": data_name,
                                        "config": {"image_shape": list(m.config.image_shape)},
                                        "info": info_to_dict(info)})
    write_json(folder / "metrics.json", e.metrics)
    save_artifacts(folder, e.arrays)
    c, h, w = m.config.image_shape
    discrete = info.latent == "discrete"
    dims = info.latent_dim
    kind = "variational" if info.variational else ("discrete" if discrete else "deterministic")
    card = Card(name=name, folder=folder, variant="external", family="explored",
                description=f"{source} ({kind} latent)", purpose="", dataset=data_name,
                image_shape=(c, h, w), latent_dim=dims, variational=info.variational,
                has_sliders=info.variational and not discrete,
                size=f"discrete codes, K={info.codebook_size}" if discrete else f"{dims}-D",
                data_title=e.data.source, title=title)
    x, y = e.data.x, e.data.labels
    dataset = Dataset(data_name, x, y, x, y, source=e.data.source, num_classes=max(1, len(e.data.classes)))
    pca = state.PCA(e.pca_mean, e.pca_basis)
    loaded = state.Loaded(card, m, e.metrics, widen(e.arrays), dataset=dataset, pca=pca,
                          classes=list(e.data.classes))
    state.adopt(loaded)  # the model's calls run without gradients (torch.no_grad in the adapter and the tabs)
    return catalogue.register_explored(card)


def explore(model, data=None, *, name: str | None = None, labels=None, max_images: int | None = None,
            latent_map: str = "flatten", launch: bool = True, progress: bool = True, **kwargs):
    """Open vaelab on ``model`` and ``data``.

    ``model``: a vaelab model, or any PyTorch module with ``encode``/``decode`` (pass
    ``encode=``/``decode=`` where its names differ), a diffusers ``AutoencoderKL``/``VQModel``, or
    a pythae model. ``data``: a tensor of images ``(N, C, H, W)`` (labels via ``labels=``), a
    torchvision dataset, a vaelab ``Dataset``, or a folder of images; resized and centre-cropped
    to the model's size, at most ``max_images`` (default 5,000). ``latent_map``: ``"flatten"`` or
    ``"pool"`` for a spatial latent. Other keyword arguments go to :func:`vaelab.external.adapt`
    (``image_shape``, ``value_range``, ``encode``, ``decode``, ``posterior``) and, with ``launch``, to
    ``demo.launch`` (``server_port``, ``share``, ...).

    Returns the Gradio app (launched unless ``launch=False``); its ``launch()`` serves it with the
    app's style and request limits, as here."""
    from vaelab.external import MAX_IMAGES

    adapt_keys = {"image_shape", "value_range", "encode", "decode", "posterior"}
    adapt_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in adapt_keys}
    if data is None:
        raise TypeError("explore needs images to embed: a tensor, a dataset or a folder")
    e = embed(model, data, labels=labels, max_images=max_images or MAX_IMAGES, latent_map=latent_map,
              progress=progress, **adapt_kwargs)
    card = register(e, name)
    from vaelab.app import build

    demo = build([card], explored=True)
    if launch:
        demo.launch(**kwargs)
    return demo
