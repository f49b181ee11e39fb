"""The gradient study's functions, each on a tiny run (seconds)."""

import math

import pytest
import torch

from experiments import gradient_study
from notebooks.course.marker import MarkerNet


def test_parse_cell():
    assert gradient_study.parse_cell("vq 2 20") == ("vq", 2, 20.0)
    assert gradient_study.parse_cell("nmf bptt") == ("nmf", "bptt", 100.0)
    assert gradient_study.parse_cell("none") == ("none", None, None)
    assert gradient_study.parse_cell("pool") == ("pool", None, None)
    for bad in ("attn", "vq", "xx 2 5", "vq 2 5 1"):
        with pytest.raises(ValueError, match="cell"):
            gradient_study.parse_cell(bad)
    with pytest.raises(ValueError, match="marker network"):
        gradient_study.marker_net("pool")


def test_a_cell_is_notebook_05s_marker_net_with_that_solver():
    m = gradient_study.marker_net("vq 2 20")
    assert isinstance(m, MarkerNet) and m.context.ham_kind == "vq"
    assert m.context.ham.grad == 2 and m.context.ham.inv_t == 20.0
    torch.manual_seed(0)
    a = MarkerNet("bptt").state_dict()
    torch.manual_seed(0)
    b = gradient_study.marker_net("nmf bptt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_marker_grid_resumes_and_tabulates(tmp_path):
    cells = ["none", "vq 2 5"]
    rows = gradient_study.run_grid("marker", cells, [0], tmp_path, steps=2)
    assert [(r["cell"], r["seed"], r["steps"]) for r in rows] == [("none", 0, 2), ("vq 2 5", 0, 2)]
    assert all(0 <= r["score"] <= 1 for r in rows)
    mtime = (tmp_path / "marker.csv").stat().st_mtime_ns
    again = gradient_study.run_grid("marker", cells, [0], tmp_path, steps=2)       # nothing left to train
    assert [r["score"] for r in again] == [r["score"] for r in rows]
    assert len(gradient_study.read_rows(tmp_path / "marker.csv")) == 2
    assert (tmp_path / "marker.csv").stat().st_mtime_ns == mtime
    table = gradient_study.markdown(rows)
    assert "| vq 2 5 |" in table and "legend acc" not in table
    with pytest.raises(ValueError, match="task"):
        gradient_study.run_grid("voc", cells, [0], tmp_path)


def test_softer_temperature_softens_assignments():
    X = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))      # signed features
    stats = gradient_study.assignment_stats(X, inv_ts=(100.0, 5.0), rank=4)
    hard, soft = stats
    assert hard["entropy"] < 0.2 < soft["entropy"]
    assert hard["max_c"] > soft["max_c"]


def test_diagnose_one_step_sends_nothing_to_the_marker():
    torch.manual_seed(0)
    model = gradient_study.marker_net("vq 2 100").eval()
    res = gradient_study.diagnose(model, inv_ts=(5.0,), grads=("one-step", 2), images=1)
    ratio = {r["grad"]: r["ratio"] for r in res["jacobian"]}
    assert ratio["one-step"] == 0.0       # one-step: no gradient crosses between pixels
    assert ratio["2"] > 0.0
    assert 0 < res["same_cluster"][0]["share"] <= 1
    assert 0 < res["stats"][0]["entropy"] <= 1


def test_step_cost_orders_memory():
    res = gradient_study.step_cost(grads=("one-step", "bptt"), shape=(1, 8, 8, 8), rank=2, rounds=1)
    assert all(ms > 0 and math.isfinite(ms) for ms, _ in res.values())
    assert res["bptt"][1] > res["one-step"][1]   # BPTT keeps every step's tensors


def test_legend_cell_trains_with_the_cells_temperature(tmp_path, monkeypatch):
    import dataclasses

    from notebooks.course import legend
    real_config, real_train, seen = gradient_study.config, legend.train, {}

    def tiny(steps, task="one-colour"):
        return dataclasses.replace(real_config(steps, task), n_train=16, n_val=8, batch_size=4)

    def spy(cfg, datasets):
        seen["ham"], seen["one_colour"] = dict(cfg.model.head.ham), cfg.legend.one_colour
        return real_train(cfg, datasets)

    monkeypatch.setattr(gradient_study, "config", tiny)
    monkeypatch.setattr(legend, "train", spy)
    monkeypatch.setattr(gradient_study, "_DATA", {})
    miou, ctx = gradient_study.legend_cell("vq 2 20", 0, steps=2, out_dir=str(tmp_path))
    assert seen["ham"]["ham"] == "vq" and seen["ham"]["grad"] == 2 and seen["ham"]["inv_t"] == 20.0
    assert seen["one_colour"] and 0 <= miou <= 1 and 0 <= ctx <= 1
    (row,) = gradient_study.run_grid("legend2", ["nmf bptt"], [0], tmp_path, steps=2)      # the two-colour task
    assert not seen["one_colour"] and seen["ham"]["grad"] == "bptt" and "inv_t" not in seen["ham"]
    assert row["task"] == "legend2" and 0 <= row["ctx"] <= 1
