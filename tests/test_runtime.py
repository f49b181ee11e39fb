"""Shared training utilities: the quick/full switch, checkpoints, RNG state, CSV logs."""

import os
import random

import numpy as np
import pytest
import torch

from hamlib import config, runtime


def test_full_scale_switch(monkeypatch):
    monkeypatch.setenv("HAMLIB_FULL", "1")
    assert runtime.full_scale() is True
    monkeypatch.setenv("HAMLIB_FULL", "0")
    assert runtime.full_scale() is False
    monkeypatch.delenv("HAMLIB_FULL")
    assert runtime.full_scale() == torch.cuda.is_available()
    monkeypatch.setenv("HAMLIB_FULL", "yes")
    with pytest.raises(ValueError, match="HAMLIB_FULL"):
        runtime.full_scale()


def test_pick_device():
    assert runtime.pick_device("cpu") == torch.device("cpu")
    assert runtime.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_checkpoint_restores_model_and_every_rng(tmp_path):
    runtime.seed_everything(1)
    net = torch.nn.Linear(3, 2)
    path = runtime.save_checkpoint(tmp_path / "ck" / "last.pt", model=net.state_dict(), step=7)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.seed_everything(99)  # disturb everything
    state = runtime.load_checkpoint(path)
    assert state["step"] == 7
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict(state["model"])
    assert torch.equal(net2.weight, net.weight)
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed away


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        runtime.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable hamlib checkpoint"):
        runtime.load_checkpoint(bad)


def test_csv_logger_resume_drops_rows_after_the_checkpoint(tmp_path):
    log = runtime.CSVLogger(tmp_path / "log.csv", ["step", "loss"])
    for s in range(1, 6):
        log.log(step=s, loss=1.0 / s)
    resumed = runtime.CSVLogger(tmp_path / "log.csv", ["step", "loss"], resume_step=3)
    assert [r["step"] for r in resumed.read()] == ["1", "2", "3"]
    with pytest.raises(ValueError, match="lacks"):
        resumed.log(step=4)


def test_setup_distributed_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, world, device = runtime.setup_distributed(torch.device("cpu"))
    assert (rank, world, device.type) == (0, 1, "cpu")
    assert runtime.is_main_process()


def test_parse_override_reads_literals_and_falls_back_to_strings():
    assert config.parse_override("steps=100") == ("steps", 100)
    assert config.parse_override("g_channels=(16, 16)") == ("g_channels", (16, 16))
    assert config.parse_override("model.head.ham={'rank': 4}") == ("model.head.ham", {"rank": 4})
    assert config.parse_override("stop_after=None") == ("stop_after", None)
    assert config.parse_override("data_root=/data/voc=1") == ("data_root", "/data/voc=1")
    assert config.parse_override("block='sa'") == config.parse_override("block=sa") == ("block", "sa")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        config.parse_override("steps")


def test_override_and_named_config_on_nested_dataclasses():
    from dataclasses import dataclass, field

    @dataclass
    class Inner:
        kw: dict = field(default_factory=dict)
        width: int = 1

    @dataclass
    class Cfg:
        inner: Inner = field(default_factory=Inner)
        steps: int = 10

    configs = {"small": Cfg, "long": lambda: Cfg(steps=1000)}
    cfg = config.named_config(configs, "long", steps=5)
    assert cfg.steps == 5 and configs["long"]().steps == 1000          # a fresh config each call
    config.override(cfg, "inner.width", 3)
    config.override(cfg, "inner.kw.rank", 4)                             # dicts take any key
    assert (cfg.inner.width, cfg.inner.kw) == (3, {"rank": 4})
    for key in ("depth", "inner.height", "outer.width"):
        with pytest.raises(ValueError, match=f"unknown config key '{key}'"):
            config.override(cfg, key, 1)
    with pytest.raises(ValueError, match="unknown config 'huge'.*long"):
        config.named_config(configs, "huge")


def test_config_from_args_applies_set_resume_and_compile():
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        steps: int = 10
        out_dir: str = "runs/x"
        resume: bool = False
        compile: bool = False

    p = config.config_parser("prog", "doc", ["quick"])
    cfg = config.config_from_args(Cfg, p.parse_args(["--set", "steps=3", "--set", "out_dir=runs/y", "--compile"]))
    assert cfg == Cfg(steps=3, out_dir="runs/y", compile=True)
    assert config.config_from_args(Cfg, p.parse_args(["--resume"])) == Cfg(resume=True)


def test_step_clock_counts_wall_clock_of_the_timed_steps_only(monkeypatch):
    ticks = iter([10.0, 12.0, 20.0, 21.0])
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(ticks))
    clock = runtime.StepClock(seconds=100.0)                    # a resumed run's earlier total
    assert clock.seconds_per_step != clock.seconds_per_step   # NaN before any step
    for _ in range(2):
        with clock.step():
            pass
    assert (clock.seconds, clock.steps, clock.seconds_per_step) == (103.0, 2, 1.5)


