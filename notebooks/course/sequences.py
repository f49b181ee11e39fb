"""Notebook 09's helpers: three sequence tasks, one training loop for every mixer, tables, the
widget's callback, the causality Jacobian and the cost-against-length measurement.

Tasks (deterministic: a seed gives the batch):
  recall    multi-query associative recall (Zoology, arXiv 2312.04927), one token per pair:
            `pairs` tokens (key k_i, value v_i), then `queries` tokens (key k, "?"); the target at
            a query is the value its key was paired with. Accuracy over the queries.
  majority  a CLS token then `length` symbols of `symbols`; the label (read at CLS) is the most
            frequent symbol (ties never drawn). A global summary: one histogram is enough.
  digits    scikit-learn's 8 x 8 digits as 16 patches of 2 x 2 pixels (a tiny ViT) after a
            CLS token; label read at CLS. 1297 train / 500 test images, a fixed split.

`train_cell(task, mixer, seed, ...)` trains one SeqTransformer with the same budget for every
mixer and returns its test accuracy; `experiments/mixers.py` runs the grid and stores the per-seed
results in data/mixers/results.json, which the notebook reads (`load_results`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hamlib.measure import interleaved_times, peak_tensor_memory
from hamlib.mixers import SeqTransformer, make_mixer
from hamlib.runtime import seed_everything

from .legend import mean_std, verdict

RESULTS = Path(__file__).resolve().parents[2] / "data" / "mixers" / "results.json"

# the rows every table compares: name -> make_mixer kwargs (rank r and gradient mode for the hams)
ROWS = {
    "attention": dict(mixer="attention"),
    "linear": dict(mixer="linear"),
    "nmf": dict(mixer="nmf"),                                # NMF's default gradient: BPTT through K
    "nmf-1step": dict(mixer="nmf", grad="one-step"),         # the paper's one-step gradient
    "cd": dict(mixer="cd"),                                  # CD's default: one-step-bases
    "vq": dict(mixer="vq"),                                  # VQ's default: the last 2 steps
    "mean": dict(mixer="mean"),
    "identity": dict(mixer="identity"),
}
HAMS = ("nmf", "nmf-1step", "cd", "vq")

# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

KEYS, VALUES = 128, 16          # recall's vocabularies: chance is 1/16


def recall_batch(n, pairs, queries=8, generator=None):
    """x (n, pairs + queries, 2) int64: field 0 the key, field 1 the value (VALUES = "?" at
    queries); y (n, pairs + queries): the queried value at queries, -100 (ignored) at pairs."""
    if pairs < 1 or pairs > KEYS:
        raise ValueError(f"pairs must be in 1..{KEYS}, got {pairs}")
    keys = torch.rand(n, KEYS, generator=generator).argsort(dim=1)[:, :pairs]       # distinct keys
    vals = torch.randint(0, VALUES, (n, pairs), generator=generator)
    which = torch.randint(0, pairs, (n, queries), generator=generator)              # queried pairs
    qk, qv = keys.gather(1, which), vals.gather(1, which)
    x = torch.stack([torch.cat([keys, qk], 1), torch.cat([vals, torch.full_like(qv, VALUES)], 1)], -1)
    y = torch.cat([torch.full_like(vals, -100), qv], 1)
    return x, y


def majority_batch(n, length=32, symbols=8, generator=None):
    """x (n, 1 + length) int64 (x[:, 0] = symbols, the CLS id), y (n,): the unique most frequent symbol."""
    xs, ys, have = [], [], 0
    while have < n:
        s = torch.randint(0, symbols, (2 * n, length), generator=generator)
        counts = F.one_hot(s, symbols).sum(1)                                        # (2n, symbols)
        top = counts.topk(2, dim=1).values
        keep = top[:, 0] > top[:, 1]                                                 # a unique winner
        xs.append(s[keep]), ys.append(counts[keep].argmax(1))
        have += int(keep.sum())
    s, y = torch.cat(xs)[:n], torch.cat(ys)[:n]
    return torch.cat([torch.full((n, 1), symbols), s], 1), y


def digits_data():
    """(x_train (1297, 17, 5), y_train, x_test (500, 17, 5), y_test): 16 patches of 2 x 2 pixels
    in [0, 1] plus a CLS flag feature, after a CLS token (all zeros but the flag)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    img = torch.tensor(d.images, dtype=torch.float32) / 16                          # (1797, 8, 8)
    p = img.reshape(-1, 4, 2, 4, 2).permute(0, 1, 3, 2, 4).reshape(-1, 16, 4)        # (1797, 16, 4)
    x = torch.cat([p, torch.zeros(len(p), 16, 1)], -1)
    cls = torch.zeros(len(p), 1, 5)
    cls[..., 4] = 1
    x, y = torch.cat([cls, x], 1), torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1297], perm[1297:]
    return x[tr], y[tr], x[te], y[te]


