"""Global context as low-rank recovery: the computations and pictures of notebook 01.

- `load_photo`, `truncated_svd`, `relative_error`, `energy_rank`: a matrix, its
  best rank-r approximation (Eckart-Young) and how much of it r components keep.
- `corrupt`, `svd_impute`, `noise_kept`: noise and missing pixels, their low-rank repair,
  and how much noise a truncation keeps.
- `draw_spectra`, `draw_images`, `denoise_curve`, `draw_error_curve`: the pictures.
  (The real CNN feature maps of the notebook come from `digits_cnn`.)
- `draw_rank`, `figure_widget`: the rank-slider callback and the generic
  "sliders + redrawn figure" widget every notebook of this series uses.
- `blocked`: a context manager for exercise tests: while it is open, the given helpers raise
  wherever they are bound, so an answer that calls the helper it is asked to write fails.

Matrices are 2-D torch tensors in float64 (the photographs are small; float64
keeps the rounded numbers the notebooks check independent of BLAS order).
Figures are `matplotlib.figure.Figure` objects, not pyplot state, so a callback
can be called in a test and nothing leaks between calls.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import torch
from matplotlib.figure import Figure

# ----------------------------------------------------------------------------
# Matrices and their truncated SVD
# ----------------------------------------------------------------------------


def _check_matrix(A, name="A"):
    if not isinstance(A, torch.Tensor) or A.dim() != 2:
        shape = tuple(A.shape) if hasattr(A, "shape") else type(A).__name__
        raise ValueError(f"{name} must be a 2-D torch tensor (a matrix), got {shape}")
    if not A.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {A.dtype}")


def _check_rank(A, r):
    if not (isinstance(r, (int, np.integer)) and 0 <= r <= min(A.shape)):
        raise ValueError(f"rank r must be an integer in [0, {min(A.shape)}] for a {tuple(A.shape)} matrix, got {r!r}")


def load_photo(name="camera", size=256):
    """A grey-scale scikit-image photograph as a (size, size) float64 matrix in [0, 1]."""
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.transform import resize

    if not hasattr(skimage.data, name):
        raise ValueError(f"skimage.data has no image {name!r} (try 'camera', 'astronaut', 'coffee')")
    img = getattr(skimage.data, name)()
    if img.ndim == 3:
        img = rgb2gray(img[..., :3])
    img = resize(img.astype(np.float64) / (255.0 if img.max() > 1 else 1.0), (size, size), anti_aliasing=True)
    return torch.tensor(img, dtype=torch.float64)


def relative_error(A_hat, A):
    """||A_hat - A||_F / ||A||_F as a Python float."""
    return float((A_hat - A).norm() / A.norm())


def truncated_svd(A, r):
    """Best rank-r approximation U_r S_r V_r^T of A in the Frobenius norm (Eckart-Young)."""
    _check_matrix(A)
    _check_rank(A, r)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)  # (m, k), (k,), (k, n), k = min(m, n)
    return (U[:, :r] * S[:r]) @ Vh[:r]


def energy_rank(S, fraction):
    """Smallest r whose first r singular values hold `fraction` of sum(S^2)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    energy = torch.cumsum(S.double() ** 2, 0) / (S.double() ** 2).sum()
    return int(torch.searchsorted(energy, torch.tensor(fraction, dtype=torch.float64) - 1e-12)) + 1


# ----------------------------------------------------------------------------
# Corruption and recovery
# ----------------------------------------------------------------------------


def corrupt(A, noise=0.0, missing=0.0, seed=0):
    """A + Normal(0, noise^2) and a mask (True = observed) hiding a `missing` fraction of entries.

    Returns (A_noisy, mask). Missing entries are set to 0 in A_noisy.
    """
    _check_matrix(A)
    if noise < 0 or not 0 <= missing < 1:
        raise ValueError(f"need noise >= 0 and 0 <= missing < 1, got noise={noise}, missing={missing}")
    g = torch.Generator().manual_seed(seed)
    Y = A + noise * torch.randn(A.shape, generator=g, dtype=A.dtype)
    mask = torch.rand(A.shape, generator=g) >= missing
    return Y * mask, mask


