"""The colour-by-legend task's pictures (notebook 06): examples, and each head's predictions.

Both draw a label map with one colour map (background dark, class k in its legend colour)
and show images de-normalised from the data set's scale. They return
`matplotlib.figure.Figure`s.
"""

from __future__ import annotations

from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ..seg.metrics import predict
from ..seg.synthetic import COLOURS


def label_style(dataset) -> dict:
    """imshow keywords for a label map: background (0) dark, class k in legend colour k."""
    n = dataset.cfg.n_colours
    return dict(cmap=ListedColormap([(0.1, 0.1, 0.1), *COLOURS[:n].tolist()]), vmin=0, vmax=n,
                interpolation="nearest")


def image_of(dataset, i):
    """Image i as (H, W, 3) in [0, 1]: LegendDataset stores (image - 0.5) / 0.25."""
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
