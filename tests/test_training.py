"""The training loop and checkpoints: history, atomic saves, non-finite losses, bit-for-bit reload."""

import json

import pytest
import torch

import vaelab
from vaelab import checkpoint, folders
from vaelab.checkpoint import CheckpointError


def test_history_records_every_epoch(digits, tmp_path):
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True)
    history = vaelab.fit(model, digits, epochs=3, batch_size=128, progress=False, out_dir=tmp_path / "ck")
    assert history["status"] == "completed" and len(history["epochs"]) == 3
    for record in history["epochs"]:
        assert {"recon", "kl", "total"} <= set(record["train"]) and "total" in record["val"]
        assert record["seconds"] > 0 and record["images_per_second"] > 0
    assert history["epochs"][-1]["val"]["total"] < history["epochs"][0]["val"]["total"]
    saved = json.loads((tmp_path / "ck" / "history.json").read_text())
    assert saved["status"] == "completed" and len(saved["epochs"]) == 3
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["variant"] == "vae" and meta["dataset"] == "digits" and meta["seed"] == 0
    assert meta["vaelab_version"] == vaelab.__version__


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(digits, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = vaelab.create("ae", tiny=True)
    out = tmp_path / "ck"
    vaelab.fit(model, digits, epochs=1, progress=False, out_dir=out)
    good = (out / "model.safetensors").read_bytes()
    original = type(model).loss

    def poisoned(self, x, y=None, step=0):
        result = original(self, x, y, step)
        result.total = result.total * float("nan")
        return result

    monkeypatch.setattr(type(model), "loss", poisoned)
    with pytest.raises(vaelab.NonFiniteLossError, match="last good checkpoint"):
        vaelab.fit(model, digits, epochs=2, progress=False, out_dir=out)
    assert (out / "model.safetensors").read_bytes() == good
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN step was taken


def test_crash_mid_save_keeps_previous_checkpoint(digits, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = vaelab.create("ae", tiny=True)
    out = tmp_path / "ck"
    vaelab.save_checkpoint(model, out, dataset="digits")
    (out / "metrics.json").write_text("{}")
    before = (out / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(folders, "save_model", crash)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(OSError):
        vaelab.save_checkpoint(model, out, dataset="digits")
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary folders left behind
    monkeypatch.undo()
    vaelab.save_checkpoint(model, out, dataset="digits")
    assert (out / "metrics.json").exists()  # files evaluation stored are carried over
    assert (out / "model.safetensors").read_bytes() != before


def test_loading_bad_folders_gives_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        vaelab.load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text('{"variant": "nope", "config": {}}')
    with pytest.raises(CheckpointError, match="unknown variant"):
        vaelab.load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        vaelab.load_checkpoint(tmp_path)


def test_weights_that_do_not_match_the_config(tmp_path):
    model = vaelab.create("ae", tiny=True)
    vaelab.save_checkpoint(model, tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["config"]["latent_dim"] = 7
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="but the config gives"):
        vaelab.load_checkpoint(tmp_path / "ck")


def test_no_pickle_in_checkpoints(tmp_path):
    model = vaelab.create("cvae", tiny=True)
    vaelab.save_checkpoint(model, tmp_path / "ck")
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["config.json", "model.safetensors"]
    import struct
    raw = (tmp_path / "ck" / "model.safetensors").read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + header_len])  # safetensors: a JSON header, then raw tensor bytes
    assert set(header) - {"__metadata__"} == set(model.state_dict())


def test_dynamic_binarization_feeds_binary_images(digits):
    seen = []
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True)
    original = type(model).loss

    def spy(self, x, y=None, step=0):
        seen.append(x)
        return original(self, x, y, step)

    type(model).loss = spy
    try:
        vaelab.fit(model, digits.subset(128, 32), epochs=1, batch_size=64, binarize="dynamic", progress=False)
    finally:
        type(model).loss = original
    assert all(set(x.unique().tolist()) <= {0.0, 1.0} for x in seen)


