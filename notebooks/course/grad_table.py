"""The resumable grid behind every table: each (head, seed) of a task trained from scratch, one row each.

A head is a name `legend.head_spec` reads ("none", "pool", "attention", "nmf bptt",
"vq 2 inv_t=20", ...); a task is one of `tasks.TASKS`:

- legend1 / legend2: a named legend config (`quick`: tiny ResNet, CPU; `legend_full`: wider,
  20000 images) with `steps` training steps and the head (`legend.run_heads`); the row's score
  is the validation mIoU, `ctx_acc` the accuracy on the gray-shape pixels that need the legend.
- marker: notebook 05's MarkerNet with the head's context (a context block or a Hamburger:
  solver, gradient mode and the options rank, steps, inv_t), `steps` Adam iterations
  (`marker.train_marker`); the row's score `acc` is the test pixel accuracy.
A metric that does not apply to the task (a marker row's mIoU, a legend row's acc) is None.

`run_table` appends rows (`FIELDS`) to out_dir/runs.csv as they finish, so an interrupted grid
resumes; rows of another task, config or step count in the same file are never taken for these.
The command line is `python -m experiments.grid`.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from hamlib.layers import count_params
from hamlib.md import SOLVERS
from hamlib.seg.train import build_datasets
from . import legend
from .marker import train_marker
from .tasks import LEGEND_BASES, legend_config, task as get_task

log = logging.getLogger(__name__)

SOLVER_NAMES = ("nmf", "cd", "vq")
MODES = ("one-step", "one-step-bases", "2", "implicit", "bptt")
TABLE_HEADS = ("none", "pool", "attention") + tuple(f"{s} {m}" for s in SOLVER_NAMES for m in MODES)
MARKER_HEADS = (("none",) + tuple(f"nmf {g}" for g in ("one-step", "one-step-bases", 2, 3, "bptt"))
                + tuple(f"vq {g} inv_t={t}" for t in (100, 20, 5) for g in ("one-step", "one-step-bases", 1, 2, "bptt"))
                + ("cd one-step-bases inv_t=100",))
FIELDS = ("head", "seed", "task", "config", "steps", "miou", "ctx_acc", "acc", "params", "ms_per_step", "wall_s",
          "status")
MARKER_OPTIONS = ("rank", "steps", "inv_t", "init")   # the Hamburger options a MarkerNet takes

_DATA = {}  # per process: the legend data sets, built once per (task, steps, base)


def config(steps: int, task: str = "legend1", base: str = "quick"):
    """The legend task's TrainConfig (`tasks.legend_config`) with `steps` training steps."""
    return legend_config(task, steps, base)


def marker_config(head: str, **kw):
    """Notebook 05's MarkerConfig for a head name: a context ("none", "pool", "attention",
    "attention-plain") or a Hamburger head whose options are among MARKER_OPTIONS; kw: further
    MarkerConfig fields (iters, seed, ...)."""
    spec = legend.head_spec(head)
    base = get_task("marker").full()
    if spec["context"] in ("none", "pool", "attention", "attention-plain", "plain"):
        return dataclasses.replace(base, context=spec["context"], **kw)
    if spec["context"] != "ham" or set(spec["ham"]) - {"ham", "grad", *MARKER_OPTIONS}:
        raise ValueError(f"the marker network takes 'none', 'pool', 'attention', 'attention-plain' or a Hamburger head with options "
                         f"{MARKER_OPTIONS}, got {head!r}")
    ham = dict(spec["ham"])
    solver, grad = ham.pop("ham"), ham.pop("grad")
    return dataclasses.replace(base, context=SOLVERS[solver].default_grad if grad is None else grad, ham=solver, **ham, **kw)


def _marker_row(head: str, seed: int, steps: int) -> dict:
    res = train_marker(marker_config(head, iters=steps, seed=seed, eval_every=steps, device="cpu"))
    acc = res["final_accuracy"]
    return dict(miou=None, ctx_acc=None, acc=acc, params=count_params(res["model"]),
                ms_per_step=1000 * res["seconds"] / steps, status="ok" if math.isfinite(acc) else "diverged")


def run_one(head: str, seed: int, steps: int, out_dir: str, task: str = "legend1", base: str = "quick",
            threads=1) -> dict:
    """Train one (head, seed) of a task; returns a row of FIELDS (threads=None keeps the caller's setting)."""
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    if task == "marker":
        try:
            row = _marker_row(head, seed, steps)
        except FloatingPointError:
            row = dict(miou=None, ctx_acc=None, acc=math.nan, params=None, ms_per_step=math.nan,
                       status="diverged")
        row = dict(head=head, seed=seed, **row, wall_s=time.perf_counter() - t0)
    else:
        cfg = config(steps, task, base)
        if (task, steps, base) not in _DATA:
            _DATA[task, steps, base] = build_datasets(cfg)
        rows, _ = legend.run_heads(cfg, [head], [seed], _DATA[task, steps, base], out_dir=f"{out_dir}/ckpt/{task}")
        row = dict(rows[0], acc=None)
    return {**row, "task": task, "config": base if task != "marker" else "marker", "steps": steps}


def run_rows(todo, steps, out_dir, task="legend1", base="quick", jobs=1):
    """Train every (head, seed) pair of `todo`; yields rows as they finish. jobs=1 trains in
    this process (with this process's thread setting), jobs > 1 in one-thread processes."""
    if jobs == 1:
        for h, s in todo:
            yield run_one(h, s, steps, out_dir, task, base, threads=None)
        return
    with ProcessPoolExecutor(jobs, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_one, h, s, steps, out_dir, task, base) for h, s in todo]
        for fut in as_completed(futures):
            yield fut.result()


def _number(v: str, cast):
    return None if v in ("", "None") else cast(v)


def read_rows(path) -> list:
    """The rows of a grid CSV (none if it does not exist yet), numbers converted."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("seed", "steps", "params"):
            r[k] = _number(r[k], int)
        for k in ("miou", "ctx_acc", "acc", "ms_per_step", "wall_s"):
            r[k] = _number(r[k], float)
    return rows


def sort_rows(rows, heads):
    """Rows in the order of `heads`, then by seed."""
    return sorted(rows, key=lambda r: (list(heads).index(r["head"]), r["seed"]))


def run_table(heads, seeds, steps, out_dir, task="legend1", base="quick", jobs=1) -> list:
    """Train every (head, seed) of the task not already in out_dir/runs.csv at this config and step
    count; returns the rows for these heads and seeds, in the order of heads. A bad head name
    fails before any training."""
    get_task(task)
    if task != "marker" and base not in LEGEND_BASES:
        raise ValueError(f"base must be one of {LEGEND_BASES}, got {base!r}")
    for h in heads:
        marker_config(h) if task == "marker" else legend.head_spec(h)
    base = "marker" if task == "marker" else base
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.csv"
    same = lambda r: (r["task"], r["config"], r["steps"]) == (task, base, steps)  # noqa: E731
    done = {(r["head"], r["seed"]) for r in read_rows(path) if same(r)}
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        todo = [(h, s) for s in seeds for h in heads if (h, s) not in done]  # a seed at a time
        for row in run_rows(todo, steps, out_dir, task, base, jobs):
            w.writerow(row)
            f.flush()
            log.info("%s %-26s seed %d  %.3f  (%.0f s)", task, row["head"], row["seed"],
                     row["acc"] if task == "marker" else row["miou"], row["wall_s"])
    rows = [r for r in read_rows(path) if r["head"] in heads and r["seed"] in seeds and same(r)]
    return sort_rows(rows, heads)
