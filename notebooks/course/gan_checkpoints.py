"""The shipped HamGAN checkpoints: train them, record them in the checkpoint manifest, load them, re-check them.

    data/checkpoints/hamgan/classifier.pt        the digits classifier whose features FID and IS use
    data/checkpoints/hamgan/<model>_s<seed>.pt   a generator's EMA weights (config `CONFIG`)

Models (`MODELS`): "ham" (NMF Hamburger, the paper's one-step gradient: the trainer's default
ham_grad), "ham-bptt" (the same with NMF's library default, back-propagation through all K
steps) and "sa" (self-attention). A generator file holds {"config": the GANConfig as a dict,
"state_dict": G_ema's weights, float16 where that moves the FID by less than the sampling noise}.
Its record in data/checkpoints/manifest.json (shared with hamlib.experiments.checkpoints) holds
the command, config, seed, steps, wall time and hardware, the FID / IS reached (`METRIC_N`
samples for each of `METRIC_SEEDS`, float32 and stored weights), the FID / IS on the small
fixed re-check set (`EVAL_N` samples from `EVAL_SEED`, seconds on a CPU) and the sha256.
tests/gan/test_gan_checkpoints.py re-evaluates every file.

    python -m hamlib.experiments.gan_checkpoints classifier         # once, before any generator
    python -m hamlib.experiments.gan_checkpoints train ham sa ham-bptt --seeds 0
    python -m hamlib.experiments.gan_checkpoints check              # every file against the manifest
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from hamlib.gan.data import digits
from hamlib.gan.metrics import DigitsClassifier, accuracy, extract, feature_stats, fid_and_is, train_classifier
from hamlib.gan.model import gate_values
from hamlib.gan.train import GANConfig, build_models, get_config, train
from .checkpoints import ROOT, _locked_manifest, _save, hardware, read_manifest, read_verified, sha256

CONFIG = "digits32_cpu"
MODELS = {"ham": dict(block="ham", ham_grad="one-step"),
          "ham-bptt": dict(block="ham", ham_grad="bptt"),
          "sa": dict(block="sa")}
CLASSIFIER = "hamgan/classifier.pt"
CLASSIFIER_KW = dict(steps=500, batch_size=64, lr=2e-3, seed=0)   # train_classifier's arguments
METRIC_N, METRIC_SEEDS = 2000, (0, 1, 2)     # the metric a record reports: 2000 samples, three noise seeds
EVAL_N, EVAL_SEED = 250, 10_000               # the small fixed re-check set


def model_config(model: str, seed: int) -> GANConfig:
    """The config a shipped generator trains with (resumable from runs/gan_checkpoints/...)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {model!r}")
    return get_config(CONFIG, **MODELS[model], seed=seed, progress=False, device="cpu", ckpt_every=250,
                      resume=True, out_dir=f"runs/gan_checkpoints/{model}_s{seed}")


def config_from_dict(d: dict) -> GANConfig:
    """The GANConfig that dataclasses.asdict(cfg) came from (tuples restored)."""
    return GANConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _stored(state_dict: dict, dtype) -> dict:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}


def _generator(cfg: GANConfig, state_dict: dict):
    G, _ = build_models(cfg)
    G.load_state_dict(_stored(state_dict, torch.float32))
    return G.eval().requires_grad_(False)


# ---------------------------------------------------------------------------
# The ruler: classifier and real statistics
# ---------------------------------------------------------------------------

def data(resolution: int | None = None):
    return digits(resolution or get_config(CONFIG).resolution)


