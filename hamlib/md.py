"""Matrix decompositions as layers: NMF, VQ and CD (Geng et al., ICLR 2021, section 2 and its reference code).

Notation follows the paper. A feature map is a matrix X (d x N): d channels,
N = H*W positions. A solver recovers a low-rank approximation X_hat = D C^T
with bases D (d x r) and coefficients C (N x r), r << d, N, by running a few
iterations of an optimisation algorithm.

Everything here is batched: X is (B, d, N), D is (B, d, r), C is (B, N, r).
Inside the solvers the coefficients are kept transposed, Ct = C^T of shape
(B, r, N): computing D^T X (r x N) is faster than X^T D on CPUs, and every
product then multiplies untransposed or BLAS-transposed operands without a
copy. The public functions return C = Ct.mT, a view.

Two layers of API:
- `nmf`, `vq`, `cd`: functional solvers on matrices (notebooks, tests): the
  paper's iterations exactly, pure functions.
- `NMF2D`, `VQ2D`, `CD2D`: modules on feature maps (B, C, H, W) or token
  sequences (B, N, C), with groups, step counts, gradient mode (`hamlib.grad.grad_plan`),
  bases, input checks and a scale-aware solve.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .grad import GRAD_MODES, _implicit_step, grad_plan

EPS = 1e-6  # in denominators only, as in the reference

# ----------------------------------------------------------------------------
# One solver = init_coef + step + final. All take and return Ct (B, r, N) and
# are pure, except where called with inplace=True (the modules' no-gradient
# loop, which owns its buffers): then NMF's updates overwrite D and Ct.
# s (B, 1, 1), where given, makes a step run on X / s without materialising
# it: each product with X is divided by s (on the result, so that neither the
# forward nor the backward overflows; the modules' scale-aware solve, see
# `_MD2D._reconstruct`; s is a power of two, so the division is exact).
# ----------------------------------------------------------------------------


def _bmm_t(A, B):
    """A^T B for batched A (b, m, k), B (b, m, n) -> (b, k, n), no copy."""
    return torch.bmm(A.mT, B)


def _over(A, s):
    return A if s is None else A / s


# ---- NMF: Lee-Seung multiplicative updates for min ||X - D C^T||_F^2 -------


def nmf_init_coef(X, D):
    # C = softmax_r(X^T D)   -> Ct (B, r, N), softmax over r (dim 1)
    return F.softmax(_bmm_t(D, X), dim=1)


def nmf_coef_step(X, D, Ct, inplace=False, s=None):
    """C <- C * (X^T D) / (C D^T D + eps). inplace=True overwrites Ct."""
    num = _over(_bmm_t(D, X), s)         # (B, r, d) @ (B, d, N) -> (B, r, N)
    den = torch.bmm(_bmm_t(D, D), Ct)    # (B, r, r) @ (B, r, N) -> (B, r, N)
    if inplace:
        return Ct.mul_(num).div_(den.add_(EPS))
    return Ct * num / (den + EPS)


def nmf_bases_step(X, D, Ct, inplace=False, s=None):
    """D <- D * (X C) / (D C^T C + eps). inplace=True overwrites D."""
    num = _over(torch.bmm(X, Ct.mT), s)        # (B, d, N) @ (B, N, r) -> (B, d, r)
    den = torch.bmm(D, torch.bmm(Ct, Ct.mT))   # (B, d, r) @ (B, r, r) -> (B, d, r)
    if inplace:
        return D.mul_(num).div_(den.add_(EPS))
    return D * num / (den + EPS)


def nmf_final(X, D, Ct, s=None):
    return nmf_coef_step(X, D, Ct, s=s)


# ---- VQ: soft, cosine-similarity k-means ------------------------------------
# Xn^T Dn = diag(1/||x_n||) X^T Dn: the positions' norms are computed once per
# forward, not once per step, and Xn (as large as X) is never materialised.


def _inv_norm(X, eps=1e-12):
    # 1 / ||x_n|| for every position: (B, d, N) -> (B, 1, N), as F.normalize
    return 1.0 / X.norm(dim=1, keepdim=True).clamp_min(eps)


def _soft_assign(X, D, inv_t, x_scale=None, s=None):
    # C = softmax_r(t * diag(x_scale) (X / s)^T D)  -> Ct (B, r, N). Dividing by s before the
    # product with x_scale keeps both backward products in range at any scale of X
    S = _over(_bmm_t(D, X), s)                        # (B, r, d) @ (B, d, N) -> (B, r, N)
    if x_scale is not None:
        S = S * x_scale
    return F.softmax(inv_t * S, dim=1)


def _normalise_over_N(Ct):
    # each column of C (each row of Ct) sums to 1 over the N positions
    return Ct / (Ct.sum(dim=2, keepdim=True) + EPS)


def vq_coef_step(X, D, inv_t=100.0, x_scale=None, s=None):
    """C = softmax_r(t Xn^T Dn), normalised over N. x_scale: 1/||x_n / s|| if precomputed."""
    x_scale = _inv_norm(X) if x_scale is None else x_scale
    return _normalise_over_N(_soft_assign(X, F.normalize(D, dim=1, eps=EPS), inv_t, x_scale, s))


def vq_bases_step(X, Ct, s=None):
    """D = X C, the weighted centroids: (B, d, N) @ (B, N, r) -> (B, d, r)."""
    return _over(torch.bmm(X, Ct.mT), s)


def _final_inv_norm(X):
    # 1 / (||x_n|| + eps), a constant for autograd: (B, d, N) -> (B, 1, N)
    return 1.0 / (X.detach().norm(dim=1, keepdim=True) + EPS)


def vq_final(X, D, Ct=None, inv_t=100.0, x_scale=None, s=None):
    """C = softmax_r(t diag(x_scale) X^T Dn), C not normalised over N.

    x_scale defaults to 1 / (||x_n|| + eps) computed from X.detach(), as the reference
    (`x.detach()`): in every gradient mode this factor is a constant for autograd, and
    everything else (X through X^T Dn, D, the earlier steps) is differentiated. So "bptt"
    is the exact derivative of the forward with the final step's position norms held fixed.
    """
    x_scale = _final_inv_norm(X) if x_scale is None else x_scale
    return _soft_assign(X, F.normalize(D, dim=1, eps=EPS), inv_t, x_scale, s)


# ---- CD: spherical k-means bases, ridge-regression coefficients -------------


def cd_coef_step(X, D, inv_t=100.0, x_scale=None, s=None):
    """C = softmax_r(t Xn^T D), normalised over N."""
    x_scale = _inv_norm(X) if x_scale is None else x_scale
    return _normalise_over_N(_soft_assign(X, D, inv_t, x_scale, s))


def cd_bases_step(X, Ct, s=None):
    """D = normalise_columns(X C): spherical k-means centroids."""
    return F.normalize(_over(torch.bmm(X, Ct.mT), s), dim=1, eps=EPS)


def cd_final(X, D, Ct=None, beta=0.1, s=None):
    """C^T = (D^T D + beta I)^-1 D^T X: one (r x r) solve with N right-hand sides.

    beta > 0 keeps the matrix positive definite, so the solve skips torch.linalg.solve's
    singularity check (a host sync on accelerators). Under torch.export (and so for ONNX,
    which has no linear-solve operator) the solve is Gauss-Jordan elimination unrolled over
    the r columns, in products and divisions only: A is positive definite, so no pivoting is
    needed and every pivot is >= beta."""
    r = D.shape[-1]
    I = torch.eye(r, dtype=D.dtype, device=D.device)
    A, Y = _bmm_t(D, D) + beta * I, _over(_bmm_t(D, X), s)  # (B, r, r), (B, r, N)
    if not torch.compiler.is_exporting():
        return torch.linalg.solve_ex(A, Y).result           # (B, r, r) \ (B, r, N) -> (B, r, N)
    for k in range(r):  # column k of A -> e_k: row k divided by its pivot, subtracted from the others
        col = A[:, :, k:k + 1] - I[:, k:k + 1]               # (B, r, 1)
        piv = A[:, k:k + 1, k:k + 1]                         # (B, 1, 1)
        A, Y = A - col * (A[:, k:k + 1] / piv), Y - col * (Y[:, k:k + 1] / piv)
    return Y                                                 # A = I now, Y = A^-1 (D^T X / s)


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
        return Solver(lambda D: nmf_init_coef(X, D),
                      lambda D, Ct, inplace=False: nmf_coef_step(X, D, Ct, inplace, s),
                      lambda D, Ct, inplace=False: nmf_bases_step(X, D, Ct, inplace, s),
                      lambda D, Ct: nmf_final(X, D, Ct, s))
    if kind not in ("vq", "cd"):
        raise ValueError(f"unknown solver {kind!r}: expected 'nmf', 'vq' or 'cd'")
    # the positions' norms, once: ||x_n / s|| (B, 1, N) neither overflows nor underflows (X / s is transient)
    n = (X if s is None else X / s).norm(dim=1, keepdim=True)
    x_scale = 1.0 / n.clamp_min(1e-12)                     # 1 / ||x_n / s||, as `_inv_norm`
    init = lambda D: None  # noqa: E731  the VQ and CD steps need no initial coefficients
    if kind == "vq":
        final_scale = 1.0 / (n.detach() + EPS)             # as `_final_inv_norm`, of X / s
        return Solver(init, lambda D, Ct, inplace=False: vq_coef_step(X, D, inv_t, x_scale, s),
                      lambda D, Ct, inplace=False: vq_bases_step(X, Ct, s),
                      lambda D, Ct: vq_final(X, D, Ct, inv_t, final_scale, s))
    return Solver(init, lambda D, Ct, inplace=False: cd_coef_step(X, D, inv_t, x_scale, s),
                  lambda D, Ct, inplace=False: cd_bases_step(X, Ct, s),
                  lambda D, Ct: cd_final(X, D, Ct, beta, s))


# ----------------------------------------------------------------------------
# Functional API: (D, C) = solver(X, D, ..., steps, final)
# ----------------------------------------------------------------------------


def _check_matrices(X, D, C=None):
    if X.dim() != 3 or D.dim() != 3:
        raise ValueError(f"expected X (B, d, N) and D (B, d, r), got X {tuple(X.shape)} and D {tuple(D.shape)}")
    if X.shape[:2] != D.shape[:2]:
        raise ValueError(f"X {tuple(X.shape)} and D {tuple(D.shape)} disagree on (B, d)")
    if C is not None and C.shape != (X.shape[0], X.shape[2], D.shape[2]):
        raise ValueError(f"C must be (B, N, r) = {(X.shape[0], X.shape[2], D.shape[2])}, got {tuple(C.shape)}")


def _run(kind, X, D, C, steps, final, inv_t=100.0, beta=0.1):
    _check_matrices(X, D, C)
    solver = make_solver(kind, X, inv_t, beta)
    Ct = solver.init(D) if C is None else C.mT
    for _ in range(steps):
        D, Ct = solver.step(D, Ct)
    if final:
        Ct = solver.final(D, Ct)
    if Ct is None:  # VQ / CD with no step: the reference's initial C = softmax_r(t X^T D)
        Ct = _soft_assign(X, D, inv_t)
    return D, Ct.mT


def nmf(X, D, C=None, steps=6, final=False):
    """Non-negative matrix factorisation X ~ D C^T by multiplicative updates.

    X (B, d, N) >= 0, D (B, d, r) >= 0 initial bases, C (B, N, r) initial
    coefficients (default: softmax over r of X^T D). Runs `steps` iterations
    (coefficients, then bases); `final=True` adds one more coefficient update.
    Returns (D, C) with C (B, N, r).
    """
    return _run("nmf", X, D, C, steps, final)


def vq(X, D, steps=6, inv_t=100.0, final=False):
    """Soft vector quantisation (cosine k-means) with inverse temperature inv_t.

    Each step: C = softmax_r(t Xn^T Dn), columns of C normalised over N, D = X C.
    `final=True` ends with the unnormalised softmax assignment. Returns (D, C).
    """
    return _run("vq", X, D, None, steps, final, inv_t=inv_t)


def cd(X, D, steps=6, inv_t=100.0, beta=0.1, final=False):
    """Concept decomposition: spherical k-means bases, ridge coefficients.

    Each step: C = softmax_r(t Xn^T D), columns normalised over N,
    D = normalise_columns(X C). `final=True` ends with the ridge regression
    C = X^T D (D^T D + beta I)^-1, beta > 0. Returns (D, C).
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (the ridge keeps D^T D + beta I invertible), got {beta!r}")
    return _run("cd", X, D, None, steps, final, inv_t=inv_t, beta=beta)


