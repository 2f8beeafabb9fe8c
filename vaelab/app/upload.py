"""Bring a vaelab checkpoint to the app: a zip of its folder, checked, scored here, then shown.

The zip is read before anything is written: every entry must be a plain file (no links, no
absolute or ``..`` paths) of a kind a checkpoint holds (JSON, safetensors, text), within size
limits, in one folder. Nothing in it is executed or unpickled — weights are safetensors only.
The model is first built on PyTorch's ``meta`` device from its ``config.json``, so a config that
asks for billions of parameters is refused before any memory is taken; then its weights load
strictly. The metrics and cached arrays are always computed again on this server (what came in
the zip is not trusted), on the model's own dataset when it is here. The model then joins the
uploading browser session's pickers, like a model trained in the Train tab.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path, PurePosixPath

MAX_ZIP_BYTES = 100 * 2**20  # the upload itself
MAX_UNPACKED_BYTES = 200 * 2**20  # everything in it, unpacked
MAX_FILE_BYTES = 120 * 2**20  # any one file, unpacked
MAX_ENTRIES = 64
MAX_RATIO = 100  # unpacked / packed size of one entry: beyond it, a zip bomb
# a model's weights are in memory twice while they load (the file's tensors, the model's): 20
# million parameters keep an upload's peak (check, load, score) near 220 MB, under the 300 MB bound
MAX_PARAMETERS = 20_000_000
ALLOWED_SUFFIXES = {".json", ".safetensors", ".md", ".txt"}
# recomputed here, never taken from the zip; and what only resuming training needs
NOT_SCORED = {"metrics.json", "artifacts.safetensors", "training_state.json", "training_state.safetensors"}


class UploadError(ValueError):
    """A zip that cannot become a model here; the message says why and what to do."""


def _members(z: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The zip's files with their paths relative to the checkpoint folder, checked."""
    infos = [i for i in z.infolist() if not i.is_dir()]
    if not infos:
        raise UploadError("The zip is empty.")
    if len(infos) > MAX_ENTRIES:
        raise UploadError(f"The zip holds {len(infos)} files; a checkpoint has a handful (at most {MAX_ENTRIES}).")
    total = 0
    paths = []
    for info in infos:
        name = info.filename.replace("\\", "/")
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or ":" in p.parts[0] or name.startswith("/"):
            raise UploadError(f"“{info.filename}” points outside the folder; the zip is refused.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadError(f"“{info.filename}” is a link; a checkpoint holds plain files only.")
        if p.name.startswith(".") or "__MACOSX" in p.parts:
            continue  # a system's own files (.DS_Store, __MACOSX/): skipped
        if p.suffix.lower() not in ALLOWED_SUFFIXES:
            raise UploadError(f"“{info.filename}” is not part of a vaelab checkpoint (JSON and safetensors files "
                              "only; nothing executable or pickled is loaded).")
        if info.file_size > MAX_FILE_BYTES or info.file_size > MAX_RATIO * max(info.compress_size, 1) + 2**16:
            raise UploadError(f"“{info.filename}” unpacks to {info.file_size / 2**20:.0f} MB, more than a checkpoint "
                              "file here may be.")
        total += info.file_size
        paths.append((info, p))
    if total > MAX_UNPACKED_BYTES:
        raise UploadError(f"The zip unpacks to {total / 2**20:.0f} MB; the limit is {MAX_UNPACKED_BYTES // 2**20} MB.")
    names = {p.name for _, p in paths}
    if names & {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"}:
        raise UploadError("This is a diffusers model folder, not a vaelab checkpoint: the Models tab takes vaelab "
                          "checkpoints. Explore a diffusers model on your own machine with `vaelab explore "
                          "diffusers:FOLDER --data IMAGES`, or put it on a Space with `vaelab space --app`.")
    if "model_config.json" in names and "config.json" not in names:
        raise UploadError("This looks like a pythae model folder, not a vaelab checkpoint: explore it on your own "
                          "machine with `vaelab explore pythae:FOLDER --data IMAGES`.")
    configs = [p for _, p in paths if p.name == "config.json" and "prior" not in p.parts[:-1]]
    if len(configs) != 1:
        raise UploadError("The zip must hold one checkpoint folder: a config.json beside model.safetensors "
                          f"({'none' if not configs else len(configs)} config.json found). Zip the folder that "
                          "`python -m vaelab train --out FOLDER` wrote.")
    top = configs[0].parent
    out = []
    for info, p in paths:
        try:
            rel = p.relative_to(top)
        except ValueError:
            raise UploadError(f"“{info.filename}” is outside the checkpoint folder {top}/.") from None
        if rel.name in NOT_SCORED and len(rel.parts) == 1:
            continue
        out.append((info, rel))
    if PurePosixPath("model.safetensors") not in {r for _, r in out}:
        raise UploadError("The zip has a config.json but no model.safetensors beside it.")
    return out


def unpack(zip_path: str | os.PathLike, dest: Path) -> Path:
    """Check the zip at ``zip_path`` and unpack its checkpoint into the new folder ``dest``."""
    path = Path(zip_path)
    size = path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise UploadError(f"The file is {size / 2**20:.0f} MB; uploads here are limited to {MAX_ZIP_BYTES // 2**20} MB.")
    if not zipfile.is_zipfile(path):
        raise UploadError("That file is not a zip: zip the checkpoint folder (config.json, model.safetensors, …).")
    try:
        with zipfile.ZipFile(path) as z:
            members = _members(z)
            dest.mkdir(parents=True, exist_ok=False)
            for info, rel in members:
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with z.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(2**20):
                        written += len(chunk)
                        if written > info.file_size:  # the header lied about the size
                            raise UploadError(f"“{info.filename}” is larger than the zip says.")
                        out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        shutil.rmtree(dest, ignore_errors=True)
        raise UploadError(f"The zip could not be read ({error}).") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def check_model(folder: Path):
    """Check the checkpoint before anything is allocated (its config against the variant's
    fields and bounds, its size on PyTorch's ``meta`` device, its tensors' shapes against the
    weights file's header), then load it; returns the model and its config. Errors say what is
    wrong."""
    from vaelab.checkpoint import CheckpointError, build_model, check_weights_fit, load_checkpoint, read_config

    try:
        meta = read_config(folder)
        if not isinstance(meta, dict):
            raise CheckpointError("config.json is not a JSON object")
        if "custom_modules" in meta:
            raise UploadError("It was trained with your own encoder/decoder modules, whose code is not on this "
                              "server: explore it with vaelab.explore on your machine.")
        n = sum(p.numel() for p in build_model(meta, folder.name, device="meta").parameters())
        if n > MAX_PARAMETERS:
            raise UploadError(f"Its config asks for {n:,} parameters; models here are limited to {MAX_PARAMETERS:,}.")
        check_weights_fit(folder, meta)
        model = load_checkpoint(folder)
    except CheckpointError as error:
        hint = " This app knows the variants listed in the Models tab." if "unknown variant" in str(error) else ""
        raise UploadError(f"{_local(str(error), folder)}{hint}") from None
    return model, meta


def _local(message: str, folder: Path) -> str:
    """A message about the unpacked folder, without the server's path to it."""
    return message.replace(str(folder) + "/", "").replace(str(folder), "the checkpoint")


def receive(zip_path, root: Path, progress=None) -> tuple[Path, dict]:
    """Unpack, check and score an uploaded checkpoint in a new folder under ``root``; returns the
    folder and its config. ``progress(fraction, text)`` hears about each step."""
    say = progress or (lambda *_: None)
    folder = _new_folder(root, "upload")
    say(0.05, "checking the zip")
    unpack(zip_path, folder)
    return _admit(folder, say)


def receive_hub(repo_id: str, root: Path, progress=None) -> tuple[Path, dict]:
    """A checkpoint pushed to the Hugging Face Hub (``vaelab push``), by its id: downloaded,
    copied under ``root`` with the same checks as a zip's files, then checked and scored."""
    from vaelab.remote import REPO_ID, download

    say = progress or (lambda *_: None)
    repo_id = (repo_id or "").strip()
    if not REPO_ID.match(repo_id):
        raise UploadError(f"A Hub model is named owner/name (e.g. someone/vae-mnist), not “{repo_id[:80]}”.")
    say(0.05, f"downloading {repo_id}")
    try:
        src = download(repo_id)
    except Exception as error:  # not found, private, offline: huggingface_hub says which
        raise UploadError(f"{repo_id} could not be downloaded ({type(error).__name__}: {str(error)[:200]}).") from None
    folder = _new_folder(root, "hub")
    try:
        _copy_checked(src, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _admit(folder, say)


def _new_folder(root: Path, kind: str) -> Path:
    return Path(root) / f"{kind}-{time.strftime('%H%M%S')}-{os.urandom(3).hex()}"


def _copy_checked(src: Path, dest: Path) -> None:
    """A downloaded folder's checkpoint files, under the zip's rules (kinds, sizes, no links)."""
    total = 0
    files = [p for p in sorted(Path(src).rglob("*")) if p.is_file() or p.is_symlink()]
    wanted = []
    for p in files:
        rel = p.relative_to(src)
        if rel.name in NOT_SCORED or rel.name == "README.md" or p.suffix.lower() == ".png":
            continue  # recomputed here, or the card's own
        if p.suffix.lower() not in ALLOWED_SUFFIXES:
            raise UploadError(f"“{rel}” is not part of a vaelab checkpoint; nothing was loaded.")
        size = p.stat().st_size  # the hub's cache links to its blobs: the size is the blob's
        if size > MAX_FILE_BYTES:
            raise UploadError(f"“{rel}” is {size / 2**20:.0f} MB, more than a checkpoint file here may be.")
        total += size
        wanted.append((p, rel))
    if total > MAX_UNPACKED_BYTES:
        raise UploadError(f"The model is {total / 2**20:.0f} MB; the limit is {MAX_UNPACKED_BYTES // 2**20} MB.")
    if not any(rel.as_posix() == "model.safetensors" for _, rel in wanted):
        raise UploadError("That model has no model.safetensors: it is not a vaelab checkpoint (push one with "
                          "`python -m vaelab push FOLDER owner/name`).")
    dest.mkdir(parents=True)
    for p, rel in wanted:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest / rel)  # follows the cache's links: plain files here


def _admit(folder: Path, say) -> tuple[Path, dict]:
    """Check the model in ``folder`` and score it on its dataset (folder removed on failure)."""
    from vaelab.app.state import dataset
    from vaelab.evaluate import EvalSettings, evaluate
    from vaelab.jobs import QUICK_EVAL

    try:
        model, meta = check_model(folder)
        image_shape = tuple(model.config.image_shape)
        del model  # scoring loads it again: two copies at once would double the upload's memory
        name = meta.get("dataset") or "digits"
        data = dataset(name)
        if data is None:
            raise UploadError(f"It was trained on {name}, which is not on this server, so it cannot be scored and "
                              "shown here. The 8×8 digits models work everywhere.")
        if tuple(data.image_shape) != image_shape:
            raise UploadError(f"It takes {image_shape} images, and {name} has "
                              f"{tuple(data.image_shape)}.")
        steps = iter(range(1, 20))
        say(0.15, f"scoring it on {name} (this server computes its numbers itself)")
        evaluate(folder, data, EvalSettings(**QUICK_EVAL), write=True,
                 progress=lambda line: say(min(0.95, 0.15 + 0.1 * next(steps)), "scored: " + line.strip().split()[0]))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, meta


def title_of(meta: dict, filename: str) -> str:
    stem = Path(filename or "checkpoint").stem[:40]
    return f"your {meta.get('variant', 'model')} ({stem}, uploaded {time.strftime('%H:%M')})"


def describe_upload(folder: Path) -> str:
    """What was uploaded, in a line: variant, dataset, latent, the score it got here."""
    meta = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    from vaelab.metric_keys import metric

    mse = metric(metrics, "reconstruction.mse")
    score = f"; test reconstruction error {mse:.4f} (computed here)" if isinstance(mse, (int, float)) else ""
    return f"{meta.get('variant')} trained on {meta.get('dataset') or 'digits'}{score}"
