"""What `--compile` buys the trainers: one training step of each quick config, eager vs
`torch.compile`, timed side by side (issue 13's step-time ratio).

    python -m hamlib.experiments.trainer_compile seg      # HamNet's quick config
    python -m hamlib.experiments.trainer_compile gan      # HamGAN's quick config (G and D)

One model and optimiser per run; the compiled callables wrap the same modules, so eager and
compiled steps train the same weights in turn. After the first compiled step (the compile
itself, reported apart) and `warmup` untimed rounds, `rounds` rounds each time one eager and
one compiled step (`hamlib.measure.interleaved_times`), one CPU thread by default; the ratio
of the medians is the speed-up.

The steps are the trainers' CPU steps written out (the same models, losses, optimisers and
EMA; AMP and its gradient scaler run on CUDA only, so they are absent here as in the trainers
on a CPU); on a GPU this comparison would leave AMP out and so differ from the trainers.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from hamlib.measure import interleaved_times


def seg_step(backend="inductor"):
    """(eager step, compiled step) of HamNet's quick config on one fixed batch."""
    from hamlib.seg.model import build_model
    from hamlib.seg.train import build_datasets, get_config, param_groups

    cfg = get_config("quick")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).train()
    opt = torch.optim.SGD(param_groups(model, cfg.lr, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum)
    train_set, _ = build_datasets(cfg)
    x, y = train_set.images[:cfg.batch_size], train_set.labels[:cfg.batch_size]
    compiled = torch.compile(model, backend=backend)

    def step(net):
        loss = F.cross_entropy(net(x), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return (lambda: step(model)), (lambda: step(compiled))


def gan_step(backend="inductor"):
    """(eager step, compiled step) of HamGAN's quick config: one D step and one G step."""
    from hamlib.gan.data import digits
    from hamlib.gan.model import d_hinge_loss, ema_update, g_hinge_loss
    from hamlib.gan.train import build_models, get_config

    cfg = get_config("quick")
    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    x, y = digits(cfg.resolution).tensors
    xr, yr, B = x[:cfg.batch_size], y[:cfg.batch_size], cfg.batch_size
    cG, cD = torch.compile(G, backend=backend), torch.compile(D, backend=backend)

    def step(Gm, Dm):
        z, yf = torch.randn(B, cfg.z_dim), torch.randint(cfg.num_classes, (B,))
        with torch.no_grad():
            xf = Gm(z, yf)
        loss_d = d_hinge_loss(*Dm(torch.cat([xr, xf]), torch.cat([yr, yf])).chunk(2))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        z, yf = torch.randn(B, cfg.z_dim), torch.randint(cfg.num_classes, (B,))
        loss_g = g_hinge_loss(Dm(Gm(z, yf), yf))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema_update(G_ema, G, cfg.ema_decay)

    return (lambda: step(G, D)), (lambda: step(cG, cD))


def compare(kind="seg", rounds=60, warmup=20, backend="inductor") -> dict:
    """dict(compile_s, eager_ms, compiled_ms, speedup) for `kind` ("seg" or "gan")."""
    if kind not in ("seg", "gan"):
        raise ValueError(f"kind must be 'seg' or 'gan', got {kind!r}")
    eager, compiled = (seg_step if kind == "seg" else gan_step)(backend)
    t0 = time.perf_counter()
    compiled()
    compile_s = time.perf_counter() - t0
    times = interleaved_times({"eager": eager, "compiled": compiled}, rounds=rounds, warmup=warmup)
    e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
    return dict(compile_s=compile_s, eager_ms=e, compiled_ms=c, speedup=e / c)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hamlib.experiments.trainer_compile", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("seg", "gan"))
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    r = compare(args.kind, args.rounds, args.warmup)
    print(f"{args.kind} quick config, {args.threads} thread(s): first compiled step {r['compile_s']:.0f} s; "
          f"eager {r['eager_ms']:.1f} ms/step, compiled {r['compiled_ms']:.1f} ms/step, "
          f"eager / compiled {r['speedup']:.2f} (medians of {args.rounds} interleaved rounds)")


if __name__ == "__main__":
    main()
