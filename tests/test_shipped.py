"""Every shipped checkpoint loads with nothing but its folder, runs, carries its metrics and the
artifacts the app draws from, and (when its dataset is here) still scores what it recorded."""

import functools
import json

import pytest
import torch
from safetensors.numpy import load_file

import vaelab
from vaelab.evaluate import ARTIFACTS

from .conftest import ROOT, mnist_dir

CHECKPOINTS = ROOT / "checkpoints"
SHIPPED = sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file()
                 and (p / "model.safetensors").is_file() and p.name != "classifier")


def test_something_is_shipped():
    assert any(name.startswith("digits-") for name in SHIPPED), "the offline fallback models are missing"


def test_sizes_stay_small():
    """What ships: every file under 10 MB, the folder under 120 MB (a Space allows 150). The
    optimiser state a checkpoint keeps for an exact resume stays on the training machine."""
    total = 0
    for f in CHECKPOINTS.rglob("*"):
        if f.is_file() and not f.name.startswith("training_state."):
            assert f.stat().st_size < 10 * 2 ** 20, f"{f} is over 10 MB"
            total += f.stat().st_size
    assert total < 120 * 2 ** 20, f"checkpoints/ holds {total / 2 ** 20:.0f} MB"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_loads_runs_and_has_artifacts(name):
    folder = CHECKPOINTS / name
    model = vaelab.load_checkpoint(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    arrays = load_file(str(folder / ARTIFACTS))
    n = len(arrays["test_labels"])
    assert arrays["coords_model"].shape == (n, 2) and arrays["coords_pca"].shape == (n, 2)
    info = model.info
    if info.latent == "discrete":
        assert "usage_level0" in arrays and "codebook" in metrics
    x = torch.rand(4, *model.config.image_shape)
    y = torch.arange(4) % model.config.num_classes
    with torch.no_grad():
        recon = model.reconstruct(x, y)
    assert recon.shape == x.shape and torch.isfinite(recon).all()
    if "latent_test" in arrays and info.levels == 1:  # the app decodes these with no dataset present
        z = torch.from_numpy(arrays["latent_test"][:4]).float()  # stored as float16
        with torch.no_grad():
            assert torch.isfinite(model.decode(z, torch.from_numpy(arrays["test_labels"][:4]).long())).all()


@functools.lru_cache(maxsize=None)
def _dataset(name):
    return vaelab.load_dataset(name, mnist_dir(), download=False)


def _data_for(name):
    meta = json.loads((CHECKPOINTS / name / "config.json").read_text())
    if meta.get("dataset") != "digits" and mnist_dir() is None:
        pytest.skip(f"{name} was trained on {meta.get('dataset')}, which is not on this machine "
                    "(set VAELAB_DATA to a folder holding MNIST/raw/)")
    return _dataset(meta.get("dataset"))


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_metrics_match_a_fresh_evaluation(name):
    """Reconstruction error of the first 1,000 test images against the recorded full-test-set value."""
    data = _data_for(name)
    folder = CHECKPOINTS / name
    recorded = json.loads((folder / "metrics.json").read_text())
    model = vaelab.load_checkpoint(folder)
    x, y = data.test_x[:1000], data.test_y[:1000]
    if recorded.get("binarized_test_set"):
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        recon = model.reconstruct(x, y).clamp(0, 1)
    mse = float(((recon - x) ** 2).mean())
    assert mse == pytest.approx(recorded["reconstruction"]["mse"], rel=0.15), (mse, recorded["reconstruction"])


def test_every_registered_variant_is_shipped():
    from vaelab.registry import list_variants

    shipped = {json.loads((CHECKPOINTS / n / "config.json").read_text())["variant"] for n in SHIPPED}
    missing = sorted(e.name for e in list_variants() if e.name not in shipped)
    assert not missing, f"no shipped checkpoint for: {', '.join(missing)}"
