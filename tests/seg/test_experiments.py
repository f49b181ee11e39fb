"""The notebook's experiment helpers: head overrides, summaries over seeds, the claims table."""

import math

import pytest
import torch

from hamlib.seg import experiments as E
from hamlib.seg.model import build_model
from hamlib.seg.synthetic import LegendConfig, LegendDataset
from hamlib.seg.train import quick


def test_with_head_merges_and_copies():
    cfg = quick()
    c = E.with_head(cfg, "cd one-step")
    assert c.model.head.context == "ham" and c.model.head.ham["ham"] == "cd"
    assert c.model.head.ham["grad"] == "one-step" and c.model.head.ham["rank"] == cfg.model.head.ham["rank"]
    assert cfg.model.head.ham["ham"] == "nmf"                       # the original is untouched
    assert E.with_head(cfg, "none").model.head.context == "none"
    with pytest.raises(ValueError, match="head must be one of"):
        E.with_head(cfg, "transformer")


def _rows():
    miou = {"none": (0.30, 0.32), "pool": (0.6, 0.62), "attention": (0.70, 0.66), "nmf one-step": (0.45, 0.41),
            "nmf bptt": (0.68, 0.64), "cd one-step": (0.5, 0.6), "cd bptt": (0.25, 0.25),
            "vq one-step": (0.35, 0.37), "vq bptt": (float("nan"), 0.25)}
    return [dict(head=h, seed=s, miou=v[s], ctx_acc=v[s] / 2, params=100, ms_per_step=10.0 + s,
                 wall_s=1.0, status="ok" if not math.isnan(v[s]) else "diverged")
            for h, v in miou.items() for s in (0, 1)]


def test_summarise_and_claims():
    S = E.summarise(_rows())
    assert S["none"]["miou"] == pytest.approx(0.31) and S["none"]["miou_std"] == pytest.approx(0.0141421, abs=1e-6)
    assert S["vq bptt"]["miou"] == 0.25 and S["vq bptt"]["diverged"] == 1 and S["none"]["ms_per_step"] == 10.5
    table = E.format_table(S)
    assert "nmf bptt" in table and "(1/2 diverged)" in table
    claims = {c[0].split(" (")[0]: c[3] for c in E.ablation_claims(S)}
    assert claims["NMF > CD"] is False                               # 0.43 vs 0.55
    assert claims["CD > VQ"] is True
    assert claims["NMF: one-step > BPTT"] is False and claims["CD: one-step > BPTT"] is True
    assert claims["best Hamburger"] is False                         # nmf bptt 0.66 < attention 0.68


def test_context_accuracy_and_pictures():
    ds = LegendDataset(4, seed=0, cfg=LegendConfig())
    cfg = quick()
    torch.manual_seed(0)
    m = build_model(E.with_head(cfg, "none").model)
    acc = E.context_accuracy(m, ds)
    assert 0.0 <= acc <= 1.0
    fig = E.plot_predictions({"none": m}, ds, [0, 1])
    assert len(fig.axes) == 2 * 3
    assert len(E.plot_examples(ds, 3).axes) == 6


def test_head_spec_reads_any_solver_and_grad_mode():
    assert E.head_spec("cd one-step-bases") == dict(context="ham", ham=dict(ham="cd", grad="one-step-bases"))
    assert E.head_spec("nmf 2")["ham"]["grad"] == 2 and E.head_spec("vq implicit")["ham"]["grad"] == "implicit"
    assert E.head_spec("pool") == E.HEADS["pool"]
    for bad in ("nmf sometimes", "svd bptt", "nmf", ""):
        with pytest.raises(ValueError, match="head must be one of"):
            E.head_spec(bad)


def test_grad_table_trains_writes_resumes_and_tabulates(tmp_path, monkeypatch):
    from hamlib.seg import grad_table as G
    heads = ["none", "nmf implicit"]
    rows = G.run_table(heads, [0], steps=2, out_dir=tmp_path, jobs=1)
    assert [r["head"] for r in rows] == heads and all(r["status"] == "ok" and 0 <= r["miou"] <= 1 for r in rows)
    assert rows[1]["params"] > rows[0]["params"]
    # an interrupted table resumes: rows already in runs.csv are not trained again
    monkeypatch.setattr(G, "run_one", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert G.run_table(heads[::-1], [0], steps=2, out_dir=tmp_path, jobs=1) == rows[::-1]
    # rows of another task in the same file are not taken for this one
    monkeypatch.setattr(G, "run_one", lambda h, s, steps, out, task, base, threads: dict(
        head=h, seed=s, task=task, config=base, steps=steps, miou=0.5, ctx_acc=0.5, params=1, ms_per_step=1.0,
        wall_s=1.0, status="ok"))
    other = G.run_table(heads, [0], steps=2, out_dir=tmp_path, task="two-colour", jobs=1)
    assert [r["miou"] for r in other] == [0.5, 0.5] and all(r["task"] == "two-colour" for r in other)
    assert G.run_table(heads, [0], steps=2, out_dir=tmp_path, jobs=1) == rows
    S = E.summarise(rows, step_ms={"none": 1.5, "nmf implicit": 2.5}, step_mb={"none": 3.0, "nmf implicit": 4.0})
    md = G.markdown(S, rows, [0]).splitlines()
    assert len(md) == 4 and md[2].startswith("| none |") and md[3].endswith("| 2.5 | 4.0 |")
    assert G.config(10, "two-colour").legend.one_colour is False and G.config(10).legend.one_colour is True
    with pytest.raises(ValueError, match="task must be one of"):
        G.config(10, "three-colour")


def test_step_memory_orders_the_modes():
    cfg = quick()
    ds = LegendDataset(cfg.batch_size, seed=0, cfg=cfg.legend)
    mb = E.step_memory(cfg, ["nmf one-step", "nmf implicit", "nmf bptt"], ds)
    assert mb["nmf one-step"] < mb["nmf implicit"] < mb["nmf bptt"], mb
