"""The one-step gradient, measured (notebook 05).

- `peak_tensor_memory(fn)` (from `hamlib.bench`): peak bytes of tensor storage allocated
  while fn() runs, counted op by op, so the number is the same on every run and every device.
- `pixel_jacobian(module, x, row, col)`: ||d y_i / d x_j||_F for one query pixel i
  and every pixel j: which pixels the backward pass lets influence pixel i.
- `gradient_vs_K(...)`: gradient norm, peak memory and backward time of one training
  step of an NMF2D against the number of steps K, for each gradient mode.
- `step_jacobian_radius(kind, X)`: the spectral radius of one solver step's Jacobian, the
  number that decides whether the implicit mode's Neumann series stays bounded.
- The marker task: `marker_batch` images where every pixel's label is the class of
  one small marker somewhere else; `MarkerNet` (two 3x3 convs, a context block, a
  1x1 classifier); `train_marker(MarkerConfig(...))` trains it in seconds on a CPU.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..attention import SelfAttention2d
from ..bench import peak_tensor_memory  # noqa: F401  (re-exported for the notebook)
from ..ham import Hamburger
from ..md import NMF2D
from ..train import pick_device

# ---------------------------------------------------------------------------
# Which pixels can influence pixel i? The Jacobian d y_i / d x_j, as a map over j
# ---------------------------------------------------------------------------


def pixel_jacobian(module, x, row, col):
    """||d y_i / d x_j||_F for the query pixel i = (row, col) and every pixel j.

    module maps (1, C, H, W) -> (1, C', H, W); the Jacobian block between two pixels
    is C' x C, so C' backward passes give the whole map. Returns (H, W) float64.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"pixel_jacobian expects one image (1, C, H, W), got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    if not (0 <= row < H and 0 <= col < W):
        raise ValueError(f"query pixel ({row}, {col}) lies outside the {H} x {W} map")
    x = x.detach().double().requires_grad_(True)
    module = copy.deepcopy(module).double()         # float64: tiny entries stay distinguishable from 0
    y_i = module(x)[0, :, row, col]                 # (C',)
    sq = torch.zeros(H, W, dtype=torch.float64)
    for o in range(y_i.shape[0]):
        (g,) = torch.autograd.grad(y_i[o], x, retain_graph=o + 1 < y_i.shape[0])  # (1, C, H, W)
        sq += g[0].pow(2).sum(0)
    return sq.sqrt()


def cross_pixel_max(J, row, col):
    """The largest entry of a pixel_jacobian map away from the query pixel itself."""
    J = J.clone()
    J[row, col] = 0
    return J.max().item()


def draw_jacobians(maps, row, col, rgb=None, size=2.8):
    """A row of pixel_jacobian maps {title: (H, W)} (log colour scale) with the query marked."""
    panels = ([("image", None)] if rgb is not None else []) + list(maps.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size))
    for ax, (title, J) in zip(np.atleast_1d(axes), panels):
        if J is None:
            ax.imshow(rgb)
        else:
            J = np.asarray(J, dtype=np.float64)
            peak = J.max() if J.max() > 0 else 1.0
            ax.imshow(np.log10(J / peak + 1e-6), cmap="magma", vmin=-6, vmax=0)
        ax.plot(col, row, "c+", ms=12, mew=2)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("log10 ||dy_i/dx_j|| / max  (query pixel i marked +; black = exactly 0)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Gradient norm, memory and time of a training step against K
# ---------------------------------------------------------------------------


def gradient_vs_K(Ks=(1, 2, 4, 8, 16), modes=("one-step", "bptt"), shape=(2, 64, 32, 32), rank=8,
                  seed=0, repeats=5):
    """One training step of NMF2D(grad=mode, steps=K) for every K and mode.

    The loss is <w, y> with a fixed random w, so dL/dx is the vector-Jacobian product
    the layers below would receive. Rows: mode, K, grad_norm (||dL/dx||), memory_mb
    (peak_tensor_memory of forward + backward), backward_ms (median of `repeats`).
    Bases are drawn from a generator seeded with `seed` (the same for every mode and K).
    """
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=g)
    w = torch.randn(shape, generator=g)
    rows = []
    for mode in modes:
        for K in Ks:
            m = NMF2D(shape[1], rank=rank, steps=K, grad=mode).train()

            def step():
                torch.manual_seed(seed)  # the training-mode bases come from the global RNG
                x = x0.clone().requires_grad_(True)
                loss = (m(x) * w).sum()
                t0 = time.perf_counter()
                loss.backward()
                return x.grad, 1e3 * (time.perf_counter() - t0)

            grad, _ = step()
            memory = peak_tensor_memory(step)
            ms = statistics.median(step()[1] for _ in range(repeats))
            rows.append(dict(mode=str(mode), K=K, grad_norm=grad.norm().item(), memory_mb=memory / 2**20,
                             backward_ms=ms))
    return rows