def test_progress_bar_is_off_when_asked_or_under_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert runtime.progress_bar(0, 5).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert runtime.progress_bar(0, 5, enabled=False).disable
    bar = runtime.progress_bar(2, 5)
    assert not bar.disable and (bar.n, bar.total) == (2, 5)
    bar.close()


class Payload:
    """Unpickling this calls os.mkdir(marker): what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "last.pt"
    torch.save({"model": Payload(marker), "step": 3}, evil)
    call, args = Payload(marker).__reduce__()                  # what unpickling freely would call ...
    call(*args)
    assert marker.is_dir()
    marker.rmdir()
    with pytest.raises(ValueError, match=r"last\.pt is refused: it asks to call posix\.mkdir"):
        runtime.load_checkpoint(evil)                          # ... and load_checkpoint never runs it
    assert not marker.exists()


def test_checkpoints_hold_only_what_weights_only_loading_reads(tmp_path):
    opt = torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    path = runtime.save_checkpoint(tmp_path / "last.pt", optimizer=opt.state_dict(), history=[{"step": 1}],
                                   config={"scales": (0.5, 1.0), "out_dir": None})
    state = torch.load(path, weights_only=True)                # raises on anything beyond tensors and plain values
    assert state["config"]["scales"] == (0.5, 1.0) and set(state["rng"]) >= {"python", "numpy", "torch"}


def test_atomic_file_keeps_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with runtime.atomic_file(path, "w") as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and not runtime.temporary(path).exists()
    with runtime.atomic_file(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and not runtime.temporary(path).exists()


def test_csv_logger_drops_torn_rows_and_an_interrupted_rewrite_loses_nothing(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    log = runtime.CSVLogger(path, ["step", "loss"])
    for s in range(1, 5):
        log.log(step=s, loss=s)
    with open(path, "a") as f:
        f.write("5,0.")                                          # a row cut short
    assert [r["step"] for r in runtime.CSVLogger(path, ["step", "loss"], resume_step=9).read()] == ["1", "2", "3", "4"]
    before = path.read_text()
    monkeypatch.setattr(runtime.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):                     # killed while dropping rows 3 and 4
        runtime.CSVLogger(path, ["step", "loss"], resume_step=2)
    assert path.read_text() == before and not runtime.temporary(path).exists()
    monkeypatch.undo()
    untouched = path.stat().st_mtime_ns
    runtime.CSVLogger(path, ["step", "loss"], resume_step=4)   # nothing to drop: the file is not rewritten
    assert path.stat().st_mtime_ns == untouched


def test_pick_device_names_a_missing_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=r"device='cuda', but this machine has 0 CUDA device"):
        runtime.pick_device("cuda")
    assert runtime.pick_device().type == "cpu"


def test_field_rules_name_the_field_its_value_and_what_is_allowed():
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        steps: object = 1
        lr: object = 0.1
        scales: object = (1.0,)
        stop_after: object = None

    rules = dict(steps=config.integer(0), lr=config.number(0, lo_open=True),
                 scales=config.sequence(config.number(0, lo_open=True)),
                 stop_after=config.integer(0, optional=True))
    config.check_fields(Cfg(), rules)
    for field, bad, allowed in [("steps", 2.5, "an integer >= 0"), ("steps", True, "an integer >= 0"),
                                ("lr", "abc", "a number > 0"), ("lr", float("nan"), "a number > 0"),
                                ("scales", 0.5, "a tuple of 1 or more items"),
                                ("stop_after", -1, "an integer >= 0 or None")]:
        with pytest.raises(ValueError, match=rf"Cfg\.{field}={bad!r} is not allowed: {field} must be {allowed}"):
            config.check_fields(Cfg(**{field: bad}), rules)


def test_check_resume_names_changed_fields_unless_allowed():
    from dataclasses import asdict, dataclass, field

    @dataclass
    class Cfg:
        steps: int = 10
        lr: float = 0.1
        kw: dict = field(default_factory=lambda: {"rank": 4})
        stop_after: object = None
        allow_change: tuple = ()

    state = dict(step=5, config=asdict(Cfg()))
    config.check_resume(state, Cfg(stop_after=7), "last.pt", free=("stop_after",))
    with pytest.raises(ValueError, match=r"another run's checkpoint \(kw\.rank: 4 in the checkpoint, 8 now; "
                                         r"lr: 0\.1 in the checkpoint, 0\.2 now\)"):
        config.check_resume(state, Cfg(lr=0.2, kw={"rank": 8}), "last.pt")
    config.check_resume(state, Cfg(lr=0.2, kw={"rank": 8}, allow_change=("lr", "kw")), "last.pt")
    with pytest.raises(ValueError, match=r"steps=4 is below the step of last\.pt \(5\)"):
        config.check_resume(state, Cfg(steps=4), "last.pt")
