"""Which gradient mode and temperature VQ and NMF need: the grid, its table and the diagnostics.

The measured study (CPU, one thread per process, at most two processes; every cell 3 seeds):

    S="python -m hamlib.experiments.gradient_study"
    $S marker                                            # notebook 05's task, the default grid, ~8 min
    $S marker --cells "vq 2 50,vq 2 10,vq one-step-bases 10"
    $S legend --cells "vq 2 100,vq 2 20,vq 2 5,vq one-step-bases 20,vq one-step-bases 5,vq bptt 20,vq bptt 5,nmf 3"
    $S legend2 --cells "none,pool,nmf bptt,nmf 2,nmf one-step-bases,vq 2 100,vq 2 50,vq 2 20,vq 2 10,vq 2 5,\
vq one-step-bases 20,vq one-step-bases 5,vq bptt 20"    # 1000 steps, ~1-2 min a run on a busy 2-core machine
    $S table                                             # every seed, from runs/gradient_study/*.csv
    $S diagnose --cells "vq 2 100,vq 2 5" --seeds 0      # trained marker networks (--steps 0: fresh)
    $S diagnose-legend --task two-colour --cells "vq 2 100" --seeds 0,1,2 \
        --ckpt "runs/gradient_study/ckpt/two-colour_t100.0/vq_2_s{seed}/last.pt"
    $S cost --shape 1 128 64 64 --rank 16 --rounds 30   # NMF modes: one training step of the ham, eager/compiled

A cell is "<solver> <grad> <inv_t>" (e.g. "vq 2 20", "nmf bptt 100", "none"); inv_t is read by
VQ and CD only. Two tasks, each trained from scratch, the same budget for every cell:
- "marker" (notebook 05): every pixel's label is the class of one 2 x 2 marker somewhere in a
  16 x 16 noise image; two 3x3 ConvBNReLU, a v2 Hamburger (width 16, r = 4, K = 6), a 1x1
  classifier; 150 Adam iterations (`hamlib.viz.gradients`'s loop, data and test set);
  score = test pixel accuracy.
- "legend" (`hamlib.seg.grad_table`'s quick config, one-colour): score = validation mIoU,
  ctx = accuracy on the gray-shape pixels that need the legend. "legend2": the same quick
  config on the two-colour task (shape must be bound to colour: one global average fails).
Rows go to out/<task>.csv as they finish (an interrupted grid resumes); `table` prints every seed.

Diagnostics (`diagnose`), on the marker network's signed lower-bread features:
- `assignment_stats`: entropy (in units of log r) and max of VQ's final soft assignment C per
  inv_t: how close to hard k-means the layer is.
- `marker_jacobian`: ||d y_i / d x_j|| summed over the marker's pixels j, for pixels i far from
  the marker, per mode and inv_t, against the same norm at pixel i itself: how much gradient
  the backward pass sends to the one place that holds the answer.
- `same_cluster`: the fraction of pixels whose hard cluster (argmax of C) is the marker's:
  with hard assignments a pixel reads only the centroid of its own cluster.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hamlib.ham import Hamburger
from hamlib.md import NMF2D, VQ2D, make_solver, random_bases
from hamlib.measure import markdown_table, peak_tensor_memory
from hamlib.seg.model import build_model
from hamlib.seg.train import build_datasets, train
from hamlib.runtime import load_checkpoint
from hamlib.analysis import step_jacobian_radius
from notebooks.course import legend
from notebooks.course.grad_table import config, read_csv
from notebooks.course.marker import MarkerConfig, MarkerNet, marker_accuracy, marker_batch, train_marker

log = logging.getLogger(__name__)

TASKS = ("marker", "legend", "legend2")  # legend2: the quick config on the two-colour task
FIELDS = ("task", "cell", "seed", "steps", "score", "ctx", "wall_s", "status")


REFERENCES = ("none", "pool", "attention")  # pool and attention: the legend tasks only


def parse_cell(cell: str):
    """'vq 2 20' -> ('vq', 2, 20.0); 'nmf bptt' -> ('nmf', 'bptt', 100.0); 'none' -> ('none', None, None)."""
    parts = cell.split()
    if len(parts) == 1 and parts[0] in REFERENCES:
        return parts[0], None, None
    if len(parts) not in (2, 3) or parts[0] not in ("nmf", "vq", "cd"):
        raise ValueError(f"cell must be one of {REFERENCES} or '<nmf|vq|cd> <grad> [inv_t]', got {cell!r}")
    grad = int(parts[1]) if parts[1].isdigit() else parts[1]
    return parts[0], grad, float(parts[2]) if len(parts) == 3 else 100.0


# ---------------------------------------------------------------------------
# The marker task with any solver (notebook 05's MarkerNet with ham=solver)
# ---------------------------------------------------------------------------


def marker_config(cell: str, **kw) -> MarkerConfig:
    """Notebook 05's MarkerConfig for a cell: "none", or "<solver> <grad> [inv_t]"."""
    solver, grad, inv_t = parse_cell(cell)
    if solver == "none":
        return MarkerConfig(context="none", **kw)
    if solver in REFERENCES:
        raise ValueError(f"the marker network takes 'none' or a solver cell, got {cell!r}")
    return MarkerConfig(context=grad, ham=solver, inv_t=inv_t, **kw)


