"""course.efficiency: the benchmark's formulas and measurements (not its timings: those are for humans)."""

import pytest
import torch

from notebooks.course import efficiency


def test_macs_formulas_reproduce_the_paper():
    N = 128 * 128
    # self-attention at 1 x 512 x 128 x 128: the paper's table says 292G
    assert round(efficiency.attention_macs(1, 512, N) / 1e9) == 292
    # NMF: K+1 pairs of (N x d x r) products plus the reconstruction, then the r x r terms
    floor = efficiency.floor_macs(1, 512, N, 64, 6)
    assert floor == 15 * N * 512 * 64
    extra = efficiency.md_macs("nmf", 1, 512, N, 64, 6) - floor
    assert 0.10 < extra / floor < 0.14  # "about 12% of the floor's MACs" (measured on this project's CPU)
    # with the two 1x1 breads, the block lands near the paper's 17.6G
    assert 17 < efficiency.hamburger_v1_macs(1, 512, N, 64, 6) / 1e9 < 18


@pytest.mark.parametrize("kind", ["nmf", "cd", "vq"])
def test_md_macs_counts_what_the_solver_multiplies(kind):
    """The formula against torch's own FLOP counter on the real module (inference)."""
    from torch.utils.flop_counter import FlopCounterMode
    from hamlib.md import SOLVERS
    B, C, H, W, r, K = 2, 32, 6, 5, 4, 3
    m = SOLVERS[kind](C, rank=r, steps=K).eval()
    with FlopCounterMode(display=False) as fc:
        m(torch.rand(B, C, H, W))
    counted = fc.get_total_flops() // 2                          # a multiply-accumulate is 2 FLOPs
    # the counter sees the products (bmm) but not CD's r x r solve, which the formula counts as N r^2 + r^3
    solve = B * (H * W * r * r + r ** 3) if kind == "cd" else 0
    assert counted == efficiency.md_macs(kind, B, C, H * W, r, K) - solve
    if kind == "cd":   # with the v1 block's two breads: the paper's 16.2G
        assert round(efficiency.md_macs("cd", 1, 512, 128 * 128, 64, 6) / 1e9 + 2 * 128 * 128 * 512 * 512 / 1e9, 1) == 16.2


def test_run_and_table_on_a_small_shape():
    rows = efficiency.run((1, 16, 8, 8), rank=4, steps=2, cases=("floor", "nmf", "cd", "vq", "attention"),
                     repeats=1, warmup=0)
    assert [r["name"] for r in rows] == ["floor", "nmf", "cd", "vq", "attention"]
    for r in rows:
        assert r["infer_ms"] > 0 and r["train_ms"] > 0 and r["infer_mb"] >= 0
    assert rows[-1]["params"] == 4 * 16 * 16 + 4 * 16 + 1
    assert all(r["mode"] == "eager" for r in rows)
    table = efficiency.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "infer / floor" in table and "| mode |" not in table


def test_compile_times_each_case_beside_eager():
    rows = efficiency.run((1, 8, 4, 4), rank=2, steps=1, cases=("nmf",), repeats=1, warmup=0, train=False, compiled=True)
    assert [(r["name"], r["mode"]) for r in rows] == [("nmf", "eager"), ("nmf", "compiled")]  # CPU: no CUDA graphs
    assert all(r["infer_ms"] > 0 and r["train_ms"] is None for r in rows)
    lines = efficiency.markdown(rows).splitlines()
    assert "| mode |" in lines[0] and lines[0].endswith("| eager / this, infer | eager / this, train |")
    eager_over_compiled = rows[0]["infer_ms"] / rows[1]["infer_ms"]
    assert lines[3].startswith("| nmf | compiled |") and lines[3].endswith(f"| {eager_over_compiled:.2f} |  |")
    assert efficiency.compile_modes("cpu") == ("eager", "compiled")
    assert efficiency.compile_modes("cuda") == ("eager", "compiled", "reduce-overhead")


def test_unknown_case_is_named():
    with pytest.raises(ValueError, match="unknown case 'svd'"):
        efficiency.make_cases(["svd"], 1, 8, 4, 4, 2, 1)


def test_macs_rows_match_formulas_and_paper():
    rows = {r["name"]: r for r in efficiency.macs_rows()}
    C, N = 512, 128 * 128
    assert rows["self-attention"]["gmacs"] * 1e9 == 2 * N * N * C + 4 * N * C * C
    assert rows["self-attention"]["params"] == 4 * C * C + 4 * C + 1        # q, k, v, proj + biases + gamma
    assert rows["Ham (NMF)"]["params"] == 2 * C * C + C + 2 * C             # breads, lower bias, BN
    paper = {r["name"]: r["gmacs"] for r in efficiency.PAPER_EFFICIENCY}
    for name in ("self-attention", "Ham (NMF)", "Ham (CD)"):
        assert abs(rows[name]["gmacs"] / paper[name] - 1) < 0.05, name
    assert efficiency.paper_markdown().count("\n") == len(efficiency.PAPER_EFFICIENCY) + 1


def test_floor_runs_exactly_the_products_floor_macs_counts(monkeypatch):
    """The floor is the cost no NMF can avoid: its batched products must add up to floor_macs
    (one product too many made every 'infer / floor' ratio 7% low)."""
    macs, bmm = [], torch.bmm

    def counting_bmm(a, b):
        macs.append(a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2])
        return bmm(a, b)

    B, C, H, W, r, K = 2, 16, 6, 5, 4, 3
    monkeypatch.setattr(torch, "bmm", counting_bmm)
    efficiency.FloorNMF(r, K)(torch.rand(B, C, H, W))
    assert sum(macs) == efficiency.floor_macs(B, C, H * W, r, K)
    assert len(macs) == 2 * (K + 1) + 1
