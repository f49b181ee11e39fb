import os

import pytest
import torch

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