def marker_net(cell: str) -> MarkerNet:
    """Notebook 05's MarkerNet for a cell (its solver, gradient mode and temperature)."""
    c = marker_config(cell)
    return MarkerNet(c.context, c.classes, c.width, c.rank, c.steps, c.ham, c.inv_t)


def train_marker_cell(cell: str, seed: int, iters: int = 150):
    """`marker.train_marker` (Adam, fresh CPU batches from the global RNG seeded with `seed`,
    test set from seed 1000) on the cell's MarkerNet. Returns (final test accuracy, model)."""
    res = train_marker(marker_config(cell, iters=iters, seed=seed, eval_every=iters, device="cpu"))
    return res["final_accuracy"], res["model"]


# ---------------------------------------------------------------------------
# The legend task (hamlib.seg's quick config, one-colour)
# ---------------------------------------------------------------------------

_DATA = {}


def legend_cell(cell: str, seed: int, steps: int = 1000, task: str = "one-colour", out_dir="runs/gradient_study"):
    """One (cell, seed) of grad_table's legend run, with the cell's inv_t. Returns (mIoU, ctx acc)."""
    solver, grad, inv_t = parse_cell(cell)
    cfg = config(steps, task)
    key = (steps, task)
    if key not in _DATA:
        _DATA[key] = build_datasets(cfg)
    head = solver if solver in REFERENCES else f"{solver} {grad}"
    if solver in ("vq", "cd"):
        cfg.model.head.ham = {**cfg.model.head.ham, "inv_t": inv_t}
    rows, _ = legend.run_heads(cfg, [head], [seed], _DATA[key], out_dir=f"{out_dir}/ckpt/{task}_t{inv_t}")
    return rows[0]["miou"], rows[0]["ctx_acc"]


# ---------------------------------------------------------------------------
# The grid: rows in a CSV, resumable
# ---------------------------------------------------------------------------


def read_rows(path) -> list:
    return read_csv(path, ints=("seed", "steps"), floats=("score", "ctx", "wall_s"))


