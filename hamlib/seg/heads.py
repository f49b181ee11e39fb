"""Decode heads: the HamNet head, the Light-Ham head (SegNeXt) and the context blocks they hold.

HamNet head (the paper's reference recipe), on the last backbone map (B, 2048, H/8, W/8):

    squeeze  3x3 ConvBNReLU 2048 -> 512
    context  Hamburger(512), V2, NMF, d = 512, r = 64, K = 6      <- swappable
    align    3x3 ConvBNReLU 512 -> 256
    Dropout2d(0.1), 1x1 conv 256 -> classes                         (upsampling: model.py)

The context block is what the notebooks compare: any of `hamlib.context.CONTEXTS` ("ham" with
any solver, version and gradient mode, "none", "attention", "attention-plain", "pool"), built
by `hamlib.context_block` with the head's norm, in the template of the head's Hamburger version
(HamNet: v2, Light-Ham: v1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..context import context_block
from ..layers import ConvNormAct, reference_init

@dataclass
class HeadConfig:
    kind: str = "hamnet"          # "hamnet" or "lightham"
    context: str = "ham"          # one of hamlib.context.CONTEXTS
    channels: int = 512           # squeeze width = the context block's C (HamNet: 512)
    align_channels: int = 256     # HamNet: 256
    kernel: int = 3               # squeeze/align kernel (HamNet: 3; 1 keeps the receptive field small)
    dropout: float = 0.1
    norm: str = "bn"              # Light-Ham uses "gn"
    ham: dict = field(default_factory=lambda: dict(ham="nmf", rank=64, steps=6))  # + version, grad, ...


class HamNetHead(nn.Module):
    """forward(feats: list of backbone maps) -> logits (B, classes, h, w) at the last map's size."""

    def __init__(self, in_channels: list, num_classes: int, cfg: HeadConfig):
        super().__init__()
        C = cfg.channels
        self.squeeze = ConvNormAct(in_channels[-1], C, cfg.kernel, norm=cfg.norm)
        self.context = context_block(cfg.context, C, **{"version": "v2", **cfg.ham, "norm": cfg.norm})
        self.align = ConvNormAct(C, cfg.align_channels, cfg.kernel, norm=cfg.norm)
        self.dropout = nn.Dropout2d(cfg.dropout)
        self.classifier = nn.Conv2d(cfg.align_channels, num_classes, 1)
        reference_init(self.squeeze), reference_init(self.align), reference_init(self.classifier)

    def forward(self, feats):
        x = self.squeeze(feats[-1])          # (B, 2048, h, w) -> (B, C, h, w)
        x = self.context(x)                  # global context, same shape
        x = self.align(x)                    # -> (B, 256, h, w)
        return self.classifier(self.dropout(x))


class LightHamHead(nn.Module):
    """SegNeXt's Light-Ham head: stages 2..n resized to the first of them (1/8), concatenated,
    1x1 squeeze, Hamburger (V1 with GroupNorm: 1x1 conv + ReLU, NMF, 1x1 conv + GN, residual,
    ReLU), 1x1 align, Dropout2d, classifier. channels is SegNeXt's ham_channels (256 with
    r = 16 for tiny/small, 512 with r = 64 for base); align_channels is its `channels`.
    """

    def __init__(self, in_channels: list, num_classes: int, cfg: HeadConfig):
        super().__init__()
        self.in_index = list(range(1, len(in_channels))) if len(in_channels) > 1 else [0]
        cin = sum(in_channels[i] for i in self.in_index)
        self.squeeze = ConvNormAct(cin, cfg.channels, 1, norm=cfg.norm)
        self.context = context_block(cfg.context, cfg.channels, **{"version": "v1", **cfg.ham, "norm": cfg.norm})
        self.align = ConvNormAct(cfg.channels, cfg.align_channels, 1, norm=cfg.norm)
        self.dropout = nn.Dropout2d(cfg.dropout)
        self.classifier = nn.Conv2d(cfg.align_channels, num_classes, 1)
        reference_init(self.squeeze), reference_init(self.align), reference_init(self.classifier)

    def forward(self, feats):
        xs = [feats[i] for i in self.in_index]
        size = xs[0].shape[-2:]
        xs = [x if x.shape[-2:] == size else F.interpolate(x, size, mode="bilinear", align_corners=False)
              for x in xs]
        x = self.squeeze(torch.cat(xs, dim=1))      # (B, sum C_i, h, w) -> (B, ham_channels, h, w)
        x = self.align(self.context(x))
        return self.classifier(self.dropout(x))


HEADS = {"hamnet": HamNetHead, "lightham": LightHamHead}


def build_head(in_channels, num_classes, cfg: HeadConfig) -> nn.Module:
    if cfg.kind not in HEADS:
        raise ValueError(f"head kind must be one of {tuple(HEADS)}, got {cfg.kind!r}")
    return HEADS[cfg.kind](in_channels, num_classes, cfg)
