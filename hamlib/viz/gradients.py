"""The one-step gradient, measured and drawn (notebook 05).

- `pixel_jacobian(module, x, row, col)`: ||d y_i / d x_j||_F for one query pixel i
  and every pixel j: which pixels the backward pass lets influence pixel i.
- `gradient_vs_K(...)`: gradient norm, peak memory (`hamlib.measure.peak_tensor_memory`)
  and backward time of one training step of an NMF2D against the number of steps K,
  for each gradient mode.
- `step_jacobian_radius(kind, X)`: the spectral radius of one solver step's Jacobian, the
  number that decides whether the implicit mode's Neumann series stays bounded.
- `draw_jacobians`, `draw_gradient_vs_K`, and the marker task's pictures
  `draw_marker_examples`, `draw_training` (the task itself, its network and training
  loop: `hamlib.experiments.marker`). Every draw_* returns a `matplotlib.figure.Figure`.
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..md import NMF2D
from ..measure import peak_tensor_memory

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
    fig = Figure(figsize=(size * len(panels), size), layout="constrained")
    axes = fig.subplots(1, len(panels))
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
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    keys = [("grad_norm", "||dL/dx||"), ("memory_mb", "peak tensor memory (MB)"), ("backward_ms", "backward (ms)")]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        rs = [r for r in rows if r["mode"] == mode]
        for ax, (k, label) in zip(axes, keys):
            ax.plot([r["K"] for r in rs], [r[k] for r in rs], "o-", label=f"grad={mode}")
            ax.set_xlabel("K (solver steps)")
            ax.set_ylabel(label)
            ax.set_xscale("log", base=2)
    axes[0].legend(fontsize=8)
    return fig


# ---------------------------------------------------------------------------
# The marker task (hamlib.experiments.marker): a pixel's label is set by a marker far away
# ---------------------------------------------------------------------------


def draw_marker_examples(x, y, n=4, size=2.2):
    """The first n images of a marker batch: noise in grey, the marker in its class colour."""
    classes = x.shape[1] - 1
    colours = colormaps["tab10"](np.arange(classes))[:, :3]                     # (classes, 3)
    fig = Figure(figsize=(size * n, size + 0.2), layout="constrained")
    axes = fig.subplots(1, n)
    for b, ax in enumerate(np.atleast_1d(axes)):
        img = 0.6 * x[b, 0].numpy()[..., None].repeat(3, -1)                     # (H, W, 3) grey noise
        marker = x[b, 1:].sum(0).numpy() > 0
        img[marker] = colours[x[b, 1:, marker].argmax(0).numpy()]
        ax.imshow(img)
        ax.set_title(f"label of every pixel: {y[b, 0, 0].item()}", fontsize=8)
        ax.axis("off")
    return fig


def draw_training(results, chance=None):
    """Test pixel accuracy against iterations, one line per trained model."""
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for r in results:
        ax.plot(r["iters"], r["accuracy"], "o-", label=r["context"])
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", label="chance")
    ax.set_xlabel("training iteration")
    ax.set_ylabel("test pixel accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return fig
