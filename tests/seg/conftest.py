"""Fixtures for the HamNet tests."""

import numpy as np
import pytest
from PIL import Image

from hamlib.seg.data import IGNORE
from hamlib.seg.metrics import save_voc_png


def _make_voc(root, sizes=((40, 50), (36, 30), (48, 48))):
    """A tiny VOC2012-layout folder: JPEGs, palette PNG labels (with a 255 border), split lists."""
    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    ids = []
    for i, (h, w) in enumerate(sizes):
        name = f"2007_{i:06d}"
        ids.append(name)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        lab = rng.integers(0, 21, (h, w))
        lab[0, :] = IGNORE
        save_voc_png(lab, root / "SegmentationClass" / f"{name}.png")
        save_voc_png(np.minimum(lab, 5), root / "SegmentationClassAug" / f"{name}.png")
    lists = {"train": ids[:2], "val": ids[2:], "trainval": ids, "trainaug": ids}
    for split, names in lists.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root



@pytest.fixture
def make_voc():
    return _make_voc
