"""Data for HamGAN: images in [-1, 1] as (C, R, R) float tensors, with integer class labels.

- `digits(resolution)`: scikit-learn's 8 x 8 handwritten digits (1797 images, 10
  classes, ships with the package: no download), up-sampled bilinearly. The
  offline quick configuration trains on it.
- `CIFAR10(root)`: the standard "CIFAR-10 python version" pickles
  (data_batch_1..5, test_batch) from a folder the user gives. They are read with
  an unpickler that builds only numpy arrays, lists, dicts, bytes and numbers, so a
  crafted batch cannot run code.
- `ImageFolder(root, resolution)`: the ImageNet layout root/<class>/<image>;
  classes are the sorted names of the visible sub-folders (names starting with "."
  are skipped, folders and files alike); suffixes match in any case. Images are
  resized (short side) and centre-cropped; 16-bit greyscale is scaled to 8 bits.
(The batch order comes from `hamlib.runtime.StepBatches`, shared with HamNet.)
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")        # compared lower-cased
CIFAR_CLASSES = 10


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


def _cifar_globals() -> dict:
    """(module, name) -> object: every global a CIFAR-10 batch may name, under numpy 1 and 2 spellings."""
    reconstruct = np.ndarray((0,)).__reduce__()[0]         # numpy's ndarray rebuilder (protocols 0-4)
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]           # its protocol-5 counterpart
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): codecs.encode}       # how Python 3 writes bytes at protocol 2
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class CifarUnpickler(pickle.Unpickler):
    """Unpickles data only: any global outside `_cifar_globals()` is refused before it is looked up."""

    def __init__(self, f):
        super().__init__(f, encoding="bytes")
        self.allowed = _cifar_globals()

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}; a CIFAR-10 batch holds only numpy arrays, "
                "lists, bytes and numbers (is this file really a CIFAR-10 python batch?)")
        return self.allowed[(module, name)]


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (data (N, 3072) uint8, labels (N,) int64 in 0..9); clear errors otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file {path} not found (expected the 'python version' batches)")
    try:
        with open(path, "rb") as f:
            batch = CifarUnpickler(f).load()
    except EOFError as e:
        raise pickle.UnpicklingError(f"{path}: the pickle ends early (truncated download?)") from e
    except pickle.UnpicklingError as e:                      # a refused global, or not a pickle at all
        raise pickle.UnpicklingError(f"{path}: {e}") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: expected a dict with b'data' and b'labels', got {keys}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' is {desc}, expected uint8 (N, 3072)")
    labels = batch[b"labels"]
    if not isinstance(labels, list) or not all(type(y) is int for y in labels):
        raise ValueError(f"{path}: b'labels' must be a list of ints")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    bad = [i for i, y in enumerate(labels) if not 0 <= y < CIFAR_CLASSES]
    if bad:
        raise ValueError(f"{path}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{CIFAR_CLASSES - 1} "
                         f"({len(bad)} such labels)")
    return data, np.asarray(labels, dtype=np.int64)


class CIFAR10(Dataset):
    """CIFAR-10 from the python-pickle batches in `root` (the folder cifar-10-batches-py)."""

    def __init__(self, root, train: bool = True):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"CIFAR-10 folder {root} does not exist")
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        batches = [read_cifar_batch(root / name) for name in names]
        data = np.concatenate([d for d, _ in batches])                  # (N, 3072) uint8, channel-major rows
        self.x = torch.from_numpy(data.reshape(-1, 3, 32, 32))           # (N, 3, 32, 32)
        self.y = torch.from_numpy(np.concatenate([y for _, y in batches]))

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i].float() / 127.5 - 1, self.y[i]


def _visible(folder: Path) -> list[Path]:
    """The entries of `folder` whose names do not start with "." (.ipynb_checkpoints, .DS_Store, ._x.jpg)."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def to_rgb8(im, path):
    """A PIL image as 8-bit RGB. 16-bit greyscale is scaled by 255/65535 (PIL's convert would clip it at
    255); modes with no 8-bit meaning (float) are refused."""
    from PIL import Image

    if im.mode.startswith("I"):                                 # "I;16", "I;16B", "I": 16-bit greyscale PNGs
        v = np.asarray(im).astype(np.int64)
        if v.min() < 0 or v.max() > 65535:
            raise ValueError(f"{path}: {im.mode} values {v.min()}..{v.max()} exceed the 16-bit range 0..65535")
        im = Image.fromarray(((v + 128) // 257).astype(np.uint8))   # round(v * 255 / 65535)
    elif im.mode == "F":
        raise ValueError(f"{path}: floating-point image (mode F) has no defined 8-bit range; save it as 8-bit")
    return im.convert("RGB")


class ImageFolder(Dataset):
    """root/<class name>/<image file>, resized and centre-cropped to (3, R, R) in [-1, 1].

    Classes are the visible sub-folders, sorted; each must hold at least one image (an empty one is an
    error rather than a class with no samples). Hidden entries and other suffixes are skipped."""

    def __init__(self, root, resolution: int = 128):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        self.classes = [p.name for p in _visible(root) if p.is_dir()]
        if not self.classes:
            raise ValueError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
        self.samples = []
        for k, c in enumerate(self.classes):
            files = [p for p in _visible(root / c) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise ValueError(f"class folder {root / c} holds no images with suffix {IMAGE_SUFFIXES} "
                                 "(any case): remove it or add images")
            self.samples += [(p, k) for p in files]
        self.resolution = resolution

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.samples[i]
        try:
            with Image.open(path) as im:
                im = to_rgb8(im, path)                              # decodes: truncated files fail here
        except (OSError, SyntaxError) as e:                         # PIL: truncated, corrupt, not an image
            raise OSError(f"cannot read image {path}: {e}") from e
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

