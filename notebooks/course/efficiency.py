"""The blocks side by side, as in the paper's efficiency table (notebooks 04, 08; CLI: `python -m experiments.bench`).

`run` measures, for one input shape (the CLI's default 1 x 512 x 128 x 128, r = 64,
K = 6: the paper's efficiency table) and each case, the analytic MACs, parameters,
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
excluded), with `hamlib.measure.peak_memory`: on CUDA the allocator's peak, on
CPU the allocator's events recorded by torch.profiler (which sees the scratch
memory of fused kernels too).

`run(compiled=True)` (the CLI's `--compile`) times every case three ways in the same interleaved rounds: eager,
`torch.compile(module)` and, on CUDA, `torch.compile(module, mode="reduce-overhead")`
(CUDA graphs); the table gains each row's speed-up over its eager row. The
modules are compiled without `fullgraph=True`, so a block with graph breaks
still runs (partly eager) and the ratio shows what the breaks cost.

Also notebook 04's numbers: the paper's table (`PAPER_EFFICIENCY`, `paper_markdown`), the
analytic GMACs and parameters of its blocks (`macs_rows`) and `cost_vs_resolution`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from hamlib import md
from hamlib.attention import SelfAttention2d
from hamlib.ham import Hamburger
from hamlib.layers import count_params
from hamlib.measure import interleaved_times, markdown_table, peak_memory
from hamlib.runtime import pick_device

# ---------------------------------------------------------------------------
# MACs (multiply-accumulates), analytic
# ---------------------------------------------------------------------------


def floor_macs(B, C, N, r, K):
    """K+1 times the two (N x d x r) products, plus the reconstruction D C^T."""
    return B * (2 * (K + 1) + 1) * N * C * r


def md_macs(kind, B, C, N, r, K):
    """MACs of NMF2D / VQ2D / CD2D (groups = 1, d = C), products only.

    NMF runs 2(K + 1) + 1 products of N x d x r (`floor_macs`: its softmax start needs X^T D);
    VQ and CD start from the bases alone, so they run one fewer: 2K + 2."""
    d = C
    base = floor_macs(B, C, N, r, K)
    if kind in ("cd", "vq"):
        base -= B * N * d * r
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


class FloorNMF(torch.nn.Module):
    """The bare products of NMF with nothing else: the cost no NMF can beat.

    The same 2(K+1) + 1 batched products as NMF2D (initial coefficients, K steps of
    coefficients then bases, the final coefficients, the reconstruction), each feeding the next
    (D rescaled by the largest coefficient: r N work, 1/d of a product), so a compiler cannot
    drop or merge them: `torch.compile` would otherwise see K + 1 identical D^T X and keep one.
    """

    def __init__(self, rank, steps):
        super().__init__()
        self.rank, self.steps = rank, steps

    def forward(self, x):
        B, C, H, W = x.shape
        X = x.reshape(B, C, H * W)                                   # (B, d, N)
        D = torch.rand(B, C, self.rank, device=x.device, dtype=x.dtype)
        with torch.no_grad():                                        # NMF's products, in NMF's order:
            Ct = torch.bmm(D.mT, X)                                  # the initial coefficients (B, r, N)
            for _ in range(self.steps):                              # K steps: coefficients, then bases
                D = D / Ct.amax(dim=(1, 2), keepdim=True)            # bounded; each product feeds the next
                Ct = torch.bmm(D.mT, X)                              # (B, r, N)
                D = torch.bmm(X, Ct.mT)                              # (B, d, r)
            D = D / D.amax(dim=(1, 2), keepdim=True)
        Ct = torch.bmm(D.mT, X)                                      # the final (differentiated) step
        return torch.bmm(D, Ct).reshape(B, C, H, W)                  # 2(K+1) + 1 products, as floor_macs


@dataclass
class Case:
    name: str
    module: torch.nn.Module
    macs: int
    flush_denormal: bool = False  # run with torch.set_flush_denormal(True)


GRADS = {"nmf-bptt": "bptt", "nmf-bases": "one-step-bases", "nmf-implicit": "implicit"}


def make_cases(names, B, C, H, W, r, K):
    N = H * W
    cases = []
    for name in names:
        if name == "floor":
            cases.append(Case(name, FloorNMF(r, K), floor_macs(B, C, N, r, K)))
        elif name in md.SOLVERS:
            cases.append(Case(name, md.SOLVERS[name](C, rank=r, steps=K, grad="one-step", validate=False),
                              md_macs(name, B, C, N, r, K)))
        elif name.startswith("nmf-K"):
            k = int(name[5:])
            cases.append(Case(name, md.NMF2D(C, rank=r, steps=k, grad="one-step", validate=False),
                              md_macs("nmf", B, C, N, r, k)))
        elif name in GRADS:
            cases.append(Case(name, md.NMF2D(C, rank=r, steps=K, grad=GRADS[name], validate=False),
                              md_macs("nmf", B, C, N, r, K)))
        elif name == "nmf-ftz":
            cases.append(Case(name, md.NMF2D(C, rank=r, steps=K, grad="one-step", validate=False),
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


def _step(kind, module, x, flush_denormal):
    """One inference or training step as a closure (with subnormals flushed if asked)."""
    f = _infer if kind == "infer" else _train_step

    def step():
        ftz = flush_denormal and torch.set_flush_denormal(True)  # False where unsupported
        try:
            f(module, x)
        finally:
            if ftz:
                torch.set_flush_denormal(False)
    return step


def compile_modes(device) -> tuple:
    """The ways `--compile` runs each case: eager, torch.compile's default, and on CUDA also
    mode="reduce-overhead" (CUDA graphs)."""
    return ("eager", "compiled") + (("reduce-overhead",) if torch.device(device).type == "cuda" else ())


def _compiled(module, mode):
    # fullgraph=False: a graph break falls back to eager for that piece instead of failing,
    # so the benchmark runs whether or not a block compiles to one graph.
    if mode == "eager":
        return module
    return torch.compile(module, mode=None if mode == "compiled" else mode)


def run(shape=(1, 512, 128, 128), rank=64, steps=6, cases=("floor", "nmf", "cd", "vq", "attention"),
        repeats=5, warmup=1, device=None, train=True, seed=0, compiled=False):
    """Measure every case; returns a list of dict rows (one per case and mode).

    Row keys: name, mode, params, gmacs, infer_ms, train_ms, infer_mb, train_mb
    (times: medians over `repeats` interleaved rounds; train_* are None when train=False).
    mode is "eager", or with compiled=True also "compiled" (torch.compile(module)) and on
    CUDA "reduce-overhead": the compiled variants share the eager module's parameters and
    are compiled (and warmed up three times) before the timed rounds.
    """
    device = pick_device(device)
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = shape
    x = torch.rand(shape, generator=g).to(device)
    built = make_cases(cases, B, C, H, W, rank, steps)
    modes = compile_modes(device) if compiled else ("eager",)
    kinds = ("infer", "train") if train else ("infer",)
    fns = {}
    for c in built:
        c.module.to(device)
        for mode in modes:
            m = _compiled(c.module, mode)
            for kind in kinds:
                fns[c.name, mode, kind] = _step(kind, m, x, c.flush_denormal)
                if mode != "eager":
                    for _ in range(3):  # compile, and let CUDA graphs record, before timing
                        fns[c.name, mode, kind]()
    times = interleaved_times(fns, repeats, warmup, device)
    rows = []
    for c in built:
        for mode in modes:
            row = dict(name=c.name, mode=mode, params=count_params(c.module), gmacs=c.macs / 1e9,
                       infer_ms=None, infer_mb=None, train_ms=None, train_mb=None)
            for kind in kinds:
                row[f"{kind}_ms"] = statistics.median(times[c.name, mode, kind])
                row[f"{kind}_mb"] = peak_memory(fns[c.name, mode, kind], device) / 2**20
            rows.append(row)
    return rows


def markdown(rows, ref="floor", ref2="nmf"):
    """A Markdown table of the rows, with inference-time ratios to the eager rows named `ref`
    and `ref2` where present, and with compiled rows, each row's speed-up over its eager row."""
    eager = {r["name"]: r for r in rows if r.get("mode", "eager") == "eager"}
    refs = [eager[n] for n in (ref, ref2) if n in eager]
    modes = any(r.get("mode", "eager") != "eager" for r in rows)
    fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
    header = (["case"] + ["mode"] * modes + ["params", "GMACs", "infer ms", "train ms", "train / infer", "infer MB",
                                             "train MB"] + [f"infer / {r['name']}" for r in refs]
              + ["eager / this, infer", "eager / this, train"] * modes)
    cells = []
    for r in rows:
        train_ratio = None if r["train_ms"] is None else r["train_ms"] / r["infer_ms"]
        line = ([r["name"]] + [r.get("mode", "eager")] * modes
                + [f"{r['params'] / 1e6:.2f}M", f"{r['gmacs']:.2f}", fmt(r["infer_ms"], ".1f"), fmt(r["train_ms"], ".1f"),
                   fmt(train_ratio, ".2f"), fmt(r["infer_mb"], ".1f"), fmt(r["train_mb"], ".1f")]
                + [f"{r['infer_ms'] / ref_row['infer_ms']:.2f}" for ref_row in refs])
        if modes:
            base = eager.get(r["name"])
            for k in ("infer_ms", "train_ms"):
                line.append("" if base is None or r[k] is None else f"{base[k] / r[k]:.2f}")
        cells.append(line)
    return markdown_table(header, cells)


