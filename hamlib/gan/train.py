"""Train HamGAN: hinge loss, Adam(beta1 = 0), EMA generator, AMP on CUDA, checkpoints, DDP.

    python -m hamlib.gan.train --config quick --set out_dir=runs/ham          # CPU, offline digits
    python -m hamlib.gan.train --config quick --set out_dir=runs/ham --resume # continue from runs/ham/last.pt
    python -m hamlib.gan.train --config quick --set block=attention --set steps=2000 --set out_dir=runs/attn
    python -m hamlib.gan.train --config cifar10 --set data_root=/data/cifar-10-batches-py --compile
    torchrun --nproc_per_node 8 -m hamlib.gan.train --config imagenet128_baby --set data_root=/data/imagenet/train

A run writes <out_dir>/last.pt (every ckpt_every steps and when it stops) and <out_dir>/log.csv;
with --resume it continues from last.pt and ends where an uninterrupted run would (it refuses a
changed config unless --allow-change FIELD names the field). Every field is checked when the
config is built (`GANConfig.validate`). The idiom (configs, --set, checkpoint, resume,
stop_after, timing) is HamNet's too: see hamlib/runtime.py.
The recipe is the HamGAN paper's (Geng et al., ICLR 2021): one D step per G step, lr G 1e-4 / D 4e-4,
Adam betas (0, 0.999), samples from an exponential moving average of G's weights.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ..config import (check_fields, check_resume, config_from_args, config_parser, device_name, field_names, flag,
                      integer, named_config, number, one_of, sequence, text)
from ..context import CONTEXTS
from ..grad import canonical_grad
from ..md import SOLVERS
from ..runtime import (CSVLogger, StepBatches, StepClock, cleanup_distributed, is_main_process, load_checkpoint,
                       pick_device, progress_bar, save_checkpoint, seed_everything, setup_distributed, temporary)
from .data import dataset_from_config
from .metrics import fid_and_is
from .model import Discriminator, Generator, d_hinge_loss, ema_update, g_hinge_loss

log = logging.getLogger(__name__)


@dataclass
class GANConfig:
    # data
    data: str = "digits"                 # "digits" (offline), "cifar10" or "folder" (ImageNet layout)
    data_root: str | None = None
    resolution: int = 16
    img_channels: int = 1
    num_classes: int = 10
    # model
    z_dim: int = 64
    g_channels: tuple = (32, 32, 16)    # at 4 x 4, then after each up-sampling block
    d_channels: tuple = (16, 32)         # after each down-sampling block
    block: str = "ham"                  # one of hamlib.context.CONTEXTS: "ham", "attention", "none", ...
    g_block_res: int = 8                # where the context block sits in G ...
    d_block_res: int = 8                # ... and in D
    ham: str = "nmf"
    g_ham_d: int | None = None          # ham width d (None: the block's channels)
    g_ham_rank: int = 8                 # r
    d_ham_d: int | None = None
    d_ham_rank: int = 8
    ham_steps: int = 6                  # K
    ham_grad: str = "one-step"
    # optimisation
    batch_size: int = 32                # global batch (split over DDP processes)
    steps: int = 1000
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.999
    ema_decay: float = 0.999
    ema_start: int = 0                  # before this step the EMA is a plain copy of G
    amp: bool = True                    # mixed precision, used on CUDA only
    seed: int = 0
    # bookkeeping
    out_dir: str | None = "runs/hamgan"  # last.pt and log.csv; None writes nothing
    ckpt_every: int = 500               # 0: only when the run stops
    stop_after: int | None = None       # stop (with a checkpoint) after this step: a time-sliced job
    resume: bool = False                # continue from out_dir/last.pt if it exists (--resume)
    log_every: int = 50                 # a CSV row every log_every steps (and at evaluations, at the stop)
    eval_every: int = 0                 # 0: no FID/IS during training
    eval_samples: int = 1000
    device: str | None = None           # None: CUDA if present, else CPU
    workers: int = 0
    compile: bool = False               # train G and D through torch.compile (--compile)
    progress: bool = True               # tqdm bar (also off with TQDM_DISABLE=1)
    allow_change: tuple = ()            # resume: fields that may differ from the checkpoint's (--allow-change)

    def __post_init__(self):
        self.validate()

    def validate(self) -> "GANConfig":
        """Check every field (ValueError naming the field, its value and what is allowed); returns self."""
        check_fields(self, {
            "data": one_of(("digits", "cifar10", "folder")), "data_root": text(optional=True),
            "resolution": integer(4), "img_channels": integer(1), "num_classes": integer(1), "z_dim": integer(1),
            "g_channels": sequence(integer(1)), "d_channels": sequence(integer(1)), "block": one_of(CONTEXTS),
            "g_block_res": integer(1), "d_block_res": integer(1), "ham": one_of(tuple(SOLVERS)),
            "g_ham_d": integer(1, optional=True), "g_ham_rank": integer(1), "d_ham_d": integer(1, optional=True),
            "d_ham_rank": integer(1), "ham_steps": integer(0), "ham_grad": gradient_mode(),
            "batch_size": integer(1), "steps": integer(0), "lr_g": number(0, lo_open=True),
            "lr_d": number(0, lo_open=True), "beta1": number(0, 1, hi_open=True), "beta2": number(0, 1, hi_open=True),
            "ema_decay": number(0, 1), "ema_start": integer(0), "amp": flag(), "seed": integer(0, 2 ** 32 - 1),
            "out_dir": text(optional=True), "ckpt_every": integer(0), "stop_after": integer(0, optional=True),
            "resume": flag(), "log_every": integer(1), "eval_every": integer(0), "eval_samples": integer(1),
            "device": device_name(), "workers": integer(0), "compile": flag(), "progress": flag(),
            "allow_change": sequence(text(), min_len=0)})
        names = field_names(self)
        for name in self.allow_change:
            if name not in names:
                raise ValueError(f"GANConfig.allow_change names {name!r}, which is no field of GANConfig")
        return self


def gradient_mode():
    """A rule: what `hamlib.grad.canonical_grad` accepts."""
    def ok(v):
        try:
            return canonical_grad(v) is not None
        except ValueError:
            return False
    return ok, "a gradient mode of hamlib.grad.GRAD_MODES or a number of steps (an int >= 0)"


# ---------------------------------------------------------------------------
# Named configs
# ---------------------------------------------------------------------------

def quick() -> GANConfig:
    """CPU, offline: scikit-learn digits at 16 x 16, recognisable digits per class in a few minutes.
    Twice the reference learning rates (same G:D ratio): at the reference rates the labels
    were not yet used within this budget."""
    return GANConfig(steps=1000, lr_g=2e-4, lr_d=8e-4, ema_decay=0.99, ema_start=100, eval_every=250,
                     eval_samples=500)


def digits32() -> GANConfig:
    """The notebook's GPU setting: digits at 32 x 32, wider networks, block at 16 x 16, longer."""
    return GANConfig(resolution=32, z_dim=128, g_channels=(128, 128, 128, 64), d_channels=(64, 128, 128),
                     g_block_res=16, d_block_res=16, g_ham_rank=16, d_ham_rank=16, batch_size=64, steps=5000,
                     ema_decay=0.999, ema_start=500, eval_every=1000, eval_samples=2000)


