"""Shared training utilities: the quick/full switch, checkpoints, RNG state, CSV logs."""

import random

import numpy as np
import pytest
import torch

from hamlib import train


def test_full_scale_switch(monkeypatch):
    monkeypatch.setenv("HAMLIB_FULL", "1")
    assert train.full_scale() is True
    monkeypatch.setenv("HAMLIB_FULL", "0")
    assert train.full_scale() is False
    monkeypatch.delenv("HAMLIB_FULL")
    assert train.full_scale() == torch.cuda.is_available()
    monkeypatch.setenv("HAMLIB_FULL", "yes")
    with pytest.raises(ValueError, match="HAMLIB_FULL"):
        train.full_scale()


def test_pick_device():
    assert train.pick_device("cpu") == torch.device("cpu")
    assert train.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_checkpoint_restores_model_and_every_rng(tmp_path):
    train.seed_everything(1)
    net = torch.nn.Linear(3, 2)
    path = train.save_checkpoint(tmp_path / "ck" / "last.pt", model=net.state_dict(), step=7)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    train.seed_everything(99)  # disturb everything
    state = train.load_checkpoint(path)
    assert state["step"] == 7
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict(state["model"])
    assert torch.equal(net2.weight, net.weight)
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed away


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable hamlib checkpoint"):
        train.load_checkpoint(bad)


def test_csv_logger_resume_drops_rows_after_the_checkpoint(tmp_path):
    log = train.CSVLogger(tmp_path / "log.csv", ["step", "loss"])
    for s in range(1, 6):
        log.log(step=s, loss=1.0 / s)
    resumed = train.CSVLogger(tmp_path / "log.csv", ["step", "loss"], resume_step=3)
    assert [r["step"] for r in resumed.read()] == ["1", "2", "3"]
    with pytest.raises(ValueError, match="lacks"):
        resumed.log(step=4)


def test_setup_distributed_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, world, device = train.setup_distributed(torch.device("cpu"))
    assert (rank, world, device.type) == (0, 1, "cpu")
    assert train.is_main_process()
