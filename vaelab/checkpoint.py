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


def build_model(meta: dict, folder: str | os.PathLike = "?"):
    """A fresh model (random weights) from a checkpoint's config.json contents."""
    try:
        entry = get_entry(meta["variant"])
    except KeyError as error:
        raise CheckpointError(f"{folder}: {error.args[0]}") from None
    model = entry.model_cls(config_from_dict(entry.config_cls, meta.get("config", {})))
    model.variant = entry.name
    return model


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
    downloaded through ``huggingface_hub`` first (:mod:`vaelab.hub`)."""
    folder = Path(folder)
    if not folder.exists():
        from vaelab.hub import download, is_repo_id

        if is_repo_id(str(folder)):
            folder = download(str(folder))
    meta = read_config(folder)
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
    model.attach_extras(folder, device)
    return model.to(device).eval()