def test_threads_setting_is_respected(digits):
    before = torch.get_num_threads()
    try:
        vaelab.fit(vaelab.create("ae", tiny=True), digits.subset(64, 16), epochs=1, threads=1, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_device_auto_selection():
    from vaelab.train import pick_device
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu").type == "cpu"


def test_learning_rate_schedule_and_start_step_reach_the_optimiser_and_the_loss(digits, monkeypatch):
    data = digits.subset(128, 32)  # 2 steps per epoch at batch 64
    model = vaelab.create("vae", tiny=True)
    steps, lrs = [], []
    original_loss, original_step = type(model).loss, torch.optim.Adam.step

    def loss_spy(self, x, y=None, step=0):
        steps.append(step)
        return original_loss(self, x, y, step)

    def step_spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "loss", loss_spy)
    monkeypatch.setattr(torch.optim.Adam, "step", step_spy)
    history = vaelab.fit(model, data, epochs=2, batch_size=64, lr=1e-2, lr_schedule="cosine", lr_floor=0.1,
                         start_step=4, progress=False)
    train_steps = steps[:2] + steps[3:5]  # each epoch: 2 training batches, then 1 validation batch
    assert train_steps == [4, 5, 6, 7]
    assert [e["step"] for e in history["epochs"]] == [6, 8]
    # the cosine runs over the whole run, resumed part included: steps 4..7 of 8
    from vaelab.schedules import lr_factor
    assert lrs == pytest.approx([1e-2 * lr_factor(s, "cosine", 8, 0.1) for s in range(4, 8)])
    assert lrs[0] < 1e-2 and all(a > b for a, b in zip(lrs, lrs[1:]))


def test_compacted_weights_load_as_float32_with_half_precision_values(tmp_path):
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True)
    checkpoint.save_checkpoint(model, tmp_path / "ck")
    before = (tmp_path / "ck" / "model.safetensors").stat().st_size
    assert checkpoint.compact_weights(tmp_path / "ck")
    assert not checkpoint.compact_weights(tmp_path / "ck")  # already compact
    assert (tmp_path / "ck" / "model.safetensors").stat().st_size < 0.6 * before
    assert checkpoint.read_config(tmp_path / "ck")["weights_dtype"] == "float16"
    loaded = vaelab.load_checkpoint(tmp_path / "ck")
    for name, tensor in loaded.state_dict().items():
        original = model.state_dict()[name]
        assert tensor.dtype == original.dtype
        assert torch.equal(tensor, original.half().to(original.dtype) if original.is_floating_point() else original)
    x = torch.rand(4, 1, 8, 8)
    assert torch.allclose(loaded.encode(x).mean, model.eval().encode(x).mean, atol=1e-2)


def test_saved_folders_get_ordinary_permissions(digits, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        torch.manual_seed(0)
        model = vaelab.create("ae", tiny=True)
        vaelab.fit(model, digits.subset(64, 16), epochs=1, progress=False, out_dir=tmp_path / "ck")
    finally:
        os.umask(old)
    folder = tmp_path / "ck"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # not the 0o700 of a temporary folder
    for f in folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name


def test_config_records_the_models_info_and_readers_use_it(digits, tmp_path):
    from vaelab.checkpoint import info_to_dict, read_info

    torch.manual_seed(0)
    model = vaelab.create("vq-vae", tiny=True)
    vaelab.save_checkpoint(model, tmp_path / "ck", dataset="digits")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["info"] == json.loads(json.dumps(info_to_dict(model.info)))
    assert meta["info"]["latent"] == "discrete" and meta["info"]["codebook_size"] == model.config.codebook_size
    # a reader takes the recorded info as it is, without building the model
    meta["info"]["likelihood"] = "recorded"
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    assert read_info(tmp_path / "ck")["likelihood"] == "recorded"
    # a folder written before config.json carried the info is answered by loading the model
    del meta["info"]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    assert read_info(tmp_path / "ck") == info_to_dict(model.info)  # built from the folder itself


@pytest.mark.parametrize("variant", ["vq-vae", "vq-vae-2", "dvae"])
def test_history_records_codebook_use_every_epoch(digits, tmp_path, variant):
    """Each epoch's record holds the validation images' code counts per level; they agree with a
    bincount of the indices the trained model gives, and continuous models record nothing."""
    torch.manual_seed(0)
    model = vaelab.create(variant, tiny=True)
    history = vaelab.fit(model, digits, epochs=2, batch_size=128, progress=False)
    data = digits.with_validation()
    model.eval()
    with torch.no_grad():
        idx = model.encode(data.val_x).indices
    idx = idx if isinstance(idx, tuple) else (idx,)
    k = model.info.codebook_size
    for record in history["epochs"]:
        assert len(record["codes"]) == len(idx)
    for level, got in zip(idx, history["epochs"][-1]["codes"]):
        counts = torch.bincount(level.reshape(-1), minlength=k)
        assert got["counts"] == counts.tolist() and sum(got["counts"]) == level.numel()
        assert got["used_codes"] == int((counts > 0).sum()) and got["dead_codes"] == k - got["used_codes"]
        p = counts.double() / counts.sum()
        assert got["perplexity"] == pytest.approx(float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())), rel=1e-9)
    assert "codes" not in vaelab.fit(vaelab.create("ae", tiny=True), digits, epochs=1, progress=False)["epochs"][0]
