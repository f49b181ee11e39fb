"""Hamburger versus attention: which pixels each one mixes, and what each costs (notebook 04).

- `image_features(name, size)`: a scikit-image photograph and a small non-negative
  feature map of it (colour and edge channels at three scales; hand-made, since no
  pre-trained network can be downloaded here).
- `similarity_attention(channels, scale)`: SelfAttention2d with identity projections,
  so its N x N map is softmax(scale * x_i . x_j / sqrt(d)): attention by feature similarity alone.
- `build_panel(name, ...)` -> `ContextPanel`: the image, its features, the attention map,
  the N x N matrix P = C (C^T C)^-1 C^T that NMF's coefficients imply and its gram C C^T
  (`hamlib.analysis.nmf_affinity`; derivation in the notebook), and two NMF2D hams.
- `query_maps` / `draw_query`: all of these maps, and the Jacobian ||d y_i / d x_j|| of
  each ham (`hamlib.analysis.pixel_jacobian`), for one query pixel (the widget's callback).
- `draw_cost(rows)`: the cost against resolution. The numbers (`cost_vs_resolution`,
  `macs_rows`, the paper's `PAPER_EFFICIENCY`) come from `efficiency`.

Every draw_* returns a `matplotlib.figure.Figure` (no pyplot state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from hamlib.attention import SelfAttention2d
from hamlib.md import NMF2D, nmf, random_bases
from hamlib.analysis import nmf_affinity, pixel_jacobian

# ---------------------------------------------------------------------------
# A real image and a feature map of it
# ---------------------------------------------------------------------------

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def image_features(name="astronaut", size=24):
    """rgb (size, size, 3) in [0, 1] and features x (1, 15, size, size) float32, each channel in [0, 1].

    Channels: CIE-Lab lightness and the four rectified halves of a and b (a+, a-, b+, b-),
    each Gaussian-smoothed at sigma 0 and 1, then |gradient of L| at sigma 0.5, 1, 2,
    and two more Lab smoothings at sigma 2 for L and chroma. Non-negative, as NMF needs.
    """
    from skimage import color, data, filters, transform

    if name not in PHOTOS:
        raise ValueError(f"photo must be one of {PHOTOS}, got {name!r}")
    if size < 4:
        raise ValueError(f"size must be >= 4, got {size}")
    img = getattr(data, name)()[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)                                   # centre square crop, then resize
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    rgb = transform.resize(img, (size, size), anti_aliasing=True)
    lab = color.rgb2lab(rgb)
    L, a, b = lab[..., 0] / 100, lab[..., 1] / 100, lab[..., 2] / 100
    colour = [L, np.maximum(a, 0), np.maximum(-a, 0), np.maximum(b, 0), np.maximum(-b, 0)]
    chans = colour + [filters.gaussian(c, sigma=1) for c in colour]
    chans += [filters.sobel(filters.gaussian(L, sigma=s_)) for s_ in (0.5, 1, 2)]
    chans += [filters.gaussian(L, sigma=2), filters.gaussian(np.hypot(a, b), sigma=2)]
    feats = np.stack(chans)                                         # (15, size, size)
    lo, hi = feats.min((1, 2), keepdims=True), feats.max((1, 2), keepdims=True)
    feats = (feats - lo) / np.maximum(hi - lo, 1e-8)
    return rgb, torch.from_numpy(feats).float().unsqueeze(0)


# ---------------------------------------------------------------------------
# The two affinities
# ---------------------------------------------------------------------------


def similarity_attention(channels, scale=4.0):
    """SelfAttention2d whose q, k, v projections are identities scaled so that the
    attention logits are scale * x_i . x_j / sqrt(d), and whose output projection is
    the identity: its attention_map is attention by feature similarity alone."""
    att = SelfAttention2d(channels)
    eye = torch.eye(channels).view(channels, channels, 1, 1)
    with torch.no_grad():
        att.qkv.weight.copy_(torch.cat([scale ** 0.5 * eye, scale ** 0.5 * eye, eye]))
        att.qkv.bias.zero_()
        att.proj.weight.copy_(eye)
        att.proj.bias.zero_()
    return att.eval()


@dataclass
class ContextPanel:
    """Everything the query-pixel widget draws, computed once for one image."""

    rgb: np.ndarray           # (H, W, 3)
    x: torch.Tensor           # (1, d, H, W) features
    attention: torch.Tensor   # (N, N), row i = where query i looks
    P: torch.Tensor           # (N, N), column i = how X_hat's pixel i mixes X's pixels
    gram: torch.Tensor        # (N, N), row-normalised C C^T
    ham_bptt: NMF2D           # for the Jacobian, grad through all K steps
    ham_one_step: NMF2D       # the paper's gradient


def build_panel(name="astronaut", size=24, rank=8, steps=6, scale=4.0, seed=0):
    rgb, x = image_features(name, size)
    d = x.shape[1]
    att = similarity_attention(d, scale)
    with torch.no_grad():
        A = att.attention_map(x)[0, 0]                                   # (N, N)
    aff = nmf_affinity(x[0].reshape(d, -1), rank, steps, seed)
    hams = [NMF2D(d, rank=rank, steps=steps, grad=g, eval_seed=seed).eval() for g in ("bptt", "one-step")]
    return ContextPanel(rgb, x, A, aff["P"], aff["gram"], *hams)


# what each map of `query_maps` shows, as `draw_query` titles it
TITLES = {"attention": "self-attention: $A_{i,:}$\n(where pixel $i$ looks)",
          "P": "NMF affinity: $P_{:,i}$\n$= C(C^\\top C)^{-1}c_i$",
          "gram": "NMF gram: $(CC^\\top)_{i,:}$\n(rows normalised)",
          "bptt": "Jacobian $\\|\\partial y_i/\\partial x_j\\|$\nBPTT (all $K$ steps)",
          "one-step": "Jacobian $\\|\\partial y_i/\\partial x_j\\|$\none-step gradient"}


def query_maps(panel, row, col, jacobian=True):
    """{name: (H, W) map} for the query pixel i = (row, col); names as in `TITLES`:
    "attention" (row i of A), "P" (column i of P), "gram" (row i of the normalised gram)
    and, with jacobian=True, "bptt" and "one-step": ||d y_i / d x_j|| of the ham."""
    H, W = panel.rgb.shape[:2]
    if not (0 <= row < H and 0 <= col < W):
        raise ValueError(f"query pixel ({row}, {col}) lies outside the {H} x {W} image")
    i = row * W + col
    maps = {"attention": panel.attention[i].reshape(H, W).numpy(),
            "P": panel.P[:, i].reshape(H, W).numpy(),
            "gram": panel.gram[i].reshape(H, W).numpy()}
    if jacobian:
        maps["bptt"] = pixel_jacobian(panel.ham_bptt, panel.x, row, col).numpy()
        maps["one-step"] = pixel_jacobian(panel.ham_one_step, panel.x, row, col).numpy()
    return maps


def draw_query(panel, row, col, jacobian=True, size=3.0):
    """The widget callback: the photo with the query pixel, then each map of `query_maps`,
    each with its colour bar, three panels a row.

    Signed maps (P) use a diverging scale centred on 0. The two Jacobian maps share one
    scale, the largest entry off the query pixel, so that one-step's map reads against
    BPTT's; the query pixel's own entry (far larger) is left blank, and the one-step
    title states its largest off-query entry (exactly 0: the bases are constants for autograd).
    """
    maps = query_maps(panel, row, col, jacobian)
    off = {}
    for k in ("bptt", "one-step"):
        if k in maps:
            m = maps[k].astype(float).copy()
            m[row, col] = np.nan                       # the query's own block dwarfs the rest
            maps[k], off[k] = m, float(np.nanmax(m))
    jac_lim = max(off.values(), default=0.0) or 1.0
    n = len(maps) + 1
    ncols = 3
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size * ncols + 0.6, (size + 0.2) * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    axes[0].imshow(panel.rgb)
    axes[0].set_title(f"photo, query pixel $i$ = ({row}, {col})", fontsize=10)
    for ax, (key, m) in zip(axes[1:], maps.items()):
        title = TITLES[key]
        if key in off:
            lim, cmap, lo = jac_lim, "viridis", 0.0
            if key == "one-step":
                title += (": exactly 0 off $i$" if off[key] == 0 else f": max off $i$ {off[key]:.1e}")
        else:
            lim = float(np.abs(m).max()) or 1.0
            signed = m.min() < 0
            cmap, lo = ("RdBu_r", -lim) if signed else ("viridis", 0.0)
        im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=lim)
        fmt = ScalarFormatter(useMathText=True)
        fmt.set_powerlimits((-2, 3))                   # small values as ticks x 10^-k
        cb = fig.colorbar(im, ax=ax, shrink=0.85, format=fmt)
        cb.ax.tick_params(labelsize=8)
        cb.ax.yaxis.get_offset_text().set_fontsize(8)
        ax.set_title(title, fontsize=10)
    for ax in axes[:n]:
        ax.plot(col, row, "r+", ms=12, mew=2)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.axis("off")
    if jacobian:
        fig.text(0.99, 0.0, "Jacobians: one shared colour scale; the query pixel's own (larger) entry left blank",
                 ha="right", va="bottom", fontsize=8)
    return fig


# ---------------------------------------------------------------------------
# Cost
# ---------------------------------------------------------------------------


def draw_cost(rows):
    """GMACs, inference time and inference/training memory against N, one line per case (log-log)."""
    keys = [("gmacs", "GMACs (analytic)"), ("infer_ms", "inference (ms)"), ("train_ms", "training step (ms)"),
            ("train_mb", "training peak memory (MB)")]
    keys = [(k, lab) for k, lab in keys if all(r.get(k) is not None for r in rows)]
    fig = Figure(figsize=(3.3 * len(keys), 3.3), layout="constrained")
    axes = fig.subplots(1, len(keys))
    for name in dict.fromkeys(r["name"] for r in rows):
        rs = [r for r in rows if r["name"] == name]
        for ax, (k, label) in zip(np.atleast_1d(axes), keys):
            ax.plot([r["N"] for r in rs], [r[k] for r in rs], "o-", label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(sorted({r["N"] for r in rows}), [str(n) for n in sorted({r["N"] for r in rows})])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("N = H W")
            ax.set_title(label, fontsize=9)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return fig
