"""Checkpoints as folders: ``config.json`` + ``model.safetensors`` + ``history.json``
(+ ``metrics.json`` and cached artifacts added later by evaluation, + training state for exact
resume, + extras such as a code prior in ``prior/``).

Loading needs nothing but the folder and never unpickles: the config is JSON naming a registered
variant, the weights are safetensors. Saving is atomic (:func:`vaelab.folders.atomic_folder`), so
a crash mid-save leaves the previous checkpoint intact. ``config.json`` also records the model's
``info`` (what it is: continuous or discrete, variational, can sample, ...), so readers such as
the app's catalogue know what a checkpoint holds without guessing. Extras are attached through
the model contract's ``attach_extras`` hook: this module imports no subsystem.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from vaelab.folders import (CONFIG, HISTORY, METRICS, WEIGHTS, CheckpointError, atomic_folder,  # noqa: F401
                            copy_contents, load_weights, read_folder_config, read_json, read_tensors,
                            write_json, write_tensors, write_weights)
from vaelab.registry import config_from_dict, config_to_dict, get_entry
from vaelab.version import __version__

FORMAT_VERSION = 1
TRAINING_STATE = "training_state.safetensors"  # optimiser moments and RNG states, for exact resume
TRAINING_META = "training_state.json"  # step, epoch, phase and optimiser settings, for exact resume
# written by save_checkpoint itself; anything else already in the folder is carried over
OWN_FILES = (CONFIG, WEIGHTS, HISTORY, TRAINING_STATE, TRAINING_META)


def variant_name(model) -> str:
    """The registry name a model was created under (stored on it by :func:`vaelab.create`)."""
    name = getattr(model, "variant", None)
    if name is None:
        raise ValueError("model has no registry name; create it with vaelab.create(name, ...)")
    return name


def info_to_dict(info) -> dict:
    """The model's :class:`~vaelab.models.base.ModelInfo` as JSON (tuples become lists)."""
    return dataclasses.asdict(info)


def save_checkpoint(model, out_dir: str | os.PathLike, *, dataset: str | None = None,
                    seed: int | None = None, history: list | dict | None = None,
                    extra: dict[str, Any] | None = None, extra_files: dict[str, Any] | None = None,
                    training_state: tuple[dict, dict[str, torch.Tensor]] | None = None) -> Path:
    """Write ``model`` to the folder ``out_dir`` atomically; returns the folder.

    Files already in an existing checkpoint folder that this call does not write (metrics,
    cached artifacts, a prior) are carried over. ``extra`` adds keys to config.json (the zoo's
    ``purpose``); ``extra_files`` maps file names to JSON-able objects; ``training_state`` is
    ``(meta, tensors)`` from the trainer, for exact resume.
    """
    out = Path(out_dir)
    with atomic_folder(out) as tmp:
        copy_contents(out, tmp, skip=OWN_FILES)
        previous = read_json(out, CONFIG, {}) if out.is_dir() else {}
        meta = {
            "format": FORMAT_VERSION,
            "variant": variant_name(model),
            "config": config_to_dict(model.config),
            "info": info_to_dict(model.info),
            "dataset": dataset,
            "seed": seed,
            "vaelab_version": __version__,
            **({"purpose": previous["purpose"]} if "purpose" in previous else {}),
            **({"custom_modules": model.custom_modules} if getattr(model, "custom_modules", None) else {}),
            **(extra or {}),
        }
        write_json(tmp / CONFIG, meta)
        write_weights(model, tmp / WEIGHTS)
        if history is not None:
            write_json(tmp / HISTORY, history)
        if training_state is not None:
            state_meta, tensors = training_state
            write_json(tmp / TRAINING_META, state_meta)
            write_tensors({k: t.cpu() for k, t in tensors.items()}, tmp / TRAINING_STATE)
        for name, obj in (extra_files or {}).items():
            write_json(tmp / name, obj)
    return out