def svd_impute(Y, mask, r, steps=50):
    """Fill the unobserved entries of Y by iterated rank-r SVD ("hard impute").

    Start from the observed entries with the holes set to the mean of the
    observed ones; then repeat: Z = truncated_svd(filled, r), filled = observed
    entries of Y + Z on the holes. Each step is a projection that cannot
    increase the error on the observed entries. Returns (Z, errors) with the
    relative error on the observed entries after each step.
    """
    _check_matrix(Y, "Y")
    if mask.shape != Y.shape or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(Y.shape)}, got {mask.dtype} {tuple(mask.shape)}")
    if not mask.any():
        raise ValueError("mask observes no entry")
    _check_rank(Y, r)
    filled = torch.where(mask, Y, Y[mask].mean())
    errors = []
    for _ in range(steps):
        Z = truncated_svd(filled, r)
        errors.append(relative_error(Z[mask], Y[mask]))
        filled = torch.where(mask, Y, Z)
    return Z, errors


def noise_kept(A, Y, r):
    """Fraction of the noise energy a rank-r truncation keeps: ||svd_r(Y) - svd_r(A)||_F^2 / ||Y - A||_F^2.

    For i.i.d. noise Y - A that is small against the gap below A's r-th singular
    value, this is about r(m + n - r) / (mn) (the dimension of the rank-r
    matrices near svd_r(A), over that of all m x n matrices).
    """
    _check_matrix(A)
    _check_matrix(Y, "Y")
    return float((truncated_svd(Y, r) - truncated_svd(A, r)).pow(2).sum() / (Y - A).pow(2).sum())


# ----------------------------------------------------------------------------
# Pictures and widgets
# ----------------------------------------------------------------------------


def draw_rank(A, r, S=None, title="", reference=None, size=2.1):
    """Rank-slider callback: A, its rank-r approximation, the error map, and the spectrum with r marked.

    Returns (figure, relative error of the rank-r approximation to A). S (the
    singular values of A) may be passed to save an SVD. With a `reference`
    (e.g. the clean image when A is a noisy one) the title also reports the
    error to the reference, and the error map shows |reference - rank r|:
    the titles say which error is which. `size` is the width of one panel in inches.
    """
    A_r = truncated_svd(A, r)
    err = relative_error(A_r, A)
    S = torch.linalg.svdvals(A) if S is None else S
    name = title or "input"
    label = f"rank {r}: error {err:.3f} to {name}"
    target = A
    if reference is not None:
        if reference.shape != A.shape:
            raise ValueError(f"reference must have A's shape {tuple(A.shape)}, got {tuple(reference.shape)}")
        label += f",\n{relative_error(A_r, reference):.3f} to the reference"
        target = reference
    A, A_r, target = A.numpy(), A_r.numpy(), target.numpy()
    fig = Figure(figsize=(4 * size + 0.6, size * 1.1 + 0.4), layout="constrained")
    ax = fig.subplots(1, 4)
    lo, hi = float(A.min()), float(A.max())
    ax[0].imshow(A, cmap="gray", vmin=lo, vmax=hi)
    ax[0].set_title(name, fontsize=10)
    ax[1].imshow(A_r, cmap="gray", vmin=lo, vmax=hi)
    ax[1].set_title(label, fontsize=10)
    im = ax[2].imshow(np.abs(target - A_r), cmap="gray_r")
    ax[2].set_title("|reference - rank r|" if reference is not None else f"|{name} - rank r|", fontsize=10)
    fig.colorbar(im, ax=ax[2], shrink=0.8)
    for a in ax[:3]:
        a.set_axis_off()
    ax[3].semilogy(np.arange(1, len(S) + 1), S.numpy())
    ax[3].axvline(r, color="C3", ls="--")
    ax[3].set_xlabel("i")
    ax[3].set_title("singular values $\\sigma_i$", fontsize=10)
    return fig, err


def figure_widget(draw, controls, css_class):
    """Controls + a figure redrawn by `draw(**values)` on every change, as one ipywidgets box.

    `draw` returns a Figure (or a tuple whose first item is one); `controls`
    maps draw's keyword names to ipywidgets value widgets. Every control gets
    `css_class`, the box gets `css_class + "-box"`, for browser tests.
    Returns the box; `box.redraw()` redraws with the current values.
    """
    import ipywidgets as widgets

    out = widgets.Output()

    def redraw(_=None):
        fig = draw(**{k: w.value for k, w in controls.items()})
        fig = fig[0] if isinstance(fig, tuple) else fig
        # set the Output's contents directly (no `with out:` capture, which
        # headless executors such as nbclient handle slowly)
        out.outputs = ()
        out.append_display_data(fig)
        return fig

    for w in controls.values():
        w.add_class(css_class)
        w.observe(redraw, names="value")
    box = widgets.VBox([widgets.HBox(list(controls.values())), out])
    box.add_class(css_class + "-box")
    box.redraw = redraw
    redraw()
    return box


