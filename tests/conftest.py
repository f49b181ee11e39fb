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


# ---------------------------------------------------------------------------------------------
# Two test processes (pytest-xdist: `-n auto --maxprocesses 2 --dist loadscope` in pyproject).
# Each gets its share of the cores for torch, and tests go to a process in groups:
# - the browser tests all to one (one JupyterLab and one Chromium, whose `runs` fixture starts
#   every notebook once at the start of the session);
# - each notebook's nbval cells to one (they share a kernel and run in order);
# - the negative control and the wrong-answer check one notebook at a time (minutes each);
# - any other test with the rest of its file (module-scoped fixtures, e.g. the exported
#   models, are built once).
# The slowest groups are sent first (SLOW_FIRST, by node id), so that no process is left with a
# long one at the end while the other idles.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))

PER_NOTEBOOK = ("test_exercises.py::test_negative_control", "test_exercise_answers.py::test_autograde_rejects")
SLOW_FIRST = ("tests/browser/", "test_exercise_answers.py::test_autograde_rejects", "test_exercises.py::test_negative_control",
              "notebooks/06_", "notebooks/07_", "notebooks/05_", "tests/test_export.py", "tests/experiments/test_trainer_compile.py",
              "notebooks/")


def group(nodeid: str) -> str:
    """The work unit a test belongs to (tests of one unit run in one process, in order)."""
    if nodeid.startswith("tests/browser/"):
        return "browser"
    if any(key in nodeid for key in PER_NOTEBOOK):
        return nodeid
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items):
    rank = lambda item: next((k for k, key in enumerate(SLOW_FIRST) if key in item.nodeid), len(SLOW_FIRST))
    items.sort(key=rank)  # stable: a unit's tests keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Groups(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return group(nodeid)

    return Groups(config, log)
