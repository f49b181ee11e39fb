"""Why VQ needs its temperature and what NMF's gradient modes cost: diagnostics beside the grids.

    D="python -m experiments.vq_diagnostics"
    $D marker --heads "vq 2 inv_t=100,vq 2 inv_t=20" --seeds 0          # trained marker networks (--steps 0: fresh)
    $D legend --heads "vq 2 inv_t=100" --seeds 0 --steps 0              # the legend network's ham input
    $D cost --shape 1 128 64 64 --rank 16 --rounds 30                   # NMF modes: one step of the ham alone

On the ham's input features (the lower bread's output, signed for VQ):
- `assignment_stats`: entropy (in units of log r) and max of VQ's final soft assignment C per
  inv_t, the fraction of hard positions, the softmax's gain, one solver step's spectral radius
  and each gradient mode's cosine with BPTT's input gradient (`truncation_agreement`).
- `marker_jacobian`: the gradient that reaches the marker's pixels from far pixels, against the
  gradient at the far pixels themselves, per gradient mode and inv_t.
- `cluster_share`: the weight a query position (far pixel, gray shape) puts on the cluster(s)
  of the positions that hold the answer (marker, legend).
Heads are `legend.head_spec` names; the marker networks train as in `grad_table.marker_config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import statistics
import time

import torch
import torch.nn.functional as F

from hamlib.analysis import step_jacobian_radius
from hamlib.md import NMF2D, VQ2D, random_bases, vq
from hamlib.measure import peak_tensor_memory
from hamlib.seg.model import build_model
from hamlib.seg.train import build_datasets, train
from notebooks.course import legend
from notebooks.course.grad_table import marker_config
from notebooks.course.marker import MarkerNet, marker_batch, train_marker
from notebooks.course.tasks import legend_config

log = logging.getLogger(__name__)
GRADS = ("one-step", "one-step-bases", 1, 2, "bptt")


def assignment(X, inv_t, rank=4, steps=6, seed=0):
    """VQ's final soft assignment C (B, r, N) on X (B, d, N) after `steps` steps from seeded random bases."""
    D = random_bases("vq", (X.shape[0], X.shape[1], rank), generator=torch.Generator().manual_seed(seed),
                     dtype=X.dtype)
    with torch.no_grad():
        return vq(X, D, steps=steps, inv_t=inv_t, final=True)[1].mT     # (B, N, r) -> (B, r, N)


def cluster_share(C, answer, query) -> float:
    """Mean over query positions of sum_k C_ki * (mean over answer positions j of C_kj): the weight a
    query puts on the answer's cluster(s). C (B, r, N); answer, query bool (B, N); images without
    an answer position are skipped."""
    m = answer.double()
    ok = m.sum(1) > 0
    cm = (C * m[:, None]).sum(2) / m.sum(1, keepdim=True).clamp_min(1)   # (B, r): the answer's mean assignment
    share = (C * cm[:, :, None]).sum(1)                                   # (B, N)
    return share[ok][query[ok]].mean().item()


def truncation_agreement(X, inv_t, grads, rank=4, steps=6, seed=0) -> dict:
    """grad -> cosine between dL/dX under `grad` and under "bptt", for L = <w, VQ2D(X)> with w random;
    X (B, d, H, W), eval mode (fixed bases), float64. Near 1: the cheap mode is the gradient."""
    w = torch.randn(X.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g = {}
    for grad in ("bptt", *grads):
        x = X.detach().double().clone().requires_grad_(True)
        m = VQ2D(X.shape[1], rank=rank, steps=steps, grad=grad, inv_t=inv_t).eval().double()
        (gx,) = torch.autograd.grad((m(x) * w).sum(), x)
        g[str(grad)] = gx.flatten()
    return {k: F.cosine_similarity(v, g["bptt"], dim=0).item() for k, v in g.items() if k != "bptt"}


def assignment_stats(Z, inv_ts=(100.0, 20.0, 5.0), rank=4, steps=6, seed=0, grads=None) -> list:
    """Per inv_t on features Z (B, d, H, W) or (B, d, N): entropy / log r of VQ's final C, mean
    max C, fraction of positions with max C > 0.99, the softmax's gain t (diag C - C C^T) (its
    trace, which vanishes as C turns one-hot); with grads (Z 4-d) also the step Jacobian's
    spectral radius and `truncation_agreement`."""
    X = Z.reshape(Z.shape[0], Z.shape[1], -1)                            # (B, d, N)
    rows = []
    for t in inv_ts:
        C = assignment(X, t, rank, steps, seed)                          # (B, r, N)
        H = -(C * C.clamp_min(1e-30).log()).sum(1) / math.log(rank)      # (B, N)
        mx = C.max(1).values
        r = dict(inv_t=t, entropy=H.mean().item(), max_c=mx.mean().item(),
                 hard=(mx > 0.99).float().mean().item(), gain=(t * (C * (1 - C)).sum(1)).mean().item())
        if grads is not None:
            r["radius"] = statistics.fmean(step_jacobian_radius("vq", X[b], rank=rank, steps=steps, inv_t=t)
                                           for b in range(min(len(X), 4)))
            r["cos_to_bptt"] = truncation_agreement(Z, t, [g for g in grads if g != "bptt"], rank, steps, seed)
        rows.append(r)
    return rows


def marker_jacobian(ham, X, marker_mask, far_mask, seed=0) -> dict:
    """Gradient that reaches the marker from far pixels through `ham` (an MD module on (1, d, H, W)):
    L = <w, ham(X)> over the far pixels (w random); dict(to_marker = mean over marker pixels of
    ||dL/dx_j||, to_self = the same over far pixels, ratio)."""
    g = torch.Generator().manual_seed(seed)
    x = X.detach().double().clone().requires_grad_(True)
    torch.manual_seed(seed)
    y = ham.double()(x)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64) * far_mask
    (gx,) = torch.autograd.grad((y * w).sum(), x)
    n = gx[0].norm(dim=0)                                    # (H, W)
    to_marker, to_self = n[marker_mask[0, 0]].mean().item(), n[far_mask[0, 0]].mean().item()
    return dict(to_marker=to_marker, to_self=to_self, ratio=to_marker / max(to_self, 1e-300))


