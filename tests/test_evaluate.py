"""`eval` writes into a checkpoint only when asked, reports every section's time, and stores its
artifacts in the format of vaelab/artifacts.py (compact on disk, widened when read)."""

import os
import stat

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import vaelab
from vaelab.artifacts import ARTIFACTS, compact_artifacts, load_artifacts, save_artifacts
from vaelab.cli import main
from vaelab.evaluate import EvalSettings, evaluate

FAST = EvalSettings(iw_samples=10, n_train=400, n_trust=100, umap=False, batch_size=60)


@pytest.fixture(scope="module")
def small_digits():
    return vaelab.load_dataset("digits").subset(400, 120)


@pytest.fixture
def checkpoint(tmp_path, small_digits):
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True)
    vaelab.fit(model, small_digits, epochs=1, batch_size=100, progress=False, out_dir=tmp_path / "ck")
    return tmp_path / "ck"


def listing(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_evaluate_writes_nothing_unless_asked(checkpoint, small_digits):
    before = listing(checkpoint)
    results = evaluate(checkpoint, small_digits, FAST, progress=None)
    assert listing(checkpoint) == before
    assert evaluate(checkpoint, small_digits, FAST, write=True, progress=None)["loss"] == results["loss"]
    assert {"metrics.json", ARTIFACTS} <= set(os.listdir(checkpoint))
    assert not [name for name in os.listdir(checkpoint) if name.startswith(".")]  # no temporary file left
    assert stat.S_IMODE((checkpoint / ARTIFACTS).stat().st_mode) == 0o644


def test_every_section_reports_its_time(checkpoint, small_digits):
    lines = []
    results = evaluate(checkpoint, small_digits, FAST, progress=lines.append)
    assert [line.split()[0] for line in lines] == list(results["seconds"])
    assert {"reconstruction", "loss", "likelihood", "posterior", "embedding"} <= set(results["seconds"])
    assert all(line.rstrip().endswith("s") for line in lines)


def test_posterior_kl_is_the_closed_form_per_dimension(checkpoint, small_digits):
    kl = evaluate(checkpoint, small_digits, FAST, progress=None)["posterior"]["kl_per_dim"]
    with torch.no_grad():
        latent = vaelab.load_checkpoint(checkpoint).encode(small_digits.test_x)
    mean, logvar = latent.mean, latent.logvar
    expected = (0.5 * (mean ** 2 + logvar.exp() - 1 - logvar)).mean(0)
    assert np.allclose(kl, expected.numpy(), atol=1e-6)


def test_cli_eval_says_nothing_was_written_and_writes_with_write(checkpoint, capsys):
    flags = ["--iw-samples", "10", "--n-train", "400", "--n-trust", "100", "--no-umap"]
    assert main(["eval", str(checkpoint), *flags]) == 0
    out = capsys.readouterr().out
    assert "nothing was written" in out and "--write" in out
    assert "likelihood" in out and not (checkpoint / "metrics.json").exists()
    assert main(["eval", str(checkpoint), *flags, "--write", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {checkpoint / 'metrics.json'}" in out
    assert (checkpoint / "metrics.json").is_file() and (checkpoint / ARTIFACTS).is_file()


def test_artifacts_are_stored_compact_and_read_wide(tmp_path):
    arrays = {"coords_model": np.random.default_rng(0).normal(size=(5, 2)),  # float64
              "test_labels": np.arange(5), "test_index": np.arange(5),  # int64
              "indices_level0": np.arange(20, dtype=np.int16).reshape(5, 2, 2),
              "usage_level0": np.ones(8, dtype=np.int64), "kl_per_dim": np.ones(3, dtype=np.float32)}
    save_artifacts(tmp_path, arrays)
    stored = load_file(str(tmp_path / ARTIFACTS))
    assert stored["coords_model"].dtype == np.float16 and stored["test_labels"].dtype == np.uint8
    assert stored["test_index"].dtype == np.int32 and stored["indices_level0"].dtype == np.int16
    wide = load_artifacts(tmp_path)
    assert wide["coords_model"].dtype == np.float32 and wide["test_labels"].dtype == np.int64
    assert wide["test_index"].dtype == np.int64 and wide["indices_level0"].dtype == np.int16
    assert np.allclose(wide["coords_model"], arrays["coords_model"], atol=1e-2)
    assert stat.S_IMODE((tmp_path / ARTIFACTS).stat().st_mode) == 0o644


def test_compact_artifacts_rewrites_a_wide_file(tmp_path):
    from safetensors.numpy import save_file

    save_file({"coords_pca": np.zeros((4, 2), np.float32), "test_labels": np.arange(4)}, str(tmp_path / ARTIFACTS))
    compact_artifacts(tmp_path)
    stored = load_file(str(tmp_path / ARTIFACTS))
    assert stored["coords_pca"].dtype == np.float16 and stored["test_labels"].dtype == np.uint8
