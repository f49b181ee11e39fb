"""ResNet backbones for HamNet (the paper's reference recipe), written out so torchvision is not needed.

- Deep stem: three 3x3 convs (64, 64, 128 for ResNet-50/101), then a 3x3 max-pool: stride 4.
- Stages: layer1 (stride 1), layer2 (stride 2), layer3, layer4. For output stride 8, layer3
  and layer4 keep stride 1 and dilate instead: layer3 dilation 2 (its first block keeps the
  previous dilation 1, as torchvision and the reference do), layer4's three blocks the
  reference's multi-grid dilations (2, 8, 16), which is what `multi_grid` holds. For output
  stride 16 only layer4 is dilated, and the multi-grid is halved: (1, 4, 8).
- `resnet50`, `resnet101`: Bottleneck blocks, out_channels 2048.
- `resnet_tiny`: BasicBlocks, two stages, output stride 8 and a small receptive field,
  for CPU work on the synthetic set.
- `load_pretrained(model, path)`: ImageNet weights from a local file in torchvision's
  state-dict layout. torchvision's stem is one 7x7 conv, ours is three 3x3 convs, so the
  stem cannot be loaded; everything that matches by name is loaded, a shape mismatch on
  a matching name raises, and what was not loaded is returned as a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from ..layers import reference_init


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride, dilation) -> 1x1 expand (x4), as torchvision's v1.5."""

    expansion = 4

    def __init__(self, cin, width, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclass
class ResNetSpec:
    block: str = "bottleneck"
    layers: tuple = (3, 4, 23, 3)          # blocks per stage
    widths: tuple = (64, 128, 256, 512)    # inner width per stage (x expansion at the output)
    stem: tuple = (64, 64, 128)            # the deep stem's three 3x3 convs
    output_stride: int = 8                 # 8 or 16 (or 4 * 2**(stages-1) and below)
    multi_grid: tuple = field(default=(2, 8, 16))  # dilations of the last stage's blocks at OS 8


class ResNet(nn.Module):
    """Dilated ResNet with a deep stem. forward(x (B, 3, H, W)) -> list of stage outputs.

    The list holds each stage's map, layer1 at H/4 down to the last at H/os; `out_channels`
    lists their widths. `forward_features` returns only the last one.
    """

    def __init__(self, spec: ResNetSpec):
        super().__init__()
        if spec.block not in BLOCKS:
            raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {spec.block!r}")
        n = len(spec.layers)
        if len(spec.widths) != n or n < 1:
            raise ValueError(f"layers {spec.layers} and widths {spec.widths} must have the same length >= 1")
        full_os = 4 * 2 ** (n - 1)
        if spec.output_stride not in [4 * 2 ** i for i in range(n)]:
            raise ValueError(f"output_stride must be a power of two between 4 and {full_os}, got {spec.output_stride}")
        self.spec = spec
        block = BLOCKS[spec.block]
        s0, s1, s2 = spec.stem
        self.conv1 = nn.Conv2d(3, s0, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(s0)
        self.conv2 = nn.Conv2d(s0, s1, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(s1)
        self.conv3 = nn.Conv2d(s1, s2, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(s2)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)

        # stride and dilation per stage: once the output stride is reached, dilate instead
        cin, current, dilation, prev = s2, 4, 1, 1
        self.out_channels = []
        for i, (nblocks, width) in enumerate(zip(spec.layers, spec.widths)):
            stride = 1 if i == 0 else 2
            prev = dilation
            if i > 0 and current >= spec.output_stride:
                stride, dilation = 1, dilation * 2
            current *= stride
            last = i == n - 1 and i > 0
            if last and dilation > 1 and spec.multi_grid:
                # the reference's dilations (2, 8, 16) are for OS 8 (dilation 4); scale for OS 16
                grid = [max(1, g * dilation // 4) for g in spec.multi_grid]
                dils = [grid[j % len(grid)] for j in range(nblocks)]
            else:  # the first block keeps the previous stage's dilation
                dils = [prev] + [dilation] * (nblocks - 1)
            setattr(self, f"layer{i + 1}", self._stage(block, cin, width, nblocks, stride, dils))
            cin = width * block.expansion
            self.out_channels.append(cin)
        self.num_stages = n
        reference_init(self)

    @staticmethod
    def _stage(block, cin, width, nblocks, stride, dilations):
        down = None
        if stride != 1 or cin != width * block.expansion:
            down = nn.Sequential(nn.Conv2d(cin, width * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(width * block.expansion))
        layers = [block(cin, width, stride, dilations[0], down)]
        for d in dilations[1:]:
            layers.append(block(width * block.expansion, width, 1, d))
        return nn.Sequential(*layers)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ResNet expects images (B, 3, H, W), got shape {tuple(x.shape)}")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.maxpool(self.relu(self.bn3(self.conv3(x))))   # (B, stem, H/4, W/4)
        feats = []
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            feats.append(x)
        return feats

    def forward_features(self, x):
        return self.forward(x)[-1]


def resnet50(output_stride=8, multi_grid=(2, 8, 16)) -> ResNet:
    return ResNet(ResNetSpec("bottleneck", (3, 4, 6, 3), output_stride=output_stride, multi_grid=multi_grid))


def resnet101(output_stride=8, multi_grid=(2, 8, 16)) -> ResNet:
    return ResNet(ResNetSpec("bottleneck", (3, 4, 23, 3), output_stride=output_stride, multi_grid=multi_grid))


def resnet_tiny(width=32, output_stride=8) -> ResNet:
    """Two BasicBlock stages (width, 2*width), stem (w/2, w/2, w): output stride 8, 55 px receptive field."""
    return ResNet(ResNetSpec("basic", (1, 1), (width, 2 * width), (width // 2, width // 2, width),
                             output_stride=output_stride, multi_grid=()))


BACKBONES = {"resnet50": resnet50, "resnet101": resnet101, "resnet_tiny": resnet_tiny}


def build_backbone(name: str, **kw) -> ResNet:
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {tuple(BACKBONES)}, got {name!r}")
    return BACKBONES[name](**kw)


# ---------------------------------------------------------------------------
# ImageNet weights in torchvision's layout
# ---------------------------------------------------------------------------

@dataclass
class LoadReport:
    loaded: list          # our keys filled from the file
    missing: list         # our keys the file did not have (e.g. the deep stem's conv2, conv3)
    unexpected: list      # file keys we have no place for (e.g. fc.*)

    def __str__(self):
        return (f"loaded {len(self.loaded)} tensors; not in the file: {len(self.missing)} "
                f"({', '.join(self.missing[:6])}{'...' if len(self.missing) > 6 else ''}); "
                f"unused from the file: {len(self.unexpected)} "
                f"({', '.join(self.unexpected[:6])}{'...' if len(self.unexpected) > 6 else ''})")


def load_pretrained(model: ResNet, path) -> LoadReport:
    """Copy matching tensors from a torchvision-layout state dict (a file from torch.save).

    Names match torchvision's (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, ...).
    A name present on both sides with a different shape raises ValueError naming the key
    (torchvision's 7x7 `conv1.weight` against our 3x3 deep stem is such a key, so it is
    skipped on purpose and reported as missing: the stem conv1 shape differs by design).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pretrained weights at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    # torchvision's single 7x7 stem conv has the name of our first 3x3 conv: not the same layer
    stem_keys = {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                 "bn1.num_batches_tracked"}
    tv_stem = "conv1.weight" in state and state["conv1.weight"].shape[-1] == 7
    loaded, copy = [], {}
    for k, v in state.items():
        if k not in own or (tv_stem and k in stem_keys):
            continue
        if own[k].shape != v.shape:
            raise ValueError(f"shape mismatch for {k!r}: file has {tuple(v.shape)}, model has {tuple(own[k].shape)}")
        copy[k] = v
        loaded.append(k)
    model.load_state_dict(copy, strict=False)
    missing = [k for k in own if k not in copy]
    unexpected = [k for k in state if k not in own or (tv_stem and k in stem_keys)]
    return LoadReport(loaded, missing, unexpected)
