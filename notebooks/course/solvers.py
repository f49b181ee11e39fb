"""NMF, VQ and CD on real data: the computations and pictures of notebooks 02 and 03.

- `load_faces`, `nmf_trace`, `pca_bases`, `draw_bases`, `draw_nmf_faces`:
  NMF of scikit-image's 200 LFW faces, its objective per iteration, PCA beside it.
- `load_colour_photo`, `pixel_matrix`, `quantise_colours`, `hardness`,
  `draw_quantised`: soft k-means (hamlib.vq) as colour quantisation.
- `solver_errors`, `draw_solver_comparison`: NMF, VQ and CD against rank and
  against iterations on the same matrix, with the SVD's optimum as the floor.

Every solver call goes through hamlib's public functions (`nmf`, `vq`, `cd`,
`random_bases`); matrices are float64 and batched as the solvers want them:
X (1, d, N), D (1, d, r), C (1, N, r).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from hamlib import md
from hamlib.solvers import nmf_init_coef

SOLVER_FUNCTIONS = {"nmf": md.nmf, "vq": md.vq, "cd": md.cd}

# ----------------------------------------------------------------------------
# NMF of faces
# ----------------------------------------------------------------------------


def load_faces():
    """scikit-image's LFW subset as X (d = 625 pixels, N = 200 faces), float64 in [0, 1]."""
    from skimage.data import lfw_subset

    F = lfw_subset()                                       # (200, 25, 25)
    return torch.tensor(F.reshape(len(F), -1).T.copy())    # (200, 625) -> (625, 200)


def _batched(X):
    if not isinstance(X, torch.Tensor) or X.dim() not in (2, 3):
        raise ValueError(f"X must be a (d, N) or (1, d, N) tensor, got {getattr(X, 'shape', type(X).__name__)}")
    return X[None] if X.dim() == 2 else X


def initial_bases(kind, X, r, seed=0):
    """hamlib's random initial bases D (1, d, r) for solver `kind`, from a seeded generator."""
    if kind not in SOLVER_FUNCTIONS:
        raise ValueError(f"kind must be one of {list(SOLVER_FUNCTIONS)}, got {kind!r}")
    X = _batched(X)
    if not 1 <= r <= min(X.shape[1:]):
        raise ValueError(f"rank r must be in [1, {min(X.shape[1:])}] for X {tuple(X.shape)}, got {r}")
    g = torch.Generator().manual_seed(seed)
    return md.random_bases(kind, (1, X.shape[1], r), generator=g).to(X.dtype)


def frobenius_objective(X, D, C):
    """||X - D C^T||_F^2 (summed over the batch) as a float."""
    return float((X - D @ C.mT).pow(2).sum())


def nmf_trace(X, D, C=None, steps=50):
    """Run hamlib.nmf one step at a time; returns (D, C, objectives) with steps + 1 objective values.

    objectives[0] is the objective at the initial (D, C) (C defaults to hamlib's
    softmax initialisation), objectives[k] after k multiplicative updates.
    """
    X = _batched(X)
    if C is None:
        C = nmf_init_coef(X, D).mT
    objectives = [frobenius_objective(X, D, C)]
    for _ in range(steps):
        D, C = md.nmf(X, D, C, steps=1)
        objectives.append(frobenius_objective(X, D, C))
    return D, C, objectives


def pca_bases(X, r):
    """The first r principal directions of the columns of X (d, N): eigenfaces, (d, r)."""
    X = _batched(X)[0]
    U, _, _ = torch.linalg.svd(X - X.mean(dim=1, keepdim=True), full_matrices=False)
    return U[:, :r]


def sparsity(D, tol=0.05):
    """Fraction of entries of each column of D below tol * (that column's largest |entry|), averaged."""
    D = _batched(D)[0].abs()
    return float((D < tol * D.amax(dim=0, keepdim=True)).double().mean())


