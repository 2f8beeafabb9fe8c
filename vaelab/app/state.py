"""The app's state: module-level caches behind one lock, so a Gradio session carries only names.

Models (with their metrics and the artifacts evaluation cached beside them) are keyed by
checkpoint folder and name, datasets by name, fitted PCAs by dataset and size, the draw tab's
plan by checkpoint folder. Everything loads on first use. With no dataset on disk the app still
works from each checkpoint's ``artifacts.safetensors`` (2-D coordinates, labels, test-set
latents); views that need the original images say why they are missing.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaelab.app import catalogue as _catalogue
from vaelab.app.catalogue import Card, card
from vaelab.paths import checkpoints_dir


@dataclass
class Loaded:
    card: Card
    model: torch.nn.Module
    metrics: dict
    arrays: dict[str, np.ndarray]
    dataset: object = None  # an explored model's own images (a vaelab Dataset)
    pca: object = None  # and their PCA
    classes: list | None = None  # and the names of their labels (digits when None)

    @property
    def noun(self) -> str:
        """What a label is: "digit" for the digit datasets, else "class"."""
        return "digit" if self.classes is None else "class"

    def class_name(self, label) -> str:
        label = int(label)
        if self.classes is None or not 0 <= label < len(self.classes):
            return str(label)
        return str(self.classes[label])

    @property
    def info(self):
        return self.model.info

    @property
    def labels(self) -> np.ndarray:
        return self.arrays["test_labels"]

    @property
    def n_test(self) -> int:
        return len(self.arrays["test_labels"])

    @property
    def single_vector_latent(self) -> bool:
        """``decode`` takes one ``(B, D)`` tensor, so a cached latent row can be decoded."""
        info = self.info
        return info.latent == "continuous" and info.levels == 1 and len(info.latent_shapes[0]) == 1


_MODELS: dict[tuple[str, str], Loaded] = {}
_DATA: dict[str, object] = {}  # datasets by name, and the draw tab's classifier
_PCA: dict[str, object] = {}  # every principal component, by dataset
_PLANS: dict[str, object] = {}  # the draw tab's DrawPlan per checkpoints folder
_LOCK = threading.RLock()


def clear_caches() -> None:
    with _LOCK:
        _MODELS.clear()
        _DATA.clear()
        _PCA.clear()
        for m in _ADOPTED.values():  # explored models keep their images
            _DATA[m.card.dataset] = m.dataset
            if m.pca is not None:
                _PCA[m.card.dataset] = m.pca


def forget(name: str) -> None:
    """Drop the cached model ``name`` (a model trained in the app, forgotten by the catalogue)."""
    with _LOCK:
        for key in [k for k in _MODELS if k[1] == name]:
            del _MODELS[key]


_catalogue._FORGET.append(forget)


_ADOPTED: dict[str, Loaded] = {}  # models built in this process (vaelab.explore), by name


def adopt(m: Loaded) -> Loaded:
    """Serve ``m`` (a model given to :func:`vaelab.explore`, already embedded) under its card's
    name, with its own images (``m.dataset``) as the dataset ``m.card.dataset`` and their PCA."""
    with _LOCK:
        _ADOPTED[m.card.name] = m
        _DATA[m.card.dataset] = m.dataset
        if m.pca is not None:
            _PCA[m.card.dataset] = m.pca
    return m


def load(name: str) -> Loaded:
    """The checkpoint ``name`` with its metrics and artifacts, loaded once per process."""
    from vaelab.artifacts import load_artifacts
    from vaelab.checkpoint import load_checkpoint

    if name in _ADOPTED:
        return _ADOPTED[name]
    key = (str(checkpoints_dir()), name)
    hit = _MODELS.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        if key not in _MODELS:
            c = card(name)
            model = load_checkpoint(c.folder)
            for p in model.parameters():
                p.requires_grad_(False)
            _MODELS[key] = Loaded(c, model, json.loads((c.folder / "metrics.json").read_text()),
                                  load_artifacts(c.folder))
        return _MODELS[key]


def dataset(name: str):
    """The dataset ``name`` if it is on this machine (never downloads), else ``None``."""
    if name in _DATA:
        return _DATA[name]
    from vaelab.data import DatasetNotFoundError, load_dataset

    with _LOCK:
        if name not in _DATA:
            try:
                _DATA[name] = load_dataset(name, download=False)
            except (DatasetNotFoundError, ImportError, RuntimeError, OSError):
                _DATA[name] = None
        return _DATA[name]


def runs_dir() -> Path:
    """Where models trained or uploaded in the app are written (``VAELAB_RUNS``, default a
    temporary folder): one folder per browser session (and one for uploads)."""
    return Path(os.environ.get("VAELAB_RUNS") or Path(tempfile.gettempdir()) / "vaelab-runs")


MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def mnist_available() -> bool:
    """All four MNIST files are in the data folder (torchvision's layout)."""
    from vaelab.data import data_dir

    raw = data_dir() / "MNIST" / "raw"
    return all((raw / f).is_file() for f in MNIST_FILES)


# --- fetching MNIST in the background (a Space has network and no data on disk) -------------------

_FETCH: dict = {"state": "idle", "reason": "", "started": 0.0}  # idle | fetching | done | failed | offline


def offline() -> bool:
    """No network to use: ``HF_HUB_OFFLINE=1`` (as on an offline machine) or ``VAELAB_OFFLINE=1``."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "VAELAB_OFFLINE"))


def fetch_running() -> bool:
    return _FETCH["state"] == "fetching"


def start_fetch() -> threading.Thread | None:
    """With no MNIST on disk, download it through torchvision into the data folder in a background
    thread (start-up never waits); when it is done the views that need it light up (the cached
    "not here" is forgotten). Offline, or with ``VAELAB_FETCH=0``, nothing is fetched and
    :func:`dataset_status` says so."""
    if mnist_available() or fetch_running():
        return None
    if offline() or os.environ.get("VAELAB_FETCH", "1") == "0":
        _FETCH.update(state="offline", reason="this server is offline" if offline() else "fetching is turned off")
        return None
    import time

    _FETCH.update(state="fetching", reason="", started=time.time())

    def run():
        from vaelab.data import data_dir

        try:
            import torchvision.datasets as tvd

            for train in (False, True):  # the test images first: the views need those
                tvd.MNIST(root=str(data_dir()), train=train, download=True)
        except Exception as error:  # no route, a mirror down, a full disk: the banner says which, in words
            import logging

            logging.getLogger(__name__).warning("MNIST could not be downloaded: %s: %s", type(error).__name__, error)
            _FETCH.update(state="failed", reason=fetch_failure(error))
            return
        with _LOCK:
            _DATA.pop("mnist", None)
            _PCA.pop("mnist", None)
        _FETCH.update(state="done" if mnist_available() else "failed",
                      reason="" if mnist_available() else "the files did not arrive whole")
        if mnist_available():
            dataset("mnist")  # loaded now rather than by the next visitor's click

    thread = threading.Thread(target=run, name="vaelab-fetch-mnist", daemon=True)
    thread.start()
    return thread


def fetch_failure(error: BaseException) -> str:
    """Why a download failed, as a visitor can read it (no exception text, no path; the server's
    log has the details)."""
    import errno
    import socket
    import urllib.error

    text = f"{type(error).__name__} {error}".lower()
    if isinstance(error, (socket.gaierror, urllib.error.URLError, ConnectionError, TimeoutError)) or any(
            w in text for w in ("name or service", "temporary failure", "network is unreachable", "timed out",
                                "connection refused", "no route", "urlopen", "nodename")):
        return "the server has no network connection to the download mirrors"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "the server's disk is full"
    if isinstance(error, PermissionError):
        return "the server may not write to its data folder"
    return "the download did not complete"


def dataset_status() -> str:
    """One line for visitors on what this server's data allows, without loading it. It names no
    setting and no path: those are for whoever hosts the app (:func:`host_instructions`)."""
    import time

    if mnist_available():
        return ("The MNIST test images are on this server: originals, neighbours and PCA rebuilds "
                "appear beside each model's.")
    missing = ("MNIST models show what their evaluation cached and still decode and draw, without original "
               "images or PCA; the 8×8 digits models work in full.")
    if _FETCH["state"] == "fetching":
        return (f"Downloading MNIST in the background ({time.time() - _FETCH['started']:.0f} s so far): originals, "
                "neighbours and PCA rebuilds appear when it is done. Until then, " + missing[0].lower() + missing[1:])
    if _FETCH["state"] == "failed":
        return f"This server has no copy of MNIST and could not download it ({_FETCH['reason']}): {missing}"
    if _FETCH["state"] == "offline":
        return f"This server has no copy of MNIST ({_FETCH['reason']}): {missing}"
    return f"This server has no copy of MNIST: {missing}"


def host_instructions() -> str:
    """For whoever runs the app: where data and checkpoints are looked for, and how to change it."""
    from vaelab.data import data_dir
    from vaelab.paths import checkpoints_dir

    where = data_dir()
    state_line = ("MNIST was found there." if mnist_available() else
                  "MNIST was not found there: the app falls back to what the checkpoints cached.")
    return (f"MNIST is looked for in `{where}` (`VAELAB_DATA` sets the folder; it holds `MNIST/raw/` in "
            f"torchvision's layout). {state_line} Checkpoints are read from `{checkpoints_dir()}` "
            "(`VAELAB_CHECKPOINTS` sets another folder). What the app fetches, and when: only MNIST (about "
            "11 MB, from torchvision's mirrors), once, in the background at start-up, when it is not in that "
            "folder and the server has network; `VAELAB_FETCH=0` (or `HF_HUB_OFFLINE=1`) turns that off. A model "
            "is downloaded only when a visitor gives a Hugging Face Hub id in the Models tab. Nothing else "
            "is fetched, and no model or dataset file is ever needed to start.")


@dataclass(frozen=True)
class PCA:
    """PCA with its first ``n_components_`` components: sklearn's ``transform`` /
    ``inverse_transform`` on the rows of a matrix, over a basis shared by every size."""

    mean_: np.ndarray
    basis: np.ndarray  # (n_components_, pixels), by variance explained, largest first

    @property
    def n_components_(self) -> int:
        return len(self.basis)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean_) @ self.basis.T

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, np.float64) @ self.basis + self.mean_


def pca_basis(dataset_name: str) -> PCA | None:
    """Every principal component of (up to 10,000) training images, computed once per dataset
    (an eigendecomposition of the pixel covariance: 0.4 s for MNIST), so a PCA of any size is
    a slice of it; ``None`` when the dataset is not on this machine."""
    if dataset_name not in _PCA:
        data = dataset(dataset_name)
        if data is None:
            return None
        with _LOCK:
            if dataset_name not in _PCA:
                train = data.train_x[:10000].flatten(1).numpy().astype(np.float64)
                mean = train.mean(0)
                centred = train - mean
                values, vectors = np.linalg.eigh(centred.T @ centred / (len(train) - 1))
                _PCA[dataset_name] = PCA(mean, vectors[:, ::-1].T.copy())
    return _PCA[dataset_name]


def pca_for(dataset_name: str, dims: int) -> PCA | None:
    """PCA with ``dims`` components fitted on (up to 10,000) training images."""
    full = pca_basis(dataset_name)
    if full is None:
        return None
    return PCA(full.mean_, full.basis[:max(1, min(int(dims), len(full.basis)))])


def test_image(m: Loaded, i: int) -> torch.Tensor | None:
    """Test image ``i`` of the cached artifacts, ``(1, C, H, W)``, if the dataset is here."""
    data = dataset(m.card.dataset)
    if data is None:
        return None
    j = int(m.arrays["test_index"][i])
    return data.test_x[j:j + 1] if j < len(data.test_x) else None


@torch.no_grad()
def decode(m: Loaded, z: np.ndarray | torch.Tensor, label: int | None = None) -> torch.Tensor:
    """Latent rows ``(B, D)`` -> images ``(B, C, H, W)`` in [0, 1]."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, m.card.latent_dim)
    y = None if not m.info.conditional else torch.full((len(z),), int(label or 0))
    return m.model.decode(z, y).clamp(0, 1)


@torch.no_grad()
def reconstruct_test(m: Loaded, i: int) -> tuple[torch.Tensor | None, str]:
    """The model's reconstruction of test image ``i``: from the image when the dataset is
    here, else by decoding the latent (or codes) cached at evaluation. Returns (image, how)."""
    x = test_image(m, i)
    label = int(m.labels[i])
    if x is not None:
        y = torch.tensor([label]) if m.info.conditional else None
        return m.model.reconstruct(x, y).clamp(0, 1), "reconstruction of the original"
    if m.single_vector_latent and "latent_test" in m.arrays:
        return decode(m, m.arrays["latent_test"][i:i + 1], label), "decoded from the cached latent"
    if m.info.latent == "discrete" and "indices_level0" in m.arrays and m.info.levels == 1:
        idx = torch.as_tensor(m.arrays["indices_level0"][i:i + 1].astype(np.int64))
        return m.model.decode(m.model.latent_from_indices(idx)).clamp(0, 1), "decoded from the cached codes"
    return None, "no cached latent to decode and no dataset to encode"


def warm_up(model_names: list[str] = ()) -> threading.Thread:
    """Load in a background thread what the first requests would otherwise wait for: scikit-learn
    (1.4 s to import), the datasets on this machine, their PCA bases and ``model_names``. The
    app starts without waiting; a visitor's first switch to a model finds them ready."""
    def run():
        try:
            import sklearn  # noqa: F401  (the digits dataset and the Models tab's neighbours use it)
            from vaelab.data import load_dataset  # noqa: F401
            for name in ("digits", "mnist"):
                if name == "mnist" and not mnist_available():
                    continue
                if dataset(name) is not None:
                    pca_basis(name)
            for name in model_names:
                load(name)
        except Exception as error:  # a warm-up must never take the app down; the request will say why
            import logging
            logging.getLogger(__name__).warning("warm-up stopped: %s: %s", type(error).__name__, error)
    # not a daemon: a process that exits while the thread is inside torch or scikit-learn would
    # abort; exit waits for the few seconds the warm-up takes instead
    thread = threading.Thread(target=run, name="vaelab-warm-up", daemon=False)
    thread.start()
    return thread
