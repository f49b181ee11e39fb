"""HamNet = backbone + decode head + bilinear upsampling to the input size."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn
import torch.nn.functional as F

from ..layers import count_params  # noqa: F401  (part of hamlib.seg's API)
from .backbone import build_backbone
from .heads import HeadConfig, build_head


@dataclass
class ModelConfig:
    backbone: str = "resnet101"
    backbone_kw: dict = field(default_factory=lambda: dict(output_stride=8))
    head: HeadConfig = field(default_factory=HeadConfig)
    num_classes: int = 21
    pretrained: str | None = None      # a torchvision-layout ImageNet state dict (see backbone.load_pretrained)


class SegModel(nn.Module):
    """forward(x (B, 3, H, W)) -> logits (B, classes, H, W)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        logits = self.head(self.backbone(x))           # (B, classes, H/8, W/8)
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)


def build_model(cfg: ModelConfig) -> SegModel:
    backbone = build_backbone(cfg.backbone, **cfg.backbone_kw)
    if cfg.pretrained:
        from .backbone import load_pretrained
        backbone.load_report = load_pretrained(backbone, cfg.pretrained)
    return SegModel(backbone, build_head(backbone.out_channels, cfg.num_classes, cfg.head))

