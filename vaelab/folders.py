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
import re
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


CRASH_AT = "VAELAB_CRASH_AT"  # fault injection for the tests: a save stage at which to kill the process


def _stage(name: str) -> None:
    """A point in a save where a crash is survivable; with ``VAELAB_CRASH_AT=name`` the process
    is killed there (``SIGKILL``: no cleanup runs), so tests can crash every stage on purpose."""
    if os.environ.get(CRASH_AT) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``): at no moment is
    either path missing. False where the system cannot (then the caller renames twice)."""
    if os.environ.get("VAELAB_NO_EXCHANGE") == "1" or not hasattr(os, "sched_getaffinity"):  # Linux only
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    return False  # e.g. a file system without it: the two-rename path below


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path) -> list[Path]:
    """Folders a crashed save left beside ``out`` (``.NAME.tmp-*``, ``.NAME.old-PID``) whose
    process is gone."""
    found = []
    for p in out.parent.glob(f".{out.name}.*"):
        m = re.fullmatch(rf"\.{re.escape(out.name)}\.(tmp|old)-(\w+)", p.name)
        if not m:
            continue
        pid = int(m[2]) if m[2].isdigit() else None
        if pid is None or pid == os.getpid() or not _alive(pid):
            found.append(p)
    return found


def recover(out: str | os.PathLike) -> bool:
    """Undo a save that crashed between its two renames: ``out`` is missing and the previous
    version waits in ``.NAME.old-PID``: it is put back (the newest, when several). Leftovers of
    crashed saves beside an existing ``out`` are removed. Returns True when a folder was put back."""
    out = Path(out)
    if not out.parent.is_dir():
        return False
    leftovers = _leftovers(out)
    restored = False
    if not out.exists():
        olds = sorted((p for p in leftovers if ".old-" in p.name), key=lambda p: p.stat().st_mtime)
        if olds:
            os.replace(olds[-1], out)
            leftovers.remove(olds[-1])
            restored = True
            import logging
            logging.getLogger(__name__).warning("%s: a save was interrupted; the previous version was restored", out)
    for p in leftovers:
        shutil.rmtree(p, ignore_errors=True)
    return restored


@contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; when the block succeeds it replaces ``out`` (with
    ordinary permissions), when it fails it is removed and ``out`` is untouched. The swap is one
    exchange where the system has it, so ``out`` never goes missing; otherwise two renames, and a
    crash between them is undone by :func:`recover` (which every load calls)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)  # a crashed save of this folder before: put back or clean up
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        _ordinary_permissions(tmp)
        _stage("written")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp``; the old folder is removed only afterwards."""
    if out.exists() and _exchange(tmp, out):
        _stage("swapped")
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old version
        return
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        _stage("old-moved")  # out is missing here: recover() puts old back
    os.replace(tmp, out)
    _stage("swapped")
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
    except (ValueError, RecursionError) as error:  # invalid JSON, bad UTF-8, nesting too deep
        raise CheckpointError(f"{path} is not valid JSON ({type(error).__name__}: {str(error)[:200]})") from None


def read_folder_config(folder: str | os.PathLike, what: str = "vaelab checkpoint") -> dict:
    """``folder/config.json``, or a :class:`CheckpointError` saying what is missing. A save of
    this folder that crashed mid-swap is undone first (:func:`recover`)."""
    folder = Path(folder)
    if not folder.exists():
        recover(folder)
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
