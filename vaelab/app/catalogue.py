"""The checkpoint catalogue: which evaluated checkpoints the app can show, and how to label them.

Read from each checkpoint folder's JSON files only (no weights are loaded): what a model *is*
comes from the ``info`` its ``config.json`` records (:func:`vaelab.checkpoint.read_info`), so the
app never names a variant to decide what a model can do.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vaelab.paths import checkpoints_dir


@dataclass(frozen=True)
class Card:
    """What the picker needs to know about a checkpoint, read from its JSON files only."""

    name: str
    folder: Path
    variant: str
    family: str
    description: str
    purpose: str
    dataset: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    variational: bool  # the model's info: a posterior and a prior (ELBO, KL per dimension)
    has_sliders: bool  # one flat Gaussian latent: the sliders tab applies
    size: str = ""  # how big the latent is, for labels ("16-D", "discrete codes, K=512")
    beta: float | None = None  # a VAE's KL weight, when its config declares one
    design: str = ""  # its config without beta: models that differ only in beta share it
    title: str = ""  # shown instead of the name (a model trained in this browser session)
    data_title: str = ""  # the images, in words, when they are not a dataset the library names

    @property
    def display(self) -> str:
        """How text names it: its name, or its title for a model trained in this session."""
        return self.title or self.name

    @property
    def short_label(self) -> str:
        """``"vae-2d · 2-D"``: what a picker shows."""
        return f"{self.display} · {self.size}"

    @property
    def label(self) -> str:
        extra = f" — for: {self.purpose}" if self.purpose else ""
        data = self.data_title or ("8×8 digits" if self.dataset == "digits" else self.dataset.upper())
        return f"[{self.family}] {self.name} · {data}, {self.size} · {self.description}{extra}"


def short_description(text: str) -> str:
    """The registry's one-liner without architecture details: "Vanilla autoencoder, shallow MLP
    784-32-784" -> "Vanilla autoencoder"; a bare name before a colon keeps what follows it."""
    head, _, tail = text.partition(":")
    head = head.split(",")[0].strip()
    if tail and len(head.split()) <= 2:
        head = f"{head}: {tail.strip().split(';')[0]}"
    return head


def read_card(ckpt: Path, name: str | None = None, title: str = "") -> Card | None:
    """The card of the evaluated checkpoint in ``ckpt`` (``config.json`` + weights + metrics +
    artifacts) whose variant this library knows; ``None`` otherwise."""
    if ckpt.name.startswith(".") or not all((ckpt / f).is_file() for f in
                                            ("config.json", "model.safetensors", "metrics.json", "artifacts.safetensors")):
        return None  # still training, or not evaluated yet
    try:
        return _card(ckpt, name, title)
    except KeyError:
        return None  # a variant from a newer vaelab
    except Exception as error:  # a malformed folder: skipped, and the others still show
        import logging
        logging.getLogger(__name__).warning("skipping the checkpoint %s: %s: %s", ckpt.name, type(error).__name__, error)
        return None


def _card(ckpt: Path, name: str | None, title: str) -> Card | None:
    from vaelab.checkpoint import read_info
    from vaelab.registry import get_entry

    meta = json.loads((ckpt / "config.json").read_text())
    if not isinstance(meta, dict) or "variant" not in meta:
        return None  # a classifier, or not a model
    if meta.get("custom_modules"):
        return None  # trained with the user's own networks, whose code the app does not have
    entry = get_entry(meta["variant"])
    info = read_info(ckpt)
    config = meta.get("config", {})
    shapes = [tuple(s) for s in info["latent_shapes"]]
    gaussian = info["latent"] == "continuous" and info["variational"]
    discrete = info["latent"] == "discrete"
    dims = int(config.get("latent_dim", 0)) if discrete else sum(math.prod(s) for s in shapes)
    return Card(
        name=name or ckpt.name, folder=ckpt, variant=entry.name, family=entry.family,
        description=short_description(entry.description), purpose=meta.get("purpose", ""),
        dataset=meta.get("dataset") or "digits",
        image_shape=tuple(config.get("image_shape", (1, 28, 28))),
        latent_dim=dims, variational=info["variational"],
        has_sliders=gaussian and len(shapes) == 1 and len(shapes[0]) == 1,
        size=f"discrete codes, K={info['codebook_size']}" if discrete else f"{dims}-D",
        beta=float(config["beta"]) if info["variational"] and "beta" in config else None,
        design=json.dumps({k: v for k, v in config.items() if k != "beta"}, sort_keys=True)
               + f"|{meta.get('dataset')}|{entry.name}",
        title=title)


