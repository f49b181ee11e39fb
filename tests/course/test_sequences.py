"""course.sequences: deterministic tasks, the stored grid (hash pinned), tables, the widget's callback."""

import pytest
import torch

from notebooks.course import sequences as S

RESULTS_SHA256 = "05a0efc3524408375386d87002fd77ac601142de2f337d09b0caa7c558f98277"


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
