"""One training loop for every variant, as a stream of events.

:class:`Training` is an iterator of events — :class:`Step` (the loss terms of one optimisation
step), :class:`EpochEnd` (the epoch's record with its validation numbers), :class:`Saved` /
:class:`NotSaved` (the checkpoint), :class:`Stopped` (a stop was asked for, early stopping, a
step limit or a non-finite loss) and :class:`Finished`. A UI consumes it and can call
:meth:`Training.stop` at any time: the loop stops between two steps and the folder keeps the last
finished epoch. :func:`fit` is the same stream consumed to the end, for scripts and the CLI.

The loop asks the model for its phases (greedy pretraining first, for the stacked autoencoder),
its optimiser groups (generator and discriminator, for adversarial models) and its loss; it never
looks at the model's class. Data stay in memory as tensors on the training device and batches are
index slices (no per-sample DataLoader overhead). Validation runs on the held-out split carved
from the training data (:meth:`vaelab.data.Dataset.with_validation`); the test set is left to
``eval``.

**Exact resume.** After every epoch the checkpoint folder receives, next to the weights, the
optimiser moments, the step count and the random-number generators' states (safetensors + JSON,
no pickle). ``fit(..., resume=True)`` restores all of it, so training 6 epochs in one go and
training 3, stopping, and resuming for the rest give the same weights bit for bit on the CPU.

**Nothing non-finite is saved.** An epoch whose validation loss or any weight is NaN/inf is not
written: the previous checkpoint stays as it was, and the message says which epoch it holds.

**Scale-out.** Started by ``torchrun --nproc-per-node N``, the loop trains with PyTorch's
DistributedDataParallel (gloo on CPU, nccl on GPUs): every rank draws the same shuffled batch and
takes its shard (``batch[rank::N]``), gradients are averaged across ranks, and rank 0 alone shows
progress and writes checkpoints.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from vaelab.checkpoint import read_training_state, save_checkpoint
from vaelab.folders import WEIGHTS, load_weights, read_json
from vaelab.schedules import lr_factor

STATE_FORMAT = 1


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN/inf loss; the message says where and what was kept."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10  # epochs of the main phase (the stacked AE's pretraining comes on top)
    batch_size: int = 128  # images per optimisation step (all ranks together under torchrun)
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # > 0: AdamW with this decoupled weight decay (Loshchilov & Hutter 2019)
    lr_schedule: str = "constant"  # "constant"; "cosine": decays to lr·lr_floor by the last step; "onecycle"
    lr_floor: float = 0.01  # cosine schedule: final learning rate as a fraction of lr
    start_step: int = 0  # step count already done elsewhere: schedules (KL warm-up, τ, lr) continue from it
    seed: int = 0  # seeds shuffling, noise and sampling in the loss
    device: str = "auto"  # "auto" (cuda when present, else cpu), "cpu", "cuda", "cuda:1", ...
    threads: int | None = None  # torch.set_num_threads for CPU training; None leaves torch's default
    binarize: str = "none"  # "dynamic": each batch is re-sampled as Bernoulli(pixel) (Salakhutdinov & Murray 2008)
    grad_clip: float | None = None  # clip the gradient norm of each group to this value
    progress: bool = True  # show tqdm progress bars
    val_batch_size: int = 1000  # batch size for the validation pass
    patience: int = 0  # early stopping: stop after this many epochs without a better validation loss; 0 = never
    max_steps: int | None = None  # stop (between steps, keeping the last finished epoch) after this many steps


# --- events ------------------------------------------------------------------------------------

@dataclass
class Step:
    """One optimisation step. ``terms`` are detached scalar tensors (``float()`` them to show)."""

    step: int  # steps done, this one included (start_step counts)
    epoch: int  # the epoch this step belongs to (1-based, across phases)
    phase: str
    terms: dict[str, torch.Tensor]
    lr: float
    batch: int  # index of the step within its epoch (0-based)
    batches: int  # steps per epoch


@dataclass
class EpochEnd:
    record: dict  # epoch, phase, step, train and val terms, seconds, images_per_second

    @property
    def epoch(self) -> int:
        return self.record["epoch"]


@dataclass
class Saved:
    epoch: int
    folder: Path


@dataclass
class NotSaved:
    epoch: int
    reason: str  # what was non-finite, which epoch the folder still holds


@dataclass
class Stopped:
    reason: str  # "requested", "early stopping", "max_steps", "non-finite loss", "non-finite epoch"
    message: str
    epoch: int  # last finished epoch
    step: int


@dataclass
class Finished:
    history: dict


Event = Step | EpochEnd | Saved | NotSaved | Stopped | Finished


# --- helpers -----------------------------------------------------------------------------------

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


@torch.no_grad()
def code_usage(model, x: torch.Tensor, y: torch.Tensor, settings: TrainSettings) -> list[dict] | None:
    """How a discrete model uses its codebook over ``x`` (the validation images, binarised as
    the validation loss sees them), per level: counts per code, codes used and dead, perplexity.
    ``None`` for a model without a codebook. Training records it every epoch, so codebook
    collapse (or its absence with dead-code restart) can be replayed from the history."""
    from vaelab import metrics

    info = getattr(model, "info", None)
    if info is None or info.latent != "discrete" or not info.codebook_size:
        return None
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(settings.seed + 1)
    totals = None
    for i in range(0, len(x), settings.val_batch_size):
        xb = _binarize(x[i:i + settings.val_batch_size], settings.binarize, gen)
        yb = y[i:i + settings.val_batch_size] if info.conditional else None
        idx = model.encode(xb, yb).indices
        counts = [metrics.codebook_usage(level, info.codebook_size) for level in (idx if isinstance(idx, tuple) else (idx,))]
        totals = counts if totals is None else [a + b for a, b in zip(totals, counts)]
    model.train(was_training)
    return [{**metrics.codebook_health(c), "counts": c.tolist()} for c in totals]


def make_optimiser(params, settings: TrainSettings) -> torch.optim.Optimizer:
    """Adam, or AdamW when ``settings.weight_decay`` is set."""
    if settings.weight_decay > 0:
        return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.Adam(params, lr=settings.lr)


def non_finite_tensors(module: torch.nn.Module) -> list[str]:
    """Names of parameters and floating-point buffers holding a NaN or inf."""
    named = [*module.named_parameters(), *module.named_buffers()]
    return [n for n, t in named if t.is_floating_point() and not torch.isfinite(t).all()]


def optimiser_tensors(name: str, optimiser: torch.optim.Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """An optimiser's state dict split into JSON (hyper-parameters) and tensors (moments, step)."""
    state = optimiser.state_dict()
    tensors = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            tensors[f"optimiser.{name}.{index}.{key}"] = torch.as_tensor(value)
    return {"param_groups": state["param_groups"]}, tensors


