"""The closing cheat sheet's tables (notebook 08): gradient modes, and what the course reproduces.

- `mode_rows(K)`: every gradient mode as its `hamlib.grad.GradPlan` at K steps, with what
  autograd sees, whether the gradient crosses pixels, and whether backward memory and time
  grow with K: all read off the plan (at K and at 2K), nothing typed in by hand.
  `modes_markdown(rows, measured, cross)` adds measured columns (rows of
  `gradients.gradient_vs_K` and each mode's largest cross-pixel Jacobian entry,
  `hamlib.analysis.cross_pixel_max`).
- `canonical_head(name)`: a head name (`legend.head_spec`) with the solver's default
  gradient filled in ("nmf default" and "nmf" -> "nmf bptt"), so that checkpoints named
  either way are grouped together.
- `seg_results(manifest, task)`: mean and spread over seeds of the validation mIoU
  (`val.stored.miou`, the metric of the stored weights) and legend accuracy of each head of a
  task in a checkpoint manifest (`checkpoints.read_manifest()`).
- `reproduction_rows(manifest, macs, measured)`: the paper's claims, its numbers beside ours and
  a verdict (`seg_rows(manifest)`: the segmentation ones alone; a comparison of two heads is
  `legend.verdict`'s rule); `reproduction_markdown(rows)` as a Markdown table.

The paper's numbers are those of its tables: the VOC ablation (one-step vs BPTT per solver,
PASCAL VOC val mIoU), VOC test mIoU, ImageNet-128 FID; its efficiency table is
`efficiency.PAPER_EFFICIENCY`.
"""

from __future__ import annotations

import inspect

from hamlib.grad import GradPlan, grad_plan
from hamlib.ham import Hamburger
from hamlib.md import SOLVERS
from hamlib.measure import markdown_table
from .efficiency import PAPER_EFFICIENCY
from .legend import mean_std, head_spec, verdict

# ---------------------------------------------------------------------------
# The paper's numbers (Geng et al., ICLR 2021)
# ---------------------------------------------------------------------------

# PASCAL VOC val mIoU of HamNet with each solver: (one-step gradient, BPTT)
PAPER_ABLATION = {"nmf": (78.3, 77.4), "cd": (78.1, 75.0), "vq": (77.7, 76.6)}
# PASCAL VOC test mIoU (no COCO pre-training): HamNet and the heads it is compared with
PAPER_VOC_TEST = {"HamNet": 85.9, "DANet": 82.6, "PSPNet": 82.6, "EncNet": 82.9, "OCR": 84.3}
# ImageNet 128 x 128, FID (lower is better)
PAPER_GAN_FID = {"SAGAN": 18.28, "HamGAN-baby": 16.05, "HamGAN-strong": 14.77}

TASKS = ("legend1", "legend2")  # the segmentation tasks whose checkpoints the tables read

# ---------------------------------------------------------------------------
# Gradient modes, read off their plans
# ---------------------------------------------------------------------------

MODES = ("one-step", "one-step-bases", 2, "implicit", "bptt")


def sees(plan: GradPlan, K: int) -> str:
    """What autograd differentiates under a plan, in words."""
    parts = ["the final coefficient step"]
    if plan.differentiate_init:
        parts.append(f"all {plan.tracked} steps and the initial coefficients")
    elif plan.tracked:
        parts.append(f"the last {plan.tracked} step{'s' * (plan.tracked > 1)}")
    if plan.split_last:
        parts.append("the last bases update")
    if plan.neumann:
        parts.append(f"the last step, its gradient corrected by {plan.neumann} Neumann terms")
    return " + ".join(parts)


def mode_rows(K: int = 6, modes=MODES) -> list[dict]:
    """One row per gradient mode at K steps: the plan's fields, what autograd sees, whether the
    gradient crosses pixels (anything beyond the final step), whether backward memory grows with
    K (the tracked steps differ between K and 2K) and whether backward time does (tracked steps
    or Neumann terms differ), and which solvers use the mode by default."""
    rows = []
    for mode in modes:
        p, p2 = grad_plan(mode, K), grad_plan(mode, 2 * K)
        rows.append(dict(mode=str(mode), free=p.free, tracked=p.tracked, split_last=p.split_last,
                         neumann=p.neumann, differentiate_init=p.differentiate_init, sees=sees(p, K),
                         crosses_pixels=p != GradPlan(free=K),
                         memory_grows=p2.tracked != p.tracked,
                         time_grows=(p2.tracked, p2.neumann) != (p.tracked, p.neumann),
                         default_for=[k for k, m in SOLVERS.items() if m.default_grad == mode]))
    return rows