def draw_spectra(spectra, normalise=True, title="singular values", floor=1e-5):
    """Several spectra {name: S} on one log-scale plot (each divided by its sigma_1 if `normalise`).

    The y axis stops at `floor` (times the largest value if not normalised):
    exact zeros, which float arithmetic turns into 1e-17 or 1e-50, would
    otherwise flatten everything else.
    """
    fig = Figure(figsize=(4.8, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, S in spectra.items():
        S = S / S[0] if normalise else S
        ax.semilogy(np.arange(1, len(S) + 1), S.numpy(), label=name)
    top = 1.0 if normalise else max(float(S.max()) for S in spectra.values())
    ax.set_ylim(bottom=floor * top, top=2 * top)
    ax.set_xlabel("i")
    ax.set_ylabel("$\\sigma_i / \\sigma_1$" if normalise else "$\\sigma_i$")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def draw_images(images, ncols=None, cmap="gray", size=2.6, colorbar=False, crop=None, interpolation=None):
    """A row (or grid) of titled images {title: (H, W) or (H, W, 3)}, each on its own colour scale.

    colorbar=True gives every image a colour bar (for maps whose values mean
    something). crop = (rows, cols), two slices, shows that part of every image
    pixel for pixel. interpolation defaults to "nearest" with a crop (a zoom
    that keeps the stored PNG small; pass it too for small images shown large)
    and to matplotlib's "antialiased" without.
    """
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    width = size * (1.25 if colorbar else 1.0)
    fig = Figure(figsize=(width * ncols, size * nrows + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, (name, img) in zip(axes, images.items()):
        img = np.asarray(img)
        if crop is not None:
            img = img[crop[0], crop[1]]
        im = ax.imshow(img, cmap=cmap, interpolation=interpolation or ("nearest" if crop is not None else "antialiased"))
        ax.set_title(name, fontsize=10)
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in axes:
        ax.set_axis_off()
    return fig


def denoise_curve(A, Y, ranks):
    """Relative error to the clean A of the rank-r truncation of the noisy Y, for each r."""
    U, S, Vh = torch.linalg.svd(Y, full_matrices=False)
    return [relative_error((U[:, :r] * S[:r]) @ Vh[:r], A) for r in ranks]


def draw_error_curve(ranks, errors, baseline, xlabel="rank r", title=""):
    """Error against rank, with a horizontal line at the error of doing nothing."""
    fig = Figure(figsize=(4.8, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(ranks, errors, "o-", label="rank-r truncation")
    ax.axhline(baseline, color="k", ls="--", label="corrupted input")
    best = int(np.argmin(errors))
    ax.plot(ranks[best], errors[best], "r*", ms=14, label=f"best r = {ranks[best]}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("relative error to the clean image")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


# ----------------------------------------------------------------------------
# Exercise tests
# ----------------------------------------------------------------------------


class HelperCalled(RuntimeError):
    """An exercise's answer called a helper that gives the answer (see `blocked`)."""


@contextlib.contextmanager
def blocked(*functions, namespace=None, why="write it yourself"):
    """While open, every function in `functions` raises `HelperCalled` when called.

    An exercise test calls the student's function inside `with blocked(lowrank.truncated_svd, ...)`:
    an answer that is one call of the helper fails, one written from torch passes. The
    functions are replaced wherever a module binds them (`course.lowrank.truncated_svd`, a
    `from course.lowrank import truncated_svd`, hamlib's re-exports, a module that calls
    them through its globals) and in `namespace` (pass the notebook's `globals()`), and
    restored on exit, also when the body raises.
    """
    if not functions or not all(callable(f) for f in functions):
        raise ValueError(f"blocked needs one or more functions, got {functions!r}")
    targets = {id(f): f for f in functions}

    def stand_in(label):
        def refuse(*args, **kwargs):
            raise HelperCalled(f"{label} was called: {why}")
        return refuse

    spaces = [vars(m) for m in list(sys.modules.values()) if isinstance(getattr(m, "__dict__", None), dict)]
    if namespace is not None:
        spaces.append(namespace)
    swapped = []                                    # (namespace, name, original)
    try:
        for space in spaces:
            module = space.get("__name__")
            for name, value in list(space.items()):
                if id(value) in targets and value is targets[id(value)]:
                    label = name if module in (None, "__main__") else f"{module}.{name}"
                    space[name] = stand_in(label)
                    swapped.append((space, name, value))
        yield
    finally:
        for space, name, value in reversed(swapped):
            space[name] = value
