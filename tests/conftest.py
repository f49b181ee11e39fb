import os

# Progress bars off in tests and in the notebook kernels nbval starts (they inherit the env).
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Notebooks run their quick settings in CI unless someone asks otherwise.
os.environ.setdefault("HAMLIB_FULL", "0")