def train_digits_classifier(root=ROOT) -> dict:
    """Train the digits classifier of FID / IS on digits at CONFIG's resolution, store and record it."""
    root = Path(root)
    ds = data()
    t0 = time.perf_counter()
    clf = train_classifier(ds, **CLASSIFIER_KW)
    wall = time.perf_counter() - t0
    _save(dict(kwargs=dict(CLASSIFIER_KW, num_classes=10, img_channels=1),
               resolution=ds.tensors[0].shape[-1], state_dict=clf.state_dict()), root / CLASSIFIER)
    record = dict(kind="classifier", of="hamgan", resolution=ds.tensors[0].shape[-1],
                  command="python -m hamlib.experiments.gan_checkpoints classifier",
                  config=dict(CLASSIFIER_KW), seed=CLASSIFIER_KW["seed"], steps=CLASSIFIER_KW["steps"],
                  wall_s=round(wall, 1), hardware=hardware(), dtype="float32",
                  metric=dict(train_accuracy=accuracy(clf, ds), n=len(ds)),
                  sha256=sha256(root / CLASSIFIER), bytes=(root / CLASSIFIER).stat().st_size)
    with _locked_manifest(root) as manifest:
        manifest["files"][CLASSIFIER] = record
    return record


def load_classifier(root=ROOT, verify=True) -> DigitsClassifier:
    """The shipped classifier (eval mode, CPU); verify checks its sha256 against the manifest."""
    blob, _ = read_verified(CLASSIFIER, root, verify)
    kw = blob["kwargs"]
    clf = DigitsClassifier(kw["num_classes"], kw["img_channels"])
    clf.load_state_dict(blob["state_dict"])
    return clf.eval()


def real_stats(classifier, dataset=None):
    """(mu, Sigma) of the classifier's features over all real digits."""
    x = (dataset or data()).tensors[0]
    return feature_stats(extract(classifier, x)[0].numpy())


def metrics(G, classifier, stats, n=METRIC_N, seeds=METRIC_SEEDS) -> dict:
    """FID and IS of G for each noise seed, with their mean and standard deviation over the seeds."""
    runs = [fid_and_is(G, classifier, stats, n=n, num_classes=G.num_classes, seed=s) for s in seeds]
    fid, is_ = np.array([r["fid"] for r in runs]), np.array([r["is"] for r in runs])
    return dict(n=n, seeds=list(seeds), fid=[float(v) for v in fid], is_=[float(v) for v in is_],
                fid_mean=float(fid.mean()), fid_std=float(fid.std(ddof=1)) if len(fid) > 1 else 0.0,
                is_mean=float(is_.mean()), is_std=float(is_.std(ddof=1)) if len(is_) > 1 else 0.0)


def eval_metrics(G, classifier, stats) -> dict:
    """FID and IS on the small fixed re-check set (EVAL_N samples, EVAL_SEED)."""
    m = fid_and_is(G, classifier, stats, n=EVAL_N, num_classes=G.num_classes, seed=EVAL_SEED)
    return dict(n=EVAL_N, seed=EVAL_SEED, fid=m["fid"], is_=m["is"])


# ---------------------------------------------------------------------------
# Generators: train one, load one, re-check one
# ---------------------------------------------------------------------------