# ----------------------------------------------------------------------------
# Bases
# ----------------------------------------------------------------------------

BASES_MODES = ("random", "learned")


def random_bases(kind, shape, generator=None, device=None, dtype=torch.float32):
    """Initial bases, columns L2-normalised over d: Uniform[0,1) for NMF, Normal for VQ/CD.

    With a generator the numbers are drawn on the CPU (so a seeded generator
    gives the same bases on every device), then moved.
    """
    draw = torch.rand if kind == "nmf" else torch.randn
    if generator is not None:
        D = draw(shape, generator=generator, dtype=dtype)
    else:
        D = draw(shape, device=device, dtype=dtype)
    return F.normalize(D, dim=-2).to(device)


def _hashed_bases(kind, shape, seed, device=None):
    """Bases drawn like `random_bases` from a counter-based integer hash of (seed, index)
    instead of a generator object: deterministic, the same on every device (up to the
    rounding of log and cos), and traced by torch.compile without a graph break."""
    n = math.prod(shape)
    h = torch.arange(2 * n, device=device) + ((seed * 0x9E3779B1) & 0xFFFFFFFF)   # int64 counters
    for _ in range(2):                                                            # a 32-bit mixer
        h = (((h >> 16) ^ h) * 0x45D9F3B) & 0xFFFFFFFF
    h = (h >> 16) ^ h
    u = ((h >> 8).float() + 0.5) / 2**24                                          # Uniform(0, 1), 24 bits
    u1, u2 = u[:n], u[n:]
    D = u1 if kind == "nmf" else torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)  # Box-Muller
    return F.normalize(D.reshape(shape), dim=-2)


