"""Data: digits, CIFAR-10 pickles, image folders, and the resumable batch order."""

import pickle

import numpy as np
import pytest
import torch

from hamlib.gan.data import CIFAR10, ImageFolder, dataset_from_config, digits
from hamlib.runtime import StepBatches


def test_digits():
    ds = digits(16)
    x, y = ds.tensors
    assert x.shape == (1797, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert y.unique().tolist() == list(range(10)) and y.dtype == torch.long
    with pytest.raises(ValueError, match="resolution"):
        digits(4)


def test_cifar10_reads_the_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 9, 4]}, f)
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    assert len(train) == 15 and len(test) == 3
    x, y = train[1]
    assert x.shape == (3, 32, 32) and y.item() == 9 and -1 <= x.min() and x.max() <= 1
    raw = pickle.load(open(tmp_path / "data_batch_1", "rb"))[b"data"][0]
    assert torch.allclose(train[0][0][0, 0, :3], torch.tensor(raw[:3], dtype=torch.float32) / 127.5 - 1)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        CIFAR10(tmp_path)


def test_image_folder(tmp_path):
    from PIL import Image

    for k, cls in enumerate(["n02", "n01"]):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((20, 30, 3), 40 * k + i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = ImageFolder(tmp_path, resolution=8)
    assert ds.classes == ["n01", "n02"] and len(ds) == 4 and [ds[i][1] for i in range(4)] == [0, 0, 1, 1]
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and y == 0
    assert torch.allclose(x, torch.full_like(x, 40 / 127.5 - 1), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(ValueError, match="data_root"):
        dataset_from_config("folder", None)


def test_batches_are_a_function_of_the_step():
    full = list(StepBatches(10, 4, seed=3, stop=6))
    assert list(StepBatches(10, 4, seed=3, start=4, stop=6)) == full[4:]
    assert len(full) == 6 and all(len(b) == 4 for b in full)
    assert len(set(sum(full[:2], []))) == 8                 # no repeats within an epoch
    assert full[:2] != full[2:4]                             # a new permutation per epoch


def test_ranks_split_each_global_batch():
    whole = StepBatches(12, 6, seed=0).batch(3)
    parts = [StepBatches(12, 6, seed=0, rank=r, world=2).batch(3) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(whole) and not set(parts[0]) & set(parts[1])
    with pytest.raises(ValueError, match="divisible"):
        StepBatches(12, 5, world=2)
    with pytest.raises(ValueError, match="larger"):
        StepBatches(3, 4)