def modes_markdown(rows, measured=None, cross=None) -> str:
    """The Markdown table of `mode_rows`, with, when given, measured columns: `measured` rows of
    `hamlib.viz.gradients.gradient_vs_K` (mode, K, memory_mb, backward_ms) at the rows' K and
    at 2K, and `cross` {mode: largest cross-pixel Jacobian entry}."""
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    header = ["grad=", "autograd sees", "crosses pixels", "memory grows with K", "time grows with K",
              "default of"]
    by = {(r["mode"], r["K"]): r for r in measured or ()}
    Ks = sorted({r["K"] for r in measured or ()})
    if measured:
        header += [f"MB at K={k}" for k in Ks] + [f"backward ms at K={Ks[0]}"]
    if cross is not None:
        header.append("max cross-pixel dy_i/dx_j")
    cells = []
    for r in rows:
        line = [f"`{r['mode']}`", r["sees"], yes(r["crosses_pixels"]), yes(r["memory_grows"]), yes(r["time_grows"]),
                ", ".join(s.upper() for s in r["default_for"]) or "-"]
        if measured:
            line += [f"{by[r['mode'], k]['memory_mb']:.3f}" for k in Ks] + [f"{by[r['mode'], Ks[0]]['backward_ms']:.2f}"]
        if cross is not None:
            line.append(f"{cross[r['mode']]:.2g}")
        cells.append(line)
    return markdown_table(header, cells)


# ---------------------------------------------------------------------------
# Checkpoint results, grouped by head
# ---------------------------------------------------------------------------


def canonical_head(name: str) -> str:
    """A head name with the solver's default gradient filled in: "nmf", "nmf default" and
    "nmf bptt" -> "nmf bptt"; "vq" -> "vq 2"; the block's default init left out ("nmf default
    init=pytorch" -> "nmf bptt"); other options kept, sorted ("nmf default init=reference rank=4"
    -> "nmf bptt init=reference rank=4"); heads without a Hamburger unchanged."""
    spec = head_spec(name)
    if spec["context"] != "ham":
        return name
    ham = dict(spec["ham"])
    if ham.get("init") == inspect.signature(Hamburger).parameters["init"].default:
        del ham["init"]
    solver, grad = ham.pop("ham"), ham.pop("grad", None)
    grad = SOLVERS[solver].default_grad if grad is None else grad
    return " ".join([solver, str(grad)] + [f"{k}={v}" for k, v in sorted(ham.items())])


def seg_results(manifest: dict, task: str) -> dict:
    """canonical head -> dict(miou, miou_std, ctx_acc, seeds) over the HamNet records of a task
    (metrics of the stored weights on the validation set, `val.stored`)."""
    groups = {}
    for rec in manifest.get("files", {}).values():
        if rec.get("kind") == "hamnet" and rec.get("task") == task:
            groups.setdefault(canonical_head(rec["head"]), []).append(rec)
    out = {}
    for head, recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: r["seed"])
        m, s = mean_std([r["val"]["stored"]["miou"] for r in recs])
        ctx = [r["val"]["stored"]["ctx_acc"] for r in recs if r["val"]["stored"].get("ctx_acc") is not None]
        out[head] = dict(miou=m, miou_std=s, ctx_acc=mean_std(ctx)[0], seeds=[r["seed"] for r in recs])
    return out


# ---------------------------------------------------------------------------
# What the course reproduces
# ---------------------------------------------------------------------------


def claim_verdict(res: dict, a: str, b: str) -> str:
    """The claim "a beats b" on `seg_results` rows, by `legend.verdict`'s rule (a difference counts
    only beyond the sum of the seeds' standard deviations): 'holds', 'reversed' or
    'tie (within the seeds' spread)'."""
    v = verdict(res, a, b)
    return "tie (within the seeds' spread)" if v == "tie" else ("holds" if v == f"{a} > {b}" else "reversed")


def _fmt(r: dict) -> str:
    n = len(r["seeds"])
    return f"{r['miou']:.3f}" + (f" ± {r['miou_std']:.3f}" if n > 1 else "") + f" ({n} seed{'s' * (n > 1)})"


