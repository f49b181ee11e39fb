"""course.context: the affinities of attention and NMF, and the cost tables."""

import math

import pytest
import torch

from hamlib import analysis

from notebooks.course import efficiency
from notebooks.course import context


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: threads only add overhead


def test_image_features_nonnegative_and_scaled():
    rgb, x = context.image_features("chelsea", size=12)
    assert rgb.shape == (12, 12, 3) and x.shape == (1, 15, 12, 12) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    top = x.amax((0, 2, 3))
    assert ((top == 1) | (top == 0)).all() and (top == 1).sum() >= 10   # each channel spans [0, 1] (or is empty)
    with pytest.raises(ValueError, match="photo"):
        context.image_features("lena")
    with pytest.raises(ValueError, match="size"):
        context.image_features(size=2)


def test_similarity_attention_is_softmax_of_feature_dot_products():
    torch.manual_seed(0)
    x = torch.rand(1, 4, 3, 5)
    att = context.similarity_attention(4, scale=2.0)
    X = x.reshape(4, 15)
    A = torch.softmax(2.0 * X.T @ X / math.sqrt(4), dim=-1)             # (N, N)
    assert torch.allclose(att.attention_map(x)[0, 0], A, atol=1e-5)
    with torch.no_grad():
        y = att(x)
    assert torch.allclose(y.reshape(4, 15), X + X @ A.T, atol=1e-5)    # out_i = x_i + sum_j A_ij x_j


def test_nmf_affinity_is_a_projection():
    torch.manual_seed(0)
    X = torch.rand(8, 30)
    a = analysis.nmf_affinity(X, rank=4, steps=5)
    P = a["P"]
    assert P.shape == (30, 30) and a["C"].shape == (30, 4) and a["D"].shape == (8, 4)
    assert torch.allclose(P @ P, P, atol=1e-8) and torch.allclose(P, P.T, atol=1e-10)
    assert abs(torch.trace(P).item() - 4) < 1e-8
    assert torch.allclose(a["gram"].sum(1), torch.ones(30, dtype=torch.float64))
    # with the least-squares bases X C (C^T C)^-1 in place of D, X P is D C^T exactly
    C, Xd = a["C"], X.double()
    D_ls = Xd @ C @ torch.linalg.inv(C.T @ C)
    assert torch.allclose(a["D_star"], D_ls, atol=1e-8)
    assert torch.allclose(Xd @ P, D_ls @ C.T, atol=1e-8)
    assert 0 <= a["fit"] < 1
    with pytest.raises(ValueError, match="one matrix"):
        analysis.nmf_affinity(X[None])


def test_nmf_affinity_nnls_bases_are_the_best_non_negative_ones():
    torch.manual_seed(1)
    X = torch.rand(10, 40)
    a = analysis.nmf_affinity(X, rank=5, steps=4)
    C, P, D, Dn, Xd = a["C"], a["P"], a["D"], a["D_nnls"], X.double()
    assert Dn.shape == (10, 5) and Dn.min() >= 0
    # KKT of min ||X - B C^T|| over B >= 0: gradient >= 0, and 0 wherever B > 0
    grad = Dn @ (C.T @ C) - Xd @ C
    assert grad.min() > -1e-8 and (grad * Dn).abs().max() < 1e-8
    # no non-negative bases (NMF's own D included) come closer to X P
    gap = lambda B: torch.linalg.norm(Xd @ P - B @ C.T)  # noqa: E731
    assert gap(Dn) <= gap(D) + 1e-12 and gap(Dn) <= gap(Dn + 0.01 * torch.rand_like(Dn))
    assert a["fit_nnls"] == pytest.approx((gap(Dn) / torch.linalg.norm(Dn @ C.T)).item())
    # the gap is 0 exactly when the unconstrained bases D_star are non-negative
    assert (a["D_star"].min() < 0) == (a["fit_nnls"] > 1e-8)


def test_panel_query_maps_and_figure():
    p = context.build_panel("astronaut", size=8, rank=3, steps=3)
    maps = context.query_maps(p, 2, 5)
    assert list(maps) == ["attention", "P", "gram", "bptt", "one-step"] and set(maps) == set(context.TITLES)
    assert all(m.shape == (8, 8) for m in maps.values())
    assert abs(maps["attention"].sum() - 1) < 1e-5
    one_step, bptt = maps["one-step"].copy(), maps["bptt"].copy()
    assert one_step[2, 5] > 0 and bptt[2, 5] > 0
    one_step[2, 5] = bptt[2, 5] = 0
    assert one_step.max() == 0 and bptt.max() > 0
    fig = context.draw_query(p, 2, 5)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 6 and len(fig.axes) == 6 + 5            # photo + 5 maps, a colour bar for each map
    titles = [ax.get_title() for ax in images]
    assert "exactly 0 off $i$" in titles[-1]                        # the one-step panel says what it shows
    jac = [ax.images[0] for ax in images[-2:]]
    assert jac[0].get_clim() == jac[1].get_clim() == (0.0, pytest.approx(bptt.max()))  # one shared scale
    assert len(context.query_maps(p, 0, 0, jacobian=False)) == 3
    assert len([ax for ax in context.draw_query(p, 0, 0, jacobian=False).axes if ax.images]) == 4
    with pytest.raises(ValueError, match="outside"):
        context.query_maps(p, 8, 0)


def test_cost_vs_resolution_rows_and_plot():
    rows = efficiency.cost_vs_resolution(sizes=(4, 8), channels=8, rank=2, steps=2, cases=("nmf", "attention"),
                                         repeats=1, train=False)
    assert [(r["name"], r["N"]) for r in rows] == [("nmf", 16), ("attention", 16), ("nmf", 64), ("attention", 64)]
    att = [r for r in rows if r["name"] == "attention"]
    assert att[1]["gmacs"] * 1e9 == efficiency.attention_macs(1, 8, 64)
    fig = context.draw_cost(rows)
    assert len(fig.axes) == 2   # GMACs and inference time: no training columns
