"""Write experiments/RESULTS.md: its generated tables from the data in the repository, its recorded ones kept.

    python -m experiments.results            # rewrite the generated blocks of experiments/RESULTS.md
    python -m experiments.results --check    # exit 1 if the file differs from a fresh generation

A generated block sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->`; `BLOCKS[NAME]`
makes its text from the checkpoint manifest (`root`, default `default_root()`). Everything
outside the blocks is recorded text (tables whose raw data is not in the repository, each with
its command and date) and is left as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from experiments.checkpoints import gan_table, hamnet_table

PATH = Path(__file__).with_name("RESULTS.md")
BLOCKS = {"legend2": lambda root: hamnet_table("legend2", root),
          "legend1": lambda root: hamnet_table("legend1", root),
          "hamgan": gan_table}
BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end: \2 -->)", re.S)


def generate(text: str, root=None) -> str:
    """text with every generated block's body replaced by BLOCKS[name](root); KeyError for an unknown block."""
    return BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)](root) + "\n" + m.group(4), text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.results", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=None, help="checkpoint store (default: data/checkpoints)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if the file is stale")
    a = p.parse_args(argv)
    old = PATH.read_text()
    new = generate(old, a.root)
    if a.check:
        if new != old:
            print(f"{PATH} differs from a fresh generation: run python -m experiments.results", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
