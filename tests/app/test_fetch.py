"""MNIST fetched in the background when the server has none: against a loopback server holding
small MNIST-format files (torchvision's mirror list pointed at it), the banner follows the
download and the views that need the images light up; offline or unreachable, it says why."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading

import numpy as np
import pytest

from vaelab import viz
from vaelab.app import state
from vaelab.app.tabs import latent_map


def idx_images(a: np.ndarray) -> bytes:
    return struct.pack(">IIII", 2051, len(a), 28, 28) + a.astype(np.uint8).tobytes()


def idx_labels(a: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(a)) + a.astype(np.uint8).tobytes()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A loopback HTTP server with the four MNIST files (30 training, 12 test images)."""
    import torchvision.datasets as tvd

    rng = np.random.default_rng(0)
    test_x = rng.integers(0, 256, (12, 28, 28))
    files = {"train-images-idx3-ubyte.gz": idx_images(rng.integers(0, 256, (30, 28, 28))),
             "train-labels-idx1-ubyte.gz": idx_labels(rng.integers(0, 10, 30)),
             "t10k-images-idx3-ubyte.gz": idx_images(test_x),
             "t10k-labels-idx1-ubyte.gz": idx_labels(rng.integers(0, 10, 12))}
    served = tmp_path / "served"
    served.mkdir()
    resources = []
    for name, raw in files.items():
        data = gzip.compress(raw)
        (served / name).write_bytes(data)
        resources.append((name, hashlib.md5(data).hexdigest()))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(served), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(tvd.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
    monkeypatch.setattr(tvd.MNIST, "resources", resources)
    yield test_x
    server.shutdown()


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """An empty data folder, fetching allowed, and the app's dataset caches restored afterwards."""
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("VAELAB_FETCH", "1")
    for k in ("HF_HUB_OFFLINE", "VAELAB_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    saved_data, saved_pca, saved_fetch = dict(state._DATA), dict(state._PCA), dict(state._FETCH)
    state._DATA.pop("mnist", None)
    state._PCA.pop("mnist", None)
    state._FETCH.update(state="idle", reason="")
    yield
    state._DATA.clear()
    state._DATA.update(saved_data)
    state._PCA.clear()
    state._PCA.update(saved_pca)
    state._FETCH.clear()
    state._FETCH.update(saved_fetch)


MODEL = "vae-2d"  # an MNIST model shipped in checkpoints/


def test_the_download_runs_in_the_background_and_the_views_light_up(mirror, no_mnist):
    before = latent_map.pick(MODEL, 3)
    assert "not on this server" in before["caption"] or "not on this machine" in before["caption"]
    assert state.dataset_status().startswith("This server has no copy of MNIST")
    thread = state.start_fetch()
    assert thread is not None
    assert state.dataset_status().startswith(("Downloading MNIST in the background", "The MNIST test images"))
    thread.join(60)
    assert state._FETCH["state"] == "done" and state.mnist_available()
    assert state.dataset_status().startswith("The MNIST test images are on this server")
    after = latent_map.pick(MODEL, 3)
    assert np.array_equal(after["original"], viz.to_display(mirror[3] / 255.0))  # the downloaded image itself
    assert "PCA:" in after["caption"] and "PCA reconstruction missing" not in after["caption"]


def test_offline_it_says_so_and_fetches_nothing(no_mnist, monkeypatch):
    monkeypatch.setenv("VAELAB_OFFLINE", "1")
    assert state.start_fetch() is None
    assert "this server is offline" in state.dataset_status()


def test_an_unreachable_mirror_is_named_in_the_banner(no_mnist, monkeypatch):
    import torchvision.datasets as tvd

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(tvd.MNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    thread = state.start_fetch()
    thread.join(60)
    assert state._FETCH["state"] == "failed"
    assert "could not download it" in state.dataset_status() and not state.mnist_available()
    status = state.dataset_status()
    assert "no network connection" in status  # a plain sentence
    assert "Error" not in status and "http" not in status and "127.0.0.1" not in status  # no exception text, no URL


def test_a_failed_download_is_told_in_words_never_as_an_exception():
    import errno

    cases = [(ConnectionRefusedError(111, "Connection refused"), "no network connection"),
             (OSError(errno.ENOSPC, "No space left on device", "/data/MNIST/raw/x.gz"), "disk is full"),
             (PermissionError(13, "Permission denied", "/data"), "may not write"),
             (RuntimeError("File not found or corrupted."), "did not complete")]
    for error, words in cases:
        text = state.fetch_failure(error)
        assert words in text and "/data" not in text and type(error).__name__ not in text
