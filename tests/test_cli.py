"""The command line, called in-process (plus one real subprocess for `python -m vaelab`)."""

import subprocess
import sys

import torch

import vaelab
from vaelab.cli import main, parse_set
from vaelab.registry import list_variants

from .conftest import ROOT


def test_list_names_every_variant(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for entry in list_variants():
        assert entry.name in out and entry.description in out


def test_train_writes_a_checkpoint_that_reloads_bit_for_bit(tmp_path, capsys):
    out = tmp_path / "vae"
    code = main(["train", "vae", "--dataset", "digits", "--epochs", "2", "--out", str(out), "--quiet",
                 "--set", "latent_dim=3", "--set", "hidden=[32]"])
    assert code == 0, capsys.readouterr().err
    model = vaelab.load_checkpoint(out)
    assert model.config.latent_dim == 3 and model.config.hidden == (32,)
    data = vaelab.load_dataset("digits")
    # retraining with the same seed gives the same weights, bit for bit
    torch.manual_seed(0)
    again = vaelab.create("vae", image_shape=(1, 8, 8), latent_dim=3, hidden=(32,))
    vaelab.fit(again, data, epochs=2, progress=False)
    assert torch.equal(again.eval().reconstruct(data.test_x), model.reconstruct(data.test_x))


def test_bad_input_gives_messages_not_tracebacks(tmp_path, capsys):
    assert main(["train", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["train", "vae", "--out", str(tmp_path / "x"), "--set", "colour=red"]) == 2
    assert "no field(s) colour" in capsys.readouterr().err
    assert main(["train", "vae", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-download",
                 "--out", str(tmp_path / "x")]) == 2
    assert "looked for its files" in capsys.readouterr().err


def test_parse_set_values():
    assert parse_set(["a=2", "b=[1,2]", "c=conv", "d=0.5", "e=true"]) == \
        {"a": 2, "b": [1, 2], "c": "conv", "d": 0.5, "e": True}


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "vaelab", "train", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--set" in done.stdout and "--dataset" in done.stdout
