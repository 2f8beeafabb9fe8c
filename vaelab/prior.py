"""A learned prior over discrete codes: a gated PixelCNN over code-index maps.

A VQ-VAE has no prior of its own: it learns codes, not how often they occur together. To sample
it, the VQ-VAE papers fit an autoregressive model to the index maps of the training set and
decode what it draws (van den Oord, Vinyals & Kavukcuoglu 2017, section 4; Razavi, van den Oord
& Vinyals 2019, section 3.2, one prior per level with the bottom conditioned on the top). The
autoregressive model here is the gated PixelCNN of van den Oord, Kalchbrenner, Vinyals,
Espeholt, Graves & Kavukcuoglu, "Conditional Image Generation with PixelCNN Decoders", NeurIPS
2016:

- a **vertical stack** (masked ``k×k`` convolutions that see the current row and the rows
  above) and a **horizontal stack** (masked ``1×k`` convolutions that see the current row to
  the left); the vertical stack reaches the horizontal one only after a one-row shift down, so
  position ``(i, j)`` sees exactly the positions before it in raster order, with no blind spot
  (paper, section 2.2);
- **gated units** ``tanh(W_f * x + V_f c) ⊙ σ(W_g * x + V_g c)`` in both stacks (paper, eq. 2–4),
  where ``c`` is an optional conditioning map: for VQ-VAE-2's bottom prior, the top level's
  indices, embedded, upsampled to the bottom grid and added inside every gate;
- residual connections on the horizontal stack after the first layer.

It is trained with cross-entropy on the codes of the training set (encoded once, in eval mode)
and sampled ancestrally, position by position, with a temperature (``logits / T``; ``T = 0``
takes the argmax).

Shape conventions: an index map is ``(B, h, w)``; a one-dimensional index shape ``(N,)`` (a
Gumbel-softmax VAE's ``N`` categorical variables) is treated as a ``1×N`` grid. A
:class:`CodePrior` holds one :class:`GatedPixelCNN` per level of the model, in the order of
``Latent.indices`` (bottom first, top last); level ``l`` is conditioned on level ``l + 1``.

The network is :mod:`vaelab.nn.pixelcnn`; the model side (holding a prior, sampling through
it) is :class:`vaelab.models.code_prior.CodePriorMixin`. This module trains a prior, and saves,
loads and attaches it. On disk the prior sits beside the model it belongs to: ``CHECKPOINT/prior/`` holds
``config.json`` (the per-level configs and the SHA-256 of the base model's weights),
``model.safetensors`` (all levels in one file: ``levels.0.*`` is the bottom, ``levels.1.*`` the
top) and ``history.json``. It is written atomically, like a checkpoint. ``load_checkpoint``
calls :func:`attach_if_present`, which attaches it to any model that mixes in
:class:`CodePriorMixin`; the model then reports ``has_prior`` and ``can_sample``. Re-saving the
base model with :func:`vaelab.checkpoint.save_checkpoint` drops the ``prior/`` folder (it carries
over files only), and a prior whose recorded weights hash no longer matches is not attached: a
prior fits the codes of one set of weights.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaelab.folders import (CONFIG, HISTORY, WEIGHTS, CheckpointError, atomic_folder, fingerprint,
                            load_weights, read_json, write_json, write_weights)
from vaelab.nn.pixelcnn import (CodePrior, GatedLayer, GatedPixelCNN, MaskedConv2d, PixelCNNConfig,  # noqa: F401
                                PriorConfig, _levels, as_grid, draw)
from vaelab.registry import config_from_dict

PRIOR_DIR = "prior"  # sub-folder of a checkpoint holding its code prior
FORMAT_VERSION = 1
KIND = "gated-pixelcnn"


@dataclass(frozen=True)
class PriorSettings:
    epochs: int = 10  # passes over the training set's code maps
    batch_size: int = 64  # code maps per optimisation step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # seeds initialisation and shuffling
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    progress: bool = True  # tqdm progress bars
    encode_batch_size: int = 1000  # images per batch when encoding the dataset to codes
    val_batch_size: int = 1000  # code maps per batch for the validation pass


# --- training -----------------------------------------------------------------------------------

@torch.no_grad()
def encode_indices(model, x: torch.Tensor, y: torch.Tensor | None = None,
                   batch_size: int = 1000) -> tuple[torch.Tensor, ...]:
    """The model's code indices for images ``x`` ``(N, C, H, W)``, in eval mode, in batches:
    a tuple with one ``(N, *index_shape)`` int64 tensor per level (bottom first)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        parts: list[tuple[torch.Tensor, ...]] = []
        for i in range(0, len(x), batch_size):
            yb = None if y is None else y[i:i + batch_size].to(device)
            parts.append(_levels(model.encode(x[i:i + batch_size].to(device), yb).indices))
    finally:
        model.train(was_training)
    return tuple(torch.cat([p[level] for p in parts]).long() for level in range(len(parts[0])))


@torch.no_grad()
def evaluate_prior(prior: CodePrior, codes: tuple[torch.Tensor, ...], batch_size: int = 1000) -> dict[str, float]:
    """Mean nats per code map over ``codes``: ``total`` and one entry per level (``level0`` = bottom)."""
    was_training = prior.training
    prior.eval()
    sums = [0.0] * len(prior.levels)
    n = len(codes[0])
    for i in range(0, n, batch_size):
        for level, v in enumerate(prior.nll_per_level(tuple(c[i:i + batch_size] for c in codes))):
            sums[level] += float(v.sum())
    prior.train(was_training)
    out = {f"level{level}": s / n for level, s in enumerate(sums)}
    out["total"] = sum(sums) / n
    return out


