"""The solvers against independent references, and the modules' contracts."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from sklearn.decomposition import NMF as SkNMF

import hamlib
from hamlib.measure import peak_tensor_memory
from hamlib.md import random_bases
from hamlib.solvers import nmf_coef_step


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- NMF -------


@pytest.mark.parametrize("steps", [1, 6, 20])
def test_nmf_matches_sklearn_mu(steps):
    B, d, N, r = 1, 12, 30, 4
    X = torch.rand(B, d, N, generator=gen(1))
    D0 = torch.rand(B, d, r, generator=gen(2))
    C0 = torch.rand(B, N, r, generator=gen(3))
    D, C = hamlib.nmf(X, D0, C0, steps=steps)
    # scikit-learn factorises X_s (n_samples x n_features) ~ W H; here X^T ~ C D^T: W = C, H = D^T
    sk = SkNMF(n_components=r, solver="mu", init="custom", beta_loss="frobenius", max_iter=steps, tol=0)
    W = sk.fit_transform(X[0].T.double().numpy(), W=C0[0].double().numpy().copy(), H=D0[0].T.double().numpy().copy())
    np.testing.assert_allclose(C[0].numpy(), W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(D[0].T.numpy(), sk.components_, rtol=1e-4, atol=1e-5)


def test_nmf_objective_never_increases():
    X = torch.rand(3, 20, 50, generator=gen(0), dtype=torch.float64)
    D = random_bases("nmf", (3, 20, 6), generator=gen(1)).double()
    D, C = hamlib.nmf(X, D, steps=0)
    errs = [torch.linalg.norm(X - D @ C.mT).item()]
    for _ in range(50):
        D, C = hamlib.nmf(X, D, C, steps=1)
        errs.append(torch.linalg.norm(X - D @ C.mT).item())
    diffs = np.diff(errs)
    assert (diffs <= 1e-12 * errs[0]).all(), f"objective rose: max step {diffs.max()}"
    assert errs[-1] < 0.8 * errs[0]  # and it really decreased


def test_nmf_final_is_one_more_coefficient_update():
    X = torch.rand(2, 8, 20, generator=gen(0))
    D0 = torch.rand(2, 8, 3, generator=gen(1))
    D, C = hamlib.nmf(X, D0, steps=4)
    Df, Cf = hamlib.nmf(X, D0, steps=4, final=True)
    torch.testing.assert_close(Df, D)
    torch.testing.assert_close(Cf.mT, nmf_coef_step(X, D, C.mT.clone()))


def test_functional_does_not_mutate_inputs():
    X = torch.rand(1, 8, 20, generator=gen(0))
    D0, C0 = torch.rand(1, 8, 3, generator=gen(1)), torch.rand(1, 20, 3, generator=gen(2))
    D0c, C0c = D0.clone(), C0.clone()
    with torch.no_grad():  # where the no-gradient loop may work in place
        hamlib.nmf(X, D0, C0, steps=3, final=True)
        hamlib.vq(X, D0, steps=3, final=True)
        hamlib.cd(X, D0, steps=3, final=True)
    assert torch.equal(D0, D0c) and torch.equal(C0, C0c)


# ------------------------------------------------ VQ and CD vs NumPy -------


def np_softmax(a, axis):
    a = a - a.max(axis=axis, keepdims=True)
    e = np.exp(a)
    return e / e.sum(axis=axis, keepdims=True)


def np_colnorm(A, eps):
    return A / np.maximum(np.linalg.norm(A, axis=0, keepdims=True), eps)


def np_vq(X, D, steps, t, final):
    """The paper's VQ iteration, written out, on one matrix X (d, N), D (d, r)."""
    Xn = np_colnorm(X, 1e-12)
    C = None
    for _ in range(steps):
        C = np_softmax(t * Xn.T @ np_colnorm(D, 1e-6), axis=1)   # (N, r)
        C = C / (C.sum(axis=0, keepdims=True) + 1e-6)            # columns sum to 1 over N
        D = X @ C
    if final:
        Xf = X / (np.linalg.norm(X, axis=0, keepdims=True) + 1e-6)
        C = np_softmax(t * Xf.T @ np_colnorm(D, 1e-6), axis=1)
    return D, C


def np_cd(X, D, steps, t, beta, final):
    Xn = np_colnorm(X, 1e-12)
    C = None
    for _ in range(steps):
        C = np_softmax(t * Xn.T @ D, axis=1)
        C = C / (C.sum(axis=0, keepdims=True) + 1e-6)
        D = np_colnorm(X @ C, 1e-6)
    if final:
        C = X.T @ D @ np.linalg.inv(D.T @ D + beta * np.eye(D.shape[1]))
    return D, C


