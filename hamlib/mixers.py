"""Token mixers on (B, N, C) and a small MetaFormer transformer that takes any of them (notebook 09).

Every mixer maps tokens X (B, N, C) to the same shape and checks its input the same way
(`TokenMixer._check`): a 3-D floating tensor whose last axis is C, 1 <= N <= max_len.

  "attention"  softmax attention (SDPA), heads h:            O(N^2 C) time, O(N C) memory (fused)
  "linear"     linear attention, phi = elu + 1 (Katharopoulos et al. 2020): O(N C^2 / h)
  "nmf"/"cd"/"vq"  a Hamburger on tokens: lower bread C -> d (+ReLU for NMF), the solver module
               with layout="bnc" (rank r, K steps, its gradient mode), upper bread d -> C: O(N d r K)
  "mean"       mean pooling: every token gets W mean_j x_j:     O(N C)
  "identity"   no mixing (each token sees only itself; the control)

`make_mixer(name, channels, max_len, **kw)` builds one; `SeqTransformer` stacks `layers`
blocks x + mixer(LN(x)), x + MLP(LN(x)) over token or vector embeddings plus learned
positions, and reads out per token or from the first token.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .md import SOLVERS

MIXERS = ("attention", "linear", "nmf", "cd", "vq", "mean", "identity")


class TokenMixer(nn.Module):
    """Base: the shared input check. Subclasses set self.channels, self.max_len and define `mix`."""

    def __init__(self, channels, max_len):
        super().__init__()
        for arg, value in (("channels", channels), ("max_len", max_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be an integer >= 1, got {value!r}")
        self.channels, self.max_len = channels, max_len

    def _check(self, x):
        name = type(self).__name__
        if not torch.is_tensor(x) or x.dim() != 3:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            hint = " (a (B, C, H, W) feature map: flatten it to (B, H*W, C), or use a 'bchw' block)" \
                if torch.is_tensor(x) and x.dim() == 4 else ""
            raise ValueError(f"{name} expects tokens (B, N, C), got shape {shape}{hint}")
        B, N, C = x.shape
        if C != self.channels:
            hint = (" (it looks like (B, C, N): transpose it to (B, N, C))" if N == self.channels else "")
            raise ValueError(f"{name} was built for C = {self.channels} channels on the last axis, "
                             f"input (B, N, C) = {tuple(x.shape)} has {C}{hint}")
        if N == 0:
            raise ValueError(f"{name} got an empty sequence, N = 0 (shape {tuple(x.shape)})")
        if N > self.max_len:
            raise ValueError(f"{name}: sequence length N = {N} exceeds the configured max_len = {self.max_len}")
        if not x.is_floating_point():
            raise ValueError(f"{name} needs a floating-point input, got {x.dtype}")

    def forward(self, x):
        self._check(x)
        return self.mix(x)


def _split(t, h):
    # (B, N, C) -> (B, h, N, C / h)
    B, N, C = t.shape
    return t.reshape(B, N, h, C // h).transpose(1, 2)


def _merge(t):
    # (B, h, N, c) -> (B, N, h c)
    B, h, N, c = t.shape
    return t.transpose(1, 2).reshape(B, N, h * c)


class SoftmaxAttention(TokenMixer):
    """softmax(Q K^T / sqrt(C/h)) V by SDPA, h heads; causal=True masks j > i. 4 C^2 + 4 C parameters."""

    def __init__(self, channels, max_len, heads=4, causal=False):
        super().__init__(channels, max_len)
        if channels % heads:
            raise ValueError(f"heads={heads} does not divide channels={channels}")
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def mix(self, x):
        q, k, v = (_split(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))  # (B, h, N, C/h) each
        return self.proj(_merge(F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)))


class LinearAttention(TokenMixer):
    """phi(Q) (phi(K)^T V) / (phi(Q) phi(K)^T 1), phi = elu + 1: a kernel of rank C/h per head.

    The N x N matrix is never formed: phi(K)^T V is (C/h x C/h) per head, so time and memory grow
    linearly in N. Parameters as SoftmaxAttention."""

    def __init__(self, channels, max_len, heads=4, eps=1e-6):
        super().__init__(channels, max_len)
        if channels % heads:
            raise ValueError(f"heads={heads} does not divide channels={channels}")
        self.heads, self.eps = heads, eps
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def mix(self, x):
        q, k, v = (_split(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        q, k = F.elu(q) + 1, F.elu(k) + 1                        # phi >= 0: (B, h, N, c)
        kv = k.transpose(-1, -2) @ v                             # (B, h, c, c)
        z = q @ k.sum(dim=2, keepdim=True).transpose(-1, -2)    # (B, h, N, 1): phi(q_i) . sum_j phi(k_j)
        return self.proj(_merge((q @ kv) / (z + self.eps)))


class HamMixer(TokenMixer):
    """A Hamburger on tokens: upper(ham(lower(X))), ham a solver module with layout="bnc".

    lower: Linear C -> d (+ReLU for NMF, which needs X >= 0); ham: NMF2D / CD2D / VQ2D(d, rank=r,
    steps=K, grad=...) over the N tokens (features d, positions N: D (B, d, r), C (B, N, r));
    upper: Linear d -> C, no bias. The output at token i is its reconstruction D c_i: what the
    r bases fitted to the whole sequence say about x_i. Training draws fresh random bases per
    forward (the solver's default); evaluation uses the module's fixed ones."""

    def __init__(self, channels, max_len, ham="nmf", d=None, rank=16, steps=6, grad=None, **md_kw):
        super().__init__(channels, max_len)
        if ham not in SOLVERS:
            raise ValueError(f"ham must be one of {tuple(SOLVERS)}, got {ham!r}")
        d = channels if d is None else d
        self.ham_kind, self.d = ham, d
        self.lower = nn.Linear(channels, d)
        self.ham = SOLVERS[ham](d, rank=rank, steps=steps, grad=grad, layout="bnc", **md_kw)
        self.upper = nn.Linear(d, channels, bias=False)

    def mix(self, x):
        z = self.lower(x)                                        # (B, N, C) -> (B, N, d)
        if self.ham_kind == "nmf":
            z = F.relu(z)
        return self.upper(self.ham(z))                           # (B, N, d) -> (B, N, C)


class MeanPool(TokenMixer):
    """Every token receives W (1/N sum_j x_j): one slot, the sequence's mean. C^2 + C parameters."""

    def __init__(self, channels, max_len):
        super().__init__(channels, max_len)
        self.proj = nn.Linear(channels, channels)

    def mix(self, x):
        return self.proj(x.mean(dim=1, keepdim=True)).expand_as(x)


class IdentityMixer(TokenMixer):
    """No mixing: returns X (each token sees only itself). The control every mixer must beat."""

    def mix(self, x):
        return x


def make_mixer(name, channels, max_len, **kw):
    """A mixer by name (see MIXERS); kw go to its class (heads, rank, steps, grad, d, ...)."""
    if name in ("nmf", "cd", "vq"):
        return HamMixer(channels, max_len, ham=name, **kw)
    classes = {"attention": SoftmaxAttention, "linear": LinearAttention, "mean": MeanPool,
               "identity": IdentityMixer}
    if name not in classes:
        raise ValueError(f"unknown mixer {name!r}; choose one of {MIXERS}")
    return classes[name](channels, max_len, **kw)


class Block(nn.Module):
    """MetaFormer block: x + mixer(LN(x)), then x + MLP(LN(x)) (MLP C -> 2C -> C, GELU)."""

    def __init__(self, mixer, channels, mlp_ratio=2):
        super().__init__()
        self.norm1, self.mixer = nn.LayerNorm(channels), mixer
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, mlp_ratio * channels), nn.GELU(),
                                 nn.Linear(mlp_ratio * channels, channels))

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SeqTransformer(nn.Module):
    """Embeddings + learned positions -> `layers` Blocks with the named mixer -> LN -> Linear head.

    inputs: an int V (token ids; x (B, N) or (B, N, F) ints whose F embeddings are summed, each
      field its own table of V ids) or ("vector", F) (x (B, N, F) floats, a Linear embedding).
    readout: "tokens" (logits (B, N, classes)) or "first" (logits (B, classes) from token 0).
    mixer_kw go to `make_mixer`.
    """

    def __init__(self, inputs, classes, mixer="attention", channels=64, layers=2, max_len=128,
                 readout="tokens", fields=1, **mixer_kw):
        super().__init__()
        if readout not in ("tokens", "first"):
            raise ValueError(f"readout must be 'tokens' or 'first', got {readout!r}")
        self.vector = isinstance(inputs, tuple)
        if self.vector:
            self.embed = nn.Linear(inputs[1], channels)
        else:
            self.embed = nn.ModuleList(nn.Embedding(inputs, channels) for _ in range(fields))
        self.pos = nn.Parameter(torch.randn(max_len, channels) * 0.02)
        self.blocks = nn.ModuleList(Block(make_mixer(mixer, channels, max_len, **mixer_kw), channels)
                                    for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(channels), nn.Linear(channels, classes)
        self.readout, self.max_len, self.mixer_name = readout, max_len, mixer

    def forward(self, x):
        if self.vector:
            h = self.embed(x)                                    # (B, N, F) -> (B, N, C)
        else:
            x = x.unsqueeze(-1) if x.dim() == 2 else x           # (B, N, fields)
            h = sum(e(x[..., i]) for i, e in enumerate(self.embed))
        N = h.shape[1]
        if N == 0 or N > self.max_len:
            raise ValueError(f"sequence length N = {N} must be in 1..max_len = {self.max_len}")
        h = h + self.pos[:N]
        for blk in self.blocks:
            h = blk(h)
        h = self.head(self.norm(h))                              # (B, N, classes)
        return h if self.readout == "tokens" else h[:, 0]
