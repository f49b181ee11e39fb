"""Train HamGAN: hinge loss, Adam(beta1 = 0), EMA generator, AMP on CUDA, checkpoints, DDP.

    python -m hamlib.gan.train --config quick --set out_dir=runs/ham          # CPU, offline digits
    python -m hamlib.gan.train --config quick --set out_dir=runs/ham --resume # continue from runs/ham/last.pt
    python -m hamlib.gan.train --config quick --set block=sa --set steps=2000 --set out_dir=runs/sa
    python -m hamlib.gan.train --config cifar10 --set data_root=/data/cifar-10-batches-py --compile
    torchrun --nproc_per_node 8 -m hamlib.gan.train --config imagenet128_baby --set data_root=/data/imagenet/train

A run writes <out_dir>/last.pt (every ckpt_every steps and when it stops) and <out_dir>/log.csv;
with --resume it continues from last.pt and ends where an uninterrupted run would. The idiom
(configs, --set, checkpoint, resume, stop_after, timing) is HamNet's too: see hamlib/train.py.
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

from ..runtime import (CSVLogger, StepBatches, StepClock, cleanup_distributed, config_from_args, config_parser,
                     is_main_process, load_checkpoint, named_config, pick_device, progress_bar, save_checkpoint,
                     seed_everything, setup_distributed)
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
    block: str = "ham"                  # "ham", "sa" or "none"
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


# ---------------------------------------------------------------------------
# Named configs
# ---------------------------------------------------------------------------

def quick() -> GANConfig:
    """CPU, offline: scikit-learn digits at 16 x 16, recognisable digits per class in a few minutes.
    Twice the reference learning rates (same G:D ratio): at the reference rates the labels
    were not yet used within this budget (README, "Image generation")."""
    return GANConfig(steps=1000, lr_g=2e-4, lr_d=8e-4, ema_decay=0.99, ema_start=100, eval_every=250,
                     eval_samples=500)


def digits32() -> GANConfig:
    """The notebook's GPU setting: digits at 32 x 32, wider networks, block at 16 x 16, longer."""
    return GANConfig(resolution=32, z_dim=128, g_channels=(128, 128, 128, 64), d_channels=(64, 128, 128),
                     g_block_res=16, d_block_res=16, g_ham_rank=16, d_ham_rank=16, batch_size=64, steps=5000,
                     ema_decay=0.999, ema_start=500, eval_every=1000, eval_samples=2000)


def digits32_cpu() -> GANConfig:
    """digits32's architecture (32 x 32, block at 16 x 16 in both networks) narrowed for one CPU
    thread (digits32 takes about 1.9 s per step there): 0.19 s (Hamburger) to 0.27 s (attention)
    per step on one thread of a 2-core machine beside two other training processes, about 10
    minutes per model. The shipped checkpoints (hamlib.experiments.gan_checkpoints) took longer
    because more jobs shared that machine (their manifest records the wall times). The quick
    config's doubled learning rates and short EMA, for 2000 steps."""
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
    """A named config with field overrides, e.g. get_config("quick", block="sa", steps=200)."""
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


