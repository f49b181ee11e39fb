"""Inception-v3 (Szegedy et al. 2016) with torchvision's parameter names, for FID and IS.

hamlib has no torchvision dependency, so the network is written out here; its
state-dict keys follow torchvision's layout, so a local copy of torchvision's
weights file (e.g. inception_v3_google-0cc3c7bd.pth) loads into it:

    from hamlib.gan.inception import inception_v3
    extractor = inception_v3("path/to/inception_v3_google-0cc3c7bd.pth")   # a PenultimateFeatures
    f, logits = extractor(images_in_minus1_1)                               # (B, 2048), (B, 1000)

The auxiliary classifier's weights in such a file are ignored (not needed for features).
Note: FIDs from these weights are close to, but not the same as, those of the TF
"pt_inception-2015-12-05" graph the GAN papers used (the HamGAN paper, Geng et al., ICLR 2021).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBN(nn.Module):
    """conv (no bias) + BN(eps 1e-3) + ReLU; parameters named conv.*, bn.* as torchvision."""

    def __init__(self, cin, cout, k, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _chain(module, names, x):
    for n in names:
        x = getattr(module, n)(x)
    return x


class Mixed(nn.Module):
    """One Inception module: named branches (chains of ConvBN) concatenated along channels.

    spec: {branch: [(name, cin, cout, k, stride, padding), ...]}; a branch whose first
    entry is "avgpool" averages 3x3 (stride 1) before its convs; "maxpool" is a bare 3x3
    stride-2 max pool. A branch ending in a pair ("split") applies both to its input and
    concatenates (the 7b/7c modules' 1x3 / 3x1 pairs).
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        for branch in spec.values():
            for item in branch:
                if isinstance(item, tuple):
                    name, cin, cout, k, s, p = item
                    self.add_module(name, ConvBN(cin, cout, k, s, p))
                elif isinstance(item, list):
                    for name, cin, cout, k, s, p in item:
                        self.add_module(name, ConvBN(cin, cout, k, s, p))

    def forward(self, x):
        outs = []
        for branch in self.spec.values():
            h = x
            for item in branch:
                if item == "avgpool":
                    h = F.avg_pool2d(h, 3, stride=1, padding=1)
                elif item == "maxpool":
                    h = F.max_pool2d(h, 3, stride=2)
                elif isinstance(item, list):     # split: parallel 1x3 and 3x1, concatenated
                    h = torch.cat([getattr(self, it[0])(h) for it in item], 1)
                else:
                    h = getattr(self, item[0])(h)
            outs.append(h)
        return torch.cat(outs, 1)


def _a(cin, pool):  # 35 x 35 module: 64 + 64 + 96 + pool channels
    return Mixed({"1x1": [("branch1x1", cin, 64, 1, 1, 0)],
                  "5x5": [("branch5x5_1", cin, 48, 1, 1, 0), ("branch5x5_2", 48, 64, 5, 1, 2)],
                  "3x3dbl": [("branch3x3dbl_1", cin, 64, 1, 1, 0), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                             ("branch3x3dbl_3", 96, 96, 3, 1, 1)],
                  "pool": ["avgpool", ("branch_pool", cin, pool, 1, 1, 0)]})


def _b(cin):  # 35 -> 17 reduction
    return Mixed({"3x3": [("branch3x3", cin, 384, 3, 2, 0)],
                  "3x3dbl": [("branch3x3dbl_1", cin, 64, 1, 1, 0), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                             ("branch3x3dbl_3", 96, 96, 3, 2, 0)],
                  "pool": ["maxpool"]})


def _c(cin, c7):  # 17 x 17 module with factorised 7x7 convolutions
    h, v = ((1, 7), (0, 3)), ((7, 1), (3, 0))
    return Mixed({"1x1": [("branch1x1", cin, 192, 1, 1, 0)],
                  "7x7": [("branch7x7_1", cin, c7, 1, 1, 0), ("branch7x7_2", c7, c7, h[0], 1, h[1]),
                          ("branch7x7_3", c7, 192, v[0], 1, v[1])],
                  "7x7dbl": [("branch7x7dbl_1", cin, c7, 1, 1, 0), ("branch7x7dbl_2", c7, c7, v[0], 1, v[1]),
                             ("branch7x7dbl_3", c7, c7, h[0], 1, h[1]), ("branch7x7dbl_4", c7, c7, v[0], 1, v[1]),
                             ("branch7x7dbl_5", c7, 192, h[0], 1, h[1])],
                  "pool": ["avgpool", ("branch_pool", cin, 192, 1, 1, 0)]})


def _d(cin):  # 17 -> 8 reduction
    return Mixed({"3x3": [("branch3x3_1", cin, 192, 1, 1, 0), ("branch3x3_2", 192, 320, 3, 2, 0)],
                  "7x7x3": [("branch7x7x3_1", cin, 192, 1, 1, 0), ("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
                            ("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)), ("branch7x7x3_4", 192, 192, 3, 2, 0)],
                  "pool": ["maxpool"]})


def _e(cin):  # 8 x 8 module with split 1x3 / 3x1 outputs
    return Mixed({"1x1": [("branch1x1", cin, 320, 1, 1, 0)],
                  "3x3": [("branch3x3_1", cin, 384, 1, 1, 0),
                          [("branch3x3_2a", 384, 384, (1, 3), 1, (0, 1)), ("branch3x3_2b", 384, 384, (3, 1), 1, (1, 0))]],
                  "3x3dbl": [("branch3x3dbl_1", cin, 448, 1, 1, 0), ("branch3x3dbl_2", 448, 384, 3, 1, 1),
                             [("branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1)),
                              ("branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0))]],
                  "pool": ["avgpool", ("branch_pool", cin, 192, 1, 1, 0)]})


class InceptionV3(nn.Module):
    """(B, 3, 299, 299) in [-1, 1] -> logits (B, num_classes); the 2048-d pooled features feed `fc`."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = _a(192, 32), _a(256, 64), _a(288, 64)
        self.Mixed_6a = _b(288)
        self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e = _c(768, 128), _c(768, 160), _c(768, 160), _c(768, 192)
        self.Mixed_7a = _d(768)
        self.Mixed_7b, self.Mixed_7c = _e(1280), _e(2048)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = _chain(self, ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"], x)   # (B, 64, 147, 147)
        x = F.max_pool2d(x, 3, stride=2)                                           # (B, 64, 73, 73)
        x = _chain(self, ["Conv2d_3b_1x1", "Conv2d_4a_3x3"], x)                    # (B, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)                                           # (B, 192, 35, 35)
        x = _chain(self, ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a"], x)      # (B, 768, 17, 17)
        x = _chain(self, ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a"], x)  # (B, 1280, 8, 8)
        x = _chain(self, ["Mixed_7b", "Mixed_7c"], x)                              # (B, 2048, 8, 8)
        return self.fc(x.mean((2, 3)))                                             # (B, 2048) -> (B, K)


def inception_v3(weights=None, size=299):
    """An InceptionV3 feature extractor (`PenultimateFeatures`); `weights`: a local torchvision-layout
    state-dict file (its AuxLogits.* entries are dropped)."""
    from pathlib import Path

    from .metrics import PenultimateFeatures

    net = InceptionV3()
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"no Inception-v3 weights file at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("AuxLogits.")})
    return PenultimateFeatures(net.eval(), size=size)
