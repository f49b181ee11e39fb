"""course.cheatsheet: notebook 08's tables, on the library's plans and a fake manifest."""

import pytest

from notebooks.course import cheatsheet as cs
from notebooks.course import efficiency
from hamlib.grad import GradPlan


def test_mode_rows_read_off_the_plans():
    rows = {r["mode"]: r for r in cs.mode_rows(6)}
    assert list(rows) == ["one-step", "one-step-bases", "2", "implicit", "bptt"]
    # only the paper's one-step keeps the gradient pixel-wise
    assert [m for m, r in rows.items() if not r["crosses_pixels"]] == ["one-step"]
    # memory grows with K only under BPTT; time also under the implicit mode's Neumann terms
    assert [m for m, r in rows.items() if r["memory_grows"]] == ["bptt"]
    assert [m for m, r in rows.items() if r["time_grows"]] == ["implicit", "bptt"]
    assert rows["2"]["tracked"] == 2 and rows["2"]["free"] == 4
    assert rows["implicit"]["neumann"] == 6 and "6 Neumann terms" in rows["implicit"]["sees"]
    assert rows["bptt"]["sees"].endswith("all 6 steps and the initial coefficients")
    assert rows["one-step-bases"]["sees"] == "the final coefficient step + the last bases update"
    # the library's defaults, one solver each
    assert rows["bptt"]["default_for"] == ["nmf"] and rows["one-step-bases"]["default_for"] == ["cd"]
    assert rows["2"]["default_for"] == ["vq"] and rows["one-step"]["default_for"] == []
    # a truncation deeper than K is BPTT: its memory then grows with K
    assert cs.mode_rows(2, modes=(4,))[0]["memory_grows"]


def test_sees_covers_every_plan_field():
    assert cs.sees(GradPlan(free=3), 3) == "the final coefficient step"
    assert cs.sees(GradPlan(free=1, tracked=2), 3) == "the final coefficient step + the last 2 steps"
    assert cs.sees(GradPlan(free=2, tracked=1), 3) == "the final coefficient step + the last 1 step"


def test_modes_markdown_with_measured_columns():
    rows = cs.mode_rows(6, modes=("one-step", "bptt"))
    measured = [dict(mode=m, K=K, memory_mb=mb, backward_ms=1.0)
                for m, K, mb in (("one-step", 6, 0.1), ("one-step", 12, 0.1), ("bptt", 6, 0.3), ("bptt", 12, 0.5))]
    lines = cs.modes_markdown(rows, measured, cross={"one-step": 0.0, "bptt": 0.1}).splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("| MB at K=6 | MB at K=12 | backward ms at K=6 | max cross-pixel dy_i/dx_j |")
    assert lines[2].startswith("| `one-step` | the final coefficient step | no | no | no | - | 0.100 | 0.100 | 1.00 | 0 |")
    assert "| NMF | 0.300 | 0.500 |" in lines[3]
    plain = cs.modes_markdown(rows).splitlines()
    assert plain[1] == "|---|---|---|---|---|---|" and "MB at" not in plain[0]


@pytest.mark.parametrize("name, canon", [("nmf", "nmf bptt"), ("nmf default", "nmf bptt"), ("nmf bptt", "nmf bptt"),
                                         ("nmf one-step", "nmf one-step"), ("cd default", "cd one-step-bases"),
                                         ("vq", "vq 2"), ("vq 2", "vq 2"), ("attention", "attention"),
                                         ("none", "none"), ("nmf default init=pytorch", "nmf bptt"),
                                         ("nmf default init=reference", "nmf bptt init=reference")])
def test_canonical_head(name, canon):
    assert cs.canonical_head(name) == canon


def _record(task, head, seed, miou, ctx=0.5, kind="hamnet"):
    return dict(kind=kind, task=task, head=head, seed=seed, val=dict(n=8, float32=dict(miou=0.0, ctx_acc=0.0),
                                                                     stored=dict(miou=miou, ctx_acc=ctx)))


def fake_manifest():
    """legend2: three seeds of every shipped head, named as the checkpoint trainer might name them;
    legend1: one seed of three heads; and records the tables must skip."""
    files = {}
    base = {"none": 0.30, "pool": 0.60, "attention": 0.70, "nmf one-step": 0.50, "nmf default": 0.62,
            "cd default": 0.55, "vq default": 0.45}
    for head, m in base.items():
        for s, d in enumerate((-0.01, 0.0, 0.01)):
            files[f"legend2/{head.replace(' ', '_')}_s{s}.pt"] = _record("legend2", head, s, m + d)
    for head, m in {"none": 0.31, "nmf bptt": 0.72, "attention": 0.73}.items():
        files[f"legend1/{head}_s0.pt"] = _record("legend1", head, 0, m)
    files["hamgan/g.pt"] = dict(kind="hamgan", task="digits32", head="ham", seed=0)   # not a HamNet
    files["other/x.pt"] = _record("legend9", "nmf bptt", 0, 0.99)                       # an unknown task
    return {"files": files}


def test_seg_results_group_heads_over_seeds():
    res = cs.seg_results(fake_manifest(), "legend2")
    assert set(res) == {"none", "pool", "attention", "nmf one-step", "nmf bptt", "cd one-step-bases", "vq 2"}
    assert res["nmf bptt"]["seeds"] == [0, 1, 2]
    assert res["nmf bptt"]["miou"] == pytest.approx(0.62) and res["nmf bptt"]["miou_std"] == pytest.approx(0.01)
    assert res["pool"]["ctx_acc"] == pytest.approx(0.5)
    one = cs.seg_results(fake_manifest(), "legend1")
    assert one["nmf bptt"] == dict(miou=0.72, miou_std=0.0, ctx_acc=0.5, seeds=[0])
    assert cs.seg_results({"files": {}}, "legend2") == {}