def seg_rows(manifest: dict) -> list[dict]:
    """The segmentation claims (rows as `reproduction_rows`') for each legend task in the manifest: the
    paper's one-step vs BPTT per solver, NMF > CD > VQ with each solver's default gradient, and the best
    Hamburger head against self-attention, pooling and no context. A head missing from the manifest
    gives a row "not tested here"."""
    rows = []
    tasks = sorted({r["task"] for r in manifest.get("files", {}).values()
                    if r.get("kind") == "hamnet" and r.get("task") in TASKS})
    for task in tasks:
        res, where = seg_results(manifest, task), f"checkpoints, task {task}"

        def pair(claim, paper, a, b, note=""):
            if a in res and b in res:
                rows.append(dict(claim=claim, paper=paper, ours=f"{note}{a} {_fmt(res[a])} vs {b} {_fmt(res[b])}",
                                 verdict=claim_verdict(res, a, b), where=where))
            else:
                missing = " and ".join(h for h in (a, b) if h not in res)
                rows.append(dict(claim=claim, paper=paper, ours=f"{missing}: not among the checkpoints",
                                 verdict="not tested here", where=where))

        for solver, (one, bptt) in PAPER_ABLATION.items():
            pair(f"{solver.upper()}: one-step gradient > BPTT", f"{one} vs {bptt} (VOC val)",
                 f"{solver} one-step", f"{solver} bptt")
        defaults = [f"{k} {SOLVERS[k].default_grad}" for k in ("nmf", "cd", "vq")]
        if all(h in res for h in defaults):
            order = sorted(defaults, key=lambda h: -res[h]["miou"])
            ok = [claim_verdict(res, a, b) for a, b in zip(defaults, defaults[1:])]
            verdict = "holds" if ok == ["holds", "holds"] else (
                "reversed" if "reversed" in ok else "tie (within the seeds' spread)")
            rows.append(dict(claim="NMF > CD > VQ", paper=" > ".join(str(PAPER_ABLATION[k][0]) for k in PAPER_ABLATION)
                             + " (VOC val, one-step)",
                             ours=" > ".join(f"{h} {res[h]['miou']:.3f}" for h in order) + " (each solver's default)",
                             verdict=verdict, where=where))
        hams = [h for h in res if h.split()[0] in SOLVERS]
        if hams:
            best = max(hams, key=lambda h: res[h]["miou"])
            voc = f"HamNet {PAPER_VOC_TEST['HamNet']} vs "
            pair("a Hamburger head beats self-attention", voc + f"DANet {PAPER_VOC_TEST['DANet']} (VOC test)",
                 best, "attention", "best Hamburger, ")
            pair("a Hamburger head beats pooling", voc + f"PSPNet {PAPER_VOC_TEST['PSPNet']} (VOC test)",
                 best, "pool", "best Hamburger, ")
            pair("a Hamburger head beats no context", "(no such row in the paper)", best, "none", "best Hamburger, ")
    return rows


