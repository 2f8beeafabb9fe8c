"""Checkpoints to and from the Hugging Face Hub, offline: the model card and the files ``push``
stages (the upload's calls recorded, nothing sent), and loading by id from a folder laid out as
huggingface_hub's cache lays it out (``HF_HUB_OFFLINE=1``): the library, the command line and the
app's upload path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vaelab import hub

from .conftest import ROOT

CK = ROOT / "checkpoints" / "digits-vae-2d"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    out = tmp_path_factory.mktemp("push") / "model"
    return out, hub.stage(CK, out, "someone/digits-vae-2d")


def test_the_card_says_what_the_model_is_and_its_own_numbers(staged):
    out, _ = staged
    card = (out / "README.md").read_text()
    metrics = json.loads((CK / "metrics.json").read_text())
    assert card.startswith("---\nlibrary_name: vaelab\n") and "- vae\n" in card
    assert f"| reconstruction error (MSE per pixel) | {metrics['reconstruction']['mse']:.4g} |" in card
    assert f"| 5-NN accuracy in the latent | {metrics['embedding']['knn_latent_full']:.4g} |" in card
    assert 'vaelab.load_checkpoint("someone/digits-vae-2d")' in card and "**digits** (1×8×8 images)" in card
    assert "](samples.png)" in card


def test_push_stages_the_checkpoint_without_its_resume_state(staged):
    out, files = staged
    names = sorted(p.relative_to(out).as_posix() for p in files)
    assert names == ["README.md", "artifacts.safetensors", "config.json", "history.json", "metrics.json",
                     "model.safetensors", "samples.png"]
    for f in ("config.json", "model.safetensors", "metrics.json"):
        assert (out / f).read_bytes() == (CK / f).read_bytes()
    picture = np.asarray(Image.open(out / "samples.png"))
    assert picture.shape[0] > 3 * 8 and picture.shape[1] > 8 * 8  # three rows of eight: images, rebuilds, samples


def test_push_creates_the_model_and_uploads_the_staged_folder(monkeypatch, tmp_path):
    calls = []

    class Recorder:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload", kwargs))

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "HfApi", Recorder)
    files, url = hub.push(CK, "someone/vae", out=tmp_path / "m")
    assert url == "https://huggingface.co/someone/vae" and len(files) == 7
    (_, repo, created), (_, sent) = calls
    assert created["repo_type"] == "model" and sent["folder_path"] == str(tmp_path / "m")
    assert sent["repo_id"] == "someone/vae" and sent["repo_type"] == "model"


def test_the_push_command_refuses_a_bad_id_and_a_non_checkpoint(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "vaelab", "push", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    bad = run(str(CK), "no-owner", "--dry-run")
    assert bad.returncode == 2 and "OWNER/NAME" in bad.stderr
    empty = run(str(tmp_path), "someone/x", "--dry-run")
    assert empty.returncode == 2 and "not a checkpoint folder" in empty.stderr


@pytest.fixture(scope="module")
def hub_cache(staged, tmp_path_factory):
    """The staged model as huggingface_hub's cache holds a download of someone/digits-vae-2d."""
    out, _ = staged
    cache = tmp_path_factory.mktemp("hf") / "hub"
    commit = "0" * 40
    repo = cache / "models--someone--digits-vae-2d"
    shutil.copytree(out, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return cache


def _offline(cache, code: str, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "VAELAB_RUNS": str(tmp_path / "runs")}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def test_load_checkpoint_takes_a_hub_id(hub_cache, tmp_path):
    done = _offline(hub_cache, "import torch, vaelab\n"
                               "a = vaelab.load_checkpoint('someone/digits-vae-2d')\n"
                               f"b = vaelab.load_checkpoint({str(CK)!r})\n"
                               "x = torch.rand(4, 1, 8, 8)\n"
                               "print(torch.equal(a.reconstruct(x), b.reconstruct(x)))", tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


def test_the_explore_command_and_the_app_upload_take_a_hub_id(hub_cache, tmp_path):
    done = subprocess.run([sys.executable, "-m", "vaelab", "explore", "someone/digits-vae-2d", "--no-launch"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    done = _offline(hub_cache, "from pathlib import Path\n"
                               "from vaelab.app.upload import receive_hub, UploadError\n"
                               "folder, meta = receive_hub('someone/digits-vae-2d', Path('runs'))\n"
                               "print(sorted(p.name for p in folder.iterdir()))\n"
                               "try:\n    receive_hub('someone/not-there', Path('runs'))\n"
                               "except UploadError as e:\n    print('refused:', e)\n"
                               "try:\n    receive_hub('../etc', Path('runs'))\n"
                               "except UploadError as e:\n    print('refused:', e)", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    first, *refusals = done.stdout.strip().splitlines()
    assert "metrics.json" in first and "model.safetensors" in first and "samples.png" not in first
    assert "could not be downloaded" in refusals[0] and "owner/name" in refusals[1]
