"""course.gradients and the hamlib.analysis measurements it draws (Jacobians, cost against K, radii)."""

import pytest
import torch

from hamlib import analysis

import hamlib
from notebooks.course import gradients


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: threads only add overhead


def test_one_step_memory_flat_in_K_bptt_grows():
    rows = gradients.gradient_vs_K(Ks=(2, 5), modes=("one-step", "bptt", 1), shape=(1, 8, 6, 6), rank=3, repeats=1)
    mem = {(r["mode"], r["K"]): r["memory_mb"] for r in rows}
    assert mem[("one-step", 2)] == mem[("one-step", 5)]
    assert mem[("1", 2)] == mem[("1", 5)]                 # truncated to the last step: flat too
    assert mem[("bptt", 5)] > mem[("bptt", 2)] > mem[("1", 2)] > mem[("one-step", 2)]
    assert all(r["grad_norm"] > 0 and r["backward_ms"] >= 0 for r in rows)
    fig = gradients.draw_gradient_vs_K(rows)
    assert len(fig.axes) == 3


def test_bptt_memory_is_linear_in_K_and_drawn_on_a_linear_axis():
    # a log-K axis made "linear in K" look exponential (issue 24): the axis is linear, and the cost is
    Ks = (1, 2, 3, 5, 8)
    rows = gradients.gradient_vs_K(Ks=Ks, modes=("bptt",), shape=(1, 8, 6, 6), rank=3, repeats=1)
    mem = [r["memory_mb"] for r in rows]
    slopes = [(b - a) / (kb - ka) for a, b, ka, kb in zip(mem, mem[1:], Ks, Ks[1:])]
    assert max(slopes) - min(slopes) <= 1e-3 * max(slopes), slopes
    fig = gradients.draw_gradient_vs_K(rows)
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)


@pytest.mark.parametrize("grad,crosses", [("one-step", False), ("one-step-bases", True), (2, True), ("bptt", True)])
def test_cross_pixel_jacobian_zero_only_for_one_step(grad, crosses):
    torch.manual_seed(0)
    x = torch.rand(1, 6, 5, 5)
    J = analysis.pixel_jacobian(hamlib.NMF2D(6, rank=3, steps=3, grad=grad).eval(), x, 2, 3)
    assert J.shape == (5, 5) and J[2, 3] > 0
    assert (analysis.cross_pixel_max(J, 2, 3) > 0) == crosses
    if not crosses:
        assert analysis.cross_pixel_max(J, 2, 3) == 0.0  # exactly, not approximately


def test_pixel_jacobian_of_a_conv_is_its_footprint():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    J = analysis.pixel_jacobian(conv, torch.rand(1, 2, 7, 7), 3, 3)
    assert ((J > 0) == torch.zeros(7, 7, dtype=torch.bool).index_fill_(0, torch.arange(2, 5), True)
            .logical_and(torch.zeros(7, 7, dtype=torch.bool).index_fill_(1, torch.arange(2, 5), True))).all()
    assert conv.weight.dtype == torch.float32  # the caller's module is left as it was


def test_pixel_jacobian_bad_input():
    m = torch.nn.Identity()
    with pytest.raises(ValueError, match="outside"):
        analysis.pixel_jacobian(m, torch.rand(1, 2, 4, 4), 4, 0)
    with pytest.raises(ValueError, match="one image"):
        analysis.pixel_jacobian(m, torch.rand(2, 2, 4, 4), 0, 0)


def test_draw_jacobians_panels():
    fig = gradients.draw_jacobians({"a": torch.rand(4, 4), "b": torch.zeros(4, 4)}, 1, 2, rgb=torch.rand(4, 4, 3).numpy())
    assert len(fig.axes) == 4                                          # image, two maps, one colour bar
    assert fig.axes[-1].get_label() == "<colorbar>" and fig.axes[-1].get_ylabel().startswith("log10")