def task_spec(task, pairs=16, length=32):
    """(model kwargs, batch function(n, generator) -> (x, y), test set (x, y))."""
    if task == "recall":
        kw = dict(inputs=KEYS, classes=VALUES, fields=2, readout="tokens", max_len=pairs + 8)
        return kw, (lambda n, g: recall_batch(n, pairs, generator=g)), \
            recall_batch(512, pairs, generator=torch.Generator().manual_seed(10_000 + pairs))
    if task == "majority":
        kw = dict(inputs=9, classes=8, readout="first", max_len=length + 1)
        return kw, (lambda n, g: majority_batch(n, length, generator=g)), \
            majority_batch(1000, length, generator=torch.Generator().manual_seed(20_000))
    if task == "digits":
        xtr, ytr, xte, yte = digits_data()
        kw = dict(inputs=("vector", 5), classes=10, readout="first", max_len=17)

        def batch(n, g):
            i = torch.randint(0, len(xtr), (n,), generator=g)
            return xtr[i], ytr[i]
        return kw, batch, (xte, yte)
    raise ValueError(f"unknown task {task!r}; choose recall, majority or digits")


# ---------------------------------------------------------------------------
# Training: one loop, one budget for every row
# ---------------------------------------------------------------------------


def accuracy(model, x, y, batch=256):
    model.eval()
    right = total = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits, t = model(x[i:i + batch]), y[i:i + batch]
            m = t != -100
            right += int((logits.argmax(-1)[m] == t[m]).sum())
            total += int(m.sum())
    return right / total


def train_cell(task, row, seed, steps=400, batch=64, lr=3e-3, pairs=16, length=32, rank=16,
               channels=64, layers=2):
    """Train one SeqTransformer (row: a ROWS name) on a task; returns dict(acc, params, seconds, loss).

    AdamW (weight decay 0.01), a linear warm-up over the first 10 % of steps then cosine decay,
    gradient norm clipped at 1: the same for every row. The hams get rank r = `rank` and d = 2C
    (so that r = 64 is still a bottleneck of the 128 ham features)."""
    seed_everything(seed)
    mkw, make_batch, (xte, yte) = task_spec(task, pairs, length)
    kw = dict(ROWS[row])
    if kw["mixer"] in ("nmf", "cd", "vq"):
        kw.update(rank=rank, d=2 * channels)
    model = SeqTransformer(**mkw, channels=channels, layers=layers, **kw)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm))))
    g = torch.Generator().manual_seed(seed)
    t0, loss = time.process_time(), float("nan")
    for _ in range(steps):
        model.train()
        x, y = make_batch(batch, g)
        out = model(x)
        loss_t = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss = float(loss_t)
    return dict(acc=accuracy(model, xte, yte), params=sum(p.numel() for p in model.parameters()),
                seconds=time.process_time() - t0, loss=loss)


# ---------------------------------------------------------------------------
# Stored results, tables, verdicts
# ---------------------------------------------------------------------------


def load_results(path=RESULTS):
    """The stored grid: dict(command, config, runs: [dict(table, task, row, seed, pairs, rank, acc, ...)])."""
    return json.loads(Path(path).read_text())


def sha256(path=RESULTS):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cells(runs, table):
    """(row, pairs, rank) -> [acc per seed, in seed order] for one table's runs."""
    out = {}
    for r in sorted((r for r in runs if r["table"] == table), key=lambda r: r["seed"]):
        out.setdefault((r["row"], r.get("pairs"), r.get("rank")), []).append(r["acc"])
    return out


