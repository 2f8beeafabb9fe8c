"""2-D projections (PCA, UMAP) of pixels or latents, with an on-disk cache.

UMAP (McInnes et al. 2018) is imported lazily: importing it pulls in numba, which the app must
not pay for at start-up. Results are cached as safetensors files keyed by a hash of the input and
the parameters, so a second call on the same data is a file read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

DEFAULT_CACHE = Path(os.environ.get("VAELAB_CACHE", Path.home() / ".cache" / "vaelab" / "projections"))


def _key(*arrays: np.ndarray, **params) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(a.tobytes())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()[:20]


def _cached(kind: str, fn, train: np.ndarray, test: np.ndarray, cache_dir, **params):
    from safetensors.numpy import load_file, save_file

    if cache_dir is None:
        return fn(train, test, **params)
    folder = Path(cache_dir)
    path = folder / f"{kind}-{_key(train, test, **params)}.safetensors"
    if path.is_file():
        stored = load_file(str(path))
        return stored["train"], stored["test"]
    tr, te = fn(train, test, **params)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({"train": np.ascontiguousarray(tr, np.float32), "test": np.ascontiguousarray(te, np.float32)},
              str(tmp))
    os.replace(tmp, path)
    return tr, te


def _pca(train, test, dims=2):
    from sklearn.decomposition import PCA

    p = PCA(dims, random_state=0).fit(train)
    return p.transform(train).astype(np.float32), p.transform(test).astype(np.float32)


def _umap(train, test, dims=2, n_neighbors=15, min_dist=0.1, seed=0):
    import umap  # lazy: pulls in numba

    reducer = umap.UMAP(n_components=dims, n_neighbors=n_neighbors, min_dist=min_dist,
                        random_state=seed)
    tr = reducer.fit_transform(train)
    return tr.astype(np.float32), reducer.transform(test).astype(np.float32)


def pca_2d(train: np.ndarray, test: np.ndarray, cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """PCA fitted on ``train`` ``(N, D)``; returns 2-D coordinates of train and test."""
    if train.shape[1] == 2:
        return train.astype(np.float32), test.astype(np.float32)
    return _cached("pca", _pca, train, test, cache_dir)


def umap_2d(train: np.ndarray, test: np.ndarray, cache_dir=DEFAULT_CACHE, seed: int = 0):
    """UMAP fitted on ``train`` ``(N, D)``, test placed by ``transform``; cached on disk."""
    return _cached("umap", _umap, train, test, cache_dir, seed=seed)
