"""The shipped checkpoints: where they are, their manifest, verified loading, and the HamNet files.

    <root>/manifest.json                    {"files": {path relative to root: record}}
    <root>/legend2/<head>_s<seed>.pt        HamNet on the two-colour legend task (`tasks.TASKS`)
    <root>/legend1/<head>_s<seed>.pt        HamNet on the one-colour legend task
    <root>/texture/<head>_s<seed>.pt        HamNet on the texture-by-legend task (real pictures)
    <root>/hamgan/...                       HamGAN generators and the digits classifier (`gan_checkpoints`)

`root` defaults to `default_root()`. Every file has one record, written by `record()` when the
file is stored (`python -m experiments.checkpoints`): the command that reproduces it, its config,
seed, steps, wall time and hardware, the metrics it reached, the metrics on a small fixed
re-check set, its sha256 and size. `read_verified()` refuses a file whose sha256 differs from
its record. A HamNet file holds {"config": the TrainConfig as a dict, "state_dict": weights
(float16 or float32, as the record's "dtype" says)}; its re-check set is `EVAL_N` images drawn
from `EVAL_SEED`.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import platform
from pathlib import Path

import torch

from hamlib.runtime import atomic_file
from hamlib.seg.heads import HeadConfig
from hamlib.seg.model import ModelConfig, build_model
from hamlib.seg.synthetic import LegendConfig
from hamlib.seg.texture import TextureConfig
from hamlib.seg.train import TrainConfig, build_datasets, generated_set
from .legend import run_heads, seg_metrics
from .tasks import task as get_task

EVAL_N, EVAL_SEED = 200, 10_000          # the fixed re-check set of a HamNet record


# ---------------------------------------------------------------------------
# The store: location, manifest, hashed files (both wings)
# ---------------------------------------------------------------------------

def default_root() -> Path:
    """$HAMLIB_CHECKPOINTS if set, else the first of data/checkpoints, ../data/checkpoints and
    ../../data/checkpoints that exists (seen from the repository root, notebooks/ and
    notebooks/student/), else ./data/checkpoints."""
    if os.environ.get("HAMLIB_CHECKPOINTS"):
        return Path(os.environ["HAMLIB_CHECKPOINTS"])
    places = (Path("data/checkpoints"), Path("../data/checkpoints"), Path("../../data/checkpoints"))
    return next((p for p in places if p.is_dir()), places[0])


def resolve_root(root=None) -> Path:
    """root as a Path, default_root() for None."""
    return default_root() if root is None else Path(root)


def read_manifest(root=None) -> dict:
    """The manifest under root as a dict; FileNotFoundError naming the path if there is none."""
    path = resolve_root(root) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint manifest at {path}")
    return json.loads(path.read_text())


def files(root=None, kind: str | None = None) -> dict:
    """rel path -> record of every file in the manifest (of one kind: "hamnet", "hamgan",
    "classifier"); {} without a manifest."""
    path = resolve_root(root) / "manifest.json"
    recs = json.loads(path.read_text())["files"] if path.is_file() else {}
    return {k: r for k, r in recs.items() if kind is None or r["kind"] == kind}


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hardware() -> str:
    """What a run ran on, in words: the CUDA device, or the CPU model and thread count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    return f"{cpu}, {torch.get_num_threads()} thread(s) (torch {torch.__version__})"


def stored(state_dict: dict, dtype) -> dict:
    """state_dict with its floating-point tensors cast to dtype (integer buffers unchanged)."""
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}


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
        with atomic_file(path, "w") as f:
            f.write(json.dumps(manifest, indent=1) + "\n")


def record(rel: str, blob: dict, fields: dict, root=None) -> dict:
    """Store blob (torch.save, written atomically) at root/rel and enter its record, fields plus
    sha256 and bytes, in the manifest. Returns the record."""
    path = resolve_root(root) / rel
    with atomic_file(path) as f:
        torch.save(blob, f)
    rec = dict(fields, sha256=sha256(path), bytes=path.stat().st_size)
    with _locked_manifest(resolve_root(root)) as manifest:
        manifest["files"][rel] = rec
    return rec


def read_verified(rel: str, root=None, verify=True) -> tuple[dict, dict]:
    """(the file's contents, its manifest record) for a path relative to root, e.g.
    "legend2/nmf_bptt_s0.pt"; verify checks the sha256 against the record first (ValueError)."""
    root = resolve_root(root)
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ValueError(f"{rel!r}: a checkpoint is named by its path inside {root}, not by a path leading out of it")
    rec = read_manifest(root)["files"].get(rel)
    if rec is None:
        raise KeyError(f"{rel!r} is not in {root / 'manifest.json'}")
    path = root / rel
    if verify and sha256(path) != rec["sha256"]:
        raise ValueError(f"{path}: sha256 differs from the manifest's (file changed or corrupt)")
    return torch.load(path, map_location="cpu", weights_only=True), rec


# ---------------------------------------------------------------------------
# HamNet files
# ---------------------------------------------------------------------------

def slug(head: str) -> str:
    """A head name as a file name: "nmf bptt init=pytorch" -> "nmf_bptt_init-pytorch"."""
    return head.replace(" ", "_").replace("=", "-")


def hamnet_rel(task: str, head: str, seed: int) -> str:
    return f"{task}/{slug(head)}_s{seed}.pt"


