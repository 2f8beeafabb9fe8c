"""Training as a stream: stopping between steps, exact resume (weights, optimiser, schedules and
random generators), nothing non-finite saved, early stopping on the validation split."""

import json

import pytest
import torch

import vaelab
import vaelab.train
from vaelab.checkpoint import read_training_state
from vaelab.train import EpochEnd, Finished, NotSaved, Saved, Step, Stopped, Training, TrainSettings

CASES = {
    # noise in the loss, dynamic binarization, a KL warm-up and a cosine lr: every generator and schedule
    "vae": ({"kl_warmup": "linear", "warmup_steps": 10}, {"binarize": "dynamic", "lr_schedule": "cosine"}),
    # two phases: greedy pretraining, then fine-tuning with fresh optimisers
    "stacked-ae": ({}, {}),
    # buffers that change in training: EMA codebook, usage counts, k-means init, dead-code restarts
    "vq-vae": ({}, {}),
}


def small(digits):
    return digits.subset(192, 32)  # 3 steps per epoch at batch 64


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_stop_and_resume_gives_the_same_weights_bit_for_bit(variant, digits, tmp_path):
    overrides, train = CASES[variant]
    settings = TrainSettings(epochs=4, batch_size=64, progress=False, **train)
    data = small(digits)

    torch.manual_seed(0)
    straight = vaelab.create(variant, tiny=True, **overrides)
    vaelab.fit(straight, data, settings, out_dir=tmp_path / "straight")

    torch.manual_seed(0)
    interrupted = vaelab.create(variant, tiny=True, **overrides)
    run = Training(interrupted, data, settings, tmp_path / "resumed")
    for event in run:
        if isinstance(event, Saved) and event.epoch == 2:
            run.stop()
        if isinstance(event, Step):
            assert event.epoch <= 3  # stopped before the first step of epoch 3
    assert run.history["status"] == "stopped: requested"
    saved = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert len(saved["epochs"]) == 2 and saved["status"] == "running"
    meta, tensors = read_training_state(tmp_path / "resumed")
    assert meta["epoch"] == 2 and any(k.startswith("optimiser.") for k in tensors)

    torch.manual_seed(123)  # a different global state: resume must restore its own
    fresh = vaelab.create(variant, tiny=True, **overrides)
    history = vaelab.fit(fresh, data, settings, out_dir=tmp_path / "resumed", resume=True)
    assert history["status"] == "completed" and history["resumed_after_epoch"] == 2
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4] if variant != "stacked-ae" else True
    a, b = weights(straight), weights(fresh)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{variant}: {k} differs after resume"
    # and the checkpoints on disk agree too
    assert (tmp_path / "straight" / "model.safetensors").read_bytes() == \
        (tmp_path / "resumed" / "model.safetensors").read_bytes()


def test_resume_needs_the_same_settings(digits, tmp_path):
    torch.manual_seed(0)
    model = vaelab.create("ae", tiny=True)
    vaelab.fit(model, small(digits), epochs=1, batch_size=64, progress=False, out_dir=tmp_path / "ck")
    with pytest.raises(ValueError, match="batch_size=64"):
        vaelab.fit(model, small(digits), epochs=2, batch_size=32, progress=False, out_dir=tmp_path / "ck",
                   resume=True)


def test_resume_of_a_finished_run_changes_nothing(digits, tmp_path):
    torch.manual_seed(0)
    model = vaelab.create("ae", tiny=True)
    vaelab.fit(model, small(digits), epochs=2, batch_size=64, progress=False, out_dir=tmp_path / "ck")
    before = (tmp_path / "ck" / "model.safetensors").read_bytes()
    history = vaelab.fit(vaelab.create("ae", tiny=True), small(digits), epochs=2, batch_size=64,
                         progress=False, out_dir=tmp_path / "ck", resume=True)
    assert history["status"] == "completed" and len(history["epochs"]) == 2
    assert (tmp_path / "ck" / "model.safetensors").read_bytes() == before


