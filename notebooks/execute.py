"""Re-run notebooks top to bottom on a fresh kernel and store their outputs, as CI expects.

    python notebooks/execute.py                      # every notebook here
    python notebooks/execute.py notebooks/01_*.ipynb # some

Quick (CPU) settings are forced (HAMLIB_FULL=0), progress bars are off, and
widget state is stripped from the metadata, so the stored outputs are the ones
nbval will compare against in CI. Prints each notebook's wall time.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

HERE = Path(__file__).resolve().parent


def execute(path: Path, timeout: int = 1200) -> float:
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    dt = time.perf_counter() - t0
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return dt


if __name__ == "__main__":
    os.environ.update(HAMLIB_FULL="0", TQDM_DISABLE="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    paths = [Path(p) for p in sys.argv[1:]] or sorted(HERE.glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: {execute(p.resolve()):.1f} s", flush=True)
