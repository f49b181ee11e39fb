"""The legend tasks' pictures (notebook 06): examples, the texture task's sources, each head's predictions, and
what a trained context block reads for one pixel (`draw_pixel_panel`, the notebook's widget,
drawing `hamlib.analysis.context_influence`).

Label maps are drawn with one colour map (background dark, class k in its legend colour),
images de-normalised from the data set's scale; the learning curves and the K sweep of
notebook 06 are here too. Every draw_* returns a `matplotlib.figure.Figure`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from hamlib.seg.metrics import predict
from hamlib.seg.synthetic import COLOURS
from hamlib.analysis import context_influence


def label_style(dataset) -> dict:
    """imshow keywords for a label map: background (0) dark, class k in legend colour k."""
    n = dataset.cfg.n_colours
    return dict(cmap=ListedColormap([(0.1, 0.1, 0.1), *COLOURS[:n].tolist()]), vmin=0, vmax=n,
                interpolation="nearest")


def image_of(dataset, i):
    """Image i as (H, W, 3) in [0, 1]: LegendDataset and TextureDataset store (image - 0.5) / 0.25."""
    return (dataset.images[i] * 0.25 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()


def draw_examples(dataset, n=6):
    """Two rows: images, then labels."""
    fig = Figure(figsize=(1.7 * n, 3.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(image_of(dataset, i), interpolation="nearest")
        axes[1, i].imshow(dataset.labels[i].numpy(), **label_style(dataset))
        for ax in axes[:, i]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("image"), axes[1, 0].set_ylabel("label")
    return fig


def draw_texture_sources(names=None):
    """The texture task's pictures (`hamlib.seg.texture`), as shrunk for the task, each with the
    line between the half training patches come from (top) and validation's (bottom)."""
    from hamlib.seg import texture

    names = list(names or texture.TEXTURES)
    fig = Figure(figsize=(2.4 * len(names), 2.9), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        im = texture.source(name)
        ax.imshow(im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.axhline(len(texture.half(name, "train")) - 0.5, color="orange", lw=2)
        ax.text(2, 2, "train", color="orange", va="top", fontsize=8)
        ax.text(2, len(im) - 3, "validation", color="orange", fontsize=8)
        ax.set_title(f"{name}\n{texture.TEXTURES[name][3].split(' (')[0]}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    return fig


def draw_predictions(models: dict, dataset, indices):
    """A grid: image, ground truth, then each model's prediction (eval mode); one row per image."""
    names = list(models)
    fig = Figure(figsize=(1.6 * (2 + len(names)), 1.7 * len(indices)), layout="constrained")
    axes = fig.subplots(len(indices), 2 + len(names), squeeze=False)
    x = dataset.images[list(indices)]
    preds = {n: predict(m.eval(), x.to(next(m.parameters()).device)).argmax(1).cpu() for n, m in models.items()}
    style = label_style(dataset)
    for r, i in enumerate(indices):
        panels = [("image", image_of(dataset, i), dict(interpolation="nearest")),
                  ("truth", dataset.labels[i].numpy(), style)]
        panels += [(n, preds[n][r].numpy(), style) for n in names]
        for c, (title, im, kw) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(im, **kw)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    return fig


def draw_pixel_panel(models: dict, dataset, index, row, col):
    """The notebook's widget: image `index` with pixel (row, col) marked; the truth; each head's
    prediction; below each, what its context block reads for that pixel (`context_influence`,
    upsampled to the image, as a share of the largest entry)."""
    names = list(models)
    fig = Figure(figsize=(1.55 * (1 + len(names)), 3.5), layout="constrained")
    axes = fig.subplots(2, 1 + len(names), squeeze=False)
    x = dataset.images[index]
    style = label_style(dataset)
    H, W = x.shape[-2:]
    axes[0, 0].imshow(image_of(dataset, index), interpolation="nearest")
    axes[0, 0].set_title(f"image {index}", fontsize=9)
    axes[1, 0].imshow(dataset.labels[index].numpy(), **style)
    axes[1, 0].set_title("truth", fontsize=9)
    im = None
    for k, name in enumerate(names, start=1):
        m = models[name].eval()
        pred = predict(m, x[None]).argmax(1)[0]
        axes[0, k].imshow(pred.numpy(), **style)
        axes[0, k].set_title(name, fontsize=9)
        J = context_influence(m, x, row, col)
        if J is None:
            axes[1, k].text(0.5, 0.5, "no context", ha="center", va="center", fontsize=8, transform=axes[1, k].transAxes)
        else:
            J = F.interpolate((J / J.max().clamp(min=1e-30))[None, None].float(), (H, W), mode="nearest")[0, 0]
            axes[1, k].imshow(image_of(dataset, index).mean(-1), cmap="gray", vmin=0, vmax=1)
            im = axes[1, k].imshow(J.numpy(), cmap="magma", alpha=0.75, vmin=0, vmax=1, interpolation="nearest")
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
        ax.plot([col], [row], marker="+", color="white", markersize=9, mew=2)
    axes[1, 1].set_ylabel("what the block\nreads for +", fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="share of max")
    return fig


def pixel_controls(n_images: int, size: int) -> dict:
    """The widget's sliders (image, row, col) for `draw_pixel_panel`: a redraw takes about 2 s on
    a CPU, so each slider redraws when released (continuous_update=False), not on every step."""
    import ipywidgets as widgets

    slider = lambda value, hi, name: widgets.IntSlider(value=value, min=0, max=hi, description=name,  # noqa: E731
                                                       continuous_update=False)
    return dict(image=slider(0, n_images - 1, "image"), row=slider(min(40, size - 1), size - 1, "row"),
                col=slider(min(20, size - 1), size - 1, "col"))


def draw_k_sweep(sweep: dict, train_K=None):
    """Validation mIoU against the number of solver steps at evaluation: sweep maps (head, seed)
    -> {K: mIoU}; one colour per head, one thin line per seed, the mean thick."""
    fig = Figure(figsize=(5.2, 3.2), layout="constrained")
    ax = fig.subplots()
    heads = list(dict.fromkeys(h for h, _ in sweep))
    for c, h in enumerate(heads):
        runs = [v for (hh, _), v in sweep.items() if hh == h]
        Ks = sorted(runs[0])
        for v in runs:
            ax.plot(Ks, [v[K] for K in Ks], color=f"C{c}", lw=0.8, alpha=0.5)
        ax.plot(Ks, [sum(v[K] for v in runs) / len(runs) for K in Ks], color=f"C{c}", lw=2.2, marker="o",
                label=f"{h} (mean of {len(runs)})")
    if train_K is not None:
        ax.axvline(train_K, color="gray", ls="--", lw=1, label=f"K in training = {train_K}")
    ax.set_xlabel("solver steps K at evaluation")
    ax.set_ylabel("validation mIoU")
    ax.set_title("trained with K = 6, evaluated with other K")
    ax.legend(fontsize=8)
    return fig


def draw_learning_curves(curves: dict):
    """Validation mIoU during training: curves maps head -> {seed: [(step, mIoU), ...]}."""
    fig = Figure(figsize=(5.6, 3.2), layout="constrained")
    ax = fig.subplots()
    for c, (h, seeds) in enumerate(curves.items()):
        for k, pts in enumerate(seeds.values()):
            ax.plot(*zip(*pts), color=f"C{c}", marker="o", ms=3, lw=1.2, label=h if k == 0 else None)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation mIoU")
    ax.set_title("every seed of each head")
    ax.legend(fontsize=8)
    return fig