def diagnose(model: MarkerNet, inv_ts=(100.0, 20.0, 5.0), grads=GRADS, images=8, seed=0) -> dict:
    """On `images` marker test images through `model`: assignment_stats per inv_t, the far pixels'
    cluster_share on the marker, and marker_jacobian per (grad, inv_t) of a VQ2D (r, K of the
    model's ham) in eval mode."""
    x, _ = marker_batch(images, generator=torch.Generator().manual_seed(1000 + seed))
    with torch.no_grad():
        Z = model.context.lower_bread(model.local(x))                   # (B, d, H, W)
    B, d, H, W = Z.shape
    marker = x[:, 1:].sum(1, keepdim=True) > 0                          # (B, 1, H, W)
    far = F.max_pool2d(marker.float(), 9, 1, 4) == 0                    # beyond a 4-pixel halo
    ham = model.context.ham
    stats = assignment_stats(Z, inv_ts, ham.rank, ham.steps, seed, grads)
    jac, same = [], []
    for t in inv_ts:
        for grad in grads:
            vals = [marker_jacobian(VQ2D(d, rank=ham.rank, steps=ham.steps, grad=grad, inv_t=t).eval(),
                                    Z[b:b + 1], marker[b:b + 1], far[b:b + 1]) for b in range(B)]
            jac.append(dict(inv_t=t, grad=str(grad), ratio=statistics.fmean(v["ratio"] for v in vals),
                            to_marker=statistics.fmean(v["to_marker"] for v in vals)))
        C = assignment(Z.reshape(B, d, -1).double(), t, ham.rank, ham.steps, seed)
        same.append(dict(inv_t=t, share=cluster_share(C, marker.reshape(B, -1), far.reshape(B, -1))))
    return dict(stats=stats, jacobian=jac, same_cluster=same)


def legend_diagnose(head="vq 2 inv_t=100", steps=0, seed=0, images=32, inv_ts=(100.0, 20.0, 5.0),
                    task="legend1") -> dict:
    """The legend network's ham input (signed features, 8 x 8), fresh (steps=0) or after `steps` of
    training on the task's quick config: assignment_stats per inv_t, and the gray-shape positions'
    cluster_share on the legend."""
    cfg = dataclasses.replace(legend.with_head(legend_config(task, max(steps, 1)), head), seed=seed, resume=False,
                              progress=False, out_dir=f"runs/vq_diagnostics/{head.replace(' ', '_')}_{seed}")
    data = build_datasets(cfg)
    torch.manual_seed(seed)
    model = (train(cfg, data)["model"] if steps else build_model(cfg.model)).eval()
    val = data[1]
    x, lab, ctx = val.images[:images], val.labels[:images], val.needs_context[:images]
    seen = {}
    hook = model.head.context.ham.register_forward_hook(lambda m, i, o: seen.setdefault("X", i[0].detach()))
    with torch.no_grad():
        model(x)
    hook.remove()
    Z = seen["X"]                                                    # (B, d, h, w)
    B, d, h, w = Z.shape
    k = lab.shape[-1] // h
    legend_px = F.avg_pool2d(((lab > 0) & ~ctx).float()[:, None], k) > 0.25   # (B, 1, h, w): the legend
    query = F.avg_pool2d(ctx.float()[:, None], k) > 0.25                       # (B, 1, h, w): gray shapes
    ham = model.head.context.ham
    stats = assignment_stats(Z.double(), inv_ts, ham.rank, ham.steps, seed, ("one-step", "one-step-bases", 1, 2))
    share = [dict(inv_t=t, share=cluster_share(assignment(Z.reshape(B, d, -1).double(), t, ham.rank, ham.steps,
                                                          seed), legend_px.reshape(B, -1), query.reshape(B, -1)))
             for t in inv_ts]
    return dict(stats=stats, same_cluster=share)