def load_optimiser(name: str, optimiser: torch.optim.Optimizer, meta: dict, tensors: dict) -> None:
    prefix = f"optimiser.{name}."
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, field_name = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[field_name] = value
    optimiser.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class _LossModule(torch.nn.Module):
    """DistributedDataParallel wraps a module's ``forward``; the training entry is ``loss``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, step):
        out = self.model.loss(x, y, step)
        return out.total, out


def distributed() -> tuple[int, int]:
    """``(rank, world_size)``; sets up the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


# --- the stream --------------------------------------------------------------------------------

class Training:
    """Iterate over it to train: ``for event in Training(model, data, settings, out_dir): ...``.

    ``resume=True`` continues the run saved in ``out_dir`` exactly (weights, optimiser, step,
    random generators); ``settings.epochs`` is the run's total, not what is left. ``save`` writes a
    checkpoint: ``save(model, out_dir, history, training_state)``; by default a vaelab checkpoint
    folder (:func:`vaelab.checkpoint.save_checkpoint`).
    """

    def __init__(self, model, data, settings: TrainSettings | None = None,
                 out_dir: str | os.PathLike | None = None, *, resume: bool = False,
                 save: Callable | None = None, history_extra: dict | None = None):
        self.model = model
        self.data = data if getattr(data, "val_x", None) is not None else data.with_validation()
        self.settings = settings or TrainSettings()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.resume = resume
        self.save = save or self._save_checkpoint
        self.history = {"settings": asdict(self.settings), "dataset": self.data.name,
                        "validation": f"{len(self.data.val_x)} images held out of the training data",
                        "epochs": [], "status": "running", **(history_extra or {})}
        self._stop_requested = False
        self._own_group = False
        self.engine = None

    def stop(self) -> None:
        """Ask the loop to stop before its next step (safe to call from another thread)."""
        self._stop_requested = True

    def _save_checkpoint(self, model, out_dir, history, training_state) -> None:
        save_checkpoint(model, out_dir, dataset=self.data.name, seed=self.settings.seed,
                        history=history, training_state=training_state)

    # -- state for exact resume --
    def _state(self) -> tuple[dict, dict]:
        """What exact resume needs beside the weights: position, optimisers and RNG states."""
        meta = {"format": STATE_FORMAT, **self.position, "optimisers": {},
                "settings": asdict(self.settings)}
        tensors = {"rng.torch": torch.get_rng_state(), "rng.shuffle": self.shuffle.get_state()}
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        for name, opt in self.optimisers.items():
            opt_meta, opt_tensors = optimiser_tensors(name, opt)
            meta["optimisers"][name] = opt_meta
            tensors.update(opt_tensors)
        return meta, tensors

    def _resume_state(self):
        if self.out_dir is None or not (self.out_dir / WEIGHTS).is_file():
            return None
        saved = read_training_state(self.out_dir)
        history = read_json(self.out_dir, "history.json")
        if saved is None or history is None:
            raise ValueError(f"{self.out_dir} holds no training state to resume from (it was saved by "
                             "an older vaelab or by another program); train it again without resume")
        meta, tensors = saved
        for key in ("batch_size", "seed", "binarize", "lr", "lr_schedule", "lr_floor", "weight_decay"):
            before = meta["settings"].get(key, getattr(TrainSettings(), key))
            if before != getattr(self.settings, key):
                raise ValueError(f"cannot resume {self.out_dir} exactly: it was trained with {key}="
                                 f"{before!r}, now {key}={getattr(self.settings, key)!r}")
        return meta, tensors, history

    def __iter__(self) -> Iterator[Event]:
        self._setup()
        try:
            epochs_before = 0
            for phase_index, (phase, n_epochs) in enumerate(self.phases):
                if epochs_before + n_epochs > self.done:  # phases finished before a resume point are skipped
                    finished = yield from self._phase(phase_index, phase, n_epochs, epochs_before)
                    if not finished:
                        return
                epochs_before += n_epochs
            yield from self._finish()
        finally:
            self._leave_group()

    def _leave_group(self) -> None:
        """Under torchrun: wait for every rank (rank 0 may still be writing), then close the
        process group this run opened, so no rank exits with the group's threads running."""
        if self._own_group:
            import gc

            import torch.distributed as dist

            # the DDP wrapper's reducer holds pending work on the group: release it first, or
            # gloo's threads may still own it when the interpreter shuts down (SIGABRT at exit)
            self.engine = None
            gc.collect()
            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()

    # -- the pieces of the loop --
    def _setup(self) -> None:
        """Threads, processes, device, seeds, tensors on the device, and a saved run to resume."""
        s, model = self.settings, self.model
        if s.threads:
            torch.set_num_threads(s.threads)
        import torch.distributed as dist

        already = dist.is_available() and dist.is_initialized()
        self.rank, self.world = distributed()
        self._own_group = self.world > 1 and not already
        self.device = (torch.device("cuda", int(os.environ.get("LOCAL_RANK", self.rank)))
                       if self.world > 1 and torch.cuda.is_available() else pick_device(s.device))
        if s.batch_size % self.world:
            raise ValueError(f"batch_size {s.batch_size} does not split evenly over {self.world} processes")
        torch.manual_seed(s.seed)
        self.shuffle = torch.Generator(device="cpu").manual_seed(s.seed)
        model.to(self.device)
        self.x, self.y = self.data.train_x.to(self.device), self.data.train_y.to(self.device)
        self.val_x, self.val_y = self.data.val_x.to(self.device), self.data.val_y.to(self.device)
        self.history["device"] = str(self.device)
        if self.world > 1:
            self.history["processes"] = self.world
        self.phases = model.training_phases(s.epochs)
        self.steps_per_epoch = -(-len(self.x) // s.batch_size)
        self.total_steps = s.start_step + self.steps_per_epoch * sum(e for _, e in self.phases)
        self.show = s.progress and self.rank == 0
        self.step, self.done, self.best, self.since_best = s.start_step, 0, None, 0
        self.position = self.optimisers = None
        self.saved = self._resume_state() if self.resume else None
        if self.saved is not None:
            meta, tensors, old_history = self.saved
            load_weights(model, self.out_dir, self.device)
            self.step, self.done, self.best = meta["step"], meta["epoch"], meta.get("best")
            self.since_best = 0 if self.best is None else self.done - self.best["epoch"]
            self.history["epochs"] = old_history.get("epochs", [])[:self.done]
            self.history["resumed_after_epoch"] = self.done
            torch.set_rng_state(tensors["rng.torch"])
            self.shuffle.set_state(tensors["rng.shuffle"])
            if "rng.cuda" in tensors and torch.cuda.is_available():
                torch.cuda.set_rng_state(tensors["rng.cuda"])

    def _phase(self, phase_index: int, phase: str, n_epochs: int, epochs_before: int):
        """One phase's epochs with its own optimisers; returns False when training stopped."""
        model = self.model
        model.set_phase(phase)
        self.groups = model.optimizer_groups()
        self.optimisers = {g: make_optimiser(params, self.settings) for g, params in self.groups.items()}
        if self.saved is not None and self.saved[0].get("phase_index") == phase_index:
            for g, opt in self.optimisers.items():  # resuming inside this phase: Adam's moments too
                load_optimiser(g, opt, self.saved[0]["optimisers"][g], self.saved[1])
        self.engine = None
        if self.world > 1:
            if len(self.optimisers) > 1:
                raise ValueError("training on several processes supports models with one optimiser group; "
                                 f"this one has {list(self.optimisers)} (adversarial models train on one process)")
            from torch.nn.parallel import DistributedDataParallel

            self.engine = DistributedDataParallel(_LossModule(model))
        for epoch in range(max(0, self.done - epochs_before), n_epochs):
            label = f"{phase} {epoch + 1}/{n_epochs}"
            sums = yield from self._epoch(epoch_index=epochs_before + epoch + 1, phase=phase, label=label)
            if sums is None:
                return False
            record = yield from self._end_epoch(epochs_before + epoch + 1, phase, phase_index, label, *sums)
            if record is None:
                return False
        return True

    def _epoch(self, epoch_index: int, phase: str, label: str):
        """The steps of one epoch; returns ``(sums of the terms, seconds)``, or None when stopped."""
        s, model = self.settings, self.model
        model.train()
        start = time.perf_counter()
        perm = torch.randperm(len(self.x), generator=self.shuffle).to(self.device)
        sums: dict[str, torch.Tensor] = {}
        bar = tqdm(range(0, len(self.x), s.batch_size), desc=label, leave=False, disable=not self.show, unit="batch")
        for batch, i in enumerate(bar):
            if self._stop_requested or (s.max_steps is not None and self.step >= s.max_steps):
                yield from self._stopped("requested" if self._stop_requested else "max_steps", epoch_index - 1)
                return None
            idx = perm[i:i + s.batch_size]
            if self.world > 1:
                idx = idx[self.rank::self.world]  # this rank's shard of the batch
            out, lr = self._forward(_binarize(self.x[idx], s.binarize), self.y[idx])
            if not self._all_finite(out.total.detach()):
                yield from self._stopped("non-finite loss", epoch_index - 1, where=f"{label}, step {self.step}",
                                         value=float(out.total.detach()))
                return None
            self._backward(out)
            terms = {k: v.detach() for k, v in out.terms.items()}
            for k, v in terms.items():
                sums[k] = sums[k] + v * len(idx) if k in sums else v * len(idx)
            self.step += 1
            if self.show and self.step % 25 == 0:
                bar.set_postfix(loss=f"{float(terms['total']):.3f}")
            yield Step(self.step, epoch_index, phase, terms, lr, batch, self.steps_per_epoch)
        return sums, time.perf_counter() - start

    def _forward(self, xb: torch.Tensor, yb: torch.Tensor):
        """The loss of one batch at this step's learning rate; returns ``(LossOutput, lr)``."""
        s, lr = self.settings, self.settings.lr
        if s.lr_schedule != "constant":
            lr = s.lr * lr_factor(self.step, s.lr_schedule, self.total_steps, s.lr_floor)
            for opt in self.optimisers.values():
                for pg in opt.param_groups:
                    pg["lr"] = lr
        if self.engine is None:
            return self.model.loss(xb, yb, self.step), lr
        return self.engine(xb, yb, self.step)[1], lr

    def _backward(self, out) -> None:
        """Each optimiser group steps on its own objective (one group for most models)."""
        names = list(self.optimisers)
        for j, g in enumerate(names):
            self.optimisers[g].zero_grad(set_to_none=True)
            out.objective(g).backward(inputs=self.groups[g], retain_graph=j < len(names) - 1)
            if self.settings.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.groups[g], self.settings.grad_clip)
            self.optimisers[g].step()

    def _all_finite(self, total: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank (so that all ranks stop together)."""
        if self.world == 1:
            return bool(torch.isfinite(total))
        import torch.distributed as dist

        finite = torch.isfinite(total).float().reshape(1)
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite[0] > 0)

    def _end_epoch(self, epoch_index: int, phase: str, phase_index: int, label: str,
                   sums: dict, seconds: float):
        """Validate, refuse to save anything non-finite, save, and stop early when asked;
        returns the epoch's record, or None when training stopped."""
        n = len(self.x)
        train = {k: float(v) / (n / self.world) for k, v in sums.items()}
        record = {"epoch": epoch_index, "phase": phase, "step": self.step, "train": train,
                  "val": evaluate_loss(self.model, self.val_x, self.val_y, self.settings, self.step),
                  "seconds": seconds, "images_per_second": n / seconds}
        codes = code_usage(self.model, self.val_x, self.val_y, self.settings)
        if codes is not None:
            record["codes"] = codes
        self.history["epochs"].append(record)
        if self.show:
            tqdm.write(f"{label}: train {train['total']:.4f}  val {record['val']['total']:.4f}  ({seconds:.1f}s)")
        yield EpochEnd(record)
        val, bad = record["val"]["total"], non_finite_tensors(self.model)
        if not math.isfinite(val) or bad:
            self.history["epochs"].pop()
            what = " and ".join(([f"non-finite weights ({', '.join(bad[:3])})"] if bad else [])
                                + ([f"validation loss {val}"] if not math.isfinite(val) else []))
            yield from self._stopped("non-finite epoch", epoch_index - 1, where=f"epoch {epoch_index}", detail=what)
            return None
        if self.best is None or val < self.best["val"]:
            self.best, self.since_best = {"epoch": epoch_index, "val": val}, 0
        else:
            self.since_best += 1
        self.history["best_epoch"] = self.best["epoch"]
        self.position = {"step": self.step, "epoch": epoch_index, "phase_index": phase_index, "phase": phase,
                         "best": self.best}
        if self.out_dir is not None and self.rank == 0:
            self.save(self.model, self.out_dir, {**self.history, "status": "running"}, self._state())
            yield Saved(epoch_index, self.out_dir)
        if self.settings.patience and self.since_best >= self.settings.patience:
            yield from self._stopped("early stopping", epoch_index,
                                     detail=f"no better validation loss for {self.since_best} epochs "
                                            f"(best: epoch {self.best['epoch']}, {self.best['val']:.4f})")
            return None
        return record

    def _finish(self):
        self.history["status"] = "completed"
        if self.out_dir is not None and self.rank == 0:
            if self.position is not None:
                state = self._state()
            else:  # resumed a run whose epochs were all done: mark it completed, state unchanged
                state = self.saved[:2] if self.saved is not None else None
            self.save(self.model, self.out_dir, self.history, state)
        yield Finished(self.history)

    def _kept(self, epoch: int) -> str:
        if self.out_dir is None:
            return "Nothing is saved (no output folder)."
        if (self.out_dir / WEIGHTS).is_file():
            held = read_json(self.out_dir, "history.json", {}) or {}
            held_epochs = len(held.get("epochs", []))
            return (f"The last good checkpoint is kept in {self.out_dir}: it holds epoch {held_epochs}."
                    if held_epochs else f"The last good checkpoint is kept in {self.out_dir}.")
        return "No checkpoint had been written yet."

    def _stopped(self, reason: str, epoch: int, where: str = "", value: float | None = None,
                 detail: str = "") -> Iterator[Event]:
        step = self.step
        kept = self._kept(epoch)
        if reason == "non-finite loss":
            message = (f"loss became {value} at {where}; training stopped. {kept} "
                       "Try a lower learning rate (--lr), gradient clipping (grad_clip) or a KL warm-up.")
        elif reason == "non-finite epoch":
            message = (f"{where} ended with {detail}; it was not saved and training stopped. {kept} "
                       "Try a lower learning rate (--lr) or gradient clipping (grad_clip).")
        elif reason == "early stopping":
            message = f"early stopping after epoch {epoch}: {detail}. {kept}"
        else:
            message = f"stopped ({reason}) at step {step}, after epoch {epoch}. {kept}"
        if reason.startswith("non-finite"):
            yield NotSaved(epoch + 1, message)
        self.history["status"] = f"stopped: {reason}"
        self.history["stop_message"] = message
        yield Stopped(reason, message, epoch, step)


def fit(model, data, settings: TrainSettings | None = None, out_dir: str | Path | None = None,
        callback: Callable[[dict], None] | None = None, *, resume: bool = False, **overrides) -> dict:
    """Train ``model`` on ``data`` (a :class:`vaelab.data.Dataset`); returns the history.

    ``overrides`` replace fields of ``settings`` (``fit(model, data, epochs=5)``). With
    ``out_dir``, a checkpoint folder is written after each epoch; ``resume=True`` continues the
    run saved there exactly. ``callback(record)`` is called after each epoch with its record.
    Raises :class:`NonFiniteLossError` on a NaN/inf loss or epoch, leaving the last good
    checkpoint. For step-by-step events and stopping, iterate over :class:`Training` instead.
    """
    settings = settings or TrainSettings()
    if overrides:
        settings = TrainSettings(**{**asdict(settings), **overrides})
    run = Training(model, data, settings, out_dir, resume=resume)
    for event in run:
        if isinstance(event, EpochEnd) and callback:
            callback(event.record)
        elif isinstance(event, Stopped) and event.reason.startswith("non-finite"):
            raise NonFiniteLossError(event.message)
    return run.history
