"""A small CNN digit classifier: the project's judge of generated images.

Metrics of generative models need a network that knows what a digit looks like: the label a
sample gets (does a conditional VAE draw the digit it was asked for?), the confidence of that
label (an Inception-score-like measure; Salimans et al. 2016) and the penultimate-layer features
(Fréchet distances in the manner of FID, Heusel et al. 2017, and feature-matching losses,
Salimans et al. 2016; Larsen et al. 2016 use a learned equivalent). The architecture is the
classic two-stage LeNet-like CNN (LeCun et al. 1998) with batch norm (Ioffe & Szegedy 2015) and
dropout (Srivastava et al. 2014), sized for 1×28×28 MNIST and equally for 1×8×8 digits: any
image whose sides halve twice.

A trained classifier is a folder like a model checkpoint: ``config.json`` (the
:class:`ClassifierConfig` as JSON), ``model.safetensors`` and ``metrics.json`` (its test
accuracy), so :func:`load_classifier` needs only the folder and never unpickles. The project's
shipped MNIST classifier lives in ``checkpoints/classifier/``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.folders import (CONFIG, METRICS, WEIGHTS, CheckpointError, atomic_folder, load_weights,
                            read_folder_config, read_json, write_json, write_weights)
from vaelab.models.base import LossOutput, Trainable
from vaelab.nn.backbones import conv_grid
from vaelab.registry import config_from_dict

KIND = "classifier"  # config.json's "kind", so a classifier folder is never mistaken for a model


@dataclass(frozen=True)
class ClassifierConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the images; set from the dataset
    num_classes: int = 10  # number of labels
    channels: tuple[int, int] = (16, 32)  # output channels of the two conv stages (two 3×3 convs, then 2×2 max-pool, each)
    feature_dim: int = 128  # width of the penultimate layer: what features() returns
    dropout: float = 0.3  # dropout before each linear layer, in training only


class Classifier(nn.Module):
    """``(B, C, H, W)`` images in [0, 1] -> ``(B, num_classes)`` logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c = config
        h, w = conv_grid(c.image_shape, len(c.channels))  # two halvings: 28 -> 7, 8 -> 2
        layers: list[nn.Module] = []
        prev = c.image_shape[0]
        for ch in c.channels:
            for _ in range(2):
                layers += [nn.Conv2d(prev, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
                prev = ch
            layers.append(nn.MaxPool2d(2))
        self.trunk = nn.Sequential(*layers)  # (B, C, H, W) -> (B, channels[-1], H/4, W/4)
        self.embed = nn.Sequential(  # (B, channels[-1]·h·w) -> (B, feature_dim)
            nn.Flatten(), nn.Dropout(c.dropout), nn.Linear(prev * h * w, c.feature_dim, bias=False),
            nn.BatchNorm1d(c.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.feature_dim, c.num_classes))
        self.metrics: dict = {}  # filled by train_classifier / load_classifier (test accuracy, ...)

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 3:  # (B, H, W) single-channel batch
            images = images.unsqueeze(1)
        if tuple(images.shape[1:]) != tuple(self.config.image_shape):
            raise ValueError(f"this classifier takes images of shape {self.config.image_shape}, "
                             f"got a batch of {tuple(images.shape[1:])}")
        return images.to(next(self.parameters()).device, torch.float32)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.trunk(self._check(images))))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations ``(B, feature_dim)``.

        Differentiable with respect to ``images`` (for feature-matching losses); call it in eval
        mode (:func:`load_classifier` returns the model frozen and in eval mode) so batch norm
        uses its running statistics and dropout is off.
        """
        return self.embed(self.trunk(self._check(images)))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels ``(B,)`` and class probabilities ``(B, num_classes)``, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            probs = torch.cat([F.softmax(self(images[i:i + batch_size]), 1)
                               for i in range(0, len(images), batch_size)])
        finally:
            self.train(was_training)
        return probs.argmax(1), probs

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        labels_hat, _ = self.predict(images)
        return float((labels_hat.cpu() == labels.cpu()).float().mean())


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels in each direction, filling with zeros
    (MNIST's background): ``(B, C, H, W) -> (B, C, H, W)``."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None])  # (B, H) source rows in the padded image
    cols = (dx[:, None] + torch.arange(w)[None])  # (B, W)
    batch = torch.arange(b)[:, None, None]
    # (B, H, W, C) after advanced indexing on the batch and spatial axes; back to (B, C, H, W)
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class ClassifierObjective(Trainable):
    """What the training loop trains when it fits the classifier: cross-entropy of the labels,
    on images translated by up to ``max_shift`` pixels in training (:func:`_shift`, drawn from
    torch's global generator, which the loop seeds and saves for exact resume)."""

    def __init__(self, classifier: Classifier, max_shift: int):
        super().__init__()
        self.classifier = classifier
        self.max_shift = max_shift

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None, step: int = 0) -> LossOutput:
        if self.training:
            x = _shift(x, self.max_shift, None)
        logits = self.classifier(x)  # (B, num_classes)
        ce = F.cross_entropy(logits, y)
        accuracy = (logits.detach().argmax(1) == y).float().mean()
        return LossOutput(ce, {"total": ce, "accuracy": accuracy})


