"""`python -m hamlib.experiments.trainer_compile` moved to `python -m experiments.trainer_compile` (a script outside the package)."""

if __name__ == "__main__":
    from .._moved import exit_moved

    exit_moved("hamlib.experiments.trainer_compile")