def fmt(accs):
    m, s = mean_std(accs)
    return f"{m:.3f} ± {s:.3f} (" + ", ".join(f"{a:.3f}" for a in accs) + ")"


def table_markdown(runs, table, by="pairs"):
    """Markdown: one line per row, one column per value of `by` ("pairs" or "rank", or None for
    a single column); each cell mean ± std (the seeds' values)."""
    c = cells(runs, table)
    if table == "rank":                                          # one line per rank r
        c = {(f"{k[0]} r={k[2]}", k[1], None): v for k, v in c.items()}
    rows = list(dict.fromkeys(k[0] for k in c))
    if by is None:
        lines = ["| mixer | accuracy: mean ± std (per seed) |", "|---|---|"]
        lines += [f"| {row} | {fmt(c[(row, None, None)])} |" for row in rows]
        return "\n".join(lines)
    idx = 1
    cols = sorted({k[idx] for k in c})
    lines = ["| mixer | " + " | ".join(f"{by} = {v}" for v in cols) + " |", "|---|" + "---|" * len(cols)]
    for row in rows:
        cellv = [fmt(accs) for k, accs in c.items() if k[0] == row for v in cols if k[idx] == v]
        lines.append(f"| {row} | " + " | ".join(cellv) + " |")
    return "\n".join(lines)


def summary(runs, table, pairs=None, rank=None):
    """row -> dict(acc, acc_std) for one column (the form `course.legend.verdict` reads)."""
    out = {}
    for (row, p, r), accs in cells(runs, table).items():
        if p == pairs and r == rank:
            m, s = mean_std(accs)
            out[row] = dict(acc=m, acc_std=s)
    return out


def compare(runs, table, a, b, pairs=None, rank=None):
    rank = 16 if table == "recall" and rank is None else rank
    """The course's verdict ("a > b", "b > a" or "tie") between two rows of one column."""
    return verdict(summary(runs, table, pairs, rank), a, b, key="acc")


def rank_claim(runs, chance=1 / VALUES):
    """The recall-vs-rank claim, read from the 'rank' table: for each rank r, the largest number of
    pairs at which the NMF Hamburger still recalls (mean accuracy >= 0.5), and the same for
    attention from the 'recall' table. Returns dict(r -> pairs or 0, "attention" -> pairs or 0)."""
    def last_ok(accs_by_pairs):
        ok = [p for p, accs in sorted(accs_by_pairs.items()) if mean_std(accs)[0] >= 0.5]
        return max(ok) if ok else 0
    ranks = {}
    for (row, p, r), accs in cells(runs, "rank").items():
        ranks.setdefault(r, {})[p] = accs
    att = {p: accs for (row, p, r), accs in cells(runs, "recall").items() if row == "attention"}
    out = {r: last_ok(v) for r, v in sorted(ranks.items())}
    out["attention"] = last_ok(att)
    return out


