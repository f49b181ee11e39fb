"""`python -m hamlib.experiments.grad_table` moved to `python -m experiments.grid` (a script outside the package)."""

if __name__ == "__main__":
    from .._moved import exit_moved

    exit_moved("hamlib.experiments.grad_table")
