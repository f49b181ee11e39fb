"""Data for HamGAN: images in [-1, 1] as (C, R, R) float tensors, with integer class labels.

- `digits(resolution)`: scikit-learn's 8 x 8 handwritten digits (1797 images, 10
  classes, ships with the package: no download), up-sampled bilinearly. The
  offline quick configuration trains on it.
- `CIFAR10(root)`: the standard "CIFAR-10 python version" pickles
  (data_batch_1..5, test_batch) from a folder the user gives.
- `ImageFolder(root, resolution)`: the ImageNet layout root/<class>/<image>;
  classes are the sorted sub-folder names. Images are resized (short side) and
  centre-cropped.
(The batch order comes from `hamlib.train.StepBatches`, shared with HamNet.)
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPEG")


def digits(resolution: int = 16) -> TensorDataset:
    """scikit-learn digits as a TensorDataset of (x (1, R, R) in [-1, 1], y long)."""
    from sklearn.datasets import load_digits

    if resolution < 8:
        raise ValueError(f"digits resolution must be >= 8, got {resolution}")
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0          # (1797, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = x.clamp(0, 1) * 2 - 1                                                   # -> [-1, 1]
    return TensorDataset(x, torch.tensor(d.target, dtype=torch.long))


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file {path} not found (expected the 'python version' batches)")
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


class CIFAR10(Dataset):
    """CIFAR-10 from the python-pickle batches in `root` (the folder cifar-10-batches-py)."""

    def __init__(self, root, train: bool = True):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"CIFAR-10 folder {root} does not exist")
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        xs, ys = [], []
        for name in names:
            batch = _unpickle(root / name)
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise ValueError(f"{root / name}: data has shape {data.shape}, expected (N, 3072)")
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.extend(batch[b"labels"])
        self.x = torch.from_numpy(np.concatenate(xs))       # (N, 3, 32, 32) uint8
        self.y = torch.tensor(ys, dtype=torch.long)
        if len(self.y) != len(self.x):
            raise ValueError(f"CIFAR-10 in {root}: {len(self.x)} images but {len(self.y)} labels")

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i].float() / 127.5 - 1, self.y[i]


class ImageFolder(Dataset):
    """root/<class name>/<image file>, resized and centre-cropped to (3, R, R) in [-1, 1]."""

    def __init__(self, root, resolution: int = 128):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not self.classes:
            raise ValueError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
        self.samples = [(p, k) for k, c in enumerate(self.classes)
                        for p in sorted((root / c).iterdir()) if p.suffix in IMAGE_SUFFIXES]
        if not self.samples:
            raise ValueError(f"no images with suffix {IMAGE_SUFFIXES} under {root}")
        self.resolution = resolution

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as im:
            im = im.convert("RGB")
            R, (w, h) = self.resolution, im.size
            s = R / min(w, h)
            im = im.resize((max(R, round(w * s)), max(R, round(h * s))), Image.BICUBIC)
            w, h = im.size
            left, top = (w - R) // 2, (h - R) // 2
            im = im.crop((left, top, left + R, top + R))
            x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)  # (R, R, 3) -> (3, R, R)
        return x.float() / 127.5 - 1, label


def dataset_from_config(data: str, root=None, resolution: int = 16):
    """'digits' (offline), 'cifar10' (root = the cifar-10-batches-py folder) or 'folder' (ImageNet layout)."""
    if data == "digits":
        return digits(resolution)
    if root is None:
        raise ValueError(f"data={data!r} needs data_root (a folder)")
    if data == "cifar10":
        if resolution != 32:
            raise ValueError(f"CIFAR-10 images are 32 x 32, config asks for {resolution}")
        return CIFAR10(root)
    if data == "folder":
        return ImageFolder(root, resolution)
    raise ValueError(f"data must be 'digits', 'cifar10' or 'folder', got {data!r}")

