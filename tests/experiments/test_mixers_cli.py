"""`python -m experiments.mixers`: the grid's command line (a tiny grid) and --cost (tiny lengths)."""

import json

import pytest

from experiments import mixers


def test_cost_writes_rows_and_crossovers(tmp_path):
    out = tmp_path / "cost.json"
    res = mixers.main(["--cost", "--lengths", "16,32", "--repeats", "1", "--out", str(out)])
    stored = json.loads(out.read_text())
    assert stored == json.loads(json.dumps(res))
    assert {r["N"] for r in stored["rows"]} == {16, 32} and "--cost" in stored["command"]
    assert set(stored["crossover"]) == {"linear", "nmf", "cd", "vq", "mean"}


def test_cost_rejects_a_bad_length(tmp_path):
    with pytest.raises(SystemExit, match="--lengths must be positive"):
        mixers.main(["--cost", "--lengths", "0,16", "--out", str(tmp_path / "c.json")])


def test_grid_runs_and_records_every_cell(tmp_path):
    out = tmp_path / "grid.json"
    res = mixers.main(["--tables", "majority", "--seeds", "0", "--steps", "2", "--batch", "4", "--out", str(out)])
    assert [r["row"] for r in res["runs"]] == list(mixers.sequences.ROWS)
    assert json.loads(out.read_text())["runs"][0]["acc"] == res["runs"][0]["acc"]
