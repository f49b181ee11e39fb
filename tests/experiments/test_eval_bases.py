"""`python -m experiments.eval_bases` on one shipped checkpoint (two draws)."""

from experiments import eval_bases


def test_fixed_draws_and_fresh_bases_on_a_checkpoint():
    (row,) = eval_bases.main(["--heads", "nmf_bptt", "--seeds", "1", "--draws", "2"])
    assert len(row["fixed"]) == 2 and len(row["fresh"]) == 2
    assert all(0 <= v <= 1 for v in row["fixed"] + row["fresh"])
    assert abs(row["fixed"][0] - row["stored"]) < 0.02          # eval seed 0 is what the checkpoint was checked with
