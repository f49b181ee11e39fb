"""VOC layout reader and the reference's augmentation, on a fixture built here."""

import pytest
import torch

from hamlib.seg.data import IGNORE, TrainAugment, VOCSegmentation, normalise, pad_collate


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
