"""The checkpoint catalogue: which evaluated checkpoints the app can show, and how to label them.

Read from each checkpoint folder's JSON files only (no weights are loaded): what a model *is*
comes from the ``info`` its ``config.json`` records (:func:`vaelab.checkpoint.read_info`), so the
app never names a variant to decide what a model can do.
"""

from __future__ import annotations

import json
import math
import os
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

    @property
    def short_label(self) -> str:
        """``"vae-2d · 2-D"``: what a picker shows."""
        return f"{self.name} · {self.size}"

    @property
    def label(self) -> str:
        extra = f" — for: {self.purpose}" if self.purpose else ""
        data = "8×8 digits" if self.dataset == "digits" else self.dataset.upper()
        return f"[{self.family}] {self.name} · {data}, {self.size} · {self.description}{extra}"


def short_description(text: str) -> str:
    """The registry's one-liner without architecture details: "Vanilla autoencoder, shallow MLP
    784-32-784" -> "Vanilla autoencoder"; a bare name before a colon keeps what follows it."""
    head, _, tail = text.partition(":")
    head = head.split(",")[0].strip()
    if tail and len(head.split()) <= 2:
        head = f"{head}: {tail.strip().split(';')[0]}"
    return head


def scan_checkpoints(folder: str | os.PathLike | None = None) -> list[Card]:
    """Every evaluated checkpoint in ``folder`` (``config.json`` + weights + metrics + artifacts)
    whose variant this library knows, grouped by family in the registry's order. What a model is
    comes from the ``info`` its config.json records (:func:`vaelab.checkpoint.read_info`)."""
    from vaelab.checkpoint import CheckpointError, read_info
    from vaelab.registry import FAMILIES, get_entry

    folder = Path(folder) if folder else checkpoints_dir()
    cards = []
    for config_path in sorted(folder.glob("*/config.json")):
        ckpt = config_path.parent
        if ckpt.name.startswith(".") or not all((ckpt / f).is_file() for f in
                                                ("model.safetensors", "metrics.json", "artifacts.safetensors")):
            continue  # still training, or not evaluated yet
        try:
            meta = json.loads(config_path.read_text())
            entry = get_entry(meta["variant"])
            info = read_info(ckpt)
        except (KeyError, ValueError, OSError, CheckpointError):
            continue  # a classifier, or a variant from a newer vaelab
        config = meta.get("config", {})
        shapes = [tuple(s) for s in info["latent_shapes"]]
        gaussian = info["latent"] == "continuous" and info["variational"]
        discrete = info["latent"] == "discrete"
        dims = int(config.get("latent_dim", 0)) if discrete else sum(math.prod(s) for s in shapes)
        cards.append(Card(
            name=ckpt.name, folder=ckpt, variant=entry.name, family=entry.family,
            description=short_description(entry.description), purpose=meta.get("purpose", ""),
            dataset=meta.get("dataset") or "digits",
            image_shape=tuple(config.get("image_shape", (1, 28, 28))),
            latent_dim=dims, variational=info["variational"],
            has_sliders=gaussian and len(shapes) == 1 and len(shapes[0]) == 1,
            size=f"discrete codes, K={info['codebook_size']}" if discrete else f"{dims}-D",
            beta=float(config["beta"]) if info["variational"] and "beta" in config else None,
            design=json.dumps({k: v for k, v in config.items() if k != "beta"}, sort_keys=True)
                   + f"|{meta.get('dataset')}|{entry.name}"))
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(cards, key=lambda c: (rank.get(c.family, len(rank)), c.name))


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
    for c in scan_checkpoints():
        if c.name == name:
            return c
    raise KeyError(f"no evaluated checkpoint named {name!r} in {checkpoints_dir()}")
