"""A segmentation task on real textures that needs global context: "texture by legend".

The colour-by-legend task (`synthetic.py`) with photographs in place of flat shapes. Each
image holds a *legend* -- two small swatches side by side, each a patch of a real texture
tinted with a colour -- and, far away from it, a few large *gray* patches of the same two
textures (squares or disks). A gray patch's class is the colour of the legend swatch with
its texture. Labels:

    0          background
    1 + c      pixels of colour c (c = 0..n_colours-1): legend swatches and gray patches alike

So a model must (a) recognise a texture from a photograph -- locally, from a 12-20 px patch --
and (b) read which colour that texture has in this image's legend, `min_dist` px away (more
than the quick network's receptive field): local texture alone cannot decide the class,
and a model without global context guesses 1 in n_colours on the gray patches.

Sources: textures that ship inside scikit-image 0.26 (no download), each licence from its
docstring (`TEXTURES`). Every source is shrunk by its `scale` and cut into two halves by rows:
training images take their patches from the top half, validation images from the bottom
half, so no validation pixel was ever seen in training. Every patch is standardised to the
same mean and contrast (texture, not brightness, tells them apart).

Generated with NumPy from a seed, cached in memory per (n, seed, split, config); 2000 images
of 64 x 64 take about a second.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch

from .synthetic import COLOURS, SHAPES, LegendDataset, _gaps, _mask

# name -> (skimage.data loader, crop of the source (rows, cols) or None, shrink factor, licence)
TEXTURES = {
    "brick": ("brick", None, 4, "CC0 (cc0textures.com, Bricks25)"),
    "grass": ("grass", None, 4, "CC0 (DeviantArt, linolafett, Grass-01)"),
    "gravel": ("gravel", None, 4, "CC0 (cc0textures.com, Gravel04)"),
    "stars": ("hubble_deep_field", None, 8, "public domain (NASA, Hubble eXtreme Deep Field)"),
}
SPLITS = ("train", "val")
GRAY, CONTRAST = 0.6, 0.15   # a gray patch's mean and standard deviation


@dataclass
class TextureConfig:
    size: int = 64                                 # images are size x size
    textures: tuple = ("brick", "grass", "gravel", "stars")
    n_colours: int = 4                             # classes = n_colours + 1
    legend_size: int = 10                          # side of a legend swatch, px
    shape_min: int = 12                            # gray patches' side, px
    shape_max: int = 20
    patches_per_texture: int = 2                   # gray patches of each legend texture (1..this many)
    min_dist: int = 36                             # Chebyshev distance from any gray-patch pixel to any legend pixel
    noise: float = 0.08                            # std of the background's pixel noise

    @property
    def num_classes(self) -> int:
        return self.n_colours + 1

    def validate(self) -> "TextureConfig":
        unknown = [t for t in self.textures if t not in TEXTURES]
        if unknown or len(self.textures) < 2 or len(set(self.textures)) != len(self.textures):
            raise ValueError(f"textures must be 2 or more distinct names of {tuple(TEXTURES)}, got {self.textures!r}")
        if not 2 <= self.n_colours <= len(COLOURS):
            raise ValueError(f"n_colours must be in 2..{len(COLOURS)}, got {self.n_colours}")
        if not 1 <= self.shape_min <= self.shape_max:
            raise ValueError(f"need 1 <= shape_min <= shape_max, got {self.shape_min}, {self.shape_max}")
        if self.min_dist + self.shape_min + self.legend_size > self.size:
            raise ValueError(f"size {self.size} too small for min_dist {self.min_dist} with patches of "
                             f"{self.shape_min} px and a legend of {self.legend_size} px")
        return self


@functools.lru_cache(maxsize=None)
def source(name: str) -> np.ndarray:
    """The texture `name` as float32 in [0, 1], gray, shrunk by its factor (mean of f x f blocks)."""
    if name not in TEXTURES:
        raise ValueError(f"texture must be one of {tuple(TEXTURES)}, got {name!r}")
    try:
        import skimage.data
    except ImportError as e:   # the notebooks' extra, not the library's
        raise ImportError("the texture task reads its pictures from scikit-image: pip install scikit-image") from e
    loader, crop, f, _ = TEXTURES[name]
    im = np.asarray(getattr(skimage.data, loader)(), dtype=np.float32) / 255.0
    if im.ndim == 3:
        im = im.mean(axis=2)                                  # (H, W, 3) -> (H, W)
    if crop is not None:
        im = im[crop[0], crop[1]]
    H, W = im.shape[0] // f * f, im.shape[1] // f * f
    return im[:H, :W].reshape(H // f, f, W // f, f).mean(axis=(1, 3))   # (H/f, W/f)


def half(name: str, split: str) -> np.ndarray:
    """The rows of source(name) that `split` may cut patches from: top half (train), bottom half (val)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    im = source(name)
    h = im.shape[0] // 2
    return im[:h] if split == "train" else im[h:]


