"""The one-step gradient's cost and reach, drawn (notebook 05; notebook 08 reuses the measurement).

- `gradient_vs_K(...)`: gradient norm, peak memory (`hamlib.measure.peak_tensor_memory`)
  and backward time of one training step of an NMF2D against the number of steps K,
  for each gradient mode; `draw_gradient_vs_K`.
- `cost_at_K(K)`, `draw_cost_at_K(rows)`, `k_slider_view(K)`: the same three numbers for
  every mode at one K, as bars (the K slider's callback).
- `draw_jacobians(maps, row, col)`: maps of ||d y_i / d x_j|| for one query pixel i;
  `draw_neumann(norms)`: the partial sums of the implicit mode's Neumann series.
  The numbers they draw are measured by `hamlib.analysis` (`pixel_jacobian`,
  `step_jacobian_radius`, `neumann_partial_norms`, `nmf_scaling_check`).
- `draw_marker_examples`, `draw_training`: the marker task's pictures (the task, its
  network and training loop: `marker`).

Every draw_* returns a `matplotlib.figure.Figure`.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from hamlib.md import NMF2D
from hamlib.measure import peak_tensor_memory

# ---------------------------------------------------------------------------
# Which pixels can influence pixel i? The Jacobian d y_i / d x_j, as a map over j
# ---------------------------------------------------------------------------


def draw_jacobians(maps, row, col, rgb=None, size=2.4):
    """A row of pixel_jacobian maps {title: (H, W)} (log colour scale, one colour bar) with the query marked."""
    panels = ([("image", None)] if rgb is not None else []) + list(maps.items())
    fig = Figure(figsize=(size * len(panels) + 0.8, size + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    im = None
    for ax, (title, J) in zip(axes, panels):
        if J is None:
            ax.imshow(rgb)
        else:
            J = np.asarray(J, dtype=np.float64)
            peak = J.max() if J.max() > 0 else 1.0
            im = ax.imshow(np.log10(J / peak + 1e-6), cmap="magma", vmin=-6, vmax=0)
        ax.plot(col, row, "c+", ms=12, mew=2)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.8, label="log10 (||dy_i/dx_j|| / max)")
    fig.suptitle("which pixels j can change the output at pixel i (marked +) in the backward pass; "
                 "black: exactly 0 (-6 on the scale)", fontsize=10)
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
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
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

            runs = [step() for _ in range(repeats)]        # the same gradient every run: seeded bases
            memory = peak_tensor_memory(step)
            grad, ms = runs[0][0], statistics.median(t for _, t in runs)
            rows.append(dict(mode=str(mode), K=K, grad_norm=grad.norm().item(), memory_mb=memory / 2**20,
                             backward_ms=ms))
    return rows


def cost_at_K(K, modes=("one-step", "one-step-bases", 2, "implicit", "bptt"), shape=(1, 64, 16, 16), rank=8,
              seed=0, repeats=3):
    """`gradient_vs_K` at one K: a row per mode (the K slider's measurement; the default shape is
    small enough for the slider to redraw while it moves)."""
    return gradient_vs_K(Ks=(K,), modes=modes, shape=shape, rank=rank, seed=seed, repeats=repeats)


_COST_KEYS = (("memory_mb", "peak tensor memory (MB)"), ("backward_ms", "backward time (ms)"),
              ("grad_norm", "||dL/dx||"))


def draw_cost_at_K(rows, limits=None):
    """Three bar panels (memory, backward time, gradient norm), one bar per mode, for rows of one K.

    limits: {key: upper x limit} for memory_mb, backward_ms, grad_norm (e.g. the values at the
    largest K), so that bars can be compared as K moves; default: fitted to these rows."""
    Ks = {r["K"] for r in rows}
    if len(Ks) != 1:
        raise ValueError(f"draw_cost_at_K draws rows of one K, got K = {sorted(Ks)}")
    K = Ks.pop()
    modes = [r["mode"] for r in rows]
    colours = colormaps["tab10"](np.arange(len(modes)))
    fig = Figure(figsize=(10, 2.4))               # fixed margins: constrained layout would double the redraw time
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.2, top=0.86, wspace=0.08)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (key, label) in zip(axes, _COST_KEYS):
        values = [r[key] for r in rows]
        ax.barh(range(len(rows)), values, color=colours)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
        top = (limits or {}).get(key) or max(values)
        ax.set_xlim(0, 1.25 * top)
        ax.set_xlabel(label)
    axes[0].set_yticks(range(len(rows)), modes)
    axes[0].set_ylabel("grad=")
    axes[0].invert_yaxis()
    fig.suptitle(f"one training step of NMF2D at K = {K} (time measured live; memory exact)", fontsize=10)
    return fig


def k_slider_view(K, limits=None, **kw):
    """The K slider's callback: measure every mode at K (`cost_at_K`) and draw the bars."""
    return draw_cost_at_K(cost_at_K(K, **kw), limits)


def draw_neumann(norms):
    """{label: [||u_0||, ||u_1||, ...]} as lines against n, log scale."""
    fig = Figure(figsize=(5.2, 3.2), layout="constrained")
    ax = fig.subplots()
    for label, ns in norms.items():
        ax.semilogy(range(len(ns)), ns, "o-", ms=3, label=label)
    ax.set_xlabel("n (terms of the Neumann series)")
    ax.set_ylabel("||u_n||,  u_n = sum_{i<=n} (J^T)^i g")
    ax.set_title("partial sums of I + J^T + (J^T)^2 + ...", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def draw_gradient_vs_K(rows):
    """Three panels against K, one line per mode: ||dL/dx||, peak memory, backward time."""
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    keys = [("grad_norm", "||dL/dx||", "the gradient sent to the layers below"),
            ("memory_mb", "peak tensor memory (MB)", "memory of forward + backward (exact)"),
            ("backward_ms", "backward (ms)", "backward time (measured: machine-dependent)")]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        rs = [r for r in rows if r["mode"] == mode]
        for ax, (k, label, title) in zip(axes, keys):
            ax.plot([r["K"] for r in rs], [r[k] for r in rs], "o-", label=f"grad={mode}")
            ax.set_xlabel("K (solver steps)")
            ax.set_ylabel(label)
            ax.set_title(title, fontsize=10)   # K on a linear axis: a straight line is a cost linear in K
    axes[0].legend(fontsize=8)
    return fig


# ---------------------------------------------------------------------------
# The marker task (`marker`): a pixel's label is set by a marker far away
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