def run_grid(task: str, cells, seeds, out_dir, steps=None) -> list:
    """Train every (cell, seed) of `task` not already in out_dir/<task>.csv at this step count;
    returns the rows of these cells and seeds. steps: marker iterations (default 150) or legend
    training steps (default 1000)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    for c in cells:
        parse_cell(c)  # a bad name fails before any training
    steps = steps or (150 if task == "marker" else 1000)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{task}.csv"
    done = {(r["cell"], r["seed"]) for r in read_rows(path) if r["steps"] == steps}
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        if new:
            w.writeheader()
        for cell in cells:  # every seed of a cell before the next cell
            for seed in seeds:
                if (cell, seed) in done:
                    continue
                t0 = time.perf_counter()
                try:
                    if task == "marker":
                        score, ctx = train_marker_cell(cell, seed, steps)[0], float("nan")
                    else:
                        task_name = "one-colour" if task == "legend" else "two-colour"
                        score, ctx = legend_cell(cell, seed, steps, task_name, out_dir=out_dir)
                    status = "ok" if math.isfinite(score) else "diverged"
                except FloatingPointError:
                    score = ctx = float("nan")
                    status = "diverged"
                row = dict(task=task, cell=cell, seed=seed, steps=steps, score=score, ctx=ctx,
                           wall_s=time.perf_counter() - t0, status=status)
                w.writerow(row)
                f.flush()
                log.info("%s %-22s seed %d  %.3f  (%.0f s)", task, cell, seed, score, row["wall_s"])
    return [r for r in read_rows(path) if r["cell"] in cells and r["seed"] in seeds and r["steps"] == steps]


def markdown(rows) -> str:
    """One line per cell: the score of every seed, mean ± std (and ctx acc for the legend task)."""
    seeds = sorted({r["seed"] for r in rows})
    legend = any(math.isfinite(r["ctx"]) for r in rows)
    header = ["cell", *(f"seed {s}" for s in seeds), "mean ± std"] + (["legend acc"] if legend else [])
    table = []
    for c in dict.fromkeys(r["cell"] for r in rows):
        per = {r["seed"]: r for r in rows if r["cell"] == c}
        xs = [per[s]["score"] for s in seeds if s in per and math.isfinite(per[s]["score"])]
        mean = statistics.fmean(xs) if xs else float("nan")
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        line = [c, *(f"{per[s]['score']:.3f}" if s in per else "" for s in seeds), f"{mean:.3f} ± {std:.3f}"]
        if legend:
            line.append(f"{statistics.fmean(per[s]['ctx'] for s in per):.3f}")
        table.append(line)
    return markdown_table(header, table)


# ---------------------------------------------------------------------------
# Diagnostics: how hard is VQ's assignment, and how much gradient reaches the marker
# ---------------------------------------------------------------------------


def lower_features(model, x):
    """The ham's input in a MarkerNet: the lower bread's output (signed for VQ/CD), (B, d, H, W)."""
    with torch.no_grad():
        return model.context.lower_bread(model.local(x))


def assignment_stats(X, inv_ts=(100.0, 20.0, 5.0), rank=4, steps=6, seed=0) -> list:
    """VQ's final soft assignment C on features X (B, d, N) after `steps` steps from seeded
    random bases, per inv_t: rows (inv_t, entropy / log r, mean max_r C, fraction of positions
    with max C > 0.99, gain = mean trace of the softmax's Jacobian t (diag C - C C^T): how
    much a change of the similarities S = Xn^T Dn moves the assignment; it vanishes as C
    turns one-hot, and with it every gradient that could move a pixel to another cluster)."""
    rows = []
    for t in inv_ts:
        D = random_bases("vq", (X.shape[0], X.shape[1], rank), generator=torch.Generator().manual_seed(seed),
                         dtype=X.dtype)
        s = make_solver("vq", X, inv_t=t)
        with torch.no_grad():
            Ct = None
            for _ in range(steps):
                D, Ct = s.step(D, Ct)
            C = s.final(D, Ct)                                    # (B, r, N)
        H = -(C * C.clamp_min(1e-30).log()).sum(1) / math.log(rank)  # (B, N)
        mx = C.max(1).values
        gain = t * (C * (1 - C)).sum(1)  # trace of dC/dS = t (diag C - C C^T): 0 when C is one-hot
        rows.append(dict(inv_t=t, entropy=H.mean().item(), max_c=mx.mean().item(),
                         hard=(mx > 0.99).float().mean().item(), gain=gain.mean().item()))
    return rows


def marker_jacobian(ham, X, marker_mask, far_mask, seed=0):
    """Gradient that reaches the marker from far pixels, through `ham` (an MD module on (1, d, H, W)).

    Loss = <w, y> summed over the far pixels (w random); returns dict(to_marker = mean over marker
    pixels of ||dL/dx_j||, to_self = mean over far pixels of ||dL/dx_i|| (their own and their
    neighbours'), ratio)."""
    g = torch.Generator().manual_seed(seed)
    x = X.detach().double().clone().requires_grad_(True)
    ham = ham.double()
    torch.manual_seed(seed)
    y = ham(x)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64) * far_mask
    (gx,) = torch.autograd.grad((y * w).sum(), x)
    n = gx[0].norm(dim=0)                                    # (H, W)
    to_marker = n[marker_mask[0, 0]].mean().item()
    to_self = n[far_mask[0, 0]].mean().item()
    return dict(to_marker=to_marker, to_self=to_self, ratio=to_marker / max(to_self, 1e-300))


def truncation_agreement(X, inv_t, grads, rank=4, steps=6, seed=0) -> dict:
    """grad -> cosine between dL/dX under `grad` and under "bptt" (the derivative of the
    forward, up to ||x||, which VQ holds constant), for L = <w, VQ2D(X)> with w random;
    X (B, d, H, W), eval mode (fixed bases), float64. Near 1: the cheap mode is the gradient."""
    w = torch.randn(X.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g = {}
    for grad in ("bptt", *grads):
        x = X.detach().double().clone().requires_grad_(True)
        (gx,) = torch.autograd.grad((VQ2D(X.shape[1], rank=rank, steps=steps, grad=grad, inv_t=inv_t).eval()
                                     .double()(x) * w).sum(), x)
        g[str(grad)] = gx.flatten()
    return {k: F.cosine_similarity(v, g["bptt"], dim=0).item() for k, v in g.items() if k != "bptt"}


def diagnose(model, inv_ts=(100.0, 20.0, 5.0), grads=("one-step", "one-step-bases", 1, 2, "bptt"), images=8,
             seed=0) -> dict:
    """On `images` marker test images through `model` (a MarkerNet): assignment stats per
    inv_t, the fraction of far pixels in the marker's hard cluster, and marker_jacobian per
    (grad, inv_t) of a VQ2D (r, K as the model's ham) in eval mode (fixed bases)."""
    x, _ = marker_batch(images, generator=torch.Generator().manual_seed(1000 + seed))
    Z = lower_features(model, x)                                         # (B, d, H, W)
    B, d, H, W = Z.shape
    marker = x[:, 1:].sum(1, keepdim=True) > 0                          # (B, 1, H, W)
    far = F.max_pool2d(marker.float(), 9, 1, 4) == 0                    # beyond a 4-pixel halo
    ham = model.context.ham
    stats = assignment_stats(Z.reshape(B, d, H * W), inv_ts, ham.rank, ham.steps, seed)
    for r in stats:  # spectral radius of one solver step's Jacobian: > 1 lets BPTT's gradient grow like radius^K
        r["radius"] = statistics.fmean(step_jacobian_radius("vq", Z[b].reshape(d, -1), rank=ham.rank, steps=ham.steps,
                                                            inv_t=r["inv_t"]) for b in range(min(B, 4)))
        r["cos_to_bptt"] = truncation_agreement(Z, r["inv_t"], [g for g in grads if g != "bptt"], ham.rank,
                                                ham.steps, seed)
    jac, same = [], []
    for t in inv_ts:
        for grad in grads:
            vals = [marker_jacobian(VQ2D(d, rank=ham.rank, steps=ham.steps, grad=grad, inv_t=t).eval(),
                                    Z[b:b + 1], marker[b:b + 1], far[b:b + 1]) for b in range(B)]
            jac.append(dict(inv_t=t, grad=str(grad), ratio=statistics.fmean(v["ratio"] for v in vals),
                            to_marker=statistics.fmean(v["to_marker"] for v in vals)))
        # with hard assignments a far pixel reads the centroid of its own cluster only
        vq = VQ2D(d, rank=ham.rank, steps=ham.steps, inv_t=t).eval()
        D = vq._initial_bases(Z.reshape(B, d, -1).double())
        s = make_solver("vq", Z.reshape(B, d, -1).double(), inv_t=t)
        with torch.no_grad():
            Dk, Ct = D, None
            for _ in range(ham.steps):
                Dk, Ct = s.step(Dk, Ct)
            C = s.final(Dk, Ct)                                         # (B, r, N)
        # weight of the marker's cluster(s) in a far pixel's assignment: sum_k C_ki * mean_{j in marker} C_kj
        m = marker.reshape(B, -1).double()
        cm = (C * m[:, None]).sum(2) / m.sum(1, keepdim=True)          # (B, r): the marker's mean assignment
        share = (C * cm[:, :, None]).sum(1)                             # (B, N)
        fm = far.reshape(B, -1)
        same.append(dict(inv_t=t, share=(share[fm]).mean().item()))
    return dict(stats=stats, jacobian=jac, same_cluster=same)


def legend_diagnose(cell="vq 2 100", steps=0, seed=0, images=32, inv_ts=(100.0, 20.0, 5.0), ckpt=None,
                    task="one-colour") -> dict:
    """The legend network's ham input (signed features, 8 x 8), fresh (steps=0), after `steps`
    of training, or from a trained run's checkpoint `ckpt` (its last.pt): assignment_stats per
    inv_t, and the weight a gray-shape position puts on the legend's cluster(s) (as
    `diagnose`'s same_cluster)."""
    solver, grad, inv_t = parse_cell(cell)
    cfg = config(max(steps, 1), task)
    cfg.model.head.ham = {**cfg.model.head.ham, "inv_t": inv_t}
    cfg = dataclasses.replace(legend.with_head(cfg, f"{solver} {grad}"), seed=seed, resume=False, progress=False,
                              out_dir=f"runs/gradient_study/diag_{solver}_{grad}_{seed}")
    data = build_datasets(cfg)
    torch.manual_seed(seed)
    if ckpt:
        model = build_model(cfg.model)
        model.load_state_dict(load_checkpoint(ckpt, restore_rng=False)["model"])
    else:
        model = train(cfg, data)["model"] if steps else build_model(cfg.model)
    model.eval()
    val = data[1]
    x, lab, ctx = val.images[:images], val.labels[:images], val.needs_context[:images]
    seen = {}
    hook = model.head.context.ham.register_forward_hook(lambda m, i, o: seen.setdefault("X", i[0].detach()))
    with torch.no_grad():
        model(x)
    hook.remove()
    Z = seen["X"]                                                   # (B, d, h, w)
    B, d, h, w = Z.shape
    legend = ((lab > 0) & ~ctx).float()[:, None]                    # (B, 1, H, W): the legend's pixels
    query = ctx.float()[:, None]
    k = lab.shape[-1] // h
    legend, query = F.avg_pool2d(legend, k) > 0.25, F.avg_pool2d(query, k) > 0.25   # (B, 1, h, w)
    ham = model.head.context.ham
    X = Z.reshape(B, d, h * w).double()
    stats = assignment_stats(X, inv_ts, ham.rank, ham.steps, seed)
    for r in stats:
        r["radius"] = statistics.fmean(step_jacobian_radius("vq", X[b], rank=ham.rank, steps=ham.steps,
                                                            inv_t=r["inv_t"]) for b in range(4))
        r["cos_to_bptt"] = truncation_agreement(Z, r["inv_t"], ("one-step", "one-step-bases", 1, 2), ham.rank,
                                                ham.steps, seed)
    share = []
    for t in inv_ts:
        s = make_solver("vq", X, inv_t=t)
        D = random_bases("vq", (B, d, ham.rank), generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
        with torch.no_grad():
            Ct = None
            for _ in range(ham.steps):
                D, Ct = s.step(D, Ct)
            C = s.final(D, Ct)                                      # (B, r, N)
        m, q = legend.reshape(B, -1).double(), query.reshape(B, -1)
        ok = m.sum(1) > 0
        cm = (C * m[:, None]).sum(2) / m.sum(1, keepdim=True).clamp_min(1)   # (B, r)
        sh = (C * cm[:, :, None]).sum(1)                                   # (B, N)
        share.append(dict(inv_t=t, share=sh[ok][q[ok]].mean().item()))
    return dict(stats=stats, same_cluster=share)


# ---------------------------------------------------------------------------
# Cost of one training step of the ham alone, per NMF mode, eager and compiled
# ---------------------------------------------------------------------------


def step_cost(grads=("one-step", "one-step-bases", 2, 3, "bptt"), shape=(1, 128, 64, 64), rank=16, steps=6,
              rounds=15, compiled=False, seed=0) -> dict:
    """grad -> (ms, MB): one forward + backward of NMF2D(grad) on a ReLU'd random input, one
    thread, the modes interleaved round by round, the minimum of `rounds`; MB is
    `hamlib.measure.peak_tensor_memory` (eager). compiled: torch.compile (graph breaks allowed).
    validate=False: the input check's host sync would break the compiled graph."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x0 = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
        w = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1))
        fns, mb = {}, {}
        for grad in grads:
            m = NMF2D(shape[1], rank=rank, steps=steps, grad=grad, validate=False).train()  # no host sync
            mb[grad] = peak_tensor_memory(lambda m=m: (m(x0.clone().requires_grad_(True)) * w).sum().backward()) / 2**20
            fns[grad] = torch.compile(m) if compiled else m
        best = dict.fromkeys(grads, float("inf"))
        for i in range(rounds + 2):  # two warm-up rounds (compilation happens there)
            for grad, f in fns.items():
                x = x0.clone().requires_grad_(True)
                t0 = time.perf_counter()
                (f(x) * w).sum().backward()
                if i >= 2:
                    best[grad] = min(best[grad], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return {g: (1000 * best[g], mb[g]) for g in grads}


# ---------------------------------------------------------------------------

MARKER_CELLS = (["none"] + [f"nmf {g}" for g in ("one-step", "one-step-bases", 2, 3, "bptt")]
                + [f"vq {g} {t}" for t in (100, 20, 5) for g in ("one-step", "one-step-bases", 1, 2, "bptt")]
                + ["cd one-step-bases 100"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=(*TASKS, "table", "diagnose", "diagnose-legend", "cost"))
    p.add_argument("--cells", default=None, help="comma-separated cells (default: the marker grid)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=None, help="marker iterations (150) / legend steps (1000)")
    p.add_argument("--out", default="runs/gradient_study")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", type=int, nargs=4, default=(1, 128, 64, 64))
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--task", default="one-colour", choices=("one-colour", "two-colour"), help="diagnose-legend")
    p.add_argument("--ckpt", default=None, help="diagnose-legend: a trained run's last.pt ({seed} is filled in)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    cells = [c.strip() for c in a.cells.split(",")] if a.cells else list(MARKER_CELLS)
    if a.what in TASKS:
        run_grid(a.what, cells, seeds, a.out, a.steps)
    elif a.what == "table":
        for task in TASKS:
            rows = read_rows(Path(a.out) / f"{task}.csv")
            if rows:
                log.info("%s\n\n%s\n", task, markdown(rows))
    elif a.what == "diagnose-legend":
        for seed in seeds:
            for cell in cells:
                ckpt = a.ckpt.format(seed=seed) if a.ckpt else None
                res = legend_diagnose(cell, a.steps or 0, seed, ckpt=ckpt, task=a.task)
                log.info("legend %s seed %d %s", cell, seed, f"from {ckpt}" if ckpt else f"after {a.steps or 0} steps")
                for r, sc in zip(res["stats"], res["same_cluster"]):
                    log.info("  inv_t %5.0f  entropy/log r %.3f  mean max C %.3f  hard %.2f  softmax gain %.3g"
                             "  step-Jacobian radius %.2f  gray pixels' weight on the legend's cluster %.3f",
                             r["inv_t"], r["entropy"], r["max_c"], r["hard"], r["gain"], r["radius"], sc["share"])
                    log.info("    cosine of each mode's dL/dX with BPTT's: %s",
                             "  ".join(f"{k} {v:.3f}" for k, v in r["cos_to_bptt"].items()))
    elif a.what == "diagnose":
        for seed in seeds:
            for cell in cells:
                t0 = time.perf_counter()
                acc, model = train_marker_cell(cell, seed, 150 if a.steps is None else a.steps)
                res = diagnose(model, seed=seed)
                log.info("%s seed %d (acc %.3f, %.0f s)", cell, seed, acc, time.perf_counter() - t0)
                for r in res["stats"]:
                    log.info("  inv_t %5.0f  entropy/log r %.3f  mean max C %.3f  hard %.2f  softmax gain %.3g"
                             "  step-Jacobian radius %.2f", r["inv_t"], r["entropy"], r["max_c"], r["hard"], r["gain"],
                             r["radius"])
                    log.info("    cosine of each mode's dL/dX with BPTT's: %s",
                             "  ".join(f"{k} {v:.3f}" for k, v in r["cos_to_bptt"].items()))
                for r in res["same_cluster"]:
                    log.info("  inv_t %5.0f  far pixels' weight on the marker's cluster %.3f", r["inv_t"], r["share"])
                for r in res["jacobian"]:
                    log.info("  inv_t %5.0f  grad %-15s  gradient to marker / to self %.2e", r["inv_t"], r["grad"],
                             r["ratio"])
    else:
        for compiled in (False, True):
            res = step_cost(shape=tuple(a.shape), rank=a.rank, rounds=a.rounds, compiled=compiled)
            base = res["one-step"][0]
            log.info("compiled=%s  shape %s r=%d, one thread, min of %d", compiled, tuple(a.shape), a.rank, a.rounds)
            for g, (ms, mb) in res.items():
                log.info("  %-15s %8.2f ms  %5.2fx one-step  %7.1f MB", g, ms, ms / base, mb)


if __name__ == "__main__":
    main()
