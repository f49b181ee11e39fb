"""The shipped HamGAN files: their configs, verified loading, the FID / IS ruler, the re-check.

    <root>/hamgan/classifier.pt        the digits classifier whose features FID and IS use
    <root>/hamgan/<stem>_s<seed>.pt    a generator's EMA weights (config `CONFIG`, model `MODELS`)

Models (`MODELS`): "ham" (NMF Hamburger, the paper's one-step gradient), "ham-bptt" (the same
with back-propagation through all K steps) and "attention" (self-attention). A generator file
holds {"config": the GANConfig as a dict, "state_dict": G_ema's weights}; its record in the
checkpoint manifest (`checkpoints`, the same store as HamNet's) holds the FID / IS reached
(`METRIC_N` samples for each of `METRIC_SEEDS`) and the FID / IS on the small fixed re-check
set (`EVAL_N` samples from `EVAL_SEED`). Every function takes root= (default
`checkpoints.default_root()`).
"""

from __future__ import annotations

import numpy as np
import torch

from hamlib.gan.data import digits
from hamlib.gan.metrics import DigitsClassifier, extract, feature_stats, fid_and_is
from hamlib.gan.train import GANConfig, build_models, get_config
from .checkpoints import files, read_verified, resolve_root, stored

CONFIG = "digits32_cpu"
MODELS = {"ham": dict(block="ham", ham_grad="one-step"),
          "ham-bptt": dict(block="ham", ham_grad="bptt"),
          "attention": dict(block="attention")}
STEMS = {"attention": "sa"}                  # the shipped attention generators are hamgan/sa_s<seed>.pt
CLASSIFIER = "hamgan/classifier.pt"
CLASSIFIER_KW = dict(steps=500, batch_size=64, lr=2e-3, seed=0)   # train_classifier's arguments
METRIC_N, METRIC_SEEDS = 2000, (0, 1, 2)     # the metric a record reports: 2000 samples, three noise seeds
EVAL_N, EVAL_SEED = 250, 10_000               # the small fixed re-check set
OLD_BLOCKS = {"sa": "attention"}             # block names of older stored configs -> hamlib.context.CONTEXTS


def block_name(block: str) -> str:
    """A GAN block name as the library spells it ("sa", in older stored configs, is "attention")."""
    return OLD_BLOCKS.get(block, block)


def generator_rel(model: str, seed: int) -> str:
    return f"hamgan/{STEMS.get(model, model)}_s{seed}.pt"


def model_config(model: str, seed: int) -> GANConfig:
    """The config a shipped generator trains with (resumable from runs/gan_checkpoints/...)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {model!r}")
    return get_config(CONFIG, **MODELS[model], seed=seed, progress=False, device="cpu", ckpt_every=250,
                      resume=True, out_dir=f"runs/gan_checkpoints/{model}_s{seed}")


def config_from_dict(d: dict) -> GANConfig:
    """The GANConfig that dataclasses.asdict(cfg) came from (tuples restored, block as the library names it)."""
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return GANConfig(**{**d, "block": block_name(d["block"])})


def generator(cfg: GANConfig, state_dict: dict):
    """The generator of cfg with state_dict's weights (as float32), eval mode, no gradients."""
    G, _ = build_models(cfg)
    G.load_state_dict(stored(state_dict, torch.float32))
    return G.eval().requires_grad_(False)


def data(resolution: int | None = None):
    """The digits at `resolution` (default: CONFIG's)."""
    return digits(resolution or get_config(CONFIG).resolution)


def load_classifier(root=None, verify=True) -> DigitsClassifier:
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


def gan_files(root=None, model: str | None = None) -> dict:
    """rel path -> record of every shipped generator whose file exists (of one model, if given);
    {} without a manifest."""
    return {k: r for k, r in files(root, "hamgan").items()
            if (model is None or r["model"] == model) and (resolve_root(root) / k).is_file()}


def load_generator(rel: str, root=None, verify=True):
    """(EMA generator in eval mode on the CPU, its manifest record) for a file such as
    "hamgan/ham_s0.pt"; verify checks the sha256 against the manifest first."""
    blob, rec = read_verified(rel, root, verify)
    return generator(config_from_dict(blob["config"]), blob["state_dict"]), rec


def recheck_generator(rel: str, root=None, classifier=None, stats=None) -> tuple[dict, dict]:
    """(FID / IS now on the fixed re-check set, the manifest's) for one generator file."""
    G, rec = load_generator(rel, root)
    classifier = classifier if classifier is not None else load_classifier(root)
    stats = stats if stats is not None else real_stats(classifier)
    return eval_metrics(G, classifier, stats), rec["eval"]
