"""What a block does to its input, measured: Jacobians, spectral radii, Neumann sums, affinities.

Notebooks and tests use these to check claims about the gradient modes and about what a
context block reads; nothing here draws.

- `pixel_jacobian(module, x, row, col)`: ||d y_i / d x_j||_F for one query pixel i and every
  pixel j: which pixels the backward pass lets influence pixel i; `cross_pixel_max` its
  largest entry away from i.
- `context_influence(model, image, row, col)`: the same for a segmentation model's context
  block, on the feature grid, measured with the true (BPTT) Jacobian.
- `step_jacobian_radius(kind, X)`: the spectral radius of one solver step's Jacobian, which
  decides whether the implicit mode's Neumann series converges; `neumann_partial_norms` the
  norms of that series' partial sums.
- `nmf_scaling_check(X)`: NMF's fixed points come in families (D Lambda, C Lambda^-1); the
  step's Jacobian has eigenvalue 1 along that direction, and only D C^T is determined.
- `nmf_affinity(X)`: the N x N affinity P = C (C^T C)^+ C^T that NMF's coefficients imply.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from .md import MatrixDecomposition2D, nmf, random_bases
from .solvers import make_solver


def pixel_jacobian(module, x, row, col):
    """||d y_i / d x_j||_F for the query pixel i = (row, col) and every pixel j.

    module maps (1, C, H, W) -> (1, C', H, W); the Jacobian block between two pixels
    is C' x C, so C' backward passes give the whole map. Returns (H, W) float64.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"pixel_jacobian expects one image (1, C, H, W), got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    if not (0 <= row < H and 0 <= col < W):
        raise ValueError(f"query pixel ({row}, {col}) lies outside the {H} x {W} map")
    x = x.detach().double().requires_grad_(True)
    module = copy.deepcopy(module).double()         # float64: tiny entries stay distinguishable from 0
    y_i = module(x)[0, :, row, col]                 # (C',)
    sq = torch.zeros(H, W, dtype=torch.float64)
    for o in range(y_i.shape[0]):
        (g,) = torch.autograd.grad(y_i[o], x, retain_graph=o + 1 < y_i.shape[0])  # (1, C, H, W)
        sq += g[0].pow(2).sum(0)
    return sq.sqrt()


def cross_pixel_max(J, row, col):
    """The largest entry of a pixel_jacobian map away from the query pixel itself."""
    J = J.clone()
    J[row, col] = 0
    return J.max().item()


def _solver_state(kind, X, rank, steps, seed, **solver_kw):
    """(solver, D, Ct, generator): one solver on X (d, N) in float64, after `steps` steps from
    seeded random bases (no gradient). The generator continues the seeded stream."""
    if X.dim() != 2:
        raise ValueError(f"expected one matrix X (d, N), got shape {tuple(X.shape)}")
    X = X.detach().double()[None]                            # (d, N) -> (1, d, N)
    solver = make_solver(kind, X, **solver_kw)
    g = torch.Generator().manual_seed(seed)
    D = random_bases(kind, (1, X.shape[1], rank), generator=g, dtype=torch.float64)
    with torch.no_grad():
        Ct = solver.init(D)
        for _ in range(steps):
            D, Ct = solver.step(D, Ct)
        Ct = solver.coef(D, None) if Ct is None else Ct      # VQ / CD's step does not read C
    return solver, D, Ct, g


def _norm(ts):
    return torch.sqrt(sum(t.square().sum() for t in ts))


def step_jacobian_radius(kind, X, rank=8, steps=5, iters=60, seed=0, **solver_kw):
    """Spectral radius of one solver step's Jacobian J = dT/ds at the state s after `steps`
    steps, by power iteration on J^T (vector-Jacobian products, float64).

    X is one matrix (d, N). The implicit mode sums K terms of (J^T)^i g: a radius above 1
    makes that sum grow like radius^K. Returns the geometric-mean growth per application
    over the second half of the iterations (robust to a complex dominant pair)."""
    solver, D, Ct, g = _solver_state(kind, X, rank, steps, seed, **solver_kw)
    s = (D.clone().requires_grad_(True), Ct.clone().requires_grad_(True))
    out = solver.step(*s)
    v = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in out]
    logs = []
    for _ in range(iters):
        n = _norm(v)
        logs.append(n.log().item())
        v = [t / n for t in v]
        Jv = torch.autograd.grad(out, s, v, retain_graph=True, allow_unused=True)
        v = [torch.zeros_like(a) if b is None else b for a, b in zip(s, Jv)]
    return float(np.exp(np.mean(logs[iters // 2:])))


def neumann_partial_norms(kind, X, rank=8, steps=5, terms=12, seed=0, **solver_kw):
    """||u_n|| for n = 0..terms, u_n = sum_{i<=n} (J^T)^i g: the partial sums of the Neumann series
    that `grad="implicit"` cuts after K terms, at the state after `steps` steps (float64).

    g is what a loss sends into the state: the gradient of <W, D C^T> (W random, seeded) through
    the final coefficient step, as in a Hamburger. The series converges for every g only when
    the spectral radius of J is below 1 (`step_jacobian_radius`)."""
    solver, D, Ct, gen = _solver_state(kind, X, rank, steps, seed, **solver_kw)
    s = (D.clone().requires_grad_(True), Ct.clone().requires_grad_(True))
    out = solver.step(*s)
    state = [t.detach().clone().requires_grad_(True) for t in out]
    W = torch.randn(state[0].shape[1], Ct.shape[2], generator=gen, dtype=torch.float64)
    loss = (W * (state[0] @ solver.final(*state))).sum()
    g = [torch.zeros_like(a) if b is None else b
         for a, b in zip(state, torch.autograd.grad(loss, state, allow_unused=True))]
    u, v, norms = list(g), list(g), [_norm(g).item()]
    for _ in range(terms):
        Jv = torch.autograd.grad(out, s, v, retain_graph=True, allow_unused=True)
        v = [torch.zeros_like(a) if b is None else b for a, b in zip(s, Jv)]
        u = [a + b for a, b in zip(u, v)]
        norms.append(_norm(u).item())
    return norms


def nmf_scaling_check(X, rank=8, steps=2000, seed=0):
    """NMF's scaling symmetry, measured at the state s = (D, C^T) after `steps` steps (float64).

    For a positive diagonal Lambda, the multiplicative step maps (D Lambda, Lambda^-1 C^T) to
    (D' Lambda, Lambda^-1 C'^T) (up to eps), and D C^T does not change. Differentiating in
    Lambda: J(s) xi(s) = xi(T(s)) along the direction xi(s) = (D diag(a), -diag(a) C^T); at a
    fixed point T(s) = s, so xi is an eigenvector of J with eigenvalue 1 and I - J is singular.

    Returns dict: step_change ||T(s) - s|| / ||s|| (how far from a fixed point),
    equivariance ||J xi(s) - xi(T(s))|| / ||xi|| (about 0 at any state),
    eigen ||J xi(s) - xi(s)|| / ||xi|| (about step_change: 0 at a fixed point),
    product_change and output_change: max relative change of D C^T and of the block's output
    D c^T (c the final coefficient step) when (D, C) -> (D Lambda, C Lambda^-1) for a random
    Lambda in [0.5, 2] (products: about 0; the factors D and C themselves change by up to 2x)."""
    solver, D, Ct, g = _solver_state("nmf", X, rank, steps, seed)
    a = torch.rand(rank, generator=g, dtype=torch.float64) + 0.5
    xi = lambda D, Ct: (D * a, -a[:, None] * Ct)                                        # noqa: E731
    with torch.no_grad():
        T = solver.step(D, Ct)
    _, Jxi = torch.autograd.functional.jvp(lambda D, Ct: solver.step(D, Ct), (D, Ct), xi(D, Ct))
    n = _norm(xi(D, Ct))
    lam = 0.5 * 4 ** torch.rand(rank, generator=g, dtype=torch.float64)                 # in [0.5, 2)
    D2, Ct2 = D * lam, Ct / lam[:, None]
    rel = lambda A, B: ((A - B).abs().max() / B.abs().max()).item()                      # noqa: E731
    return dict(step_change=(_norm([T[0] - D, T[1] - Ct]) / _norm([D, Ct])).item(),
                equivariance=(_norm([p - q for p, q in zip(Jxi, xi(*T))]) / n).item(),
                eigen=(_norm([p - q for p, q in zip(Jxi, xi(D, Ct))]) / n).item(),
                product_change=rel(D2 @ Ct2, D @ Ct),
                output_change=rel(D2 @ solver.final(D2, Ct2), D @ solver.final(D, Ct)),
                factor_change=rel(D2, D))


def nmf_affinity(X, rank=8, steps=6, seed=0):
    """Run NMF on one matrix X (d, N) and return the N x N affinities it implies.

    Returns dict(
      P = C (C^T C)^+ C^T: X P is the best reconstruction any bases give with NMF's C,
      gram = C C^T with rows summing to 1, D (d, r), C (N, r): NMF's K-step factors,
      D_star = X C (C^T C)^+: the least-squares bases for this C (any sign), X P = D_star C^T,
      D_nnls: the least-squares bases for this C under D >= 0 (scipy's NNLS, row by row),
      fit = ||X P - D C^T|| / ||D C^T||: how far NMF's output is from X P,
      fit_nnls = ||X P - D_nnls C^T|| / ||D_nnls C^T||: the same for the best non-negative
        bases, the least `fit` a bases update that keeps D >= 0 can reach at this C
        (0 only when D_star >= 0)).
    """
    from scipy.optimize import nnls as _nnls
    if X.dim() != 2:
        raise ValueError(f"nmf_affinity expects one matrix X (d, N), got shape {tuple(X.shape)}")
    X = X.double()
    g = torch.Generator().manual_seed(seed)
    D0 = random_bases("nmf", (1, X.shape[0], rank), generator=g, dtype=torch.float64)
    D, C = nmf(X[None], D0, steps=steps, final=True)
    D, C = D[0], C[0]                                                    # (d, r), (N, r)
    G_inv = torch.linalg.pinv(C.T @ C)                                   # (r, r)
    P = C @ G_inv @ C.T                                                  # (N, N)
    D_star = X @ C @ G_inv                                               # (d, r)
    Cn = C.numpy()
    D_nnls = torch.stack([torch.from_numpy(_nnls(Cn, row.numpy())[0]) for row in X])  # (d, r), >= 0
    gram = C @ C.T
    gram = gram / gram.sum(1, keepdim=True)

    def gap(B):
        X_hat = B @ C.T
        return (torch.linalg.norm(X @ P - X_hat) / torch.linalg.norm(X_hat)).item()

    return dict(P=P, gram=gram, D=D, C=C, D_star=D_star, D_nnls=D_nnls, fit=gap(D), fit_nnls=gap(D_nnls))


def context_influence(model, image, row, col):
    """How much each cell of the context block's input moves its output at the cell holding image
    pixel (row, col): ||d y_i / d x_j||_F over the feature grid (h, w), with the query cell's own
    entry set to 0 (the residual x_i dominates it). None for a head without context (identity).

    The block runs as in evaluation, but its solvers are switched to BPTT for the measurement:
    the forward pass is the same in every gradient mode, and only BPTT's Jacobian is the forward
    pass's true one (the one-step Jacobian has no cross-pixel entries by construction).
    """
    block = model.head.context
    if isinstance(block, torch.nn.Identity):
        return None
    block = copy.deepcopy(block).eval()
    for m in block.modules():
        if isinstance(m, MatrixDecomposition2D):
            m.set_grad("bptt")
    with torch.no_grad():
        x = model.head.squeeze(model.backbone(image[None])[-1])          # (1, C, h, w)
    h, w = x.shape[-2:]
    H, W = image.shape[-2:]
    r, c = min(row * h // H, h - 1), min(col * w // W, w - 1)
    J = pixel_jacobian(block, x, r, c)
    J[r, c] = 0
    return J
