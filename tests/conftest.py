import os
import sys
from pathlib import Path

import pytest
import torch

# pytest imports test files in importlib mode (tests/test_train.py and tests/seg/test_train.py
# share a name) and so leaves sys.path alone; processes started with the "spawn" method
# (the DDP tests) unpickle their worker by module name, "tests.seg.test_train", and inherit
# sys.path: the repository root must be on it.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Progress bars off in tests and in the notebook kernels nbval starts (they inherit the env).
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Notebooks run their quick settings in CI unless someone asks otherwise.
os.environ.setdefault("HAMLIB_FULL", "0")


@pytest.fixture
def one_thread():
    """One torch thread for a test: on tiny tensors threads only add overhead and noise."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
