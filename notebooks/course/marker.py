"""The marker task: every pixel's label is the class of one small marker somewhere else (notebook 05).

- `marker_batch(n)`: images whose only information about the label is a marker at a random
  place, so a pixel far from it needs global context.
- `MarkerNet`: two 3x3 convs (receptive field 5 x 5), a context block (none, attention, or a
  v2 NMF Hamburger with a given gradient mode), a 1x1 classifier.
- `train_marker(MarkerConfig(...))`: Adam on fresh batches, test pixel accuracy over
  training (small enough to train several models per notebook run on a CPU).
  `marker_accuracy` scores a model on a fixed test set.

The pictures are `gradients.draw_marker_examples` and `gradients.draw_training`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hamlib.context import CONTEXTS, context_block
from hamlib.runtime import pick_device


def marker_batch(n, size=16, classes=4, marker=2, generator=None):
    """n images (n, 1 + classes, size, size) and labels (n, size, size).

    Channel 0 is uniform noise everywhere; a marker x marker square at a random
    place is set to 1 in channel 1 + k, where k is the image's class; every pixel
    is labelled k. A pixel far from the marker cannot know k from its neighbourhood.
    """
    if size < marker or classes < 2:
        raise ValueError(f"need size >= marker and classes >= 2, got size={size}, marker={marker}, classes={classes}")
    x = torch.zeros(n, 1 + classes, size, size)
    x[:, 0] = torch.rand(n, size, size, generator=generator)
    k = torch.randint(classes, (n,), generator=generator)
    top = torch.randint(size - marker + 1, (n, 1, 1), generator=generator)
    left = torch.randint(size - marker + 1, (n, 1, 1), generator=generator)
    i = torch.arange(size)
    inside = ((i.view(1, -1, 1) - top) >= 0) & ((i.view(1, -1, 1) - top) < marker) \
        & ((i.view(1, 1, -1) - left) >= 0) & ((i.view(1, 1, -1) - left) < marker)   # (n, size, size)
    x[:, 1:] = F.one_hot(k, classes).float().view(n, classes, 1, 1) * inside.unsqueeze(1)
    return x, k.view(n, 1, 1).expand(n, size, size).clone()


# context blocks by name, or a ham by its gradient mode
MARKER_CONTEXTS = tuple(c for c in CONTEXTS if c != "ham") + ("one-step", "one-step-bases", "bptt")


class MarkerNet(nn.Module):
    """Two 3x3 ConvBNReLU (receptive field 5 x 5), a context block, a 1x1 classifier.

    context: a context block's name ("none", "pool", "attention", "attention-plain"), or a gradient mode
    ("one-step", "one-step-bases", "bptt" or an int k) for a v2 Hamburger of solver `ham`
    (NMF by default; inv_t=None is the solver's default temperature, init=None the block's default
    initialisation); "plain" is the plain v1 NMF block with the same rank and steps.
    """

    def __init__(self, context="bptt", classes=4, width=16, rank=4, steps=6, ham="nmf", inv_t=None, init=None):
        super().__init__()
        if context not in MARKER_CONTEXTS and not isinstance(context, int):
            raise ValueError(f"context must be one of {MARKER_CONTEXTS} or an int, got {context!r}")
        self.local = nn.Sequential(
            nn.Conv2d(1 + classes, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        kind = context if context in CONTEXTS else "ham"
        ham_kw = dict(ham=ham, version="v2", rank=rank, steps=steps, grad=context, inv_t=inv_t) if kind == "ham" else {}
        if kind == "ham" and init is not None:
            ham_kw["init"] = init
        if kind == "plain":
            ham_kw = dict(rank=rank, steps=steps)
        self.context = context_block(kind, width, **ham_kw)
        self.classify = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        return self.classify(self.context(self.local(x)))  # (B, 1 + classes, H, W) -> (B, classes, H, W)


@dataclass
class MarkerConfig:
    context: str | int = "bptt"
    size: int = 16
    classes: int = 4
    width: int = 16
    rank: int = 4
    steps: int = 6          # K of the Hamburger
    ham: str = "nmf"        # its solver
    inv_t: float | None = None  # VQ/CD temperature (None: the solver's default)
    init: str | None = None     # the Hamburger's initialisation (None: the block's default)
    iters: int = 150        # training iterations
    batch: int = 32
    lr: float = 3e-3
    eval_every: int = 25
    test_images: int = 512
    seed: int = 0
    device: str | None = None  # default: hamlib.pick_device() (CUDA if present)


def train_marker(cfg: MarkerConfig):
    """Adam on fresh marker batches; pixel accuracy on a fixed test set (seed 1000).

    Batches are drawn on the CPU from the global RNG (seeded with cfg.seed), so every
    device trains on the same images.

    Returns dict(context, iters (list), accuracy (list, one per evaluation),
    final_accuracy, seconds, model (eval mode)).
    """
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    x_test, y_test = marker_batch(cfg.test_images, cfg.size, cfg.classes,
                                  generator=torch.Generator().manual_seed(1000))
    x_test, y_test = x_test.to(device), y_test.to(device)
    model = MarkerNet(cfg.context, cfg.classes, cfg.width, cfg.rank, cfg.steps, cfg.ham, cfg.inv_t, cfg.init).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    its, accs = [], []
    t0 = time.perf_counter()
    for it in range(1, cfg.iters + 1):
        x, y = (t.to(device) for t in marker_batch(cfg.batch, cfg.size, cfg.classes))  # drawn on the CPU
        loss = F.cross_entropy(model(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{cfg.ham} {cfg.context}: loss {loss.item()} at iteration {it}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % cfg.eval_every == 0 or it == cfg.iters:
            its.append(it)
            accs.append(marker_accuracy(model, x_test, y_test))
            model.train()
    return dict(context=str(cfg.context), iters=its, accuracy=accs, final_accuracy=accs[-1],
                seconds=time.perf_counter() - t0, model=model.eval())


@torch.no_grad()
def marker_accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()
