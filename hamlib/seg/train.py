"""HamNet trainer: `python -m hamlib.seg.train --config quick` (or legend_full, texture, voc_stage1, voc_stage2, voc).

- One dataclass config (`TrainConfig`) and named configs (functions returning one, in `CONFIGS`):
  "quick" (CPU, the synthetic colour-by-legend task, under a minute), "legend_full" (the harder
  task at GPU scale), "texture" (quick's network on real textures, `hamlib.seg.texture`) and
  the reference VOC recipe in two stages, "voc_stage1" (trainaug, 60k iterations) and
  "voc_stage2" (trainval, 20k iterations at lr / 10, starting from stage 1); "voc" runs both.
- SGD with the reference's parameter groups: conv/linear weights get weight decay, norm
  parameters none, conv biases twice the learning rate and no decay; poly schedule
  lr_t = lr (1 - t / T)^0.9.
- AMP on CUDA only; checkpoint out_dir/last.pt (RNG states included, data order a function of
  (seed, step)), `--resume` continues from it bit for bit; tqdm progress; CSV log
  (out_dir/log.csv) of loss, lr, mIoU and training seconds; `--compile` trains through torch.compile.
- torchrun + DistributedDataParallel; SyncBatchNorm on CUDA (PyTorch's SyncBatchNorm has
  no CPU kernel, so on CPU each process keeps its own BN statistics).

The idiom (configs, checkpoint, resume, stop_after, timing) is HamGAN's too: see hamlib/runtime.py.
Command line: `--config NAME`, then `--set key=value` overrides on dotted paths, e.g.
`--set steps=200 --set model.head.context=attention --set model.head.ham.grad=bptt`. Every field
is checked when the config is built (`TrainConfig.validate`); `--resume` continues only the run
that wrote the checkpoint (`--allow-change FIELD` lets a field differ). With a recipe, an
`out_dir` holds one folder per stage and each stage starts from the previous one's last.pt.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from ..config import (check_fields, check_resume, config_from_args, config_parser, device_name, field_names, flag,
                      integer, named_config, number, one_of, parse_override, sequence, text)
from ..context import CONTEXTS
from ..runtime import (CSVLogger, StepBatches, StepClock, cleanup_distributed, is_main_process, load_checkpoint,
                       pick_device, progress_bar, save_checkpoint, seed_everything, setup_distributed, temporary)
from .backbone import BACKBONES
from .data import IGNORE, TrainAugment, VOCSegmentation, eval_transform, pad_collate
from .heads import HeadConfig
from .metrics import evaluate
from .model import ModelConfig, build_model
from .synthetic import LegendConfig, LegendDataset
from .texture import TextureConfig, TextureDataset

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = "voc"               # "voc", "legend" (the synthetic task) or "texture" (real textures)
    data_root: str | None = None       # VOC: the VOC2012 folder (see data/README.md)
    train_split: str = "trainaug"
    val_split: str = "val"
    legend: LegendConfig = field(default_factory=LegendConfig)
    texture: TextureConfig = field(default_factory=TextureConfig)
    n_train: int = 2000                # legend, texture: images generated for training / validation
    n_val: int = 256
    data_seed: int = 0                 # legend, texture: training set from data_seed, validation from data_seed + 1
    crop: int = 513
    scales: tuple = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    flip: bool = True
    batch_size: int = 16               # global: split over the processes of a DDP run
    steps: int = 60000
    lr: float = 9e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9
    eval_every: int = 0                # 0: evaluate only at the end
    eval_batch_size: int = 1
    eval_scales: tuple = (1.0,)
    eval_flip: bool = False
    log_every: int = 20                # a CSV row every log_every steps (and at evaluations, at the stop)
    ckpt_every: int = 1000             # 0: only when the run stops
    stop_after: int | None = None      # stop (with a checkpoint) after this step: a time-sliced job
    out_dir: str | None = "runs/hamnet"  # last.pt and log.csv; None writes nothing
    resume: bool = False               # continue from out_dir/last.pt if it exists (--resume)
    init_from: str | None = None       # start from these model weights (stage 2 from stage 1)
    seed: int = 0
    device: str | None = None          # None: CUDA if present, else CPU
    workers: int = 0
    amp: bool = True                   # mixed precision, CUDA only
    channels_last: bool = False
    compile: bool = False              # train through torch.compile (--compile)
    progress: bool = True              # tqdm bar (also off with TQDM_DISABLE=1)
    allow_change: tuple = ()           # resume: fields that may differ from the checkpoint's (--allow-change)

    def __post_init__(self):
        self.validate()

    def validate(self) -> "TrainConfig":
        """Check every field (ValueError naming the field, its value and what is allowed); returns self."""
        check_fields(self, {
            "model": (lambda v: isinstance(v, ModelConfig), "a hamlib.seg.model.ModelConfig"),
            "dataset": one_of(("voc", "legend", "texture")), "data_root": text(optional=True),
            "train_split": text(), "val_split": text(),
            "legend": (lambda v: isinstance(v, LegendConfig), "a hamlib.seg.synthetic.LegendConfig"),
            "texture": (lambda v: isinstance(v, TextureConfig), "a hamlib.seg.texture.TextureConfig"),
            "n_train": integer(1), "n_val": integer(1), "data_seed": integer(0),
            "crop": integer(1), "scales": sequence(number(0, lo_open=True)), "flip": flag(),
            "batch_size": integer(1), "steps": integer(0), "lr": number(0, lo_open=True),
            "momentum": number(0, 1, hi_open=True), "weight_decay": number(0), "power": number(0),
            "eval_every": integer(0), "eval_batch_size": integer(1),
            "eval_scales": sequence(number(0, lo_open=True)), "eval_flip": flag(),
            "log_every": integer(1), "ckpt_every": integer(0), "stop_after": integer(0, optional=True),
            "out_dir": text(optional=True), "resume": flag(), "init_from": text(optional=True),
            "seed": integer(0, 2 ** 32 - 1), "device": device_name(), "workers": integer(0), "amp": flag(),
            "channels_last": flag(), "compile": flag(), "progress": flag(),
            "allow_change": sequence(text(), min_len=0)})
        m = self.model
        check_fields(m, {"backbone": one_of(tuple(BACKBONES)),
                         "backbone_kw": (lambda v: isinstance(v, dict), "a dict of keyword arguments"),
                         "head": (lambda v: isinstance(v, HeadConfig), "a hamlib.seg.heads.HeadConfig"),
                         "num_classes": integer(1), "pretrained": text(optional=True)})
        check_fields(m.head, {"context": one_of(CONTEXTS)})
        if self.dataset in ("legend", "texture"):
            task = getattr(self, self.dataset)
            if self.dataset == "texture":
                task.validate()
            if m.num_classes != task.num_classes:
                raise ValueError(f"model.num_classes={m.num_classes}, but the {self.dataset} task has "
                                 f"{task.num_classes} classes (labels 0..{task.num_classes - 1}; n_colours + 1)")
        names = field_names(self)
        for name in self.allow_change:
            if not any(name == n or name.startswith(n + ".") for n in names):
                raise ValueError(f"TrainConfig.allow_change names {name!r}, which is no field of TrainConfig")
        return self


# ---------------------------------------------------------------------------
# Named configs
# ---------------------------------------------------------------------------

def quick() -> TrainConfig:
    """CPU-sized: a tiny ResNet + HamNet head with 1x1 squeeze/align (receptive field
    35 px < the task's min_dist 36) on 64 x 64 colour-by-legend images (one legend colour).

    The Hamburger uses NMF's default gradient ("bptt"), the one that learned the task from
    scratch (experiments/RESULTS.md, "Choosing the gradient"), and the block's default init.
    600 steps (about 20 s on one core): from PyTorch's initialisation the NMF head has learned
    the task by then (0.711 +- 0.005 mIoU, seeds 0-2), not yet at 250 steps (0.505 +- 0.11),
    where the paper's initialisation learns faster (0.670 +- 0.03; "Block defaults on three tasks").
    """
    head = HeadConfig(context="ham", channels=64, align_channels=32, kernel=1,
                      ham=dict(ham="nmf", rank=8, steps=6))
    return TrainConfig(model=ModelConfig("resnet_tiny", dict(width=16), head, num_classes=5),
                       dataset="legend", legend=LegendConfig(size=64, min_dist=36, one_colour=True),
                       n_train=2000, n_val=256, batch_size=16, steps=600, lr=0.1, weight_decay=1e-4,
                       flip=True, eval_batch_size=64, log_every=20, ckpt_every=0, out_dir="runs/quick",
                       amp=False)


def legend_full() -> TrainConfig:
    """The synthetic task at GPU scale: the harder two-colour legend (each gray shape takes the
    colour of the legend shape of its kind), wider network, 4000 steps."""
    cfg = quick()
    cfg.model.backbone_kw = dict(width=32)
    cfg.model.head = HeadConfig(context="ham", channels=128, align_channels=64, kernel=1,
                                ham=dict(ham="nmf", rank=16, steps=6))
    return dataclasses.replace(cfg, legend=LegendConfig(size=64, min_dist=36, one_colour=False),
                               n_train=20000, n_val=1000, steps=4000, batch_size=32, out_dir="runs/legend_full",
                               eval_every=1000, ckpt_every=1000)


def texture() -> TrainConfig:
    """`quick`'s network on the texture-by-legend task (`hamlib.seg.texture`: real textures from
    scikit-image, a gray patch takes the colour of the legend swatch with its texture), 1000 steps."""
    return dataclasses.replace(quick(), dataset="texture", texture=TextureConfig(), steps=1000,
                               out_dir="runs/texture")


def voc_stage1() -> TrainConfig:
    """The reference recipe, stage 1: ResNet-101 OS 8, HamNet head, trainaug, 60k its, batch 16, crop 513.
    The paper's one-step gradient and the reference's initialisation, named: its VOC numbers were
    measured with them (on an ImageNet-pretrained backbone, where the measured defaults have not
    been compared)."""
    head = HeadConfig(ham=dict(ham="nmf", rank=64, steps=6, grad="one-step", init="reference"))
    return TrainConfig(model=ModelConfig("resnet101", dict(output_stride=8), head, 21,
                                         pretrained="data/pretrained/resnet101.pth"),
                       dataset="voc", data_root="data/VOCdevkit/VOC2012", train_split="trainaug",
                       val_split="val", steps=60000, lr=9e-3, batch_size=16, crop=513, workers=8,
                       eval_every=5000, out_dir="runs/voc_stage1")


def voc_stage2() -> TrainConfig:
    """Stage 2: trainval, 20k its at lr / 10, from stage 1's weights; MSFlip at the end."""
    cfg = voc_stage1()
    cfg.model.pretrained = None
    return dataclasses.replace(cfg, train_split="trainval", steps=20000, lr=9e-4,
                               init_from="runs/voc_stage1/last.pt", out_dir="runs/voc_stage2",
                               eval_scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), eval_flip=True)