def step_jacobian_radius(kind, X, rank=8, steps=5, iters=60, seed=0, **solver_kw):
    """Spectral radius of one solver step's Jacobian J = dT/ds at the state s after `steps`
    steps, by power iteration on J^T (vector-Jacobian products, float64).

    X is one matrix (d, N). The implicit mode sums K terms of (J^T)^i g: a radius above 1
    makes that sum grow like radius^K. Returns the geometric-mean growth per application
    over the second half of the iterations (robust to a complex dominant pair)."""
    from ..md import make_solver, random_bases
    if X.dim() != 2:
        raise ValueError(f"step_jacobian_radius expects one matrix X (d, N), got shape {tuple(X.shape)}")
    X = X.detach().double()[None]                            # (d, N) -> (1, d, N)
    solver = make_solver(kind, X, **solver_kw)
    g = torch.Generator().manual_seed(seed)
    D = random_bases(kind, (1, X.shape[1], rank), generator=g, dtype=torch.float64)
    with torch.no_grad():
        Ct = solver.init(D)
        for _ in range(steps):
            D, Ct = solver.step(D, Ct)
        Ct = solver.coef(D, None) if Ct is None else Ct      # VQ / CD's step does not read C
    s = (D.clone().requires_grad_(True), Ct.clone().requires_grad_(True))
    out = solver.step(*s)
    v = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in out]
    logs = []
    for _ in range(iters):
        n = torch.sqrt(sum(t.square().sum() for t in v))
        logs.append(n.log().item())
        v = [t / n for t in v]
        Jv = torch.autograd.grad(out, s, v, retain_graph=True, allow_unused=True)
        v = [torch.zeros_like(a) if b is None else b for a, b in zip(s, Jv)]
    return float(np.exp(np.mean(logs[iters // 2:])))


def draw_gradient_vs_K(rows):
    """Three panels against K, one line per mode: ||dL/dx||, peak memory, backward time."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    keys = [("grad_norm", "||dL/dx||"), ("memory_mb", "peak tensor memory (MB)"), ("backward_ms", "backward (ms)")]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        rs = [r for r in rows if r["mode"] == mode]
        for ax, (k, label) in zip(axes, keys):
            ax.plot([r["K"] for r in rs], [r[k] for r in rs], "o-", label=f"grad={mode}")
            ax.set_xlabel("K (solver steps)")
            ax.set_ylabel(label)
            ax.set_xscale("log", base=2)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# The marker task: a pixel's label is set by a marker far away
# ---------------------------------------------------------------------------


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


def draw_marker_examples(x, y, n=4, size=2.2):
    """The first n images of a marker batch: noise in grey, the marker in its class colour."""
    classes = x.shape[1] - 1
    colours = plt.get_cmap("tab10")(np.arange(classes))[:, :3]                  # (classes, 3)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size + 0.2))
    for b, ax in enumerate(np.atleast_1d(axes)):
        img = 0.6 * x[b, 0].numpy()[..., None].repeat(3, -1)                     # (H, W, 3) grey noise
        marker = x[b, 1:].sum(0).numpy() > 0
        img[marker] = colours[x[b, 1:, marker].argmax(0).numpy()]
        ax.imshow(img)
        ax.set_title(f"label of every pixel: {y[b, 0, 0].item()}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


CONTEXTS = ("none", "attention", "one-step", "one-step-bases", "bptt")


class MarkerNet(nn.Module):
    """Two 3x3 ConvBNReLU (receptive field 5 x 5), a context block, a 1x1 classifier.

    context: "none" (identity), "attention" (SelfAttention2d), or an NMF gradient
    mode ("one-step", "one-step-bases", "bptt" or an int k) for a v2 NMF Hamburger.
    """

    def __init__(self, context="bptt", classes=4, width=16, rank=4, steps=6):
        super().__init__()
        if context not in CONTEXTS and not isinstance(context, int):
            raise ValueError(f"context must be one of {CONTEXTS} or an int, got {context!r}")
        self.local = nn.Sequential(
            nn.Conv2d(1 + classes, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        if context == "none":
            self.context = nn.Identity()
        elif context == "attention":
            self.context = SelfAttention2d(width)
        else:
            self.context = Hamburger(width, ham="nmf", version="v2", rank=rank, steps=steps, grad=context)
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
    model = MarkerNet(cfg.context, cfg.classes, cfg.width, cfg.rank, cfg.steps).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    its, accs = [], []
    t0 = time.perf_counter()
    for it in range(1, cfg.iters + 1):
        x, y = (t.to(device) for t in marker_batch(cfg.batch, cfg.size, cfg.classes))  # drawn on the CPU
        loss = F.cross_entropy(model(x), y)
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


def draw_training(results, chance=None):
    """Test pixel accuracy against iterations, one line per trained model."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for r in results:
        ax.plot(r["iters"], r["accuracy"], "o-", label=r["context"])
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", label="chance")
    ax.set_xlabel("training iteration")
    ax.set_ylabel("test pixel accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
