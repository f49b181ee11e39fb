"""course.defaults: the three-task defaults grid, its tables and the issue's targets."""

import pytest

from notebooks.course import defaults as D


def _rows(means):
    """Rows of one task: head -> three per-seed mIoUs."""
    return [dict(task=t, head=h, seed=s, miou=v[s], ctx_acc=v[s] / 2, params=10, ms_per_step=1.0, wall_s=1.0,
                 status="ok") for t, m in means.items() for h, v in m.items() for s in range(3)]


BASE = {"none": (0.3, 0.3, 0.3), "pool": (0.5, 0.52, 0.51), "attention": (0.6, 0.62, 0.61),
        "attention-plain": (0.7, 0.72, 0.71), "plain v1": (0.69, 0.70, 0.71)}


def test_targets_use_the_stronger_attention_and_the_tie_rule():
    m = dict(BASE, **{"nmf default init=reference": (0.5, 0.6, 0.7),     # wide spread: a tie with attention-plain
                      "nmf default init=pytorch": (0.60, 0.61, 0.62),    # tight and below: missed
                      "vq default init=pytorch": (0.51, 0.51, 0.52),     # = pooling: a tie is not 'above'
                      "vq default init=reference": (0.60, 0.61, 0.60)})
    rows = _rows({"legend2": m})
    S = D.task_summary(rows, "legend2")
    assert D.strong_attention(S) == "attention-plain"
    got = {(r["head"], r["target"]): (r["verdict"], r["met"]) for r in D.targets(rows, ["legend2"])}
    assert got["nmf default init=reference", "tie or above attention-plain"] == ("tie", True)
    assert got["nmf default init=pytorch", "tie or above attention-plain"] == (
        "attention-plain > nmf default init=pytorch", False)
    assert got["nmf default init=pytorch", "tie or above plain v1"][1] is False
    assert got["vq default init=pytorch", "above pool"] == ("tie", False)
    assert got["vq default init=reference", "above pool"][1] is True
    assert not any(h.startswith("cd") for h, _ in got)                  # rows that were not run are left out
    md = D.markdown(rows, ["legend2"])
    assert "**legend2** (strong attention baseline: attention-plain)" in md and "| seed 0 | seed 1 | seed 2 |" in md
    assert md.count("**no**") == 5          # nmf pytorch x 2, vq pytorch x 2, vq reference vs plain v1


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="no rows of task 'marker'"):
        D.task_summary(_rows({"legend2": BASE}), "marker")


def test_missing_store_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m experiments.defaults"):
        D.load(tmp_path / "results.json")


STORED_SHA256 = "ca1718c783d6e52d41f5c6161b38e90f87ddcb1709979973f177e6fc875c689d"


def test_the_stored_grid_is_complete_and_pinned():
    assert D.sha256() == STORED_SHA256
    R = D.load()
    assert R["tasks"] == list(D.TASK_NAMES) and R["heads"] == list(D.HEADS) and R["steps"] == D.STEPS
    cells = {(r["task"], r["head"], r["seed"]) for r in R["rows"]}
    assert cells == {(t, h, s) for t in D.TASK_NAMES for h in D.HEADS for s in D.SEEDS}
    assert all(r["status"] == "ok" for r in R["rows"])


def test_what_the_stored_grid_shows():
    rows = D.load()["rows"]
    miou = {(r["task"], r["head"], r["seed"]): r["miou"] for r in rows}
    # every task needs context: each run with a context block is 0.05 above no context of its seed,
    # except one run that learned nothing (legend2, NMF with PyTorch's init, seed 0: 0.352)
    stuck = [(t, h, s) for t in D.TASK_NAMES for h in D.HEADS[1:] for s in D.SEEDS
             if miou[t, h, s] < miou[t, "none", s] + 0.05]
    assert stuck == [("legend2", "nmf default init=pytorch", 0)]
    for t in D.TASK_NAMES:
        S = D.task_summary(rows, t)
        assert all(S[h]["miou"] > S["none"]["miou"] + 0.1 for h in D.HEADS[1:]), t
        # hamlib's v1 with PyTorch's init trains to the plain block's numbers, seed by seed
        assert all(miou[t, "plain v1", s] == miou[t, "nmf default version=v1 init=pytorch", s] for s in D.SEEDS)
        # the init is a tie for every solver on every task at this budget
        for solver in ("nmf", "cd", "vq"):
            assert D.legend.verdict(S, f"{solver} default init=pytorch", f"{solver} default init=reference") == "tie"
