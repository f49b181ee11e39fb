"""The shipped checkpoints: train them, record them in a manifest, load them, re-check them.

    data/checkpoints/manifest.json          {"files": {relative path: record}}
    data/checkpoints/legend2/<head>_s<seed>.pt   HamNet on the two-colour legend task
    data/checkpoints/legend1/<head>_s<seed>.pt   HamNet on the one-colour legend task
    data/checkpoints/hamgan/...                  HamGAN generators (EMA) and the digits classifier

A HamNet file holds {"config": the TrainConfig as a dict, "state_dict": weights (float16
where that leaves the validation mIoU within `FP16_TOLERANCE`, else float32)}. A record
holds what reproduces and checks the file: the command, config, seed, steps, wall time and
hardware of the run, the validation metrics (float32 weights and stored weights), the
metrics on a small fixed evaluation set (`EVAL_N` images drawn from `EVAL_SEED`, seconds on
a CPU) and the file's sha256. `tests/test_checkpoints.py` re-evaluates every file.

    python -m hamlib.experiments.checkpoints train legend2 "nmf bptt" --seeds 0 1 2
    python -m hamlib.experiments.checkpoints check          # every file against the manifest
    python -m hamlib.experiments.checkpoints table          # the Markdown tables of the README
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import fcntl
import hashlib
import inspect
import io
import json
import os
import platform
import time
from pathlib import Path

import torch

from hamlib.ham import Hamburger
from hamlib.seg.heads import HeadConfig
from hamlib.seg.model import ModelConfig, build_model
from hamlib.seg.synthetic import LegendConfig, LegendDataset
from hamlib.seg.train import TrainConfig, build_datasets, get_config, train
from .legend import run_heads, seg_metrics, summarise, summary_table, with_head

ROOT = Path(__file__).resolve().parents[2] / "data" / "checkpoints"
EVAL_N, EVAL_SEED = 200, 10_000          # the fixed evaluation set of the re-check
FP16_TOLERANCE = 0.002                   # largest validation-mIoU change float16 storage may cause


def legend2() -> TrainConfig:
    """`legend_full`: the two-colour legend task, 4000 steps, batch 32."""
    return get_config("legend_full")


def legend1() -> TrainConfig:
    """`legend_full`'s network and data size on the one-colour task, 2000 steps (it is learned sooner)."""
    cfg = get_config("legend_full", steps=2000)
    cfg.legend = dataclasses.replace(cfg.legend, one_colour=True)
    return cfg


TASKS = {"legend2": legend2, "legend1": legend1}


def slug(head: str) -> str:
    """A head name as a file name: "nmf bptt init=pytorch" -> "nmf_bptt_init-pytorch"."""
    return head.replace(" ", "_").replace("=", "-")


def task_config(task: str, head: str, seed: int) -> TrainConfig:
    """The config a checkpoint is trained with. A Hamburger head's weight initialisation is
    written into it explicitly (the library default at training time), so that the record
    says how the model started even if the default changes later."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    cfg = dataclasses.replace(with_head(TASKS[task](), head), seed=seed, progress=False,
                              out_dir=f"runs/checkpoints/{task}/{slug(head)}_s{seed}", resume=True)
    if cfg.model.head.context == "ham":
        cfg.model.head.ham.setdefault("init", inspect.signature(Hamburger).parameters["init"].default)
    return cfg


def config_from_dict(d: dict) -> TrainConfig:
    """The TrainConfig that dataclasses.asdict(cfg) came from."""
    d = copy.deepcopy(d)
    m = d.pop("model")
    model = ModelConfig(**{**m, "head": HeadConfig(**m["head"])})
    return TrainConfig(**{**d, "model": model, "legend": LegendConfig(**d["legend"]),
                          **{k: tuple(d[k]) for k in ("scales", "eval_scales") if k in d}})


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hardware() -> str:
    """What the run ran on, in words: the CPU model and threads, or the CUDA device."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    return f"{cpu}, {torch.get_num_threads()} thread(s) (torch {torch.__version__})"


# ---------------------------------------------------------------------------
# Evaluation: the metrics a record holds
# ---------------------------------------------------------------------------

def eval_set(cfg: TrainConfig) -> LegendDataset:
    """The fixed evaluation set of a record: EVAL_N images of the task, from EVAL_SEED."""
    return LegendDataset(EVAL_N, EVAL_SEED, cfg.legend)


def _stored(state_dict: dict, dtype) -> dict:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}


def _model(cfg: TrainConfig, state_dict: dict):
    model = build_model(cfg.model)
    model.load_state_dict(_stored(state_dict, torch.float32))
    return model.eval()


