"""A segmentation task that needs global context: "colour by legend".

Each image holds a *legend* -- a small coloured square and a small coloured disk side by
side -- and, far away from it, a few large *gray* squares and disks. A gray shape's class is
the colour its shape has in the legend: gray squares take the legend square's colour, gray
disks the legend disk's colour (the two colours are drawn independently). Labels:

    0          background
    1 + c      pixels of colour c (c = 0..n_colours-1): legend shapes and gray shapes alike

Every gray-shape pixel is at least `min_dist` pixels (Chebyshev distance) from every legend
pixel. When `min_dist` exceeds a model's receptive-field radius, that model cannot see the
legend from a gray shape and can only guess its colour (1 in n_colours): a model without
global context is measurably worse *by construction*, which the tests check with gradients.

Generated with NumPy from a seed; a few thousand 64 x 64 images take about a second.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

COLOURS = np.array([[0.90, 0.15, 0.15],    # red
                    [0.15, 0.75, 0.20],    # green
                    [0.20, 0.35, 0.95],    # blue
                    [0.95, 0.85, 0.10],    # yellow
                    [0.85, 0.30, 0.85],    # magenta
                    [0.10, 0.85, 0.85]],   # cyan
                   dtype=np.float32)
GRAY = 0.6
SHAPES = ("square", "disk")


@dataclass
class LegendConfig:
    size: int = 64            # images are size x size
    n_colours: int = 4        # classes = n_colours + 1
    legend_size: int = 7      # side of a legend shape, px
    shape_min: int = 10       # gray shapes' side, px
    shape_max: int = 16
    shapes_per_kind: int = 2  # gray squares and gray disks (each 1..this many)
    min_dist: int = 28        # Chebyshev distance from any gray-shape pixel to any legend pixel
    noise: float = 0.08       # std of the background's pixel noise
    one_colour: bool = False  # True: both legend shapes share one colour (an easier task:
                              # every gray shape takes the colour present in the legend)

    @property
    def num_classes(self) -> int:
        return self.n_colours + 1


@functools.lru_cache(maxsize=None)
def _mask(kind, side):
    if kind == "square":
        return np.ones((side, side), dtype=bool)
    yy, xx = np.mgrid[:side, :side] + 0.5 - side / 2
    return yy ** 2 + xx ** 2 <= (side / 2) ** 2


def _gaps(boxes, box):
    """Chebyshev gaps between many boxes (n, 4) and one box (y0, x0, y1, x1), ends exclusive."""
    gy = np.maximum(box[0] - boxes[:, 2] + 1, boxes[:, 0] - box[2] + 1)
    gx = np.maximum(box[1] - boxes[:, 3] + 1, boxes[:, 1] - box[3] + 1)
    return np.maximum(gy, gx)


def _one(img, lab, cfg: LegendConfig, rng: np.random.Generator):
    """Draw one image into img (S, S, 3) (background already there) and lab (S, S) (zeros)."""
    S, L = cfg.size, cfg.legend_size
    colours = rng.integers(0, cfg.n_colours, size=len(SHAPES))       # legend colour per shape kind
    if cfg.one_colour:
        colours[:] = colours[0]
    # the legend: the two shapes side by side (random order and orientation) at a random place
    horizontal = rng.random() < 0.5
    h, w = (L, 2 * L + 2) if horizontal else (2 * L + 2, L)
    y0, x0 = rng.integers(0, S - h + 1), rng.integers(0, S - w + 1)
    legend_box = (y0, x0, y0 + h, x0 + w)
    order = rng.permutation(len(SHAPES))
    for slot, k in enumerate(order):
        y, x = (y0, x0 + slot * (L + 2)) if horizontal else (y0 + slot * (L + 2), x0)
        m = _mask(SHAPES[k], L)
        img[y:y + L, x:x + L][m] = COLOURS[colours[k]]
        lab[y:y + L, x:x + L][m] = 1 + colours[k]
    # gray shapes, far from the legend and 1 px apart from each other: 64 candidate
    # boxes per shape, the first one that fits is drawn (vectorised rejection sampling)
    placed, boxes = 0, []
    for k in rng.permutation(np.repeat(np.arange(len(SHAPES)), cfg.shapes_per_kind)):
        side = rng.integers(cfg.shape_min, cfg.shape_max + 1, size=64)
        y, x = (rng.integers(0, S - side + 1), rng.integers(0, S - side + 1))
        cand = np.stack([y, x, y + side, x + side], axis=1)       # (64, 4)
        ok = _gaps(cand, legend_box) >= cfg.min_dist
        for b in boxes:
            ok &= _gaps(cand, b) >= 2
        if ok.any():
            j = int(ok.argmax())
            y, x, side = int(y[j]), int(x[j]), int(side[j])
            m = _mask(SHAPES[k], side)
            img[y:y + side, x:x + side][m] = GRAY
            lab[y:y + side, x:x + side][m] = 1 + colours[k]
            boxes.append(cand[j])
            placed += 1
    return placed


def make_legend_dataset(n: int, seed: int = 0, cfg: LegendConfig | None = None):
    """n images -> (images (n, 3, S, S) float32 in [0, 1], labels (n, S, S) int64).

    Images with no gray shape placed (the legend left no room) are redrawn, so every image
    has at least one pixel whose class needs the legend.
    """
    cfg = cfg or LegendConfig()
    if cfg.n_colours > len(COLOURS) or cfg.n_colours < 2:
        raise ValueError(f"n_colours must be in 2..{len(COLOURS)}, got {cfg.n_colours}")
    if cfg.min_dist + cfg.shape_min + cfg.legend_size > cfg.size:
        raise ValueError(f"size {cfg.size} too small for min_dist {cfg.min_dist} with shapes of "
                         f"{cfg.shape_min} px and a legend of {cfg.legend_size} px")
    rng = np.random.default_rng(seed)
    S = cfg.size
    imgs = (0.25 + cfg.noise * rng.standard_normal((n, S, S, 3), dtype=np.float32))
    labs = np.zeros((n, S, S), dtype=np.int64)
    for i in range(n):
        background = imgs[i].copy()
        while not _one(imgs[i], labs[i], cfg, rng):   # redraw if no gray shape fitted
            imgs[i], labs[i] = background, 0
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labs)


class LegendDataset(torch.utils.data.Dataset):
    """The colour-by-legend task as a Dataset of (image (3, S, S) normalised, label (S, S)).

    Generated once at construction; items may also be indexed by (index, seed) pairs
    (what the trainer's sampler yields), the seed drives a random horizontal flip when
    `flip` is True.
    """

    def __init__(self, n: int, seed: int = 0, cfg: LegendConfig | None = None, flip: bool = False):
        self.cfg = cfg or LegendConfig()
        images, self.labels = make_legend_dataset(n, seed, self.cfg)
        # the pixels whose class needs the legend: the gray shapes (noise-free, exactly GRAY)
        self.needs_context = (images == GRAY).all(dim=1) & (self.labels > 0)     # (n, S, S)
        self.images = (images - 0.5) / 0.25            # roughly zero mean, unit scale
        self.flip = flip
        self.num_classes = self.cfg.num_classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, item):
        i, seed = item if isinstance(item, tuple) else (item, None)
        x, y = self.images[i], self.labels[i]
        if self.flip and seed is not None and torch.randint(2, (1,), generator=torch.Generator().manual_seed(seed)):
            x, y = x.flip(-1), y.flip(-1)
        return x, y
