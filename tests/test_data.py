"""Datasets: the bundled fallback, the torchvision path (with IDX files the test writes itself,
no network), and clear messages when files are missing."""

import struct

import numpy as np
import pytest
import torch

from vaelab.data import DatasetNotFoundError, find_dataset, load_dataset


def write_idx(folder, prefix, n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return images, labels


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"),
                                         ("kmnist", "KMNIST")])
def test_torchvision_sets_load_from_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    tr_images, tr_labels = write_idx(raw, "train", 12, 0)
    te_images, te_labels = write_idx(raw, "t10k", 5, 1)
    data = load_dataset(name, tmp_path, download=False)
    assert data.train_x.shape == (12, 1, 28, 28) and data.test_x.shape == (5, 1, 28, 28)
    assert data.train_x.dtype == torch.float32
    assert torch.equal(data.train_x[:, 0], torch.tensor(tr_images).float() / 255)
    assert torch.equal(data.test_y, torch.tensor(te_labels).long())
    assert data.image_shape == (1, 28, 28)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    write_idx(tmp_path / "MNIST" / "raw", "train", 3, 0)
    write_idx(tmp_path / "MNIST" / "raw", "t10k", 2, 1)
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    assert len(load_dataset("mnist", download=False).test_x) == 2


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "digits" in message


def test_find_dataset_falls_back_to_bundled_digits(tmp_path):
    data = find_dataset("mnist", tmp_path)
    assert data.name == "digits" and "bundled" in data.source


def test_digits_are_bundled_and_split_reproducibly():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.image_shape == (1, 8, 8)
    assert len(a.train_x) + len(a.test_x) == 1797
    assert 0.0 <= float(a.train_x.min()) and float(a.train_x.max()) <= 1.0
    assert torch.equal(a.test_x, b.test_x)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="choose one of"):
        load_dataset("cifar")


def test_real_mnist_when_present(mnist):
    assert mnist.train_x.shape == (60000, 1, 28, 28) and mnist.test_x.shape == (10000, 1, 28, 28)
    assert int(mnist.test_y[0]) == 7  # the famous first test digit
