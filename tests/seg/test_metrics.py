"""Confusion matrix / mIoU against a hand-computed case, prediction modes, VOC PNGs."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hamlib.seg.metrics import (MSFLIP_SCALES, confusion_matrix, evaluate, iou_from_confusion, predict,
                                save_voc_png, voc_palette)


def test_confusion_and_miou_by_hand():
    target = torch.tensor([[0, 0, 1, 1],
                           [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [2, 0, 2, 2]])
    M = confusion_matrix(pred, target, 3)
    # rows truth, columns prediction; the 255 pixel is not counted
    assert M.tolist() == [[1, 1, 0],
                          [0, 2, 1],
                          [1, 0, 1]]
    iou, miou, acc = iou_from_confusion(M)
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1, FN 1 -> 2/4; class 2: TP 1, FP 1, FN 1 -> 1/3
    assert torch.allclose(iou, torch.tensor([1 / 3, 1 / 2, 1 / 3], dtype=torch.float64))
    assert miou == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert acc == pytest.approx(4 / 7)


def test_absent_class_is_not_averaged():
    M = confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]), 4)
    iou, miou, _ = iou_from_confusion(M)
    assert torch.isnan(iou[2]) and torch.isnan(iou[3]) and miou == 1.0


def test_confusion_errors():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match="target values"):
        confusion_matrix(torch.zeros(4), torch.tensor([0, 1, 7, 0]), 3)


class Pointwise(nn.Module):
    """A 1x1 conv: commutes with flips, so MSFlip's pieces can be computed by hand."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x)


def test_predict_single_scale_and_msflip():
    m, x = Pointwise(), torch.randn(2, 3, 16, 20)
    single = predict(m, x)
    assert torch.allclose(single, m(x))
    assert torch.allclose(predict(m, x, flip=True), 2 * m(x), atol=1e-5)
    ms = predict(m, x, scales=MSFLIP_SCALES, flip=True)
    assert ms.shape == (2, 4, 16, 20)
    manual = sum(2 * F.interpolate(m(F.interpolate(x, (round(16 * s), round(20 * s)), mode="bilinear")),
                                   (16, 20), mode="bilinear") for s in MSFLIP_SCALES)
    assert torch.allclose(ms, manual, atol=1e-4)


def test_evaluate_perfect_model():
    class Oracle(nn.Module):
        def forward(self, x):  # class = channel 0 > 0
            return torch.cat([-x[:, :1], x[:, :1]], 1)
    x = torch.randn(6, 3, 8, 8)
    y = (x[:, 0] > 0).long()
    res = evaluate(Oracle(), [(x[:3], y[:3]), (x[3:], y[3:])], 2, torch.device("cpu"))
    assert res["miou"] == 1.0 and res["confusion"].sum() == 6 * 64


def test_voc_png_roundtrip(tmp_path):
    from PIL import Image
    pal = voc_palette()
    assert pal[3:6] == [128, 0, 0] and pal[15 * 3:16 * 3] == [192, 128, 128] and pal[255 * 3:] == [224, 224, 192]
    lab = np.array([[0, 1, 15], [20, 255, 3]])
    p = save_voc_png(lab, tmp_path / "out" / "a.png")
    im = Image.open(p)
    assert im.mode == "P" and np.array_equal(np.array(im), lab)
    with pytest.raises(ValueError, match="0..255"):
        save_voc_png(np.array([[300]]), tmp_path / "b.png")