def digits32_cpu() -> GANConfig:
    """digits32's architecture (32 x 32, block at 16 x 16 in both networks) narrowed to train on one
    CPU thread: the config of the shipped generators (notebooks/course/gan_checkpoints.py; their
    manifest records the wall times). The quick config's doubled learning rates and short EMA,
    for 2000 steps."""
    return GANConfig(resolution=32, z_dim=64, g_channels=(64, 64, 32, 16), d_channels=(16, 32, 64),
                     g_block_res=16, d_block_res=16, g_ham_rank=8, d_ham_rank=8, batch_size=32, steps=2000,
                     lr_g=2e-4, lr_d=8e-4, ema_decay=0.995, ema_start=200, eval_every=500, eval_samples=1000)


def cifar10() -> GANConfig:
    """CIFAR-10-sized: 32 x 32 RGB, SNGAN-CIFAR widths, block at 16 x 16 in both networks."""
    return GANConfig(data="cifar10", resolution=32, img_channels=3, z_dim=128,
                     g_channels=(256, 256, 256, 256), d_channels=(128, 128, 128), g_block_res=16,
                     d_block_res=16, g_ham_rank=16, d_ham_rank=16, batch_size=64, steps=100_000,
                     ema_decay=0.9999, ema_start=1000, ckpt_every=5000, eval_every=5000, eval_samples=10_000,
                     workers=4)


