"""`python -m hamlib.experiments.checkpoints` moved to `python -m experiments.checkpoints` (a script outside the package)."""

if __name__ == "__main__":
    from .._moved import exit_moved

    exit_moved("hamlib.experiments.checkpoints")