def read_training_state(folder: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """``(meta, tensors)`` saved for exact resume, or None for a checkpoint without them."""
    folder = Path(folder)
    meta = read_json(folder, TRAINING_META)
    if meta is None or not (folder / TRAINING_STATE).is_file():
        return None
    return meta, read_tensors(folder / TRAINING_STATE)


def compact_weights(folder: str | os.PathLike) -> bool:
    """Store the float32 tensors of ``folder``'s weights as float16 (half the file; loading
    restores float32, as ``load_state_dict`` copies into the model's float32 tensors). Recorded as
    ``"weights_dtype": "float16"`` in config.json; returns False when there was nothing to convert.
    Evaluate after compacting: the metrics should describe the weights that ship. A code prior
    keyed to the old weights' hash would no longer attach, so compact before training one."""
    folder = Path(folder)
    state = read_tensors(folder / WEIGHTS)
    if not any(t.dtype == torch.float32 for t in state.values()):
        return False
    half = {k: (t.half() if t.dtype == torch.float32 else t).contiguous() for k, t in state.items()}
    meta = {**read_config(folder), "weights_dtype": "float16"}
    with atomic_folder(folder) as tmp:  # the whole folder is swapped in, never half-written
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        write_tensors(half, tmp / WEIGHTS)
        write_json(tmp / CONFIG, meta)
    return True


def read_config(folder: str | os.PathLike) -> dict:
    return read_folder_config(folder, "vaelab checkpoint")


MAX_PARAMETERS = 200_000_000  # far above any model here; a config asking for more is refused unbuilt
# sane ranges for the fields every config shares (a field outside is refused before anything is built)
BOUNDS = {"latent_dim": (0, 65_536), "num_classes": (1, 100_000), "codebook_size": (1, 1_048_576)}
CHOICES = {"likelihood": ("bernoulli", "gaussian", "mse"), "backbone": ("mlp", "conv")}


def _check_type(name: str, value, annotation) -> None:
    """``value`` fits the dataclass field's annotation (int, float, bool, str, tuples of ints)."""
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif annotation is str:
        ok = isinstance(value, str) and len(value) <= 500
    elif origin is tuple:
        ok = isinstance(value, (list, tuple)) and len(value) <= 64 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1_000_000 for v in value)
    elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        ok = value is None or any(_fits(value, a) for a in args if a is not type(None))
    else:
        ok = True  # a field of a kind this check does not know: the model's own checks apply
    if not ok:
        raise CheckpointError(f"config field {name!r} = {str(value)[:80]!r} is not a valid {getattr(annotation, '__name__', annotation)}")


def _fits(value, annotation) -> bool:
    try:
        _check_type("", value, annotation)
        return True
    except CheckpointError:
        return False


def validate_config(entry, values: dict, where: str = "config.json") -> None:
    """The stored config against the variant's dataclass, before anything is built: known
    fields, their types, sane sizes. Raises :class:`CheckpointError` naming the file and field."""
    import typing

    if not isinstance(values, dict):
        raise CheckpointError(f"{where}: its config is not a JSON object")
    hints = typing.get_type_hints(entry.config_cls)
    for name, value in values.items():
        if name not in hints:
            raise CheckpointError(f"{where}: {entry.name} has no config field {name!r}")
        try:
            _check_type(name, value, hints[name])
        except CheckpointError as error:
            raise CheckpointError(f"{where}: {error}") from None
        lo, hi = BOUNDS.get(name, (None, None))
        if lo is not None and isinstance(value, int) and not lo <= value <= hi:
            raise CheckpointError(f"{where}: config field {name!r} = {value} is outside {lo}…{hi}")
        if name in CHOICES and value not in CHOICES[name]:
            raise CheckpointError(f"{where}: config field {name!r} = {value!r} is not one of {', '.join(CHOICES[name])}")
    shape = values.get("image_shape")
    if shape is not None and (len(shape) != 3 or shape[0] not in (1, 3) or not all(1 <= s <= 1024 for s in shape[1:])):
        raise CheckpointError(f"{where}: config field 'image_shape' = {shape} is not (1 or 3 channels, height, width)")


def build_model(meta: dict, folder: str | os.PathLike = "?", device: str | torch.device | None = None):
    """A fresh model (random weights) from a checkpoint's config.json contents, its config
    checked first (:func:`validate_config`); ``device="meta"`` builds it without memory."""
    if isinstance(meta, dict) and "variant" not in meta and "_class_name" in meta:
        raise CheckpointError(f"this is a diffusers {meta['_class_name']} folder, not a vaelab checkpoint: explore it "
                              "with `vaelab explore diffusers:FOLDER --data IMAGES` (or vaelab.explore in Python)")
    try:
        entry = get_entry(meta["variant"])
    except KeyError as error:
        raise CheckpointError(f"{folder}: {error.args[0]}") from None
    except TypeError:
        raise CheckpointError(f"{folder}: config.json names no variant") from None
    values = meta.get("config", {})
    validate_config(entry, values, f"{folder}/config.json")
    try:
        with torch.device(device) if device is not None else _nullcontext():
            model = entry.model_cls(config_from_dict(entry.config_cls, values))
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError, RecursionError, OverflowError) as error:
        raise CheckpointError(f"{folder}/config.json does not describe a buildable {entry.name}: "
                              f"{type(error).__name__}: {error}") from None
    model.variant = entry.name
    return model


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()