def imagenet128_baby() -> GANConfig:
    """ImageNet 128 x 128 (the HamGAN paper): G 4 -> 128 px with 1024..64 channels, Hamburger
    (NMF, d = 256, r = 32, K = 6) after the 32 x 32 block; D with Hamburger (d = 128, r = 16) at 32 x 32."""
    return GANConfig(data="folder", resolution=128, img_channels=3, num_classes=1000, z_dim=128,
                     g_channels=(1024, 1024, 512, 256, 128, 64), d_channels=(64, 128, 256, 512, 1024),
                     g_block_res=32, d_block_res=32, g_ham_d=256, g_ham_rank=32, d_ham_d=128,
                     d_ham_rank=16, batch_size=256, steps=2_000_000, ema_decay=0.9999,
                     ema_start=20_000, ckpt_every=10_000, eval_every=50_000, eval_samples=50_000, workers=8)


def imagenet128_strong() -> GANConfig:
    """HamGAN-strong: imagenet128_baby with batch 1024, 1M steps."""
    return dataclasses.replace(imagenet128_baby(), batch_size=1024, steps=1_000_000)


CONFIGS = {"quick": quick, "digits32": digits32, "digits32_cpu": digits32_cpu, "cifar10": cifar10,
           "imagenet128_baby": imagenet128_baby, "imagenet128_strong": imagenet128_strong}


def get_config(name: str = "quick", **overrides) -> GANConfig:
    """A named config with field overrides, e.g. get_config("quick", block="attention", steps=200)."""
    return named_config(CONFIGS, name, **overrides)


def build_models(cfg: GANConfig):
    """(G, D) for a config."""
    g_kw = dict(ham=cfg.ham, d=cfg.g_ham_d, rank=cfg.g_ham_rank, steps=cfg.ham_steps, grad=cfg.ham_grad)
    d_kw = dict(g_kw, d=cfg.d_ham_d, rank=cfg.d_ham_rank)
    if cfg.block != "ham":
        g_kw = d_kw = {}
    G = Generator(cfg.num_classes, cfg.z_dim, cfg.g_channels, cfg.img_channels, cfg.block, cfg.g_block_res, **g_kw)
    if G.resolution != cfg.resolution:
        raise ValueError(f"g_channels {cfg.g_channels} make {G.resolution} px images, config says {cfg.resolution}")
    D = Discriminator(cfg.num_classes, cfg.resolution, cfg.d_channels, cfg.img_channels, cfg.block,
                      cfg.d_block_res, **d_kw)
    return G, D


def build_optimizers(G, D, cfg: GANConfig):
    """(Adam for G, Adam for D): the config's learning rates and betas."""
    betas = (cfg.beta1, cfg.beta2)
    return (torch.optim.Adam(G.parameters(), cfg.lr_g, betas=betas),
            torch.optim.Adam(D.parameters(), cfg.lr_d, betas=betas))


def train_step(Gm, Dm, opt_g, opt_d, scaler_g, scaler_d, x_real, y_real, z_dim: int, num_classes: int,
               amp: bool = False):
    """One D step, then one G step, on a batch of real images x_real (B, C, R, R) with labels
    y_real (B,): D's hinge loss on real and fresh fake images in one forward (DDP-friendly), G's
    hinge loss on other fresh samples; autocast when amp, backward through the gradient scalers.
    Noise and fake labels are drawn from the global RNG on x_real's device. Returns (loss_d,
    loss_g), 0-d and detached. The EMA update of G is the caller's (`ema_update`)."""
    B, device = x_real.shape[0], x_real.device
    z = torch.randn(B, z_dim, device=device)
    y_fake = torch.randint(num_classes, (B,), device=device)
    with torch.autocast(device.type, enabled=amp):
        with torch.no_grad():
            x_fake = Gm(z, y_fake)
        scores = Dm(torch.cat([x_real, x_fake.to(x_real.dtype)]), torch.cat([y_real, y_fake]))
        loss_d = d_hinge_loss(*scores.float().chunk(2))
    opt_d.zero_grad(set_to_none=True)
    scaler_d.scale(loss_d).backward()
    scaler_d.step(opt_d)
    scaler_d.update()
    z = torch.randn(B, z_dim, device=device)
    y_fake = torch.randint(num_classes, (B,), device=device)
    with torch.autocast(device.type, enabled=amp):
        loss_g = g_hinge_loss(Dm(Gm(z, y_fake), y_fake).float())
    opt_g.zero_grad(set_to_none=True)
    scaler_g.scale(loss_g).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    return loss_d.detach(), loss_g.detach()


