"""Old command lines that moved out of the package: each says where it went and exits with status 1."""

import sys

MOVED = {
    "hamlib.experiments.checkpoints": "experiments.checkpoints",
    "hamlib.experiments.gan_checkpoints": "experiments.checkpoints",
    "hamlib.experiments.grad_table": "experiments.grid",
    "hamlib.experiments.gradient_study": "experiments.grid",
    "hamlib.experiments.trainer_compile": "experiments.trainer_compile",
    "hamlib.bench": "experiments.bench",
    "hamlib.seg.grad_table": "experiments.grid",
}


def exit_moved(old: str) -> None:
    """Exit naming the command that replaced `python -m old` (run from a clone of the repository)."""
    sys.exit(f"python -m {old} moved: the experiment drivers are scripts outside the package now; "
             f"from a clone of the repository run\n    python -m {MOVED[old]} --help")
