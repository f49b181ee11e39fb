"""Helpers of notebook 10 (porting pitfalls): a tiny segmentation head around any ham, repeated
predictions of one image, their disagreement, its picture and widget, and state-dict prefixes.

The buggy ports themselves are written in the notebook (they are the exercises' subject); this
module holds only what is the same for every ham:

- `TinyHead(ham, d, classes)`: conv 3x3 -> ReLU -> ham -> conv 1x1, seeded weights, in eval mode;
  `toy_image`: a seeded smooth RGB image.
- `runs_of(head, image, runs)`: the class maps of `runs` forwards of the same image and the logits'
  spread across them; `disagreement(preds)`: per pixel, the fraction of runs that differ from the first.
- `draw_runs(rows)`: the picture (class maps of a few runs per ham, then the logits' spread);
  `runs_widget(heads, image)`: a ham dropdown and a runs slider redrawing it (callback `draw_choice`).
- `strip_prefix(state, prefix)`, `key_report(model, state)`: what a checkpoint's keys match.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from matplotlib.figure import Figure


class TinyHead(nn.Module):
    """image (B, 3, H, W) -> logits (B, classes, H, W): conv 3x3 (3 -> d) + ReLU, ham (d -> d), conv 1x1.

    The convolutions are drawn from a generator seeded with `seed`, so two heads built with the same
    seed differ only in their ham. Returned in eval mode."""

    def __init__(self, ham: nn.Module, d: int = 16, classes: int = 4, seed: int = 0):
        super().__init__()
        if d < 1 or classes < 2:
            raise ValueError(f"need d >= 1 and classes >= 2, got d={d}, classes={classes}")
        g = torch.Generator().manual_seed(seed)
        self.lower = nn.Conv2d(3, d, 3, padding=1)
        self.ham = ham
        self.classify = nn.Conv2d(d, classes, 1)
        with torch.no_grad():
            for conv in (self.lower, self.classify):
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / math.sqrt(fan_in))
                conv.bias.zero_()
        self.eval()

    def forward(self, image):
        z = torch.relu(self.lower(image))      # (B, d, H, W) >= 0: NMF's input
        return self.classify(self.ham(z))      # (B, classes, H, W)


def toy_image(size: int = 24, seed: int = 0) -> torch.Tensor:
    """A smooth RGB image (1, 3, size, size) in [0, 1]: four coloured Gaussian blobs on a ramp."""
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = 0.3 * torch.stack([xs, ys, 1 - xs])                         # (3, H, W)
    for _ in range(4):
        cy, cx = torch.rand(2, generator=g)
        colour = torch.rand(3, 1, 1, generator=g)
        img = img + colour * torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 0.02)
    return (img / img.max())[None]


@torch.no_grad()
def runs_of(head: nn.Module, image: torch.Tensor, runs: int) -> dict:
    """`runs` forwards of the same image (1, 3, H, W): {"preds": class maps (runs, H, W) int64,
    "spread": (H, W), per pixel the largest range (max - min over the runs) of any class's logit}."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image (1, 3, H, W), got shape {tuple(image.shape)}")
    logits = torch.stack([head(image)[0] for _ in range(runs)])       # (runs, classes, H, W)
    spread = (logits.amax(0) - logits.amin(0)).amax(0)                 # (H, W)
    return {"preds": logits.argmax(1), "spread": spread}


def disagreement(preds: torch.Tensor) -> torch.Tensor:
    """preds (runs, H, W) -> (H, W) float: the fraction of runs whose class differs from run 0's."""
    if preds.dim() != 3 or preds.shape[0] < 1:
        raise ValueError(f"expected predictions (runs, H, W), got shape {tuple(preds.shape)}")
    return (preds != preds[:1]).double().mean(0)


def draw_runs(rows: dict, show: int = 3, size: float = 1.6) -> Figure:
    """rows {label: `runs_of` result}: per row the first `show` runs' class maps, then the map of
    the logits' spread across the runs (titled with its maximum and the share of pixels whose class flips)."""
    if not rows:
        raise ValueError("nothing to draw: rows is empty")
    show = min(show, min(r["preds"].shape[0] for r in rows.values()))
    vmax = max(float(r["spread"].max()) for r in rows.values()) or 1.0
    fig = Figure(figsize=(size * (show + 1) + 1.0, size * len(rows) + 0.5))
    axes = fig.subplots(len(rows), show + 1, squeeze=False)
    for i, (label, r) in enumerate(rows.items()):
        for j in range(show):
            axes[i, j].imshow(r["preds"][j].numpy(), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
            axes[i, j].set_title(f"run {j + 1}", fontsize=8)
        im = axes[i, show].imshow(r["spread"].numpy(), cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        flips = (disagreement(r["preds"]) > 0).double().mean().item()
        axes[i, show].set_title(f"logit range <= {float(r['spread'].max()):.2g}; flips {flips:.1%}", fontsize=8)
        axes[i, 0].set_ylabel(label, fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes[:, show], shrink=0.8, label="logit range across runs")
    return fig


def draw_choice(heads: dict, image: torch.Tensor, ham: str, runs: int) -> Figure:
    """The widget's callback: `runs` forwards of `image` by heads[ham], drawn by `draw_runs`."""
    if ham not in heads:
        raise ValueError(f"unknown ham {ham!r}: expected one of {sorted(heads)}")
    return draw_runs({ham: runs_of(heads[ham], image, runs)})


def runs_widget(heads: dict, image: torch.Tensor, runs: int = 8):
    """A ham dropdown and a runs slider redrawing `draw_choice` (ipywidgets box)."""
    import ipywidgets as widgets

    from .lowrank import figure_widget

    controls = {"ham": widgets.Dropdown(options=list(heads), value=next(iter(heads)), description="ham"),
                "runs": widgets.IntSlider(value=runs, min=2, max=16, description="runs")}
    return figure_widget(lambda ham, runs: draw_choice(heads, image, ham, runs), controls, "pitfalls-runs")


def strip_prefix(state: dict, prefix: str) -> dict:
    """The state dict with `prefix` removed from every key that starts with it (others unchanged).
    A prefix that no key carries is an error: stripping it would silently do nothing."""
    if not prefix:
        raise ValueError("empty prefix")
    if not any(k.startswith(prefix) for k in state):
        raise ValueError(f"no key starts with {prefix!r} (first keys: {list(state)[:3]})")
    return {k.removeprefix(prefix): v for k, v in state.items()}


def key_report(model: nn.Module, state: dict) -> dict:
    """Which of the model's state-dict keys `state` would fill: {"matched", "missing", "unexpected"},
    each a sorted list of keys, plus "shape_mismatch" (keys on both sides with different shapes)."""
    own = model.state_dict()
    both = own.keys() & state.keys()
    return {"matched": sorted(k for k in both if own[k].shape == state[k].shape),
            "missing": sorted(own.keys() - state.keys()),
            "unexpected": sorted(state.keys() - own.keys()),
            "shape_mismatch": sorted(k for k in both if own[k].shape != state[k].shape)}
