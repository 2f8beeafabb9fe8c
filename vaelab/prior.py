"""Training a learned prior over discrete codes.

A VQ-VAE has no prior of its own: it learns codes, not how often they occur together. To sample
it, the VQ-VAE papers fit an autoregressive model to the index maps of the training set and
decode what it draws (van den Oord, Vinyals & Kavukcuoglu 2017, section 4; Razavi, van den Oord
& Vinyals 2019, section 3.2, one prior per level with the bottom conditioned on the top). The
autoregressive model is the gated PixelCNN (:mod:`vaelab.nn.pixelcnn`).

:func:`train_prior` encodes the training set and the validation split to code maps once (eval
mode) and fits the prior with cross-entropy through the one training loop
(:class:`vaelab.train.Training`, via :class:`PriorObjective`). It is sampled ancestrally,
position by position, with a temperature (``logits / T``; ``T = 0`` takes the argmax).

On disk the prior sits beside the model it belongs to, in ``CHECKPOINT/prior/`` (``config.json``
with the per-level configs and the SHA-256 of the base model's weights, ``model.safetensors``
with all levels, ``history.json``), written atomically; that folder is read and written by
:mod:`vaelab.models.code_prior`, whose mixin attaches it when the model is loaded (the model then
reports ``has_prior`` and ``can_sample``). Re-saving the base model carries ``prior/`` over, but a
prior whose recorded weights hash no longer matches is not attached: a prior fits the codes of
one set of weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vaelab.data import Dataset
from vaelab.folders import CONFIG
from vaelab.models.code_prior import (KIND, PRIOR_DIR, attach_if_present, load_prior,  # noqa: F401
                                      read_prior_config, weights_fingerprint, write_prior)
from vaelab.nn.pixelcnn import (CodePrior, GatedLayer, GatedPixelCNN, MaskedConv2d, PixelCNNConfig,  # noqa: F401
                                PriorConfig, _levels, as_grid, draw)
from vaelab.models.base import LossOutput, Trainable



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


class PriorObjective(Trainable):
    """What the training loop trains when it fits a prior: the prior's negative log-likelihood
    of code maps. Its "images" are the code maps of all levels flattened side by side,
    ``(B, Σ h·w)`` int64, so the loop's index-slice batching works on them unchanged."""

    def __init__(self, prior: CodePrior):
        super().__init__()
        self.prior = prior
        self.sizes = [math.prod(as_grid(shape)) for shape in prior.index_shapes]

    def levels(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, Σ h·w)`` -> one ``(B, *index_shape)`` tensor per level."""
        parts = torch.split(flat, self.sizes, dim=1)
        return tuple(p.reshape(len(flat), *shape) for p, shape in zip(parts, self.prior.index_shapes))

    def loss(self, x: torch.Tensor, y=None, step: int = 0) -> LossOutput:
        per_level = self.prior.nll_per_level(self.levels(x))  # list of (B,), nats per code map
        terms = {f"level{level}": v.mean() for level, v in enumerate(per_level)}
        terms["total"] = sum(terms.values())
        return LossOutput(terms["total"], terms)


def code_dataset(model, data, batch_size: int = 1000) -> Dataset:
    """``data`` with its images replaced by ``model``'s code maps (levels flattened side by side);
    the validation split stays the validation split, the test set is left out."""
    data = data.with_validation()

    def codes(x, y):
        return torch.cat([c.reshape(len(c), -1) for c in encode_indices(model, x, y, batch_size)], 1).cpu()

    empty = torch.zeros(0, dtype=torch.long)
    return Dataset(f"{data.name} codes", codes(data.train_x, data.train_y), data.train_y.cpu(), empty, empty,
                   f"{model.variant if hasattr(model, 'variant') else type(model).__name__} codes of {data.source}",
                   data.num_classes, codes(data.val_x, data.val_y), data.val_y.cpu())


def train_prior(model, data, config: PriorConfig = PriorConfig(), settings: PriorSettings | None = None,
                out_dir: str | os.PathLike | None = None) -> tuple[CodePrior, dict]:
    """Fit a :class:`CodePrior` to ``model``'s codes of ``data``'s training images, validated on
    its validation split, with the one training loop (:class:`vaelab.train.Training`).

    With ``out_dir`` (the base model's checkpoint folder) the prior is saved into
    ``out_dir/prior/`` after every epoch. Returns the prior (eval mode) and the history.
    """
    from vaelab.train import NonFiniteLossError, Stopped, Training, TrainSettings

    settings = settings or PriorSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = next(model.parameters()).device
    start = time.perf_counter()
    codes = code_dataset(model, data, settings.encode_batch_size)
    encode_seconds = time.perf_counter() - start
    torch.manual_seed(settings.seed)
    prior = CodePrior.for_model(model, config)
    train = TrainSettings(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                          seed=settings.seed, device=str(device), progress=settings.progress,
                          val_batch_size=settings.val_batch_size)

    def save(objective, folder, history, training_state):  # the prior's own folder, beside the model
        save_prior(objective.prior, folder, history)

    run = Training(PriorObjective(prior), codes, train, out_dir, save=save,
                   history_extra={"prior_settings": asdict(settings), "config": asdict(config),
                                  "encode_seconds": encode_seconds,
                                  "units": "nats per code map (summed over positions; level0 = bottom)"})
    for event in run:
        if isinstance(event, Stopped) and event.reason.startswith("non-finite"):
            raise NonFiniteLossError(f"prior: {event.message}")
    return prior.eval(), run.history


# --- saving and loading -------------------------------------------------------------------------

def save_prior(prior: CodePrior, checkpoint: str | os.PathLike, history: dict | None = None) -> Path:
    """Write ``prior`` to ``checkpoint/prior/`` atomically and refresh the model's recorded info
    (it now has a prior and can sample)."""
    out = write_prior(prior, checkpoint, history)
    if (Path(checkpoint) / CONFIG).is_file():
        from vaelab.checkpoint import describe

        describe(checkpoint)
    return out


__all__ = [
    "PriorConfig", "PixelCNNConfig", "PriorSettings", "MaskedConv2d", "GatedLayer", "GatedPixelCNN",
    "CodePrior", "encode_indices", "train_prior", "save_prior",
    "load_prior", "attach_if_present", "draw", "as_grid", "PriorObjective", "code_dataset",
]