def scan_checkpoints(folder: str | os.PathLike | None = None) -> list[Card]:
    """Every evaluated checkpoint in ``folder`` whose variant this library knows (see
    :func:`read_card`), grouped by family in the registry's order. What a model is comes from the
    ``info`` its config.json records (:func:`vaelab.checkpoint.read_info`)."""
    from vaelab.registry import FAMILIES

    folder = Path(folder) if folder else checkpoints_dir()
    cards = [c for c in (read_card(p.parent) for p in sorted(folder.glob("*/config.json"))) if c is not None]
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(cards, key=lambda c: (rank.get(c.family, len(rank)), c.name))


# --- models trained in the app: known to the process, shown only in the session that trained them

MAX_TRAINED = 24  # kept at once; the oldest is forgotten (and its folder removed) beyond that
_TRAINED: dict[str, Card] = {}
_FORGET: list = []  # callbacks(name) run when a trained model is forgotten (caches keyed by name)


def register_trained(folder: Path, name: str, title: str) -> Card:
    """Make the evaluated checkpoint in ``folder`` loadable under ``name`` (unique per job, not
    guessable: only the session that trained it is told it)."""
    c = read_card(Path(folder), name=name, title=title)
    if c is None:
        raise ValueError(f"{folder} holds no evaluated checkpoint")
    for old in [n for n, k in _TRAINED.items() if k.folder == c.folder]:  # a resumed run replaces its past self
        del _TRAINED[old]
        for forget in _FORGET:
            forget(old)
    _TRAINED[name] = c
    while len(_TRAINED) > MAX_TRAINED:
        old = next(iter(_TRAINED))
        gone = _TRAINED.pop(old)
        for forget in _FORGET:
            forget(old)
        shutil.rmtree(gone.folder, ignore_errors=True)
    return c


_EXPLORED: dict[str, Card] = {}  # models given to vaelab.explore: in memory, shown to every visitor


def register_explored(c: Card) -> Card:
    """Make an explored model (:mod:`vaelab.app.explored`) known under ``c.name``."""
    _EXPLORED[c.name] = c
    return c


def explored_cards() -> list[Card]:
    return list(_EXPLORED.values())


def trained_cards(names) -> list[Card]:
    """The cards of ``names`` that are still known (a session's own models)."""
    return [_TRAINED[n] for n in names or () if n in _TRAINED]


def beta_series(cards: list[Card]) -> list[Card]:
    """The largest set of (at least three) models that differ only in β — same design, data and
    variant — ordered by β; ``[]`` when there is none."""
    groups: dict[str, list[Card]] = {}
    for c in cards:
        if c.beta is not None:
            groups.setdefault(c.design, []).append(c)
    best = max(groups.values(), key=len, default=[])
    return sorted(best, key=lambda c: c.beta) if len({c.beta for c in best}) >= 3 else []


def choices(cards: list[Card]) -> list[tuple[str, str]]:
    """A picker's ``(label, name)`` pairs: short labels (name and latent size), detail shown
    beside the picker once chosen."""
    return [(c.short_label, c.name) for c in cards]


def card(name: str) -> Card:
    if name in _TRAINED:
        return _TRAINED[name]
    if name in _EXPLORED:
        return _EXPLORED[name]
    for c in scan_checkpoints():
        if c.name == name:
            return c
    raise KeyError(f"no model named {str(name)[:80]!r} here: choose one from the list")
