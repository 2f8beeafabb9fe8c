"""The CNN digit classifier: train -> save -> load round trip, the CLI row, the shipped model."""

from pathlib import Path

import pytest
import torch

from vaelab.checkpoint import CheckpointError
from vaelab.classifier import load_classifier, train_classifier

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "classifier"


def test_train_save_load_round_trip_on_digits(digits, tmp_path):
    model = train_classifier(digits, epochs=4, seed=0, progress=False, out=tmp_path / "clf")
    assert {f.name for f in (tmp_path / "clf").iterdir()} == {"config.json", "model.safetensors", "metrics.json"}
    loaded = load_classifier(tmp_path / "clf")
    x = digits.test_x[:64]
    labels, probs = loaded.predict(x)
    labels_0, probs_0 = model.predict(x)
    assert torch.equal(labels, labels_0) and torch.equal(probs, probs_0)
    assert labels.shape == (64,) and probs.shape == (64, 10)
    assert torch.allclose(probs.sum(1), torch.ones(64), atol=1e-5)
    assert loaded.metrics["test_accuracy"] == model.metrics["test_accuracy"] > 0.8
    assert loaded.config.image_shape == (1, 8, 8)

    feats = loaded.features(x)
    assert feats.shape == (64, loaded.config.feature_dim)
    assert torch.equal(feats, model.features(x))
    # the loaded classifier is frozen, but its features stay differentiable in the images
    assert not any(p.requires_grad for p in loaded.parameters())
    images = x.clone().requires_grad_(True)
    loaded.features(images).pow(2).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_classifier_rejects_wrong_shapes_and_non_classifier_folders(digits, tmp_path):
    model = train_classifier(digits.subset(64, 32), epochs=1, progress=False)
    with pytest.raises(ValueError, match="images of shape"):
        model.predict(torch.rand(2, 1, 28, 28))
    with pytest.raises(CheckpointError):
        load_classifier(tmp_path)


def test_cli_train_classifier(tmp_path, capsys):
    from vaelab.cli import main

    assert main(["train-classifier", "--dataset", "digits", "--epochs", "1", "--out",
                 str(tmp_path / "clf")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert load_classifier(tmp_path / "clf").config.image_shape == (1, 8, 8)


def test_shipped_classifier_is_small_and_self_describing():
    assert (SHIPPED / "config.json").is_file(), "checkpoints/classifier/ is missing"
    size = sum(f.stat().st_size for f in SHIPPED.iterdir())
    assert size < 2 * 1024 * 1024
    model = load_classifier(SHIPPED)
    assert model.config.image_shape == (1, 28, 28)
    assert model.metrics["dataset"] == "mnist" and model.metrics["test_accuracy"] >= 0.99


def test_shipped_classifier_accuracy_on_mnist(mnist):
    model = load_classifier(SHIPPED)
    accuracy = model.accuracy(mnist.test_x[:2000], mnist.test_y[:2000])
    print(f"shipped classifier: {accuracy:.4f} on the first 2000 MNIST test images")
    assert accuracy >= 0.98
