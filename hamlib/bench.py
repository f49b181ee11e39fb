"""`python -m hamlib.bench`: the blocks side by side (the paper's efficiency table).

For one input shape (default 1 x 512 x 128 x 128, r = 64, K = 6: the paper's
efficiency table) it measures, for each case, the analytic MACs, parameters,
median inference time, median training-step time (forward + backward) and
peak memory of both. All cases are timed in one process, interleaved round
by round, so a noisy machine slows them alike; read the ratios, not the
absolute numbers.

Cases:
  floor      the bare products no NMF can avoid: K+1 times D^T X and X C, plus D C^T
  nmf/cd/vq  NMF2D / CD2D / VQ2D (the ham alone, no breads), one-step gradient
  nmf-K<k>   NMF2D with k steps (e.g. nmf-K24: is one-step memory flat in K?)
  nmf-bptt   NMF2D with back-propagation through all K steps
  nmf-bases  NMF2D with grad="one-step-bases" (the last bases update differentiated)
  nmf-implicit  NMF2D with grad="implicit" (one differentiated step, K Neumann terms)
  nmf-ftz    NMF2D run with torch.set_flush_denormal(True) (subnormals flushed to zero)
  attention  SelfAttention2d (q, k, v, output projection; SDPA)
  ham-nmf    Hamburger v1 block with NMF (breads included, comparable to attention)

Peak memory counts every allocation made while the step runs (inputs
excluded): on CUDA torch.cuda.max_memory_allocated, on CPU the allocator's
events recorded by torch.profiler (which sees the scratch memory of fused
kernels too). `peak_tensor_memory` counts tensor storages op by op instead:
deterministic on every device, blind to kernels' private scratch space; the
tests use it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import statistics
import time
from dataclasses import dataclass

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .attention import SelfAttention2d
from .ham import Hamburger
from .md import CD2D, NMF2D, VQ2D
from .train import pick_device

# ---------------------------------------------------------------------------
# MACs (multiply-accumulates), analytic
# ---------------------------------------------------------------------------


def floor_macs(B, C, N, r, K):
    """K+1 times the two (N x d x r) products, plus the reconstruction D C^T."""
    return B * (2 * (K + 1) + 1) * N * C * r


def md_macs(kind, B, C, N, r, K):
    """MACs of NMF2D / VQ2D / CD2D (groups = 1, d = C), products only."""
    d = C
    base = floor_macs(B, C, N, r, K)
    if kind == "nmf":  # per update: D^T D (d r^2) and C (D^T D) (N r^2); C^T C (N r^2) and D (C^T C) (d r^2)
        return base + B * (K * 2 * (N + d) * r * r + (N + d) * r * r)
    if kind == "cd":  # final ridge step: D^T D, an r x r solve with N right-hand sides (~ N r^2)
        return base + B * (d * r * r + N * r * r + r ** 3)
    if kind == "vq":
        return base
    raise ValueError(f"unknown solver {kind!r}")


def attention_macs(B, C, N):
    """2 N^2 C (scores and weighted sum) + 4 N C^2 (q, k, v, output projections)."""
    return B * (2 * N * N * C + 4 * N * C * C)


def hamburger_v1_macs(B, C, N, r, K):
    """Two 1x1 breads (C x C each) around an NMF ham."""
    return md_macs("nmf", B, C, N, r, K) + B * 2 * N * C * C


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for a while: the profiler's C++ backend writes two
    lines there on every start and stop, whatever its log level."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_memory(fn, device=None) -> int:
    """Peak bytes allocated while fn() runs, above what was allocated before."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    cur = peak = 0
    for _, nbytes in events:  # + for an allocation, - for a free
        cur += nbytes
        peak = max(peak, cur)
    return peak


# ---------------------------------------------------------------------------
# Peak memory, deterministic: follow every storage an op creates until it dies
# ---------------------------------------------------------------------------


