"""The grid runner on every task (python -m experiments.grid) and the VQ diagnostics, each on a tiny run (seconds)."""

import dataclasses
import math

import pytest
import torch

from experiments import grid, vq_diagnostics as vd
from notebooks.course import grad_table, legend
from notebooks.course.marker import MarkerNet


def test_marker_heads_are_notebook_05s_marker_net():
    c = grad_table.marker_config("vq 2 inv_t=20")
    assert (c.context, c.ham, c.inv_t) == (2, "vq", 20.0)
    assert grad_table.marker_config("none").context == "none"
    assert grad_table.marker_config("vq").context == 2          # the solver's own gradient mode
    assert grad_table.marker_config("nmf bptt rank=2", iters=5).rank == 2
    for bad in ("nmf bptt version=v1", "cd one-step bases=learned"):
        with pytest.raises(ValueError, match="marker network"):
            grad_table.marker_config(bad)
    assert grad_table.marker_config("nmf bptt init=reference").init == "reference"
    assert grad_table.marker_config("plain v1").context == "plain"
    torch.manual_seed(0)
    ref = MarkerNet("bptt", init="reference")
    assert ref.context.lower_bread[0].bias.abs().max() == 0                  # reference_init's zero biases
    assert MarkerNet("bptt").context.lower_bread[0].bias.abs().max() > 0     # the default: PyTorch's
    assert type(MarkerNet("plain").context).__name__ == "MinimalHamburger"
    torch.manual_seed(0)
    a = MarkerNet("bptt").state_dict()
    c = grad_table.marker_config("nmf bptt")
    torch.manual_seed(0)
    b = MarkerNet(c.context, c.classes, c.width, c.rank, c.steps, c.ham, c.inv_t).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_marker_grid_resumes_and_tabulates(tmp_path, monkeypatch):
    heads = ["none", "vq 2 inv_t=5"]
    rows = grad_table.run_table(heads, [0], 2, tmp_path, task="marker")
    assert [(r["head"], r["seed"], r["steps"], r["task"]) for r in rows] == [("none", 0, 2, "marker"),
                                                                             ("vq 2 inv_t=5", 0, 2, "marker")]
    assert all(0 <= r["acc"] <= 1 and r["miou"] is None for r in rows) and rows[1]["params"] > rows[0]["params"]
    monkeypatch.setattr(grad_table, "run_one", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert grad_table.run_table(heads, [0], 2, tmp_path, task="marker") == rows
    table = grid.score_table(rows)
    assert f"| vq 2 inv_t=5 | {rows[1]['acc']:.3f} |" in table
    with pytest.raises(ValueError, match="task must be one of"):
        grad_table.run_table(heads, [0], 2, tmp_path, task="voc")
    with pytest.raises(ValueError, match="head must be one of"):
        grad_table.run_table(["vq sometimes"], [0], 2, tmp_path, task="marker")


def test_the_cli_runs_a_legend_grid_with_the_heads_temperature(tmp_path, monkeypatch):
    real_config, real_train, seen = grad_table.config, legend.train, []

    def tiny(steps, task="legend1", base="quick"):
        return dataclasses.replace(real_config(steps, task, base), n_train=16, n_val=8, batch_size=4)

    def spy(cfg, datasets):
        seen.append((dict(cfg.model.head.ham), cfg.legend.one_colour))
        return real_train(cfg, datasets)

    monkeypatch.setattr(grad_table, "config", tiny)
    monkeypatch.setattr(legend, "train", spy)
    monkeypatch.setattr(grad_table, "_DATA", {})
    text = grid.main(["legend2", "--heads", "vq 2 inv_t=20", "--seeds", "0", "--steps", "2", "--jobs", "1",
                      "--out", str(tmp_path), "--no-cost"])
    (ham, one_colour), = seen
    assert ham["ham"] == "vq" and ham["grad"] == 2 and ham["inv_t"] == 20 and not one_colour
    assert text.startswith("task legend2, config quick, 2 steps") and "| vq 2 inv_t=20 |" in text
    assert (tmp_path / "legend2.md").read_text() == text
    (row,) = grad_table.read_rows(tmp_path / "runs.csv")
    assert row["task"] == "legend2" and 0 <= row["ctx_acc"] <= 1 and row["acc"] is None


def test_softer_temperature_softens_assignments():
    X = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))      # signed features
    hard, soft = vd.assignment_stats(X, inv_ts=(100.0, 5.0), rank=4)
    assert hard["entropy"] < 0.2 < soft["entropy"]
    assert hard["max_c"] > soft["max_c"]


def test_diagnose_one_step_sends_nothing_to_the_marker():
    torch.manual_seed(0)
    c = grad_table.marker_config("vq 2 inv_t=100")
    model = MarkerNet(c.context, c.classes, c.width, c.rank, c.steps, c.ham, c.inv_t).eval()
    res = vd.diagnose(model, inv_ts=(5.0,), grads=("one-step", 2), images=1)
    ratio = {r["grad"]: r["ratio"] for r in res["jacobian"]}
    assert ratio["one-step"] == 0.0       # one-step: no gradient crosses between pixels
    assert ratio["2"] > 0.0
    assert 0 < res["same_cluster"][0]["share"] <= 1
    assert 0 < res["stats"][0]["entropy"] <= 1 and res["stats"][0]["radius"] > 0


def test_cluster_share_is_one_when_every_position_shares_the_answers_cluster():
    C = torch.zeros(1, 2, 4, dtype=torch.float64)
    C[0, 0] = 1.0
    answer, query = torch.tensor([[True, False, False, False]]), torch.tensor([[False, True, True, True]])
    assert vd.cluster_share(C, answer, query) == 1.0
    C[0, :, 1:] = torch.tensor([0.0, 1.0])[:, None]
    assert vd.cluster_share(C, answer, query) == 0.0


def test_step_cost_orders_memory():
    res = vd.step_cost(grads=("one-step", "bptt"), shape=(1, 8, 8, 8), rank=2, rounds=1)
    assert all(ms > 0 and math.isfinite(ms) for ms, _ in res.values())
    assert res["bptt"][1] > res["one-step"][1]   # BPTT keeps every step's tensors