def draw_bases(D, shape=(25, 25), ncols=8, title="", fig=None, signed=False, per_basis=False):
    """The columns of D (d, r) as r small images on a grid (a subfigure if `fig` is given).

    All images share one colour scale, shown by one colour bar: [0, max] for
    non-negative bases (grey), [-m, m] for signed ones (blue negative, red positive).
    per_basis=True first divides each column by its largest |entry| (the bar then
    reads "fraction of each basis's largest |entry|"): bases of different norms
    stay equally visible.
    """
    D = _batched(D)[0]
    r = D.shape[1]
    if per_basis:
        D = D / D.abs().amax(dim=0, keepdim=True).clamp_min(1e-300)
    nrows = -(-r // ncols)
    fig = fig or Figure(figsize=(ncols * 0.9 + 0.8, nrows * 0.9 + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    m = float(D.abs().max())
    cmap, lo = ("RdBu_r", -m) if signed else ("gray", 0.0)
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < r:
            im = ax.imshow(D[:, i].reshape(shape).numpy(), cmap=cmap, vmin=lo, vmax=m)
    bar = fig.colorbar(im, ax=axes.tolist(), shrink=0.8)
    if per_basis:
        bar.set_label("/ largest |entry| of the basis", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def draw_nmf_faces(X, r=16, steps=100, seed=0):
    """NMF-widget callback: NMF bases of the faces after `steps` updates, PCA eigenfaces, objective curve.

    Returns (figure, relative error of the NMF reconstruction).
    """
    X = _batched(X)
    D, C, obj = nmf_trace(X, initial_bases("nmf", X, r, seed), steps=steps)
    err = (obj[-1] / float(X.pow(2).sum())) ** 0.5
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    left, mid, right = fig.subfigures(1, 3, width_ratios=[4, 4, 2.5])
    ncols = max(1, int(np.ceil(np.sqrt(r))))
    draw_bases(D, ncols=ncols, fig=left, per_basis=True, title=f"NMF bases (r={r}, {steps} steps): parts")
    draw_bases(pca_bases(X, r), ncols=ncols, fig=mid, signed=True, per_basis=True, title=f"PCA eigenfaces (r={r}): templates")
    ax = right.subplots()
    ax.semilogy(obj)
    ax.set_xlabel("iteration")
    ax.set_title(f"$\\|X - DC^T\\|_F^2$, rel. error {err:.3f}", fontsize=10)
    return fig, err


# ----------------------------------------------------------------------------
# VQ as colour quantisation
# ----------------------------------------------------------------------------


def load_colour_photo(name="chelsea", size=(150, 225)):
    """A colour scikit-image photograph, resized, as (H, W, 3) float64 in [0, 1]."""
    import skimage.data
    from skimage.transform import resize

    if not hasattr(skimage.data, name):
        raise ValueError(f"skimage.data has no image {name!r} (try 'chelsea', 'astronaut', 'coffee')")
    img = getattr(skimage.data, name)()
    if img.ndim != 3:
        raise ValueError(f"skimage.data.{name} is not a colour image (shape {img.shape})")
    return resize(img[..., :3] / 255.0, size, anti_aliasing=True)


def pixel_matrix(img, lift=None):
    """Pixels as the solvers' X (1, d, N): d = 3 colours, or 4 with a constant channel `lift`.

    With lift = c every pixel becomes (R, G, B, c): two pixels then point in the
    same direction only if they have the same colour, so cosine similarity (the
    one VQ uses) no longer confuses dark and bright versions of a colour.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img must be (H, W, 3), got {img.shape}")
    X = torch.tensor(img.reshape(-1, 3).T.copy(), dtype=torch.float64)[None]  # (H*W, 3) -> (1, 3, N)
    if lift is not None:
        X = torch.cat([X, torch.full_like(X[:, :1], float(lift))], dim=1)     # (1, 4, N)
    return X


def quantise_colours(img, r=8, inv_t=1000.0, steps=10, lift=0.5, seed=0, hard=False):
    """Colour quantisation by hamlib.vq: returns (quantised image, C (N, r), relative error).

    inv_t is the inverse temperature t of softmax(t cos). The initial bases are r
    pixels drawn at random (k-means' usual start); the reconstruction is
    X_hat = D C^T with the final (unnormalised) assignment, so a pixel may be a
    mix of palette colours. hard=True instead replaces every pixel by its single
    nearest palette colour (the arg-max of its row of C): the palette alone, r colours.
    """
    X = pixel_matrix(img, lift)
    g = torch.Generator().manual_seed(seed)
    D0 = X[:, :, torch.randperm(X.shape[2], generator=g)[:r]].clone()
    D, C = md.vq(X, D0, steps=steps, inv_t=inv_t, final=True)
    if hard:
        X_hat = D[0, :3][:, C[0].argmax(dim=1)]    # (3, N): each pixel's nearest centroid
    else:
        X_hat = (D @ C.mT)[0, :3]                  # (3, N)
    out = X_hat.T.reshape(np.shape(img)).numpy()   # (N, 3) -> (H, W, 3)
    return out, C[0], float(np.linalg.norm(out - img) / np.linalg.norm(img))


def hardness(C):
    """Mean over points of the largest assignment weight max_j C_ij: 1/r = uniform, 1 = hard."""
    return float(C.amax(dim=-1).mean())


def draw_quantised(img, r=8, inv_t=1000.0, steps=10, lift=0.5, seed=0):
    """VQ-widget callback: the photo, its quantised version, and the histogram of max_j C_ij.

    Returns (figure, relative error).
    """
    out, C, err = quantise_colours(img, r, inv_t, steps, lift, seed)
    fig = Figure(figsize=(8.4, 2.5), layout="constrained")
    ax = fig.subplots(1, 3, width_ratios=[3, 3, 2.4])
    ax[0].imshow(img)
    ax[0].set_title("photo", fontsize=10)
    ax[1].imshow(np.clip(out, 0, 1))
    ax[1].set_title(f"r = {r}, t = {inv_t:g}: error {err:.3f}", fontsize=10)
    for a in ax[:2]:
        a.set_axis_off()
    ax[2].hist(C.amax(dim=-1).numpy(), bins=np.linspace(0, 1, 41))
    ax[2].set_xlabel("$\\max_j C_{ij}$ (1/r soft, 1 hard)")
    ax[2].set_ylabel("pixels")
    ax[2].set_title(f"largest weight per pixel: mean {hardness(C):.2f}", fontsize=10)
    return fig, err


# ----------------------------------------------------------------------------
# NMF, VQ, CD side by side
# ----------------------------------------------------------------------------


def solver_error(X, kind, r, steps, seed=0):
    """Relative error ||X - D C^T||_F / ||X||_F of hamlib's `kind` solver (final step on)."""
    X = _batched(X)
    D, C = SOLVER_FUNCTIONS[kind](X, initial_bases(kind, X, r, seed), steps=steps, final=True)
    return float((X - D @ C.mT).norm() / X.norm())


def svd_error(X, r):
    """The smallest relative error any rank-r factorisation reaches (Eckart-Young)."""
    S = torch.linalg.svdvals(_batched(X)[0])
    return float(S[r:].pow(2).sum().sqrt() / S.pow(2).sum().sqrt())


def solver_errors(X, ranks, steps_list, r_fixed, steps_fixed, seed=0):
    """Errors against rank (steps = steps_fixed) and against steps (r = r_fixed) for NMF, VQ, CD and SVD.

    Returns {"rank": {kind: [..]}, "steps": {kind: [..]}}; "svd" is the floor.
    """
    by_rank = {k: [solver_error(X, k, r, steps_fixed, seed) for r in ranks] for k in SOLVER_FUNCTIONS}
    by_rank["svd"] = [svd_error(X, r) for r in ranks]
    by_steps = {k: [solver_error(X, k, r_fixed, K, seed) for K in steps_list] for k in SOLVER_FUNCTIONS}
    by_steps["svd"] = [svd_error(X, r_fixed)] * len(steps_list)
    return {"rank": by_rank, "steps": by_steps}


def draw_solver_comparison(errors, ranks, steps_list, r_fixed, steps_fixed):
    """One figure, two panels: error against rank and against iterations, NMF/VQ/CD with the SVD floor."""
    fig = Figure(figsize=(9.5, 3.3), layout="constrained")
    ax = fig.subplots(1, 2)
    for kind, style in [("nmf", "o-"), ("vq", "s-"), ("cd", "^-"), ("svd", "k--")]:
        label = "SVD (optimum)" if kind == "svd" else kind.upper()
        ax[0].plot(ranks, errors["rank"][kind], style, label=label)
        ax[1].plot(steps_list, errors["steps"][kind], style, label=label)
    ax[0].set_xscale("log", base=2)
    ax[0].set_xlabel("rank r")
    ax[0].set_title(f"against rank ({steps_fixed} steps)")
    ax[1].set_xlabel("iterations K")
    ax[1].set_title(f"against iterations (r={r_fixed})")
    for a in ax:
        a.set_ylabel("$\\|X - DC^T\\|_F / \\|X\\|_F$")
        a.grid(alpha=0.3)
    ax[0].legend()
    return fig


def draw_objective(curves, ylabel="$\\frac{1}{2}\\|X - DC^\\top\\|_F^2$", title=""):
    """Objective per iteration, one log-scale line per {name: values}."""
    fig = Figure(figsize=(4.8, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, values in curves.items():
        ax.semilogy(values, label=name)
    ax.set(xlabel="iteration", ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig
