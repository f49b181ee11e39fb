"""`python -m experiments.bench`: the command line (what it measures: tests/course/test_efficiency.py)."""

from experiments import bench


def test_cli(capsys):
    out = bench.main(["--shape", "1", "8", "4", "4", "--rank", "2", "--steps", "1", "--repeats", "1",
                      "--cases", "floor,nmf,nmf-K3,nmf-bptt,nmf-bases,nmf-ftz,ham-nmf", "--no-train"])
    assert "nmf-K3" in out and "ham-nmf" in out and "shape (1, 8, 4, 4)" in out


def test_cli_compile_adds_the_mode_column():
    out = bench.main(["--shape", "1", "8", "4", "4", "--rank", "2", "--steps", "1", "--repeats", "1",
                      "--cases", "floor", "--no-train", "--compile"])
    assert "without fullgraph" in out and "| floor | compiled |" in out and "| mode |" in out


def test_cli_mixers_cost_against_length():
    out = bench.main(["--mixers", "--lengths", "16,64", "--repeats", "1"])
    assert "token mixers on (1, N, 64)" in out
    for name in ("attention", "linear", "nmf", "cd", "vq", "mean"):
        assert f"| 16 | {name} |" in out and f"| 64 | {name} |" in out
    assert "crossover N" in out
