"""Measuring a step: peak memory, interleaved timing, and one Markdown table writer.

Used by the benchmark and experiment scripts and the course's figures; it imports nothing of
hamlib, only torch.

- `peak_memory(fn, device)`: peak bytes the allocator hands out while fn() runs (CUDA:
  the caching allocator's peak; CPU: the profiler's allocation events, which see the
  scratch memory of fused kernels too).
- `peak_tensor_memory(fn)`: peak bytes of tensor storage fn() creates, counted op by op:
  the same number on every run and every device, blind to kernels' private scratch space.
- `interleaved_times(fns, rounds)`: milliseconds of each fn, timed round by round in
  turn, so a machine that slows down for a while slows them all alike.
- `markdown_table(header, rows)`: the one Markdown table writer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import torch

# PRIVATE API (peak_tensor_memory): TorchDispatchMode (torch.utils._python_dispatch) sees every aten op, forward and
# backward; tree_flatten (torch.utils._pytree) walks their arguments; StorageWeakRef tells when
# a storage is freed. All three are the tools torch's own tests and FlopCounterMode use, but
# their modules are underscored: this file is the one place in hamlib that depends on them
# (and on the profiler's raw events, see peak_memory).
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# ---------------------------------------------------------------------------
# Peak memory, from the allocator
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for a while: the profiler's C++ backend writes two
    lines there on every start and stop, whatever its log level."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def sync(device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(fn, device=None) -> int:
    """Peak bytes allocated while fn() runs, above what was allocated before."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # PRIVATE API: `prof.profiler.kineto_results` is the profiler's raw event list (no public
    # accessor keeps the allocation events in time order); "[memory]" events carry +bytes
    # for an allocation and -bytes for a free. If a torch release moves it, this breaks here.
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    cur = peak = 0
    for _, nbytes in events:
        cur += nbytes
        peak = max(peak, cur)
    return peak


# ---------------------------------------------------------------------------
# Peak memory, deterministic: follow every storage an op creates until it dies
# ---------------------------------------------------------------------------

class _StorageTracker(TorchDispatchMode):
    """Keeps a weak reference to each new storage an op returns and its size, drops it
    when the storage is freed. Storages that existed before (inputs, parameters) are
    never counted, even when an op writes into them."""

    def __init__(self):
        super().__init__()
        self.live = {}          # StorageWeakRef -> nbytes
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {StorageWeakRef(t.untyped_storage()) for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for ref in [r for r in self.live if r.expired()]:  # freed since the last op
            self.current -= self.live.pop(ref)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            ref = StorageWeakRef(t.untyped_storage())
            if ref in inputs or ref in self.live:  # in-place result or a view: no new memory
                continue
            self.live[ref] = t.untyped_storage().nbytes()
            self.current += self.live[ref]
        self.peak = max(self.peak, self.current)
        return out


def peak_tensor_memory(fn) -> int:
    """Peak bytes of tensor storage that fn() allocates (inputs and parameters excluded).

    Counts what tensors hold, op by op, on any device: no allocator caching, no
    scratch space inside fused kernels, no timing noise, so two runs give the
    same number. (`peak_memory` measures the allocator instead.)
    """
    tracker = _StorageTracker()
    with tracker:
        fn()
    return tracker.peak


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------


def interleaved_times(fns: dict, rounds: int, warmup: int = 0, device="cpu") -> dict:
    """name -> [milliseconds of fns[name]() in each of `rounds` rounds].

    Every round calls each fn once, in turn (after `warmup` untimed rounds), so a machine
    that slows down for a while slows all of them alike; reduce the lists with the median
    (typical cost) or the minimum (what a busy machine distorts least). On CUDA the device
    is synchronised around each call.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    times = {name: [] for name in fns}
    for i in range(warmup + rounds):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            if i >= warmup:
                times[name].append(1e3 * (time.perf_counter() - t0))
    return times


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


def markdown_table(header, rows) -> str:
    """A Markdown table: `header` a list of column titles, `rows` lists of cells (str() each)."""
    bad = [r for r in rows if len(r) != len(header)]
    if bad:
        raise ValueError(f"every row needs {len(header)} cells (the header's), got {len(bad[0])}: {bad[0]!r}")
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)