def check_weights_fit(folder: Path, meta: dict) -> None:
    """Before allocating anything: the model the config describes, built without memory
    (PyTorch's ``meta`` device), is of a sane size and its tensors' names and shapes are those
    in the safetensors file's header."""
    from safetensors import safe_open

    probe = build_model(meta, folder, device="meta")
    n = sum(p.numel() for p in probe.parameters())
    if n > MAX_PARAMETERS:
        raise CheckpointError(f"{folder}/config.json describes {n:,} parameters; at most {MAX_PARAMETERS:,} load")
    path = Path(folder) / WEIGHTS
    try:
        with safe_open(str(path), "pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as error:  # not a safetensors file, truncated, a lying header
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from None
    stored = probe.upgrade_state_dict(stored) if stored else stored
    own = {k: tuple(t.shape) for k, t in probe.state_dict().items()}
    wrong = [k for k in own.keys() & stored.keys() if own[k] != stored[k]]
    if wrong:
        k = sorted(wrong)[0]
        raise CheckpointError(f"{path}: {k} has shape {stored[k]} but the config gives {own[k]}"
                              + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))


def read_info(folder: str | os.PathLike) -> dict:
    """What the checkpoint's model is (``ModelInfo`` as a dict). Read from config.json; a folder
    written before config.json carried it is answered by loading the model (extras included)."""
    meta = read_config(folder)
    if "info" in meta:
        return meta["info"]
    return info_to_dict(load_checkpoint(folder).info)


def describe(folder: str | os.PathLike, **fields) -> dict:
    """Write the model's current ``info`` (as loaded, extras such as a code prior attached) and
    ``fields`` (a zoo recipe's ``purpose``) into the folder's config.json: for folders written
    before config.json carried them, and after an extra is added. Only config.json is rewritten
    (atomically): the weights, and a code prior keyed to them, stay as they are."""
    folder = Path(folder)
    meta = {**read_config(folder), "info": info_to_dict(load_checkpoint(folder).info), **fields}
    write_json(folder / CONFIG, meta)
    return meta


def load_checkpoint(folder: str | os.PathLike, device: str | torch.device = "cpu", *, modules: dict | None = None):
    """Rebuild the model saved in ``folder`` (in eval mode); needs only the folder. Extras saved
    beside the weights (a code prior in ``folder/prior/``) are attached by the model's
    ``attach_extras`` hook. A model trained with your own encoder/decoder
    (:mod:`vaelab.models.custom`) needs them again: ``modules={"encoder": MyEncoder(), ...}``,
    fresh instances of the same classes (the weights come from the folder). ``folder`` may also
    be a Hugging Face Hub model id, ``"owner/name"``, pushed with ``vaelab push``: the folder is
    downloaded through ``huggingface_hub`` first (:mod:`vaelab.remote`)."""
    folder = Path(folder)
    if not folder.exists():
        from vaelab.remote import download, is_repo_id

        if is_repo_id(str(folder)):
            folder = download(str(folder))
    meta = read_config(folder)
    if not meta.get("custom_modules"):  # your own networks are built by you: checked when plugged in
        check_weights_fit(folder, meta)
    model = build_model(meta, folder)
    custom = meta.get("custom_modules") or {}
    if custom or modules:
        missing = sorted(set(custom) - set(modules or {}))
        if missing:
            wanted = ", ".join(f"{r}={custom[r].rsplit('.', 1)[-1]}(...)" for r in missing)
            raise CheckpointError(f"{folder} was trained with your own {' and '.join(missing)} "
                                  f"({', '.join(custom[r] for r in missing)}); pass modules={{...}} with {wanted}")
        from vaelab.models.custom import plug

        try:
            plug(model, **{r: m for r, m in (modules or {}).items() if r in custom})
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{folder}: {error}") from None
    load_weights(model, folder, device, upgrade=model.upgrade_state_dict)
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{folder}/{WEIGHTS} holds NaN or infinite values ({', '.join(bad[:3])})")
    model.attach_extras(folder, device)
    return model.to(device).eval()
