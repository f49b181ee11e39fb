"""What both trainers (HamNet, HamGAN) and the notebooks share.

- `pick_device()`: the device, chosen once (CUDA if present, else CPU).
- `full_scale()`: the one switch between quick (CPU) and full (GPU) settings.
- `seed_everything(seed)`: Python, NumPy and torch RNGs.
- `save_checkpoint` / `load_checkpoint`: atomic writes, RNG states included, so a
  resumed run continues where an uninterrupted one would.
- `setup_distributed` / `cleanup_distributed`: torchrun's environment -> process group.
- `StepBatches`: the batch order as a pure function of (seed, step), sharded over DDP ranks,
  so a resumed run sees the batches an uninterrupted one would.
- `CSVLogger`: one row per logged step, append-safe across resumes.
- `StepClock`, `progress_bar`: wall-clock seconds of the training steps, a tqdm bar.
- The command line both trainers share: `config_parser` (`--config NAME`, `--set KEY=VALUE`,
  `--resume`, `--compile`), `config_from_args`, and `named_config` / `override` for Python.

The trainers follow one idiom: a config is a dataclass, a named config a function returning
one; `out_dir/last.pt` is the checkpoint, written every `ckpt_every` steps and when the run
stops; `resume=True` (`--resume`) continues from it if it exists; `stop_after` ends a run early
(a time-sliced job), with a checkpoint; `log_every` sets the CSV log's cadence; times are
wall-clock seconds (`time.perf_counter`) of the training steps, evaluation excluded;
`compile=True` (`--compile`) trains through `torch.compile` and checkpoints the plain modules.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

FULL_ENV = "HAMLIB_FULL"


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if available (or `prefer`, e.g. "cpu"), else CPU. Never hard-codes a GPU."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def full_scale() -> bool:
    """The single switch between quick and full settings for notebooks and configs.

    HAMLIB_FULL=1 forces full scale, HAMLIB_FULL=0 forces quick; unset, it is
    full scale exactly when a CUDA device is present.
    """
    v = os.environ.get(FULL_ENV)
    if v is not None:
        if v not in ("0", "1"):
            raise ValueError(f"{FULL_ENV} must be 0 or 1, got {v!r}")
        return v == "1"
    return torch.cuda.is_available()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())  # RNG states are CPU byte tensors, even when the
    if "cuda" in state and torch.cuda.is_available():  # checkpoint was loaded onto a GPU
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path, **state) -> Path:
    """torch.save(state + RNG states) to `path` atomically (write a temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({**state, "rng": rng_state()}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, map_location="cpu", restore_rng=True) -> dict:
    """Load a checkpoint written by `save_checkpoint`; restores the RNG states by default."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or foreign file
        raise ValueError(f"{path} is not a readable hamlib checkpoint: {e}") from e
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a hamlib checkpoint (got {type(state).__name__})")
    if restore_rng and "rng" in state:
        set_rng_state(state["rng"])
    return state


def setup_distributed(device: torch.device | None = None):
    """Initialise the process group from torchrun's variables. Returns (rank, world_size, device).

    Without torchrun (no WORLD_SIZE) it is a single process: (0, 1, device).
    Uses NCCL on CUDA and gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device or pick_device()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class StepBatches(torch.utils.data.Sampler):
    """Index batches for steps start, start + 1, ... (endless when stop is None).

    Epoch e is a permutation drawn from seed + e; step s takes the s-th batch of the
    epochs' concatenation (an epoch's last incomplete batch is dropped). With world > 1,
    rank r gets every world-th index of the global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, start: int = 0, stop: int | None = None,
                 rank: int = 0, world: int = 1):
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the data set ({n} items)")
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} is not divisible by the {world} processes")
        self.n, self.B, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.rank, self.world = rank, world
        self.per_epoch = n // batch_size

    def global_batch(self, step: int) -> list[int]:
        """The indices of every process's share of step `step`."""
        epoch, k = divmod(step, self.per_epoch)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        return perm[k * self.B:(k + 1) * self.B].tolist()

    def batch(self, step: int) -> list:
        """This process's share of step `step`."""
        return self.global_batch(step)[self.rank::self.world]

    def __iter__(self):
        step = self.start
        while self.stop is None or step < self.stop:
            yield self.batch(step)
            step += 1

    def __len__(self):
        if self.stop is None:
            raise TypeError("an endless StepBatches has no length")
        return max(0, self.stop - self.start)


class CSVLogger:
    """Append rows of scalars to a CSV file; resuming keeps earlier rows up to `step`."""

    def __init__(self, path, fields, resume_step: int | None = None):
        self.path, self.fields = Path(path), list(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            w.writeheader()
            w.writerows(rows)

    def log(self, **row):
        missing = set(self.fields) - set(row)
        if missing:
            raise ValueError(f"CSVLogger row lacks {sorted(missing)}")
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields).writerow({k: row[k] for k in self.fields})

    def read(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


class StepClock:
    """Wall-clock seconds (time.perf_counter) spent in training steps.

    `seconds` starts from a resumed run's total and so counts the whole run; `seconds_per_step`
    covers the steps timed by this object only (a resumed run's own speed).
    """

    def __init__(self, seconds: float = 0.0):
        self.seconds, self.steps, self._own = float(seconds), 0, 0.0

    @contextlib.contextmanager
    def step(self):
        tic = time.perf_counter()
        yield
        dt = time.perf_counter() - tic
        self.seconds, self._own, self.steps = self.seconds + dt, self._own + dt, self.steps + 1

    @property
    def seconds_per_step(self) -> float:
        return self._own / self.steps if self.steps else float("nan")


def progress_bar(start: int, stop: int, enabled: bool = True, desc: str = "train") -> tqdm:
    """A tqdm bar over steps start..stop; off unless `enabled`, and off when TQDM_DISABLE=1 (tests, CI)."""
    off = not enabled or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    return tqdm(total=stop, initial=start, desc=desc, disable=off)


# ---------------------------------------------------------------------------
# Configs from Python and from the command line
# ---------------------------------------------------------------------------

def override(cfg, key: str, value):
    """Set a dotted key (e.g. "model.head.ham.grad") on nested dataclasses/dicts; returns cfg."""
    *path, last = key.split(".")
    obj = cfg
    for name in path:
        if isinstance(obj, dict) and name in obj:
            obj = obj[name]
        elif not isinstance(obj, dict) and hasattr(obj, name):
            obj = getattr(obj, name)
        else:
            raise ValueError(f"unknown config key {key!r}: {type(obj).__name__} has no field {name!r}")
    if isinstance(obj, dict):
        obj[last] = value                           # free-form keyword dicts, e.g. model.head.ham
    elif not hasattr(obj, last):
        raise ValueError(f"unknown config key {key!r}: {type(obj).__name__} has no field {last!r}")
    else:
        setattr(obj, last, value)
    return cfg


def named_config(configs: dict, name: str, **overrides):
    """configs[name]() with field overrides, e.g. named_config(CONFIGS, "quick", steps=200)."""
    if name not in configs:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(configs)}")
    cfg = configs[name]()
    for key, value in overrides.items():
        override(cfg, key, value)
    return cfg


def parse_override(text: str) -> tuple:
    """"KEY=VALUE" -> (KEY, VALUE): the value as a Python literal (ast.literal_eval), else the string."""
    if "=" not in text:
        raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass                                        # a plain string: --set data_root=/data/voc
    return key.strip(), value


def config_parser(prog: str, doc: str, names) -> argparse.ArgumentParser:
    """The trainers' shared command line: --config NAME, --set KEY=VALUE ..., --resume, --compile."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="quick", choices=sorted(names))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (dotted for nested ones), e.g. steps=100; "
                        "the value is a Python literal or else a string")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/last.pt if it exists")
    p.add_argument("--compile", action="store_true", help="train through torch.compile")
    return p


def config_from_args(make, args: argparse.Namespace):
    """make() with the parsed --set overrides, --resume and --compile applied."""
    cfg = make()
    for text in args.set:
        override(cfg, *parse_override(text))
    if args.resume:
        cfg.resume = True
    if args.compile:
        cfg.compile = True
    return cfg
