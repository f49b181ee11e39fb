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

from hamlib.measure import interleaved_times, peak_memory, peak_tensor_memory
from hamlib.mixers import SeqTransformer, make_mixer
from hamlib.runtime import seed_everything

from .legend import mean_std, verdict

RESULTS = Path(__file__).resolve().parents[2] / "data" / "mixers" / "results.json"
COST = RESULTS.with_name("cost.json")

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
HAM_MIXERS = ("nmf", "cd", "vq")

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
        loss = loss_t.item()
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
    """The course's verdict ("a > b", "b > a" or "tie") between two rows of one column (the
    recall table's hams are at r = 16)."""
    rank = 16 if table == "recall" and rank is None else rank
    return verdict(summary(runs, table, pairs, rank), a, b, key="acc")


def rank_claim(runs, threshold=0.5):
    """The recall-vs-rank claim, read from the grid: for each rank r of the NMF Hamburger (r = 4, 64
    from the 'rank' table, r = 16 from 'recall'), the largest number of pairs at which it still
    recalls (mean accuracy >= threshold), and the same for attention. Returns dict(r -> pairs or 0,
    "attention" -> pairs or 0), ranks in increasing order."""
    def last_ok(accs_by_pairs):
        ok = [p for p, accs in sorted(accs_by_pairs.items()) if mean_std(accs)[0] >= threshold]
        return max(ok) if ok else 0
    ranks = {}
    for (row, p, r), accs in cells(runs, "rank").items():
        ranks.setdefault(r, {})[p] = accs
    rec = cells(runs, "recall")
    ranks[16] = {p: accs for (row, p, r), accs in rec.items() if row == "nmf"}
    out = {r: last_ok(v) for r, v in sorted(ranks.items())}
    out["attention"] = last_ok({p: accs for (row, p, r), accs in rec.items() if row == "attention"})
    return out


