"""The command line, called in-process (plus real subprocesses for `python -m vaelab`), its error
messages, and the packaging that installs it as the `vaelab` command."""

import importlib
import os
import subprocess
import sys

import pytest
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
    assert "no field 'colour'" in capsys.readouterr().err
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


# --- messages a newcomer can act on ----------------------------------------------------------

def test_a_set_value_of_the_wrong_type_names_the_field_and_the_type(tmp_path, capsys):
    out = str(tmp_path / "x")
    assert main(["train", "vae", "--out", out, "--set", "latent_dim=abc"]) == 2
    err = capsys.readouterr().err
    assert "latent_dim" in err and "takes int" in err and "Traceback" not in err
    assert main(["train", "vae", "--out", out, "--set", "hidden=64"]) == 2
    assert "hidden takes a JSON list of int" in capsys.readouterr().err
    assert main(["train", "vae", "--out", out, "--set", "beta=high"]) == 2
    assert "beta takes float" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before any data is loaded or folder written


def test_a_set_value_of_the_right_type_passes_the_check():
    from vaelab.cli import check_overrides
    from vaelab.registry import get_entry

    config_cls = get_entry("vae").config_cls
    assert check_overrides(config_cls, parse_set(["latent_dim=2", "hidden=[256,128]", "beta=1"]), "vae") is None
    assert "did you mean latent_dim" in check_overrides(config_cls, {"latent_dims": 2}, "vae")


def test_an_unknown_field_suggests_the_nearest(tmp_path, capsys):
    assert main(["train", "vae", "--out", str(tmp_path / "x"), "--set", "laten_dim=2"]) == 2
    err = capsys.readouterr().err
    assert "no field 'laten_dim'" in err and "did you mean latent_dim?" in err


@pytest.mark.parametrize("argv, suggestion", [
    (["train", "vae", "--epoch", "3", "--out", "x"], "did you mean --epochs?"),
    (["train", "vae", "--lr-shedule", "cosine", "--out", "x"], "did you mean --lr-schedule?"),
    (["train", "vae", "--epoch", "3"], "did you mean --epochs?"),  # also beside a missing --out
    (["list", "--verbos"], "did you mean --verbose?"),
    (["trian", "vae"], "did you mean train?"),
    (["train", "vae", "--dataset", "mnsit", "--out", "x"], "did you mean mnist?"),
    (["train", "vea", "--out", "x"], "did you mean vae?"),
])
def test_a_mistyped_flag_command_or_name_suggests_the_nearest(argv, suggestion, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's errors exit
        code = stop.code
    assert code == 2
    assert suggestion in capsys.readouterr().err


def _save(model_name: str, folder, **overrides):
    torch.manual_seed(0)
    model = vaelab.create(model_name, tiny=True, **overrides)
    vaelab.save_checkpoint(model, folder, dataset="digits")
    return folder


def test_sample_on_a_model_that_cannot_names_checkpoints_that_can(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "shipped"
    _save("vae", shipped / "small-vae")
    _save("ae", shipped / "small-ae")
    _save("vq-vae", shipped / "small-vq")  # discrete, no prior: cannot sample
    monkeypatch.setenv("VAELAB_CHECKPOINTS", str(shipped))
    assert main(["sample", str(shipped / "small-ae"), "--n", "4", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot sample" in err and "small-vae" in err
    assert "small-ae" not in err.split("can sample")[-1] and "small-vq" not in err
    assert f"sample {shipped / 'small-vae'}" in err  # a command to copy
    assert main(["sample", str(shipped / "small-vq"), "--n", "4", "--out", str(tmp_path / "g.png")]) == 2
    assert "train-prior --base" in capsys.readouterr().err


def test_sample_hint_lists_the_shipped_samplers(tmp_path, monkeypatch, capsys):
    from vaelab.cli import samplable_checkpoints

    monkeypatch.delenv("VAELAB_CHECKPOINTS", raising=False)
    names = samplable_checkpoints()
    assert {"digits-vae-2d", "digits-vae-8"} <= set(names)
    assert "digits-ae-2d" not in names and "classifier" not in names
    assert main(["sample", str(ROOT / "checkpoints" / "digits-ae-2d"), "--out", str(tmp_path / "g.png")]) == 2
    assert "digits-vae-2d" in capsys.readouterr().err


# --- the package and its entry points --------------------------------------------------------

def test_module_entry_point_runs_from_another_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "vaelab", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(entry.name in done.stdout for entry in list_variants())
    bad = subprocess.run([sys.executable, "-m", "vaelab", "trian"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "did you mean train?" in bad.stderr


def test_pyproject_declares_the_console_script_and_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, attr = project["project"]["scripts"]["vaelab"].partition(":")
    entry = getattr(importlib.import_module(module), attr)
    assert entry(["list"]) == 0  # the generated script calls entry() and exits with what it returns
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"]["attr"] == "vaelab.version.__version__"
    assert (ROOT / dynamic["dependencies"]["file"][0]).is_file()
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["vaelab", "vaelab.*"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
