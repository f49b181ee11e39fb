"""course.sequences: deterministic tasks, the stored grid (hash pinned), tables, the widget's callback."""

import pytest
import torch

from notebooks.course import sequences as S

RESULTS_SHA256 = "d509c57094a4ea6f6ed9e6196eb6c8245bd58d0c3baf6c206f813f8c198e1ef7"


def test_recall_batch_is_recall():
    g = torch.Generator().manual_seed(0)
    x, y = S.recall_batch(5, 6, queries=4, generator=g)
    assert x.shape == (5, 10, 2) and (y[:, :6] == -100).all() and (x[:, 6:, 1] == S.VALUES).all()
    for b in range(5):
        table = {int(k): int(v) for k, v in x[b, :6].tolist()}
        assert len(table) == 6                                            # distinct keys
        assert [table[int(k)] for k in x[b, 6:, 0]] == y[b, 6:].tolist()
    x2, _ = S.recall_batch(5, 6, queries=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)


def test_majority_unique_winner():
    x, y = S.majority_batch(50, 12, 4, generator=torch.Generator().manual_seed(1))
    assert (x[:, 0] == 4).all()
    counts = torch.nn.functional.one_hot(x[:, 1:], 4).sum(1)
    assert torch.equal(counts.argmax(1), y)
    top = counts.topk(2, 1).values
    assert (top[:, 0] > top[:, 1]).all()


def test_stored_grid_hash_and_shape():
    assert S.sha256() == RESULTS_SHA256
    R = S.load_results()
    assert "python -m experiments.mixers" in " ".join(R["command"])
    c = S.cells(R["runs"], "recall")
    assert all(len(v) == 3 for v in c.values()) and len({k[0] for k in c}) == len(S.ROWS)


def test_widget_view_and_errors():
    R = S.load_results()
    md = S.widget_view(R, 16, 4)
    assert "**16 pairs**" in md and "nmf, r = 4" in md and "verdict: **attention > nmf r=4**" in md
    with pytest.raises(ValueError, match="pairs = 5 was not run"):
        S.widget_view(R, 5, 4)
    with pytest.raises(ValueError, match="rank = 8 was not run"):
        S.widget_view(R, 16, 8)


def test_verdict_rule_on_a_fixture():
    runs = [dict(table="t", row=r, seed=s, pairs=None, rank=None, acc=a)
            for r, accs in (("a", (0.9, 0.91, 0.92)), ("b", (0.5, 0.95, 0.6)), ("c", (0.1, 0.11, 0.12)))
            for s, a in enumerate(accs)]
    assert S.compare(runs, "t", "a", "b") == "tie"
    assert S.compare(runs, "t", "a", "c") == "a > c"


def test_crossover():
    rows = [dict(N=n, name=m, ms=v) for n, a, h in ((256, 1, 2), (1024, 4, 3), (4096, 16, 5))
            for m, v in (("attention", a), ("nmf", h))]
    assert S.crossover(rows, "nmf") == 1024
    assert S.crossover(rows, "attention", ref="nmf") is None


def test_shares_on_known_matrices():
    J = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    assert S.future_share(J) == pytest.approx(3 / 8) and S.cross_share(J) == pytest.approx(3 / 8)
    assert S.future_share(torch.tril(torch.ones(4, 4))) == 0.0 and S.cross_share(torch.eye(3)) == 0.0
    assert S.future_share(torch.zeros(2, 2)) == 0.0


def test_jacobian_sees_causality_and_the_one_step_gradient():
    from hamlib.mixers import SoftmaxAttention, make_mixer
    torch.manual_seed(0)
    assert S.future_share(S.token_jacobian(SoftmaxAttention(16, 8, causal=True), N=8)) == 0.0
    assert S.future_share(S.token_jacobian(make_mixer("nmf", 16, 8, rank=2), N=8)) > 0.1
    one = S.token_jacobian(make_mixer("nmf", 16, 8, rank=2, grad="one-step"), N=8)
    assert S.cross_share(one) == 0.0 and one.diagonal().min() > 0


def test_cost_vs_length_rows_and_formulas():
    rows = S.cost_vs_length(names=("attention", "nmf", "mean"), lengths=(8, 32), repeats=1)
    assert [(r["N"], r["name"]) for r in rows] == [(n, m) for n in (8, 32) for m in ("attention", "nmf", "mean")]
    att = next(r for r in rows if r["name"] == "attention" and r["N"] == 32)
    assert att["macs"] == 4 * 32 * 64 * 64 + 2 * 32 * 32 * 64
    assert all(r["ms"] > 0 and r["alloc_mib"] >= 0 and r["mib"] >= 0 for r in rows)


def test_stored_cost_run_is_consistent():
    cost = S.load_cost()
    Ns = sorted({r["N"] for r in cost["rows"]})
    assert Ns[0] == 256 and Ns[-1] == 16384 and "experiments.mixers --cost" in cost["command"]
    for name, c in cost["crossover"].items():
        assert c["ms"] == S.crossover(cost["rows"], name)                # what the file says is what its rows say
    t = {(r["name"], r["N"]): r["ms"] for r in cost["rows"]}
    assert t[("attention", 16384)] / t[("attention", 4096)] > 8          # quadratic: x16 expected, x4 if linear


def test_figures_and_widget_view_errors():
    R, C = S.load_results(), S.load_cost()
    assert len(S.draw_recall(R).axes) == 2 and len(S.draw_cost(C).axes) == 2
    fig = S.draw_view(R, C, 16, 4, 4096)
    assert "attention > nmf r=4" in fig._suptitle.get_text()
    assert len(S.draw_jacobians({"a": torch.eye(3), "b": torch.ones(3, 3)}).axes) == 2
    with pytest.raises(ValueError, match="N = 100 was not measured"):
        S.draw_view(R, C, 16, 4, 100)
    with pytest.raises(ValueError, match="pairs = 5 was not run"):
        S.draw_view(R, C, 5, 4, 4096)


def test_widget_redraws_on_a_slider_change():
    box = S.widget(S.load_results(), S.load_cost())
    sliders = box.children[0].children
    assert [w.description for w in sliders] == ["pairs", "rank r", "length N"]
    assert all(w.continuous_update is False for w in sliders)
    sliders[1].value = 64                                    # the observer redraws into the Output
    assert len(box.children[1].outputs) == 1
    assert "nmf r=64" in box.redraw()._suptitle.get_text()


def test_widget_view_at_rank_16_reads_the_recall_table():
    md = S.widget_view(S.load_results(), 16, 16)
    assert "nmf, r = 16" in md and "verdict: **" in md


def test_rank_claim_on_a_fixture():
    def run(table, row, p, r, acc):
        return dict(table=table, row=row, pairs=p, rank=r, seed=0, acc=acc)
    runs = [run("recall", "attention", p, 16, a) for p, a in ((4, 1.0), (16, 0.9), (64, 0.6))]
    runs += [run("recall", "nmf", p, 16, a) for p, a in ((4, 0.9), (16, 0.5), (64, 0.1))]
    runs += [run("rank", "nmf", p, 4, a) for p, a in ((4, 0.49), (16, 0.2), (64, 0.1))]
    runs += [run("rank", "nmf", p, 64, a) for p, a in ((4, 1.0), (16, 0.8), (64, 0.2))]
    assert S.rank_claim(runs) == {4: 0, 16: 16, 64: 16, "attention": 64}
    assert list(S.rank_claim(runs)) == [4, 16, 64, "attention"]
