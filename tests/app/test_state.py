"""The app's state: the data-status line and the model cache."""

from __future__ import annotations

from vaelab.app import state

from .conftest import VAE8


def test_status_line(no_data):
    assert "no copy of MNIST" in state.dataset_status() and "digits" in state.dataset_status()
    assert "VAELAB" not in state.dataset_status()


def test_models_load_once_and_lazily():
    state.clear_caches()
    assert not state._MODELS
    m = state.load(VAE8)
    assert state.load(VAE8) is m and m.info.variational and m.n_test == len(m.arrays["coords_model"])