def _patch(tex: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A random side x side crop of tex (random horizontal flip), standardised to GRAY +- CONTRAST."""
    y, x = rng.integers(0, tex.shape[0] - side + 1), rng.integers(0, tex.shape[1] - side + 1)
    p = tex[y:y + side, x:x + side]
    if rng.random() < 0.5:
        p = p[:, ::-1]
    p = (p - p.mean()) / max(float(p.std()), 1e-2)
    return np.clip(GRAY + CONTRAST * p, 0.0, 1.0)


def _one(img, lab, ctx, cfg: TextureConfig, sources, rng: np.random.Generator) -> int:
    """Draw one image into img (S, S, 3), lab (S, S) and ctx (S, S); returns the gray patches placed."""
    S, L = cfg.size, cfg.legend_size
    kinds = rng.choice(len(sources), size=2, replace=False)          # the legend's two textures
    colours = rng.integers(0, cfg.n_colours, size=2)                  # drawn independently
    horizontal = rng.random() < 0.5
    h, w = (L, 2 * L + 2) if horizontal else (2 * L + 2, L)
    y0, x0 = rng.integers(0, S - h + 1), rng.integers(0, S - w + 1)
    legend_box = (y0, x0, y0 + h, x0 + w)
    for slot in range(2):                                              # swatch = texture x colour
        y, x = (y0, x0 + slot * (L + 2)) if horizontal else (y0 + slot * (L + 2), x0)
        tint = COLOURS[colours[slot]]
        img[y:y + L, x:x + L] = _patch(sources[kinds[slot]], L, rng)[..., None] * tint / GRAY * 0.5 + 0.25 * tint
        lab[y:y + L, x:x + L] = 1 + colours[slot]
    placed, boxes = 0, []
    for slot in rng.permutation(np.repeat(np.arange(2), cfg.patches_per_texture)):
        side = rng.integers(cfg.shape_min, cfg.shape_max + 1, size=64)  # 64 candidate boxes, first fit
        y, x = rng.integers(0, S - side + 1), rng.integers(0, S - side + 1)
        cand = np.stack([y, x, y + side, x + side], axis=1)            # (64, 4)
        ok = _gaps(cand, legend_box) >= cfg.min_dist
        for b in boxes:
            ok &= _gaps(cand, b) >= 2
        if ok.any():
            j = int(ok.argmax())
            y, x, side = int(y[j]), int(x[j]), int(side[j])
            m = _mask(SHAPES[rng.integers(len(SHAPES))], side)
            img[y:y + side, x:x + side][m] = _patch(sources[kinds[slot]], side, rng)[m][:, None]
            lab[y:y + side, x:x + side][m] = 1 + colours[slot]
            ctx[y:y + side, x:x + side][m] = True
            boxes.append(cand[j])
            placed += 1
    return placed


@functools.lru_cache(maxsize=8)
def _cached(n: int, seed: int, split: str, key: tuple):
    cfg = TextureConfig(*key)
    sources = [half(t, split) for t in cfg.textures]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    S = cfg.size
    imgs = 0.25 + cfg.noise * rng.standard_normal((n, S, S, 3), dtype=np.float32)
    labs = np.zeros((n, S, S), dtype=np.int64)
    ctx = np.zeros((n, S, S), dtype=bool)
    for i in range(n):
        background = imgs[i].copy()
        while not _one(imgs[i], labs[i], ctx[i], cfg, sources, rng):   # redraw if no gray patch fitted
            imgs[i], labs[i], ctx[i] = background, 0, False
    images = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()   # (n, S, S, 3) -> (n, 3, S, S)
    return images, torch.from_numpy(labs), torch.from_numpy(ctx)


def make_texture_dataset(n: int, seed: int = 0, cfg: TextureConfig | None = None, split: str = "train"):
    """n images -> (images (n, 3, S, S) float32 in [0, 1], labels (n, S, S) int64, needs_context
    (n, S, S) bool: the gray-patch pixels). Patches come from `split`'s half of every source.
    Deterministic in (n, seed, split, cfg); cached, so treat the tensors as read-only."""
    cfg = (cfg or TextureConfig()).validate()
    if n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    key = tuple(tuple(v) if isinstance(v, list) else v for v in dataclasses.astuple(cfg))
    return _cached(n, seed, split, key)


class TextureDataset(LegendDataset):
    """The texture-by-legend task as a Dataset of (image (3, S, S) normalised, label (S, S)),
    with the attributes of `synthetic.LegendDataset` (images, labels, needs_context, num_classes),
    whose item access it inherits: (index, seed) pairs, the seed driving a random horizontal flip."""

    def __init__(self, n: int, seed: int = 0, cfg: TextureConfig | None = None, flip: bool = False,
                 split: str = "train"):
        self.cfg = cfg or TextureConfig()
        images, self.labels, self.needs_context = make_texture_dataset(n, seed, self.cfg, split)
        self.images = (images - 0.5) / 0.25            # roughly zero mean, unit scale
        self.flip, self.split = flip, split
        self.num_classes = self.cfg.num_classes
