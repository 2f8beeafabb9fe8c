"""Checkpoints that are wrong in every way a hand, a tool or an attacker makes them: each is
refused with the checkpoint error naming the file and what is wrong, before a large allocation;
a bad folder among good ones is skipped and the app still starts."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from vaelab.checkpoint import CheckpointError, load_checkpoint

from .conftest import ROOT

GOOD = ROOT / "checkpoints" / "digits-ae-2d"


def _edit_config(folder, change):
    meta = json.loads((folder / "config.json").read_text())
    change(meta)
    (folder / "config.json").write_text(json.dumps(meta))


def _set(field, value):
    return lambda meta: meta["config"].__setitem__(field, value)


CONFIG_CASES = [
    ("latent_dim as text", _set("latent_dim", "2"), "'latent_dim'"),
    ("latent_dim fractional", _set("latent_dim", 2.5), "'latent_dim'"),
    ("latent_dim huge", _set("latent_dim", 10**7), "outside"),
    ("latent_dim negative", _set("latent_dim", -3), "outside"),
    ("image_shape too short", _set("image_shape", [1, 8]), "'image_shape'"),
    ("four channels", _set("image_shape", [4, 8, 8]), "'image_shape'"),
    ("image side zero", _set("image_shape", [1, 0, 8]), "'image_shape'"),
    ("negative width", _set("hidden", [-1]), "'hidden'"),
    ("widths as text", _set("hidden", "wide"), "'hidden'"),
    ("unknown likelihood", _set("likelihood", "poisson"), "'likelihood'"),
    ("unknown backbone", _set("backbone", "transformer"), "'backbone'"),
    ("unknown field", _set("colour", "blue"), "no config field 'colour'"),
    ("billions of parameters", _set("hidden", [1_000_000, 1_000_000]), "parameters"),
    ("unknown activation", _set("activation", "sparkle"), "buildable"),
    ("config not an object", lambda meta: meta.__setitem__("config", [1, 2]), "not a JSON object"),
    ("no variant", lambda meta: meta.pop("variant"), "variant"),
    ("unknown variant", lambda meta: meta.__setitem__("variant", "no-such-ae"), "no-such-ae"),
    ("variant not text", lambda meta: meta.__setitem__("variant", ["ae"]), "variant"),
    ("weights of another size", _set("image_shape", [1, 16, 16]), "but the config gives"),
]


@pytest.mark.parametrize("case, change, message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_is_refused_naming_the_field(case, change, message, tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(GOOD, folder)
    _edit_config(folder, change)
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(folder)
    assert "ck" in str(error.value)  # names the folder (and so the file)


def _weights_case(name, folder):
    path = folder / "model.safetensors"
    if name == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif name == "lying header":
        path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    elif name == "not safetensors":
        path.write_bytes(b"\x80\x04\x95 a pickle, not loaded")
    elif name == "all NaN":
        save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(str(path)).items()}, str(path))
    elif name == "a tensor missing":
        state = load_file(str(path))
        state.pop(next(iter(state)))
        save_file(state, str(path))
    elif name == "no weights":
        path.unlink()
    elif name == "config not JSON":
        (folder / "config.json").write_text("{not json")
    elif name == "config nested too deep":
        (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)


WEIGHT_CASES = [("truncated", "not a readable safetensors"), ("lying header", "not a readable safetensors"),
                ("not safetensors", "not a readable safetensors"), ("all NaN", "NaN"),
                ("a tensor missing", "missing keys"), ("no weights", "model.safetensors"),
                ("config not JSON", "not valid JSON"), ("config nested too deep", "not valid JSON")]


@pytest.mark.parametrize("case, message", WEIGHT_CASES, ids=[c[0] for c in WEIGHT_CASES])
def test_bad_weights_or_files_are_refused(case, message, tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(GOOD, folder)
    _weights_case(case, folder)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def test_a_bad_folder_among_good_ones_is_skipped_and_the_app_starts(tmp_path, monkeypatch, caplog):
    from vaelab.app import build, catalogue

    for name in ("digits-ae-2d", "digits-vae-2d"):
        shutil.copytree(ROOT / "checkpoints" / name, tmp_path / name)
    for bad, case in (("broken-json", "config not JSON"), ("deep-json", "config nested too deep")):
        shutil.copytree(GOOD, tmp_path / bad)
        _weights_case(case, tmp_path / bad)
    shutil.copytree(GOOD, tmp_path / "odd-info")
    _edit_config(tmp_path / "odd-info", lambda meta: meta.__setitem__("info", {"latent": 5}))
    names = [c.name for c in catalogue.scan_checkpoints(tmp_path)]
    assert names == ["digits-ae-2d", "digits-vae-2d"]
    assert "skipping the checkpoint" in caplog.text
    monkeypatch.setenv("VAELAB_CHECKPOINTS", str(tmp_path))
    demo = build()
    assert demo is not None
