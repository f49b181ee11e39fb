"""`python -m hamlib.bench` moved: the benchmark is a script outside the package now."""

import sys

if __name__ == "__main__":
    sys.exit("python -m hamlib.bench moved: from a clone of the repository run\n"
             "    python -m experiments.bench --help")
