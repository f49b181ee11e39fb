"""Every table's grid: heads x seeds of one task, trained from scratch, resumable, then its table.

    G="python -m experiments.grid"
    $G legend1 --steps 1000 --seeds 0,1,2 --jobs 2                 # every solver x gradient mode (TABLE_HEADS)
    $G legend2 --config legend_full --steps 3000 --jobs 7          # the same on the two-colour task, GPU config
    $G legend2 --heads "none,pool,nmf bptt,vq 2 inv_t=100,vq 2 inv_t=20,vq 2 inv_t=5" --seeds 0,1,2,3,4
    $G marker                                                      # notebook 05's task, MARKER_HEADS, 150 iterations

Heads are `legend.head_spec` names (a VQ/CD temperature is the option inv_t=); tasks are
`tasks.TASKS`. Rows go to <out>/runs.csv as they finish (`grad_table.run_table`: a second run
trains only what is missing, so the same command prints the table of a finished grid). For the
legend tasks the cost of one training step is then measured apart from training unless
--no-cost: milliseconds (one thread, heads interleaved, fastest of --repeats rounds) and peak
MB of tensor storage (counted op by op). <out>/<task>.md holds the table with every seed.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import statistics
import sys
from pathlib import Path

from hamlib.measure import markdown_table
from hamlib.seg.train import build_datasets
from notebooks.course import grad_table, legend
from notebooks.course.tasks import TASKS

PROG = "python -m experiments.grid"
log = logging.getLogger(__name__)


def score_table(rows, key="acc") -> str:
    """One line per head: rows[key] of every seed and mean ± std over the finite ones."""
    seeds = sorted({r["seed"] for r in rows})
    lines = []
    for h in dict.fromkeys(r["head"] for r in rows):
        per = {r["seed"]: r[key] for r in rows if r["head"] == h}
        xs = [v for v in per.values() if math.isfinite(v)]
        mean = statistics.fmean(xs) if xs else math.nan
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        lines.append([h, *(f"{per[s]:.3f}" if s in per else "" for s in seeds), f"{mean:.3f} ± {std:.3f}"])
    return markdown_table(["head", *(f"seed {s}" for s in seeds), "mean ± std"], lines)


def table(task, rows, cfg=None, heads=(), repeats=15) -> str:
    """The task's Markdown table of rows: legend tasks through `legend.summary_table` (with the
    step cost measured on cfg when given), the marker task as test accuracy per seed."""
    if task == "marker":
        return score_table(rows, "acc")
    step_ms = step_mb = None
    if cfg is not None:
        train_set = build_datasets(cfg)[0]
        step_ms = legend.step_times(cfg, heads, train_set, repeats=repeats)
        step_mb = legend.step_memory(cfg, heads, train_set)
    summary = legend.summarise(rows, step_ms=step_ms, step_mb=step_mb)
    return legend.summary_table(summary, rows, sorted({r["seed"] for r in rows}))


def main(argv=None) -> str:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=tuple(TASKS))
    p.add_argument("--heads", default=None, help="comma-separated head names (default: TABLE_HEADS / MARKER_HEADS)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 1000; marker: 150 iterations)")
    p.add_argument("--config", default="quick", choices=("quick", "legend_full"), help="legend tasks' base config")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--out", default="runs/grid")
    p.add_argument("--repeats", type=int, default=15, help="rounds of the interleaved step timing")
    p.add_argument("--no-cost", action="store_true", help="skip the step-cost measurement")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    default = grad_table.MARKER_HEADS if a.task == "marker" else grad_table.TABLE_HEADS
    heads = [h.strip() for h in a.heads.split(",") if h.strip()] if a.heads else list(default)
    seeds = [int(s) for s in a.seeds.split(",")]
    steps = a.steps or (150 if a.task == "marker" else 1000)
    rows = grad_table.run_table(heads, seeds, steps, a.out, a.task, a.config, a.jobs)
    measure = a.task != "marker" and not a.no_cost
    cfg = grad_table.config(steps, a.task, a.config) if measure else None
    md = table(a.task, rows, cfg, heads, a.repeats)
    what = f"task {a.task}, {'' if a.task == 'marker' else f'config {a.config}, '}{steps} steps, seeds {a.seeds}"
    command = f"{PROG} {shlex.join(sys.argv[1:] if argv is None else argv)}"
    text = f"{what}: `{command}`\n\n{md}\n"
    Path(a.out, f"{a.task}.md").write_text(text)
    return text


if __name__ == "__main__":
    print(main())
