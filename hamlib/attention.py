"""Attention baselines with the Hamburger interface: (B, C, H, W) in, same shape out.

Both build on `torch.nn.functional.scaled_dot_product_attention`, which picks
a fused kernel (flash / memory-efficient) where the device has one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import make_norm, reference_init


def _heads(t, heads):
    # (B, C, H, W) -> (B, heads, N, C / heads)
    B, C = t.shape[:2]
    return t.reshape(B, heads, C // heads, -1).transpose(2, 3)


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the H*W positions, as a residual block.

    q, k, v and the output projection are 1x1 convs C -> C (4 C^2 parameters plus
    biases: the paper's "self-attention" row). Two residual forms:
      norm=None (default): out = x + gamma * O(attn), gamma a learned scalar that starts
        at `gamma_init` (1; SAGAN-style blocks use 0);
      norm="bn" / "gn" / callable: the Hamburger's template, out = ReLU(x + norm(O(attn)))
        (as a v1 Hamburger's upper bread: projection, norm, residual, ReLU), no gamma.
        Use it to compare attention with a Hamburger inside the same template
        (`hamlib.seg.heads` does).
    """

    def __init__(self, channels, heads=1, gamma_init=1.0, norm=None):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads={heads} does not divide channels={channels}")
        self.heads = heads
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.norm = None if norm is None or norm == "none" else make_norm(norm, channels)
        if self.norm is None:
            self.gamma = nn.Parameter(torch.full((1,), float(gamma_init)))

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(f"SelfAttention2d expects (B, C, H, W), got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        q, k, v = (_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=1))
        o = F.scaled_dot_product_attention(q, k, v)   # (B, heads, N, C / heads)
        o = o.transpose(2, 3).reshape(B, C, H, W)      # -> (B, C, H, W)
        if self.norm is not None:
            return F.relu(x + self.norm(self.proj(o)))
        return x + self.gamma * self.proj(o)

    def attention_map(self, x):
        """The (B, heads, N, N) attention probabilities (for pictures; O(N^2) memory)."""
        q, k, _ = (_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=1))
        return (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1)


class NonLocal2d(nn.Module):
    """Non-local block (Wang et al. 2018, embedded Gaussian): out = x + BN(W(softmax(theta phi^T) g)).

    theta, phi, g: 1x1 convs C -> C/2 (the `inter` width); W: 1x1 conv back to C
    followed by a norm whose gamma starts at 0, so the block starts as identity.
    Unlike the original, scores are scaled by 1/sqrt(inter) (SDPA's default).
    """

    def __init__(self, channels, inter=None, norm="bn"):
        super().__init__()
        inter = inter or max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.W = nn.Conv2d(inter, channels, 1)
        self.norm = make_norm(norm, channels)
        reference_init(self)
        if hasattr(self.norm, "weight") and self.norm.weight is not None:
            nn.init.zeros_(self.norm.weight)

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(f"NonLocal2d expects (B, C, H, W), got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        q, k, v = (_heads(f(x), 1) for f in (self.theta, self.phi, self.g))
        y = F.scaled_dot_product_attention(q, k, v)     # (B, 1, N, inter)
        y = y.transpose(2, 3).reshape(B, -1, H, W)       # -> (B, inter, H, W)
        return x + self.norm(self.W(y))
