"""``vaelab space REPO_ID``: put the app on a Hugging Face Space.

:func:`plan` lists exactly what a Space needs, each file with the reason it goes: ``app.py``, the
package (its Python files and the page's scripts and styles), the shipped checkpoints (without
the training state kept for resuming), the pictures the README shows, the README (its front
matter is the Space's card), the licence, a ``.gitattributes`` routing binaries through the Hub's
large-file storage for anyone who pushes by git, and a generated ``requirements.txt``. On CPU
hardware that file installs torch and torchvision from PyTorch's CPU wheel index (about 0.2 GB
instead of the 6 GB of CUDA packages PyPI's default build pulls in); ``gpu=True`` keeps PyPI's.

:func:`assemble` copies the plan into a folder; :func:`upload` sends that folder with
``huggingface_hub``'s upload API (``HfApi.upload_folder``), which stores every binary the way the
Hub requires (LFS/Xet) — a plain ``git push`` of ``.safetensors`` or ``.png`` files is refused.
The token comes from ``HF_TOKEN`` or ``huggingface-cli login`` and needs write access.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from vaelab.paths import REPO_ROOT

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BINARY_SUFFIXES = {".safetensors", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bin", ".pt", ".zip", ".npz"}
# the Hub's usual large-file patterns (what `huggingface-cli repo create` writes), plus images
GITATTRIBUTES = "\n".join(f"{p} filter=lfs diff=lfs merge=lfs -text" for p in (
    "*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.onnx", "*.npz", "*.npy", "*.pkl",
    "*.zip", "*.tar.gz", "*.gz", "*.png", "*.jpg", "*.jpeg", "*.webp", "*.gif")) + "\n"
SKIP_PARTS = {"__pycache__", ".git", ".pytest_cache", "runs", "tests"}


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the Space's root
    why: str
    source: Path | None = None  # copied from here; None = generated

    @property
    def binary(self) -> bool:
        return Path(self.path).suffix.lower() in BINARY_SUFFIXES


def requirements(gpu: bool = False, root: Path = REPO_ROOT) -> str:
    """The Space's requirements: the project's, with torch and torchvision from PyTorch's CPU
    index unless ``gpu``."""
    lines = [ln.strip() for ln in (root / "requirements.txt").read_text().splitlines()]
    pins = [ln for ln in lines if ln and not ln.startswith("#")]
    if gpu:
        return "# GPU hardware: PyPI's CUDA builds of torch\n" + "\n".join(pins) + "\nhuggingface_hub\n"
    out = ["# CPU hardware: torch and torchvision from PyTorch's CPU wheel index (no CUDA packages)",
           f"--extra-index-url {CPU_INDEX}"]
    for ln in pins:
        m = re.match(r"^(torch|torchvision)==([\w.]+)$", ln)
        out.append(f"{m[1]}=={m[2]}+cpu" if m else ln)
    return "\n".join(out + ["huggingface_hub"]) + "\n"


def _readme_pictures(readme: str) -> set[str]:
    return set(re.findall(r"\((assets/[^)\s]+\.(?:png|jpg|jpeg|gif|webp))\)", readme))


CARD = """---
title: {title}
emoji: 🔬
colorFrom: indigo
colorTo: purple
sdk: gradio
sdk_version: 6.31.0
python_version: "3.11"
app_file: app.py
license: mit
short_description: {short}
---

# {title}

