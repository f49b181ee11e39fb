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
- Configs (the command line, overrides, field checks, resume checks): `hamlib.config`.

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

import contextlib
import csv
import logging
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
    A CUDA device asked for by `prefer` that this machine lacks is a ValueError naming it."""
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