def config_from_dict(d: dict) -> TrainConfig:
    """The TrainConfig that dataclasses.asdict(cfg) came from."""
    d = copy.deepcopy(d)
    m = d.pop("model")
    model = ModelConfig(**{**m, "head": HeadConfig(**m["head"])})
    if "texture" in d:   # records written before the texture task have none
        d["texture"] = TextureConfig(**{**d["texture"], "textures": tuple(d["texture"]["textures"])})
    return TrainConfig(**{**d, "model": model, "legend": LegendConfig(**d["legend"]),
                          **{k: tuple(d[k]) for k in ("scales", "eval_scales") if k in d}})


def hamnet(cfg: TrainConfig, state_dict: dict):
    """The HamNet of cfg with state_dict's weights (as float32), eval mode, CPU."""
    model = build_model(cfg.model)
    model.load_state_dict(stored(state_dict, torch.float32))
    return model.eval()


def eval_set(cfg: TrainConfig):
    """The fixed re-check set of a HamNet record: EVAL_N images of cfg's task, from EVAL_SEED."""
    return generated_set(cfg, EVAL_N, EVAL_SEED, "val")


def load_hamnet(rel: str, root=None, verify=True):
    """(model in eval mode on the CPU, its manifest record) for a file such as
    "legend2/nmf_bptt_s0.pt"; verify checks the sha256 against the manifest first."""
    blob, rec = read_verified(rel, root, verify)
    return hamnet(config_from_dict(blob["config"]), blob["state_dict"]), rec


def hamnet_files(task: str, root=None) -> dict:
    """rel path -> record of every HamNet checkpoint of a task ({} without a manifest)."""
    return {k: r for k, r in files(root, "hamnet").items() if r["task"] == task}


def load_heads(task: str, heads, seed: int = 0, root=None) -> dict:
    """head -> trained model (eval mode, CPU) for the given heads of a task at one seed; a head
    without a checkpoint is left out."""
    have = hamnet_files(task, root)
    return {h: load_hamnet(hamnet_rel(task, h, seed), root)[0] for h in heads if hamnet_rel(task, h, seed) in have}


def manifest_rows(task: str, heads=None, root=None) -> list:
    """The manifest's HamNet records of a task as `legend.run_heads` rows (head, seed, miou,
    ctx_acc, params, ms_per_step, wall_s, status), validation metrics of the stored weights;
    heads (a list) selects and orders them (default: every head, in manifest order)."""
    recs = hamnet_files(task, root).values()
    order = list(heads) if heads is not None else list(dict.fromkeys(r["head"] for r in recs))
    return [dict(head=r["head"], seed=r["seed"], miou=r["val"]["stored"]["miou"],
                 ctx_acc=r["val"]["stored"]["ctx_acc"], params=r.get("params"),
                 ms_per_step=1000 * r["train_s"] / r["steps"], wall_s=r["wall_s"], status="ok")
            for r in sorted((r for r in recs if r["head"] in order),
                            key=lambda r: (order.index(r["head"]), r["seed"]))]


def histories(task: str, heads, root=None) -> dict:
    """head -> {seed: [(step, validation mIoU), ...]} from the records' training histories."""
    out = {}
    for r in hamnet_files(task, root).values():
        if r["head"] in heads:
            out.setdefault(r["head"], {})[r["seed"]] = [(h["step"], h["miou"]) for h in r["history"]]
    return {h: dict(sorted(out[h].items())) for h in heads if h in out}


def checkpoint_or_train(task: str, heads, seeds, train_cfg=None, root=None, retrain=False, train_seeds=None) -> dict:
    """The shipped models of `task` when every (head, seed) is in the manifest (and not retrain),
    else train them now with `train_cfg` (e.g. the task's quick config) for `train_seeds`
    (default: seeds) through `legend.run_heads`.

    Returns dict(rows (run_heads rows), models (head -> model of the first seed), cfg (the
    config the models were trained with), val_set (its validation set), source (a sentence
    saying which happened)).
    """
    have_files = hamnet_files(task, root)
    have = all(hamnet_rel(task, h, s) in have_files for h in heads for s in seeds)
    if have and not retrain:
        cfg = get_task(task).full()
        rows = [r for r in manifest_rows(task, heads, root) if r["seed"] in seeds]
        return dict(rows=rows, models=load_heads(task, heads, seeds[0], root), cfg=cfg,
                    val_set=generated_set(cfg, cfg.n_val, cfg.data_seed + 1, "val"),
                    source=f"loaded {len(rows)} shipped checkpoints ({task}: {cfg.steps} steps of batch "
                           f"{cfg.batch_size}, seeds {list(seeds)}; {resolve_root(root) / 'manifest.json'})")
    if train_cfg is None:
        raise FileNotFoundError(f"no complete set of {task} checkpoints under {resolve_root(root)} and no train_cfg "
                                "to train one")
    datasets = build_datasets(train_cfg)
    rows, models = run_heads(train_cfg, list(heads), list(train_seeds or seeds), datasets)
    return dict(rows=rows, models=models, cfg=train_cfg, val_set=datasets[1],
                source=f"trained now: {len(rows)} runs of {train_cfg.steps} steps of batch {train_cfg.batch_size} "
                       f"(no complete set of {task} checkpoints{' used: retrain=True' if have else ''})")


def recheck_hamnet(rel: str, root=None) -> tuple[dict, dict]:
    """(metrics now on the fixed re-check set, the manifest's) for one HamNet file."""
    blob, rec = read_verified(rel, root)
    cfg = config_from_dict(blob["config"])
    return seg_metrics(hamnet(cfg, blob["state_dict"]), eval_set(cfg)), rec["eval"]
