"""The Hamburger block: lower bread (1x1 conv) -> ham (MD solver) -> upper bread (1x1 conv).

Versions (as in the paper's reference segmentation and GAN code):
  "v1"   lower = conv C->d (+bias, +ReLU for NMF); ham; upper = conv d->C (no bias) + norm;
         out = ReLU(x + upper)
  "v2"   as v1 with a "cheese" (conv d->d + norm + ReLU) after the ham, and no norm after
         the upper bread
  "v2+"  v2 with learnable scalar gates, out = ReLU(a * path + b * x), a = 0 and b = 1 at
         init; optional dual ham (half the channels decomposed over positions, half over
         channels); groups S act as heads
  "gan"  spectral-normalised breads, out = x + sigma * path with sigma = 0 at init (as
         SAGAN), no ReLU after the sum; with num_classes, class-conditional BN after the
         upper bread (the HamGAN generator), and forward(x, y)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ConditionalBatchNorm2d, ConvNormAct, make_norm, reference_init, sn
from .md import SOLVERS

VERSIONS = ("v1", "v2", "v2+", "gan")


class Hamburger(nn.Module):
    """Global context by matrix decomposition, as a residual block on (B, C, H, W).

    Args:
      channels: C_in (= C_out).
      ham: "nmf", "vq" or "cd".
      version: "v1", "v2" (default, HamNet), "v2+" or "gan" (see the module docstring).
      d: width of the ham (default: channels). rank: r. steps / eval_steps: K.
      groups: S, the ham's heads. grad, bases, inv_t, beta, eval_seed, validate:
        passed to the solver module (see `hamlib.NMF2D`); grad=None is the solver's
        measured default ("bptt" for NMF, "one-step-bases" for CD, 2 for VQ),
        grad="one-step" the paper's.
      norm: "bn" (default), "gn" or a callable(channels) for the norm layers.
      dual: v2+ only: ham over positions for half of 2d channels, over channels for the other.
      num_classes: gan only: class-conditional BN after the upper bread.
    """

    def __init__(self, channels, ham="nmf", version="v2", d=None, rank=64, steps=6, eval_steps=None,
                 groups=1, grad=None, bases="random", inv_t=100.0, beta=0.1, norm="bn",
                 dual=False, num_classes=None, eval_seed=0, validate=True):
        super().__init__()
        if ham not in SOLVERS:
            raise ValueError(f"ham must be one of {tuple(SOLVERS)}, got {ham!r}")
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        if dual and version != "v2+":
            raise ValueError("dual=True is a v2+ option")
        if num_classes is not None and version != "gan":
            raise ValueError("num_classes (conditional BN) is a 'gan' option")
        d = channels if d is None else d
        self.channels = channels
        self.version, self.ham_kind, self.dual = version, ham, dual
        width = 2 * d if dual else d

        lower = nn.Conv2d(channels, width, 1, bias=True)
        self.lower_bread = nn.Sequential(sn(lower) if version == "gan" else lower,
                                         nn.ReLU(inplace=True) if ham == "nmf" else nn.Identity())
        solver = SOLVERS[ham]
        kw = dict(rank=rank, steps=steps, eval_steps=eval_steps, grad=grad, inv_t=inv_t, beta=beta,
                  eval_seed=eval_seed, validate=validate)
        self.ham = solver(d, groups=groups, bases=bases, **kw)
        if dual:  # channel-wise MD of X^T: its "feature" size is N, so bases are drawn per input
            self.ham_channel = solver(d, groups=1, bases="random", **kw)
        self.cheese = ConvNormAct(width, width, 1, norm=norm) if version in ("v2", "v2+") else nn.Identity()
        upper = nn.Conv2d(width, channels, 1, bias=False)
        self.upper_bread = sn(upper) if version == "gan" else upper
        if version == "v1":
            self.upper_norm = make_norm(norm, channels)
        elif num_classes is not None:
            self.upper_norm = ConditionalBatchNorm2d(channels, num_classes)
        else:
            self.upper_norm = nn.Identity()
        if version == "v2+":
            self.gate_ham = nn.Parameter(torch.zeros(1))
            self.gate_x = nn.Parameter(torch.ones(1))
        if version == "gan":
            self.sigma = nn.Parameter(torch.zeros(1))
        reference_init(self)

    def forward(self, x, y=None):
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Hamburger was built for (B, {self.channels}, H, W) input, got shape {tuple(x.shape)}")
        z = self.lower_bread(x)                       # (B, C, H, W) -> (B, d or 2d, H, W)
        if self.dual:
            zs, zc = z.chunk(2, dim=1)                # each (B, d, H, W)
            B, d, H, W = zc.shape
            zc = self.ham_channel.reconstruct(zc.reshape(B, d, H * W).mT)  # (B, N, d): MD over channels
            z = torch.cat([self.ham(zs), zc.mT.reshape(B, d, H, W)], dim=1)
        else:
            z = self.ham(z)
        z = self.upper_bread(self.cheese(z))
        z = self.upper_norm(z, y) if isinstance(self.upper_norm, ConditionalBatchNorm2d) else self.upper_norm(z)
        if self.version == "gan":
            return x + self.sigma * z
        if self.version == "v2+":
            return F.relu(self.gate_ham * z + self.gate_x * x)
        return F.relu(x + z)
