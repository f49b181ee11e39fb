"""course.legend and grad_table: head overrides, summaries over seeds, the claims, the resumable table."""

import math

import pytest
import torch

from notebooks.course import grad_table, legend
from hamlib.seg.metrics import predict
from hamlib.seg.model import build_model
from hamlib.seg.synthetic import LegendConfig, LegendDataset
from hamlib.seg.train import quick


def test_with_head_merges_and_copies():
    cfg = quick()
    c = legend.with_head(cfg, "cd one-step")
    assert c.model.head.context == "ham" and c.model.head.ham["ham"] == "cd"
    assert c.model.head.ham["grad"] == "one-step" and c.model.head.ham["rank"] == cfg.model.head.ham["rank"]
    assert cfg.model.head.ham["ham"] == "nmf"                       # the original is untouched
    assert legend.with_head(cfg, "none").model.head.context == "none"
    with pytest.raises(ValueError, match="head must be one of"):
        legend.with_head(cfg, "transformer")


def _rows():
    miou = {"none": (0.30, 0.32), "pool": (0.6, 0.62), "attention": (0.70, 0.66), "nmf one-step": (0.45, 0.41),
            "nmf bptt": (0.68, 0.64), "cd one-step": (0.5, 0.6), "cd bptt": (0.25, 0.25),
            "vq one-step": (0.35, 0.37), "vq bptt": (float("nan"), 0.25)}
    return [dict(head=h, seed=s, miou=v[s], ctx_acc=v[s] / 2, params=100, ms_per_step=10.0 + s,
                 wall_s=1.0, status="ok" if not math.isnan(v[s]) else "diverged")
            for h, v in miou.items() for s in (0, 1)]


def test_summarise_and_claims():
    S = legend.summarise(_rows())
    assert S["none"]["miou"] == pytest.approx(0.31) and S["none"]["miou_std"] == pytest.approx(0.0141421, abs=1e-6)
    assert S["vq bptt"]["miou"] == 0.25 and S["vq bptt"]["diverged"] == 1 and S["none"]["ms_per_step"] == 10.5
    table = legend.summary_table(S).splitlines()
    assert table[0] == "| head | mIoU mean ± std | legend acc | params | ms/step |" and len(table) == 2 + len(S)
    assert table[-1] == "| vq bptt | 0.250 ± 0.000 (1/2 diverged) | 0.125 | 100 | 10.5 |"
    claims = {c[0].split(" (")[0]: c[3] for c in legend.ablation_claims(S)}
    assert claims["NMF > CD"] is False                               # 0.43 vs 0.55
    assert claims["CD > VQ"] is True
    assert claims["NMF: one-step > BPTT"] is False and claims["CD: one-step > BPTT"] is True
    assert claims["best Hamburger"] is False                         # nmf bptt 0.66 < attention 0.68


def test_context_accuracy():
    ds = LegendDataset(4, seed=0, cfg=LegendConfig())
    cfg = quick()
    torch.manual_seed(0)
    m = build_model(legend.with_head(cfg, "none").model)
    acc = legend.context_accuracy(m, ds)
    assert 0.0 <= acc <= 1.0
    ds.labels[ds.needs_context] = 0                                 # every legend-needing pixel: background
    expected = (predict(m.eval(), ds.images).argmax(1) == 0)[ds.needs_context].double().mean().item()
    assert legend.context_accuracy(m, ds) == pytest.approx(expected)


def test_head_spec_reads_any_solver_and_grad_mode():
    assert legend.head_spec("cd one-step-bases") == dict(context="ham", ham=dict(ham="cd", grad="one-step-bases"))
    assert legend.head_spec("nmf 2")["ham"]["grad"] == 2 and legend.head_spec("vq implicit")["ham"]["grad"] == "implicit"
    assert legend.head_spec("pool") == legend.HEAD_SPECS["pool"]
    # the solver's own gradient, and further Hamburger options as key=value
    assert legend.head_spec("nmf") == legend.head_spec("nmf default") == dict(context="ham", ham=dict(ham="nmf", grad=None))
    assert legend.head_spec("nmf bptt rank=4 init=pytorch")["ham"] == dict(ham="nmf", grad="bptt", rank=4, init="pytorch")
    assert legend.head_spec("vq 2 rank=4 inv_t=0.5")["ham"] == dict(ham="vq", grad=2, rank=4, inv_t=0.5)
    # NMF has no temperature: a head that gives it one is refused by name, not trained with it ignored
    with pytest.raises(ValueError, match="inv_t is the temperature of VQ and CD; NMF has none"):
        legend.head_spec("nmf bptt inv_t=0.5")
    for bad in ("nmf sometimes", "svd bptt", "", "nmf bptt rank", "nmf rank=4 bptt"):
        with pytest.raises(ValueError, match="head must be one of"):
            legend.head_spec(bad)


