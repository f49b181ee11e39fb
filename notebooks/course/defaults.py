"""Block defaults chosen on three tasks (issue 23): the stored grid, its tables and the targets checked.

Three tasks (`tasks.TASKS`), the same quick network and budget for every head (1000 steps, seeds
0, 1, 2, one CPU thread per run): legend2 (shape bound to colour), texture (real pictures,
texture bound to colour) and legend1 (one colour: a global summary suffices). Every table has
the plain v1 block (`hamlib.context_block("plain")`) and both attention blocks as rows.

- `HEADS`: the rows; `load()` the stored grid (data/defaults/results.json; a test pins its `sha256()`);
- `task_summary(rows, task)`: `legend.summarise` of one task; `strong_attention(summary)`: the
  better attention row of a task (by mean: the baseline a Hamburger has to meet);
- `targets(rows)`: the issue's targets, per task: NMF and CD defaults within the seed spread of the
  strong attention baseline (or above), VQ above pooling, no default below the plain block;
  verdicts by `legend.verdict` (a difference counts only beyond the sum of the two seed stds);
- `markdown(rows)`: every task's table with the seeds, then the targets (`targets_table`).

The command that wrote the data: `python -m experiments.defaults` (about 30 min on 2 cores).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hamlib.measure import markdown_table
from . import legend

TASK_NAMES = ("legend2", "texture", "legend1")
STEPS, SEEDS = 1000, (0, 1, 2)
HEADS = ("none", "pool", "attention", "attention-plain", "plain v1",
         "nmf default init=reference", "nmf default init=pytorch", "nmf default version=v1 init=pytorch",
         "cd default init=reference", "cd default init=pytorch", "vq default init=reference", "vq default init=pytorch")
# the candidate defaults of each solver (gradient mode, version, temperature: the library's)
DEFAULT_ROWS = {s: (f"{s} default init=reference", f"{s} default init=pytorch") for s in ("nmf", "cd", "vq")}
PATH = Path(__file__).resolve().parents[2] / "data" / "defaults" / "results.json"


def _read(path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: the defaults grid is not stored; run python -m experiments.defaults")
    return path.read_bytes()


def sha256(path=PATH) -> str:
    """The stored grid's sha256 (tests/course/test_defaults.py pins it)."""
    return hashlib.sha256(_read(path)).hexdigest()


def load(path=PATH) -> dict:
    """The stored grid: {"command", "steps", "seeds", "heads", "tasks", "torch", "hardware", "rows"}."""
    return json.loads(_read(path))


def task_summary(rows, task: str) -> dict:
    """legend.summarise of one task's rows, heads in HEADS order."""
    rs = [r for r in rows if r["task"] == task]
    if not rs:
        raise ValueError(f"no rows of task {task!r} (tasks: {sorted({r['task'] for r in rows})})")
    order = [h for h in HEADS if any(r["head"] == h for r in rs)]
    return legend.summarise(sorted(rs, key=lambda r: (order.index(r["head"]), r["seed"])))


def strong_attention(summary: dict) -> str:
    """The attention row ("attention" or "attention-plain") with the higher mean mIoU."""
    return max(("attention", "attention-plain"), key=lambda h: summary[h]["miou"])


def _meets(summary, a, b, need) -> tuple:
    v = legend.verdict(summary, a, b)
    ok = {"tie or above": v != f"{b} > {a}", "above": v == f"{a} > {b}"}[need]
    return v, ok


def targets(rows, tasks=TASK_NAMES) -> list:
    """Rows (task, head, target, verdict, met): the NMF and CD rows against the strong attention
    baseline (tie or above), the VQ rows against pooling (above), every Hamburger row against the
    plain v1 block (tie or above)."""
    out = []
    for t in tasks:
        S = task_summary(rows, t)
        att = strong_attention(S)
        for solver, heads in DEFAULT_ROWS.items():
            for h in heads:
                if h not in S:
                    continue
                other, need = (("pool", "above") if solver == "vq" else (att, "tie or above"))
                for b, nd in ((other, need), ("plain v1", "tie or above")):
                    v, ok = _meets(S, h, b, nd)
                    out.append(dict(task=t, head=h, target=f"{nd} {b}", verdict=v, met=ok))
    return out


def targets_table(rows, tasks=TASK_NAMES) -> str:
    """The targets of `targets` as a Markdown table (a missed one in bold)."""
    cells = [[r["task"], r["head"], r["target"], r["verdict"], "yes" if r["met"] else "**no**"] for r in targets(rows, tasks)]
    return markdown_table(["task", "head", "target", "verdict", "met"], cells)


def markdown(rows, tasks=TASK_NAMES) -> str:
    """Every task's table (per seed, mean ± std, legend accuracy, parameters, ms per step of the
    runs) and the targets table."""
    parts = []
    for t in tasks:
        S = task_summary(rows, t)
        seeds = sorted({r["seed"] for r in rows if r["task"] == t})
        parts += [f"**{t}** (strong attention baseline: {strong_attention(S)})", "",
                  legend.summary_table(S, [r for r in rows if r["task"] == t], seeds), ""]
    parts += ["**Targets** (verdicts by the course's tie rule: a difference counts beyond the sum of the two seed stds)",
              "", targets_table(rows, tasks)]
    return "\n".join(parts)
