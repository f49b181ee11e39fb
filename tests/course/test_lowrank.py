"""The computations and widget callbacks behind notebooks 01-03 (course.lowrank, course.solvers), no browser."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import hamlib
from notebooks.course import lowrank
from notebooks.course import solvers


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: threads only add overhead


def low_rank(m, n, r, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, r, generator=g, dtype=torch.float64) @ torch.randn(r, n, generator=g, dtype=torch.float64)


# ---- lowrank: SVD, corruption, recovery -------------------------------------


def test_truncated_svd_is_eckart_young():
    A = torch.randn(40, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    S = torch.linalg.svdvals(A)
    assert torch.allclose(lowrank.truncated_svd(A, 30), A)
    errors = []
    for r in (1, 5, 10, 29):
        A_r = lowrank.truncated_svd(A, r)
        assert torch.linalg.matrix_rank(A_r) == r
        assert torch.isclose((A - A_r).pow(2).sum(), S[r:].pow(2).sum())
        errors.append(lowrank.relative_error(A_r, A))
    assert errors == sorted(errors, reverse=True)


def test_truncated_svd_rejects_bad_input():
    A = torch.rand(5, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="rank r"):
        lowrank.truncated_svd(A, 5)
    with pytest.raises(ValueError, match="2-D"):
        lowrank.truncated_svd(A[None], 2)
    with pytest.raises(ValueError, match="floating point"):
        lowrank.truncated_svd(torch.ones(3, 3, dtype=torch.int64), 1)


def test_energy_rank():
    S = torch.tensor([2.0, 1.0, 1.0])  # energies 4/6, 5/6, 6/6
    assert [lowrank.energy_rank(S, f) for f in (0.5, 4 / 6, 0.8, 0.9, 1.0)] == [1, 1, 2, 3, 3]
    with pytest.raises(ValueError, match="fraction"):
        lowrank.energy_rank(S, 0)


def test_corrupt_noise_and_mask():
    A = torch.zeros(200, 200, dtype=torch.float64)
    Y, mask = lowrank.corrupt(A, noise=0.1, missing=0.3, seed=0)
    assert mask.dtype == torch.bool and abs(1 - mask.double().mean().item() - 0.3) < 0.01
    assert abs(Y[mask].std().item() - 0.1) < 0.005 and (Y[~mask] == 0).all()
    Y2, mask2 = lowrank.corrupt(A, noise=0.1, missing=0.3, seed=0)
    assert torch.equal(Y, Y2) and torch.equal(mask, mask2)
    with pytest.raises(ValueError, match="missing"):
        lowrank.corrupt(A, missing=1.0)


def test_svd_impute_recovers_a_low_rank_matrix():
    A = low_rank(60, 50, 3)
    Y, mask = lowrank.corrupt(A, missing=0.3, seed=1)
    Z, observed = lowrank.svd_impute(Y, mask, r=3, steps=200)
    assert lowrank.relative_error(Z, A) < 1e-3
    assert all(b <= a + 1e-12 for a, b in zip(observed, observed[1:]))
    with pytest.raises(ValueError, match="mask"):
        lowrank.svd_impute(Y, mask.double(), r=3)


def test_denoise_curve_is_best_at_the_true_rank():
    A = low_rank(80, 80, 2)
    Y = A + 0.3 * torch.randn(A.shape, generator=torch.Generator().manual_seed(2), dtype=A.dtype)
    ranks = [1, 2, 4, 8, 16]
    errors = lowrank.denoise_curve(A, Y, ranks)
    assert ranks[int(np.argmin(errors))] == 2 and min(errors) < lowrank.relative_error(Y, A)


def test_load_photo():
    A = lowrank.load_photo("astronaut", size=64)
    assert A.shape == (64, 64) and A.dtype == torch.float64 and 0 <= A.min() and A.max() <= 1
    with pytest.raises(ValueError, match="no image"):
        lowrank.load_photo("no_such_picture")


# ---- lowrank: pictures and the widget helper -----------------------------------


def test_draw_rank_reports_the_truncation_error():
    A = low_rank(30, 20, 4) + 0.01 * torch.rand(30, 20, dtype=torch.float64)
    fig, err = lowrank.draw_rank(A, 3, title="x")
    assert isinstance(fig, Figure) and len(fig.axes) == 5  # 4 panels + colour bar
    assert err == pytest.approx(lowrank.relative_error(lowrank.truncated_svd(A, 3), A))
    assert f"error {err:.3f} to x" in fig.axes[1].get_title()
    assert fig.axes[3].lines[-1].get_xdata()[0] == 3  # rank marked on the spectrum


def test_draw_rank_reports_the_error_to_a_reference():
    clean = low_rank(30, 20, 2)
    noisy = clean + 0.1 * torch.randn(30, 20, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fig, err = lowrank.draw_rank(noisy, 2, title="noisy", reference=clean)
    A_2 = lowrank.truncated_svd(noisy, 2)
    title = fig.axes[1].get_title()
    assert err == pytest.approx(lowrank.relative_error(A_2, noisy))  # still the error to the input
    assert f"{err:.3f} to noisy" in title and f"{lowrank.relative_error(A_2, clean):.3f} to the reference" in title
    shown = fig.axes[2].images[0].get_array()
    assert np.allclose(shown, (clean - A_2).abs().numpy()) and "reference" in fig.axes[2].get_title()
    with pytest.raises(ValueError, match="reference"):
        lowrank.draw_rank(noisy, 2, reference=clean[:10])


def test_noise_kept_follows_the_tangent_space_dimension():
    m, n, r = 40, 30, 2
    A = 10 * low_rank(m, n, r)
    g = torch.Generator().manual_seed(6)
    kept = [lowrank.noise_kept(A, A + 1e-4 * torch.randn(m, n, generator=g, dtype=torch.float64), r) for _ in range(100)]
    assert np.mean(kept) == pytest.approx(r * (m + n - r) / (m * n), rel=0.05)
    assert lowrank.noise_kept(A, A + 1e-4 * torch.randn(m, n, generator=g, dtype=torch.float64), min(m, n)) == pytest.approx(1)


def test_draw_images_colour_bars_and_crop():
    imgs = {"a": torch.rand(20, 30, dtype=torch.float64), "b": torch.rand(20, 30, dtype=torch.float64)}
    fig = lowrank.draw_images(imgs, colorbar=True)
    assert len(fig.axes) == 4  # two images, two colour bars
    fig = lowrank.draw_images(imgs, crop=(slice(0, 5), slice(10, 20)))
    assert len(fig.axes) == 2 and fig.axes[0].images[0].get_array().shape == (5, 10)
    assert fig.axes[0].images[0].get_interpolation() == "nearest"


def test_figure_widget_redraws_on_change():
    import ipywidgets as widgets

    calls = []

    def draw(r, name):
        calls.append((r, name))
        return lowrank.draw_spectra({name: torch.linspace(r, 1, 5)}), 0.0

    slider = widgets.IntSlider(value=3, min=1, max=9)
    box = lowrank.figure_widget(draw, {"r": slider, "name": widgets.Dropdown(options=["a", "b"], value="a")}, "rank-slider")
    assert calls == [(3, "a")]
    slider.value = 7
    assert calls[-1] == (7, "a") and len(box.children[1].outputs) == 1
    assert "rank-slider" in slider._dom_classes and "rank-slider-box" in box._dom_classes


# ---- solvers: NMF ---------------------------------------------------------------


def test_nmf_trace_is_monotone_and_matches_hamlib():
    X = solvers.load_faces()
    assert X.shape == (625, 200) and X.min() >= 0
    D0 = solvers.initial_bases("nmf", X, 8, seed=0)
    D, C, obj = solvers.nmf_trace(X, D0, steps=20)
    assert len(obj) == 21 and all(b <= a * (1 + 1e-12) for a, b in zip(obj, obj[1:]))
    D_ref, C_ref = hamlib.nmf(X[None], D0, steps=20)
    assert torch.allclose(D, D_ref) and torch.allclose(C, C_ref)


def test_pca_bases_and_sparsity():
    X = solvers.load_faces()
    U = solvers.pca_bases(X, 5)
    assert U.shape == (625, 5) and torch.allclose(U.T @ U, torch.eye(5, dtype=U.dtype))
    D = torch.tensor([[1.0, 0.0], [0.01, 1.0], [0.5, 0.0], [0.0, 0.2]])
    assert solvers.sparsity(D, tol=0.05) == pytest.approx(4 / 8)


def test_draw_nmf_faces_returns_the_solvers_error():
    X = solvers.load_faces()
    fig, err = solvers.draw_nmf_faces(X, r=4, steps=10, seed=0)
    D, C, obj = solvers.nmf_trace(X, solvers.initial_bases("nmf", X, 4, seed=0), steps=10)
    assert isinstance(fig, Figure) and err == pytest.approx((obj[-1] / X.pow(2).sum().item()) ** 0.5)
    assert 0 < err < 1


def test_draw_bases_shares_one_colour_scale():
    D = torch.rand(1, 625, 6, dtype=torch.float64)
    fig = solvers.draw_bases(D, ncols=3)
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 6 and len(fig.axes) == 6 + 1  # one colour bar
    assert {im.get_clim() for im in images} == {(0.0, float(D.max()))}
    fig = solvers.draw_bases(D - 0.5, ncols=3, signed=True)
    m = float((D - 0.5).abs().max())
    assert {ax.images[0].get_clim() for ax in fig.axes if ax.images} == {(-m, m)}
    fig = solvers.draw_bases(D * torch.arange(1, 7, dtype=D.dtype), ncols=3, per_basis=True)
    assert {ax.images[0].get_clim() for ax in fig.axes if ax.images} == {(0.0, 1.0)}
    assert all(ax.images[0].get_array().max() == pytest.approx(1) for ax in fig.axes if ax.images)


def test_initial_bases_rejects_bad_arguments():
    X = torch.rand(1, 6, 10, dtype=torch.float64)
    assert solvers.initial_bases("cd", X, 3).shape == (1, 6, 3)
    with pytest.raises(ValueError, match="kind"):
        solvers.initial_bases("pca", X, 3)
    with pytest.raises(ValueError, match="rank r"):
        solvers.initial_bases("nmf", X, 7)


# ---- solvers: VQ colour quantisation --------------------------------------------


def three_colour_image():
    colours = np.array([[0.9, 0.15, 0.15], [0.2, 0.2, 0.8], [0.3, 0.05, 0.05]])  # red, blue, dark red = red / 3
    labels = np.repeat(np.arange(3), 100)
    return colours[labels].reshape(10, 30, 3)


def test_quantise_colours_finds_a_palette_with_the_lifted_channel():
    img = three_colour_image()
    assert solvers.pixel_matrix(img).shape == (1, 3, 300) and solvers.pixel_matrix(img, lift=0.5).shape == (1, 4, 300)
    # r = 4: seed 0 starts from pixels of all three colours (identical starting centroids would stay identical)
    out, C, err = solvers.quantise_colours(img, r=4, inv_t=10000, steps=10, lift=0.5, seed=0)
    assert out.shape == img.shape and C.shape == (300, 4)
    assert err < 0.02
    # raw RGB: red and dark red point the same way, cosine cannot separate them
    _, _, err_rgb = solvers.quantise_colours(img, r=4, inv_t=10000, steps=10, lift=None, seed=0)
    assert err_rgb > 5 * err
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        solvers.pixel_matrix(np.zeros((4, 4)))


def test_inverse_temperature_hardens_assignments():
    img = solvers.load_colour_photo("chelsea", size=(30, 45))
    hard = [solvers.hardness(solvers.quantise_colours(img, r=6, inv_t=t)[1]) for t in (1, 100, 1000, 10000)]
    assert hard[0] == pytest.approx(1 / 6, abs=1e-3) and all(a < b for a, b in zip(hard, hard[1:]))
    fig, err = solvers.draw_quantised(img, r=6, inv_t=1000)
    assert isinstance(fig, Figure) and err == pytest.approx(solvers.quantise_colours(img, r=6, inv_t=1000)[2])
    assert "t = 1000" in fig.axes[1].get_title() and fig.axes[2].get_ylabel() == "pixels"


def test_hard_quantisation_uses_r_palette_colours():
    img = solvers.load_colour_photo("chelsea", size=(30, 45))
    out, C, err = solvers.quantise_colours(img, r=5, inv_t=1000, hard=True)
    assert len(np.unique(out.reshape(-1, 3).round(12), axis=0)) <= 5
    soft = solvers.quantise_colours(img, r=5, inv_t=1000)
    assert torch.equal(C, soft[1]) and err == pytest.approx(np.linalg.norm(out - img) / np.linalg.norm(img))


# ---- solvers: NMF, VQ, CD side by side -------------------------------------------


def test_solver_errors_respect_the_svd_floor():
    X = solvers.load_faces()[:, :60]
    ranks, steps = [2, 8], [0, 3]
    errors = solvers.solver_errors(X, ranks, steps, r_fixed=4, steps_fixed=5)
    for axis, n in (("rank", len(ranks)), ("steps", len(steps))):
        assert set(errors[axis]) == {"nmf", "vq", "cd", "svd"}
        for kind in ("nmf", "vq", "cd"):
            assert len(errors[axis][kind]) == n
            assert all(e >= f - 1e-9 for e, f in zip(errors[axis][kind], errors[axis]["svd"]))
    assert errors["rank"]["svd"][1] < errors["rank"]["svd"][0]
    fig = solvers.draw_solver_comparison(errors, ranks, steps, r_fixed=4, steps_fixed=5)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4


def test_blocked_makes_a_helper_raise_wherever_it_is_bound_and_restores_it():
    """The exercise tests of 01 and 03 call the student's function inside `blocked(helper)`: an
    answer that is one call of the helper (through the module, a from-import, a name in the
    notebook's globals, or a function that calls it) must raise; the helper works again after."""
    from notebooks.course.lowrank import truncated_svd as imported

    A = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    notebook = {"rank_r_truncation": lowrank.truncated_svd}
    mask = torch.ones(6, 5, dtype=torch.bool)
    with lowrank.blocked(lowrank.truncated_svd, torch.linalg.svd, hamlib.vq, namespace=notebook, why="write it"):
        for call in (lambda: lowrank.truncated_svd(A, 2), lambda: imported(A, 2),
                     lambda: notebook["rank_r_truncation"](A, 2),
                     lambda: lowrank.svd_impute(A, mask, 2, 1),          # calls truncated_svd itself
                     lambda: torch.linalg.svd(A),
                     lambda: hamlib.vq(A[None], A[None, :, :2], steps=1),
                     lambda: hamlib.md.vq(A[None], A[None, :, :2], steps=1)):
            with pytest.raises(lowrank.HelperCalled, match="was called: write it"):
                call()
        assert lowrank.relative_error(A, A) == 0.0                      # what is not blocked still runs
    with pytest.raises(ZeroDivisionError):                               # restored also when the body raises
        with lowrank.blocked(lowrank.truncated_svd):
            1 / 0
    torch.testing.assert_close(lowrank.truncated_svd(A, 5), A)
    assert imported is lowrank.truncated_svd and notebook["rank_r_truncation"] is lowrank.truncated_svd
    assert torch.linalg.svd(A).S.shape == (5,) and hamlib.vq(A[None], A[None, :, :2], steps=1)[0].shape == (1, 6, 2)
    with pytest.raises(ValueError, match="one or more functions"):
        with lowrank.blocked():
            pass