def widget_view(results, pairs, rank):
    """The widget's callback: the recall accuracies (mean ± std, per seed) of every row at `pairs`,
    the NMF Hamburger at rank `rank`, and the verdict attention vs that Hamburger. Returns Markdown."""
    runs = results["runs"]
    c = cells(runs, "recall")
    pairs_avail = sorted({k[1] for k in c})
    if pairs not in pairs_avail:
        raise ValueError(f"pairs = {pairs} was not run; the stored grid has {pairs_avail}")
    ranks = sorted({k[2] for k in cells(runs, "rank")})
    if rank not in ranks:
        raise ValueError(f"rank = {rank} was not run; the stored grid has {ranks}")
    lines = [f"**{pairs} pairs** (chance {1 / VALUES:.3f})", "", "| mixer | accuracy |", "|---|---|"]
    lines += [f"| {row} | {fmt(accs)} |" for (row, p, _), accs in c.items() if p == pairs]
    ham = cells(runs, "rank")[("nmf", pairs, rank)]
    lines.append(f"| **nmf, r = {rank}** | {fmt(ham)} |")
    m, s = mean_std(ham)
    att = summary(runs, "recall", pairs, 16)["attention"]
    v = verdict({"attention": att, f"nmf r={rank}": dict(acc=m, acc_std=s)}, "attention", f"nmf r={rank}", "acc")
    lines += ["", f"verdict: **{v}**"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Causality and cost
# ---------------------------------------------------------------------------


def token_jacobian(mixer, N=16, C=None, seed=0):
    """J[i, j] = || d out_i / d x_j ||_F for one random (1, N, C) input: who reads whom. (N, N)."""
    C = mixer.channels if C is None else C
    x = torch.randn(1, N, C, generator=torch.Generator().manual_seed(seed))
    mixer.eval()
    J = torch.autograd.functional.jacobian(lambda t: mixer(t), x)               # (1, N, C, 1, N, C)
    return J[0, :, :, 0].pow(2).sum(dim=(1, 3)).sqrt()                         # (N, N)


def mixer_macs(name, N, C=64, heads=4, d=64, rank=16, steps=6):
    """Analytic multiply-accumulates of one forward on (1, N, C) (projections included)."""
    if name == "attention":
        return 4 * N * C * C + 2 * N * N * C                     # q, k, v, out; Q K^T and A V
    if name == "linear":
        return 4 * N * C * C + 2 * N * C * (C // heads)          # phi(K)^T V and phi(Q) (KV)
    if name in ("nmf", "cd", "vq"):
        # breads 2 N C d; per step D^T X, X C (2 N d r) and the r x r Gram products (~ N r^2 + d r^2)
        return 2 * N * C * d + steps * (2 * N * d * rank + N * rank * rank) + N * d * rank
    if name == "mean":
        return N * C + C * C
    return 0


def mixer_memory(name, N, C=64, heads=4, d=64, rank=16, bytes_per=4):
    """Analytic bytes of the largest activations of one forward (the leading term)."""
    if name == "attention":
        return bytes_per * (4 * N * C)                           # fused SDPA: no N x N matrix kept
    if name == "attention-math":
        return bytes_per * heads * N * N                         # the unfused N x N scores
    if name == "linear":
        return bytes_per * (5 * N * C)
    if name in ("nmf", "cd", "vq"):
        return bytes_per * (N * (C + 2 * d + 2 * rank))
    return bytes_per * N * C


def cost_vs_length(names=("attention", "linear", "nmf", "cd", "vq", "mean"), lengths=(256, 1024, 4096),
                   C=64, rank=16, repeats=3, seed=0):
    """For each N: forward time (ms, median of `repeats` interleaved rounds) and peak tensor memory
    (MiB, `hamlib.measure.peak_tensor_memory`) of each mixer on (1, N, C) in inference, beside its
    MAC formula. Returns a list of dict(N, name, ms, mib, macs, model_mib)."""
    torch.manual_seed(seed)
    out = []
    for N in lengths:
        x = torch.randn(1, N, C)
        mods = {n: make_mixer(n, C, N, **({"rank": rank} if n in ("nmf", "cd", "vq") else {})).eval() for n in names}

        def run(m):
            with torch.no_grad():
                m(x)
        times = interleaved_times({n: (lambda m=m: run(m)) for n, m in mods.items()}, rounds=repeats, warmup=1)
        for n, m in mods.items():
            out.append(dict(N=N, name=n, ms=sorted(times[n])[len(times[n]) // 2],
                            mib=peak_tensor_memory(lambda m=m: run(m)) / 2**20,
                            macs=mixer_macs(n, N, C, rank=rank), model_mib=mixer_memory(n, N, C, rank=rank) / 2**20))
    return out


def crossover(rows, name, ref="attention", key="ms"):
    """The smallest measured N from which `name` is cheaper than `ref` at every larger N (or None)."""
    Ns = sorted({r["N"] for r in rows})
    val = {(r["name"], r["N"]): r[key] for r in rows}
    cheaper = [val[(name, N)] < val[(ref, N)] for N in Ns]
    for i, N in enumerate(Ns):
        if all(cheaper[i:]):
            return N
    return None


def cost_markdown(rows):
    lines = ["| N | mixer | ms | MACs (formula) | MiB measured | MiB (formula) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['N']} | {r['name']} | {r['ms']:.2f} | {r['macs'] / 1e6:.1f} M | {r['mib']:.2f} | "
              f"{r['model_mib']:.2f} |" for r in rows]
    return "\n".join(lines)
