"""The command lines that moved out of the package say where they went, and the new ones exist."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from hamlib._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_command_names_the_new_one(old):
    run = subprocess.run([sys.executable, "-m", old], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1
    assert f"python -m {MOVED[old]} --help" in run.stderr, run.stderr
    assert hasattr(importlib.import_module(MOVED[old]), "main"), f"{MOVED[old]} has no main()"