def widget_view(results, pairs, rank):
    """The widget's callback: the recall accuracies (mean ± std, per seed) of every row at `pairs`,
    the NMF Hamburger at rank `rank`, and the verdict attention vs that Hamburger. Returns Markdown."""
    runs = results["runs"]
    c = cells(runs, "recall")
    pairs_avail = sorted({k[1] for k in c})
    if pairs not in pairs_avail:
        raise ValueError(f"pairs = {pairs} was not run; the stored grid has {pairs_avail}")
    ranks = sorted({k[2] for k in cells(runs, "rank")} | {16})                 # r = 16 is the recall table's
    if rank not in ranks:
        raise ValueError(f"rank = {rank} was not run; the stored grid has {ranks}")
    lines = [f"**{pairs} pairs** (chance {1 / VALUES:.3f})", "", "| mixer | accuracy |", "|---|---|"]
    lines += [f"| {row} | {fmt(accs)} |" for (row, p, _), accs in c.items() if p == pairs]
    ham = c[("nmf", pairs, 16)] if rank == 16 else cells(runs, "rank")[("nmf", pairs, rank)]
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
                   C=64, rank=16, repeats=3, seed=0, device="cpu"):
    """For each N: forward time (ms, median of `repeats` interleaved rounds), peak memory (MiB)
    and the analytic MACs and memory of each mixer on (1, N, C) in inference, the hams with
    d = 2C (as `train_cell` builds them). Peak memory two ways: `mib` = tensor storage counted op
    by op (`hamlib.measure.peak_tensor_memory`: the same on every run, blind to a fused kernel's
    private scratch), `alloc_mib` = what the allocator handed out (`peak_memory`: sees SDPA's
    scratch too; on CUDA the caching allocator's peak). Returns a list of dict(N, name, ms, mib,
    alloc_mib, macs, model_mib)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    out = []
    for N in lengths:
        x = torch.randn(1, N, C, device=device)
        mods = {n: make_mixer(n, C, N, **(dict(rank=rank, d=2 * C) if n in HAM_MIXERS else {})).to(device).eval()
                for n in names}

        def run(m):
            with torch.no_grad():
                m(x)
        times = interleaved_times({n: (lambda m=m: run(m)) for n, m in mods.items()}, rounds=repeats, warmup=1,
                                  device=device)
        for n, m in mods.items():
            out.append(dict(N=N, name=n, ms=sorted(times[n])[len(times[n]) // 2],
                            mib=peak_tensor_memory(lambda m=m: run(m)) / 2**20,
                            alloc_mib=peak_memory(lambda m=m: run(m), device) / 2**20,
                            macs=mixer_macs(n, N, C, d=2 * C, rank=rank),
                            model_mib=mixer_memory(n, N, C, d=2 * C, rank=rank) / 2**20))
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
    lines = ["| N | mixer | ms | MACs (formula) | MiB tensors | MiB allocator | MiB (formula) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['N']} | {r['name']} | {r['ms']:.2f} | {r['macs'] / 1e6:.1f} M | {r['mib']:.2f} | "
              f"{r['alloc_mib']:.2f} | {r['model_mib']:.2f} |" for r in rows]
    return "\n".join(lines)


def load_cost(path=COST):
    """The stored cost-against-length run: dict(command, config, rows, crossover)."""
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------------------
# Figures and the widget
# ---------------------------------------------------------------------------

COLOURS = {"attention": "C0", "linear": "C1", "nmf": "C2", "nmf-1step": "C8", "cd": "C3", "vq": "C4",
           "mean": "C5", "identity": "C7"}


def draw_recall(results):
    """Left: recall accuracy against the number of pairs, every row (hams at r = 16), mean and the
    seeds' range; right: the NMF Hamburger at r = 4, 16, 64 beside attention. Chance dotted."""
    from matplotlib.figure import Figure
    runs = results["runs"]
    fig = Figure(figsize=(10, 3.6))
    a, b = fig.subplots(1, 2, sharey=True)
    c = cells(runs, "recall")
    for row in ROWS:
        ps = sorted(p for (r, p, _) in c if r == row)
        m = [mean_std(c[(row, p, 16)])[0] for p in ps]
        lo = [min(c[(row, p, 16)]) for p in ps]
        hi = [max(c[(row, p, 16)]) for p in ps]
        a.plot(ps, m, "o-", color=COLOURS[row], label=row)
        a.fill_between(ps, lo, hi, color=COLOURS[row], alpha=0.15)
    rk = cells(runs, "rank")
    for r, style in ((4, ":"), (16, "-"), (64, "--")):
        src = c if r == 16 else rk
        tab = "recall" if r == 16 else "rank"
        ps = sorted(p for (row, p, rr) in cells(runs, tab) if row == "nmf" and rr == r)
        b.plot(ps, [mean_std(src[("nmf", p, r)])[0] for p in ps], "o" + style, color="C2", label=f"nmf r = {r}")
        for p in ps:
            b.plot([p] * 3, src[("nmf", p, r)], ".", color="C2", alpha=0.5)
    ps = sorted(p for (row, p, _) in c if row == "attention")
    b.plot(ps, [mean_std(c[("attention", p, 16)])[0] for p in ps], "o-", color="C0", label="attention")
    for ax, title in ((a, "recall: every mixer (hams r = 16)"), (b, "recall: NMF's rank r")):
        ax.axhline(1 / VALUES, color="k", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("key-value pairs in the sequence")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, ncol=2)
    a.set_ylabel("query accuracy (3 seeds: mean, range)")
    fig.tight_layout()
    return fig


def draw_cost(cost):
    """Forward time and peak memory against N (log-log), one line per mixer, the crossover lengths
    (from which each ham is faster than SDPA at every longer N) marked."""
    from matplotlib.figure import Figure
    rows = cost["rows"]
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    names = list(dict.fromkeys(r["name"] for r in rows))
    for ax, key, label in ((axes[0], "ms", "forward time (ms)"), (axes[1], "alloc_mib", "peak memory (MiB)")):
        for n in names:
            pts = sorted((r["N"], r[key]) for r in rows if r["name"] == n and r[key] > 0)   # mean pooling
            if pts:                                         # returns a view: no memory of its own to plot
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=COLOURS.get(n, "k"), label=n)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(label)
    for n in ("nmf", "vq"):
        N = cost["crossover"].get(n, {}).get("ms")
        if N:
            axes[0].axvline(N, color=COLOURS[n], ls="--", lw=1)
            axes[0].annotate(f"{n} faster from N = {N}", (N, axes[0].get_ylim()[1]), fontsize=7,
                             color=COLOURS[n], rotation=90, va="top", ha="right")
    axes[0].legend(fontsize=7)
    axes[0].set_title("time: attention grows as N^2, the others as N", fontsize=10)
    axes[1].set_title("memory: fused SDPA keeps no N x N matrix", fontsize=10)
    fig.tight_layout()
    return fig


