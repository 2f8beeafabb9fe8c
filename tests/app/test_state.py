"""The app's state: the data-status line and the model cache."""

from __future__ import annotations

import numpy as np

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


def test_pca_of_any_size_matches_sklearn():
    """The app's PCA is a slice of one eigendecomposition; it must rebuild images as sklearn's does."""
    from sklearn.decomposition import PCA

    data = state.dataset("digits")
    train = data.train_x[:10000].flatten(1).numpy()
    test = data.test_x[:100].flatten(1).numpy()
    for d in (2, 9):
        ours, theirs = state.pca_for("digits", d), PCA(d, svd_solver="full").fit(train)
        assert ours.n_components_ == d
        np.testing.assert_allclose(ours.inverse_transform(ours.transform(test)),
                                   theirs.inverse_transform(theirs.transform(test)), atol=1e-4)
