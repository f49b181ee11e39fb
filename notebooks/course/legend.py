"""Every head on the colour-by-legend task with the same budget (notebook 06, the grids, the checkpoints).

- `HEAD_SPECS`: named context blocks (no context, pooling, self-attention, the plain v1 block, Hamburgers with
  each solver, one-step or BPTT) as overrides of a config's head; `head_spec` also reads
  any "<solver> <grad mode>" name, e.g. "cd one-step-bases" or "nmf 2"; `with_head`
  applies one to a `hamlib.seg.train.TrainConfig`.
- `run_heads(...)`: train each (head, seed) with one config and one data set
  (`hamlib.seg.train.train`); rows of mIoU, accuracy on the pixels that need the legend
  (`context_accuracy`), parameters and time per step.
- `step_times`, `step_memory`: the cost of one training step per head, measured apart.
- `summarise`, `summary_table`, `ablation_claims`: means over seeds, the Markdown table,
  and the paper's ablation claims checked on these rows; `k_sweep_claims`: the train-K /
  test-K claims on one evaluation-K curve.
- `sees_legend`: does autograd connect a gray-shape pixel to the legend at all?

The pictures of these runs are in `segmentation`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time

import torch
import torch.nn.functional as F

from hamlib.layers import count_params
from hamlib.grad import canonical_grad
from hamlib.md import GRAD_MODES, SOLVERS, MatrixDecomposition2D
from hamlib.measure import interleaved_times, markdown_table, peak_tensor_memory
from hamlib.seg.metrics import confusion_matrix, iou_from_confusion, predict
from hamlib.seg.model import build_model
from hamlib.seg.train import train

HEAD_SPECS = {
    "none": dict(context="none"),
    "pool": dict(context="pool"),
    "attention": dict(context="attention"),
    "attention-plain": dict(context="attention-plain"),
    "plain v1": dict(context="plain"),
    "nmf one-step": dict(context="ham", ham=dict(ham="nmf", grad="one-step")),
    "nmf bptt": dict(context="ham", ham=dict(ham="nmf", grad="bptt")),
    "cd one-step": dict(context="ham", ham=dict(ham="cd", grad="one-step")),
    "cd bptt": dict(context="ham", ham=dict(ham="cd", grad="bptt")),
    "vq one-step": dict(context="ham", ham=dict(ham="vq", grad="one-step")),
    "vq bptt": dict(context="ham", ham=dict(ham="vq", grad="bptt")),
}


def _value(v: str):
    """'4' -> 4, '0.5' -> 0.5, 'none' -> None, anything else stays a string."""
    if v.lower() == "none":
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def head_spec(name: str) -> dict:
    """HEAD_SPECS[name], or a Hamburger head named "<solver> [<grad>] [key=value ...]": solver
    nmf/cd/vq; grad a mode, a number of steps or "default" (the solver's own; also when left
    out); key=value pairs are further `hamlib.Hamburger` options, e.g. "nmf bptt rank=4",
    "nmf default init=pytorch", "vq 2 bases=learned"."""
    if name in HEAD_SPECS:
        return HEAD_SPECS[name]
    solver, *rest = name.split() or [""]
    grad, bad = None, False
    if rest and "=" not in rest[0]:
        mode = rest.pop(0)
        try:
            grad = None if mode == "default" else canonical_grad(mode)
        except ValueError:
            bad = True
    opts = dict(r.split("=", 1) for r in rest if "=" in r)
    if solver not in SOLVERS or bad or len(opts) != len(rest):
        raise ValueError(f"head must be one of {tuple(HEAD_SPECS)} or '<solver> [<grad>] [key=value ...]' with "
                         f"solver in {tuple(SOLVERS)} and grad in {GRAD_MODES}, a step count or 'default', "
                         f"got {name!r}")
    if solver == "nmf" and "inv_t" in opts:
        raise ValueError(f"head {name!r}: inv_t is the temperature of VQ and CD; NMF has none (leave it out)")
    return dict(context="ham", ham=dict(ham=solver, grad=grad, **{k: _value(v) for k, v in opts.items()}))


def with_head(cfg, name: str):
    """A copy of cfg whose head context is head_spec(name) (ham options merged into cfg's)."""
    spec = head_spec(name)
    cfg = copy.deepcopy(cfg)
    cfg.model.head.context = spec["context"]
    cfg.model.head.ham = {**cfg.model.head.ham, **spec.get("ham", {})}
    return cfg


@torch.no_grad()
def context_accuracy(model, dataset, batch_size=128, limit=None) -> float:
    """Accuracy on the gray-shape pixels only: the pixels whose class needs the legend (of the
    first `limit` images, default all)."""
    model.eval()
    hits = total = 0
    for i in range(0, min(len(dataset), limit or len(dataset)), batch_size):
        x, y = dataset.images[i:i + batch_size], dataset.labels[i:i + batch_size]
        m = dataset.needs_context[i:i + batch_size]
        pred = predict(model, x.to(next(model.parameters()).device)).argmax(1).cpu()
        hits += int((pred == y)[m].sum())
        total += int(m.sum())
    return hits / max(total, 1)


@torch.no_grad()
def seg_metrics(model, dataset, batch_size=100, limit=None) -> dict:
    """{"miou", "ctx_acc"} of a HamNet on a legend dataset (single scale, no flip, eval mode), on its
    first `limit` images (default all)."""
    model.eval()
    n = dataset.num_classes
    M = torch.zeros(n, n, dtype=torch.long)
    for i in range(0, min(len(dataset), limit or len(dataset)), batch_size):
        pred = predict(model, dataset.images[i:i + batch_size].to(next(model.parameters()).device)).argmax(1)
        M += confusion_matrix(pred.cpu(), dataset.labels[i:i + batch_size], n)
    return dict(miou=iou_from_confusion(M)[1], ctx_acc=context_accuracy(model, dataset, batch_size, limit))


def eval_k_sweep(model, dataset, Ks, limit=None) -> dict:
    """K -> seg_metrics(model) with every solver in the model running K steps at evaluation
    (the paper's train-K / test-K experiment: train with K = 6, evaluate with other K).
    The model's eval_steps are restored afterwards."""
    solvers = [m for m in model.modules() if isinstance(m, MatrixDecomposition2D)]
    if not solvers:
        raise ValueError("eval_k_sweep: the model holds no matrix-decomposition solver (no Hamburger)")
    saved = [m.eval_steps for m in solvers]
    try:
        out = {}
        for K in Ks:
            for m in solvers:
                m.eval_steps = K
            out[K] = seg_metrics(model, dataset, limit=limit)
        return out
    finally:
        for m, k in zip(solvers, saved):
            m.eval_steps = k


def k_sweep_claims(miou_by_K: dict, train_K: int = 6, tol: float = 0.02) -> dict:
    """The two claims of the paper's train-K / test-K figure on one `eval_k_sweep` curve (K -> mIoU):
    rises (K = 1 is worse than the training K by more than tol) and flat_beyond (the largest K
    measured is within tol of the training K)."""
    if train_K not in miou_by_K or 1 not in miou_by_K:
        raise ValueError(f"k_sweep_claims needs K = 1 and the training K = {train_K} among {sorted(miou_by_K)}")
    at = miou_by_K[train_K]
    return dict(rises=at - miou_by_K[1] > tol, flat_beyond=abs(miou_by_K[max(miou_by_K)] - at) <= tol)


def run_heads(cfg, names, seeds, datasets, out_dir="runs/hamnet_nb"):
    """Train every (head, seed) pair for cfg.steps with `hamlib.seg.train.train`; returns
    (rows, models of the first seed).

    A run whose loss stops being finite is kept as a row with NaN metrics ("diverged").
    """
    rows, models = [], {}
    for name in names:
        for seed in seeds:
            c = dataclasses.replace(with_head(cfg, name), seed=seed, resume=False, progress=False,
                                    out_dir=f"{out_dir}/{name.replace(' ', '_')}_s{seed}")
            t0 = time.perf_counter()
            try:
                res = train(c, datasets)
                miou, ctx, sps = res["miou"], context_accuracy(res["model"], datasets[1]), res["seconds_per_step"]
                params, status = count_params(res["model"]), "ok"
                if seed == seeds[0]:
                    models[name] = res["model"]
            except FloatingPointError:
                miou = ctx = sps = float("nan")
                params, status = None, "diverged"
            rows.append(dict(head=name, seed=seed, miou=miou, ctx_acc=ctx, params=params,
                             ms_per_step=1000 * sps, wall_s=time.perf_counter() - t0, status=status))
    return rows, models


def step_times(cfg, names, dataset, repeats=7) -> dict:
    """head -> milliseconds for one training step (forward, backward, SGD) on one batch of
    cfg.batch_size on one CPU thread, the minimum over `repeats` rounds. The heads are timed
    interleaved, one step each per round, so a machine that slows down for a while slows them
    alike; one thread and the minimum are what a shared, busy machine distorts least (the
    thread count is restored afterwards). The models are fresh: a step's cost does not depend
    on training."""
    x, y = dataset.images[:cfg.batch_size], dataset.labels[:cfg.batch_size]

    def step(m, opt):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = {}
        for name in names:
            torch.manual_seed(0)
            m = build_model(with_head(cfg, name).model).train()
            opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
            steps[name] = lambda m=m, opt=opt: step(m, opt)
        times = interleaved_times(steps, repeats)
    finally:
        torch.set_num_threads(threads)
    return {name: min(t) for name, t in times.items()}


def step_memory(cfg, names, dataset) -> dict:
    """head -> peak MB of tensor storage in one training step (forward + backward) on one batch
    of cfg.batch_size, counted op by op (`hamlib.measure.peak_tensor_memory`): deterministic,
    parameters and inputs excluded."""
    x, y = dataset.images[:cfg.batch_size], dataset.labels[:cfg.batch_size]
    out = {}
    for name in names:
        torch.manual_seed(0)
        m = build_model(with_head(cfg, name).model).train()
        out[name] = peak_tensor_memory(lambda: F.cross_entropy(m(x), y).backward()) / 2**20
    return out


def mean_std(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def verdict(summary: dict, a: str, b: str, key: str = "miou") -> str:
    """"a > b", "b > a" or "tie": a difference of means counts only when it exceeds the sum of the
    two heads' seed standard deviations (a plain, stated rule; with 3 seeds nothing finer is
    honest). Heads with a single run have no spread: their difference is reported as measured."""
    sa, sb = summary[a], summary[b]
    spread = (sa.get(key + "_std") or 0.0) + (sb.get(key + "_std") or 0.0)
    d = sa[key] - sb[key]
    if abs(d) <= spread:
        return "tie"
    return f"{a} > {b}" if d > 0 else f"{b} > {a}"


def summarise(rows, step_ms=None, step_mb=None) -> dict:
    """head -> dict(miou, miou_std, ctx_acc, params, ms_per_step, mb_per_step, n, diverged):
    means over seeds.

    ms_per_step is step_ms[head] when given (see `step_times`), else the median of the runs'
    own time per step (which includes data handling and suffers on a busy machine);
    mb_per_step is step_mb[head] (see `step_memory`) or None."""
    out = {}
    for name in dict.fromkeys(r["head"] for r in rows):
        rs = [r for r in rows if r["head"] == name]
        m, s = mean_std([r["miou"] for r in rs])
        out[name] = dict(miou=m, miou_std=s, ctx_acc=mean_std([r["ctx_acc"] for r in rs])[0],
                         params=next((r["params"] for r in rs if r["params"]), None),
                         ms_per_step=step_ms[name] if step_ms else statistics.median([r["ms_per_step"] for r in rs]),
                         mb_per_step=step_mb[name] if step_mb else None,
                         n=len(rs), diverged=sum(r["status"] != "ok" for r in rs))
    return out


def summary_table(summary, rows=(), seeds=()) -> str:
    """The Markdown table of a `summarise` result: mIoU per seed (from `rows`, for each of
    `seeds`), mean +- std, legend-pixel accuracy, parameters, ms per step, and MB per step
    where measured."""
    per = {(r["head"], r["seed"]): r["miou"] for r in rows}
    with_mb = any(s["mb_per_step"] is not None for s in summary.values())
    header = (["head"] + [f"seed {sd}" for sd in seeds] + ["mIoU mean ± std", "legend acc", "params", "ms/step"]
              + ["MB/step"] * with_mb)
    cells = []
    for name, s in summary.items():
        div = f" ({s['diverged']}/{s['n']} diverged)" if s["diverged"] else ""
        cells.append([name] + [f"{per.get((name, sd), float('nan')):.3f}" for sd in seeds]
                     + [f"{s['miou']:.3f} ± {s['miou_std']:.3f}{div}", f"{s['ctx_acc']:.3f}", s["params"] or "",
                        f"{s['ms_per_step']:.1f}"] + ([f"{s['mb_per_step']:.1f}"] if with_mb else []))
    return markdown_table(header, cells)


def ablation_claims(summary) -> list:
    """The paper's ablation (VOC val mIoU) next to the same comparison on the toy task.

    Returns rows (claim, paper, toy, holds) with holds True/False (None if a run diverged).
    """
    S = {k: v["miou"] for k, v in summary.items()}

    def cmp(a, b):
        return None if math.isnan(S[a]) or math.isnan(S[b]) else S[a] > S[b]

    rows = [("NMF > CD (one-step)", "78.3 > 78.1", f"{S['nmf one-step']:.3f} vs {S['cd one-step']:.3f}",
             cmp("nmf one-step", "cd one-step")),
            ("CD > VQ (one-step)", "78.1 > 77.7", f"{S['cd one-step']:.3f} vs {S['vq one-step']:.3f}",
             cmp("cd one-step", "vq one-step"))]
    for solver, paper in (("nmf", "78.3 > 77.4"), ("cd", "78.1 > 75.0"), ("vq", "77.7 > 76.6")):
        a, b = f"{solver} one-step", f"{solver} bptt"
        rows.append((f"{solver.upper()}: one-step > BPTT", paper, f"{S[a]:.3f} vs {S[b]:.3f}", cmp(a, b)))
    hams = [k for k in S if k.split()[0] in ("nmf", "cd", "vq") and not math.isnan(S[k])]
    best = max(hams, key=S.get)
    rows.append((f"best Hamburger ({best}) >= self-attention", "HamNet 85.9 vs DANet 82.6 (VOC test)",
                 f"{S[best]:.3f} vs {S['attention']:.3f}", S[best] >= S["attention"]))
    t = {k: v["ms_per_step"] for k, v in summary.items()}
    rows.append((f"{best} cheaper per step than attention", "15.6 ms vs 242 ms (train, N = 16384)",
                 f"{t[best]:.1f} ms vs {t['attention']:.1f} ms (N = 64)", t[best] < t["attention"]))
    return rows


def sees_legend(model, dataset, n=4, per_image=False):
    """Does autograd connect the logits at gray-shape pixels to any legend pixel? (eval mode)

    False for a network whose receptive field is smaller than the task's min_dist -- and also
    for a Hamburger with the one-step gradient, whose bases are constants for autograd. (The
    features' receptive field is 35 px, but the final bilinear upsampling lets a logit read
    the next feature cell too, so for gray pixels near a legend-side edge a short path exists:
    per_image=True returns one bool per image, to count them.)
    """
    model.eval()
    hits = []
    for i in range(n) if per_image else [slice(0, n)]:
        i = slice(i, i + 1) if isinstance(i, int) else i
        x = dataset.images[i].clone().requires_grad_(True)
        ctx = dataset.needs_context[i]
        (model(x) * ctx[:, None]).sum().backward()
        legend = (dataset.labels[i] > 0) & ~ctx
        hits.append(bool(x.grad.abs().sum(1)[legend].max() > 0))
    return hits if per_image else hits[0]
