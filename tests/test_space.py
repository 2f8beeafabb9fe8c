"""``vaelab space``: what a Hugging Face Space gets, that the app builds from it alone (no dataset,
no network), the CPU requirements, and the upload's calls (recorded, nothing sent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaelab import space

from .conftest import ROOT


@pytest.fixture(scope="module")
def assembled(tmp_path_factory):
    out = tmp_path_factory.mktemp("space") / "site"
    done = subprocess.run([sys.executable, "-m", "vaelab", "space", "someone/vaelab", "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_the_dry_run_lists_what_goes_and_why(assembled):
    out, listing = assembled
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"app.py", "README.md", "requirements.txt", ".gitattributes"} <= files
    assert "vaelab/app/static/latent_canvas.js" in files and "vaelab/app/tabs/latent_map.py" in files
    assert any(f.startswith("checkpoints/vae-2d/") and f.endswith("model.safetensors") for f in files)
    for f in files:  # no scratch, no tests, no resume state, no caches
        parts = Path(f).parts
        assert not {".git", "tests", "__pycache__", "runs"} & set(parts), f
        assert not Path(f).name.startswith("training_state.") and not f.endswith((".pyc", ".pyi")), f
    # every binary is marked as going through the upload API's large-file storage
    for line in listing.splitlines():
        if line.strip().endswith((".safetensors", ".png")):
            raise AssertionError(f"a binary listed without its route: {line}")
    assert "[binary: stored through LFS/Xet by the upload API]" in listing and "nothing uploaded" in listing
    # and a git push would route them the same way
    attributes = (out / ".gitattributes").read_text()
    assert "*.safetensors filter=lfs" in attributes and "*.png filter=lfs" in attributes
    # the pictures the README shows are there
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme
    for pic in space._readme_pictures(readme):
        assert pic in files, pic


def test_the_requirements_install_cpu_torch_unless_asked_for_gpu():
    cpu = space.requirements()
    assert f"--extra-index-url {space.CPU_INDEX}" in cpu
    assert "torch==2.14.1+cpu" in cpu and "torchvision==0.29.1+cpu" in cpu and "gradio==6.31.0" in cpu
    gpu = space.requirements(gpu=True)
    assert "download.pytorch.org" not in gpu and "torch==2.14.1\n" in gpu


def test_the_space_builds_the_app_from_its_folder_alone(assembled, tmp_path):
    out, _ = assembled
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VAELAB_CHECKPOINTS")}
    env.update(VAELAB_DATA=str(tmp_path / "no-data"), HF_HUB_OFFLINE="1", VAELAB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", "import app, vaelab; print(type(app.demo).__name__, vaelab.__file__)"],
                          cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    kind, where = done.stdout.split()
    assert kind == "Blocks" and Path(where).resolve().is_relative_to(out.resolve())  # its own copy of the package


def test_the_upload_creates_a_gradio_space_and_sends_the_folder(monkeypatch, tmp_path):
    calls = []

    class Recorder:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/spaces/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "HfApi", Recorder)
    url = space.upload(tmp_path, "someone/vaelab", private=True)
    assert url.endswith("spaces/someone/vaelab")
    (_, _), (_, repo, created), (_, sent) = calls
    assert repo == "someone/vaelab" and created["repo_type"] == "space" and created["space_sdk"] == "gradio"
    assert created["private"] is True and created["exist_ok"] is True
    assert sent["folder_path"] == str(tmp_path) and sent["repo_type"] == "space" and sent["repo_id"] == "someone/vaelab"


def test_a_bad_space_name_is_refused():
    done = subprocess.run([sys.executable, "-m", "vaelab", "space", "no-owner", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "OWNER/NAME" in done.stderr


def test_your_own_explored_model_ships_to_a_space_and_builds_from_its_folder_alone(tmp_path):
    """The README's recipe: an app.py that explores your model (a diffusers VAE saved beside it)
    over your images, assembled with ``--app`` and ``--include``, builds its app in the Space's
    folder alone, with the page's style kept."""
    pytest.importorskip("diffusers", reason="diffusers is not installed (pip install -r requirements-dev.txt)")
    import numpy as np
    from PIL import Image

    project = tmp_path / "my-project"
    (project / "photos" / "all").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(12):
        Image.fromarray((rng.random((20, 20, 3)) * 255).astype(np.uint8)).save(project / "photos" / "all" / f"{k}.png")
    subprocess.run([sys.executable, "-c", "from diffusers import AutoencoderKL; AutoencoderKL(block_out_channels=(8, 16), "
                    "down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2, "
                    "latent_channels=4, norm_num_groups=4, sample_size=16).save_pretrained('my-vae')"],
                   cwd=project, check=True, timeout=300)
    (project / "app.py").write_text(
        "import vaelab\n"
        "from vaelab.external import load_model\n\n"
        "demo = vaelab.explore(load_model('diffusers:my-vae'), 'photos', launch=False, progress=False)\n\n"
        "if __name__ == '__main__':\n"
        "    demo.launch()\n")
    out = tmp_path / "space"
    done = subprocess.run([sys.executable, "-m", "vaelab", "space", "someone/my-vae", "--dry-run", "--out", str(out),
                           "--app", "app.py", "--include", "my-vae", "photos", "--no-checkpoints"],
                          cwd=project, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert (out / "my-vae" / "config.json").is_file() and (out / "photos" / "all" / "0.png").is_file()
    assert not (out / "checkpoints").exists() and (out / "vaelab" / "fonts" / "DejaVuSans-subset.ttf").is_file()
    assert "app_file: app.py" in (out / "README.md").read_text()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    built = subprocess.run([sys.executable, "-c", "import app, vaelab; print(type(app.demo).__name__, vaelab.__file__)"],
                           cwd=out, capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stderr[-2000:]
    assert built.stdout.startswith("Blocks") and str(out) in built.stdout