A model explored with vaelab: its latent map, and the views that apply to it.
"""


def plan(root: Path = REPO_ROOT, gpu: bool = False, app: Path | None = None, include=(),
         checkpoints: bool = True) -> list[Entry]:
    """Every file the Space gets, with why, in upload order. ``app``: your own ``app.py`` instead of
    the project's (e.g. one that calls ``vaelab.explore(..., launch=False)`` on your model), with
    a generated card; ``include``: files and folders it needs (your model, your images), placed
    as they lie relative to it; ``checkpoints=False`` leaves the shipped models out."""
    root = Path(root)
    if app is not None:
        app = Path(app).resolve()
        title = app.parent.name or "vaelab"
        entries = [Entry("app.py", "your app, the entry point the Space runs (the card's app_file)", app),
                   Entry("README.md", "generated: the Space's card (its front matter)")]
    else:
        entries = [Entry("app.py", "the entry point the Space runs (the card's app_file)", root / "app.py"),
                   Entry("README.md", "the Space's card (its front matter) and the page visitors read",
                         root / "README.md")]
    entries += [
               Entry("requirements.txt", "generated: " + ("PyPI's CUDA torch (GPU hardware)" if gpu else
                                                          "torch and torchvision from PyTorch's CPU wheels")),
               Entry(".gitattributes", "generated: binaries through the Hub's large-file storage, for git pushes")]
    if (root / "LICENSE").is_file():
        entries.append(Entry("LICENSE", "the licence", root / "LICENSE"))
    pkg = root / "vaelab"
    for p in sorted(pkg.rglob("*")):
        if not p.is_file() or SKIP_PARTS & set(p.relative_to(root).parts):
            continue
        if p.suffix == ".py":
            entries.append(Entry(p.relative_to(root).as_posix(), "the library and the app", p))
        elif p.suffix in (".js", ".css") and "static" in p.parts:
            entries.append(Entry(p.relative_to(root).as_posix(), "the page's own script or style", p))
        elif p.suffix in (".ttf", ".txt") and "fonts" in p.parts:
            entries.append(Entry(p.relative_to(root).as_posix(), "the font the pictures' text is written in", p))
    for item in include:
        item = Path(item).resolve()
        if not item.exists():
            raise FileNotFoundError(f"{item} (given to include) does not exist")
        base = app.parent if app is not None and item.is_relative_to(app.parent) else item.parent
        for p in sorted([item] if item.is_file() else item.rglob("*")):
            if p.is_file() and not SKIP_PARTS & set(p.relative_to(base).parts):
                entries.append(Entry(p.relative_to(base).as_posix(), "a file your app needs", p))
    ck = root / "checkpoints"
    for p in sorted(ck.rglob("*")) if ck.is_dir() and checkpoints else ():
        rel = p.relative_to(root)
        if not p.is_file() or p.name.startswith(("training_state.", ".")) or SKIP_PARTS & set(rel.parts):
            continue
        entries.append(Entry(rel.as_posix(), "a shipped model (config, weights, metrics, cached arrays)", p))
    for rel in sorted(_readme_pictures((root / "README.md").read_text())) if app is None else ():
        if (root / rel).is_file():
            entries.append(Entry(rel, "a picture the README shows", root / rel))
    return entries


def assemble(dest: Path, root: Path = REPO_ROOT, gpu: bool = False, app: Path | None = None, include=(),
             checkpoints: bool = True) -> list[Entry]:
    """Copy the plan into the new or empty folder ``dest``; returns the entries."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: the Space is assembled into a new folder")
    entries = plan(root, gpu, app, include, checkpoints)
    for e in entries:
        target = dest / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if e.source is not None:
            shutil.copy2(e.source, target)
        elif e.path == "requirements.txt":
            target.write_text(requirements(gpu, root))
        elif e.path == ".gitattributes":
            target.write_text(GITATTRIBUTES)
        elif e.path == "README.md":
            title = Path(app).resolve().parent.name if app is not None else "vaelab"
            target.write_text(CARD.format(title=title, short="An autoencoder's latent space, explored"))
    return entries


def describe(entries: list[Entry]) -> str:
    """The dry run's listing: what goes, why, and how (binaries through the upload API's LFS/Xet)."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.why, []).append(e)
    lines = []
    size = sum(e.source.stat().st_size for e in entries if e.source is not None)
    for why, items in groups.items():
        lines.append(f"{why}:")
        for e in items:
            how = "  [binary: stored through LFS/Xet by the upload API]" if e.binary else ""
            lines.append(f"  {e.path}{how}")
    n_bin = sum(e.binary for e in entries)
    lines.append(f"{len(entries)} files, {size / 2**20:.1f} MB copied, {n_bin} binary.")
    return "\n".join(lines)


def upload(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None,
           hardware: str | None = None) -> str:
    """Create the Space (if needed) and upload ``folder`` in one commit; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True,
                          **({"space_hardware": hardware} if hardware else {}))
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="space",
                      commit_message="vaelab: app, package, checkpoints")
    return str(url)