def test_a_non_finite_validation_loss_is_not_saved(digits, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True)
    out = tmp_path / "ck"
    original = vaelab.train.evaluate_loss
    calls = []

    def nan_on_second_epoch(*args, **kwargs):
        calls.append(1)
        result = original(*args, **kwargs)
        if len(calls) == 2:  # the epoch's last step left a model that scores NaN
            result["total"] = float("nan")
        return result

    monkeypatch.setattr(vaelab.train, "evaluate_loss", nan_on_second_epoch)
    events = list(Training(model, small(digits), TrainSettings(epochs=3, batch_size=64, progress=False), out))
    kinds = [type(e).__name__ for e in events if not isinstance(e, Step)]
    assert kinds == ["EpochEnd", "Saved", "EpochEnd", "NotSaved", "Stopped"]
    not_saved = next(e for e in events if isinstance(e, NotSaved))
    assert "epoch 2" in not_saved.reason and "holds epoch 1" in not_saved.reason
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 1  # the folder still holds epoch 1
    assert read_training_state(out)[0]["epoch"] == 1
    with pytest.raises(vaelab.NonFiniteLossError, match="holds epoch 1"):
        calls.clear()
        vaelab.fit(vaelab.create("vae", tiny=True), small(digits), epochs=3, batch_size=64, progress=False,
                   out_dir=tmp_path / "again")


def test_non_finite_weights_are_not_saved(digits, tmp_path):
    torch.manual_seed(0)
    model = vaelab.create("ae", tiny=True)
    out = tmp_path / "ck"
    run = Training(model, small(digits), TrainSettings(epochs=2, batch_size=64, progress=False), out)
    kept = None
    for event in run:
        if isinstance(event, Saved):
            kept = (out / "model.safetensors").read_bytes()
        if isinstance(event, Step) and event.epoch == 2 and event.batch == 2:
            with torch.no_grad():  # a weight goes bad on the epoch's last step
                next(model.parameters())[0].fill_(float("inf"))
    assert run.history["status"] == "stopped: non-finite epoch"
    assert "non-finite weights" in run.history["stop_message"]
    assert (out / "model.safetensors").read_bytes() == kept


def test_early_stopping_on_the_validation_loss(digits, monkeypatch):
    original = vaelab.train.evaluate_loss
    scores = iter([3.0, 2.0, 2.5, 2.4, 1.0])

    def scripted(*args, **kwargs):
        result = original(*args, **kwargs)
        result["total"] = next(scores)
        return result

    monkeypatch.setattr(vaelab.train, "evaluate_loss", scripted)
    torch.manual_seed(0)
    history = vaelab.fit(vaelab.create("ae", tiny=True), small(digits), epochs=5, batch_size=64,
                         patience=2, progress=False)
    assert len(history["epochs"]) == 4 and history["status"] == "stopped: early stopping"
    assert history["best_epoch"] == 2


def test_stop_between_steps_and_max_steps(digits, tmp_path):
    torch.manual_seed(0)
    run = Training(vaelab.create("ae", tiny=True), small(digits),
                   TrainSettings(epochs=3, batch_size=64, progress=False), tmp_path / "ck")
    steps = 0
    for event in run:
        if isinstance(event, Step):
            steps += 1
            if steps == 2:
                run.stop()
    assert steps == 2 and run.history["status"] == "stopped: requested"
    assert not (tmp_path / "ck").exists()  # no epoch finished, nothing written
    torch.manual_seed(0)
    events = list(Training(vaelab.create("ae", tiny=True), small(digits),
                           TrainSettings(epochs=3, batch_size=64, progress=False, max_steps=4)))
    assert sum(isinstance(e, Step) for e in events) == 4
    assert isinstance(events[-1], Stopped) and events[-1].reason == "max_steps" and events[-1].epoch == 1
    assert not any(isinstance(e, Finished) for e in events)
    assert sum(isinstance(e, EpochEnd) for e in events) == 1