@pytest.mark.parametrize("inv_t", [1.0, 20.0, 100.0])
@pytest.mark.parametrize("final", [False, True])
def test_vq_matches_numpy(inv_t, final):
    X = torch.randn(2, 10, 40, generator=gen(0), dtype=torch.float64)
    D0 = random_bases("vq", (2, 10, 5), generator=gen(1)).double()
    D, C = hamlib.vq(X, D0, steps=5, inv_t=inv_t, final=final)
    for b in range(2):
        Dr, Cr = np_vq(X[b].numpy(), D0[b].numpy(), 5, inv_t, final)
        np.testing.assert_allclose(D[b].numpy(), Dr, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(C[b].numpy(), Cr, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("inv_t", [1.0, 100.0])
@pytest.mark.parametrize("final", [False, True])
def test_cd_matches_numpy(inv_t, final):
    X = torch.randn(2, 10, 40, generator=gen(0), dtype=torch.float64)
    D0 = random_bases("cd", (2, 10, 5), generator=gen(1)).double()
    D, C = hamlib.cd(X, D0, steps=5, inv_t=inv_t, beta=0.1, final=final)
    for b in range(2):
        Dr, Cr = np_cd(X[b].numpy(), D0[b].numpy(), 5, inv_t, 0.1, final)
        np.testing.assert_allclose(D[b].numpy(), Dr, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(C[b].numpy(), Cr, rtol=1e-9, atol=1e-10)


def test_vq_float32_close_to_float64():
    X = torch.randn(1, 16, 64, generator=gen(0))
    D0 = random_bases("vq", (1, 16, 4), generator=gen(1))
    D32, C32 = hamlib.vq(X, D0, steps=6, final=True)
    D64, C64 = hamlib.vq(X.double(), D0.double(), steps=6, final=True)
    torch.testing.assert_close(C32.double(), C64, rtol=1e-3, atol=1e-4)


def test_cd_final_is_ridge_regression_solved_by_scipy():
    X = torch.randn(1, 12, 30, generator=gen(0), dtype=torch.float64)
    D0 = random_bases("cd", (1, 12, 4), generator=gen(1)).double()
    D, C = hamlib.cd(X, D0, steps=3, beta=0.1, final=True)
    Dn, Xn = D[0].numpy(), X[0].numpy()
    Ct = scipy.linalg.solve(Dn.T @ Dn + 0.1 * np.eye(4), Dn.T @ Xn, assume_a="pos")   # (r, N)
    np.testing.assert_allclose(C[0].numpy(), Ct.T, rtol=1e-10, atol=1e-12)


def test_functional_shape_errors():
    X, D = torch.rand(2, 8, 20), torch.rand(2, 8, 3)
    with pytest.raises(ValueError, match="disagree"):
        hamlib.nmf(X, torch.rand(2, 7, 3))
    with pytest.raises(ValueError, match=r"\(B, d, N\)"):
        hamlib.vq(X[0], D[0])
    with pytest.raises(ValueError, match=r"C must be \(B, N, r\)"):
        hamlib.nmf(X, D, torch.rand(2, 3, 20))
    with pytest.raises(ValueError, match="unknown solver"):
        hamlib.solvers.make_solver("pca", X)


# ---------------------------------------------------------------- modules ---

MODULES = [hamlib.NMF2D, hamlib.VQ2D, hamlib.CD2D]


def _temperature(cls, inv_t):
    """inv_t=... for the solvers that have a temperature (VQ, CD); nothing for NMF, which rejects it."""
    return {} if cls is hamlib.NMF2D else dict(inv_t=inv_t)


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("groups", [1, 4])
def test_module_shapes_and_token_layout(cls, groups):
    x = torch.rand(2, 16, 5, 7, generator=gen(0))
    m = cls(16, rank=3, groups=groups)
    assert m(x).shape == x.shape
    t = cls(16, rank=3, groups=groups, layout="bnc").eval()
    tokens = x.flatten(2).mT                              # (B, N, C)
    y = t(tokens)
    assert y.shape == tokens.shape
    # the token form is the map form on the same data
    torch.testing.assert_close(y, m.eval()(x).flatten(2).mT)


@pytest.mark.parametrize("cls", MODULES)
def test_eval_is_deterministic_and_independent_of_batch(cls):
    x = torch.rand(3, 8, 6, 6, generator=gen(0))
    m = cls(8, rank=4).eval()
    with torch.no_grad():
        a, b = m(x), m(x)
        single = m(x[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(single[0], a[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", MODULES)
def test_training_draws_fresh_random_bases(cls):
    x = torch.rand(1, 8, 6, 6, generator=gen(0))
    m = cls(8, rank=4).train()
    torch.manual_seed(0)
    a = m(x)
    b = m(x)
    torch.manual_seed(0)
    c = m(x)
    assert not torch.equal(a, b)   # random per forward, as the reference
    assert torch.equal(a, c)       # but reproducible under a seed


@pytest.mark.parametrize("cls", MODULES)
def test_learned_bases_buffer(cls, tmp_path):
    m = cls(8, rank=4, groups=2, bases="learned")
    assert m.bases.shape == (2, 4, 4) and "bases" in m.state_dict()
    before = m.bases.clone()
    x = torch.rand(2, 8, 5, 5, generator=gen(0))
    m.train()(x)
    assert not torch.equal(m.bases, before)                          # moving average in training
    torch.testing.assert_close(m.bases.norm(dim=1), torch.ones(2, 4))  # columns stay unit norm
    after = m.bases.clone()
    m.eval()(x)
    assert torch.equal(m.bases, after)                               # no update in eval
    torch.save(m.state_dict(), tmp_path / "m.pt")
    m2 = cls(8, rank=4, groups=2, bases="learned", eval_seed=123)
    m2.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert torch.equal(m2.bases, m.bases)
    with torch.no_grad():
        assert torch.equal(m2.eval()(x), m(x))
    m64 = m2.to(torch.float64)
    assert m64.bases.dtype == torch.float64
    assert m64(x.double()).dtype == torch.float64


@pytest.mark.parametrize("cls", MODULES)
def test_float64_and_half_precision(cls):
    x = torch.rand(1, 8, 4, 4, generator=gen(0))
    m = cls(8, rank=3).eval()
    y32 = m(x)
    y64 = m(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), y32, rtol=1e-4, atol=1e-5)
    # half precision in, half out; the solver ran in float32 (so it matches up to the final cast)
    y16 = m(x.to(torch.bfloat16))
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(y16.float(), m(x.to(torch.bfloat16).float()).to(torch.bfloat16).float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ya = m(x)
    assert ya.dtype == torch.float32 and torch.isfinite(ya).all()


def test_nmf_fp16_input_does_not_underflow():
    # values whose multiplicative updates underflow in float16 (products ~1e-9)
    x = 1e-3 * torch.rand(1, 8, 6, 6, generator=gen(0))
    m = hamlib.NMF2D(8, rank=3).eval()
    y = m(x.half()).float()
    ref = m(x.half().float())
    assert torch.isfinite(y).all() and y.abs().sum() > 0
    torch.testing.assert_close(y, ref, rtol=2e-3, atol=1e-7)


@pytest.mark.parametrize("cls", MODULES)
def test_bad_input_errors(cls):
    m = cls(8, rank=3)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        m(torch.rand(8, 4, 4))
    with pytest.raises(ValueError, match="built for 8 channels"):
        m(torch.rand(1, 6, 4, 4))
    with pytest.raises(ValueError, match="floating-point"):
        m(torch.ones(1, 8, 4, 4, dtype=torch.long))
    bad = torch.rand(1, 8, 4, 4)
    bad[0, 3, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        m(bad)
    bad[0, 3, 1, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        m(bad)
    with pytest.raises(ValueError, match="does not divide"):
        cls(8, groups=3)
    with pytest.raises(ValueError, match="grad must be"):
        cls(8, grad="sometimes")
    with pytest.raises(ValueError, match="bases must be"):
        cls(8, bases="pretrained")
    with pytest.raises(ValueError, match=r"\(B, N, C\)"):
        cls(8, layout="bnc")(torch.rand(1, 8, 4, 4))



@pytest.mark.parametrize("cls", MODULES)
def test_set_grad_checks_the_mode_and_changes_only_the_backward(cls):
    m = cls(8, rank=3, steps=3, grad="one-step").eval()
    assert isinstance(m, hamlib.md.MatrixDecomposition2D)
    x = torch.rand(1, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    m.double()
    y1 = m(x)
    (g1,) = torch.autograd.grad(y1[0, :, 0, 0].sum(), x)
    assert m.set_grad("bptt") is m and m.grad == "bptt"
    y2 = m(x)
    (g2,) = torch.autograd.grad(y2[0, :, 0, 0].sum(), x)
    assert torch.equal(y1, y2)                          # the forward is the same in every mode
    assert g1[0, :, 1:, 1:].abs().max() == 0 < g2[0, :, 1:, 1:].abs().max()  # one-step stays in the pixel
    with pytest.raises(ValueError, match="one-step.*'sometimes'"):
        m.set_grad("sometimes")
    assert m.grad == "bptt"                             # a refused mode leaves the module as it was


def test_canonical_grad_turns_written_modes_into_the_librarys_values():
    from hamlib.grad import GRAD_MODES, canonical_grad
    assert canonical_grad("2") == 2 and isinstance(canonical_grad("2"), int)
    assert canonical_grad(2) == 2 and canonical_grad(np.int64(3)) == 3 and canonical_grad("0") == 0
    for mode in GRAD_MODES:
        assert canonical_grad(mode) == mode
    for bad in ("sometimes", "-1", -1, True, 2.0, None, "BPTT", ""):
        with pytest.raises(ValueError, match="grad must be one of"):
            canonical_grad(bad)
    assert hamlib.NMF2D(8, grad="3").grad == 3           # the modules read written modes the same way

def test_nmf_rejects_negative_input():
    x = torch.rand(1, 8, 4, 4) - 0.5
    with pytest.raises(ValueError, match="non-negative"):
        hamlib.NMF2D(8)(x)
    hamlib.VQ2D(8)(x)  # VQ and CD take signed input
    hamlib.CD2D(8)(x)
    hamlib.NMF2D(8, validate=False)(x.relu())


# -------------------------------------------------------------- gradients ---


def test_one_step_gradient_is_the_final_step_alone():
    B, C, H, W, r, K = 2, 8, 4, 5, 3, 5
    x = torch.rand(B, C, H, W, generator=gen(0), requires_grad=True)
    m = hamlib.NMF2D(C, rank=r, steps=K, grad="one-step").eval()   # eval: known, seeded bases
    g = torch.randn(B, C, H, W, generator=gen(1))
    (gx,) = torch.autograd.grad((m(x) * g).sum(), x)
    # by hand: K steps without gradient, then one differentiated coefficient update
    X = x.reshape(B, C, H * W)
    D0 = random_bases("nmf", (1, C, r), generator=gen(0)).repeat(B, 1, 1)
    with torch.no_grad():
        D, Cc = hamlib.nmf(X, D0, steps=K)
    Ct = nmf_coef_step(X, D, Cc.mT.clone())
    (ref,) = torch.autograd.grad(((D @ Ct).reshape(B, C, H, W) * g).sum(), x)
    torch.testing.assert_close(gx, ref)


def _train_step_memory(steps, grad):
    m = hamlib.NMF2D(32, rank=8, steps=steps, grad=grad)
    x = torch.rand(1, 32, 16, 16, generator=gen(0))

    def step():
        xi = x.clone().requires_grad_(True)
        m(xi).sum().backward()

    return peak_tensor_memory(step)


def test_one_step_memory_does_not_grow_with_steps():
    m2, m24 = _train_step_memory(2, "one-step"), _train_step_memory(12, "one-step")
    assert m24 <= 1.05 * m2, (m2, m24)
    # the measure can see growth: back-propagation through the steps stores every step
    b2, b24 = _train_step_memory(2, "bptt"), _train_step_memory(12, "bptt")
    assert b24 > 2 * b2, (b2, b24)


def _gradcheck(cls, **kw):
    m = cls(4, rank=2, steps=3, grad="bptt", **kw).double().eval()
    x = (torch.rand(1, 4, 3, 3, generator=gen(0), dtype=torch.float64) + 0.2).requires_grad_(True)
    return torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_bptt_gradcheck_nmf():
    assert _gradcheck(hamlib.NMF2D)


def test_bptt_gradcheck_cd():
    assert _gradcheck(hamlib.CD2D, inv_t=1.0)


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("grad", ["one-step", "one-step-bases", 1, "implicit", "bptt"])
def test_only_the_papers_one_step_gradient_stays_inside_each_pixel(cls, grad):
    """d y_i / d x_j for i != j: exactly zero under the paper's one-step gradient (D is a
    constant for autograd), non-zero in every other mode, for every solver."""
    x = torch.rand(1, 6, 3, 3, generator=gen(0)) + 0.1
    m = cls(6, rank=2, steps=4, grad=grad, **_temperature(cls, 10.0)).double().eval()
    J = torch.autograd.functional.jacobian(m, x.double())   # (1, 6, 3, 3, 1, 6, 3, 3)
    J = J.reshape(6, 9, 6, 9).permute(1, 3, 0, 2)           # (pixel i, pixel j, c, c')
    cross = J[~torch.eye(9, dtype=torch.bool)].abs().max().item()
    if grad == "one-step":
        assert cross == 0.0
    else:
        assert cross > 1e-4, cross


@pytest.mark.parametrize("cls", MODULES)
def test_grad_modes_change_the_backward_not_the_forward(cls):
    x = torch.rand(2, 8, 4, 4, generator=gen(0), requires_grad=True)
    outs, grads = {}, {}
    for mode in ["one-step", "one-step-bases", 2, "implicit", "bptt"]:
        m = cls(8, rank=3, steps=4, grad=mode, **_temperature(cls, 10.0)).eval()
        y = m(x)
        outs[mode] = y.detach()
        (grads[mode],) = torch.autograd.grad(y.square().sum(), x)
    for mode in outs:
        assert torch.equal(outs[mode], outs["one-step"]), mode  # bit-identical: the same operations
    assert not torch.allclose(grads["one-step"], grads["bptt"])
    assert not torch.allclose(grads["one-step"], grads["one-step-bases"])
    assert not torch.allclose(grads["implicit"], grads["bptt"])


@pytest.mark.parametrize("grad", ["one-step-bases", "implicit", 2])
def test_memory_does_not_grow_with_steps(grad):
    m2, m12 = _train_step_memory(2, grad), _train_step_memory(12, grad)
    assert m12 <= 1.05 * m2, (m2, m12)


class _CountOps(TorchDispatchMode):
    """Counts the ATen operations that run: a deterministic measure of work."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def _backward_ops(steps, grad):
    m = hamlib.NMF2D(16, rank=4, steps=steps, grad=grad)
    x = torch.rand(1, 16, 8, 8, generator=gen(0), requires_grad=True)
    loss = m(x).sum()
    with _CountOps() as c:
        loss.backward()
    return c.n


@pytest.mark.parametrize("grad, grows", [("one-step", False), ("one-step-bases", False), (2, False),
                                         ("implicit", True), ("bptt", True)])
def test_backward_work_against_steps(grad, grows):
    """The time of a backward pass, counted in operations (the wall clock on a shared machine is
    too noisy to assert on): flat in K for the one-step and truncated modes, linear in K for BPTT
    and for the implicit mode (K Neumann terms, each one vector-Jacobian product of a step)."""
    n = {K: _backward_ops(K, grad) for K in (4, 8, 16)}
    if grows:
        assert n[4] < n[8] < n[16] and n[16] - n[8] == 2 * (n[8] - n[4]), n  # linear in K
    else:
        assert n[4] == n[8] == n[16], n


def _affine_solver(X, A, Bm, Q):
    """A stand-in solver whose step is affine in the state and in X: C' = C / 2 + D^T Q / 10 + X_r,
    D' = A D + Bm X_r (X_r the first r columns or rows of X). Its Jacobians are the same
    everywhere, so n Neumann terms at any point are exactly what back-propagation through
    n more steps gives."""
    from hamlib.solvers import Solver

    def coef(D, Ct, inplace=False):
        new = 0.1 * D.mT @ Q + X[:, :D.shape[-1], :]
        return new if Ct is None else 0.5 * Ct + new

    def bases(D, Ct, inplace=False):
        return A @ D + Bm @ X[..., :D.shape[-1]]

    return Solver(lambda D: coef(D, None), coef, bases, lambda D, Ct: Ct)


def test_implicit_gradient_is_the_neumann_series():
    from hamlib.grad import _implicit_step
    d, N, r, n = 5, 7, 3, 6
    A = 0.3 * torch.randn(d, d, generator=gen(1), dtype=torch.float64)
    Bm = torch.randn(d, d, generator=gen(2), dtype=torch.float64)
    X = torch.randn(1, d, N, generator=gen(3), dtype=torch.float64, requires_grad=True)
    D0 = torch.randn(1, d, r, generator=gen(4), dtype=torch.float64)
    C0 = torch.randn(1, r, N, generator=gen(5), dtype=torch.float64)
    gD = torch.randn(1, d, r, generator=gen(6), dtype=torch.float64)
    gC = torch.randn(1, r, N, generator=gen(7), dtype=torch.float64)
    Q = torch.randn(d, N, generator=gen(8), dtype=torch.float64)
    solver = _affine_solver(X, A, Bm, Q)
    D, Ct = _implicit_step(solver, D0, C0, terms=n)
    (g_implicit,) = torch.autograd.grad((D * gD).sum() + (Ct * gC).sum(), X)
    # reference: n + 1 steps, all differentiated, from a detached start: with a constant
    # Jacobian J, d s_{n+1} / dX = (I + J + ... + J^n) dT/dX
    D, Ct = D0, C0
    for _ in range(n + 1):
        D, Ct = solver.step(D, Ct)
    (g_bptt,) = torch.autograd.grad((D * gD).sum() + (Ct * gC).sum(), X)
    torch.testing.assert_close(g_implicit, g_bptt)
    # and the state itself is one plain step: the forward is untouched
    D1, C1 = solver.step(D0, C0)
    D, Ct = _implicit_step(solver, D0, C0, terms=n)
    torch.testing.assert_close((D, Ct), (D1, C1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", MODULES)
def test_cuda_matches_cpu(cls):
    x = torch.rand(2, 16, 8, 8, generator=gen(0))
    m = cls(16, rank=4).eval()
    y = m(x)
    yc = m.to("cuda")(x.to("cuda"))
    torch.testing.assert_close(yc.cpu(), y, rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.float16):
        yh = m(x.to("cuda"))
    assert torch.isfinite(yh).all()


def _input_grad(m, seed=0):
    x = torch.rand(1, 6, 3, 3, generator=gen(seed), dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 6, 3, 3, generator=gen(seed + 1), dtype=torch.float64)
    (g,) = torch.autograd.grad((m.double().eval()(x) * w).sum(), x)
    return g


@pytest.mark.parametrize("cls, default", [(hamlib.NMF2D, "bptt"), (hamlib.VQ2D, 2), (hamlib.CD2D, "one-step-bases")])
def test_each_solver_has_its_measured_default_gradient(cls, default):
    """grad=None trains like the documented default and unlike the paper's one-step."""
    kw = dict(rank=2, steps=4, **_temperature(cls, 10.0))
    g = _input_grad(cls(6, **kw))
    torch.testing.assert_close(g, _input_grad(cls(6, grad=default, **kw)), rtol=0, atol=0)
    assert not torch.allclose(g, _input_grad(cls(6, grad="one-step", **kw)))


def test_one_step_bases_without_steps_is_one_step():
    """With K = 0 there is no bases update to differentiate: the mode falls back to one-step."""
    x = torch.rand(1, 6, 3, 3, generator=gen(0), requires_grad=True)
    g = {}
    for grad in ("one-step", "one-step-bases"):
        (g[grad],) = torch.autograd.grad(hamlib.CD2D(6, rank=2, steps=0, grad=grad).eval()(x).sum(), x)
    torch.testing.assert_close(g["one-step"], g["one-step-bases"])


# ------------------------------------------------ gradient plans, purity ---


def test_public_steps_are_pure_whatever_the_grad_mode():
    X = torch.rand(2, 8, 20, generator=gen(0))
    D, Ct = torch.rand(2, 8, 3, generator=gen(1)), torch.rand(2, 3, 20, generator=gen(2))
    D0, Ct0 = D.clone(), Ct.clone()
    with torch.no_grad():
        nmf_coef_step(X, D, Ct)
        hamlib.solvers.nmf_bases_step(X, D, Ct)
        solver = hamlib.solvers.make_solver("nmf", X)
        solver.step(D, Ct)
    assert torch.equal(D, D0) and torch.equal(Ct, Ct0)
    # the no-gradient loop's in-place path gives the same numbers
    with torch.no_grad():
        torch.testing.assert_close(solver.step(D.clone(), Ct.clone(), inplace=True), solver.step(D, Ct),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("grad", ["one-step", 0, "one-step-bases", "implicit"])
def test_without_steps_the_initial_softmax_is_not_differentiated(grad):
    """K = 0: the module's gradient is the final coefficient update's alone, the initial
    C = softmax(X^T D) a constant (the reference computes it without gradient)."""
    B, C, H, W, r = 1, 6, 3, 3, 2
    x = torch.rand(B, C, H, W, generator=gen(0), dtype=torch.float64, requires_grad=True)
    w = torch.randn(B, C, H, W, generator=gen(1), dtype=torch.float64)
    m = hamlib.NMF2D(C, rank=r, steps=0, grad=grad).double().eval()
    (g,) = torch.autograd.grad((m(x) * w).sum(), x)
    X = x.reshape(B, C, H * W)
    D = m.eval_bases.double()
    with torch.no_grad():
        Ct0 = hamlib.solvers.nmf_init_coef(X, D)
    (ref,) = torch.autograd.grad(((D @ nmf_coef_step(X, D, Ct0)).reshape(x.shape) * w).sum(), x)
    torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-7)
    # BPTT does differentiate it, and that is a different gradient
    (gb,) = torch.autograd.grad((hamlib.NMF2D(C, rank=r, steps=0, grad="bptt").double().eval()(x) * w).sum(), x)
    assert not torch.allclose(gb, ref)


def test_vq_bptt_is_the_derivative_with_the_final_norms_constant():
    """VQ's final step holds 1/(||x_n|| + eps) constant for autograd (the reference's x.detach()).
    The module's BPTT gradient equals that of a hand-written BPTT in which the factor is passed
    in as a constant, and gradcheck confirms the latter is the numerical derivative."""
    K, r, t = 3, 2, 5.0
    x0 = torch.rand(1, 4, 3, 3, generator=gen(0), dtype=torch.float64) + 0.2
    m = hamlib.VQ2D(4, rank=r, steps=K, grad="bptt", inv_t=t).double().eval()
    D0 = m.eval_bases.double()
    x_scale = 1.0 / (x0.reshape(1, 4, 9).norm(dim=1, keepdim=True) + hamlib.solvers.EPS)   # a constant from here on

    def by_hand(x):
        X = x.reshape(1, 4, 9)
        D, _ = hamlib.vq(X, D0, steps=K, inv_t=t)
        Ct = hamlib.solvers.vq_final(X, D, inv_t=t, x_scale=x_scale)
        return (D @ Ct).reshape(x.shape)

    assert torch.autograd.gradcheck(by_hand, (x0.clone().requires_grad_(True),), eps=1e-6, atol=1e-6, rtol=1e-4)
    w = torch.randn(x0.shape, generator=gen(1), dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((m(x) * w).sum(), x)
    (ref,) = torch.autograd.grad((by_hand(x) * w).sum(), x)
    torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(m(x0), by_hand(x0), rtol=1e-5, atol=1e-7)


def test_eval_steps_is_the_step_count_in_evaluation():
    x = torch.rand(1, 8, 5, 5, generator=gen(0), dtype=torch.float64)
    m = hamlib.NMF2D(8, rank=3, steps=1, eval_steps=6).double()
    X = x.reshape(1, 8, 25)
    D, C = hamlib.nmf(X, m.eval_bases.double(), steps=6, final=True)
    with torch.no_grad():
        # the module solves X / s, s a power of two: equal up to where eps = 1e-6 enters
        torch.testing.assert_close(m.eval()(x), (D @ C.mT).reshape(x.shape), rtol=1e-5, atol=1e-7)
        D1, C1 = hamlib.nmf(X, m.eval_bases.double(), steps=1, final=True)
        assert not torch.allclose(m(x), (D1 @ C1.mT).reshape(x.shape))


# ------------------------------------------------------------ spatial ------


@pytest.mark.parametrize("kind", ["nmf", "vq", "cd"])
@pytest.mark.parametrize("groups", [1, 2])
def test_spatial_false_decomposes_the_transposed_matrix(kind, groups):
    """spatial=False: (B, C, H, W) -> (B*S, C/S, HW) -> transposed (B*S, HW, C/S), features = positions."""
    B, C, H, W, r = 2, 8, 3, 4, 3
    x = torch.rand(B, C, H, W, generator=gen(0), dtype=torch.float64)
    m = hamlib.md.SOLVERS[kind](C, rank=r, steps=3, groups=groups, spatial=False,
                                 **_temperature(hamlib.md.SOLVERS[kind], 10.0)).double().eval()
    y = m(x)
    Xt = x.reshape(B * groups, C // groups, H * W).mT                       # (B*S, HW, C/S)
    D0 = hamlib.md._hashed_bases(kind, (groups, H * W, r), 0).double().repeat(B, 1, 1)
    solve = {"nmf": hamlib.nmf, "vq": lambda X, D, **k: hamlib.vq(X, D, inv_t=10.0, **k),
             "cd": lambda X, D, **k: hamlib.cd(X, D, inv_t=10.0, **k)}[kind]
    D, Cc = solve(Xt, D0, steps=3, final=True)
    torch.testing.assert_close(y, (D @ Cc.mT).mT.reshape(x.shape), rtol=1e-5, atol=1e-7)
    assert torch.equal(m(x), y)                                              # deterministic eval
    with pytest.raises(ValueError, match="spatial=True"):
        hamlib.md.SOLVERS[kind](C, bases="learned", spatial=False)


def test_hashed_bases_are_deterministic_and_spread():
    a = hamlib.md._hashed_bases("nmf", (2, 50, 4), seed=0)
    assert torch.equal(a, hamlib.md._hashed_bases("nmf", (2, 50, 4), seed=0))
    assert not torch.allclose(a, hamlib.md._hashed_bases("nmf", (2, 50, 4), seed=1))
    torch.testing.assert_close(a.norm(dim=1), torch.ones(2, 4))
    z = hamlib.md._hashed_bases("vq", (1, 4000, 2), seed=3) * 4000 ** 0.5    # ~ N(0, 1) entries
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1 and (z < 0).any()
    u = hamlib.md._hashed_bases("nmf", (1, 4000, 1), seed=3)
    assert (u >= 0).all()


def test_eval_bases_are_a_non_persistent_buffer():
    m = hamlib.VQ2D(8, rank=3, groups=2, eval_seed=5)
    g = torch.Generator().manual_seed(5)
    assert torch.equal(m.eval_bases, random_bases("vq", (2, 4, 3), generator=g))  # the generator's draw
    assert "eval_bases" not in m.state_dict()
    assert m.double().eval_bases.dtype == torch.float64


# ------------------------------------------------- inputs (issue 12) -------


@pytest.mark.parametrize("kw, match", [
    (dict(groups=0), "groups"), (dict(groups=-2), "groups"), (dict(groups=1.5), "groups"),
    (dict(rank=0), "rank"), (dict(rank=-1), "rank"),
    (dict(steps=-3), "steps"), (dict(steps=2.5), "steps"), (dict(eval_steps=-1), "eval_steps"),
    (dict(grad=True), "grad"), (dict(grad=-1), "grad"), (dict(grad=1.0), "grad"),
    (dict(inv_t=0.0), "inv_t"), (dict(eta=2.0), "eta")])
@pytest.mark.parametrize("cls", MODULES)
def test_bad_arguments_name_the_argument(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls(8, **kw)


@pytest.mark.parametrize("beta", [0.0, -0.1])
def test_cd_needs_a_positive_ridge(beta):
    with pytest.raises(ValueError, match="beta"):
        hamlib.CD2D(4, rank=8, beta=beta)                 # rank > d with beta = 0: D^T D singular
    with pytest.raises(ValueError, match="beta"):
        hamlib.cd(torch.rand(1, 4, 9), torch.rand(1, 4, 8), beta=beta, final=True)


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("shape", [(0, 8, 4, 4), (2, 8, 0, 4)])
@pytest.mark.parametrize("validate", [True, False])
def test_empty_input_gives_an_empty_output(cls, shape, validate):
    x = torch.rand(shape, requires_grad=True)
    for train in (True, False):
        y = cls(8, rank=3, validate=validate).train(train)(x)
        assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("cls", [hamlib.VQ2D, hamlib.CD2D])
@pytest.mark.parametrize("scale", [1e20, 1e-5, 1e-20])
@pytest.mark.parametrize("spatial", [True, False])
def test_vq_and_cd_results_scale_with_the_input(cls, scale, spatial):
    """X -> aX gives X_hat -> a X_hat at any finite float32 scale (the solve runs on X / s)."""
    x = torch.rand(2, 8, 5, 5, generator=gen(0)) - 0.5
    m = cls(8, rank=3, spatial=spatial).eval()
    xs = (x.double() * scale).float()
    y, ys = m(x), m(xs)
    torch.testing.assert_close(ys.double() / scale, y.double(), rtol=1e-4, atol=1e-5 * y.abs().max().item())
    for xi in (x, xs):
        xi.requires_grad_(True)
    (g,) = torch.autograd.grad(m(x).sum(), x)
    (gs,) = torch.autograd.grad(m(xs).sum(), xs)
    torch.testing.assert_close(gs, g, rtol=1e-3, atol=1e-4 * g.abs().max().item())


@pytest.mark.parametrize("scale", [1e20, 1e-5, 1e-30])
def test_nmf_at_any_scale_is_the_exact_solve_from_its_initial_softmax(scale):
    """NMF's initial C = softmax(X^T D) reads X itself (as the reference), so X -> aX changes the
    start; from there the solve is scale-equivariant. Reference: float64, on X / a (where eps is
    negligible), from the softmax of the scaled input, times a."""
    x = torch.rand(2, 8, 5, 5, generator=gen(0))
    m = hamlib.NMF2D(8, rank=3, steps=4).eval()
    xs = (x.double() * scale).float()
    ys = m(xs)
    X = xs.double().reshape(2, 8, 25)
    D0 = m.eval_bases.double().repeat(2, 1, 1)
    C0 = hamlib.solvers.nmf_init_coef(X, D0).mT
    D, C = hamlib.nmf(X / scale, D0, C0, steps=4, final=True)
    ref = (D @ C.mT).reshape(x.shape) * scale
    torch.testing.assert_close(ys.double(), ref, rtol=1e-4, atol=1e-5 * ref.abs().max().item())
    xs.requires_grad_(True)
    (gs,) = torch.autograd.grad(m(xs).sum(), xs)
    assert torch.isfinite(gs).all() and gs.abs().max() > 0


def test_vq_default_temperature_is_20_and_cd_keeps_the_references_100():
    """inv_t=None is the solver's measured default: VQ2D's output equals an explicit inv_t=20 and
    differs from the reference's 100; CD2D's equals 100 (README, "Choosing the gradient")."""
    x = torch.rand(2, 8, 6, 6, generator=gen(3)) - 0.5
    for cls, default, other in ((hamlib.VQ2D, 20.0, 100.0), (hamlib.CD2D, 100.0, 20.0)):
        y = cls(8, rank=3).eval()(x)
        torch.testing.assert_close(y, cls(8, rank=3, inv_t=default).eval()(x), rtol=0, atol=0)
        assert not torch.allclose(y, cls(8, rank=3, inv_t=other).eval()(x), atol=1e-4)
    for bad in (0, -1.0, True, "20"):
        with pytest.raises(ValueError, match="inv_t"):
            hamlib.VQ2D(8, rank=3, inv_t=bad)


@pytest.mark.parametrize("inv_t", [0.5, 20.0, 100.0, 1])
def test_nmf_rejects_a_temperature_it_would_not_use(inv_t):
    """NMF has no softmax temperature. NMF2D used to accept and validate inv_t and never read it
    (any value gave the same output, notebook 10's "dead setting"); now an inv_t given to NMF,
    directly or through a Hamburger, raises a ValueError naming it, and VQ and CD still take it."""
    with pytest.raises(ValueError, match="inv_t is the temperature of VQ and CD; NMF has none"):
        hamlib.NMF2D(8, rank=3, inv_t=inv_t)
    with pytest.raises(ValueError, match="inv_t"):
        hamlib.Hamburger(8, ham="nmf", rank=3, inv_t=inv_t)
    m = hamlib.NMF2D(8, rank=3)                                  # no inv_t: builds, and has none
    assert m.inv_t is None
    assert m(torch.rand(1, 8, 4, 4, generator=gen(0))).shape == (1, 8, 4, 4)
    for cls in (hamlib.VQ2D, hamlib.CD2D):
        assert cls(8, rank=3, inv_t=inv_t).inv_t == inv_t
    assert hamlib.Hamburger(8, ham="vq", rank=3, inv_t=inv_t).ham.inv_t == inv_t


@pytest.mark.parametrize("kind", ["nmf", "vq", "cd"])
@pytest.mark.parametrize("grad", ["one-step", "one-step-bases", 1, 2, "bptt"])
def test_each_gradient_mode_differentiates_what_its_plan_table_says(kind, grad):
    """The module's input gradient equals a loop written from GradPlan's table: the first steps
    without gradient, the last k with it (one-step-bases: only the last bases update; bptt: the
    initial coefficients too), then the final step. A plan tracking one step too many or too few
    fails here."""
    K, B, C, H, W = 4, 2, 6, 4, 5
    x = torch.rand(B, C, H, W, generator=gen(7), dtype=torch.float64) - (0.0 if kind == "nmf" else 0.5)
    x = x / x.abs().amax() * 1.5                 # max |X| in [1, 2): the solve's scale s is exactly 1
    w = torch.randn(x.shape, generator=gen(8), dtype=torch.float64)
    m = hamlib.md.SOLVERS[kind](C, rank=3, steps=K, grad=grad, validate=False).double().eval()
    xg = x.clone().requires_grad_(True)
    (g_module,) = torch.autograd.grad((m(xg) * w).sum(), xg)

    X = x.clone().requires_grad_(True)
    solver = hamlib.solvers.make_solver(kind, X.reshape(B, C, H * W), m.inv_t, m.beta)
    D = m.eval_bases.repeat(B, 1, 1)             # (S, d, r) -> (B*S, d, r)
    k = {"one-step": 0, "one-step-bases": 0, "bptt": K}.get(grad, grad)
    with torch.no_grad():
        Ct = None if grad == "bptt" else solver.init(D)
        for _ in range(K - k - (grad == "one-step-bases")):
            D, Ct = solver.step(D, Ct)
        if grad == "one-step-bases":
            Ct = solver.coef(D, Ct)
    if grad == "bptt":
        Ct = solver.init(D)
    if grad == "one-step-bases":
        D = solver.bases(D, Ct)
    for _ in range(k):
        D, Ct = solver.step(D, Ct)
    out = torch.bmm(D, solver.final(D, Ct)).reshape(x.shape)
    (g_hand,) = torch.autograd.grad((out * w).sum(), X)
    torch.testing.assert_close(g_module, g_hand, rtol=1e-10, atol=1e-12)
