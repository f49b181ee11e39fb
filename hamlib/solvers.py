"""The paper's iterations (Geng et al., ICLR 2021, section 2): NMF, VQ and CD, one step at a time.

A feature map is a matrix X (d x N): d channels, N = H*W positions. A solver recovers
X_hat = D C^T with bases D (d x r) and coefficients C (N x r), r << d, N. Everything is
batched: X (B, d, N), D (B, d, r). The coefficients are kept transposed, Ct = C^T (B, r, N):
D^T X (r x N) is faster than X^T D on CPUs, and no product then needs a copy.

Each step is a pure function whose body is its formula. Two optional arguments serve the
modules (`hamlib.md`) and change no value:
  s (B, 1, 1)    run on X / s without materialising it: every product with X is divided by s
                 afterwards (`_over`); s is a power of two, so the division is exact.
  inplace=True   NMF's updates overwrite their argument (`_mul_div`): the modules' loop without
                 gradient, which owns its buffers.
`make_solver` binds the steps of one solver to one X as a `Solver`.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

EPS = 1e-6  # in denominators only, as in the reference


def _over(P, s):
    # a product with X, read as the same product with X / s
    return P if s is None else P / s


def _mul_div(A, num, den, inplace):
    # the multiplicative update A * num / (den + eps), in place when the caller owns A
    return A.mul_(num).div_(den.add_(EPS)) if inplace else A * num / (den + EPS)


# ---- NMF: Lee-Seung multiplicative updates for min ||X - D C^T||_F^2, D, C >= 0 ----------------


def nmf_init_coef(X, D):
    """C = softmax_r(X^T D) -> Ct (B, r, N), softmax over r."""
    return F.softmax(D.mT @ X, dim=1)


def nmf_coef_step(X, D, Ct, inplace=False, s=None):
    """C <- C * (X^T D) / (C D^T D + eps)."""
    return _mul_div(Ct, _over(D.mT @ X, s), D.mT @ D @ Ct, inplace)   # (B, r, N) each


def nmf_bases_step(X, D, Ct, inplace=False, s=None):
    """D <- D * (X C) / (D C^T C + eps)."""
    return _mul_div(D, _over(X @ Ct.mT, s), D @ (Ct @ Ct.mT), inplace)  # (B, d, r) each


def nmf_final(X, D, Ct, s=None):
    """The final coefficient step: one more `nmf_coef_step`."""
    return nmf_coef_step(X, D, Ct, s=s)


# ---- VQ: soft, cosine-similarity k-means ---------------------------------------------------------
# Xn^T Dn = diag(1/||x_n||) X^T Dn: the positions' norms (x_scale) are computed once per
# forward, not once per step, and Xn (as large as X) is never materialised.


def _inv_norm(X, eps=1e-12):
    # 1 / ||x_n|| for every position: (B, d, N) -> (B, 1, N), as F.normalize
    return 1.0 / X.norm(dim=1, keepdim=True).clamp_min(eps)


def _soft_assign(X, D, inv_t, x_scale=None, s=None):
    # C = softmax_r(t * diag(x_scale) (X / s)^T D) -> Ct (B, r, N); dividing by s before
    # multiplying by x_scale keeps both backward products in range at any scale of X
    S = _over(D.mT @ X, s)                                  # (B, r, N)
    return F.softmax(inv_t * (S if x_scale is None else S * x_scale), dim=1)


def _normalise_over_N(Ct):
    # each column of C (each row of Ct) sums to 1 over the N positions
    return Ct / (Ct.sum(dim=2, keepdim=True) + EPS)


def vq_coef_step(X, D, inv_t=100.0, x_scale=None, s=None):
    """C = softmax_r(t Xn^T Dn), normalised over N. x_scale: 1/||x_n / s|| if precomputed."""
    x_scale = _inv_norm(X) if x_scale is None else x_scale
    return _normalise_over_N(_soft_assign(X, F.normalize(D, dim=1, eps=EPS), inv_t, x_scale, s))


def vq_bases_step(X, Ct, s=None):
    """D = X C, the weighted centroids: (B, d, N) @ (B, N, r) -> (B, d, r)."""
    return _over(X @ Ct.mT, s)


def vq_final(X, D, Ct=None, inv_t=100.0, x_scale=None, s=None):
    """C = softmax_r(t diag(x_scale) X^T Dn), C not normalised over N.

    x_scale defaults to 1 / (||x_n|| + eps) computed from X.detach(), as the reference
    (`x.detach()`): in every gradient mode this factor is a constant for autograd, and
    everything else (X through X^T Dn, D, the earlier steps) is differentiated. So "bptt"
    is the exact derivative of the forward with the final step's position norms held fixed.
    """
    x_scale = 1.0 / (X.detach().norm(dim=1, keepdim=True) + EPS) if x_scale is None else x_scale
    return _soft_assign(X, F.normalize(D, dim=1, eps=EPS), inv_t, x_scale, s)


# ---- CD: spherical k-means bases, ridge-regression coefficients -----------------------------------


def cd_coef_step(X, D, inv_t=100.0, x_scale=None, s=None):
    """C = softmax_r(t Xn^T D), normalised over N."""
    x_scale = _inv_norm(X) if x_scale is None else x_scale
    return _normalise_over_N(_soft_assign(X, D, inv_t, x_scale, s))


def cd_bases_step(X, Ct, s=None):
    """D = normalise_columns(X C): spherical k-means centroids."""
    return F.normalize(_over(X @ Ct.mT, s), dim=1, eps=EPS)


def cd_final(X, D, Ct=None, beta=0.1, s=None):
    """C^T = (D^T D + beta I)^-1 D^T X: one (r x r) solve with N right-hand sides.

    beta > 0 keeps the matrix positive definite, so the solve skips torch.linalg.solve's
    singularity check (a host sync on accelerators). Under torch.export (and so for ONNX, which
    has no linear-solve operator) the solve is Gauss-Jordan elimination unrolled over the r
    columns, in products and divisions only: A is positive definite, so no pivoting is needed
    and every pivot is >= beta."""
    r = D.shape[-1]
    I = torch.eye(r, dtype=D.dtype, device=D.device)
    A, Y = D.mT @ D + beta * I, _over(D.mT @ X, s)                  # (B, r, r), (B, r, N)
    if not torch.compiler.is_exporting():
        return torch.linalg.solve_ex(A, Y).result                   # (B, r, r) \ (B, r, N) -> (B, r, N)
    for k in range(r):  # column k of A -> e_k: row k divided by its pivot, subtracted from the others
        col = A[:, :, k:k + 1] - I[:, k:k + 1]                       # (B, r, 1)
        piv = A[:, k:k + 1, k:k + 1]                                 # (B, 1, 1)
        A, Y = A - col * (A[:, k:k + 1] / piv), Y - col * (Y[:, k:k + 1] / piv)
    return Y                                                         # A = I now, Y = A^-1 (D^T X / s)


# ---- One solver bound to one X ---------------------------------------------------------------------


class Solver(NamedTuple):
    """One solver bound to one X. Coefficients are Ct (B, r, N) throughout.

    init(D) -> Ct                 initial coefficients (None where the steps need none)
    coef(D, Ct, inplace) -> Ct    the coefficient half of a loop iteration
    bases(D, Ct, inplace) -> D    the bases half
    final(D, Ct) -> Ct            the final coefficient step, the one the paper differentiates
    inplace=True (default False) lets NMF overwrite its argument: the no-gradient loop only.
    """

    init: Callable
    coef: Callable
    bases: Callable
    final: Callable

    def step(self, D, Ct, inplace=False):
        """One loop iteration: coefficients first, then bases."""
        Ct = self.coef(D, Ct, inplace)
        return self.bases(D, Ct, inplace), Ct


def make_solver(kind, X, inv_t=100.0, beta=0.1, scale=None) -> Solver:
    """The solver `kind` ("nmf", "vq", "cd") bound to this X. What depends on X alone
    (the positions' norms) is computed once here, not once per step.

    scale: None, or a (B, 1, 1) tensor s: the solver then runs on X / s (NMF's initial
    softmax still reads X, as without it) and returns the factors of X / s.
    """
    s = scale
    if kind == "nmf":
        return Solver(partial(nmf_init_coef, X), partial(nmf_coef_step, X, s=s),
                      partial(nmf_bases_step, X, s=s), partial(nmf_final, X, s=s))
    if kind not in ("vq", "cd"):
        raise ValueError(f"unknown solver {kind!r}: expected 'nmf', 'vq' or 'cd'")
    # the positions' norms, once: ||x_n / s|| (B, 1, N) neither overflows nor underflows (X / s is transient)
    n = (X if s is None else X / s).norm(dim=1, keepdim=True)
    x_scale = 1.0 / n.clamp_min(1e-12)                     # 1 / ||x_n / s||, as `_inv_norm`
    init = lambda D: None  # noqa: E731  the VQ and CD steps need no initial coefficients
    if kind == "vq":
        final_scale = 1.0 / (n.detach() + EPS)             # as `vq_final`'s default, of X / s
        return Solver(init, lambda D, Ct, inplace=False: vq_coef_step(X, D, inv_t, x_scale, s),
                      lambda D, Ct, inplace=False: vq_bases_step(X, Ct, s),
                      lambda D, Ct: vq_final(X, D, Ct, inv_t, final_scale, s))
    return Solver(init, lambda D, Ct, inplace=False: cd_coef_step(X, D, inv_t, x_scale, s),
                  lambda D, Ct, inplace=False: cd_bases_step(X, Ct, s),
                  lambda D, Ct: cd_final(X, D, Ct, beta, s))
