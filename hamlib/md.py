"""Matrix decompositions as layers: NMF, VQ and CD (Geng et al., ICLR 2021, section 2 and its reference code).

The paper's iterations are `hamlib.solvers` (pure functions, one per update). Here:
- `nmf`, `vq`, `cd`: the functional solvers on matrices X (B, d, N) -> (D (B, d, r), C (B, N, r)),
  the paper's iterations exactly.
- `random_bases`: initial bases; `_hashed_bases` the eval bases of `spatial=False` modules.
- `MatrixDecomposition2D`, the base of `NMF2D`, `VQ2D`, `CD2D`: modules on feature maps
  (B, C, H, W) or token sequences (B, N, C), with groups, step counts, a gradient mode
  (`hamlib.grad.grad_plan`; change it with `set_grad`), bases, input checks and a solve that
  runs at the input's scale. Find solver modules with `isinstance(m, MatrixDecomposition2D)`.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F

from .grad import GRAD_MODES, _implicit_step, canonical_grad, grad_plan  # noqa: F401  GRAD_MODES re-exported
from .solvers import _soft_assign, make_solver

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


def _unscale(kind, D, Ct, s):
    # the factors of X from those of X / s: NMF's and CD's C scale with X, their D does not
    # (NMF's cancels in its update, CD's is normalised); VQ's D = X C does, its C (a softmax
    # of cosines) does not
    return (D * s, Ct) if kind == "vq" else (D, Ct * s)


class MatrixDecomposition2D(nn.Module):
    """The forward shared by NMF2D, VQ2D and CD2D: x -> X_hat = D C^T, the same shape.

    A subclass sets `kind` ("nmf", "vq" or "cd", the `hamlib.solvers` it runs),
    `default_grad` and `default_inv_t`; the arguments are documented on `NMF2D`.
    """

    kind: str
    default_grad: object
    default_inv_t: float | None

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
        if bases not in BASES_MODES:
            raise ValueError(f"bases must be one of {BASES_MODES}, got {bases!r}")
        if bases == "learned" and not spatial:
            raise ValueError(f"{name}: bases='learned' needs spatial=True (with spatial=False the bases' "
                             "size is H*W, known only at the forward)")
        if layout not in ("bchw", "bnc"):
            raise ValueError(f"layout must be 'bchw' (feature maps) or 'bnc' (tokens), got {layout!r}")
        if self.default_inv_t is None:  # NMF: no softmax, so no temperature to set
            if inv_t is not None:
                raise ValueError(f"{name}: inv_t is the temperature of VQ and CD; NMF has none "
                                 f"(got inv_t={inv_t!r}: leave it out)")
        else:
            inv_t = self.default_inv_t if inv_t is None else inv_t
            if isinstance(inv_t, bool) or not isinstance(inv_t, numbers.Real) or not inv_t > 0:
                raise ValueError(f"inv_t must be > 0, got {inv_t!r}")
        if self.kind == "cd" and not beta > 0:
            raise ValueError(f"beta must be > 0 (the ridge keeps D^T D + beta I invertible), got {beta!r}")
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {eta!r}")
        self.set_grad(self.default_grad if grad is None else grad)
        self.channels, self.rank, self.groups, self.d = channels, rank, groups, channels // groups
        self.steps = steps
        self.eval_steps = steps if eval_steps is None else eval_steps
        self.bases_mode, self.layout, self.spatial = bases, layout, spatial
        self.inv_t, self.beta, self.eta = inv_t, beta, eta
        self.eval_seed, self.validate = eval_seed, validate
        if spatial:  # (S, d, r), from a generator seeded with eval_seed
            g = torch.Generator().manual_seed(eval_seed)
            D = random_bases(self.kind, (groups, self.d, rank), generator=g)
            if bases == "learned":
                self.register_buffer("bases", D)                     # in state_dict
            else:
                self.register_buffer("eval_bases", D, persistent=False)  # moves with .to(), not saved

    def set_grad(self, mode):
        """Switch the gradient mode (see `NMF2D`'s grad); ValueError for an unknown one. Returns self."""
        self.grad = canonical_grad(mode)
        return self

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
        X = x.reshape(x.shape[0] * self.groups, self.d, -1)    # (B, C, ...) -> (B*S, d, N)
        if self.spatial:
            X_hat = self._decompose(X)                         # (B*S, d, N)
        else:                                                  # features = positions
            X_hat = self._decompose(X.mT).mT                   # (B*S, N, d) -> (B*S, d, N)
        y = X_hat.reshape(x.shape)                             # (B*S, d, N) -> (B, C, ...)
        return y.transpose(1, 2) if self.layout == "bnc" else y

    def _decompose(self, X):
        """X_hat = D C^T for matrices X (B', d', N').

        The solvers are scale-equivariant (X -> aX gives X_hat -> a X_hat; NMF's initial
        softmax reads X itself), so they run on X / s, s a power of two near max |X| per
        matrix: the epsilons act relative to X's scale, and no product overflows or drowns
        in them at any finite scale.
        """
        lo, hi = X.detach().amin(dim=(1, 2)), X.detach().amax(dim=(1, 2))  # (B',): the checks and the scale
        if self.validate:
            self._check_values(lo, hi)
        scale = torch.maximum(hi, -lo).view(-1, 1, 1)          # max |X| per matrix: (B', 1, 1)
        dtype = X.dtype
        if dtype not in (torch.float32, torch.float64):
            X, scale = X.float(), scale.float()  # half precision underflows in the multiplicative updates
        with torch.autocast(X.device.type, enabled=False):
            # s = 2^floor(log2 max|X|): dividing by it and multiplying back is exact in floating point
            s = torch.exp2(torch.floor(torch.log2(scale.clamp_min(torch.finfo(scale.dtype).tiny))))
            D, Ct = self._solve(X, self._initial_bases(X), s)
            D, Ct = _unscale(self.kind, D, Ct, s)
            X_hat = D @ Ct                       # (B', d', r) @ (B', r, N') -> (B', d', N')
        if self.training and self.bases_mode == "learned":
            self._update_bases(D)
        return X_hat.to(dtype)

    def _solve(self, X, D, s):
        """K solver steps from D, then the final coefficient step, on X / s; which part
        autograd sees is the plan of the gradient mode (`hamlib.grad.GradPlan`). Returns (D, Ct)."""
        K = self.steps if self.training else self.eval_steps
        p = grad_plan(self.grad, K, torch.is_grad_enabled() and X.requires_grad)
        # VQ's and CD's position norms (computed once, here) need a gradient only in whole steps
        with torch.set_grad_enabled(torch.is_grad_enabled() and (p.tracked > 0 or p.neumann > 0)):
            solver = make_solver(self.kind, X, self.inv_t, self.beta, s)
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

    def _initial_bases(self, X):
        """D (B', d', r) for X (B', d', N'): a fresh tensor (the no-gradient loop overwrites it)."""
        BS, d = X.shape[:2]
        if self.bases_mode == "learned":
            D = self.bases                       # (S, d, r)
        elif self.training:                      # fresh per forward and per matrix, from the global RNG
            if torch.compiler.is_exporting():
                raise RuntimeError(f"{type(self).__name__}: training-mode bases are random (fresh every forward) "
                                   "and are not exported; call .eval() before exporting (evaluation bases are constants)")
            return random_bases(self.kind, (BS, d, self.rank), device=X.device).to(X.dtype)
        elif self.spatial:                       # eval: the same bases on every call, for every image
            D = self.eval_bases                  # (S, d, r)
        else:                                    # eval, d' = H*W known only now
            D = _hashed_bases(self.kind, (self.groups, d, self.rank), self.eval_seed, X.device)
        return D.to(X.dtype).repeat(BS // self.groups, 1, 1)  # (S, d', r) -> (B*S, d', r)

    @torch.no_grad()
    def _update_bases(self, D):
        # moving average of the batch-mean final bases, with the reference's formula:
        # bases += eta * (mean_b D - bases), then columns re-normalised
        S, d, r = self.groups, self.d, self.rank
        update = D.detach().reshape(-1, S, d, r).mean(0).to(self.bases.dtype)
        self.bases.add_(self.eta * (update - self.bases))
        self.bases.copy_(F.normalize(self.bases, dim=1))


class NMF2D(MatrixDecomposition2D):
    """NMF layer: X_hat = D C^T with D, C >= 0. Needs a non-negative input.

    Args:
      channels: C of the input; rank: r; steps: K in training; eval_steps: K in
        evaluation (default = steps); groups: S (channels split into S groups of
        d = C / S, each decomposed separately, like heads).
      grad: which part of the solver autograd sees (the forward is the same in
        every mode; the table is in `hamlib.grad.GradPlan`); None (default) picks
        the solver's `default_grad` (NMF: "bptt"); change it later with `set_grad`:
        "one-step" the paper's: only the final coefficient step; the bases are
          constants, so no gradient crosses between pixels;
        "one-step-bases" the last bases update too: the gradient reaches every
          pixel through D = f(XC); memory and time flat in K;
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

    torch.compile(module, fullgraph=True) works in training and evaluation in
    every gradient mode but "implicit" (its backward calls torch.autograd.grad,
    which Dynamo does not trace).

    The solver always runs in float32 or float64: a half-precision input (for
    example under autocast) is upcast, and the output is cast back. It runs on
    X / s, s a power of two near max(abs(X)) per matrix, so that the eps in the
    denominators is relative and no product overflows: every finite scale works.
    VQ and CD are scale-equivariant (X -> aX gives X_hat -> a X_hat); NMF is from
    its starting point on, but that start, softmax(X^T D), reads X itself (as the
    reference), so NMF's relative result depends on the input's scale.
    """

    kind = "nmf"
    default_grad = "bptt"
    default_inv_t = None  # NMF has no softmax temperature: an inv_t given to NMF2D raises


class VQ2D(MatrixDecomposition2D):
    """Soft vector quantisation layer (cosine k-means, inverse temperature inv_t).

    Arguments as NMF2D, plus inv_t (t in softmax(t * cos)). The final step holds the
    positions' norms constant for autograd, as the reference (see `hamlib.solvers.vq_final`).

    Defaults: inv_t = 20 (the reference uses 100: pass inv_t=100 for it) and a gradient
    truncated through the last 2 steps (grad=2). At t = 100 the assignments on signed
    features are nearly one-hot, so a pixel reads only its own cluster's centroid; at t = 20
    they stay soft. BPTT is unstable through the sharp softmax and the implicit mode's
    Neumann series diverges.
    """

    kind = "vq"
    default_grad = 2
    default_inv_t = 20.0


class CD2D(MatrixDecomposition2D):
    """Concept-decomposition layer: spherical k-means bases, ridge coefficients.

    Arguments as NMF2D, plus inv_t (default 100, the reference's) and beta (ridge, > 0,
    default 0.1). Default gradient "one-step-bases"; the implicit mode's Neumann series
    diverges for CD.
    """

    kind = "cd"
    default_grad = "one-step-bases"
    default_inv_t = 100.0


SOLVERS = {"nmf": NMF2D, "vq": VQ2D, "cd": CD2D}
