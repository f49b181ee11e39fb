"""Evaluation: confusion matrix -> IoU, single-scale and MSFlip prediction, VOC-palette PNGs.

    IoU_k = TP_k / (TP_k + FP_k + FN_k),   mIoU = mean over classes present (union > 0)

The confusion matrix M has rows = ground truth, columns = prediction; pixels labelled
`ignore_index` (255 in VOC) are not counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

MSFLIP_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def confusion_matrix(pred, target, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts, M[t, p] = #pixels of class t predicted as p."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target values must be in [0, {num_classes}) or {ignore_index}, "
                         f"got range [{int(target.min())}, {int(target.max())}]")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"pred values must be in [0, {num_classes}), got range [{int(pred.min())}, {int(pred.max())}]")
    return torch.bincount(target * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(M: torch.Tensor):
    """-> (IoU per class, NaN where a class has no pixel in truth or prediction; mIoU; pixel accuracy)."""
    M = M.double()
    tp = M.diag()
    union = M.sum(0) + M.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    miou = float(iou.nanmean()) if (union > 0).any() else float("nan")
    acc = float(tp.sum() / M.sum()) if M.sum() > 0 else float("nan")
    return iou, miou, acc


@torch.no_grad()
def predict(model, images, scales=(1.0,), flip=False, num_classes=None):
    """Logits (B, K, H, W) summed over `scales` (and horizontal flips): single scale by default,
    MSFlip with scales=MSFLIP_SCALES, flip=True. The model must return logits at its input size."""
    H, W = images.shape[-2:]
    total = 0.0
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, (round(H * s), round(W * s)), mode="bilinear",
                                                  align_corners=False)
        for flipped in ((False, True) if flip else (False,)):
            xi = x.flip(-1) if flipped else x
            logits = model(xi)
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (H, W):
                logits = F.interpolate(logits, (H, W), mode="bilinear", align_corners=False)
            total = total + logits.float()
    return total


@torch.no_grad()
def evaluate(model, loader, num_classes, device, scales=(1.0,), flip=False, ignore_index=255):
    """mIoU over a loader of (images, labels). Under DDP the confusion matrices are summed over ranks."""
    was_training = model.training
    model.eval()
    M = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        pred = predict(model, images, scales, flip).argmax(1)
        M += confusion_matrix(pred, labels, num_classes, ignore_index)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(M)
    model.train(was_training)
    iou, miou, acc = iou_from_confusion(M.cpu())
    return {"miou": miou, "iou": iou.tolist(), "acc": acc, "confusion": M.cpu()}


@torch.no_grad()
def write_pngs(model, dataset, out_dir, scales=(1.0,), flip=False) -> list:
    """Predict every image of a `VOCSegmentation` split (whole image, batch 1, on the model's
    device) and write out_dir/<id>.png as VOC palette PNGs: the test server's format.
    Returns the paths."""
    model.eval()
    device = next(model.parameters()).device
    paths = []
    for i, name in enumerate(dataset.ids):
        x, _ = dataset[i]
        pred = predict(model, x[None].to(device), scales, flip).argmax(1)[0]
        paths.append(save_voc_png(pred, Path(out_dir) / f"{name}.png"))
    return paths


def voc_palette(n: int = 256) -> list:
    """The PASCAL VOC colour map (bit-interleaved), flattened [r0, g0, b0, r1, ...] for PIL."""
    pal = []
    for k in range(n):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def save_voc_png(label, path) -> Path:
    """Write a (H, W) class-index map as an 8-bit palette PNG, the format the VOC server expects."""
    from PIL import Image
    a = label.cpu().numpy() if torch.is_tensor(label) else np.asarray(label)
    if a.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {a.shape}")
    if a.min() < 0 or a.max() > 255:
        raise ValueError(f"label values must be in 0..255, got range [{a.min()}, {a.max()}]")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(a.astype(np.uint8), mode="P")
    im.putpalette(voc_palette())
    im.save(path)
    return path
