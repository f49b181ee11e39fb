"""hamlib.viz.context: the affinities of attention and NMF, and the cost tables."""

import math

import pytest
import torch

from hamlib.experiments import efficiency
from hamlib.viz import context


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
    a = context.nmf_affinity(X, rank=4, steps=5)
    P = a["P"]
    assert P.shape == (30, 30) and a["C"].shape == (30, 4) and a["D"].shape == (8, 4)
    assert torch.allclose(P @ P, P, atol=1e-8) and torch.allclose(P, P.T, atol=1e-10)
    assert abs(torch.trace(P).item() - 4) < 1e-8
    assert torch.allclose(a["gram"].sum(1), torch.ones(30, dtype=torch.float64))
    # with the least-squares bases X C (C^T C)^-1 in place of D, X P is D C^T exactly
    C = a["C"]
    D_ls = X.double() @ C @ torch.linalg.inv(C.T @ C)
    assert torch.allclose(X.double() @ P, D_ls @ C.T, atol=1e-8)
    assert 0 <= a["fit"] < 1
    with pytest.raises(ValueError, match="one matrix"):
        context.nmf_affinity(X[None])


def test_panel_query_maps_and_figure():
    p = context.build_panel("astronaut", size=8, rank=3, steps=3)
    maps = context.query_maps(p, 2, 5)
    assert len(maps) == 5 and all(m.shape == (8, 8) for m in maps.values())
    att = maps["self-attention: A[i, :]"]
    assert abs(att.sum() - 1) < 1e-5
    one_step = maps["NMF one-step: ||dy_i/dx_j||"].copy()
    bptt = maps["NMF BPTT: ||dy_i/dx_j||"].copy()
    assert one_step[2, 5] > 0 and bptt[2, 5] > 0
    one_step[2, 5] = bptt[2, 5] = 0
    assert one_step.max() == 0 and bptt.max() > 0
    fig = context.draw_query(p, 2, 5)
    assert len(fig.axes) == 6
    assert len(context.query_maps(p, 0, 0, jacobian=False)) == 3
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