def train_classifier(data, epochs: int = 5, *, batch_size: int = 128, lr: float = 2e-3,
                     weight_decay: float = 1e-4, max_shift: int | None = None, seed: int = 0,
                     threads: int | None = None, out: str | os.PathLike | None = None,
                     progress: bool = True, **config_overrides) -> Classifier:
    """Train a :class:`Classifier` on ``data`` (a :class:`vaelab.data.Dataset`) and return it,
    in eval mode, with ``.metrics`` holding its accuracy on the test set; with ``out``, also save
    it there (after every epoch, and with its metrics at the end).

    It trains through the one training loop (:class:`vaelab.train.Training`), validated on the
    validation split: AdamW with a one-cycle learning-rate schedule (Smith & Topin 2019) reaches
    its accuracy in a few epochs. ``max_shift`` translates training images by up to that many
    pixels (default: 2 for images of side ≥ 16, none for 8×8 digits, where 2 pixels is a quarter
    of the image). ``config_overrides`` set fields of :class:`ClassifierConfig`.
    """
    from vaelab.train import NonFiniteLossError, Stopped, Training, TrainSettings

    data = data.with_validation()
    torch.manual_seed(seed)
    config = config_from_dict(ClassifierConfig, {"image_shape": tuple(data.image_shape),
                                                 "num_classes": data.num_classes, **config_overrides})
    if max_shift is None:
        max_shift = 2 if min(config.image_shape[1:]) >= 16 else 0
    model = Classifier(config)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule="onecycle",
                             weight_decay=weight_decay, seed=seed, threads=threads, progress=progress)

    def save(objective, folder, history, training_state):  # the classifier's own folder
        objective.classifier.metrics = {"dataset": data.name, "history": history["epochs"]}
        save_classifier(objective.classifier, folder)

    run = Training(ClassifierObjective(model, max_shift), data, settings, out, save=save)
    for event in run:
        if isinstance(event, Stopped) and event.reason.startswith("non-finite"):
            raise NonFiniteLossError(f"classifier: {event.message}")
    model.eval()
    model.metrics = {"dataset": data.name, "test_accuracy": model.accuracy(data.test_x, data.test_y),
                     "test_images": len(data.test_x), "train_images": len(data.train_x),
                     "validation_images": len(data.val_x), "epochs": epochs, "batch_size": batch_size,
                     "lr": lr, "lr_schedule": "onecycle", "weight_decay": weight_decay, "max_shift": max_shift,
                     "seed": seed, "history": run.history["epochs"]}
    if out is not None:
        save_classifier(model, out)
    return model


def save_classifier(model: Classifier, out: str | os.PathLike) -> Path:
    """Write ``model`` to the folder ``out`` (config.json, model.safetensors, metrics.json),
    atomically like a model checkpoint (:func:`vaelab.folders.atomic_folder`)."""
    from vaelab.version import __version__

    out = Path(out)
    with atomic_folder(out) as tmp:
        write_json(tmp / CONFIG, {"kind": KIND, "config": asdict(model.config), "vaelab_version": __version__})
        write_weights(model, tmp / WEIGHTS)
        write_json(tmp / METRICS, model.metrics)
    return out


def load_classifier(folder: str | os.PathLike, device: str | torch.device = "cpu") -> Classifier:
    """The classifier saved in ``folder``, in eval mode with its parameters frozen (so losses
    built on its features never train it); ``.metrics`` holds what metrics.json says."""
    folder = Path(folder)
    meta = read_folder_config(folder, "classifier")
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{folder} holds a {meta.get('kind') or meta.get('variant')!r}, not a classifier")
    model = Classifier(config_from_dict(ClassifierConfig, meta["config"]))
    load_weights(model, folder, device)
    model.metrics = read_json(folder, METRICS, {})
    model.requires_grad_(False)
    return model.to(device).eval()
