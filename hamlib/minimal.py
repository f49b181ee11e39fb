"""The Hamburger in one screen: read this first, then `hamlib.ham` and `hamlib.md` for the options.

    out = ReLU(x + BN(upper(NMF(ReLU(lower(x))))))

lower / upper bread: 1x1 convs C -> d -> C; the ham: X (d x N) ~ D C^T by K multiplicative
updates that autograd never sees, then one differentiated coefficient step (the paper's
one-step gradient). This is `hamlib.Hamburger(channels, ham="nmf", version="v1", d=d, rank=r,
steps=K, grad="one-step", init="pytorch")` without its options and checks; a test pins the two
equal in output and input gradient. `bptt=True` lets autograd see the K steps too: then it is
`hamlib.Hamburger(..., version="v1", grad="bptt", init="pytorch")`, the "plain v1" row of the
course's comparison tables (the block as users write it in twenty lines; `context_block("plain")`).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-6


class MinimalHamburger(nn.Module):
    def __init__(self, channels, d=None, rank=64, steps=6, seed=0, bptt=False):
        super().__init__()
        self.bptt = bptt                                           # False: the paper's one-step gradient
        d = channels if d is None else d
        self.lower = nn.Conv2d(channels, d, 1)                     # lower bread (then ReLU: NMF needs X >= 0)
        self.upper = nn.Conv2d(d, channels, 1, bias=False)         # upper bread
        self.norm = nn.BatchNorm2d(channels)
        g = torch.Generator().manual_seed(seed)                    # evaluation's bases, drawn once
        self.register_buffer("D0", F.normalize(torch.rand(1, d, rank, generator=g), dim=1), persistent=False)
        self.steps = steps

    def nmf(self, X):                                               # X (B, d, N) >= 0 -> D C^T (B, d, N)
        B, d, r = X.shape[0], X.shape[1], self.D0.shape[2]
        D = F.normalize(torch.rand(B, d, r, device=X.device), dim=1) if self.training else self.D0
        D = D.to(X.dtype).expand(B, d, r)                          # initial bases (B, d, r)
        # run on X / s, s = 2^floor(log2 max X): eps stays relative to X's scale, and s is exact
        top = X.detach().amax((1, 2), keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)   # (B, 1, 1)
        s = torch.exp2(torch.floor(torch.log2(top)))
        with contextlib.nullcontext() if self.bptt else torch.no_grad():   # K steps autograd never sees
            Ct = torch.softmax(D.mT @ X, dim=1)                     # C^T (B, r, N), softmax over r
            for _ in range(self.steps):
                Ct = Ct * (D.mT @ X / s) / (D.mT @ D @ Ct + EPS)    # C <- C (X^T D) / (C D^T D)
                D = D * (X @ Ct.mT / s) / (D @ (Ct @ Ct.mT) + EPS)  # D <- D (X C) / (D C^T C)
        Ct = Ct * (D.mT @ X / s) / (D.mT @ D @ Ct + EPS)            # the one differentiated step
        return D @ (Ct * s)                                         # the factors of X, not X / s

    def forward(self, x):                                           # x (B, C, H, W)
        # the bias added after the conv: a fused bias rounds differently with the thread count
        X = F.relu(F.conv2d(x, self.lower.weight) + self.lower.bias[:, None, None]).flatten(2)   # (B, d, N), N = H*W
        z = self.nmf(X).view(x.shape[0], -1, *x.shape[2:])          # (B, d, H, W)
        return F.relu(x + self.norm(self.upper(z)))