# fields a resumed run may change without --allow-change: where and how it runs, and how long (the
# schedule does not depend on steps); not what each step computes
RESUME_FREE = ("resume", "stop_after", "steps", "log_every", "ckpt_every", "eval_every", "progress", "workers",
               "device", "compile", "out_dir", "allow_change")


def train(cfg: GANConfig, dataset=None, extractor=None, real_stats=None) -> dict:
    """Train (or resume) G and D. Returns {"G", "D", "G_ema", "history", "step", "seconds",
    "seconds_per_step"}: history holds one {"step", "fid", "is", "seconds"} per evaluation,
    seconds the training steps' wall-clock total (a resumed run's included), seconds_per_step
    this call's own average.

    dataset: defaults to the config's data. extractor + real_stats (mu, Sigma of real
    features): FID and IS of the EMA generator every eval_every steps (and at step 0).
    Under torchrun every process trains on its share of each batch; rank 0 evaluates,
    logs and writes checkpoints. Every check (config, device, checkpoint, labels' range) runs
    before the first step; an evaluation on a checkpoint step comes after a checkpoint, so a
    failing evaluation loses no training (a resumed run evaluates first).
    """
    cfg.validate()
    rank, world, device = setup_distributed(pick_device(cfg.device) if cfg.device else None)
    main = is_main_process()
    seed_everything(cfg.seed)
    if dataset is None:
        dataset = dataset_from_config(cfg.data, cfg.data_root, cfg.resolution)
    G, D = build_models(cfg)
    G, D = G.to(device), D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g, opt_d = build_optimizers(G, D, cfg)
    use_amp = cfg.amp and device.type == "cuda"
    scaler_g = torch.amp.GradScaler(device.type, enabled=use_amp)
    scaler_d = torch.amp.GradScaler(device.type, enabled=use_amp)

    start, history, seconds, pending = 0, [], 0.0, None
    ckpt = Path(cfg.out_dir) / "last.pt" if cfg.out_dir else None
    if main and ckpt is not None:
        temporary(ckpt).unlink(missing_ok=True)   # left by a process killed while writing
    resumed = cfg.resume and ckpt is not None and ckpt.is_file()
    if resumed:
        state = load_checkpoint(ckpt, map_location=device)   # also restores the RNG states
        check_resume(state, cfg, ckpt, RESUME_FREE)
        for obj, key in ((G, "G"), (D, "D"), (G_ema, "G_ema"), (opt_g, "opt_g"), (opt_d, "opt_d"),
                         (scaler_g, "scaler_g"), (scaler_d, "scaler_d")):
            obj.load_state_dict(state[key])
        start, history, seconds = state["step"], state["history"], state["seconds"]
        pending = state.get("pending")                 # the step's evaluation and log row still to do
        log.info("resumed from %s at step %d", ckpt, start)
    logger = None
    if main and ckpt is not None:
        logger = CSVLogger(ckpt.parent / "log.csv", ["step", "loss_d", "loss_g", "fid", "is", "seconds"],
                           resume_step=(start - 1 if pending else start) if resumed else None)

    Gm, Dm = (DDP(G), DDP(D)) if world > 1 else (G, D)
    if cfg.compile:                                  # trains; EMA, evaluation and checkpoints use G, D
        Gm, Dm = torch.compile(Gm), torch.compile(Dm)
    stop = cfg.steps if cfg.stop_after is None else max(start, min(cfg.steps, cfg.stop_after))
    sampler = StepBatches(len(dataset), cfg.batch_size, cfg.seed, start=start, stop=stop, rank=rank, world=world)
    # its own generator: a DataLoader otherwise draws a worker seed from the global RNG, which
    # would shift every later random draw of a resumed run
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.workers,
                        generator=torch.Generator().manual_seed(cfg.seed + start))

    def evaluate(at):
        if extractor is None or not main:
            return {}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            m = fid_and_is(G_ema, extractor, real_stats, cfg.eval_samples, cfg.num_classes, device=device)
        history.append({"step": at, **m, "seconds": clock.seconds})
        return m

    def checkpoint(step, pending=None):
        if main and ckpt is not None:
            save_checkpoint(ckpt, G=G.state_dict(), D=D.state_dict(), G_ema=G_ema.state_dict(),
                            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), scaler_g=scaler_g.state_dict(),
                            scaler_d=scaler_d.state_dict(), step=step, history=history, seconds=clock.seconds,
                            config=dataclasses.asdict(cfg), pending=pending)

    def finish(done, make_row):
        """Step `done`'s bookkeeping: evaluation when due, the log row (make_row(), called only
        when needed: it reads the losses off the device), the checkpoint when due."""
        evaluated = bool(cfg.eval_every) and (done % cfg.eval_every == 0 or done == cfg.steps)
        due = (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == stop
        if evaluated and due:
            checkpoint(done, pending=make_row())  # the trained weights are safe before the evaluation
        m = evaluate(done) if evaluated else {}
        if main and (m or done % cfg.log_every == 0 or done == stop):
            row = make_row()
            bar.set_postfix(loss_d=row["loss_d"], loss_g=row["loss_g"], refresh=False)
            if logger is not None:
                logger.log(**row, fid=m.get("fid", ""), **{"is": m.get("is", "")})
        if due:
            checkpoint(done)

    clock, done = StepClock(seconds), start
    if start == 0 and cfg.eval_every:
        evaluate(0)
    bar = progress_bar(start, stop, main and cfg.progress)
    if pending:
        finish(start, lambda: pending)
    for step, (x_real, y_real) in enumerate(loader, start=start):
        if y_real.min() < 0 or y_real.max() >= cfg.num_classes:           # on the host: no device sync
            bad = y_real[(y_real < 0) | (y_real >= cfg.num_classes)][0]
            raise ValueError(f"step {step + 1}: the training batch holds label {int(bad)}, but num_classes="
                             f"{cfg.num_classes} (labels must be 0..{cfg.num_classes - 1})")
        with clock.step():
            x_real, y_real = x_real.to(device, non_blocking=True), y_real.to(device, non_blocking=True)
            loss_d, loss_g = train_step(Gm, Dm, opt_g, opt_d, scaler_g, scaler_d, x_real, y_real, cfg.z_dim,
                                        cfg.num_classes, use_amp)
            ema_update(G_ema, G, cfg.ema_decay if step >= cfg.ema_start else 0.0)
        done = step + 1
        finish(done, lambda: dict(step=done, loss_d=f"{loss_d.item():.4f}", loss_g=f"{loss_g.item():.4f}",
                                  seconds=round(clock.seconds, 3)))
        bar.update(1)
    bar.close()
    cleanup_distributed()
    return {"G": G, "D": D, "G_ema": G_ema, "history": history, "step": done, "seconds": clock.seconds,
            "seconds_per_step": clock.seconds_per_step}


def main(argv=None):
    p = config_parser("python -m hamlib.gan.train", __doc__.split("\n\n")[0], CONFIGS)
    p.add_argument("--no-eval", action="store_true", help="skip FID/IS (digits: trains a small classifier first)")
    p.add_argument("--inception", default=None, help="local torchvision-layout Inception-v3 weights for FID/IS")
    args = p.parse_args(argv)
    cfg = config_from_args(CONFIGS[args.config], args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    extractor = real_stats = dataset = None
    if cfg.eval_every and not args.no_eval and (args.inception or cfg.data == "digits"):
        from .metrics import extract, feature_stats, train_classifier
        dataset = dataset_from_config(cfg.data, cfg.data_root, cfg.resolution)
        if args.inception:  # real statistics from eval_samples images spread over the data set
            from .inception import inception_v3
            extractor = inception_v3(args.inception)
            idx = torch.linspace(0, len(dataset) - 1, min(cfg.eval_samples, len(dataset))).long().tolist()
            real = torch.stack([dataset[i][0] for i in idx])
        else:          # digits: a small classifier trained on the same data
            extractor = train_classifier(dataset, cfg.num_classes, seed=cfg.seed)
            real = dataset.tensors[0]
        real_stats = feature_stats(extract(extractor, real)[0].numpy())
    out = train(cfg, dataset=dataset, extractor=extractor, real_stats=real_stats)
    if is_main_process():
        for row in out["history"]:
            log.info("step %d  FID %.3f  IS %.3f", row["step"], row["fid"], row["is"])
        log.info("step %d, %.3f s/step; checkpoint in %s", out["step"], out["seconds_per_step"], cfg.out_dir)
    return out


if __name__ == "__main__":
    main()
