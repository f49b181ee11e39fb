"""Every solver x gradient mode on the colour-by-legend task, beside attention, pooling and none.

    python -m hamlib.seg.grad_table --steps 1000 --seeds 0,1,2 --jobs 2 --out runs/grad_table
    python -m hamlib.seg.grad_table --config legend_full --task two-colour --steps 3000 --jobs 7

(`python -m hamlib.experiments.grad_table` is the same command.) Each (head, seed) trains a
named legend config of `hamlib.seg.train` from scratch for the same number of steps, one CPU
thread per job: `quick` (tiny ResNet, CPU) or `legend_full` (wider, 20000 images, GPU); the
Hamburger is the config's own (a v2 block; its rank r is the config's) with the head's solver
and gradient mode. Tasks: "one-colour" (both legend shapes share a colour, so one global
summary suffices) and "two-colour" (each gray shape takes the colour of the legend shape of
its kind: the network must bind shape to colour, which a global average cannot do). Rows go
to out/runs.csv as they finish, so an interrupted table resumes where it stopped. Then the
cost of one training step is measured apart from training, on an idle process: milliseconds
(one thread, fastest of `--repeats` interleaved rounds) and peak MB of tensor storage
(counted op by op, the same on every run). out/table.md holds the table with every seed;
the README quotes the measured tables ("Choosing the gradient").
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from hamlib.seg.train import CONFIGS, build_datasets
from . import legend

log = logging.getLogger(__name__)

SOLVER_NAMES = ("nmf", "cd", "vq")
MODES = ("one-step", "one-step-bases", "2", "implicit", "bptt")
TABLE_HEADS = ("none", "pool", "attention") + tuple(f"{s} {m}" for s in SOLVER_NAMES for m in MODES)
FIELDS = ("head", "seed", "task", "config", "steps", "miou", "ctx_acc", "params", "ms_per_step", "wall_s",
          "status")
TASKS = ("one-colour", "two-colour")

_DATA = {}  # per worker process: the data sets, built once


def config(steps: int, task: str = "one-colour", base: str = "quick"):
    """The named legend config (quick: CPU; legend_full: wider, 20000 images, GPU) with `steps`
    training steps (the poly schedule spans them) on `task`."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if base not in ("quick", "legend_full"):
        raise ValueError(f"base must be 'quick' or 'legend_full', got {base!r}")
    cfg = dataclasses.replace(CONFIGS[base](), steps=steps, log_every=max(steps // 10, 1), ckpt_every=0,
                              eval_every=0)
    cfg.legend = dataclasses.replace(cfg.legend, one_colour=task == "one-colour")
    return cfg


def run_one(head: str, seed: int, steps: int, out_dir: str, task: str = "one-colour", base: str = "quick",
            threads=1) -> dict:
    """Train one (head, seed); returns a row of FIELDS (threads=None keeps the caller's setting)."""
    if threads:
        torch.set_num_threads(threads)
    cfg = config(steps, task, base)
    key = (steps, task, base)
    if key not in _DATA:
        _DATA[key] = build_datasets(cfg)
    rows, _ = legend.run_heads(cfg, [head], [seed], _DATA[key], out_dir=f"{out_dir}/ckpt")
    return {**rows[0], "task": task, "config": base, "steps": steps}


def run_rows(todo, steps, out_dir, task="one-colour", base="quick", jobs=1):
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


def read_csv(path, ints=(), floats=()) -> list:
    """The rows of a results CSV (none if it does not exist yet), with the named columns
    converted to int (empty or "None" -> None) and float."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ints:
            r[k] = int(r[k]) if r[k] not in ("", "None") else None
        for k in floats:
            r[k] = float(r[k])
    return rows


def read_rows(path: Path) -> list:
    return read_csv(path, ints=("seed", "steps", "params"), floats=("miou", "ctx_acc", "ms_per_step", "wall_s"))


def sort_rows(rows, heads):
    """Rows in the order of `heads`, then by seed."""
    return sorted(rows, key=lambda r: (list(heads).index(r["head"]), r["seed"]))


def run_table(heads, seeds, steps, out_dir, task="one-colour", base="quick", jobs=1) -> list:
    """Train every (head, seed) not already in out_dir/runs.csv (an interrupted table resumes);
    returns the rows for these heads, seeds, task, config and steps. Rows of another task,
    config or step count in the same file are kept apart, never taken for these."""
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
            log.info("%-22s seed %d  mIoU %.3f  (%.0f s)", row["head"], row["seed"], row["miou"], row["wall_s"])
    rows = [r for r in read_rows(path) if r["head"] in heads and r["seed"] in seeds and same(r)]
    return sort_rows(rows, heads)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", default=",".join(TABLE_HEADS), help="comma-separated head names (default: all)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--task", default="one-colour", choices=TASKS)
    p.add_argument("--config", default="quick", choices=("quick", "legend_full"))
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--out", default="runs/grad_table")
    p.add_argument("--repeats", type=int, default=15, help="rounds of the interleaved step timing")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    heads = [h.strip() for h in a.heads.split(",") if h.strip()]
    seeds = [int(s) for s in a.seeds.split(",")]
    for h in heads:
        legend.head_spec(h)  # a bad name fails now, not after an hour of training
    t0 = time.perf_counter()
    rows = run_table(heads, seeds, a.steps, a.out, a.task, a.config, a.jobs)
    cfg = config(a.steps, a.task, a.config)
    train_set = build_datasets(cfg)[0]
    summary = legend.summarise(rows, step_ms=legend.step_times(cfg, heads, train_set, repeats=a.repeats),
                               step_mb=legend.step_memory(cfg, heads, train_set))
    table = legend.summary_table(summary, rows, seeds)
    (Path(a.out) / "table.md").write_text(
        f"config {a.config}, task {a.task}, {a.steps} steps, seeds {a.seeds}: `python -m hamlib.seg.grad_table "
        f"--config {a.config} --task {a.task} --steps {a.steps} --seeds {a.seeds}`\n\n"
        + table + "\n")
    log.info("%s\n(%d rows, %.0f s)", table, len(rows), time.perf_counter() - t0)


if __name__ == "__main__":
    main()