def reproduction_rows(manifest: dict | None = None, macs=None, measured=None, measured_at: str = "") -> list[dict]:
    """The paper's claims with its numbers beside ours: dicts (claim, paper, ours, verdict, where).

    manifest: a checkpoint manifest (`checkpoints.read_manifest()`), or None: the segmentation
    rows. macs: `efficiency.macs_rows()` at the paper's shape (the formulas). measured: rows of
    `efficiency.run` with cases "nmf" and "attention" (ratios of times and memory), measured at
    `measured_at` (a description of the shape and device). Claims nothing here reproduces are
    listed too, with the reason.
    """
    rows = []
    paper = {r["name"]: r for r in PAPER_EFFICIENCY}
    if macs is not None:
        ours = {r["name"]: r for r in macs}
        for name in ("self-attention", "Ham (NMF)", "Ham (CD)"):
            p, o = paper[name], ours[name]
            off = o["gmacs"] / p["gmacs"] - 1
            rows.append(dict(claim=f"MACs of {name}, 1 x 512 x 128 x 128", paper=f"{p['gmacs']}G",
                             ours=f"{o['gmacs']:.1f}G (formula)",
                             verdict="reproduced" if abs(off) <= 0.01 else f"differs by {100 * off:+.0f}%",
                             where="notebooks 04, 08"))
            rows.append(dict(claim=f"parameters of {name}", paper=f"{p['params_m']:.2f}M",
                             ours=f"{o['params'] / 2**20:.2f}M (M = 2^20)",
                             verdict="reproduced" if round(o["params"] / 2**20, 2) == p["params_m"] else "differs",
                             where="notebooks 04, 08"))
    if measured is not None:
        m = {r["name"]: r for r in measured if r.get("mode", "eager") == "eager"}
        att, nmf = m["attention"], m["nmf"]
        pa, pn = paper["self-attention"], paper["Ham (NMF)"]
        for what, key in (("training time", "train_ms"), ("training memory", "train_mb")):
            ratio, pratio = att[key] / nmf[key], pa[key] / pn[key]
            rows.append(dict(claim=f"self-attention / NMF ham, {what}", paper=f"{pratio:.1f}x (GPU, N = 16384)",
                             ours=f"{ratio:.1f}x ({measured_at})",
                             verdict="direction holds" if ratio > 1 else "reversed", where="notebooks 04, 08"))
    rows += seg_rows(manifest or {})
    rows.append(dict(claim="HamNet on PASCAL VOC", paper=f"{PAPER_VOC_TEST['HamNet']} mIoU (test)",
                     ours="not trained (the recipe, `--config voc`, takes about 3 days on 8 GPUs)",
                     verdict="not reproduced", where="README, notebook 06"))
    rows.append(dict(claim="HamGAN beats SAGAN on ImageNet 128",
                     paper=f"FID {PAPER_GAN_FID['HamGAN-baby']} (baby), {PAPER_GAN_FID['HamGAN-strong']} (strong) "
                           f"vs SAGAN {PAPER_GAN_FID['SAGAN']}",
                     ours="not trained (notebook 07 trains on digits; its FID, from a digits classifier, "
                          "compares runs with each other only)",
                     verdict="not reproduced", where="notebook 07"))
    return rows


def reproduction_markdown(rows) -> str:
    """`reproduction_rows` as a Markdown table."""
    return markdown_table(["claim", "paper", "ours", "verdict", "where"],
                          [[r["claim"], r["paper"], r["ours"], r["verdict"], r["where"]] for r in rows])


def mixer_rows(results: dict, cost: dict) -> list[dict]:
    """Notebook 09's answers as reproduction rows (claim, paper, ours, verdict, where): the
    Hamburger as a transformer's token mixer, from its stored grid and cost run
    (`sequences.load_results()`, `sequences.load_cost()`). The paper tests CNNs only."""
    from . import sequences as S
    runs, none = results["runs"], "(not in the paper: CNNs only)"
    att16 = S.summary(runs, "recall", 16, 16)
    r4 = S.summary(runs, "rank", 16, 4)["nmf"]["acc"]
    r64 = S.summary(runs, "rank", 16, 64)["nmf"]["acc"]
    claim = S.rank_claim(runs)
    rows = [dict(claim="a rank-r Hamburger stops recalling near r key-value pairs", paper=none,
                 ours=f"recall at 16 pairs: {r4:.2f} / {att16['nmf']['acc']:.2f} / {r64:.2f} at r = 4 / 16 / 64; "
                      f"pairs recalled: {claim}",
                 verdict=("confirmed up to 16 pairs" if claim[4] < claim[16] <= claim[64] and claim["attention"] >= 16
                          else "not confirmed"),
                 where="notebook 09")]
    for task, what in (("recall", "recall, 16 pairs"), ("majority", "majority"), ("digits", "digits as patches")):
        kw = dict(pairs=16) if task == "recall" else {}
        v = S.compare(runs, task, "attention", "nmf", **kw)
        s = S.summary(runs, task, kw.get("pairs"), 16 if task == "recall" else None)
        rows.append(dict(claim=f"NMF Hamburger vs softmax attention as token mixer, {what}", paper=none,
                         ours=f"{s['nmf']['acc']:.3f} ± {s['nmf']['acc_std']:.3f} vs "
                              f"{s['attention']['acc']:.3f} ± {s['attention']['acc_std']:.3f}",
                         verdict=v, where="notebook 09"))
    n = cost["crossover"]["nmf"]["ms"]
    rows.append(dict(claim="NMF Hamburger faster than SDPA at long sequences", paper=none,
                     ours=f"from N = {n} (CPU, C = 64, r = 16)" if n else "no crossover measured",
                     verdict="holds" if n else "not seen", where="notebook 09"))
    return rows
