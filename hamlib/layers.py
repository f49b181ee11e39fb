"""Small building blocks shared by the blocks and both models."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn.utils import parametrize


def reference_init(module: nn.Module) -> nn.Module:
    """The reference's weight initialisation, applied to every submodule.

    Conv weights ~ Normal(0, sqrt(2 / (k*k*out_channels))), norm layers gamma 1, beta 0
    (as the reference's `_init_weight`). Conv biases start at 0: here hamlib differs from
    the reference, which leaves PyTorch's default Uniform(+-1/sqrt(fan_in)) biases.
    Initialise before spectral normalisation (`sn`): its power-iteration vectors are
    computed for the weight it wraps, so a spectrally-normalised conv is refused.
    Returns the module.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if parametrize.is_parametrized(m):
                raise ValueError(f"reference_init: {m} is already parametrized (e.g. spectral norm); "
                                 "initialise its weight before wrapping it")
            k = m.kernel_size[0] * m.kernel_size[1]
            std = math.sqrt(2.0 / (k * m.out_channels))
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.SyncBatchNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def make_norm(norm, channels: int) -> nn.Module:
    """'bn' -> BatchNorm2d, 'gn' -> GroupNorm(32), None -> Identity, or a callable(channels)."""
    if norm is None or norm == "none":
        return nn.Identity()
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "gn":
        return nn.GroupNorm(min(32, channels), channels)
    if callable(norm):
        return norm(channels)
    raise ValueError(f"norm must be 'bn', 'gn', None or a callable, got {norm!r}")


class BiasAfterConv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, same state_dict) that adds its bias after the convolution.

    PyTorch's CPU convolution with a fused bias rounds differently with the number of threads
    (1 vs 2: up to 6e-7 on a 1x1 conv of 64 channels), so a block whose conv has a non-zero bias
    would not give bit-identical outputs across thread counts; the convolution alone, and the
    bias added to its output, do (tests/test_determinism.py)."""

    def forward(self, x):
        if self.bias is None:
            return super().forward(x)
        return self._conv_forward(x, self.weight, None) + self.bias.view(1, -1, 1, 1)


class ConvNormAct(nn.Sequential):
    """k x k conv (no bias) + norm + ReLU, padding keeps the size."""

    def __init__(self, cin, cout, k=1, norm="bn", act=True, dilation=1, stride=1):
        pad = dilation * (k - 1) // 2
        layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
                  make_norm(norm, cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gamma and beta are picked by the class label (for GAN generators).

    forward(x (B, C, H, W), y (B,) long) -> (B, C, H, W). gamma starts at 1, beta at 0.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x, y):
        if y is None or y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"ConditionalBatchNorm2d needs labels y of shape ({x.shape[0]},), "
                             f"got {None if y is None else tuple(y.shape)}")
        h = self.bn(x)
        return self.gamma(y)[:, :, None, None] * h + self.beta(y)[:, :, None, None]


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of a module."""
    return sum(p.numel() for p in module.parameters())


def sn(module: nn.Module) -> nn.Module:
    """Spectral normalisation (the parametrization form, which survives deepcopy and state_dict).

    Call it after the module's last weight initialisation: the power-iteration vectors
    are set up here for the current weight, and a weight redrawn afterwards keeps stale
    vectors (an effective spectral norm far from 1 until many training forwards)."""
    return nn.utils.parametrizations.spectral_norm(module)


def conv_weight(conv: nn.Module) -> torch.Tensor:
    """The trainable weight of a conv, spectral-normalised or not."""
    p = getattr(conv, "parametrizations", None)
    return p.weight.original if p is not None and hasattr(p, "weight") else conv.weight
