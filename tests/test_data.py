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
    # one of the 12 training images is held out for validation (10 % of a small set)
    assert data.train_x.shape == (11, 1, 28, 28) and data.val_x.shape == (1, 1, 28, 28)
    assert data.test_x.shape == (5, 1, 28, 28)
    assert data.train_x.dtype == torch.float32
    both = torch.cat([data.train_x, data.val_x])[:, 0]
    expected = torch.tensor(tr_images).float() / 255
    assert sorted(map(tuple, both.flatten(1).tolist())) == sorted(map(tuple, expected.flatten(1).tolist()))
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
    assert len(a.train_x) + len(a.val_x) + len(a.test_x) == 1797
    assert 0.0 <= float(a.train_x.min()) and float(a.train_x.max()) <= 1.0
    assert torch.equal(a.test_x, b.test_x)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="choose one of"):
        load_dataset("cifar")


def test_validation_split_is_held_out_seeded_and_sized():
    from vaelab.data import load_digits, validation_size

    raw = load_digits()
    a, b = raw.with_validation(), raw.with_validation()
    assert len(a.val_x) == validation_size(len(raw.train_x)) == round(0.1 * len(raw.train_x))
    assert validation_size(60000) == 5000 and validation_size(100) == 10
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_x, b.train_x)  # seeded
    assert len(a.train_x) + len(a.val_x) == len(raw.train_x)
    # disjoint: no validation image is among the training images
    train_rows = {tuple(r) for r in a.train_x.flatten(1).tolist()}
    raw_rows = [tuple(r) for r in raw.train_x.flatten(1).tolist()]
    duplicates = len(raw_rows) - len(set(raw_rows))  # digits has a few identical images
    assert sum(tuple(r) in train_rows for r in a.val_x.flatten(1).tolist()) <= duplicates
    assert torch.equal(a.test_x, raw.test_x)  # the test set is untouched
    assert a.with_validation() is a  # already split
    assert not torch.equal(raw.with_validation(seed=1).val_x, a.val_x)


def test_training_validates_on_the_validation_split_not_the_test_set(digits, monkeypatch):
    import vaelab
    import vaelab.train

    seen = []
    original = vaelab.train.evaluate_loss

    def spy(model, x, y, settings, step=0):
        seen.append(x)
        return original(model, x, y, settings, step)

    monkeypatch.setattr(vaelab.train, "evaluate_loss", spy)
    torch.manual_seed(0)
    history = vaelab.fit(vaelab.create("ae", tiny=True), digits, epochs=1, progress=False)
    assert len(seen) == 1 and torch.equal(seen[0], digits.val_x)
    assert not any(torch.equal(seen[0][:1], digits.test_x[i:i + 1]) for i in range(len(digits.test_x)))
    assert "held out of the training data" in history["validation"]


def test_real_mnist_when_present(mnist):
    assert mnist.train_x.shape == (55000, 1, 28, 28) and mnist.val_x.shape == (5000, 1, 28, 28)
    assert mnist.test_x.shape == (10000, 1, 28, 28)
    assert int(mnist.test_y[0]) == 7  # the famous first test digit
