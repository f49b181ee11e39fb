"""Evaluation output across thread counts and CPU kernel sets, each in a fresh subprocess.

The same NMF / VQ / CD blocks (Hamburger v2, eval, seeded weights) on the same input, large enough
(2 x 64 x 32 x 32) that ATen's reductions and the BLAS split work between threads, are computed with
torch.set_num_threads(1) and (2), and with an older instruction set forced by the environment
variables of tests/test_kernel_robustness.py. Threads: bit-identical. Kernel sets: the vectorised
kernels round differently (a different order of the same float32 sums), so the outputs agree to a
relative tolerance, not bitwise; the test asserts that tolerance and that the kernels did change.
"""
import os
import subprocess
import sys

import torch

from tests.test_kernel_robustness import OLD_CPU  # the repository root is on sys.path (tests/conftest.py)

SCRIPT = """
import sys, torch
from hamlib import Hamburger
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
x = torch.randn(2, 64, 32, 32)
out = {}
for kind in ("nmf", "vq", "cd"):
    torch.manual_seed(1)
    out[kind] = Hamburger(64, ham=kind, rank=16, steps=6).eval()(x).detach()
out["capability"] = torch.backends.cpu.get_cpu_capability()
torch.save(out, sys.argv[2])
"""
KINDS = ("nmf", "vq", "cd")
ISA_TOL = 1e-4  # relative to max |output|: float32 sums reordered over 6 solver steps


def run(tmp_path, threads, env=None, name="out"):
    path = tmp_path / f"{name}{threads}.pt"
    subprocess.run([sys.executable, "-c", SCRIPT, str(threads), str(path)], check=True,
                   env={**os.environ, **(env or {})}, capture_output=True, text=True)
    return torch.load(path, weights_only=True)


def test_eval_output_is_bit_identical_for_one_and_two_threads(tmp_path):
    one, two = run(tmp_path, 1), run(tmp_path, 2)
    for kind in KINDS:
        assert torch.equal(one[kind], two[kind]), (kind, (one[kind] - two[kind]).abs().max().item())


def test_eval_output_across_cpu_kernel_sets_within_tolerance(tmp_path):
    now, old = run(tmp_path, 1), run(tmp_path, 1, {**OLD_CPU}, name="old")
    assert old["capability"] == "DEFAULT" and now["capability"] != "DEFAULT"   # the kernels did change
    for kind in KINDS:
        err = (now[kind] - old[kind]).abs().max().item()
        assert err <= ISA_TOL * now[kind].abs().max().item(), (kind, err)
