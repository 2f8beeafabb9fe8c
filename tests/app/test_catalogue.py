"""The checkpoint catalogue: which checkpoints the app lists, and how it labels them."""

from __future__ import annotations

from vaelab.app import catalogue
from vaelab.registry import FAMILIES

from .conftest import AE2, VAE2, VAE8


def test_scan_finds_the_committed_checkpoints_with_labels():
    cards = {c.name: c for c in catalogue.scan_checkpoints()}
    assert {AE2, VAE2, VAE8} <= set(cards)
    assert cards[VAE8].has_sliders and not cards[AE2].has_sliders
    assert cards[AE2].family == "classic" and cards[VAE2].family == "variational"
    label = dict((v, k) for k, v in catalogue.choices(list(cards.values())))[VAE8]
    assert label == f"{VAE8} · 8-D"  # short in the picker; the detail is shown beside it
    assert "[variational]" in cards[VAE8].label and "Variational autoencoder" in cards[VAE8].label
    families = [c.family for c in catalogue.scan_checkpoints()]
    assert families == sorted(families, key=FAMILIES.index)  # grouped by family


def test_scan_skips_unfinished_and_foreign_folders(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "config.json").write_text('{"variant": "vae", "config": {}}')
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "config.json").write_text('{"kind": "classifier"}')
    assert catalogue.scan_checkpoints(tmp_path) == []
