"""VOC layout reader and the reference's augmentation, on a fixture built here."""

import numpy as np
import pytest
import torch
from PIL import Image

from hamlib.seg.data import IGNORE, TrainAugment, VOCSegmentation, normalise, pad_collate
from hamlib.seg.metrics import save_voc_png


def test_voc_reader(tmp_path, make_voc):
    root = make_voc(tmp_path / "VOC2012")
    ds = VOCSegmentation(root, "train")
    assert len(ds) == 2 and ds.num_classes == 21
    img, lab = ds.read(0)
    assert img.shape == (3, 40, 50) and img.dtype == torch.uint8 and lab.shape == (40, 50)
    assert (lab[0] == IGNORE).all() and lab[1:].max() <= 20
    x, y = ds[0]
    assert x.dtype == torch.float32 and torch.allclose(x, normalise(img))
    aug = VOCSegmentation(root, "trainaug")
    assert aug.read(0)[1][1:].max() <= 5                  # read from SegmentationClassAug
    with pytest.raises(FileNotFoundError, match="split list"):
        VOCSegmentation(root, "nosuchsplit")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VOCSegmentation(tmp_path / "missing", "train")
    (root / "SegmentationClass" / "2007_000001.png").unlink()
    with pytest.raises(FileNotFoundError, match="2007_000001"):
        ds.read(1)


def test_train_augment_keeps_image_and_label_aligned():
    # a label that is a function of the image: crop, pad and flip must keep them together
    img = torch.randint(0, 256, (3, 30, 40), dtype=torch.uint8)
    lab = (img[0] > 127).long()
    aug = TrainAugment(crop=48, scales=(1.0,), flip=True)
    flips = set()
    for seed in range(6):
        x, y = aug(img, lab, torch.Generator().manual_seed(seed))
        assert x.shape == (3, 48, 48) and y.shape == (48, 48)
        valid = y != IGNORE
        assert valid.sum() == 30 * 40                      # everything kept, the rest is padding
        red = x[0] * 0.229 + 0.485                         # un-normalise channel 0
        assert torch.equal((red[valid] > 127.5 / 255).long(), y[valid])
        assert (x[:, ~valid] == 0).all()                   # padded with 0 after normalisation
        flips.add(bool(valid[:, 0].any()))                 # padding on the right unless flipped
    assert flips == {True, False}
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = TrainAugment(crop=24)(img, lab, g1), TrainAugment(crop=24)(img, lab, g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_random_scale_sizes():
    img = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    lab = torch.randint(0, 21, (40, 40))
    aug = TrainAugment(crop=100, scales=(2.0,), flip=False)
    x, y = aug(img, lab, torch.Generator().manual_seed(0))
    assert (y != IGNORE).sum() == 80 * 80 and set(y.unique().tolist()) <= set(range(21)) | {IGNORE}


def test_pad_collate():
    xs, ys = pad_collate([(torch.ones(3, 4, 5), torch.zeros(4, 5, dtype=torch.long)),
                          (torch.ones(3, 6, 3), torch.zeros(6, 3, dtype=torch.long))])
    assert xs.shape == (2, 3, 6, 5) and (ys[0, 4:] == IGNORE).all() and (ys[1, :, 3:] == IGNORE).all()


# ---- files are data: bad label values, broken images, empty lists ----------------------------------------------

@pytest.mark.parametrize("value", [21, 100, 254])
def test_label_ids_between_classes_and_ignore_name_the_file_and_value(tmp_path, make_voc, value):
    root = make_voc(tmp_path / "VOC2012")
    path = root / "SegmentationClass" / "2007_000001.png"
    lab = np.array(Image.open(path))
    lab[5, 7] = value
    save_voc_png(lab, path)
    ds = VOCSegmentation(root, "train")
    assert ds.read(0)[1].max() == IGNORE                      # 255 stays the ignore index
    with pytest.raises(ValueError, match=rf"label .*2007_000001\.png holds value {value} at row 5, column 7"):
        ds.read(1)


def test_16_bit_label_png_names_the_file_and_value(tmp_path, make_voc):
    root = make_voc(tmp_path / "VOC2012")
    path = root / "SegmentationClass" / "2007_000000.png"
    lab = np.array(Image.open(path)).astype(np.uint16)
    lab[3, 4] = 300
    Image.fromarray(lab).save(path)
    assert Image.open(path).mode == "I;16"
    with pytest.raises(ValueError, match=r"2007_000000\.png holds value 300 at row 3, column 4 .*mode I;16"):
        VOCSegmentation(root, "train").read(0)


@pytest.mark.parametrize("folder, suffix", [("JPEGImages", "jpg"), ("SegmentationClass", "png")])
def test_truncated_image_or_label_names_the_path(tmp_path, make_voc, folder, suffix):
    root = make_voc(tmp_path / "VOC2012")
    path = root / folder / f"2007_000000.{suffix}"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(OSError, match=rf"cannot read .*{folder}/2007_000000\.{suffix}: image file is truncated"):
        VOCSegmentation(root, "train").read(0)


def test_not_an_image_names_the_path(tmp_path, make_voc):
    root = make_voc(tmp_path / "VOC2012")
    (root / "JPEGImages" / "2007_000000.jpg").write_text("<html>404</html>")
    with pytest.raises(OSError, match=r"cannot read .*2007_000000\.jpg: cannot identify image file"):
        VOCSegmentation(root, "train").read(0)


@pytest.mark.parametrize("split", ["train", "val"])
def test_empty_split_list_names_the_file(tmp_path, make_voc, split):
    root = make_voc(tmp_path / "VOC2012")
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match=rf"split list .*{split}\.txt is empty"):
        VOCSegmentation(root, split)
