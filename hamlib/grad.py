"""Gradient modes: which part of a matrix decomposition's K steps autograd sees.

The forward pass of `hamlib.NMF2D` / `VQ2D` / `CD2D` is the same in every mode; `grad_plan`
turns the mode (`grad=`) and K into a `GradPlan` that the modules' one straight loop runs
(`hamlib.md.MatrixDecomposition2D._solve`), and `_implicit_step` is the one mode that needs its own backward.
Nothing here knows a particular solver: a solver is anything with `step(D, Ct)` and `coef(D, Ct)`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch


# ----------------------------------------------------------------------------
# The implicit gradient: differentiate the fixed point, not the loop
# ----------------------------------------------------------------------------
# If the state s = (D, C) were a fixed point s* = T(s*, X), the implicit function
# theorem gives  ds*/dX = (I - J)^-1 dT/dX,  J = dT/ds at s*.  The Neumann series
# (I - J)^-1 = I + J + J^2 + ...  cut after n terms is what back-propagating
# through the last n steps computes when every step sits at s*; here the n
# products with J^T are taken in the backward pass at one point, so memory is
# that of one step whatever n is (Bai et al. 2019; Geng et al. 2021's "phantom
# gradients" analyse this family, the paper's one-step gradient being n = 0).


class _Neumann(torch.autograd.Function):
    """Identity on the state (D, Ct) in the forward. Backward: g -> u = sum_{i<=n} (J^T)^i g,
    J the Jacobian of one solver step at s_prev (X held fixed), by n vector-Jacobian products."""

    @staticmethod
    def forward(ctx, step, terms, D_prev, Ct_prev, D, Ct):
        ctx.step, ctx.terms = step, terms
        ctx.save_for_backward(D_prev, Ct_prev)
        return D.view_as(D), Ct.view_as(Ct)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gD, gCt):
        D_prev, Ct_prev = ctx.saved_tensors
        gD = torch.zeros_like(D_prev) if gD is None else gD
        gCt = torch.zeros_like(Ct_prev) if gCt is None else gCt
        with torch.enable_grad():
            s = (D_prev.detach().requires_grad_(), Ct_prev.detach().requires_grad_())
            out = ctx.step(*s)
            uD, uCt = gD, gCt
            for i in range(ctx.terms):
                JD, JCt = torch.autograd.grad(out, s, (uD, uCt), retain_graph=i + 1 < ctx.terms,
                                              allow_unused=True)
                uD = gD if JD is None else gD + JD
                uCt = gCt if JCt is None else gCt + JCt
        return None, None, None, None, uD, uCt


def _implicit_step(solver, D, Ct, terms):
    """One solver step from the (detached) state (D, Ct), differentiable in X, whose
    gradient is then corrected by `terms` Neumann terms of the step's Jacobian."""
    if Ct is None:  # VQ / CD before any step: their coefficient update does not read C
        with torch.no_grad():
            Ct = solver.coef(D, None)
    D, Ct = D.detach(), Ct.detach()
    D1, Ct1 = solver.step(D, Ct)  # (B, d, r), (B, r, N): differentiable in X only
    return _Neumann.apply(solver.step, terms, D, Ct, D1, Ct1)


# ----------------------------------------------------------------------------
# Gradient modes: which part of the K steps autograd sees
# ----------------------------------------------------------------------------

GRAD_MODES = ("one-step", "one-step-bases", "implicit", "bptt")


def canonical_grad(mode):
    """The library's value of a written gradient mode: a name of GRAD_MODES as is, a number of
    steps k >= 0 (an int, or its digits as a string: "2" -> 2) as an int. ValueError otherwise."""
    if isinstance(mode, str) and mode.isdigit():
        return int(mode)
    if isinstance(mode, numbers.Integral) and not isinstance(mode, bool) and mode >= 0:
        return int(mode)
    if isinstance(mode, str) and mode in GRAD_MODES:
        return mode
    raise ValueError(f"grad must be one of {GRAD_MODES} or a number of steps to differentiate "
                     f"(an int >= 0, or its digits), got {mode!r}")


@dataclass(frozen=True)
class GradPlan:
    """How `hamlib.md.MatrixDecomposition2D._solve` runs K steps and the final coefficient step (always differentiated):

      without gradient: the initial coefficients (unless `differentiate_init`), `free`
        steps in place, and with `split_last` the last step's coefficient update;
      with gradient: the initial coefficients (NMF's softmax) if `differentiate_init`,
        the last step's bases update if `split_last`, one step whose gradient is
        corrected by `neumann` Neumann terms if `neumann` > 0, then `tracked` steps.

    grad              free  tracked  split  neumann  init  autograd sees     memory  backward
    "one-step"        K     0        -      0        -     the final step    flat    flat
    "one-step-bases"  K-1   0        yes    0        -     + last bases      flat    flat
    int 0 < k < K     K-k   k        -      0        -     + last k steps    ~ k     ~ k
    "implicit"        K-1   0        -      K        -     + last step, IFT  flat    ~ K
    "bptt", k >= K    0     K        -      0        yes   everything        ~ K     ~ K

    With K = 0, "one-step-bases", "implicit" and k = 0 are "one-step". With gradients off
    (torch.no_grad, or an input that needs no gradient) every step runs free.
    """

    free: int
    tracked: int = 0
    split_last: bool = False
    neumann: int = 0
    differentiate_init: bool = False


def grad_plan(grad, K, differentiate=True) -> GradPlan:
    """The plan of gradient mode `grad` for K steps (see `GradPlan`)."""
    if not differentiate or grad == "one-step" or grad == 0:
        return GradPlan(free=K)
    if grad in ("one-step-bases", "implicit") and K == 0:
        return GradPlan(free=0)
    if grad == "one-step-bases":
        return GradPlan(free=K - 1, split_last=True)
    if grad == "implicit":
        return GradPlan(free=K - 1, neumann=K)
    if grad == "bptt" or grad >= K:
        return GradPlan(free=0, tracked=K, differentiate_init=True)
    return GradPlan(free=K - grad, tracked=grad)
