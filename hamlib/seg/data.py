"""PASCAL VOC 2012 (+ SBD "trainaug") in their standard layouts, and the reference's augmentation.

Layout read (what data/prepare_voc.py builds; `root` is the VOC2012 folder):

    root/JPEGImages/<id>.jpg
    root/SegmentationClass/<id>.png         VOC labels: palette PNGs, 0..20, 255 = ignore
    root/SegmentationClassAug/<id>.png      trainaug labels (SBD converted + VOC train)
    root/ImageSets/Segmentation/{train,val,trainval,test,trainaug}.txt

Files are checked as they are read: an empty split list, an unreadable (e.g. truncated) image
and a label value outside 0..20 and 255 (ids 21..254, or a 16-bit PNG's larger values) are
errors naming the file.

Training augmentation (the paper's reference recipe): random scale from {0.5, 0.75, ..., 2.0},
pad to the crop (image 0 after normalisation = the mean colour, label 255), random crop,
random horizontal flip, ImageNet mean/std. Every random choice comes from a generator
seeded per sample, so the data a step sees depends only on (seed, step): resumed and
multi-worker runs see the same crops as an uninterrupted single-process run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAIN_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
IGNORE = 255
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


def normalise(img_u8: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 -> float, ImageNet mean/std."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (img_u8.float() / 255 - mean) / std


class TrainAugment:
    """(image (3, H, W) uint8, label (H, W) int64, generator) -> (image (3, crop, crop), label (crop, crop))."""

    def __init__(self, crop=513, scales=TRAIN_SCALES, flip=True):
        self.crop, self.scales, self.flip = crop, tuple(scales), flip

    def __call__(self, img, lab, g: torch.Generator):
        s = self.scales[int(torch.randint(len(self.scales), (1,), generator=g))]
        x = normalise(img)[None]                                    # (1, 3, H, W)
        y = lab[None, None].float()
        if s != 1.0:
            size = (max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s)))
            x = F.interpolate(x, size, mode="bilinear", align_corners=False)
            y = F.interpolate(y, size, mode="nearest")
        x, y = x[0], y[0, 0].long()
        H, W = y.shape
        ph, pw = max(self.crop - H, 0), max(self.crop - W, 0)
        if ph or pw:                                                # pad bottom/right
            x = F.pad(x, (0, pw, 0, ph), value=0.0)
            y = F.pad(y, (0, pw, 0, ph), value=IGNORE)
        H, W = y.shape
        top = int(torch.randint(H - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(W - self.crop + 1, (1,), generator=g))
        x = x[:, top:top + self.crop, left:left + self.crop]
        y = y[top:top + self.crop, left:left + self.crop]
        if self.flip and int(torch.randint(2, (1,), generator=g)):
            x, y = x.flip(-1), y.flip(-1)
        return x.contiguous(), y.contiguous()


def eval_transform(img, lab, g=None):
    return normalise(img), lab


def open_image(path):
    """PIL image of `path`, decoded; a truncated, corrupt or non-image file is an OSError naming it."""
    from PIL import Image
    try:
        im = Image.open(path)
        im.load()
    except (OSError, SyntaxError) as e:                       # PIL's errors for broken files
        raise OSError(f"cannot read {path}: {e}") from e
    return im


class VOCSegmentation(torch.utils.data.Dataset):
    """VOC 2012 segmentation split ("train", "val", "trainval", "trainaug", "test").

    Items are (image, label) after `transform(img_u8, label, generator)`; index with an int
    or with an (index, seed) pair (the seed feeds the augmentation's generator). The test
    split has no labels: its labels are all 255. `ids[i]` names item i (for PNG output).
    """

    def __init__(self, root, split="train", transform=eval_transform):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"VOC root {self.root} does not exist (see data/README.md)")
        lst = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not lst.is_file():
            raise FileNotFoundError(f"split list {lst} not found (split {split!r}; see data/README.md)")
        self.ids = [line.split()[0] for line in lst.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise ValueError(f"split list {lst} is empty (split {split!r} needs one image id per line)")
        self.split, self.transform = split, transform
        self.label_dir = self.root / ("SegmentationClassAug" if split == "trainaug" else "SegmentationClass")
        self.num_classes = len(VOC_CLASSES)

    def __len__(self):
        return len(self.ids)

    def read(self, i):
        """Raw (image (3, H, W) uint8, label (H, W) int64 in 0..num_classes-1 or IGNORE)."""
        name = self.ids[i]
        img_path = self.root / "JPEGImages" / f"{name}.jpg"
        if not img_path.is_file():
            raise FileNotFoundError(f"image {img_path} listed in {self.split}.txt is missing")
        img = torch.from_numpy(np.array(open_image(img_path).convert("RGB"))).permute(2, 0, 1).contiguous()
        lab_path = self.label_dir / f"{name}.png"
        if lab_path.is_file():
            lab = torch.from_numpy(self.read_label(lab_path))
        elif self.split == "test":
            lab = torch.full(img.shape[1:], IGNORE, dtype=torch.int64)
        else:
            raise FileNotFoundError(f"label {lab_path} for {name} is missing")
        if lab.shape != img.shape[1:]:
            raise ValueError(f"{name}: label {tuple(lab.shape)} and image {tuple(img.shape[1:])} sizes differ")
        return img, lab

    def read_label(self, path) -> np.ndarray:
        """A label PNG -> (H, W) int64; every value must be a class id or IGNORE."""
        im = open_image(path)
        lab = np.asarray(im).astype(np.int64)                 # palette PNG: the indices themselves
        if lab.ndim != 2:
            raise ValueError(f"label {path} must be a single-channel (palette) PNG, got shape {lab.shape}")
        bad = ((lab < 0) | (lab >= self.num_classes)) & (lab != IGNORE)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            kind = "" if im.mode in ("P", "L") else f"; the file is mode {im.mode}, VOC labels are 8-bit PNGs"
            raise ValueError(f"label {path} holds value {lab[r, c]} at row {r}, column {c} ({int(bad.sum())} "
                             f"pixels outside 0..{self.num_classes - 1} and {IGNORE} = ignore){kind}")
        return lab

    def __getitem__(self, item):
        i, seed = item if isinstance(item, tuple) else (item, 0)
        img, lab = self.read(i)
        return self.transform(img, lab, torch.Generator().manual_seed(int(seed)))


def pad_collate(batch, ignore_index=IGNORE):
    """Stack (image, label) pairs of different sizes by padding bottom/right (image 0, label 255)."""
    H = max(x.shape[-2] for x, _ in batch)
    W = max(x.shape[-1] for x, _ in batch)
    xs = [F.pad(x, (0, W - x.shape[-1], 0, H - x.shape[-2])) for x, _ in batch]
    ys = [F.pad(y, (0, W - y.shape[-1], 0, H - y.shape[-2]), value=ignore_index) for _, y in batch]
    return torch.stack(xs), torch.stack(ys)
