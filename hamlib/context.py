"""Global-context blocks: the one factory behind every "which context?" choice (heads, GANs, the course).

Every block maps (B, C, H, W) -> (B, C, H, W), residually, so any of them can replace another:

    "none"             identity: the same network without global context
    "pool"             `PoolContext`: out = ReLU(x + W mean_N(x)), the cheapest global context
    "attention"        `hamlib.SelfAttention2d` in the template of the Hamburger it replaces:
                       versions v1/v2/v2+: out = ReLU(x + norm(O(attn))) (residual, norm, ReLU);
                       version "gan": out = x + gamma O(attn), gamma = 0 at init and spectral-
                       normalised convs (SAGAN's block, as the gan Hamburger's sigma and breads)
    "attention-plain"  `hamlib.SelfAttention2d` as x + gamma O(attn), gamma = 1 at init, no norm
    "ham"              `hamlib.Hamburger(channels, **ham_kw)`
    "plain"            `hamlib.minimal.MinimalHamburger(channels, rank, steps, bptt=True)`: the v1 NMF
                       block as users write it in twenty lines (1x1 conv + ReLU, NMF by BPTT, 1x1
                       conv + BN, ReLU(x + .), PyTorch's init); a comparison's reference row
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .attention import SelfAttention2d
from .ham import Hamburger
from .layers import sn
from .minimal import MinimalHamburger

CONTEXTS = ("none", "pool", "attention", "attention-plain", "ham", "plain")


class PoolContext(nn.Module):
    """out = ReLU(x + W mean_N(x)): every position sees the same global summary."""

    def __init__(self, channels):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return F.relu(x + self.proj(x.mean(dim=(2, 3), keepdim=True)))   # (B, C, 1, 1) broadcast


def context_block(kind, channels, num_classes=None, **ham_kw) -> nn.Module:
    """The context block `kind` (one of CONTEXTS) for `channels` channels.

    ham_kw are `hamlib.Hamburger`'s arguments (ham, version, rank, steps, grad, norm, ...); the
    attention blocks read only version and norm from them (the template they share with the
    Hamburger). num_classes: the "gan" Hamburger's class-conditional BN (forward(x, y)).
    """
    if kind == "ham":
        return Hamburger(channels, num_classes=num_classes, **ham_kw)
    if kind == "plain":
        if ham_kw.get("ham", "nmf") != "nmf":
            raise ValueError(f"context 'plain' is the plain v1 NMF block, got ham={ham_kw['ham']!r}")
        return MinimalHamburger(channels, rank=ham_kw.get("rank", 64), steps=ham_kw.get("steps", 6), bptt=True)
    if kind == "none":
        return nn.Identity()
    if kind == "pool":
        return PoolContext(channels)
    if kind == "attention-plain":
        return SelfAttention2d(channels)
    if kind == "attention" and ham_kw.get("version") == "gan":
        block = SelfAttention2d(channels, gamma_init=0.0)
        block.qkv, block.proj = sn(block.qkv), sn(block.proj)
        return block
    if kind == "attention":
        return SelfAttention2d(channels, norm=ham_kw.get("norm", "bn"))
    hint = " ('sa' is now 'attention')" if kind == "sa" else ""
    raise ValueError(f"context must be one of {CONTEXTS}, got {kind!r}{hint}")