def train_generator(model: str, seed: int, root=ROOT) -> dict:
    """Train (or resume) one HamGAN, store its EMA generator under root and record it. Returns the record."""
    root = Path(root)
    cfg = model_config(model, seed)
    ds = data(cfg.resolution)
    clf = load_classifier(root)
    stats = real_stats(clf, ds)
    t0 = time.perf_counter()
    res = train(cfg, dataset=ds, extractor=clf, real_stats=stats)
    wall = time.perf_counter() - t0
    sd = res["G_ema"].state_dict()
    m32 = metrics(_generator(cfg, sd), clf, stats)
    m16 = metrics(_generator(cfg, _stored(sd, torch.float16)), clf, stats)
    # float16 when it moves the FID by less than a change of the noise seed does
    fp16 = abs(m16["fid_mean"] - m32["fid_mean"]) <= m32["fid_std"]
    dtype = torch.float16 if fp16 else torch.float32
    stored = _stored(sd, dtype)
    rel = f"hamgan/{model}_s{seed}.pt"
    _save(dict(config=dataclasses.asdict(cfg), state_dict=stored), root / rel)
    G = _generator(cfg, stored)
    record = dict(kind="hamgan", model=model, block=cfg.block, ham_grad=cfg.ham_grad if cfg.block == "ham" else None,
                  config_name=CONFIG, config=dataclasses.asdict(cfg), seed=seed, steps=res["step"],
                  command=f"python -m hamlib.experiments.gan_checkpoints train {model} --seeds {seed}",
                  wall_s=round(wall, 1), train_s=round(res["seconds"], 1), hardware=hardware(),
                  dtype=str(dtype).removeprefix("torch."), classifier=CLASSIFIER,
                  classifier_sha256=read_manifest(root)["files"][CLASSIFIER]["sha256"],
                  metric=dict(float32=m32, float16=m16, stored="float16" if fp16 else "float32"),
                  fid=(m16 if fp16 else m32)["fid_mean"], is_=(m16 if fp16 else m32)["is_mean"],
                  history=res["history"], gates={**gate_values(res["G"]),
                                                 **{"D." + k: v for k, v in gate_values(res["D"]).items()}},
                  eval=eval_metrics(G, clf, stats),
                  sha256=sha256(root / rel), bytes=(root / rel).stat().st_size)
    with _locked_manifest(root) as manifest:
        manifest["files"][rel] = record
    return record


def gan_files(root=ROOT, model: str | None = None) -> dict:
    """rel path -> record of every shipped generator (of one model, if given); {} without a manifest."""
    try:
        files = read_manifest(root)["files"]
    except FileNotFoundError:
        return {}
    return {k: r for k, r in files.items()
            if r["kind"] == "hamgan" and (model is None or r["model"] == model) and (Path(root) / k).is_file()}


def load_generator(rel: str, root=ROOT, verify=True):
    """(EMA generator in eval mode on the CPU, its manifest record) for a file such as
    "hamgan/ham_s0.pt"; verify checks the sha256 against the manifest first."""
    blob, record = read_verified(rel, root, verify)
    return _generator(config_from_dict(blob["config"]), blob["state_dict"]), record


def recheck_generator(rel: str, root=ROOT, classifier=None, stats=None) -> tuple[dict, dict]:
    """(FID / IS now on the fixed re-check set, the manifest's) for one generator file."""
    G, record = load_generator(rel, root)
    classifier = classifier if classifier is not None else load_classifier(root)
    stats = stats if stats is not None else real_stats(classifier)
    return eval_metrics(G, classifier, stats), record["eval"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hamlib.experiments.gan_checkpoints",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("classifier", help="train and record the digits classifier of FID / IS")
    c.add_argument("--root", default=str(ROOT))
    t = sub.add_parser("train", help="train HamGAN generators and record them")
    t.add_argument("models", nargs="+", choices=tuple(MODELS))
    t.add_argument("--seeds", type=int, nargs="+", default=[0])
    t.add_argument("--root", default=str(ROOT))
    k = sub.add_parser("check", help="re-evaluate every HamGAN file against the manifest")
    k.add_argument("--root", default=str(ROOT))
    args = p.parse_args(argv)
    if args.cmd == "classifier":
        r = train_digits_classifier(args.root)
        print(f"classifier: accuracy {r['metric']['train_accuracy']:.4f} ({r['wall_s']:.0f} s)", flush=True)
    elif args.cmd == "train":
        for model in args.models:
            for seed in args.seeds:
                r = train_generator(model, seed, args.root)
                print(f"{model} s{seed}: FID {r['fid']:.2f} IS {r['is_']:.2f} {r['dtype']} "
                      f"({r['train_s']:.0f} s)", flush=True)
    else:
        clf = load_classifier(args.root)
        stats = real_stats(clf)
        for rel in gan_files(args.root):
            now, then = recheck_generator(rel, args.root, clf, stats)
            print(f"{rel}: FID {now['fid']:.4f} (manifest {then['fid']:.4f}), IS {now['is_']:.4f} "
                  f"(manifest {then['is_']:.4f})")


if __name__ == "__main__":
    main()
