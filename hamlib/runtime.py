"""What both trainers (HamNet, HamGAN) and the notebooks share.

- `pick_device()`: the device, chosen once (CUDA if present, else CPU).
- `full_scale()`: the one switch between quick (CPU) and full (GPU) settings.
- `seed_everything(seed)`: Python, NumPy and torch RNGs.
- `save_checkpoint` / `load_checkpoint`: atomic writes (`atomic_file`), RNG states included, so
  a resumed run continues where an uninterrupted one would; loading reads tensors and plain
  values only (`weights_only=True`) and refuses anything else.
- `setup_distributed` / `cleanup_distributed`: torchrun's environment -> process group.
- `StepBatches`: the batch order as a pure function of (seed, step), sharded over DDP ranks,
  so a resumed run sees the batches an uninterrupted one would.
- `CSVLogger`: one row per logged step, appended; resuming drops the rows after the checkpoint.
- `StepClock`, `progress_bar`: wall-clock seconds of the training steps, a tqdm bar.
- The command line both trainers share: `config_parser` (`--config NAME`, `--set KEY=VALUE`,
  `--resume`, `--allow-change FIELD`, `--compile`), `config_from_args`, and `named_config` /
  `override` for Python.
- Config checks: `check_fields` with one rule per field (`integer`, `number`, `flag`, `one_of`,
  `text`, `sequence`, `device_name`); `check_resume`: a checkpoint resumes only the run that wrote it.

The trainers follow one idiom: a config is a dataclass whose `validate()` (run at construction,
after overrides and when a run starts) checks every field; a named config is a function
returning one; `out_dir/last.pt` is the checkpoint, written every `ckpt_every` steps and when
the run stops; `resume=True` (`--resume`) continues from it if it exists, with the same config
(`allow_change` names fields that may differ); `stop_after` ends a run early (a time-sliced
job), with a checkpoint; `log_every` sets the CSV log's cadence; times are wall-clock seconds
(`time.perf_counter`) of the training steps, evaluation excluded; `compile=True` (`--compile`)
trains through `torch.compile` and checkpoints the plain modules. Every file a run writes
survives the process being killed at any moment: a resumed run ends with the log and weights
of an uninterrupted one.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import dataclasses
import logging
import math
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

FULL_ENV = "HAMLIB_FULL"


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if available (or `prefer`, e.g. "cpu"), else CPU. Never hard-codes a GPU.
    A `prefer`red CUDA device that this machine lacks is a ValueError naming it."""
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device={prefer!r}, but this machine has {torch.cuda.device_count()} CUDA device(s) "
                         "(torch.cuda.is_available() is False); use device=None (CUDA if present, else CPU) or 'cpu'")
    return device


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
    """Python's, NumPy's and torch's RNG states as tensors and plain values (what
    `torch.load(..., weights_only=True)` reads back)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((kind, keys.astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"].cpu())  # RNG states are CPU byte tensors, even when the
    if "cuda" in state and torch.cuda.is_available():  # checkpoint was loaded onto a GPU
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def temporary(path) -> Path:
    """The temporary file `atomic_file` writes before it replaces `path`."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", **open_kw):
    """Open a temporary beside `path` for writing; on success flush it to disk and rename it
    over `path`, so a reader (or a process killed at any moment) finds the old file or the new
    one, never a part. A failed write removes the temporary; one left by a killed process is
    overwritten by the next write to `path`."""
    path, tmp = Path(path), temporary(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path, **state) -> Path:
    """torch.save(state + RNG states) to `path` atomically (see `atomic_file`). The state must
    be tensors and plain Python values (dicts, lists, tuples, numbers, strings, None), the
    only things `load_checkpoint` accepts."""
    path = Path(path)
    with atomic_file(path) as f:
        torch.save({**state, "rng": rng_state()}, f)
    return path


