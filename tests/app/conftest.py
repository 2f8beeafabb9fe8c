"""Shared by the app's tests: the repository's own checkpoints, a machine without MNIST, a drawing.

Uses the committed digits checkpoints only; MNIST-only checks skip (with the reason) when MNIST
is not on the machine.
"""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.app import state

AE2, VAE2, VAE8 = "digits-ae-2d", "digits-vae-2d", "digits-vae-8"


@pytest.fixture(autouse=True, scope="module")
def committed_checkpoints():
    """Handlers read the repository's own checkpoints, whatever VAELAB_CHECKPOINTS says."""
    mp = pytest.MonkeyPatch()
    mp.delenv("VAELAB_CHECKPOINTS", raising=False)
    yield
    mp.undo()


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No MNIST anywhere: VAELAB_DATA points at an empty folder and the dataset cache is cleared."""
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    saved = dict(state._DATA)
    state._DATA.clear()
    yield
    state._DATA.clear()
    state._DATA.update(saved)


def drawing_of_a_one(size=280) -> dict:
    canvas = np.full((size, size), 255, np.uint8)  # white paper, as the Sketchpad sends it
    canvas[40:240, 120:150] = 0  # a vertical black stroke
    return {"background": canvas, "layers": [canvas], "composite": canvas}
