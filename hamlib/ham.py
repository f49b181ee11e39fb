"""The Hamburger block: lower bread (1x1 conv) -> ham (MD solver) -> upper bread (1x1 conv).

Versions (as in the paper's reference segmentation and GAN code); Z = ham(lower(x)):
  "v1"   lower = conv C->d (+bias, +ReLU for NMF); upper = conv d->C (no bias) + norm;
         out = ReLU(x + norm(upper(Z)))
  "v2"   a "cheese" (conv d->d + norm + ReLU) between the ham and the upper bread, no norm
         after it: out = ReLU(x + upper(cheese(Z)))
  "v2+"  v2 with learnable scalar gates, out = ReLU(a * upper(cheese(Z)) + b * x), a = 0 and
         b = 1 at init; groups S act as heads and the cheese narrows to d / S (the
         reference's CHEESE_FACTOR = S); dual=True doubles the lower bread to 2d channels:
         the first d are decomposed over positions (each head's d/S channels are the
         features), the other d over channels (each head's H*W positions are the features),
         and the cheese maps 2d -> d / S
  "gan"  spectral-normalised breads (no biases), out = x + sigma * upper(Z) with sigma = 0
         at init (as SAGAN), no ReLU after the sum; with num_classes, class-conditional BN
         after the upper bread (the HamGAN generator), and forward(x, y)

The "gan" block against the TF HamGAN reference (gan/HamGAN/ops.py, sn_hamburger_v1).
The same: no bias on either bread, Glorot-uniform conv weights (spectral norm divides out their
scale), spectral norm from construction, ReLU before NMF only, BN after the upper bread.
Different, each an argument: CD's beta defaults to 0.1 (the segmentation reference's; the TF
code uses 0.01: pass beta=0.01); the TF code's gradient is the paper's one-step (grad="one-step",
as hamlib.gan.model passes it; the block's own default is the solver's); `bases` may be "learned".
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import BiasAfterConv2d, ConditionalBatchNorm2d, ConvNormAct, make_norm, reference_init, sn
from .md import SOLVERS

VERSIONS = ("v1", "v2", "v2+", "gan")
INITS = ("reference", "pytorch")


class Hamburger(nn.Module):
    """Global context by matrix decomposition, as a residual block on (B, C, H, W).

    Args:
      channels: C_in (= C_out).
      ham: "nmf", "vq" or "cd".
      version: "v1", "v2" (default, HamNet), "v2+" or "gan" (see the module docstring).
      d: width of the ham (default: channels), S * MD_D in the reference's notation.
        rank: r. steps / eval_steps: K.
      groups: S, the ham's heads (d / S channels each). grad, inv_t, beta, eval_seed,
        validate: passed to the solver module (see `hamlib.NMF2D`); grad=None is the
        solver's default ("bptt" for NMF, "one-step-bases" for CD, 2 for VQ),
        grad="one-step" the paper's; inv_t=None is the solver's (20 for VQ, 100 for CD);
        NMF has no temperature: an inv_t with ham="nmf" raises ValueError.
      bases: "random" (the reference's configs) or "learned": an (S, d/S, r) buffer that
        hamlib updates in *training* forwards by the reference's moving average of the final
        bases (the reference updates it only in eval forwards and never enables it in its
        configs); updating in training keeps evaluation a pure function of the weights.
        The channel-wise half of a dual block always draws random bases (its features are
        the H*W positions, which change with the input size).
      norm: "bn" (default), "gn" or a callable(channels) for the norm layers.
      dual: v2+ only: ham over positions for half of 2d channels, over channels for the other.
      num_classes: gan only: class-conditional BN after the upper bread.
      init: "pytorch" (default): PyTorch's own conv initialisation (kaiming-uniform with
        a = sqrt(5), uniform biases) kept; "reference": conv weights by
        `hamlib.layers.reference_init` (Normal(0, 2 / out_channels), biases 0), the paper's code.
        The default was measured (experiments/RESULTS.md, "Block defaults on three tasks"): never
        worse than the reference's beyond the seeds' spread, and it made every seed learn the
        two-colour legend task; the VOC recipe passes init="reference". The "gan" version always
        starts from Glorot-uniform weights (its spectral norm divides their scale out).
    """

    def __init__(self, channels, ham="nmf", version="v2", d=None, rank=64, steps=6, eval_steps=None,
                 groups=1, grad=None, bases="random", inv_t=None, beta=0.1, norm="bn",
                 dual=False, num_classes=None, eval_seed=0, validate=True, init="pytorch"):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
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

        kw = dict(rank=rank, steps=steps, eval_steps=eval_steps, grad=grad, inv_t=inv_t, beta=beta,
                  eval_seed=eval_seed, validate=validate)
        self.ham = SOLVERS[ham](d, groups=groups, bases=bases, **kw)  # checks that S divides d
        if dual:  # each head's (d/S, H*W) matrix transposed: features = positions
            self.ham_channel = SOLVERS[ham](d, groups=groups, spatial=False, bases="random", **kw)

        gan = version == "gan"
        lower = BiasAfterConv2d(channels, width, 1, bias=not gan)   # thread-count invariant (layers.py)
        self.lower_bread = nn.Sequential(lower, nn.ReLU(inplace=True) if ham == "nmf" else nn.Identity())
        cheese_out = d // groups if version == "v2+" else width  # 2d or d -> d/S for v2+
        self.cheese = ConvNormAct(width, cheese_out, 1, norm=norm) if version in ("v2", "v2+") else nn.Identity()
        self.upper_bread = nn.Conv2d(cheese_out, channels, 1, bias=False)
        if version == "v1":
            self.upper_norm = make_norm(norm, channels)
        elif num_classes is not None:
            self.upper_norm = ConditionalBatchNorm2d(channels, num_classes)
        else:
            self.upper_norm = nn.Identity()
        if version == "v2+":
            self.gate_ham = nn.Parameter(torch.zeros(1))
            self.gate_x = nn.Parameter(torch.ones(1))
        if init == "reference":
            reference_init(self)
        if gan:  # as the TF reference: Glorot-uniform, then spectral norm (after the last init,
            # so that its power-iteration vectors belong to these weights)
            for conv in (lower, self.upper_bread):
                nn.init.xavier_uniform_(conv.weight)
                sn(conv)
            self.sigma = nn.Parameter(torch.zeros(1))

    def forward(self, x, y=None):
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"Hamburger was built for (B, {self.channels}, H, W) input, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"Hamburger needs a floating-point input, got {x.dtype}")
        z = self.lower_bread(x)                       # (B, C, H, W) -> (B, d or 2d, H, W)
        if self.dual:
            zs, zc = z.chunk(2, dim=1)                # (B, d, H, W) each: over positions, over channels
            z = torch.cat([self.ham(zs), self.ham_channel(zc)], dim=1)
        else:
            z = self.ham(z)
        z = self.upper_bread(self.cheese(z))          # (B, d or 2d, H, W) -> (B, C, H, W)
        z = self.upper_norm(z, y) if isinstance(self.upper_norm, ConditionalBatchNorm2d) else self.upper_norm(z)
        if self.version == "gan":
            return x + self.sigma * z
        if self.version == "v2+":
            return F.relu(self.gate_ham * z + self.gate_x * x)
        return F.relu(x + z)
