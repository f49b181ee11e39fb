"""The benchmark's formulas and measurements (not its timings: those are for humans)."""

import torch

from hamlib import bench


def test_macs_formulas_reproduce_the_paper():
    N = 128 * 128
    # self-attention at 1 x 512 x 128 x 128: the paper's table says 292G
    assert round(bench.attention_macs(1, 512, N) / 1e9) == 292
    # NMF: K+1 pairs of (N x d x r) products plus the reconstruction, then the r x r terms
    floor = bench.floor_macs(1, 512, N, 64, 6)
    assert floor == 15 * N * 512 * 64
    extra = bench.md_macs("nmf", 1, 512, N, 64, 6) - floor
    assert 0.10 < extra / floor < 0.14  # "about 12% of the floor's MACs" (measured on this project's CPU)
    # with the two 1x1 breads, the block lands near the paper's 17.6G
    assert 17 < bench.hamburger_v1_macs(1, 512, N, 64, 6) / 1e9 < 18


def test_peak_memory_sees_allocations():
    def alloc():
        a = torch.empty(1 << 20, dtype=torch.float32)   # 4 MiB
        b = torch.empty(1 << 19, dtype=torch.float32)   # 2 MiB, both alive
        del a, b

    assert abs(bench.peak_memory(alloc) / 2**20 - 6) < 0.1


def test_run_and_table_on_a_small_shape():
    rows = bench.run((1, 16, 8, 8), rank=4, steps=2, cases=("floor", "nmf", "cd", "vq", "attention"),
                     repeats=1, warmup=0)
    assert [r["name"] for r in rows] == ["floor", "nmf", "cd", "vq", "attention"]
    for r in rows:
        assert r["infer_ms"] > 0 and r["train_ms"] > 0 and r["infer_mb"] >= 0
    assert rows[-1]["params"] == 4 * 16 * 16 + 4 * 16 + 1
    table = bench.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "infer / floor" in table


def test_cli(capsys):
    out = bench.main(["--shape", "1", "8", "4", "4", "--rank", "2", "--steps", "1", "--repeats", "1",
                      "--cases", "floor,nmf,nmf-K3,nmf-bptt,nmf-bases,nmf-ftz,ham-nmf", "--no-train"])
    assert "nmf-K3" in out and "ham-nmf" in out and "shape (1, 8, 4, 4)" in out
