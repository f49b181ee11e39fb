"""The defaults grid (issue 23): every head of `notebooks.course.defaults.HEADS` on three tasks, 3 seeds.

    python -m experiments.defaults                 # train what is missing (runs/defaults), store, print
    python -m experiments.defaults --jobs 2 --out runs/defaults --store data/defaults/results.json

Each (task, head, seed) is one `grad_table.run_table` row (quick network, 1000 steps, one CPU
thread per run; resumable: a second run trains only what is missing). The rows of the three tasks
are stored with the command, torch version and hardware in --store, which notebook 06 and
experiments/RESULTS.md read; then the tables and the targets are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import torch

from notebooks.course import defaults, grad_table
from notebooks.course.checkpoints import hardware

PROG = "python -m experiments.defaults"
KEEP = ("task", "head", "seed", "miou", "ctx_acc", "params", "ms_per_step", "wall_s", "status")


def main(argv=None) -> str:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="runs/defaults")
    p.add_argument("--store", default=str(defaults.PATH))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for task in defaults.TASK_NAMES:
        rows += grad_table.run_table(list(defaults.HEADS), list(defaults.SEEDS), defaults.STEPS, a.out, task,
                                     "quick", a.jobs)
    data = dict(command=f"{PROG} {shlex.join(sys.argv[1:] if argv is None else argv)}".strip(),
                steps=defaults.STEPS, seeds=list(defaults.SEEDS), heads=list(defaults.HEADS),
                tasks=list(defaults.TASK_NAMES), torch=torch.__version__,
                hardware=f"{hardware().split(',')[0]}, one thread per run, {a.jobs} runs at a time",
                rows=[{k: r[k] for k in KEEP} for r in rows])
    Path(a.store).parent.mkdir(parents=True, exist_ok=True)
    Path(a.store).write_text(json.dumps(data, indent=1) + "\n")
    return defaults.markdown(data["rows"])


if __name__ == "__main__":
    print(main())