class _StorageTracker(TorchDispatchMode):
    """Sees every aten op (forward and backward); keeps a weak reference to each new
    storage and its size, drops it when the storage is freed. Storages that existed
    before (inputs, parameters) are never counted, even when an op writes into them."""

    def __init__(self):
        super().__init__()
        self.live = {}          # StorageWeakRef -> nbytes
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {StorageWeakRef(t.untyped_storage()) for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for ref in [r for r in self.live if r.expired()]:  # freed since the last op
            self.current -= self.live.pop(ref)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            ref = StorageWeakRef(t.untyped_storage())
            if ref in inputs or ref in self.live:  # in-place result or a view: no new memory
                continue
            self.live[ref] = t.untyped_storage().nbytes()
            self.current += self.live[ref]
        self.peak = max(self.peak, self.current)
        return out


def peak_tensor_memory(fn) -> int:
    """Peak bytes of tensor storage that fn() allocates (inputs and parameters excluded).

    Counts what tensors hold, op by op, on any device: no allocator caching, no
    scratch space inside fused kernels, no timing noise, so two runs give the
    same number. (`peak_memory` measures the allocator instead.)
    """
    tracker = _StorageTracker()
    with tracker:
        fn()
    return tracker.peak



def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FloorNMF(torch.nn.Module):
    """The bare products of NMF with nothing else: the cost no NMF can beat."""

    def __init__(self, channels, rank, steps):
        super().__init__()
        self.rank, self.steps = rank, steps

    def forward(self, x):
        B, C, H, W = x.shape
        X = x.reshape(B, C, H * W)                                   # (B, d, N)
        D = torch.rand(B, C, self.rank, device=x.device, dtype=x.dtype)
        with torch.no_grad():
            for _ in range(self.steps + 1):
                Ct = torch.bmm(D.mT, X)                              # (B, r, N)
                torch.bmm(X, Ct.mT)                                  # (B, d, r), discarded: D stays bounded
        Ct = torch.bmm(D.mT, X)
        return torch.bmm(D, Ct).reshape(B, C, H, W)


@dataclass
class Case:
    name: str
    module: torch.nn.Module
    macs: int
    flush_denormal: bool = False  # run with torch.set_flush_denormal(True)


def make_cases(names, B, C, H, W, r, K):
    N = H * W
    cases = []
    for name in names:
        if name == "floor":
            cases.append(Case(name, FloorNMF(C, r, K), floor_macs(B, C, N, r, K)))
        elif name in ("nmf", "cd", "vq"):
            cls = {"nmf": NMF2D, "cd": CD2D, "vq": VQ2D}[name]
            cases.append(Case(name, cls(C, rank=r, steps=K, grad="one-step", validate=False),
                              md_macs(name, B, C, N, r, K)))
        elif name.startswith("nmf-K"):
            k = int(name[5:])
            cases.append(Case(name, NMF2D(C, rank=r, steps=k, grad="one-step", validate=False),
                              md_macs("nmf", B, C, N, r, k)))
        elif name in ("nmf-bptt", "nmf-bases", "nmf-implicit"):
            grad = {"nmf-bptt": "bptt", "nmf-bases": "one-step-bases", "nmf-implicit": "implicit"}[name]
            cases.append(Case(name, NMF2D(C, rank=r, steps=K, grad=grad, validate=False),
                              md_macs("nmf", B, C, N, r, K)))
        elif name == "nmf-ftz":
            cases.append(Case(name, NMF2D(C, rank=r, steps=K, grad="one-step", validate=False),
                              md_macs("nmf", B, C, N, r, K), flush_denormal=True))
        elif name == "attention":
            cases.append(Case(name, SelfAttention2d(C), attention_macs(B, C, N)))
        elif name == "ham-nmf":
            cases.append(Case(name, Hamburger(C, ham="nmf", version="v1", rank=r, steps=K, grad="one-step",
                                        validate=False),
                              hamburger_v1_macs(B, C, N, r, K)))
        else:
            raise ValueError(f"unknown case {name!r}")
    return cases


def _infer(module, x):
    module.eval()
    with torch.no_grad():
        module(x)


def _train_step(module, x):
    module.train()
    x = x.detach().requires_grad_(True)  # the gradient reaches the input, as inside a network
    module(x).sum().backward()


def run(shape=(1, 512, 128, 128), rank=64, steps=6, cases=("floor", "nmf", "cd", "vq", "attention"),
        repeats=5, warmup=1, device=None, train=True, seed=0):
    """Measure every case; returns a list of dict rows (one per case).

    Row keys: name, params, gmacs, infer_ms, train_ms, infer_mb, train_mb
    (medians over `repeats` interleaved rounds; train_* are None when train=False).
    """
    device = pick_device(device)
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = shape
    x = torch.rand(shape, generator=g).to(device)
    built = make_cases(cases, B, C, H, W, rank, steps)
    for c in built:
        c.module.to(device)
        for p in c.module.parameters():
            p.grad = None
    kinds = [("infer", _infer)] + ([("train", _train_step)] if train else [])
    times = {(c.name, k): [] for c in built for k, _ in kinds}
    for i in range(warmup + repeats):
        for c in built:
            for k, f in kinds:
                ftz = c.flush_denormal and torch.set_flush_denormal(True)  # False where unsupported
                _sync(device)
                t0 = time.perf_counter()
                f(c.module, x)
                _sync(device)
                if ftz:
                    torch.set_flush_denormal(False)
                if i >= warmup:
                    times[(c.name, k)].append(1e3 * (time.perf_counter() - t0))
    rows = []
    for c in built:
        row = dict(name=c.name, params=sum(p.numel() for p in c.module.parameters()), gmacs=c.macs / 1e9,
                   infer_ms=statistics.median(times[(c.name, "infer")]),
                   infer_mb=peak_memory(lambda: _infer(c.module, x), device) / 2**20,
                   train_ms=None, train_mb=None)
        if train:
            row["train_ms"] = statistics.median(times[(c.name, "train")])
            row["train_mb"] = peak_memory(lambda: _train_step(c.module, x), device) / 2**20
        rows.append(row)
    return rows


def markdown(rows, ref="floor", ref2="nmf"):
    """A Markdown table of the rows, with time ratios to `ref` and `ref2` where present."""
    by = {r["name"]: r for r in rows}
    head = "| case | params | GMACs | infer ms | train ms | train / infer | infer MB | train MB |"
    cols = []
    for name in (ref, ref2):
        if name in by:
            head += f" infer / {name} |"
            cols.append(by[name])
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        tr = "" if r["train_ms"] is None else f"{r['train_ms']:.1f}"
        ratio = "" if r["train_ms"] is None else f"{r['train_ms'] / r['infer_ms']:.2f}"
        tmb = "" if r["train_mb"] is None else f"{r['train_mb']:.1f}"
        line = (f"| {r['name']} | {r['params'] / 1e6:.2f}M | {r['gmacs']:.2f} | {r['infer_ms']:.1f} | {tr} | "
                f"{ratio} | {r['infer_mb']:.1f} | {tmb} |")
        for ref_row in cols:
            line += f" {r['infer_ms'] / ref_row['infer_ms']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hamlib.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=4, default=[1, 512, 128, 128], metavar=("B", "C", "H", "W"))
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--cases", default="floor,nmf,cd,vq,nmf-K24,attention",
                   help="comma-separated: floor, nmf, cd, vq, nmf-K<k>, nmf-bptt, nmf-bases, nmf-implicit, nmf-ftz, "
                        "attention, ham-nmf")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--no-train", action="store_true", help="inference only")
    a = p.parse_args(argv)
    device = pick_device(a.device)
    rows = run(tuple(a.shape), a.rank, a.steps, a.cases.split(","), a.repeats, device=device, train=not a.no_train)
    head = (f"shape {tuple(a.shape)}, r={a.rank}, K={a.steps}, device {device}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, median of {a.repeats}")
    return head + "\n\n" + markdown(rows)


if __name__ == "__main__":
    sys.stdout.write(main() + "\n")