def test_claim_verdict_uses_the_seed_spread():
    res = dict(a=dict(miou=0.60, miou_std=0.05), b=dict(miou=0.50, miou_std=0.01), c=dict(miou=0.56, miou_std=0.0),
               d=dict(miou=0.53, miou_std=0.03), e=dict(miou=0.53, miou_std=0.01))
    assert cs.claim_verdict(res, "a", "b") == "holds"
    assert cs.claim_verdict(res, "b", "a") == "reversed"
    assert cs.claim_verdict(res, "a", "c").startswith("tie")
    # the spreads add up: 0.07 apart is a tie for 0.05 + 0.03, not for 0.05 + 0.01
    assert cs.claim_verdict(res, "a", "d").startswith("tie")
    assert cs.claim_verdict(res, "a", "e") == "holds"


def test_reproduction_rows_from_a_fake_manifest():
    rows = cs.reproduction_rows(fake_manifest())
    by = {(r["claim"], r["where"]): r for r in rows}
    two, one = "checkpoints, task legend2", "checkpoints, task legend1"
    nmf = by["NMF: one-step gradient > BPTT", two]
    assert nmf["paper"] == "78.3 vs 77.4 (VOC val)" and nmf["verdict"] == "reversed"
    assert nmf["ours"] == "nmf one-step 0.500 ± 0.010 (3 seeds) vs nmf bptt 0.620 ± 0.010 (3 seeds)"
    assert by["CD: one-step gradient > BPTT", two]["verdict"] == "not tested here"
    assert by["CD: one-step gradient > BPTT", two]["ours"] == "cd one-step and cd bptt: not among the checkpoints"
    order = by["NMF > CD > VQ", two]
    assert order["verdict"] == "holds" and order["paper"] == "78.3 > 78.1 > 77.7 (VOC val, one-step)"
    assert order["ours"].startswith("nmf bptt 0.620 > cd one-step-bases 0.550 > vq 2 0.450")
    assert by["a Hamburger head beats self-attention", two]["verdict"] == "reversed"
    assert by["a Hamburger head beats pooling", two]["verdict"] == "tie (within the seeds' spread)"  # 0.62 vs 0.60
    assert by["a Hamburger head beats no context", two]["ours"].startswith("best Hamburger, nmf bptt 0.620")
    # one seed: no spread is printed; the one-step head is missing there
    assert by["a Hamburger head beats self-attention", one]["ours"] == \
        "best Hamburger, nmf bptt 0.720 (1 seed) vs attention 0.730 (1 seed)"
    assert by["NMF: one-step gradient > BPTT", one]["ours"] == "nmf one-step: not among the checkpoints"
    assert ("NMF > CD > VQ", one) not in by
    # what is not reproduced is listed whatever the manifest holds, and unknown tasks are skipped
    assert [r["verdict"] for r in rows[-2:]] == ["not reproduced", "not reproduced"]
    assert not any("legend9" in r["where"] or "0.99" in r["ours"] for r in rows)
    assert [r["claim"] for r in cs.reproduction_rows(None)] == [r["claim"] for r in rows[-2:]]
    assert cs.seg_rows(fake_manifest()) == rows[:-2] and cs.seg_rows({}) == []


def test_reproduction_rows_with_costs():
    measured = [dict(name="nmf", mode="eager", train_ms=2.0, train_mb=1.0),
                dict(name="attention", mode="eager", train_ms=30.0, train_mb=8.0)]
    rows = cs.reproduction_rows({}, macs=efficiency.macs_rows(), measured=measured, measured_at="CPU, N = 2304")
    by = {r["claim"]: r for r in rows}
    assert by["MACs of self-attention, 1 x 512 x 128 x 128"]["verdict"] == "reproduced"
    assert by["MACs of Ham (NMF), 1 x 512 x 128 x 128"]["ours"] == "17.5G (formula)"
    assert by["MACs of Ham (CD), 1 x 512 x 128 x 128"]["verdict"] == "reproduced"   # 16.2G: VQ and CD run 2K + 2 products
    assert all(by[f"parameters of {n}"]["verdict"] == "reproduced" for n in ("self-attention", "Ham (NMF)", "Ham (CD)"))
    t = by["self-attention / NMF ham, training time"]
    assert t["paper"] == "15.5x (GPU, N = 16384)" and t["ours"] == "15.0x (CPU, N = 2304)"
    assert t["verdict"] == "direction holds"
    rev = cs.reproduction_rows({}, measured=[dict(name="nmf", train_ms=3.0, train_mb=1.0),
                                             dict(name="attention", train_ms=1.0, train_mb=2.0)])
    assert rev[0]["verdict"] == "reversed" and rev[1]["verdict"] == "direction holds"


def test_reproduction_markdown():
    rows = cs.reproduction_rows(fake_manifest())
    lines = cs.reproduction_markdown(rows).splitlines()
    assert lines[0] == "| claim | paper | ours | verdict | where |" and len(lines) == len(rows) + 2
    assert lines[-1] == "| " + " | ".join(rows[-1][k] for k in ("claim", "paper", "ours", "verdict", "where")) + " |"


def test_mixer_rows_read_notebook_09s_data():
    from notebooks.course import sequences
    rows = cs.mixer_rows(sequences.load_results(), sequences.load_cost())
    assert len(rows) == 5 and all(r["where"] == "notebook 09" for r in rows)
    assert rows[0]["verdict"] in ("confirmed up to 16 pairs", "not confirmed")
    assert all(r["verdict"] in ("attention > nmf", "nmf > attention", "tie") for r in rows[1:4])
    assert "from N = " in rows[4]["ours"]
    cs.reproduction_markdown(rows)
