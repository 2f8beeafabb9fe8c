"""The gallery's pictures: test images, the model's own reconstructions of them, prior samples;
every shipped model it names exists, and a model whose dataset is missing is skipped, saying so."""

from __future__ import annotations

import numpy as np
import torch

from vaelab import gallery, viz
from vaelab.checkpoint import load_checkpoint

from .conftest import ROOT

CK = ROOT / "checkpoints"


def test_a_picture_is_test_images_over_their_reconstructions_and_samples(digits):
    picture = gallery.picture(CK / "digits-vae-2d", digits)
    model = load_checkpoint(CK / "digits-vae-2d")
    x = digits.test_x[:8]
    with torch.no_grad():
        rec = model.reconstruct(x).clamp(0, 1)
        samples = model.sample(8, generator=torch.Generator().manual_seed(0)).clamp(0, 1)
    expected = viz.grid_image(list(x) + list(rec) + list(samples), cols=8, pixels=8 * 64, pad=1)
    assert np.array_equal(picture, expected)


def test_every_model_named_is_shipped_and_a_missing_dataset_is_said(tmp_path, monkeypatch):
    for names in gallery.GALLERY.values():
        for name in names:
            assert (CK / name / "config.json").is_file(), name
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "nothing"))  # no MNIST: every gallery model skips
    said = []
    assert gallery.build(tmp_path / "out", CK, progress=said.append) == []
    assert len(said) == sum(map(len, gallery.GALLERY.values())) and all("not on this machine" in s for s in said)
