"""Shared training utilities: the quick/full switch, checkpoints, RNG state, CSV logs."""

import random

import numpy as np
import pytest
import torch

from hamlib import runtime


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
    assert runtime.parse_override("steps=100") == ("steps", 100)
    assert runtime.parse_override("g_channels=(16, 16)") == ("g_channels", (16, 16))
    assert runtime.parse_override("model.head.ham={'rank': 4}") == ("model.head.ham", {"rank": 4})
    assert runtime.parse_override("stop_after=None") == ("stop_after", None)
    assert runtime.parse_override("data_root=/data/voc=1") == ("data_root", "/data/voc=1")
    assert runtime.parse_override("block='sa'") == runtime.parse_override("block=sa") == ("block", "sa")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        runtime.parse_override("steps")


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
    cfg = runtime.named_config(configs, "long", steps=5)
    assert cfg.steps == 5 and configs["long"]().steps == 1000          # a fresh config each call
    runtime.override(cfg, "inner.width", 3)
    runtime.override(cfg, "inner.kw.rank", 4)                             # dicts take any key
    assert (cfg.inner.width, cfg.inner.kw) == (3, {"rank": 4})
    for key in ("depth", "inner.height", "outer.width"):
        with pytest.raises(ValueError, match=f"unknown config key '{key}'"):
            runtime.override(cfg, key, 1)
    with pytest.raises(ValueError, match="unknown config 'huge'.*long"):
        runtime.named_config(configs, "huge")


def test_config_from_args_applies_set_resume_and_compile():
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        steps: int = 10
        out_dir: str = "runs/x"
        resume: bool = False
        compile: bool = False

    p = runtime.config_parser("prog", "doc", ["quick"])
    cfg = runtime.config_from_args(Cfg, p.parse_args(["--set", "steps=3", "--set", "out_dir=runs/y", "--compile"]))
    assert cfg == Cfg(steps=3, out_dir="runs/y", compile=True)
    assert runtime.config_from_args(Cfg, p.parse_args(["--resume"])) == Cfg(resume=True)


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
