"""Checkpoints to and from the Hugging Face Hub, as diffusers and pythae models travel.

``vaelab push CHECKPOINT OWNER/NAME`` (:func:`push`) uploads a checkpoint folder — its config,
weights, metrics, cached arrays and code prior, not the state kept for resuming training — with
a generated model card (:func:`model_card`: what the model is, its data, its test-set numbers from
``metrics.json``, how to load it) and a picture of test images beside their reconstructions, and
prior samples where the model can sample (:func:`sample_picture`). ``load_checkpoint("OWNER/NAME")``
and the app's upload box take such an id: :func:`download` fetches the folder through
``huggingface_hub`` (into its cache; with ``HF_HUB_OFFLINE=1`` from the cache alone).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vaelab.folders import read_json
from vaelab.metric_keys import metric, with_se
from vaelab.remote import REPO_ID, download, is_repo_id  # noqa: F401  (the hub's two directions in one place)

FILES = ("config.json", "model.safetensors", "metrics.json", "artifacts.safetensors", "history.json")
PICTURE = "samples.png"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


CARD_ROWS = (("reconstruction.mse", "reconstruction error (MSE per pixel)"),  # (metrics key, what the card calls it)
             ("reconstruction.pca_mse", "PCA at the same size of code"),
             ("likelihood.iwae_nll", "negative log-likelihood, IWAE bound (nats)"),
             ("loss.total", "test loss (the model's objective)"),
             ("embedding.knn_latent_full", "5-NN accuracy in the latent"),
             ("codebook.used_codes", "codes used"),
             ("codebook.perplexity", "code perplexity"),
             ("classifier.frechet_distance_samples", "Fréchet distance of samples"))


def model_card(folder: Path, repo_id: str) -> str:
    """A model card (README.md with the Hub's front matter) for the checkpoint in ``folder``."""
    from vaelab.registry import get_entry

    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text())
    metrics = read_json(folder, "metrics.json", {}) or {}
    entry = get_entry(meta["variant"])
    dataset = meta.get("dataset") or "digits"
    info = meta.get("info", {})
    rows = []
    for key, label in CARD_ROWS:
        v = metric(metrics, key)
        if key == "likelihood.iwae_nll" and v is not None:
            k, n = metric(metrics, "likelihood.iw_samples"), metric(metrics, "likelihood.images")
            se = metric(metrics, "likelihood.iwae_nll_se")
            rows.append(f"| {label}, k = {k}, {n:,} test images | {with_se(v, se)} |")
        elif v is not None:
            rows.append(f"| {label} | {_fmt(v)} |")
    table = "\n".join(["| test set | value |", "| --- | --- |", *rows]) if rows else "Not evaluated yet."
    picture = f"\n![test images (top) and their reconstructions; prior samples below when it can sample]({PICTURE})\n" \
        if (folder / PICTURE).is_file() else ""
    config = json.dumps(meta.get("config", {}), indent=1)
    datasets = {"mnist": "ylecun/mnist"}.get(dataset)
    front = ["---", "library_name: vaelab", "tags:", "- autoencoder", "- vaelab", f"- {meta['variant']}",
             *(["datasets:", f"- {datasets}"] if datasets else []), "license: mit", "---"]
    return "\n".join(front) + f"""

# {repo_id.split('/')[-1]}

A **{meta['variant']}** ({entry.description}) trained with vaelab on
**{dataset}** ({'×'.join(map(str, meta.get('config', {}).get('image_shape', [])))} images). Latent:
{info.get('latent', '?')}{', variational' if info.get('variational') else ''}{', can sample' if info.get('can_sample') else ''}.
{picture}
{table}

## Use it

```python
import vaelab

model = vaelab.load_checkpoint("{repo_id}")   # downloads this folder; no pickle, weights are safetensors
latent = model.encode(images)                 # images: (N, {', '.join(map(str, meta.get('config', {}).get('image_shape', [1, 28, 28])))}) in [0, 1]
rebuilt = model.reconstruct(images)
```

Or look inside it in the app: `python -m vaelab explore {repo_id}` or, in the app's Models tab,
give this id to "Bring your own checkpoint".

<details><summary>Its config</summary>

```json
{config}
```
</details>
"""


def sample_picture(folder: Path):
    """Test images, their reconstructions and prior samples (:func:`vaelab.gallery.picture`)."""
    from vaelab.gallery import picture

    return picture(folder)


def stage(folder: Path, out: Path, repo_id: str) -> list[Path]:
    """Copy what a Hub model needs from the checkpoint ``folder`` into the new folder ``out``,
    with its card and picture; returns the files."""
    from PIL import Image

    folder, out = Path(folder), Path(out)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder (config.json and model.safetensors)")
    out.mkdir(parents=True, exist_ok=False)
    for name in FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, out / name)
    if (folder / "prior").is_dir():
        shutil.copytree(folder / "prior", out / "prior",
                        ignore=shutil.ignore_patterns("training_state.*", ".*"))
    picture = sample_picture(folder)
    if picture is not None:
        Image.fromarray(picture).save(out / PICTURE)
    (out / "README.md").write_text(model_card(out, repo_id))
    return sorted(p for p in out.rglob("*") if p.is_file())


def push(folder: Path, repo_id: str, *, out: Path, private: bool = False, token: str | None = None,
         dry_run: bool = False) -> tuple[list[Path], str | None]:
    """Stage ``folder`` in ``out`` and (unless ``dry_run``) upload it as the model ``repo_id``."""
    files = stage(folder, out, repo_id)
    if dry_run:
        return files, None
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(out), repo_type="model",
                      commit_message="vaelab checkpoint")
    return files, str(url)