CONFIGS = {"quick": quick, "legend_full": legend_full, "texture": texture, "voc_stage1": voc_stage1, "voc_stage2": voc_stage2}
RECIPES = {"voc": ("voc_stage1", "voc_stage2")}


def get_config(name: str = "quick", **overrides) -> TrainConfig:
    """A named config with field overrides, e.g. get_config("quick", steps=100, seed=1)."""
    return named_config(CONFIGS, name, **overrides)


# ---------------------------------------------------------------------------
# Optimiser: the reference's parameter groups and poly schedule
# ---------------------------------------------------------------------------

def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list:
    """conv/linear weights: lr, weight decay; norm weights/biases and other parameters: lr, no
    decay; conv/linear biases: 2 lr, no decay. Each group keeps its multiplier in "lr_mult"."""
    decay, no_decay, bias = [], [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                (bias if name == "bias" else decay).append(p)
            else:                                   # norms, gates, attention gamma
                no_decay.append(p)
    return [dict(params=decay, lr=lr, lr_mult=1.0, weight_decay=weight_decay),
            dict(params=no_decay, lr=lr, lr_mult=1.0, weight_decay=0.0),
            dict(params=bias, lr=2 * lr, lr_mult=2.0, weight_decay=0.0)]


def poly_lr(base_lr: float, step: int, total: int, power: float = 0.9) -> float:
    return base_lr * (1 - step / total) ** power


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with momentum over `param_groups`: the trainer's optimiser."""
    return torch.optim.SGD(param_groups(model, cfg.lr, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum)


def train_step(net, opt, scaler, x, y, lr: float, amp: bool = False) -> torch.Tensor:
    """One optimiser step on a batch x (B, 3, H, W), y (B, H, W) (IGNORE pixels ignored) at
    learning rate lr (each parameter group gets lr * its lr_mult): cross-entropy under autocast
    when amp, backward through the gradient scaler, the step. Returns the loss (0-d, detached);
    a non-finite loss raises FloatingPointError before any weight changes."""
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_mult"]
    with torch.autocast(x.device.type, enabled=amp):
        loss = F.cross_entropy(net(x), y, ignore_index=IGNORE)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} (lr {lr:.3g})")
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss.detach()


def check_labels(y: torch.Tensor, num_classes: int, step: int) -> None:
    """Every label of a batch is IGNORE or in 0..num_classes - 1, else a ValueError naming one."""
    bad = (y != IGNORE) & ((y < 0) | (y >= num_classes))
    if bad.any():
        raise ValueError(f"step {step}: the training batch holds label {int(y[bad][0])}, but model.num_classes="
                         f"{num_classes} (labels must be 0..{num_classes - 1}, or {IGNORE} for ignored pixels)")


# ---------------------------------------------------------------------------
# Data: a step -> the batch of (index, augmentation seed) pairs, for this process
# ---------------------------------------------------------------------------

class SeededStepBatches(StepBatches):
    """StepBatches whose items are (index, sample seed) pairs, so the augmentation is a
    function of (seed, step) alone. Epoch permutations are drawn from seed * 100003 + epoch."""

    def __init__(self, n, batch_size, seed, start, stop, rank=0, world=1):
        super().__init__(n, batch_size, seed * 100003, start, stop, rank, world)
        self.sample_seed = seed

    def batch(self, step):
        idx = self.global_batch(step)
        return [(i, self.sample_seed * 10 ** 9 + step * self.B + j) for j, i in enumerate(idx)][self.rank::self.world]


def generated_set(cfg: TrainConfig, n: int, seed: int, split: str = "val"):
    """n images of cfg's generated task (legend or texture) from seed: a training set (flips as
    cfg.flip; texture: patches from the top halves of the pictures) or a validation set."""
    flip = cfg.flip and split == "train"
    if cfg.dataset == "legend":
        return LegendDataset(n, seed, cfg.legend, flip=flip)
    if cfg.dataset == "texture":   # patches from disjoint halves of every source picture
        return TextureDataset(n, seed, cfg.texture, flip=flip, split=split)
    raise ValueError(f"dataset {cfg.dataset!r} is not generated (only 'legend' and 'texture' are)")


def build_datasets(cfg: TrainConfig):
    if cfg.dataset in ("legend", "texture"):
        return (generated_set(cfg, cfg.n_train, cfg.data_seed, "train"),
                generated_set(cfg, cfg.n_val, cfg.data_seed + 1, "val"))
    if cfg.dataset == "voc":
        if not cfg.data_root:
            raise ValueError("dataset 'voc' needs data_root (the VOC2012 folder; see data/README.md)")
        aug = TrainAugment(cfg.crop, cfg.scales, cfg.flip)
        return (VOCSegmentation(cfg.data_root, cfg.train_split, aug),
                VOCSegmentation(cfg.data_root, cfg.val_split, eval_transform))
    raise ValueError(f"dataset must be 'voc', 'legend' or 'texture', got {cfg.dataset!r}")


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------

# fields a resumed run may change without --allow-change: where and how it runs, not what it computes
RESUME_FREE = ("resume", "stop_after", "log_every", "ckpt_every", "progress", "workers", "device", "compile",
               "out_dir", "allow_change", "eval_every", "eval_batch_size", "init_from", "model.pretrained")


def check_pretrained(cfg: TrainConfig, model):
    """model.pretrained must fill some of the backbone: a file none of whose tensors match is a
    ValueError with the load report. Returns the report (None without model.pretrained)."""
    report = getattr(model.backbone, "load_report", None)
    if report is not None and not report.loaded:
        raise ValueError(f"model.pretrained={cfg.model.pretrained!r}: no tensor of the file matches the "
                         f"{cfg.model.backbone} backbone ({report})")
    return report


def train(cfg: TrainConfig, datasets=None) -> dict:
    """Train (or resume) and evaluate. Returns {"step", "miou", "history", "seconds",
    "seconds_per_step", "model"}: history holds one {"step", "miou", "seconds"} per evaluation,
    miou is the evaluation at the returned step (NaN if none ran there; a finished run resumed
    reports its stored one), seconds the training steps' wall-clock total (a resumed run's
    included), seconds_per_step this call's own average.

    `datasets` = (train_set, val_set) reuses data already built (notebooks that train many
    heads on one synthetic set); by default they are built from the config. Every check
    (config, device, checkpoint, labels' range) runs before the first step. When an
    evaluation falls on a checkpoint step, the checkpoint is written before the evaluation
    as well, so a failing evaluation loses no training (a resumed run evaluates first).
    """
    cfg.validate()
    rank, world, device = setup_distributed(pick_device(cfg.device) if cfg.device else None)
    main = is_main_process()
    seed_everything(cfg.seed)                     # the same initial weights on every process
    model = build_model(cfg.model).to(device)
    report = check_pretrained(cfg, model)
    if main and report is not None:
        log.info("model.pretrained=%s: %s", cfg.model.pretrained, report)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if world > 1 and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = build_optimizer(model, cfg)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)

    start, history, seconds, pending = 0, [], 0.0, None
    ckpt = Path(cfg.out_dir) / "last.pt" if cfg.out_dir else None
    if main and ckpt is not None:
        temporary(ckpt).unlink(missing_ok=True)   # left by a process killed while writing
    resumed = cfg.resume and ckpt is not None and ckpt.is_file()
    if resumed:
        state = load_checkpoint(ckpt, map_location=device)   # restores the RNG states too
        check_resume(state, cfg, ckpt, RESUME_FREE)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start, history, seconds = state["step"], state.get("history", []), state.get("seconds", 0.0)
        pending = state.get("pending")                 # the step's evaluation and log row still to do
        log.info("resumed from %s at step %d", ckpt, start)
    else:
        if cfg.init_from:
            try:
                model.load_state_dict(load_checkpoint(cfg.init_from, map_location=device, restore_rng=False)["model"])
            except (KeyError, RuntimeError) as e:
                raise ValueError(f"init_from={cfg.init_from!r} holds no weights of this model: {e}") from None
        seed_everything(cfg.seed + rank)          # per-process randomness (dropout, random bases)
    ddp = DDP(model) if world > 1 else model
    net = torch.compile(ddp) if cfg.compile else ddp   # trains; evaluation and checkpoints use the plain model

    train_set, val_set = datasets or build_datasets(cfg)
    K = cfg.model.num_classes
    if train_set.num_classes != K:
        raise ValueError(f"model.num_classes={K}, but the training set has {train_set.num_classes} classes "
                         f"(labels 0..{train_set.num_classes - 1})")
    stop = cfg.steps if cfg.stop_after is None else max(start, min(cfg.steps, cfg.stop_after))
    # the loader yields exactly the batches of steps start .. stop - 1: none is fetched and dropped
    batches = SeededStepBatches(len(train_set), cfg.batch_size, cfg.seed, start, stop, rank, world)
    collate = pad_collate if cfg.dataset == "voc" else None
    # own generators: iterating a DataLoader must not draw from the global RNG (resume)
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=batches, num_workers=cfg.workers,
                                         collate_fn=collate, generator=torch.Generator().manual_seed(cfg.seed))
    val_loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(val_set, range(rank, len(val_set), world)),
        batch_size=cfg.eval_batch_size, collate_fn=collate, generator=torch.Generator().manual_seed(cfg.seed))
    logger = None
    if main and ckpt is not None:
        logger = CSVLogger(ckpt.parent / "log.csv", ["step", "loss", "lr", "miou", "seconds"],
                           resume_step=(start - 1 if pending else start) if resumed else None)

    def checkpoint(step, pending=None):
        if main and ckpt is not None:
            save_checkpoint(ckpt, model=model.state_dict(), optimizer=opt.state_dict(), scaler=scaler.state_dict(),
                            step=step, history=history, seconds=clock.seconds, config=dataclasses.asdict(cfg),
                            pending=pending)

    def finish(done, make_row):
        """Step `done`'s bookkeeping: evaluation when due, the log row (make_row(), called only
        when needed: it reads the losses off the device), the checkpoint when due."""
        nonlocal miou
        evaluated = (cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps
        due = (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == stop
        if evaluated and due:
            checkpoint(done, pending=make_row())  # the trained weights are safe before the evaluation
        if evaluated:
            miou = evaluate(ddp, val_loader, train_set.num_classes, device, cfg.eval_scales, cfg.eval_flip)["miou"]
            history.append(dict(step=done, miou=miou, seconds=clock.seconds))
        if main and (done % cfg.log_every == 0 or evaluated or done == stop):
            row = make_row()
            bar.set_postfix(loss=f"{row['loss']:.3f}", miou=f"{miou:.3f}", refresh=False)
            if logger is not None:
                logger.log(**row, miou=miou if evaluated else "")
        if due:
            checkpoint(done)

    clock, done = StepClock(seconds), start
    miou = history[-1]["miou"] if history and history[-1]["step"] == start else float("nan")
    bar = progress_bar(start, stop, main and cfg.progress)
    if pending:
        finish(start, lambda: pending)
    net.train()
    for step, (x, y) in enumerate(loader, start=start):
        check_labels(y, K, step + 1)              # on the host: no device sync
        with clock.step():
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            lr = poly_lr(cfg.lr, step, cfg.steps, cfg.power)
            try:
                loss = train_step(net, opt, scaler, x, y, lr, use_amp)
            except FloatingPointError as e:
                raise FloatingPointError(f"step {step + 1}: {e}") from None
        done = step + 1
        finish(done, lambda: dict(step=done, loss=round(loss.item(), 5), lr=lr, seconds=round(clock.seconds, 3)))
        bar.update(1)
    bar.close()
    cleanup_distributed()
    return dict(step=done, miou=miou, history=history, seconds=clock.seconds,
                seconds_per_step=clock.seconds_per_step, model=model)


def recipe_configs(name: str, args) -> list:
    """The configs `main` trains for `--config name` with the parsed command line: one, or one per
    stage of a recipe. In a recipe every stage after the first starts from the previous stage's
    last.pt (its init_from follows that stage's out_dir), and an out_dir given with --set holds one
    folder per stage (out_dir/voc_stage1, out_dir/voc_stage2). All are built and checked before
    any trains."""
    stages = RECIPES.get(name, (name,))
    keys = {parse_override(t)[0] for t in args.set}
    cfgs = []
    for i, stage in enumerate(stages):
        cfg = config_from_args(CONFIGS[stage], args)
        if len(stages) > 1 and "out_dir" in keys and cfg.out_dir is not None:
            cfg.out_dir = str(Path(cfg.out_dir) / stage)
        if i > 0 and "init_from" not in keys:
            if cfgs[-1].out_dir is None:
                raise ValueError(f"recipe {name!r}: stage {stage} starts from {stages[i - 1]}'s last.pt, "
                                 "but out_dir=None writes none")
            cfg.init_from = str(Path(cfgs[-1].out_dir) / "last.pt")
        cfgs.append(cfg.validate())
    return cfgs


def main(argv=None):
    p = config_parser("python -m hamlib.seg.train", __doc__.split("\n\n")[0], [*CONFIGS, *RECIPES])
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfgs = recipe_configs(args.config, args)
    for name, cfg in zip(RECIPES.get(args.config, (args.config,)), cfgs):
        res = train(cfg)
        if is_main_process():
            miou = f"mIoU {res['miou']:.4f}" if res["history"] and res["history"][-1]["step"] == res["step"] \
                else "not evaluated at this step"
            speed = f"{res['seconds_per_step']:.3f} s/step" if res["seconds_per_step"] == res["seconds_per_step"] \
                else "no step to train (already there)"
            log.info("%s: step %d, %s, %s", name, res["step"], miou, speed)
    return res


if __name__ == "__main__":
    main()