def train(cfg: GANConfig, dataset=None, extractor=None, real_stats=None) -> dict:
    """Train (or resume) G and D. Returns {"G", "D", "G_ema", "history", "step", "seconds",
    "seconds_per_step"}: history holds one {"step", "fid", "is", "seconds"} per evaluation,
    seconds the training steps' wall-clock total (a resumed run's included), seconds_per_step
    this call's own average.

    dataset: defaults to the config's data. extractor + real_stats (mu, Sigma of real
    features): FID and IS of the EMA generator every eval_every steps (and at step 0).
    Under torchrun every process trains on its share of each batch; rank 0 evaluates,
    logs and writes checkpoints.
    """
    rank, world, device = setup_distributed(pick_device(cfg.device) if cfg.device else None)
    main = is_main_process()
    seed_everything(cfg.seed)
    if dataset is None:
        dataset = dataset_from_config(cfg.data, cfg.data_root, cfg.resolution)
    G, D = build_models(cfg)
    G, D = G.to(device), D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=betas)
    use_amp = cfg.amp and device.type == "cuda"
    scaler_g = torch.amp.GradScaler(device.type, enabled=use_amp)
    scaler_d = torch.amp.GradScaler(device.type, enabled=use_amp)

    start, history, seconds = 0, [], 0.0
    ckpt = Path(cfg.out_dir) / "last.pt" if cfg.out_dir else None
    if cfg.resume and ckpt is not None and ckpt.is_file():
        state = load_checkpoint(ckpt, map_location=device)   # also restores the RNG states
        for obj, key in ((G, "G"), (D, "D"), (G_ema, "G_ema"), (opt_g, "opt_g"), (opt_d, "opt_d"),
                         (scaler_g, "scaler_g"), (scaler_d, "scaler_d")):
            obj.load_state_dict(state[key])
        start, history, seconds = state["step"], state["history"], state["seconds"]
        log.info("resumed from %s at step %d", ckpt, start)
    logger = None
    if main and ckpt is not None:
        logger = CSVLogger(ckpt.parent / "log.csv", ["step", "loss_d", "loss_g", "fid", "is", "seconds"],
                           resume_step=start)

    Gm, Dm = (DDP(G), DDP(D)) if world > 1 else (G, D)
    if cfg.compile:                                  # trains; EMA, evaluation and checkpoints use G, D
        Gm, Dm = torch.compile(Gm), torch.compile(Dm)
    stop = cfg.steps if cfg.stop_after is None else min(cfg.steps, cfg.stop_after)
    sampler = StepBatches(len(dataset), cfg.batch_size, cfg.seed, start=start, stop=stop, rank=rank, world=world)
    # its own generator: a DataLoader otherwise draws a worker seed from the global RNG, which
    # would shift every later random draw of a resumed run
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.workers,
                        generator=torch.Generator().manual_seed(cfg.seed + start))
    B = cfg.batch_size // world

    def evaluate(at):
        if extractor is None or not main:
            return {}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            m = fid_and_is(G_ema, extractor, real_stats, cfg.eval_samples, cfg.num_classes, device=device)
        history.append({"step": at, **m, "seconds": clock.seconds})
        return m

    def checkpoint(step):
        if main and ckpt is not None:
            save_checkpoint(ckpt, G=G.state_dict(), D=D.state_dict(), G_ema=G_ema.state_dict(),
                            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), scaler_g=scaler_g.state_dict(),
                            scaler_d=scaler_d.state_dict(), step=step, history=history, seconds=clock.seconds,
                            config=dataclasses.asdict(cfg))

    clock, done = StepClock(seconds), start
    if start == 0 and cfg.eval_every:
        evaluate(0)
    bar = progress_bar(start, stop, main and cfg.progress)
    for step, (x_real, y_real) in enumerate(loader, start=start):
        with clock.step():
            x_real, y_real = x_real.to(device, non_blocking=True), y_real.to(device, non_blocking=True)
            # --- D step: hinge loss on real and fake images, one forward for both (DDP-friendly) ---
            z = torch.randn(B, cfg.z_dim, device=device)
            y_fake = torch.randint(cfg.num_classes, (B,), device=device)
            with torch.autocast(device.type, enabled=use_amp):
                with torch.no_grad():
                    x_fake = Gm(z, y_fake)
                scores = Dm(torch.cat([x_real, x_fake.to(x_real.dtype)]), torch.cat([y_real, y_fake]))
                loss_d = d_hinge_loss(*scores.float().chunk(2))
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(loss_d).backward()
            scaler_d.step(opt_d)
            scaler_d.update()
            # --- G step: fool D on fresh samples ---
            z = torch.randn(B, cfg.z_dim, device=device)
            y_fake = torch.randint(cfg.num_classes, (B,), device=device)
            with torch.autocast(device.type, enabled=use_amp):
                loss_g = g_hinge_loss(Dm(Gm(z, y_fake), y_fake).float())
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()
            ema_update(G_ema, G, cfg.ema_decay if step >= cfg.ema_start else 0.0)
        done = step + 1
        m = evaluate(done) if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps) else {}
        if main and (m or done % cfg.log_every == 0 or done == stop):
            bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}", refresh=False)
            if logger is not None:
                logger.log(step=done, loss_d=f"{loss_d.item():.4f}", loss_g=f"{loss_g.item():.4f}",
                           fid=m.get("fid", ""), seconds=round(clock.seconds, 3), **{"is": m.get("is", "")})
        bar.update(1)
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == stop:
            checkpoint(done)
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
