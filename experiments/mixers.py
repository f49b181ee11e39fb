"""`python -m experiments.mixers`: notebook 09's grid (every mixer, 3 seeds, the same budget) -> JSON.

    OMP_NUM_THREADS=1 python -m experiments.mixers --tables recall,rank,majority,digits \
        --out data/mixers/results.json

Tables: "recall" (every row of `course.sequences.ROWS` against the number of pairs, hams at r = 16),
"rank" (the NMF Hamburger at r = 4 and 64 against the number of pairs; r = 16 is in "recall"),
"majority" and "digits" (every row). Each run is `course.sequences.train_cell`; the JSON keeps
the command, the config and every run (table, task, row, seed, pairs, rank, acc, params, seconds).
Several --tables groups can run in separate processes with --out parts and be joined by --merge.

    OMP_NUM_THREADS=1 python -m experiments.mixers --cost --lengths 256,512,1024,2048,4096,8192,16384 \
        --out data/mixers/cost.json

--cost instead measures every mixer's forward time and peak memory against the sequence length N
(`course.sequences.cost_vs_length`, inference, batch 1, C = 64, r = 16) and the crossover lengths
from which each one is cheaper than softmax attention (SDPA) at every longer N.
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from notebooks.course import sequences


def plan(tables, pairs, seeds):
    for t in tables:
        if t == "recall":
            yield from (dict(table=t, task="recall", row=row, seed=s, pairs=p, rank=16)
                        for p in pairs for row in sequences.ROWS for s in seeds)
        elif t == "rank":
            yield from (dict(table=t, task="recall", row="nmf", seed=s, pairs=p, rank=r)
                        for r in (4, 64) for p in pairs for s in seeds)
        elif t in ("majority", "digits"):
            yield from (dict(table=t, task=t, row=row, seed=s, pairs=None, rank=None)
                        for row in sequences.ROWS for s in seeds)
        else:
            raise ValueError(f"unknown table {t!r}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.mixers", description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", default="recall,rank,majority,digits")
    p.add_argument("--pairs", default="4,16,64")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", default="data/mixers/results.json")
    p.add_argument("--cost", action="store_true", help="measure cost against length instead of training")
    p.add_argument("--lengths", default="256,512,1024,2048,4096,8192,16384")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--merge", nargs="*", default=None, help="join these part files into --out and exit")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if a.merge is not None:
        parts = [json.loads(Path(f).read_text()) for f in a.merge]
        res = dict(command=[q["command"] for q in parts], config=parts[0]["config"],
                   runs=[r for q in parts for r in q["runs"]])
        out.write_text(json.dumps(res, indent=1) + "\n")
        return res
    torch.set_num_threads(1)
    if a.cost:
        return cost(a, out, argv)
    cfg = dict(steps=a.steps, batch=a.batch, lr=3e-3, channels=64, layers=2, ham_d=128, threads=1,
               torch=torch.__version__)
    res = dict(command="python -m experiments.mixers " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
               config=cfg, runs=[])
    t0 = time.time()
    for cell in plan(a.tables.split(","), [int(x) for x in a.pairs.split(",")], [int(s) for s in a.seeds.split(",")]):
        r = sequences.train_cell(cell["task"], cell["row"], cell["seed"], steps=a.steps, batch=a.batch,
                                 pairs=cell["pairs"] or 16, rank=cell["rank"] or 16)
        res["runs"].append({**cell, **r})
        out.write_text(json.dumps(res, indent=1) + "\n")             # partial results survive a kill
        sys.stderr.write(f"{time.time() - t0:7.0f}s {cell} acc {r['acc']:.3f}\n")
    return res


def cost(a, out, argv):
    lengths = [int(n) for n in a.lengths.split(",")]
    if min(lengths) < 1:
        raise SystemExit(f"--lengths must be positive, got {a.lengths}")
    rows = sequences.cost_vs_length(lengths=lengths, repeats=a.repeats)
    cross = {n: dict(ms=sequences.crossover(rows, n), mib=sequences.crossover(rows, n, key="alloc_mib"))
             for n in dict.fromkeys(r["name"] for r in rows) if n != "attention"}
    res = dict(command="python -m experiments.mixers " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
               config=dict(C=64, rank=16, d=128, steps=6, batch=1, threads=torch.get_num_threads(),
                           repeats=a.repeats, torch=torch.__version__, device="cpu"),
               rows=rows, crossover=cross)
    out.write_text(json.dumps(res, indent=1) + "\n")
    sys.stderr.write(sequences.cost_markdown(rows) + "\n" + json.dumps(cross) + "\n")
    return res


if __name__ == "__main__":
    main()
