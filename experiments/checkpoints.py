"""Train the shipped checkpoints of both wings, record them, re-check them, tabulate them.

    python -m experiments.checkpoints train legend2 "nmf bptt" --seeds 0 1 2    # HamNet (task, heads)
    python -m experiments.checkpoints classifier                               # HamGAN's digits classifier (first)
    python -m experiments.checkpoints train-gan ham attention ham-bptt --seeds 0
    python -m experiments.checkpoints check          # re-evaluate every file against the manifest
    python -m experiments.checkpoints rename legend2 "nmf bptt" "nmf bptt init=reference"   # after a default changed
    python -m experiments.checkpoints table          # the Markdown tables of the recorded runs

Storage, records and loading are `notebooks.course.checkpoints` (HamNet, the store) and
`notebooks.course.gan_checkpoints` (HamGAN). Training resumes from runs/checkpoints/... and
runs/gan_checkpoints/...; `--root` (default `default_root()`) is where files and manifest go.
A HamNet is stored in float16 when that moves its validation mIoU by at most `FP16_TOLERANCE`,
a generator when that moves its FID by at most the FID's standard deviation over noise seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import statistics
import time

import torch

from hamlib.grad import canonical_grad
from hamlib.ham import Hamburger
from hamlib.md import SOLVERS
from hamlib.gan.metrics import accuracy, train_classifier
from hamlib.gan.model import gate_values
from hamlib.gan.train import train as train_gan
from hamlib.measure import markdown_table
from hamlib.seg.train import TrainConfig, build_datasets, train
from notebooks.course import checkpoints as ck
from notebooks.course import gan_checkpoints as gc
from notebooks.course.legend import seg_metrics, summarise, summary_table, with_head
from notebooks.course.tasks import TASKS, task as get_task

PROG = "python -m experiments.checkpoints"
FP16_TOLERANCE = 0.002                   # largest validation-mIoU change float16 storage may cause
GAN_NAMES = {"ham": "Hamburger, one-step (the paper's)", "ham-bptt": "Hamburger, BPTT (NMF's library default)",
             "attention": "self-attention"}


def hamnet_config(task: str, head: str, seed: int) -> TrainConfig:
    """The config a HamNet checkpoint trains with: the task's full config with the head. A
    Hamburger head's weight initialisation is written in explicitly (the library default at
    training time), so the record says how the model started."""
    cfg = dataclasses.replace(with_head(get_task(task).full(), head), seed=seed, progress=False, resume=True,
                              out_dir=f"runs/checkpoints/{task}/{ck.slug(head)}_s{seed}")
    if cfg.model.head.context == "ham":
        cfg.model.head.ham.setdefault("init", inspect.signature(Hamburger).parameters["init"].default)
    return cfg


def train_hamnet(task: str, head: str, seed: int, root=None, datasets=None) -> dict:
    """Train (or resume) one HamNet, store it and record it in the manifest. Returns the record."""
    cfg = hamnet_config(task, head, seed)
    datasets = datasets or build_datasets(cfg)
    t0 = time.perf_counter()
    res = train(cfg, datasets)
    wall = time.perf_counter() - t0
    sd, val = res["model"].state_dict(), datasets[1]
    full32 = seg_metrics(ck.hamnet(cfg, sd), val)
    full16 = seg_metrics(ck.hamnet(cfg, ck.stored(sd, torch.float16)), val)
    dtype = torch.float16 if abs(full16["miou"] - full32["miou"]) <= FP16_TOLERANCE else torch.float32
    weights = ck.stored(sd, dtype)
    fields = dict(kind="hamnet", task=task, head=head, seed=seed, steps=res["step"],
                  command=f'{PROG} train {task} "{head}" --seeds {seed}', config=dataclasses.asdict(cfg),
                  wall_s=round(wall, 1), train_s=round(res["seconds"], 1), hardware=ck.hardware(),
                  dtype=str(dtype).removeprefix("torch."),
                  val=dict(n=len(val), float32=full32, stored=full16 if dtype == torch.float16 else full32),
                  history=res["history"],
                  eval=dict(n=ck.EVAL_N, seed=ck.EVAL_SEED, **seg_metrics(ck.hamnet(cfg, weights), ck.eval_set(cfg))),
                  params=sum(p.numel() for p in res["model"].parameters()))
    return ck.record(ck.hamnet_rel(task, head, seed), dict(config=dataclasses.asdict(cfg), state_dict=weights),
                     fields, root)


def rename_hamnet(task: str, old: str, new: str, root=None) -> list:
    """Re-name a task's HamNet records from head `old` to `new` (files moved, records' head and command
    rewritten, hashes unchanged), e.g. after a library default changed: "nmf bptt" trained with
    init="reference" is "nmf bptt init=reference" once the default is "pytorch". Refused (ValueError)
    unless `new`, as the library reads it now, builds the very model each record was trained with.
    Returns the new relative paths."""
    root = ck.resolve_root(root)
    recs = {rel: r for rel, r in ck.hamnet_files(task, root).items() if r["head"] == old}
    if not recs:
        raise KeyError(f"no {task} record has head {old!r}")
    def resolved(model: dict) -> dict:   # grad=None is the solver's default mode, by name
        ham = model["head"]["ham"]
        grad = ham.get("grad")
        grad = SOLVERS[ham.get("ham", "nmf")].default_grad if grad is None else canonical_grad(grad)
        return {**model, "head": {**model["head"], "ham": {**ham, "grad": grad}}}

    for rel, r in recs.items():
        want = dataclasses.asdict(hamnet_config(task, new, r["seed"]))["model"]
        if resolved(want) != resolved(r["config"]["model"]):
            raise ValueError(f"{rel}: head {new!r} now builds {want['head']}, but the file was trained with "
                             f"{r['config']['model']['head']}; pick a name that says how it was trained")
    moved = []
    with ck._locked_manifest(root) as manifest:
        for rel, r in recs.items():
            dst = ck.hamnet_rel(task, new, r["seed"])
            if dst in manifest["files"]:
                raise ValueError(f"{dst} exists already: rename or remove it first")
            (root / rel).rename(root / dst)
            manifest["files"][dst] = dict(manifest["files"].pop(rel), head=new,
                                          command=f'{PROG} train {task} "{new}" --seeds {r["seed"]}')
            moved.append(dst)
    return moved


def train_digits_classifier(root=None) -> dict:
    """Train the digits classifier of FID / IS at CONFIG's resolution, store and record it."""
    ds = gc.data()
    t0 = time.perf_counter()
    clf = train_classifier(ds, **gc.CLASSIFIER_KW)
    wall = time.perf_counter() - t0
    res = ds.tensors[0].shape[-1]
    fields = dict(kind="classifier", of="hamgan", resolution=res, command=f"{PROG} classifier",
                  config=dict(gc.CLASSIFIER_KW), seed=gc.CLASSIFIER_KW["seed"], steps=gc.CLASSIFIER_KW["steps"],
                  wall_s=round(wall, 1), hardware=ck.hardware(), dtype="float32",
                  metric=dict(train_accuracy=accuracy(clf, ds), n=len(ds)))
    blob = dict(kwargs=dict(gc.CLASSIFIER_KW, num_classes=10, img_channels=1), resolution=res,
                state_dict=clf.state_dict())
    return ck.record(gc.CLASSIFIER, blob, fields, root)


