"""`python -m hamlib.bench` moved to `python -m experiments.bench` (a script outside the package)."""

if __name__ == "__main__":
    from ._moved import exit_moved

    exit_moved("hamlib.bench")
