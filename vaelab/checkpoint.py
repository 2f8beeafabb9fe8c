"""Checkpoints as folders: ``config.json`` + ``model.safetensors`` + ``history.json``
(+ ``metrics.json`` and cached artifacts added later by evaluation).

Loading needs nothing but the folder and never unpickles: the config is JSON naming a registered
variant, the weights are safetensors. Saving is atomic: everything is written to a temporary
folder beside the target, which then replaces the target by rename, so a crash mid-save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_model, save_model

from vaelab.registry import config_from_dict, config_to_dict, get_entry

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
HISTORY = "history.json"
METRICS = "metrics.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """The folder is not a readable vaelab checkpoint; the message says what is wrong."""


def variant_name(model) -> str:
    """The registry name a model was created under (stored on it by :func:`vaelab.create`)."""
    name = getattr(model, "variant", None)
    if name is None:
        raise ValueError("model has no registry name; create it with vaelab.create(name, ...)")
    return name


def save_checkpoint(model, out_dir: str | os.PathLike, *, dataset: str | None = None,
                    seed: int | None = None, history: list | dict | None = None,
                    extra: dict[str, Any] | None = None, extra_files: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to the folder ``out_dir`` atomically; returns the folder.

    Files already in an existing checkpoint folder that this call does not write (metrics,
    cached artifacts) are carried over. ``extra_files`` maps file names to JSON-able objects.
    """
    from vaelab.version import __version__

    out = Path(out_dir)
    with atomic_folder(out) as tmp:
        if out.is_dir():  # keep what evaluation and priors stored beside the weights
            for f in out.iterdir():
                if f.name in (CONFIG, WEIGHTS, HISTORY):
                    continue
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
                elif f.is_dir():
                    shutil.copytree(f, tmp / f.name)
        meta = {
            "format": FORMAT_VERSION,
            "variant": variant_name(model),
            "config": config_to_dict(model.config),
            "dataset": dataset,
            "seed": seed,
            "vaelab_version": __version__,
            **(extra or {}),
        }
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
        write_weights(model, tmp / WEIGHTS)
        if history is not None:
            (tmp / HISTORY).write_text(json.dumps(history, indent=2))
        for name, obj in (extra_files or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2))
    return out


@contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; when the block succeeds it replaces ``out`` by
    rename, when it fails it is removed and ``out`` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_weights(module, path: str | os.PathLike) -> None:
    """safetensors of ``module``'s state (written in eval mode, its mode restored)."""
    was_training = module.training
    save_model(module.eval(), str(path))
    module.train(was_training)


def compact_weights(folder: str | os.PathLike) -> bool:
    """Store the float32 tensors of ``folder``'s weights as float16 (half the file; loading
    restores float32, as ``load_state_dict`` copies into the model's float32 tensors). Recorded as
    ``"weights_dtype": "float16"`` in config.json; returns False when there was nothing to convert.
    Evaluate after compacting: the metrics should describe the weights that ship. A code prior
    keyed to the old weights' hash would no longer attach, so compact before training one."""
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    state = load_file(str(folder / WEIGHTS))
    if not any(t.dtype == torch.float32 for t in state.values()):
        return False
    half = {k: (t.half() if t.dtype == torch.float32 else t).contiguous() for k, t in state.items()}
    meta = {**read_config(folder), "weights_dtype": "float16"}
    with atomic_folder(folder) as tmp:  # the whole folder is swapped in, never half-written
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        save_file(half, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
    return True


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp`` with renames; the old folder is removed only afterwards."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_config(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a vaelab checkpoint: it has no {CONFIG}. "
                              "A checkpoint folder holds config.json and model.safetensors.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from error


def load_checkpoint(folder: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the model saved in ``folder`` (in eval mode); needs only the folder. A code prior
    saved in ``folder/prior/`` (:mod:`vaelab.prior`) is attached to the model."""
    folder = Path(folder)
    meta = read_config(folder)
    try:
        entry = get_entry(meta["variant"])
    except KeyError as error:
        raise CheckpointError(f"{folder}: {error.args[0]}") from None
    config = config_from_dict(entry.config_cls, meta.get("config", {}))
    model = entry.model_cls(config)
    model.variant = entry.name
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder} has a config but no {WEIGHTS}")
    try:
        missing, unexpected = load_model(model, str(weights), strict=True, device=str(device))
    except Exception as error:
        raise CheckpointError(f"{weights} does not match a {entry.name} model with this config: {error}") from error
    from vaelab.prior import attach_if_present  # here, not at the top: prior imports this module

    attach_if_present(model, folder, device)  # a code prior in folder/prior/, when there is one
    return model.to(device).eval()


def read_json(folder: str | os.PathLike, name: str, default=None):
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.is_file() else default
