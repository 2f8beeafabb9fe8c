"""One training loop for every variant.

Data stay in memory as tensors on the training device and batches are index slices (no
per-sample DataLoader overhead). The loop asks the model for its phases (greedy pretraining
first, for the stacked autoencoder), its optimiser groups (generator and discriminator, for
adversarial models) and its loss; it never looks at the model's class. Each epoch records the
mean of every loss term on the training and validation sets and the time taken; with an output
folder, a checkpoint is saved atomically after every epoch, so a run that stops early (a
non-finite loss, an interruption) keeps its last good epoch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from vaelab.checkpoint import save_checkpoint
from vaelab.schedules import lr_factor


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN/inf loss; the message says where and what was kept."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10  # epochs of the main phase (the stacked AE's pretraining comes on top)
    batch_size: int = 128  # images per optimisation step
    lr: float = 1e-3  # Adam learning rate
    lr_schedule: str = "constant"  # "constant", or "cosine": decays to lr·lr_floor by the last step
    lr_floor: float = 0.01  # cosine schedule: final learning rate as a fraction of lr
    start_step: int = 0  # step count already done (resuming): schedules (KL warm-up, τ, lr) continue from it
    seed: int = 0  # seeds shuffling, noise and sampling in the loss
    device: str = "auto"  # "auto" (cuda when present, else cpu), "cpu", "cuda", "cuda:1", ...
    threads: int | None = None  # torch.set_num_threads for CPU training; None leaves torch's default
    binarize: str = "none"  # "dynamic": each batch is re-sampled as Bernoulli(pixel) (Salakhutdinov & Murray 2008)
    grad_clip: float | None = None  # clip the gradient norm of each group to this value
    progress: bool = True  # show tqdm progress bars
    val_batch_size: int = 1000  # batch size for the validation pass


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _binarize(x: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    if mode == "none":
        return x
    if mode == "dynamic":
        return torch.bernoulli(x, generator=generator)
    raise ValueError(f"unknown binarization {mode!r}; choose none or dynamic")


@torch.no_grad()
def evaluate_loss(model, x: torch.Tensor, y: torch.Tensor, settings: TrainSettings,
                  step: int = 0) -> dict[str, float]:
    """Mean of every loss term over ``x`` (eval mode, fixed binarization noise)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(settings.seed + 1)
    sums: dict[str, float] = {}
    for i in range(0, len(x), settings.val_batch_size):
        xb = _binarize(x[i:i + settings.val_batch_size], settings.binarize, gen)
        out = model.loss(xb, y[i:i + settings.val_batch_size], step)
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(xb)
    model.train(was_training)
    return {k: v / len(x) for k, v in sums.items()}


def fit(model, data, settings: TrainSettings | None = None, out_dir: str | Path | None = None,
        callback: Callable[[dict], None] | None = None, **overrides) -> dict:
    """Train ``model`` on ``data`` (a :class:`vaelab.data.Dataset`); returns the history.

    ``overrides`` replace fields of ``settings`` (``fit(model, data, epochs=5)``). With
    ``out_dir``, a checkpoint folder is written after each epoch. ``callback(record)`` is called
    after each epoch with that epoch's record (the app streams live charts from it).
    Raises :class:`NonFiniteLossError` on a NaN/inf loss, leaving the last good checkpoint.
    """
    settings = settings or TrainSettings()
    if overrides:
        settings = TrainSettings(**{**asdict(settings), **overrides})
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    shuffle = torch.Generator(device="cpu").manual_seed(settings.seed)
    model.to(device)
    x, y = data.train_x.to(device), data.train_y.to(device)
    vx, vy = data.test_x.to(device), data.test_y.to(device)
    n, bs = len(x), settings.batch_size
    history = {"settings": asdict(settings), "dataset": data.name, "device": str(device),
               "epochs": [], "status": "running"}
    step = settings.start_step
    steps_per_epoch = -(-n // bs)
    total_steps = settings.start_step + steps_per_epoch * sum(e for _, e in model.training_phases(settings.epochs))
    epoch_index = 0
    for phase, n_epochs in model.training_phases(settings.epochs):
        model.set_phase(phase)
        groups = model.optimizer_groups()
        optimisers = {g: torch.optim.Adam(params, lr=settings.lr) for g, params in groups.items()}
        names = list(optimisers)
        for epoch in range(n_epochs):
            model.train()
            start = time.perf_counter()
            perm = torch.randperm(n, generator=shuffle).to(device)
            sums: dict[str, torch.Tensor] = {}
            bar = tqdm(range(0, n, bs), desc=f"{phase} {epoch + 1}/{n_epochs}", leave=False,
                       disable=not settings.progress, unit="batch")
            for i in bar:
                idx = perm[i:i + bs]
                xb = _binarize(x[idx], settings.binarize)
                if settings.lr_schedule != "constant":
                    lr = settings.lr * lr_factor(step, settings.lr_schedule, total_steps, settings.lr_floor)
                    for opt in optimisers.values():
                        for pg in opt.param_groups:
                            pg["lr"] = lr
                out = model.loss(xb, y[idx], step)
                if not torch.isfinite(out.total):
                    where = f"{phase} epoch {epoch + 1}, step {step}"
                    saved = out_dir is not None and (Path(out_dir) / "model.safetensors").is_file()
                    kept = (f"The last good checkpoint is kept in {out_dir}." if saved
                            else "No checkpoint had been written yet.")
                    history["status"] = f"stopped: non-finite loss at {where}"
                    raise NonFiniteLossError(
                        f"loss became {float(out.total.detach())} at {where}; training stopped. {kept} "
                        "Try a lower learning rate (--lr), gradient clipping (grad_clip) or a KL warm-up.")
                for j, g in enumerate(names):
                    optimisers[g].zero_grad(set_to_none=True)
                    out.objective(g).backward(inputs=groups[g], retain_graph=j < len(names) - 1)
                    if settings.grad_clip:
                        torch.nn.utils.clip_grad_norm_(groups[g], settings.grad_clip)
                    optimisers[g].step()
                for k, v in out.terms.items():
                    v = v.detach()
                    sums[k] = sums[k] + v * len(idx) if k in sums else v * len(idx)
                step += 1
                if settings.progress and step % 25 == 0:
                    bar.set_postfix(loss=f"{float(out.total.detach()):.3f}")
            seconds = time.perf_counter() - start
            epoch_index += 1
            record = {
                "epoch": epoch_index, "phase": phase, "step": step,
                "train": {k: float(v) / n for k, v in sums.items()},
                "val": evaluate_loss(model, vx, vy, settings, step),
                "seconds": seconds, "images_per_second": n / seconds,
            }
            history["epochs"].append(record)
            if settings.progress:
                tqdm.write(f"{phase} {epoch + 1}/{n_epochs}: train {record['train']['total']:.4f}"
                           f"  val {record['val']['total']:.4f}  ({seconds:.1f}s)")
            if out_dir:
                save_checkpoint(model, out_dir, dataset=data.name, seed=settings.seed,
                                history={**history, "status": "running"})
            if callback:
                callback(record)
    history["status"] = "completed"
    if out_dir:
        save_checkpoint(model, out_dir, dataset=data.name, seed=settings.seed, history=history)
    return history