def draw_jacobians(mats):
    """mats {label: (N, N) tensor J[i, j] = ||d out_i / d x_j||}: heat maps, each titled with the
    share of its mass above the diagonal (token i reading tokens j > i)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2.4 * len(mats) + 0.5, 2.8))
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    for ax, (label, J) in zip(axes, mats.items()):
        ax.imshow(J.numpy(), cmap="viridis")
        ax.set_title(f"{label}\nabove diagonal {future_share(J):.0%}", fontsize=8)
        ax.set_xlabel("input token j", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("output token i", fontsize=8)
    fig.tight_layout()
    return fig


def future_share(J):
    """The share of J's mass strictly above the diagonal: how much output i depends on inputs j > i."""
    total = float(J.sum())
    return float(torch.triu(J, diagonal=1).sum()) / total if total else 0.0


def cross_share(J):
    """The share of J's mass off the diagonal: how much output i depends on the other tokens."""
    total = float(J.sum())
    return (total - float(J.diagonal().sum())) / total if total else 0.0


def draw_view(results, cost, pairs, rank, N):
    """The widget's figure: recall accuracies at `pairs` (NMF at rank `rank` added) and the forward
    times at length N, titled with the verdict attention vs that NMF (`widget_view`'s rule)."""
    from matplotlib.figure import Figure
    md = widget_view(results, pairs, rank)                           # validates pairs and rank
    Ns = sorted({r["N"] for r in cost["rows"]})
    if N not in Ns:
        raise ValueError(f"N = {N} was not measured; the stored run has {Ns}")
    c = cells(results["runs"], "recall")
    labels = [row for (row, p, _) in c if p == pairs] + [f"nmf r={rank}"]
    ham = c[("nmf", pairs, 16)] if rank == 16 else cells(results["runs"], "rank")[("nmf", pairs, rank)]
    accs = [c[(row, pairs, 16)] for row in labels[:-1]] + [ham]
    fig = Figure(figsize=(10, 3.4))
    a, b = fig.subplots(1, 2)
    means = [mean_std(v)[0] for v in accs]
    a.barh(labels, means, color=[COLOURS.get(lab, "C2") for lab in labels])
    for i, v in enumerate(accs):
        a.plot(v, [i] * len(v), "k.", ms=3)
    a.axvline(1 / VALUES, color="k", ls=":", lw=1)
    a.set_xlim(0, 1)
    a.invert_yaxis()
    a.set_xlabel(f"recall accuracy, {pairs} pairs (3 seeds)")
    rows = [r for r in cost["rows"] if r["N"] == N]
    b.barh([r["name"] for r in rows], [r["ms"] for r in rows], color=[COLOURS.get(r["name"], "k") for r in rows])
    b.set_xscale("log")
    b.invert_yaxis()
    b.set_xlabel(f"forward time at N = {N} (ms, this CPU, stored)")
    fig.suptitle(md.rsplit("verdict: ", 1)[1].replace("**", "verdict: ", 1).replace("**", ""), fontsize=10)
    fig.tight_layout()
    return fig


def widget(results, cost):
    """Pairs, rank and length sliders redrawing `draw_view` (an ipywidgets box)."""
    import ipywidgets as widgets

    from .lowrank import figure_widget
    pairs = sorted({k[1] for k in cells(results["runs"], "recall")})
    ranks = sorted({k[2] for k in cells(results["runs"], "rank")} | {16})
    Ns = sorted({r["N"] for r in cost["rows"]})
    controls = {"pairs": widgets.SelectionSlider(options=pairs, value=16, description="pairs",
                                                 continuous_update=False),
                "rank": widgets.SelectionSlider(options=ranks, value=16, description="rank r",
                                                continuous_update=False),
                "N": widgets.SelectionSlider(options=Ns, value=Ns[len(Ns) // 2], description="length N",
                                             continuous_update=False)}
    return figure_widget(lambda pairs, rank, N: draw_view(results, cost, pairs, rank, N), controls, "mixers-view")
