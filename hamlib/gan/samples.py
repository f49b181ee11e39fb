"""Looking at a generator: per-class sample grids, latent interpolations, metric curves, the widget.

The tensor functions (`class_grid`, `interpolate`, `latent_walk`) are deterministic given a
seed and return images in [-1, 1]; the `plot_*` and `draw_*` functions return matplotlib figures.
`draw_class_latent` is a widget callback: a class and a position on a latent path.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def class_grid(G, num_classes, per_class=8, seed=0):
    """(num_classes, per_class, C, R, R): row k holds samples of class k, column j shares noise z_j."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(per_class, G.z_dim, generator=g).repeat(num_classes, 1)   # (K * n, z)
    y = torch.arange(num_classes).repeat_interleave(per_class)               # (K * n,)
    dev = next(G.parameters()).device
    x = G(z.to(dev), y.to(dev)).cpu()
    return x.view(num_classes, per_class, *x.shape[1:])


@torch.no_grad()
def interpolate(G, y, steps=8, seed=0):
    """Images along the straight line z_0 -> z_1 in latent space, for each label in y:
    (len(y), steps, C, R, R)."""
    g = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(2, G.z_dim, generator=g)
    t = torch.linspace(0, 1, steps)[:, None]
    z = ((1 - t) * z0 + t * z1).repeat(len(y), 1)                            # (len(y) * steps, z)
    labels = torch.as_tensor(y).repeat_interleave(steps)
    dev = next(G.parameters()).device
    x = G(z.to(dev), labels.to(dev)).cpu()
    return x.view(len(y), steps, *x.shape[1:])


def _tile(images):
    # (rows, cols, C, R, R) in [-1, 1] -> (rows * R, cols * R[, C]) in [0, 1]
    rows, cols, C, R, _ = images.shape
    t = images.permute(0, 3, 1, 4, 2).reshape(rows * R, cols * R, C)
    t = (t.clamp(-1, 1) + 1) / 2
    return t[..., 0] if C == 1 else t


def plot_grid(images, title="", ylabels=None, ax=None):
    """Show (rows, cols, C, R, R) images as one picture; returns the figure."""
    import matplotlib.pyplot as plt

    rows, cols = images.shape[:2]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * cols + 0.6, 0.5 * rows + 0.4))
    ax.imshow(_tile(images).numpy(), cmap="gray", vmin=0, vmax=1)
    R = images.shape[-1]
    ax.set_xticks([])
    ax.set_yticks([R * (i + 0.5) for i in range(rows)] if ylabels is not None else [])
    if ylabels is not None:
        ax.set_yticklabels(ylabels)
    ax.set_title(title)
    return ax.figure


def plot_metrics(histories: dict):
    """FID and IS against training step, one line per run: histories = {name: [{"step", "fid", "is"}, ...]}."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, rows in histories.items():
        steps = [r["step"] for r in rows]
        axes[0].plot(steps, [r["fid"] for r in rows], "o-", label=name)
        axes[1].plot(steps, [r["is"] for r in rows], "o-", label=name)
    axes[0].set(xlabel="step", ylabel="FID (classifier features)", yscale="log", title="FID, lower is better")
    axes[1].set(xlabel="step", ylabel="IS", title="Inception Score, higher is better")
    axes[0].legend()
    fig.tight_layout()
    return fig


@torch.no_grad()
def latent_walk(G, label, t, n=8, seed=0):
    """n samples of class `label` at position t in [0, 1] on n straight latent paths
    z_j(t) = (1 - t) a_j + t b_j, with a_j, b_j drawn from `seed`: (n, C, R, R).
    t = 0 gives G(a_j, label), t = 1 gives G(b_j, label); the same seed gives the same paths."""
    if not 0.0 <= float(t) <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    if not 0 <= int(label) < G.num_classes:
        raise ValueError(f"label must be in [0, {G.num_classes}), got {label}")
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, n, G.z_dim, generator=g)
    z = (1 - float(t)) * a + float(t) * b
    dev = next(G.parameters()).device
    return G(z.to(dev), torch.full((n,), int(label), dtype=torch.long, device=dev)).cpu()


def draw_class_latent(generators: dict, label: int, t: float, n=8, seed=0):
    """The widget's picture: for each named generator one row of `latent_walk(G, label, t, n, seed)`
    (the same paths for every generator, so rows differ only by the network). Returns a
    matplotlib Figure not registered with pyplot (a widget displays it once, no figure piles up)."""
    from matplotlib.figure import Figure

    names = list(generators)
    rows = torch.stack([latent_walk(generators[k], label, t, n, seed) for k in names])   # (G, n, C, R, R)
    fig = Figure(figsize=(0.6 * n + 1.6, 0.6 * len(names) + 0.6), layout="constrained")
    plot_grid(rows, f"class {int(label)}, latent position t = {float(t):.2f}", ylabels=names, ax=fig.subplots())
    return fig