def test_grad_table_trains_writes_resumes_and_tabulates(tmp_path, monkeypatch):
    heads = ["none", "nmf implicit"]
    rows = grad_table.run_table(heads, [0], steps=2, out_dir=tmp_path, jobs=1)
    assert [r["head"] for r in rows] == heads and all(r["status"] == "ok" and 0 <= r["miou"] <= 1 for r in rows)
    assert rows[1]["params"] > rows[0]["params"]
    # an interrupted table resumes: rows already in runs.csv are not trained again
    monkeypatch.setattr(grad_table, "run_one", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert grad_table.run_table(heads[::-1], [0], steps=2, out_dir=tmp_path, jobs=1) == rows[::-1]
    # rows of another task in the same file are not taken for this one
    monkeypatch.setattr(grad_table, "run_one", lambda h, s, steps, out, task, base, threads: dict(
        head=h, seed=s, task=task, config=base, steps=steps, miou=0.5, ctx_acc=0.5, acc=None, params=1,
        ms_per_step=1.0, wall_s=1.0, status="ok"))
    other = grad_table.run_table(heads, [0], steps=2, out_dir=tmp_path, task="legend2", jobs=1)
    assert [r["miou"] for r in other] == [0.5, 0.5] and all(r["task"] == "legend2" for r in other)
    assert grad_table.run_table(heads, [0], steps=2, out_dir=tmp_path, jobs=1) == rows
    S = legend.summarise(rows, step_ms={"none": 1.5, "nmf implicit": 2.5}, step_mb={"none": 3.0, "nmf implicit": 4.0})
    md = legend.summary_table(S, rows, [0]).splitlines()
    assert len(md) == 4 and md[0].startswith("| head | seed 0 | mIoU") and md[3].endswith("| 2.5 | 4.0 |")
    assert md[2].startswith(f"| none | {rows[0]['miou']:.3f} |")
    assert grad_table.config(10, "legend2").legend.one_colour is False and grad_table.config(10).legend.one_colour is True
    with pytest.raises(ValueError, match="task must be one of"):
        grad_table.config(10, "legend3")


def test_step_memory_orders_the_modes():
    cfg = quick()
    ds = LegendDataset(cfg.batch_size, seed=0, cfg=cfg.legend)
    mb = legend.step_memory(cfg, ["nmf one-step", "nmf implicit", "nmf bptt"], ds)
    assert mb["nmf one-step"] < mb["nmf implicit"] < mb["nmf bptt"], mb


def test_verdict_calls_ties_within_the_seed_spread():
    s = {"a": dict(miou=0.70, miou_std=0.02), "b": dict(miou=0.66, miou_std=0.01), "c": dict(miou=0.60, miou_std=0.0)}
    assert legend.verdict(s, "a", "b") == "a > b"            # 0.04 > 0.03
    s["b"]["miou_std"] = 0.03
    assert legend.verdict(s, "a", "b") == legend.verdict(s, "b", "a") == "tie"
    assert legend.verdict(s, "c", "a") == "a > c"


def test_sees_legend_separates_one_step_and_no_context_from_bptt():
    from hamlib.seg.synthetic import LegendDataset
    cfg = quick()
    ds = LegendDataset(8, 5, cfg.legend)
    reach = {}
    for name in ("none", "nmf one-step", "nmf bptt", "pool"):
        torch.manual_seed(0)
        reach[name] = legend.sees_legend(build_model(legend.with_head(cfg, name).model), ds, n=8, per_image=True)
    assert all(reach["nmf bptt"]) and all(reach["pool"])
    assert sum(reach["none"]) < 8 and reach["nmf one-step"] == reach["none"]   # one-step adds no path
    assert legend.sees_legend(build_model(legend.with_head(cfg, "pool").model), ds, n=2) is True


def test_k_sweep_claims_read_the_curve_as_notebook_06_states_them():
    # notebook 06's BPTT curve: rises to K = 6, drops 0.03 at K = 12 (not flat beyond the training K)
    bptt = {1: 0.60, 2: 0.67, 4: 0.72, 6: 0.72, 8: 0.72, 12: 0.69}
    assert legend.k_sweep_claims(bptt) == dict(rises=True, flat_beyond=False)
    assert legend.k_sweep_claims({**bptt, 12: 0.71}) == dict(rises=True, flat_beyond=True)
    assert legend.k_sweep_claims({1: 0.53, 6: 0.53, 12: 0.52}) == dict(rises=False, flat_beyond=True)
    with pytest.raises(ValueError, match="K = 1"):
        legend.k_sweep_claims({2: 0.5, 6: 0.6})
