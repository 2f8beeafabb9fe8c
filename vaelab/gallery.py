"""The gallery: what each family of shipped models does, as pictures.

For a few shipped models of each family (:data:`GALLERY`): eight test images, the model's
reconstructions of them below, and eight samples from its prior below that when it can sample
(:func:`picture`, also the picture of a model card on the Hub). ``python -m vaelab gallery``
writes them to ``assets/gallery/<model>.png``; ``python -m vaelab zoo`` rewrites them after
retraining. Each picture is drawn from the model as it is now, on its own dataset's first test
images, with sampling seeded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vaelab.paths import REPO_ROOT, checkpoints_dir

GALLERY = {"classic": ("ae-32", "denoising-ae", "k-sparse-ae"), "variational": ("vae-16", "beta-vae-4", "cvae"),
           "hierarchical": ("hvae",), "discrete": ("vq-vae", "vq-vae-2", "dvae"), "adversarial": ("vae-gan", "vq-gan")}
OUT = REPO_ROOT / "assets" / "gallery"


def picture(folder: Path, data=None) -> np.ndarray | None:
    """Eight test images over their reconstructions, and eight prior samples when the model can
    sample, as one uint8 image; ``None`` when its dataset is not on this machine."""
    import torch

    from vaelab import viz
    from vaelab.checkpoint import load_checkpoint
    from vaelab.data import DatasetNotFoundError, load_dataset

    meta = json.loads((Path(folder) / "config.json").read_text())
    model = load_checkpoint(folder)
    if data is None:
        try:
            data = load_dataset(meta.get("dataset") or "digits", download=False)
        except (DatasetNotFoundError, ValueError):
            return None
    x = data.test_x[:8]
    y = data.test_y[:8] if model.info.conditional else None
    with torch.no_grad():
        rows = [x, model.reconstruct(x, y).clamp(0, 1)]
        if model.info.can_sample:
            try:
                rows.append(model.sample(8, y, generator=torch.Generator().manual_seed(0)).clamp(0, 1))
            except Exception:  # a discrete model whose prior is missing: rebuilds only
                pass
    return np.asarray(viz.grid_image([im for row in rows for im in row], cols=8, pixels=8 * 64, pad=1))


def build(out: Path = OUT, folder: Path | None = None, progress=print) -> list[Path]:
    """Write every gallery picture whose model and dataset are here; returns the files."""
    from PIL import Image

    out, folder = Path(out), Path(folder or checkpoints_dir())
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for family, names in GALLERY.items():
        for name in names:
            if not (folder / name / "config.json").is_file():
                progress(f"  {family}: {name} is not among the checkpoints, skipped")
                continue
            image = picture(folder / name)
            if image is None:
                progress(f"  {family}: {name}'s dataset is not on this machine, skipped")
                continue
            path = out / f"{name}.png"
            Image.fromarray(image).save(path, optimize=True)
            written.append(path)
            progress(f"  {family}: {path}")
    return written
