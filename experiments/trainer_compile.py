"""What `--compile` buys the trainers: one training step of each quick config, eager vs
`torch.compile`, timed side by side.

    python -m experiments.trainer_compile seg      # HamNet's quick config
    python -m experiments.trainer_compile gan      # HamGAN's quick config (G and D)

The step timed is the trainers' own: `hamlib.seg.train.train_step` (and its optimiser,
`build_optimizer`) and `hamlib.gan.train.train_step` followed by `ema_update` (optimisers from
`build_optimizers`), called on the plain modules (eager) and on `torch.compile` of the same
modules, as the trainers do with `--compile`; so eager and compiled steps train the same
weights in turn, on one fixed batch of the config's data. AMP and its gradient scaler are the
trainers' on the device they pick (enabled on CUDA only). After the first compiled step (the
compile itself, reported apart) and `warmup` untimed rounds, `rounds` rounds each time one
eager and one compiled step (`hamlib.measure.interleaved_times`), one CPU thread by default;
the ratio of the medians is the speed-up.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from hamlib.measure import interleaved_times
from hamlib.runtime import pick_device


def seg_step(backend="inductor", device=None):
    """(eager step, compiled step) of HamNet's quick config on one fixed batch."""
    from hamlib.seg.model import build_model
    from hamlib.seg.train import build_datasets, build_optimizer, get_config, train_step

    cfg = get_config("quick")
    device = device or pick_device()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device).train()
    opt = build_optimizer(model, cfg)
    amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    train_set, _ = build_datasets(cfg)
    x, y = train_set.images[:cfg.batch_size].to(device), train_set.labels[:cfg.batch_size].to(device)
    compiled = torch.compile(model, backend=backend)
    return ((lambda: train_step(model, opt, scaler, x, y, cfg.lr, amp)),
            (lambda: train_step(compiled, opt, scaler, x, y, cfg.lr, amp)))


def gan_step(backend="inductor", device=None):
    """(eager step, compiled step) of HamGAN's quick config: one D step, one G step, the EMA update."""
    from hamlib.gan.data import digits
    from hamlib.gan.model import ema_update
    from hamlib.gan.train import build_models, build_optimizers, get_config, train_step

    cfg = get_config("quick")
    device = device or pick_device()
    torch.manual_seed(cfg.seed)
    G, D = (m.to(device) for m in build_models(cfg))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g, opt_d = build_optimizers(G, D, cfg)
    amp = cfg.amp and device.type == "cuda"
    scalers = [torch.amp.GradScaler(device.type, enabled=amp) for _ in range(2)]
    x, y = digits(cfg.resolution).tensors
    xr, yr = x[:cfg.batch_size].to(device), y[:cfg.batch_size].to(device)
    cG, cD = torch.compile(G, backend=backend), torch.compile(D, backend=backend)

    def step(Gm, Dm):
        train_step(Gm, Dm, opt_g, opt_d, *scalers, xr, yr, cfg.z_dim, cfg.num_classes, amp)
        ema_update(G_ema, G, cfg.ema_decay)

    return (lambda: step(G, D)), (lambda: step(cG, cD))


def compare(kind="seg", rounds=60, warmup=20, backend="inductor", device=None) -> dict:
    """dict(compile_s, eager_ms, compiled_ms, speedup) for `kind` ("seg" or "gan")."""
    if kind not in ("seg", "gan"):
        raise ValueError(f"kind must be 'seg' or 'gan', got {kind!r}")
    device = device or pick_device()
    eager, compiled = (seg_step if kind == "seg" else gan_step)(backend, device)
    t0 = time.perf_counter()
    compiled()
    compile_s = time.perf_counter() - t0
    times = interleaved_times({"eager": eager, "compiled": compiled}, rounds=rounds, warmup=warmup, device=device)
    e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
    return dict(compile_s=compile_s, eager_ms=e, compiled_ms=c, speedup=e / c)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.trainer_compile", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("seg", "gan"))
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default=None, help="default: CUDA if present, else CPU")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    r = compare(args.kind, args.rounds, args.warmup, device=device)
    print(f"{args.kind} quick config on {device}, {args.threads} thread(s): first compiled step "
          f"{r['compile_s']:.0f} s; eager {r['eager_ms']:.1f} ms/step, compiled {r['compiled_ms']:.1f} ms/step, "
          f"eager / compiled {r['speedup']:.2f} (medians of {args.rounds} interleaved rounds)")


if __name__ == "__main__":
    main()