def load_checkpoint(path, map_location="cpu", restore_rng=True) -> dict:
    """Load a checkpoint written by `save_checkpoint`; restores the RNG states by default.

    Only tensors and plain values are read (`torch.load(..., weights_only=True)`): a file that
    asks to call anything else (a crafted pickle would run code) is refused with a ValueError
    naming the file and the callable, and nothing from it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a refused object, or a truncated or foreign file
        called = re.search(r"GLOBAL ([\w.]+)", str(e))
        if called:
            raise ValueError(f"{path} is refused: it asks to call {called.group(1)}, and a hamlib checkpoint "
                             "holds only tensors and plain values (unpickling it could run code from the file)"
                             ) from None
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
    """Rows of scalars appended to a CSV file, one whole row per `log` (a process killed at any
    moment leaves whole rows).

    resume_step=None starts a new log (header only); resume_step=s continues one, keeping the
    rows of steps <= s and dropping later ones (logged after the checkpoint a run resumes from)
    and any torn or foreign row. The file is only ever replaced atomically (`atomic_file`),
    so an interruption while opening it loses no row either.
    """

    def __init__(self, path, fields, resume_step: int | None = None):
        self.path, self.fields = Path(path), list(fields)
        temporary(self.path).unlink(missing_ok=True)        # left by a process killed mid-rewrite
        kept, intact = [], False
        if resume_step is not None and self.path.exists():
            text = self.path.read_text()
            lines = text.splitlines(keepends=True)
            if lines and not lines[-1].endswith("\n"):
                lines.pop()                                   # a torn last row
            reader = csv.DictReader(lines)
            rows = list(reader)
            kept = [r for r in rows if self._whole(r) and int(r["step"]) <= resume_step]
            intact = reader.fieldnames == self.fields and len(kept) == len(rows) and text.endswith("\n")
        if not intact:
            with atomic_file(self.path, "w", newline="") as f:
                w = csv.DictWriter(f, self.fields)
                w.writeheader()
                w.writerows(kept)

    def _whole(self, row: dict) -> bool:
        if None in row or any(row.get(k) is None for k in self.fields):
            return False
        return row["step"].isdigit()

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
    """configs[name]() with field overrides, e.g. named_config(CONFIGS, "quick", steps=200), then
    checked (`validate`, where the config has one)."""
    if name not in configs:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(configs)}")
    cfg = configs[name]()
    for key, value in overrides.items():
        override(cfg, key, value)
    _validate(cfg)
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
    """The trainers' shared command line: --config NAME, --set KEY=VALUE ..., --resume,
    --allow-change FIELD ..., --compile."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="quick", choices=sorted(names))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (dotted for nested ones), e.g. steps=100; "
                        "the value is a Python literal or else a string")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/last.pt if it exists")
    p.add_argument("--allow-change", action="append", default=[], metavar="FIELD",
                   help="with --resume: let FIELD (dotted for nested ones) differ from the checkpoint's config")
    p.add_argument("--compile", action="store_true", help="train through torch.compile")
    return p


def config_from_args(make, args: argparse.Namespace):
    """make() with the parsed --set overrides, --resume, --allow-change and --compile applied,
    then checked (`validate`, where the config has one)."""
    cfg = make()
    for text in args.set:
        override(cfg, *parse_override(text))
    if args.resume:
        cfg.resume = True
    if getattr(args, "allow_change", None):
        cfg.allow_change = (*cfg.allow_change, *args.allow_change)
    if args.compile:
        cfg.compile = True
    _validate(cfg)
    return cfg


def _validate(cfg) -> None:
    if hasattr(cfg, "validate"):
        cfg.validate()


# ---------------------------------------------------------------------------
# Config checks: one rule per field, (test, what is allowed)
# ---------------------------------------------------------------------------

def check_fields(cfg, rules: dict) -> None:
    """Raise a ValueError for the first field of `cfg` that breaks its rule, naming the field,
    its value and what is allowed. rules: field name -> (test, description), e.g. `integer(1)`."""
    for name, (ok, allowed) in rules.items():
        value = getattr(cfg, name)
        if not ok(value):
            raise ValueError(f"{type(cfg).__name__}.{name}={value!r} is not allowed: {name} must be {allowed}")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _or_none(rule, optional):
    ok, allowed = rule
    return ((lambda v: v is None or ok(v)), f"{allowed} or None") if optional else rule


