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
from notebooks.course import defaults, sequences

PATH = Path(__file__).with_name("RESULTS.md")
BLOCKS = {"legend2": lambda root: hamnet_table("legend2", root),
          "legend1": lambda root: hamnet_table("legend1", root),
          "hamgan": gan_table,
          "texture": lambda root: hamnet_table("texture", root),
          "defaults": lambda root: defaults_tables(),
          "mixers": lambda root: mixers_tables(),
          "mixers_cost": lambda root: mixers_cost()}


def defaults_tables() -> str:
    """The defaults grid (data/defaults/results.json): every task's table, per seed, and the targets."""
    R = defaults.load()
    return "\n".join([f"```bash\n{R['command']}\n```", "",
                      f"{R['steps']} steps of batch 16 (quick network), seeds {', '.join(map(str, R['seeds']))}; "
                      f"{R['hardware']}; torch {R['torch']}.", "", defaults.markdown(R["rows"])])


def mixers_tables() -> str:
    """Notebook 09's grid (data/mixers/results.json): every table, per seed, with its commands."""
    R = sequences.load_results()
    cfg = R["config"]
    parts = ["Commands (4 processes, joined by `--merge`):", "", "```bash"]
    parts += [f"OMP_NUM_THREADS=1 {c}" for c in R["command"]] + ["```", "",
              f"{cfg['steps']} steps of batch {cfg['batch']}, AdamW lr {cfg['lr']}, C = {cfg['channels']}, "
              f"{cfg['layers']} blocks, hams d = {cfg['ham_d']}, {cfg['threads']} thread, torch {cfg['torch']}; "
              "mean ± std over seeds 0, 1, 2 (the seeds' values in brackets).", ""]
    for table, title, by in (("recall", "Associative recall (hams at r = 16)", "pairs"),
                             ("rank", "Recall, the NMF Hamburger's rank r", "pairs"),
                             ("majority", "Majority (32 symbols of 8)", None),
                             ("digits", "scikit-learn digits as 16 patches", None)):
        parts += [f"**{title}**", "", sequences.table_markdown(R["runs"], table, by=by), ""]
    parts.append(f"Largest number of pairs recalled (mean accuracy >= 0.5): `{sequences.rank_claim(R['runs'])}`")
    return "\n".join(parts)


def mixers_cost() -> str:
    """Notebook 09's cost against length (data/mixers/cost.json)."""
    C = sequences.load_cost()
    cross = ", ".join(f"{n} from N = {c['ms']}" for n, c in C["crossover"].items())
    return "\n".join([f"```bash\nOMP_NUM_THREADS=1 {C['command']}\n```", "",
                       sequences.cost_markdown(C["rows"]), "",
                       f"Faster than SDPA at every longer measured N: {cross}. Peak memory: no crossover "
                       "(fused SDPA keeps no N x N matrix)."])
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