def train_generator(model: str, seed: int, root=None) -> dict:
    """Train (or resume) one HamGAN, store its EMA generator and record it. Returns the record."""
    cfg = gc.model_config(model, seed)
    ds = gc.data(cfg.resolution)
    clf = gc.load_classifier(root)
    stats = gc.real_stats(clf, ds)
    t0 = time.perf_counter()
    res = train_gan(cfg, dataset=ds, extractor=clf, real_stats=stats)
    wall = time.perf_counter() - t0
    sd = res["G_ema"].state_dict()
    m32 = gc.metrics(gc.generator(cfg, sd), clf, stats)
    m16 = gc.metrics(gc.generator(cfg, ck.stored(sd, torch.float16)), clf, stats)
    fp16 = abs(m16["fid_mean"] - m32["fid_mean"]) <= m32["fid_std"]
    dtype = torch.float16 if fp16 else torch.float32
    weights = ck.stored(sd, dtype)
    gates = {**gate_values(res["G"]), **{"D." + k: v for k, v in gate_values(res["D"]).items()}}
    fields = dict(kind="hamgan", model=model, block=cfg.block, ham_grad=cfg.ham_grad if cfg.block == "ham" else None,
                  config_name=gc.CONFIG, config=dataclasses.asdict(cfg), seed=seed, steps=res["step"],
                  command=f"{PROG} train-gan {model} --seeds {seed}",
                  wall_s=round(wall, 1), train_s=round(res["seconds"], 1), hardware=ck.hardware(),
                  dtype=str(dtype).removeprefix("torch."), classifier=gc.CLASSIFIER,
                  classifier_sha256=ck.read_manifest(root)["files"][gc.CLASSIFIER]["sha256"],
                  metric=dict(float32=m32, float16=m16, stored="float16" if fp16 else "float32"),
                  fid=(m16 if fp16 else m32)["fid_mean"], is_=(m16 if fp16 else m32)["is_mean"],
                  history=res["history"], gates=gates,
                  eval=gc.eval_metrics(gc.generator(cfg, weights), clf, stats))
    return ck.record(gc.generator_rel(model, seed), dict(config=dataclasses.asdict(cfg), state_dict=weights),
                     fields, root)