def step_cost(grads=("one-step", "one-step-bases", 2, 3, "bptt"), shape=(1, 128, 64, 64), rank=16, steps=6,
              rounds=15, compiled=False, seed=0) -> dict:
    """grad -> (ms, MB): one forward + backward of NMF2D(grad) on a random non-negative input, one
    thread, the modes interleaved round by round, the minimum of `rounds` (after two warm-up
    rounds); MB is `hamlib.measure.peak_tensor_memory` (eager). compiled: torch.compile
    (validate=False: the input check's host sync would break the graph)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x0 = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
        w = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1))
        fns, mb = {}, {}
        for grad in grads:
            m = NMF2D(shape[1], rank=rank, steps=steps, grad=grad, validate=False).train()
            mb[grad] = peak_tensor_memory(lambda m=m: (m(x0.clone().requires_grad_(True)) * w).sum().backward()) / 2**20
            fns[grad] = torch.compile(m) if compiled else m
        best = dict.fromkeys(grads, float("inf"))
        for i in range(rounds + 2):
            for grad, f in fns.items():
                x = x0.clone().requires_grad_(True)
                t0 = time.perf_counter()
                (f(x) * w).sum().backward()
                if i >= 2:
                    best[grad] = min(best[grad], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return {g: (1000 * best[g], mb[g]) for g in grads}


def _log_stats(stats, shares, answer):
    for r, sc in zip(stats, shares):
        log.info("  inv_t %5.0f  entropy/log r %.3f  mean max C %.3f  hard %.2f  softmax gain %.3g  "
                 "step-Jacobian radius %.2f  weight on the %s's cluster %.3f", r["inv_t"], r["entropy"], r["max_c"],
                 r["hard"], r["gain"], r["radius"], answer, sc["share"])
        log.info("    cosine of each mode's dL/dX with BPTT's: %s",
                 "  ".join(f"{k} {v:.3f}" for k, v in r["cos_to_bptt"].items()))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.vq_diagnostics", description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("marker", "legend", "cost"))
    p.add_argument("--heads", default="vq 2 inv_t=100,vq 2 inv_t=20", help="comma-separated head names")
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=None, help="marker: iterations (150); legend: steps (0: fresh)")
    p.add_argument("--task", default="legend1", choices=("legend1", "legend2"), help="legend only")
    p.add_argument("--shape", type=int, nargs=4, default=(1, 128, 64, 64))
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--rounds", type=int, default=15)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    heads = [h.strip() for h in a.heads.split(",") if h.strip()]
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.what == "cost":
        for compiled in (False, True):
            res = step_cost(shape=tuple(a.shape), rank=a.rank, rounds=a.rounds, compiled=compiled)
            log.info("compiled=%s  shape %s r=%d, one thread, min of %d", compiled, tuple(a.shape), a.rank, a.rounds)
            for g, (ms, mb) in res.items():
                log.info("  %-15s %8.2f ms  %5.2fx one-step  %7.1f MB", g, ms, ms / res["one-step"][0], mb)
        return
    for seed in seeds:
        for head in heads:
            if a.what == "legend":
                res = legend_diagnose(head, a.steps or 0, seed, task=a.task)
                log.info("%s %s seed %d after %d steps", a.task, head, seed, a.steps or 0)
                _log_stats(res["stats"], res["same_cluster"], "legend")
                continue
            iters = 150 if a.steps is None else a.steps
            res = train_marker(marker_config(head, iters=iters, seed=seed, eval_every=max(iters, 1), device="cpu"))
            out = diagnose(res["model"], seed=seed)
            log.info("marker %s seed %d (acc %.3f)", head, seed, res["final_accuracy"])
            _log_stats(out["stats"], out["same_cluster"], "marker")
            for r in out["jacobian"]:
                log.info("  inv_t %5.0f  grad %-15s  gradient to marker / to self %.2e", r["inv_t"], r["grad"],
                         r["ratio"])


if __name__ == "__main__":
    main()