# ---------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def _locked_manifest(root: Path):
    """Read-modify-write the manifest under a file lock (several trainers may finish at once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / "manifest.json"
        manifest = json.loads(path.read_text()) if path.exists() else {"files": {}}
        yield manifest
        manifest["files"] = dict(sorted(manifest["files"].items()))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(tmp, path)


def read_manifest(root=ROOT) -> dict:
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint manifest at {path}")
    return json.loads(path.read_text())


def _save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# HamNet: train one, load one
# ---------------------------------------------------------------------------

def train_hamnet(task: str, head: str, seed: int, root=ROOT, datasets=None) -> dict:
    """Train (or resume, from runs/checkpoints/...) one HamNet, store it under root and
    record it in the manifest. Returns the record."""
    root = Path(root)
    cfg = task_config(task, head, seed)
    datasets = datasets or build_datasets(cfg)
    t0 = time.perf_counter()
    res = train(cfg, datasets)
    wall = time.perf_counter() - t0
    sd = res["model"].state_dict()
    val = datasets[1]
    full32 = seg_metrics(_model(cfg, sd), val)
    full16 = seg_metrics(_model(cfg, _stored(sd, torch.float16)), val)
    dtype = torch.float16 if abs(full16["miou"] - full32["miou"]) <= FP16_TOLERANCE else torch.float32
    stored = _stored(sd, dtype)
    rel = f"{task}/{slug(head)}_s{seed}.pt"
    _save(dict(config=dataclasses.asdict(cfg), state_dict=stored), root / rel)
    record = dict(kind="hamnet", task=task, head=head, seed=seed, steps=res["step"],
                  command=f'python -m hamlib.experiments.checkpoints train {task} "{head}" --seeds {seed}',
                  config=dataclasses.asdict(cfg),
                  wall_s=round(wall, 1), train_s=round(res["seconds"], 1), hardware=hardware(),
                  dtype=str(dtype).removeprefix("torch."),
                  val=dict(n=len(val), float32=full32, stored=full16 if dtype == torch.float16 else full32),
                  history=res["history"],
                  eval=dict(n=EVAL_N, seed=EVAL_SEED, **seg_metrics(_model(cfg, stored), eval_set(cfg))),
                  params=sum(p.numel() for p in res["model"].parameters()),
                  sha256=sha256(root / rel), bytes=(root / rel).stat().st_size)
    with _locked_manifest(root) as manifest:
        manifest["files"][rel] = record
    return record


def read_verified(rel: str, root=ROOT, verify=True) -> tuple[dict, dict]:
    """(the file's contents, its manifest record) for a path relative to root, e.g.
    "legend2/nmf_bptt_s0.pt"; verify checks the sha256 against the manifest first."""
    root = Path(root)
    record = read_manifest(root)["files"].get(rel)
    if record is None:
        raise KeyError(f"{rel!r} is not in {root / 'manifest.json'}")
    path = root / rel
    if verify and sha256(path) != record["sha256"]:
        raise ValueError(f"{path}: sha256 differs from the manifest's (file changed or corrupt)")
    return torch.load(path, map_location="cpu", weights_only=True), record


def load_hamnet(rel: str, root=ROOT, verify=True):
    """(model in eval mode on the CPU, its manifest record) for a file such as
    "legend2/nmf_bptt_s0.pt"; verify checks the sha256 against the manifest first."""
    blob, record = read_verified(rel, root, verify)
    return _model(config_from_dict(blob["config"]), blob["state_dict"]), record


def hamnet_files(task: str, root=ROOT) -> dict:
    """rel path -> record of every HamNet checkpoint of a task."""
    files = read_manifest(root)["files"]
    return {k: r for k, r in files.items() if r["kind"] == "hamnet" and r["task"] == task}


def load_heads(task: str, heads, seed: int = 0, root=ROOT) -> dict:
    """head -> trained model (eval mode, CPU) for the given heads of a task at one seed; a head
    without a checkpoint is left out."""
    files = hamnet_files(task, root)
    return {h: load_hamnet(f"{task}/{slug(h)}_s{seed}.pt", root)[0]
            for h in heads if f"{task}/{slug(h)}_s{seed}.pt" in files}


def manifest_rows(task: str, heads=None, root=ROOT) -> list:
    """The manifest's HamNet records of a task as `hamlib.experiments.legend.run_heads` rows
    (head, seed, miou, ctx_acc, params, ms_per_step, wall_s, status), validation metrics of the
    stored weights; heads (a list) selects and orders them."""
    recs = hamnet_files(task, root).values()
    order = list(heads) if heads is not None else list(dict.fromkeys(r["head"] for r in recs))
    rows = []
    for r in sorted((r for r in recs if r["head"] in order), key=lambda r: (order.index(r["head"]), r["seed"])):
        rows.append(dict(head=r["head"], seed=r["seed"], miou=r["val"]["stored"]["miou"],
                         ctx_acc=r["val"]["stored"]["ctx_acc"], params=r.get("params"),
                         ms_per_step=1000 * r["train_s"] / r["steps"], wall_s=r["wall_s"], status="ok"))
    return rows


def histories(task: str, heads, root=ROOT) -> dict:
    """head -> {seed: [(step, validation mIoU), ...]} from the records' training histories."""
    out = {}
    for r in hamnet_files(task, root).values() if (Path(root) / "manifest.json").is_file() else ():
        if r["head"] in heads:
            out.setdefault(r["head"], {})[r["seed"]] = [(h["step"], h["miou"]) for h in r["history"]]
    return {h: dict(sorted(out[h].items())) for h in heads if h in out}


def checkpoint_or_train(task: str, heads, seeds, train_cfg=None, root=ROOT, retrain=False, train_seeds=None) -> dict:
    """The notebooks' "checkpoint or train": the shipped models of `task` when every (head, seed)
    is in the manifest (and not retrain), else train them now with `train_cfg` (e.g. the quick
    CPU config) for `train_seeds` (default: seeds) through `hamlib.experiments.legend.run_heads`.

    Returns dict(rows (run_heads rows), models (head -> model of the first seed), cfg (the
    config the models were trained with), val_set (its validation set), source (a sentence
    saying which happened)).
    """
    files = hamnet_files(task, root) if (Path(root) / "manifest.json").is_file() else {}
    have = all(f"{task}/{slug(h)}_s{s}.pt" in files for h in heads for s in seeds)
    if have and not retrain:
        cfg = TASKS[task]()
        rows = [r for r in manifest_rows(task, heads, root) if r["seed"] in seeds]
        return dict(rows=rows, models=load_heads(task, heads, seeds[0], root), cfg=cfg,
                    val_set=LegendDataset(cfg.n_val, cfg.data_seed + 1, cfg.legend),
                    source=f"loaded {len(rows)} shipped checkpoints ({task}: {cfg.steps} steps of batch "
                           f"{cfg.batch_size}, seeds {list(seeds)}; data/checkpoints/manifest.json)")
    if train_cfg is None:
        raise FileNotFoundError(f"no complete set of {task} checkpoints under {root} and no train_cfg to train one")
    datasets = build_datasets(train_cfg)
    rows, models = run_heads(train_cfg, list(heads), list(train_seeds or seeds), datasets)
    return dict(rows=rows, models=models, cfg=train_cfg, val_set=datasets[1],
                source=f"trained now: {len(rows)} runs of {train_cfg.steps} steps of batch {train_cfg.batch_size} "
                       f"(no complete set of {task} checkpoints{' used: retrain=True' if have else ''})")


def recheck_hamnet(rel: str, root=ROOT) -> tuple[dict, dict]:
    """(metrics now on the fixed evaluation set, the manifest's) for one file."""
    blob, record = read_verified(rel, root)
    cfg = config_from_dict(blob["config"])
    return seg_metrics(_model(cfg, blob["state_dict"]), eval_set(cfg)), record["eval"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hamlib.experiments.checkpoints", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train HamNet checkpoints and record them")
    t.add_argument("task", choices=tuple(TASKS))
    t.add_argument("heads", nargs="+", help='head names, e.g. "nmf bptt" "attention" "nmf default init=pytorch"')
    t.add_argument("--seeds", type=int, nargs="+", default=[0])
    t.add_argument("--root", default=str(ROOT))
    c = sub.add_parser("check", help="re-evaluate every HamNet file against the manifest")
    c.add_argument("--root", default=str(ROOT))
    tb = sub.add_parser("table", help="print each task's Markdown table of the recorded HamNets")
    tb.add_argument("--root", default=str(ROOT))
    args = p.parse_args(argv)
    if args.cmd == "table":
        for task in TASKS:
            rows = manifest_rows(task, root=args.root)
            if rows:
                seeds = sorted({r["seed"] for r in rows})
                print(f"\n{task}:\n\n" + summary_table(summarise(rows), rows, seeds))
        return
    if args.cmd == "train":
        datasets = build_datasets(TASKS[args.task]())
        for head in args.heads:
            for seed in args.seeds:
                r = train_hamnet(args.task, head, seed, args.root, datasets)
                print(f"{args.task} {head} s{seed}: mIoU {r['val']['stored']['miou']:.3f} "
                      f"ctx {r['val']['stored']['ctx_acc']:.3f} ({r['train_s']:.0f} s)", flush=True)
    else:
        for rel, r in read_manifest(args.root)["files"].items():
            if r["kind"] == "hamnet":
                now, then = recheck_hamnet(rel, args.root)
                print(f"{rel}: mIoU {now['miou']:.4f} (manifest {then['miou']:.4f})")


if __name__ == "__main__":
    main()