@pytest.mark.parametrize("kind", ["nmf", "cd"])
def test_step_jacobian_radius_matches_the_eigenvalues(kind):
    """The power-iteration estimate against the eigenvalues of the whole step Jacobian."""
    from hamlib.md import make_solver, random_bases
    X = torch.rand(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1
    est = analysis.step_jacobian_radius(kind, X, rank=2, steps=3, iters=400, inv_t=5.0)
    # the same state, built by hand; the step as one map on the flattened (D, Ct)
    solver = make_solver(kind, X[None], inv_t=5.0)
    D = random_bases(kind, (1, 5, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        Ct = solver.init(D)
        for _ in range(3):
            D, Ct = solver.step(D, Ct)
        Ct = solver.coef(D, None) if Ct is None else Ct

    def T(z):
        D1, C1 = solver.step(z[:10].reshape(1, 5, 2), z[10:].reshape(1, 2, 7))
        return torch.cat([D1.reshape(-1), C1.reshape(-1)])

    J = torch.autograd.functional.jacobian(T, torch.cat([D.reshape(-1), Ct.reshape(-1)]))
    exact = torch.linalg.eigvals(J).abs().max().item()
    assert est == pytest.approx(exact, rel=0.02), (est, exact)


def test_step_jacobian_radius_explains_the_implicit_modes():
    """On signed features (what CD and VQ see) their step Jacobians are far steeper than NMF's
    on the ReLU of the same features: K Neumann terms explode for them, not for NMF."""
    X = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))
    nmf = analysis.step_jacobian_radius("nmf", X.relu())
    assert nmf < 2 and analysis.step_jacobian_radius("cd", X) > 2 * nmf and analysis.step_jacobian_radius("vq", X) > 2 * nmf
    with pytest.raises(ValueError, match="one matrix"):
        analysis.step_jacobian_radius("nmf", X[None])


def test_marker_examples_draw_each_image():
    from notebooks.course.marker import marker_batch
    fig = gradients.draw_marker_examples(*marker_batch(3, size=6, classes=3, generator=torch.Generator().manual_seed(0)),
                                         n=3)
    assert len(fig.axes) == 3 and fig.axes[0].get_title().startswith("label of every pixel")


def test_cost_at_K_bars_follow_the_measurement():
    kw = dict(modes=("one-step", "bptt"), shape=(1, 8, 6, 6), rank=3, repeats=1)
    rows2, rows6 = gradients.cost_at_K(2, **kw), gradients.cost_at_K(6, **kw)
    mem = {(r["mode"], r["K"]): r["memory_mb"] for r in rows2 + rows6}
    assert mem[("one-step", 2)] == mem[("one-step", 6)] < mem[("bptt", 2)] < mem[("bptt", 6)]
    fig = gradients.draw_cost_at_K(rows6, limits={"memory_mb": 10.0})
    assert len(fig.axes) == 3 and "K = 6" in fig._suptitle.get_text()
    memory_bars = [p.get_width() for p in fig.axes[0].patches]
    assert memory_bars == [r["memory_mb"] for r in rows6]                 # the bars are the measured numbers
    assert fig.axes[0].get_xlim()[1] == pytest.approx(12.5)               # the given limit, not the data's
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["one-step", "bptt"]
    with pytest.raises(ValueError, match="one K"):
        gradients.draw_cost_at_K(rows2 + rows6)
    with pytest.raises(ValueError, match="repeats"):
        gradients.cost_at_K(2, repeats=0)


def test_k_slider_view_is_one_measurement_drawn():
    fig = gradients.k_slider_view(3, modes=("one-step", 1, "implicit"), shape=(1, 6, 4, 4), rank=2, repeats=1)
    assert len(fig.axes) == 3 and len(fig.axes[2].patches) == 3 and "K = 3" in fig._suptitle.get_text()


def test_neumann_partial_sums_grow_with_the_radius():
    """The partial sums grow like radius^n: roughly flat-to-linear for NMF (radius about 1),
    geometric for CD (radius several times larger); n = 0 is the gradient g itself."""
    X = torch.randn(32, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    nmf = analysis.neumann_partial_norms("nmf", X.relu(), rank=4, terms=10)
    cd = analysis.neumann_partial_norms("cd", X, rank=4, terms=10)
    assert len(nmf) == len(cd) == 11 and all(n > 0 for n in nmf + cd)
    rho = analysis.step_jacobian_radius("cd", X, rank=4)
    assert rho > 1.5 and cd[-1] / cd[-2] == pytest.approx(rho, rel=0.2)
    assert cd[-1] / cd[0] > 100 * nmf[-1] / nmf[0]
    assert len(gradients.draw_neumann({"nmf": nmf, "cd": cd}).axes[0].lines) == 2


def test_neumann_partial_sums_converge_below_radius_one():
    """With a contraction (a small inverse temperature makes CD's step flat) the partial sums
    settle: consecutive ones stop moving."""
    X = torch.randn(16, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert analysis.step_jacobian_radius("cd", X, rank=3, inv_t=0.5) < 1
    ns = analysis.neumann_partial_norms("cd", X, rank=3, terms=40, inv_t=0.5)
    assert abs(ns[-1] - ns[-2]) < 1e-6 * ns[-1]


def test_nmf_scaling_symmetry():
    X = torch.rand(12, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    early, late = analysis.nmf_scaling_check(X, rank=3, steps=3), analysis.nmf_scaling_check(X, rank=3, steps=3000)
    for c in (early, late):
        assert c["equivariance"] < 1e-5 and c["product_change"] < 1e-12 and c["output_change"] < 1e-5
        assert c["factor_change"] > 0.1                                    # the factors do move
    assert late["step_change"] < 1e-3 and late["eigen"] < 1e-3            # near a fixed point: eigenvalue 1
    assert early["eigen"] > 10 * late["eigen"]
