"""Datasets behind one function, as tensors that live in memory.

``load_dataset(name)`` returns train/validation/test images ``(N, C, H, W)`` float32 in [0, 1]
and integer labels. The validation split is carved from the official training set (seeded: 5,000
images of an MNIST-sized set, 10 % of a small one) and is what training validates on each epoch,
stops early on and selects with; the test set is touched only by evaluation (``eval``). ``mnist``, ``fashion-mnist`` and ``kmnist`` come through torchvision from a data
directory (the ``data_dir`` argument, else ``$VAELAB_DATA``, else ``~/.cache/vaelab/data``) in
torchvision's layout (``<dir>/MNIST/raw/…``); they are downloaded only when allowed. ``digits``
is scikit-learn's bundled 8×8 digits: it needs no network and no files, so it is the fallback
everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_DATA_DIR = Path.home() / ".cache" / "vaelab" / "data"
TORCHVISION_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
DATASETS = (*TORCHVISION_SETS, "digits")
DIGITS_TEST_FRACTION = 0.2  # digits has no official split; a fixed, seeded 80/20 one
VAL_SIZE_LARGE = 5000  # validation images held out of MNIST-sized training sets (≥ LARGE_TRAIN images)
LARGE_TRAIN = 50000
VAL_FRACTION = 0.1  # held out of smaller training sets


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are missing and could not be downloaded; the message says what to do."""


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str  # where it came from, for status lines ("MNIST from /data", "bundled digits")
    num_classes: int = 10
    val_x: torch.Tensor | None = None  # held out of the training data (not in train_x); None = not split yet
    val_y: torch.Tensor | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def subset(self, n_train: int | None = None, n_test: int | None = None,
               n_val: int | None = None) -> "Dataset":
        """The first ``n_train``/``n_test``/``n_val`` examples (for quick runs and tests); the
        validation split keeps ``n_test`` examples unless ``n_val`` says otherwise."""
        n_val = n_test if n_val is None else n_val
        return Dataset(self.name, self.train_x[:n_train], self.train_y[:n_train],
                       self.test_x[:n_test], self.test_y[:n_test], self.source, self.num_classes,
                       None if self.val_x is None else self.val_x[:n_val],
                       None if self.val_y is None else self.val_y[:n_val])

    def with_validation(self, size: int | None = None, seed: int = 0) -> "Dataset":
        """This dataset with a validation split carved from its training images (which no longer
        include them): ``size`` images, by default :func:`validation_size`, chosen by a seeded
        permutation; both parts keep their original order. A dataset already split is returned
        as it is."""
        if self.val_x is not None:
            return self
        n = len(self.train_x)
        size = validation_size(n) if size is None else size
        if not 0 < size < n:
            raise ValueError(f"a validation split of {size} leaves no training images out of {n}")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        val = perm[:size].sort().values
        train = perm[size:].sort().values
        return Dataset(self.name, self.train_x[train], self.train_y[train], self.test_x, self.test_y,
                       self.source, self.num_classes, self.train_x[val], self.train_y[val])


def validation_size(n_train: int) -> int:
    """Images held out for validation: 5,000 of an MNIST-sized set, 10 % of a smaller one."""
    return VAL_SIZE_LARGE if n_train >= LARGE_TRAIN else max(1, round(VAL_FRACTION * n_train))


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Where datasets are looked for: the argument, else ``$VAELAB_DATA``, else the user cache."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get("VAELAB_DATA")
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8×8 digits (values 0–16, scaled to [0, 1]), split 80/20 with ``seed``."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(x) * DIGITS_TEST_FRACTION))
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test],
                   source="scikit-learn's bundled 8×8 digits (no download needed)")


def load_torchvision(name: str, root: Path, download: bool | None) -> Dataset:
    """MNIST-like sets through torchvision; ``download=None`` tries only if files are missing."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_SETS[name])
    raw = root / TORCHVISION_SETS[name] / "raw"

    def build(train: bool, allow: bool):
        return cls(root=str(root), train=train, download=allow)

    try:
        parts = [build(True, False), build(False, False)]
    except RuntimeError as missing:
        if download is False:
            raise DatasetNotFoundError(
                f"{name} not found: looked for its files in {raw}. Put the four IDX files there "
                f"(torchvision's layout), set VAELAB_DATA or --data-dir to a folder that has "
                f"{TORCHVISION_SETS[name]}/raw/, or allow downloading. Offline, use --dataset digits."
            ) from missing
        try:
            parts = [build(True, True), build(False, True)]
        except Exception as error:  # network errors come in many types
            raise DatasetNotFoundError(
                f"{name} not found in {raw} and the download failed ({type(error).__name__}: "
                f"{error}). Put the IDX files in {raw}, set VAELAB_DATA to a folder that has "
                f"them, or use --dataset digits, which needs no files."
            ) from error
    (tr, te) = parts

    def tensors(ds):
        return ds.data.unsqueeze(1).float() / 255.0, ds.targets.long()

    train_x, train_y = tensors(tr)
    test_x, test_y = tensors(te)
    return Dataset(name, train_x, train_y, test_x, test_y, source=f"{TORCHVISION_SETS[name]} from {root}")


def load_dataset(name: str, data_dir_: str | os.PathLike | None = None,
                 download: bool | None = None) -> Dataset:
    """Train/test tensors and labels for ``name`` (one of :data:`DATASETS`).

    ``download``: ``True`` fetch if missing, ``False`` never, ``None`` (default) try when missing.
    """
    if name == "digits":
        return load_digits().with_validation()
    if name not in TORCHVISION_SETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return load_torchvision(name, data_dir(data_dir_), download).with_validation()


def find_dataset(preferred: str = "mnist", data_dir_=None) -> Dataset:
    """``preferred`` if its files are present (never downloads), else the bundled digits."""
    try:
        return load_dataset(preferred, data_dir_, download=False)
    except DatasetNotFoundError:
        return load_digits().with_validation()