def integer(lo: int = 0, hi: int | None = None, optional: bool = False):
    """An int (not a bool, not a float) in [lo, hi]."""
    text = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return _or_none(((lambda v: _int(v) and v >= lo and (hi is None or v <= hi)), text), optional)


def number(lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """A finite int or float in the interval from lo to hi (open ends where asked)."""
    def ok(v):
        return _num(v) and (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
    if hi is None:
        return ok, f"a number {'>' if lo_open else '>='} {lo}"
    return ok, f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def flag():
    return (lambda v: isinstance(v, bool)), "True or False"


def one_of(choices, optional: bool = False):
    return _or_none(((lambda v: isinstance(v, str) and v in choices), f"one of {tuple(choices)}"), optional)


def text(optional: bool = False):
    """A non-empty string (a path, a split name)."""
    return _or_none(((lambda v: isinstance(v, str) and v != ""), "a non-empty string"), optional)


def sequence(rule, min_len: int = 1):
    """A tuple (or list) of at least min_len items, each following `rule`."""
    ok, allowed = rule
    return ((lambda v: isinstance(v, (tuple, list)) and len(v) >= min_len and all(ok(x) for x in v)),
            f"a tuple of {min_len} or more items, each {allowed}")


def device_name():
    """None (CUDA if present, else CPU) or a name torch.device reads; whether the device exists
    is `pick_device`'s check, made when a run starts."""
    def ok(v):
        if v is None:
            return True
        try:
            return isinstance(v, str) and torch.device(v) is not None
        except (RuntimeError, ValueError):
            return False
    return ok, "None or a device name such as 'cpu', 'cuda', 'cuda:1'"


def field_names(cfg, prefix: str = "") -> set:
    """Dotted names of a config's fields, nested dataclasses included ("model.head.channels")."""
    names = set()
    for f in dataclasses.fields(cfg):
        names.add(prefix + f.name)
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            names |= field_names(value, f"{prefix}{f.name}.")
    return names


# ---------------------------------------------------------------------------
# Resuming: the same run or an error
# ---------------------------------------------------------------------------

def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = tuple(v) if isinstance(v, list) else v
    return out


def check_resume(state: dict, cfg, path, free=()) -> None:
    """Refuse to resume `cfg` from checkpoint `state` (read from `path`) unless it is the same run:
    `cfg.steps` below the checkpoint's step, or any field whose value differs from the one in the
    checkpoint's config, is a ValueError naming them. Fields in `free` (bookkeeping such as
    stop_after) and in `cfg.allow_change` may differ; a name covers its sub-fields
    ("model.head" covers "model.head.ham.rank")."""
    if cfg.steps < state["step"]:
        raise ValueError(f"steps={cfg.steps} is below the step of {path} ({state['step']}): resume with "
                         f"steps >= {state['step']}, or start a new run (without --resume, or in another out_dir)")
    if not isinstance(state.get("config"), dict):
        raise ValueError(f"{path} holds no config to compare with: not a checkpoint of this trainer")
    old, new = _flat(state["config"]), _flat(dataclasses.asdict(cfg))
    allowed = ("allow_change", *free, *cfg.allow_change)
    changed = [k for k in sorted(old.keys() | new.keys())
               if old.get(k, "<absent>") != new.get(k, "<absent>")
               and not any(k == a or k.startswith(a + ".") for a in allowed)]
    if changed:
        diff = "; ".join(f"{k}: {old.get(k, '<absent>')!r} in the checkpoint, {new.get(k, '<absent>')!r} now"
                         for k in changed)
        raise ValueError(f"{path} is another run's checkpoint ({diff}). Resume with its settings, allow the "
                         f"change explicitly (--allow-change {changed[0]}, or allow_change=({changed[0]!r},)), "
                         "or start a new run (without --resume, or in another out_dir)")