def hamnet_table(task: str, root=None) -> str:
    """The Markdown table of a task's recorded HamNets (mIoU per seed, mean ± std, ...); "" if none."""
    rows = ck.manifest_rows(task, root=root)
    return summary_table(summarise(rows), rows, sorted({r["seed"] for r in rows})) if rows else ""


def gan_table(root=None) -> str:
    """The Markdown table of the recorded generators: FID per training seed, mean ± std; "" if none."""
    recs = gc.gan_files(root)
    seeds = sorted({r["seed"] for r in recs.values()})
    lines = []
    models = set(r["model"] for r in recs.values())
    for model in [m for m in GAN_NAMES if m in models] + sorted(models - set(GAN_NAMES)):
        fid = {r["seed"]: r["fid"] for r in recs.values() if r["model"] == model}
        xs = list(fid.values())
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        lines.append([GAN_NAMES.get(model, model), *(f"{fid[s]:.1f}" if s in fid else "" for s in seeds),
                      f"{statistics.fmean(xs):.1f} ± {std:.1f}"])
    return markdown_table(["generator", *(f"seed {s}" for s in seeds), "mean ± std"], lines) if lines else ""


def check(root=None):
    """Yield one line per file: its metric now on the re-check set beside the manifest's."""
    for rel in ck.files(root, "hamnet"):
        now, then = ck.recheck_hamnet(rel, root)
        yield f"{rel}: mIoU {now['miou']:.4f} (manifest {then['miou']:.4f})"
    if gc.gan_files(root):
        clf = gc.load_classifier(root)
        stats = gc.real_stats(clf)
        for rel in gc.gan_files(root):
            now, then = gc.recheck_generator(rel, root, clf, stats)
            yield (f"{rel}: FID {now['fid']:.4f} (manifest {then['fid']:.4f}), IS {now['is_']:.4f} "
                   f"(manifest {then['is_']:.4f})")


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=None, help="where files and manifest are (default: data/checkpoints)")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train HamNet checkpoints and record them")
    t.add_argument("task", choices=[k for k in TASKS if k != "marker"])
    t.add_argument("heads", nargs="+", help='head names, e.g. "nmf bptt" "attention" "nmf default init=pytorch"')
    t.add_argument("--seeds", type=int, nargs="+", default=[0])
    g = sub.add_parser("train-gan", help="train HamGAN generators and record them")
    g.add_argument("models", nargs="+", choices=tuple(gc.MODELS))
    g.add_argument("--seeds", type=int, nargs="+", default=[0])
    sub.add_parser("classifier", help="train and record the digits classifier of FID / IS")
    sub.add_parser("check", help="re-evaluate every file against the manifest")
    r = sub.add_parser("rename", help="re-name a task's records of one head (after a default changed)")
    r.add_argument("task", choices=[k for k in TASKS if k != "marker"])
    r.add_argument("old"), r.add_argument("new")
    sub.add_parser("table", help="print the Markdown tables of the recorded runs")
    a = p.parse_args(argv)
    if a.cmd == "train":
        datasets = build_datasets(get_task(a.task).full())
        for head in a.heads:
            for seed in a.seeds:
                r = train_hamnet(a.task, head, seed, a.root, datasets)
                print(f"{a.task} {head} s{seed}: mIoU {r['val']['stored']['miou']:.3f} "
                      f"ctx {r['val']['stored']['ctx_acc']:.3f} ({r['train_s']:.0f} s)", flush=True)
    elif a.cmd == "train-gan":
        for model in a.models:
            for seed in a.seeds:
                r = train_generator(model, seed, a.root)
                print(f"{model} s{seed}: FID {r['fid']:.2f} IS {r['is_']:.2f} {r['dtype']} ({r['train_s']:.0f} s)",
                      flush=True)
    elif a.cmd == "classifier":
        r = train_digits_classifier(a.root)
        print(f"classifier: accuracy {r['metric']['train_accuracy']:.4f} ({r['wall_s']:.0f} s)", flush=True)
    elif a.cmd == "rename":
        for rel in rename_hamnet(a.task, a.old, a.new, a.root):
            print(rel, flush=True)
    elif a.cmd == "check":
        for line in check(a.root):
            print(line, flush=True)
    else:
        for name in ("legend2", "legend1", "texture"):
            if table := hamnet_table(name, a.root):
                print(f"\n{name}:\n\n{table}")
        if table := gan_table(a.root):
            print(f"\nhamgan:\n\n{table}")


if __name__ == "__main__":
    main()
