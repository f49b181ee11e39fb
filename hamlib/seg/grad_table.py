"""`python -m hamlib.seg.grad_table` moved: the experiment drivers are scripts outside the package now."""

import sys

if __name__ == "__main__":
    sys.exit("python -m hamlib.seg.grad_table moved: from a clone of the repository run\n"
             "    python -m experiments.grid --help")