# ---------------------------------------------------------------------------
# The paper's table, the analytic costs of its blocks, and the cost against resolution (notebook 04)
# ---------------------------------------------------------------------------

# The paper's efficiency table: input 1 x 512 x 128 x 128, r = 64, K = 6, a GPU of 2020.
PAPER_EFFICIENCY = [
    dict(name="self-attention", params_m=1.00, gmacs=292, train_mb=5253, infer_mb=2148, train_ms=242.0, infer_ms=82.2),
    dict(name="DANet", params_m=4.82, gmacs=79.5, train_mb=2395, infer_mb=2203, train_ms=72.6, infer_ms=64.4),
    dict(name="A^2-Net", params_m=1.01, gmacs=25.7, train_mb=326, infer_mb=165, train_ms=22.9, infer_ms=8.0),
    dict(name="Ham (CD)", params_m=0.50, gmacs=16.2, train_mb=162, infer_mb=102, train_ms=20.0, infer_ms=13.0),
    dict(name="Ham (NMF)", params_m=0.50, gmacs=17.6, train_mb=202, infer_mb=98, train_ms=15.6, infer_ms=7.7),
]


def paper_markdown():
    """The paper's efficiency table (PAPER_EFFICIENCY) as Markdown."""
    keys = ("params_m", "gmacs", "train_mb", "infer_mb", "train_ms", "infer_ms")
    return markdown_table(["block", "params", "GMACs", "train MB", "infer MB", "train ms", "infer ms"],
                          [[r["name"], f"{r['params_m']:.2f}M"] + [r[k] for k in keys[1:]] for r in PAPER_EFFICIENCY])


def macs_rows(C=512, H=128, W=128, r=64, K=6):
    """Analytic GMACs and parameter counts of the blocks at one shape (batch 1).

    Hamburgers here are v1 blocks (breads C -> C and back, BN), as in the paper's table."""
    N = H * W
    rows = [dict(name="self-attention", gmacs=attention_macs(1, C, N) / 1e9,
                 params=count_params(SelfAttention2d(C)))]
    for kind in ("nmf", "cd", "vq"):
        breads = 2 * N * C * C
        rows.append(dict(name=f"Ham ({kind.upper()})", gmacs=(md_macs(kind, 1, C, N, r, K) + breads) / 1e9,
                         params=count_params(Hamburger(C, ham=kind, version="v1", rank=r, steps=K))))
    return rows


def cost_vs_resolution(sizes=(16, 24, 32, 48), channels=64, rank=16, steps=6,
                       cases=("nmf", "cd", "vq", "attention"), repeats=3, train=True, device=None):
    """`run` at each H = W in `sizes`; the rows gain `size` and `N`."""
    rows = []
    for s in sizes:
        measured = run((1, channels, s, s), rank, steps, cases, repeats=repeats, device=device, train=train)
        for row in measured:
            rows.append(dict(row, size=s, N=s * s))
    return rows
