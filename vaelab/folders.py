"""Checkpoint-style folders: one place for how vaelab writes and reads them.

A model checkpoint, a code prior (``CHECKPOINT/prior/``) and the classifier are all folders of
the same shape: ``config.json`` describing what is inside, ``model.safetensors`` holding the
weights (never a pickle), and optional JSON files beside them (``history.json``,
``metrics.json``). This module owns the file names, the error type, JSON and safetensors
reading/writing, and the atomic write:

- :func:`atomic_folder` yields a temporary folder beside the target; when the block succeeds the
  temporary folder replaces the target by rename, when it fails the target is untouched. A crash
  mid-save therefore never leaves a half-written checkpoint.
- Saved folders get ordinary permissions (``0o755`` folders, ``0o644`` files, less the process
  umask), not the ``0o700`` of a fresh temporary folder, so another account (a web server
  running as another user) can read them.

It knows nothing of models, priors or classifiers: those modules say what goes into a folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_file, save_file, save_model

CONFIG = "config.json"  # what the folder holds: kind or variant, config, provenance
WEIGHTS = "model.safetensors"  # the module's state dict
HISTORY = "history.json"  # training history
METRICS = "metrics.json"  # evaluation results


class CheckpointError(RuntimeError):
    """The folder is not a readable vaelab folder; the message says what is wrong."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ordinary_permissions(folder: Path) -> None:
    """``0o755`` for folders and ``0o644`` for files (less the umask), throughout ``folder``."""
    mask = _umask()
    os.chmod(folder, 0o755 & ~mask)
    for path in folder.rglob("*"):
        os.chmod(path, (0o755 if path.is_dir() else 0o644) & ~mask)


@contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; when the block succeeds it replaces ``out`` by
    rename (with ordinary permissions), when it fails it is removed and ``out`` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        _ordinary_permissions(tmp)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp`` with renames; the old folder is removed only afterwards."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def copy_contents(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    """Copy the files and sub-folders of ``src`` (when it exists) into ``dst``, except ``skip``."""
    if not src.is_dir():
        return
    for f in src.iterdir():
        if f.name in skip:
            continue
        if f.is_file():
            shutil.copy2(f, dst / f.name)
        elif f.is_dir():
            shutil.copytree(f, dst / f.name)


# --- JSON ------------------------------------------------------------------------------------

def _finite(obj):
    """JSON has no NaN/inf: write them as strings so the file stays valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """``obj`` as indented JSON (NaN/inf as strings), written atomically: a temporary file beside
    ``path`` with ordinary permissions replaces it by rename, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(_finite(obj), indent=2))
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(folder: str | os.PathLike, name: str, default=None):
    """``folder/name`` parsed, or ``default`` when the file is missing."""
    path = Path(folder) / name
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from error


def read_folder_config(folder: str | os.PathLike, what: str = "vaelab checkpoint") -> dict:
    """``folder/config.json``, or a :class:`CheckpointError` saying what is missing."""
    folder = Path(folder)
    meta = read_json(folder, CONFIG)
    if meta is None:
        raise CheckpointError(f"{folder} is not a {what}: it has no {CONFIG}. "
                              f"A {what} folder holds {CONFIG} and {WEIGHTS}.")
    return meta


# --- weights ---------------------------------------------------------------------------------

def write_weights(module: torch.nn.Module, path: str | os.PathLike) -> None:
    """safetensors of ``module``'s state (written in eval mode, its mode restored)."""
    was_training = module.training
    save_model(module.eval(), str(path))
    module.train(was_training)


def write_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    save_file({k: t.detach().contiguous() for k, t in tensors.items()}, str(path))


def read_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(path), device=str(device))


def load_weights(module: torch.nn.Module, folder: str | os.PathLike, device: str | torch.device = "cpu",
                 upgrade=None) -> None:
    """Load ``folder/model.safetensors`` into ``module`` strictly. ``upgrade(state) -> state``
    renames keys written by an older vaelab. Float16-stored weights load into float32 tensors."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{folder} has a {CONFIG} but no {WEIGHTS}")
    try:
        state = read_tensors(path, device)
        if upgrade is not None:
            state = upgrade(state)
        missing, unexpected = module.load_state_dict(state, strict=False)
        # safetensors stores a tensor shared by two names (tied weights) once: the other name
        # is "missing" but was filled through the alias
        own = module.state_dict()
        stored = {own[k].data_ptr() for k in state if k in own}
        missing = [k for k in missing if own[k].data_ptr() not in stored]
        if missing or unexpected:
            raise ValueError(f"missing keys {missing[:5]}, unexpected keys {list(unexpected)[:5]}")
    except Exception as error:
        raise CheckpointError(f"{path} does not match a {type(module).__name__} with this config: {error}") from error


def fingerprint(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file (None when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