# ----------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _power_of_two(a):
    # 2^floor(log2 a): dividing by it and multiplying back is exact in floating point
    return torch.exp2(torch.floor(torch.log2(a.clamp_min(torch.finfo(a.dtype).tiny))))


def _unscale(kind, D, Ct, s):
    # the factors of X from those of X / s: NMF's and CD's C scale with X, their D does not
    # (NMF's cancels in its update, CD's is normalised); VQ's D = X C does, its C (a softmax
    # of cosines) does not
    return (D * s, Ct) if kind == "vq" else (D, Ct * s)


class _MD2D(nn.Module):
    """Shared forward of NMF2D, VQ2D and CD2D (not public: use those three; each sets
    `kind`, `default_grad` and `default_inv_t`)."""

    def __init__(self, channels, rank=64, steps=6, eval_steps=None, groups=1, grad=None,
                 bases="random", inv_t=None, beta=0.1, eta=0.9, layout="bchw", eval_seed=0,
                 validate=True, spatial=True):
        super().__init__()
        name = type(self).__name__
        for arg, value, low in (("channels", channels, 1), ("rank", rank, 1), ("groups", groups, 1),
                                ("steps", steps, 0), ("eval_seed", eval_seed, 0)):
            _check_int(arg, value, low)
        if eval_steps is not None:
            _check_int("eval_steps", eval_steps, 0)
        if channels % groups:
            raise ValueError(f"groups={groups} does not divide channels={channels}")
        grad = self.default_grad if grad is None else grad
        if grad not in GRAD_MODES and (isinstance(grad, bool) or not isinstance(grad, numbers.Integral)
                                       or grad < 0):
            raise ValueError(f"grad must be one of {GRAD_MODES} or a number of steps to differentiate "
                             f"(an int >= 0), got {grad!r}")
        if bases not in BASES_MODES:
            raise ValueError(f"bases must be one of {BASES_MODES}, got {bases!r}")
        if bases == "learned" and not spatial:
            raise ValueError(f"{name}: bases='learned' needs spatial=True (with spatial=False the bases' "
                             "size is H*W, known only at the forward)")
        if layout not in ("bchw", "bnc"):
            raise ValueError(f"layout must be 'bchw' (feature maps) or 'bnc' (tokens), got {layout!r}")
        inv_t = self.default_inv_t if inv_t is None else inv_t
        if isinstance(inv_t, bool) or not isinstance(inv_t, numbers.Real) or not inv_t > 0:
            raise ValueError(f"inv_t must be > 0, got {inv_t!r}")
        if self.kind == "cd" and not beta > 0:
            raise ValueError(f"beta must be > 0 (the ridge keeps D^T D + beta I invertible), got {beta!r}")
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {eta!r}")
        self.channels, self.rank, self.groups, self.d = channels, rank, groups, channels // groups
        self.steps = steps
        self.eval_steps = steps if eval_steps is None else eval_steps
        self.grad, self.bases_mode, self.layout, self.spatial = grad, bases, layout, spatial
        self.inv_t, self.beta, self.eta = inv_t, beta, eta
        self.eval_seed, self.validate = eval_seed, validate
        if spatial:  # (S, d, r), from a generator seeded with eval_seed
            g = torch.Generator().manual_seed(eval_seed)
            D = random_bases(self.kind, (groups, self.d, rank), generator=g)
            if bases == "learned":
                self.register_buffer("bases", D)                     # in state_dict
            else:
                self.register_buffer("eval_bases", D, persistent=False)  # moves with .to(), not saved

    def extra_repr(self):
        return (f"channels={self.channels}, rank={self.rank}, groups={self.groups}, steps={self.steps}, "
                f"eval_steps={self.eval_steps}, grad={self.grad!r}, bases={self.bases_mode!r}, "
                f"layout={self.layout!r}, spatial={self.spatial}")

    def forward(self, x):
        """x (B, C, H, W) (layout "bchw") or (B, N, C) ("bnc") -> X_hat, the same shape."""
        self._check(x)
        if x.numel() == 0:
            return x.clone()                                   # an empty batch, or H*W = 0
        if self.layout == "bnc":
            x = x.transpose(1, 2)                              # (B, N, C) -> (B, C, N)
        B, S = x.shape[0], self.groups
        X = x.reshape(B * S, self.d, -1)                       # (B, C, ...) -> (B*S, d, N)
        lo, hi = X.detach().amin(dim=(1, 2)), X.detach().amax(dim=(1, 2))  # (B*S,): the checks and the scale
        if self.validate:
            self._check_values(lo, hi)
        scale = torch.maximum(hi, -lo).view(-1, 1, 1)          # max |X| per matrix: (B*S, 1, 1)
        if self.spatial:
            X_hat = self._reconstruct(X, scale)                 # (B*S, d, N)
        else:                                                   # features = positions
            X_hat = self._reconstruct(X.mT, scale).mT           # (B*S, N, d) -> (B*S, d, N)
        y = X_hat.reshape(x.shape)                             # (B*S, d, N) -> (B, C, ...)
        return y.transpose(1, 2) if self.layout == "bnc" else y

    def _check(self, x):
        # shape and dtype: free
        name = type(self).__name__
        want = 4 if self.layout == "bchw" else 3
        if x.dim() != want:
            names = "(B, C, H, W)" if want == 4 else "(B, N, C)"
            raise ValueError(f"{name} expects {names} input, got shape {tuple(x.shape)}")
        c = x.shape[1] if self.layout == "bchw" else x.shape[2]
        if c != self.channels:
            raise ValueError(f"{name} was built for {self.channels} channels, input has {c}")
        if not x.is_floating_point():
            raise ValueError(f"{name} needs a floating-point input, got {x.dtype}")

    def _check_values(self, lo, hi):
        # NaN or inf anywhere (NaN propagates into amin/amax), a negative entry for NMF
        name = type(self).__name__
        finite = torch.isfinite(lo).all() & torch.isfinite(hi).all()
        msg = f"{name} input contains NaN or inf"
        neg = "NMF needs a non-negative input (end the lower bread with ReLU)"
        if lo.device.type != "cpu" or torch.compiler.is_compiling():  # no host sync: a device-side assert
            torch._assert_async(finite, msg)
            if self.kind == "nmf":
                torch._assert_async((lo >= 0).all(), neg)
            return
        if not finite:                                         # CPU: the sync is free
            raise ValueError(msg)
        if self.kind == "nmf" and lo.min() < 0:
            raise ValueError(f"{neg}; min is {lo.min().item():.3g}")

    def _reconstruct(self, X, scale):
        """X_hat = D C^T for matrices X (B', d', N') whose max |X| is `scale` (B', 1, 1).

        The solvers are scale-equivariant (X -> aX gives X_hat -> a X_hat; NMF's initial
        softmax reads X itself), so they run on X / s, s a power of two near max |X|: the
        epsilons act relative to X's scale, and a float32 X of 1e20 neither overflows nor
        one of 1e-8 drowns in them.
        """
        dtype = X.dtype
        if dtype not in (torch.float32, torch.float64):
            X, scale = X.float(), scale.float()  # half precision underflows in the multiplicative updates
        with torch.autocast(X.device.type, enabled=False):
            s = _power_of_two(scale)
            D, Ct = self._solve(X, self._initial_bases(X), s)
            D, Ct = _unscale(self.kind, D, Ct, s)
            X_hat = torch.bmm(D, Ct)             # (B', d', r) @ (B', r, N') -> (B', d', N')
        if self.training and self.bases_mode == "learned":
            self._update_bases(D)
        return X_hat.to(dtype)

    def _initial_bases(self, X):
        """D (B', d', r) for X (B', d', N'): a fresh tensor (the no-gradient loop overwrites it)."""
        BS, d = X.shape[:2]
        if self.bases_mode == "learned":
            D = self.bases                       # (S, d, r)
        elif self.training:                      # fresh per forward and per matrix, from the global RNG
            if torch.compiler.is_exporting():
                raise RuntimeError(f"{type(self).__name__}: training-mode bases are random (fresh every forward) "
                                   "and are not exported; call .eval() before exporting (evaluation bases "
                                   "are constants)")
            return random_bases(self.kind, (BS, d, self.rank), device=X.device).to(X.dtype)
        elif self.spatial:                       # eval: the same bases on every call, for every image
            D = self.eval_bases                  # (S, d, r)
        else:                                    # eval, d' = H*W known only now
            D = _hashed_bases(self.kind, (self.groups, d, self.rank), self.eval_seed, X.device)
        return D.to(X.dtype).repeat(BS // self.groups, 1, 1)  # (S, d', r) -> (B*S, d', r)

    def _solve(self, X, D, scale):
        """K solver steps from D, then the final coefficient step, on X / scale; which part
        autograd sees is the plan of the gradient mode (`hamlib.grad.GradPlan`). Returns (D, Ct)."""
        K = self.steps if self.training else self.eval_steps
        p = grad_plan(self.grad, K, torch.is_grad_enabled() and X.requires_grad)
        # VQ's and CD's position norms (computed once, here) need a gradient only in whole steps
        with torch.set_grad_enabled(torch.is_grad_enabled() and (p.tracked > 0 or p.neumann > 0)):
            solver = make_solver(self.kind, X, self.inv_t, self.beta, scale)
        with torch.no_grad():
            Ct = None if p.differentiate_init else solver.init(D)
            for _ in range(p.free):
                D, Ct = solver.step(D, Ct, inplace=True)
            if p.split_last:
                Ct = solver.coef(D, Ct, inplace=True)
        if p.differentiate_init:
            Ct = solver.init(D)
        if p.split_last:
            D = solver.bases(D, Ct)              # X carries the gradient into the bases
        if p.neumann:
            D, Ct = _implicit_step(solver, D, Ct, p.neumann)
        for _ in range(p.tracked):
            D, Ct = solver.step(D, Ct)
        return D, solver.final(D, Ct)

    @torch.no_grad()
    def _update_bases(self, D):
        # moving average of the batch-mean final bases, with the reference's formula:
        # bases += eta * (mean_b D - bases), then columns re-normalised
        S, d, r = self.groups, self.d, self.rank
        update = D.detach().reshape(-1, S, d, r).mean(0).to(self.bases.dtype)
        self.bases.add_(self.eta * (update - self.bases))
        self.bases.copy_(F.normalize(self.bases, dim=1))


class NMF2D(_MD2D):
    """NMF layer: X_hat = D C^T with D, C >= 0. Needs a non-negative input.

    Default gradient "bptt", the best or tied-best NMF mode on every task in the README's
    table ("Choosing the gradient"); for a cheaper mode that still reaches across pixels
    use "one-step-bases" (flat in K).

    Args:
      channels: C of the input; rank: r; steps: K in training; eval_steps: K in
        evaluation (default = steps); groups: S (channels split into S groups of
        d = C / S, each decomposed separately, like heads).
      grad: which part of the solver autograd sees (the forward is the same in
        every mode; the table is in `hamlib.grad.GradPlan`); None (default) picks
        the solver's `default_grad`, chosen on the measured table in the README
        ("Choosing the gradient"):
        "one-step" the paper's: only the final coefficient step; the bases are
          constants, so no gradient crosses between pixels;
        "one-step-bases" the last bases update too: the gradient reaches every
          pixel through D = f(XC); memory and time flat in K, about one-step's;
        an int k: the last k steps and the final step (memory grows with k);
        "implicit": the last step, its gradient corrected by K Neumann terms of
          the step's Jacobian (memory flat, time linear in K; diverges for VQ/CD);
        "bptt": all K steps (memory and time linear in K).
      bases: "random" (fresh bases every training forward, as the reference;
        in eval fixed bases drawn once at construction from a generator seeded
        with eval_seed, so eval is deterministic and does not depend on the
        batch) or "learned" (a (S, d, r) buffer, initial bases for every
        forward, updated in training by a moving average of the final bases
        with weight eta).
      layout: "bchw" for (B, C, H, W) feature maps, "bnc" for (B, N, C) tokens.
      spatial: True (default) decomposes each group's X (d x N), features =
        channels; False its transpose (N x d), features = positions (the
        reference's `spatial=False`; bases of size N, so not "learned"; eval
        bases from a seeded integer hash instead of a generator).
      validate: check the values (NaN/inf; negatives for NMF). On the CPU a
        ValueError; the min/max reduction it reads runs anyway (it gives the
        solve's scale), so validation costs one host sync, free on a CPU. On an
        accelerator, and under torch.compile, the check is a device-side assert
        (no host sync): a failure surfaces as a RuntimeError at the next
        synchronisation and, on CUDA, leaves the context unusable. Shape and
        dtype checks are free and always on; validate=False skips the values.
        Measured on the CPU (1x256x64x64, r = 32, one thread): validate=True
        vs False within the timing noise (0.93-1.04x).

    torch.compile(module, fullgraph=True) works in training and evaluation in
    every gradient mode but "implicit" (its backward calls torch.autograd.grad,
    which Dynamo does not trace); tests/test_compile.py checks it against eager.

    The solver always runs in float32 or float64: a half-precision input (for
    example under autocast) is upcast, and the output is cast back. It runs on
    X / s, s a power of two near max |X| per matrix, so that the eps in the
    denominators is relative and no product overflows: every finite scale works.
    VQ and CD are scale-equivariant (X -> aX gives X_hat -> a X_hat); NMF is from
    its starting point on, but that start, softmax(X^T D), reads X itself (as the
    reference), so NMF's relative result depends on the input's scale.
    """

    kind = "nmf"
    default_grad = "bptt"
    default_inv_t = 1.0  # unused: NMF has no softmax temperature


class VQ2D(_MD2D):
    """Soft vector quantisation layer (cosine k-means, inverse temperature inv_t).

    Arguments as NMF2D, plus inv_t (t in softmax(t * cos)). The final step holds the
    positions' norms constant for autograd, as the reference (see `vq_final`).

    Defaults: inv_t = 20 (the reference uses 100: pass inv_t=100 for it) and a gradient
    truncated through the last 2 steps (grad=2). At t = 100 the assignments on signed
    features are nearly one-hot, so a pixel reads only its own cluster's centroid, and
    networks that did not learn to co-cluster a context source with its readers learned
    no context at all; at t = 20 they stay soft. grad=2 at t = 20 was best or tied on the
    three tasks measured (README, "Choosing the gradient"; python -m
    hamlib.experiments.gradient_study); BPTT is unstable through the sharp softmax and the
    implicit mode's Neumann series diverges.
    """

    kind = "vq"
    default_grad = 2
    default_inv_t = 20.0


class CD2D(_MD2D):
    """Concept-decomposition layer: spherical k-means bases, ridge coefficients.

    Arguments as NMF2D, plus inv_t (default 100, the reference's) and beta (ridge, > 0,
    default 0.1).

    Default gradient "one-step-bases", tied best in the README's table ("Choosing the
    gradient"); the implicit mode's Neumann series diverges for CD.
    """

    kind = "cd"
    default_grad = "one-step-bases"
    default_inv_t = 100.0


SOLVERS = {"nmf": NMF2D, "vq": VQ2D, "cd": CD2D}
