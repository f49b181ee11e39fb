"""HamGAN: a SAGAN-style class-conditional generator and projection discriminator.

The paper's HamGAN (Geng et al., ICLR 2021). The generator maps (z, y) to an image through residual
up-sampling blocks with class-conditional BatchNorm; the discriminator maps
(x, y) to a score through residual down-sampling blocks and a class projection.
Both are spectrally normalised everywhere (SAGAN). At one resolution of each
network sits a global-context block -- where SAGAN puts self-attention -- built by
`hamlib.context_block` (any of `hamlib.context.CONTEXTS`) in the "gan" template:

    block="ham"        hamlib.Hamburger(version="gan"): out = x + sigma * path, sigma = 0 at init;
                       in the generator its upper bread is followed by class-conditional BN
    block="attention"  hamlib.SelfAttention2d(gamma_init=0), its 1x1 convs spectral-normalised
    block="none"       no global context (an SNGAN-projection baseline)

Resolutions: the generator starts at 4 x 4 and doubles at every block, so with
channels (c0, c1, ..., cL) it makes 4 * 2^L px images; the block goes after the
up-sampling block whose output is `block_res` px. The discriminator halves at
every block of `channels`, then adds one block that keeps the size.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..attention import SelfAttention2d
from ..context import context_block
from ..ham import Hamburger
from ..layers import ConditionalBatchNorm2d, sn

# the context blocks' Hamburger arguments unless given (the TF HamGAN's: the paper's one-step gradient)
GAN_HAM = dict(version="gan", ham="nmf", d=None, rank=16, steps=6, grad="one-step")


def sn_conv(cin, cout, k=3):
    """Spectral-normalised k x k conv (size-preserving), orthogonal init as BigGAN."""
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.orthogonal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return sn(conv)


def sn_linear(cin, cout):
    lin = nn.Linear(cin, cout)
    nn.init.orthogonal_(lin.weight)
    nn.init.zeros_(lin.bias)
    return sn(lin)


# ---------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------


class GBlock(nn.Module):
    """CBN-ReLU-up-conv-CBN-ReLU-conv, plus an up-sampled 1x1-conv shortcut: (B, cin, H, W) -> (B, cout, 2H, 2W)."""

    def __init__(self, cin, cout, num_classes):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = sn_conv(cin, cout)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1)

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """G(z, y): z (B, z_dim), y (B,) long -> images (B, img_channels, R, R) in [-1, 1].

    channels: (c0, c1, ..., cL): c0 at 4 x 4, c_i after the i-th up-sampling block.
    block / block_res: the global-context block and the resolution it sits at.
    ham_kw: Hamburger options (ham, d, rank, steps, grad).
    """

    def __init__(self, num_classes, z_dim=128, channels=(256, 256, 256, 256), img_channels=3,
                 block="ham", block_res=16, **ham_kw):
        super().__init__()
        self.num_classes, self.z_dim, self.channels = num_classes, z_dim, tuple(channels)
        self.resolution = 4 * 2 ** (len(channels) - 1)
        self.linear = sn_linear(z_dim, 4 * 4 * channels[0])
        self.blocks = nn.ModuleList(GBlock(a, b, num_classes) for a, b in zip(channels[:-1], channels[1:]))
        resolutions = [4 * 2 ** (i + 1) for i in range(len(self.blocks))]
        if block != "none" and block_res not in resolutions:
            raise ValueError(f"generator block_res={block_res} must be one of {resolutions}")
        self.block_index = resolutions.index(block_res) if block != "none" else None
        c = channels[self.block_index + 1] if block != "none" else None
        self.context = context_block(block, c, num_classes=num_classes, **{**GAN_HAM, **ham_kw})
        self.bn = nn.BatchNorm2d(channels[-1])
        self.to_rgb = sn_conv(channels[-1], img_channels)

    def forward(self, z, y):
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"Generator expects z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if y.shape != z.shape[:1] or y.dtype != torch.long:
            raise ValueError(f"Generator expects labels y of shape ({z.shape[0]},) and dtype long, "
                             f"got {tuple(y.shape)} {y.dtype}")
        h = self.linear(z).view(z.shape[0], self.channels[0], 4, 4)   # (B, z) -> (B, c0, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, y)                                            # (B, c_i, R, R) -> (B, c_i+1, 2R, 2R)
            if i == self.block_index:
                h = self.context(h, y) if isinstance(self.context, Hamburger) else self.context(h)
        return torch.tanh(self.to_rgb(F.relu(self.bn(h))))


# ---------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------


class DBlock(nn.Module):
    """(ReLU)-conv-ReLU-conv-(avgpool) plus a 1x1-conv shortcut: (B, cin, H, W) -> (B, cout, H/2, W/2).

    first=True is SNGAN's "optimised" first block: no ReLU on the input image and
    the shortcut pools before its conv.
    """

    def __init__(self, cin, cout, down=True, first=False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = sn_conv(cin, cout)
        self.conv2 = sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.skip(F.avg_pool2d(x, 2))
        elif self.skip is not None:
            s = self.skip(x)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class Discriminator(nn.Module):
    """D(x, y): images (B, img_channels, R, R), y (B,) -> scores (B,), projection-conditioned.

    channels: (c1, ..., cL): the output width of each down-sampling block; one more
    block at cL keeps the size. The score is linear(h) + <embed(y), h>, with h the
    sum-pooled ReLU features (Miyato and Koyama's projection discriminator).
    """

    def __init__(self, num_classes, resolution=32, channels=(128, 128, 128), img_channels=3,
                 block="ham", block_res=16, **ham_kw):
        super().__init__()
        self.num_classes, self.resolution = num_classes, resolution
        widths = (img_channels,) + tuple(channels)
        self.blocks = nn.ModuleList(DBlock(a, b, first=(i == 0)) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        self.blocks.append(DBlock(channels[-1], channels[-1], down=False))
        resolutions = [resolution // 2 ** (i + 1) for i in range(len(channels))]
        if block != "none" and block_res not in resolutions:
            raise ValueError(f"discriminator block_res={block_res} must be one of {resolutions}")
        self.block_index = resolutions.index(block_res) if block != "none" else None
        c = channels[self.block_index] if block != "none" else None
        self.context = context_block(block, c, **{**GAN_HAM, **ham_kw})
        self.linear = sn_linear(channels[-1], 1)
        embed = nn.Embedding(num_classes, channels[-1])
        nn.init.orthogonal_(embed.weight)                   # before sn: its power iteration needs the final weight
        self.embed = sn(embed)

    def forward(self, x, y):
        R = self.resolution
        if x.dim() != 4 or x.shape[-2:] != (R, R):
            raise ValueError(f"Discriminator expects images (B, C, {R}, {R}), got {tuple(x.shape)}")
        if y.shape != x.shape[:1] or y.dtype != torch.long:
            raise ValueError(f"Discriminator expects labels y of shape ({x.shape[0]},) and dtype long, "
                             f"got {tuple(y.shape)} {y.dtype}")
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.block_index:
                h = self.context(h)
        h = F.relu(h).sum(dim=(2, 3))                       # (B, cL, r, r) -> (B, cL): sum pooling
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)


# ---------------------------------------------------------------------------
# Losses and the weight average
# ---------------------------------------------------------------------------


def d_hinge_loss(real_scores, fake_scores):
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def g_hinge_loss(fake_scores):
    """-E[D(G(z))]."""
    return -fake_scores.mean()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (BN statistics,
    spectral-norm vectors) are copied. decay = 0 makes ema a copy of model."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def gate_values(model: nn.Module) -> dict:
    """The residual gates of the context blocks (Hamburger sigma, attention gamma), by module name."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, Hamburger) and m.version == "gan":
            out[name] = m.sigma.item()
        elif isinstance(m, SelfAttention2d):
            out[name] = m.gamma.item()
    return out

