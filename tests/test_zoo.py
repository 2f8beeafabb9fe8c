"""The zoo recipe: an interrupted training resumes where it stopped, schedules included."""

import json

import pytest

import vaelab.train
from vaelab import zoo


def test_recipes_cover_every_registered_variant():
    from vaelab.registry import REGISTRY, _load_all

    _load_all()
    assert set(REGISTRY) <= {r.variant for r in zoo.RECIPES}
    assert len({r.name for r in zoo.RECIPES}) == len(zoo.RECIPES)
    with pytest.raises(KeyError, match="no zoo recipe"):
        zoo.recipes(["no-such-model"])


def test_interrupted_training_resumes_exactly(digits, tmp_path, monkeypatch):
    data = digits.subset(256, 64)  # 2 steps per epoch at batch 128
    recipe = zoo.Recipe("tiny", "vae", dataset="digits", epochs=3,
                        overrides={"hidden": (16,), "latent_dim": 2, "kl_warmup": "linear", "warmup_steps": 6},
                        train={"lr_schedule": "cosine"}, purpose="a test")
    zoo.train_one(recipe, data, tmp_path / "straight", resume=False, threads=1)

    out = tmp_path / "tiny"
    original = vaelab.train.evaluate_loss
    calls = []

    def interrupt_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the session ends during epoch 2's validation
        return original(*args, **kwargs)

    monkeypatch.setattr(vaelab.train, "evaluate_loss", interrupt_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        zoo.train_one(recipe, data, out, resume=False, threads=1)
    saved = json.loads((out / "history.json").read_text())
    assert saved["status"] == "running" and len(saved["epochs"]) == 1

    monkeypatch.setattr(vaelab.train, "evaluate_loss", original)
    status = zoo.train_one(recipe, data, out, resume=True, threads=1)
    history = json.loads((out / "history.json").read_text())
    assert status["epochs"] == 3 and history["status"] == "completed"
    assert history["resumed_after_epoch"] == 1
    assert [e["step"] for e in history["epochs"]] == [2, 4, 6]  # the step count continues
    assert history["epochs"][-1]["val"]["beta"] == pytest.approx(1.0)  # warm-up completed at step 6
    # the same weights as the run that was never interrupted
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert json.loads((out / "config.json").read_text())["purpose"] == "a test"
    assert zoo.train_one(recipe, data, out, resume=True) == {"skipped": "already trained"}