def train_prior(model, data, config: PriorConfig = PriorConfig(), settings: PriorSettings | None = None,
                out_dir: str | os.PathLike | None = None) -> tuple[CodePrior, dict]:
    """Fit a :class:`CodePrior` to ``model``'s codes of ``data.train_x``; validate on ``data.test_x``.

    With ``out_dir`` (the base model's checkpoint folder) the prior is saved into
    ``out_dir/prior/`` after every epoch. Returns the prior (eval mode) and the history.
    """
    settings = settings or PriorSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    device = next(model.parameters()).device
    start = time.perf_counter()
    train_codes = encode_indices(model, data.train_x, data.train_y, settings.encode_batch_size)
    test_codes = encode_indices(model, data.test_x, data.test_y, settings.encode_batch_size)
    encode_seconds = time.perf_counter() - start
    prior = CodePrior.for_model(model, config).to(device)
    optimiser = torch.optim.Adam(prior.parameters(), lr=settings.lr)
    shuffle = torch.Generator(device="cpu").manual_seed(settings.seed)
    n = len(train_codes[0])
    history = {"settings": asdict(settings), "config": asdict(config), "dataset": data.name,
               "device": str(device), "encode_seconds": encode_seconds,
               "units": "nats per code map (summed over positions; level0 = bottom)",
               "epochs": [], "status": "running"}
    for epoch in range(settings.epochs):
        prior.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=shuffle).to(device)
        sums = [torch.zeros((), device=device) for _ in prior.levels]
        bar = tqdm(range(0, n, settings.batch_size), desc=f"prior {epoch + 1}/{settings.epochs}",
                   leave=False, disable=not settings.progress, unit="batch")
        for i in bar:
            idx = perm[i:i + settings.batch_size]
            per_level = prior.nll_per_level(tuple(c[idx] for c in train_codes))  # list of (b,)
            loss = sum(v.mean() for v in per_level)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"prior loss became {float(loss)} at epoch {epoch + 1}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            for level, v in enumerate(per_level):
                sums[level] += v.detach().sum()
        train = {f"level{level}": float(s) / n for level, s in enumerate(sums)}
        train["total"] = sum(train.values())
        record = {"epoch": epoch + 1, "train": train,
                  "val": evaluate_prior(prior, test_codes, settings.val_batch_size),
                  "seconds": time.perf_counter() - t0}
        history["epochs"].append(record)
        if settings.progress:
            tqdm.write(f"prior {epoch + 1}/{settings.epochs}: train {train['total']:.3f}  "
                       f"val {record['val']['total']:.3f} nats/map  ({record['seconds']:.1f}s)")
        if out_dir is not None:
            save_prior(prior, out_dir, history)
    history["status"] = "completed"
    if out_dir is not None:
        save_prior(prior, out_dir, history)
    return prior.eval(), history


# --- saving and loading -------------------------------------------------------------------------

def weights_fingerprint(checkpoint: str | os.PathLike) -> str | None:
    """SHA-256 of the base checkpoint's weights (None if it has none)."""
    return fingerprint(Path(checkpoint) / WEIGHTS)


def save_prior(prior: CodePrior, checkpoint: str | os.PathLike, history: dict | None = None) -> Path:
    """Write ``prior`` to ``checkpoint/prior/`` atomically (temporary folder, then rename)."""
    out = Path(checkpoint) / PRIOR_DIR
    with atomic_folder(out) as tmp:
        write_json(tmp / CONFIG, {"format": FORMAT_VERSION, "kind": KIND,
                                  "levels": [asdict(c) for c in prior.configs],
                                  "base_weights_sha256": weights_fingerprint(checkpoint)})
        write_weights(prior, tmp / WEIGHTS)
        if history is not None:
            write_json(tmp / HISTORY, history)
    return out


def read_prior_config(checkpoint: str | os.PathLike) -> dict:
    meta = read_json(Path(checkpoint) / PRIOR_DIR, CONFIG)
    if meta is None:
        raise CheckpointError(f"{Path(checkpoint) / PRIOR_DIR} holds no {CONFIG}")
    return meta


def load_prior(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> CodePrior:
    """Rebuild the prior saved in ``checkpoint/prior/`` (eval mode)."""
    folder = Path(checkpoint) / PRIOR_DIR
    meta = read_prior_config(checkpoint)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{folder}: unknown prior kind {meta.get('kind')!r}; this vaelab reads {KIND!r}")
    prior = CodePrior(tuple(config_from_dict(PixelCNNConfig, c) for c in meta["levels"]))
    load_weights(prior, folder, device)
    return prior.to(device).eval()


def attach_if_present(model, checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> bool:
    """Attach ``checkpoint/prior/`` to ``model`` when that folder exists (the hook
    :meth:`CodePriorMixin.attach_extras` calls this). Returns whether a prior was attached. A
    prior whose recorded weights hash differs from the checkpoint's weights is left out with a
    warning (it was fitted to other codes)."""
    if not (Path(checkpoint) / PRIOR_DIR / CONFIG).is_file():
        return False
    recorded = read_prior_config(checkpoint).get("base_weights_sha256")
    if recorded is not None and recorded != weights_fingerprint(checkpoint):
        warnings.warn(f"{Path(checkpoint) / PRIOR_DIR} was trained on other weights than "
                      f"{checkpoint}/{WEIGHTS}; not attached. Retrain it with train-prior.",
                      stacklevel=2)
        return False
    try:
        model.attach_prior(load_prior(checkpoint, device))
    except ValueError as error:
        raise CheckpointError(f"{checkpoint}: {error}") from error
    return True


__all__ = [
    "PriorConfig", "PixelCNNConfig", "PriorSettings", "MaskedConv2d", "GatedLayer", "GatedPixelCNN",
    "CodePrior", "encode_indices", "evaluate_prior", "train_prior", "save_prior",
    "load_prior", "attach_if_present", "draw", "as_grid",
]
