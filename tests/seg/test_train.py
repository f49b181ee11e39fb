"""Trainer: parameter groups, poly schedule, resume == uninterrupted, CLI, VOC path, DDP on gloo, compile."""

import csv
import dataclasses
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from hamlib.seg.synthetic import LegendDataset
from hamlib.seg.train import (CONFIGS, SeededStepBatches, build_datasets, get_config, main, param_groups, poly_lr,
                              quick, train)
from hamlib.runtime import load_checkpoint, override


def tiny(tmp_path, **kw):
    """The quick config shrunk to seconds: 64 training images of 32 x 32, 6 steps."""
    cfg = quick()
    cfg.legend.size, cfg.legend.min_dist, cfg.legend.shape_min, cfg.legend.shape_max = 40, 16, 6, 8
    cfg.legend.legend_size = 5
    for k, v in {**dict(n_train=64, n_val=16, batch_size=8, steps=6, log_every=1, out_dir=str(tmp_path),
                        progress=False, eval_batch_size=16), **kw}.items():
        setattr(cfg, k, v)
    return cfg


def test_param_groups_and_poly():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1, bias=True))
    g = param_groups(m, 0.01, 1e-4)
    decay, no_decay, bias = (set(map(id, x["params"])) for x in g)
    assert decay == {id(m[0].weight), id(m[2].weight)}
    assert no_decay == {id(m[1].weight), id(m[1].bias)}
    assert bias == {id(m[0].bias), id(m[2].bias)}
    assert [x["weight_decay"] for x in g] == [1e-4, 0.0, 0.0] and [x["lr"] for x in g] == [0.01, 0.01, 0.02]
    assert poly_lr(1.0, 0, 100) == 1.0 and poly_lr(1.0, 100, 100) == 0.0
    assert poly_lr(9e-3, 50, 100) == pytest.approx(9e-3 * 0.5 ** 0.9)


def test_step_batches_shard_and_cover():
    full = SeededStepBatches(10, 4, seed=1, start=0, stop=2)
    r0, r1 = SeededStepBatches(10, 4, 1, 0, 2, rank=0, world=2), SeededStepBatches(10, 4, 1, 0, 2, rank=1, world=2)
    for s in range(2):
        assert sorted(full.batch(s)) == sorted(r0.batch(s) + r1.batch(s))
    assert len({i for s in range(2) for i, _ in full.batch(s)}) == 8      # no repeats within an epoch
    with pytest.raises(ValueError, match="divisible"):
        SeededStepBatches(10, 3, 0, 0, 1, world=2)


def test_resume_is_bit_identical(tmp_path):
    """On the CPU a resumed run is bit for bit the uninterrupted one (same batches, RNG states)."""
    a = train(tiny(tmp_path / "a", device="cpu"))
    first = train(tiny(tmp_path / "b", stop_after=3, device="cpu"))        # "interrupted" after step 3
    assert first["step"] == 3 and (tmp_path / "b" / "last.pt").is_file()
    torch.manual_seed(1234)                                    # other RNG state: the checkpoint must restore it
    b = train(tiny(tmp_path / "b", device="cpu", resume=True))             # resumes at step 3
    assert b["step"] == 6 and [h["step"] for h in b["history"]] == [6]
    sa, sb = a["model"].state_dict(), b["model"].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["miou"] == b["miou"] and 0 <= a["miou"] <= 1
    rows = lambda p: [(r["step"], r["loss"]) for r in csv.DictReader(open(p / "log.csv"))]  # noqa: E731
    assert rows(tmp_path / "a") == rows(tmp_path / "b") and len(rows(tmp_path / "a")) == 6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resume_on_cuda_matches_to_float_noise(tmp_path):
    """On a GPU some backward kernels (bilinear upsampling's) add with atomics, so two runs differ
    in the last bits; a resumed run must still match the uninterrupted one to that noise."""
    a = train(tiny(tmp_path / "a", device="cuda"))
    train(tiny(tmp_path / "b", stop_after=3, device="cuda"))
    b = train(tiny(tmp_path / "b", device="cuda", resume=True))
    sa, sb = a["model"].state_dict(), b["model"].state_dict()
    for k in sa:
        torch.testing.assert_close(sb[k].float(), sa[k].float(), rtol=1e-3, atol=1e-4, msg=k)


def test_stop_after_trains_fetches_and_times_exactly_its_steps(tmp_path, monkeypatch):
    """Three steps of a six-step run: three batches are fetched (none fetched and dropped), and the
    time per step is the training time over three steps. The clock here ticks one second per reading,
    so timing a step takes at least one second."""
    fetched = []
    get = LegendDataset.__getitem__
    monkeypatch.setattr(LegendDataset, "__getitem__", lambda self, i: fetched.append(i) or get(self, i))
    ticks = iter(range(10 ** 6))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    cfg = tiny(tmp_path, stop_after=3, device="cpu")
    res = train(cfg)
    assert res["step"] == 3 and len(fetched) == 3 * cfg.batch_size
    assert res["seconds_per_step"] >= 1.0


def test_resume_without_flag_starts_afresh_and_resume_past_the_end_trains_nothing(tmp_path):
    train(tiny(tmp_path, steps=2, device="cpu"))
    again = train(tiny(tmp_path, steps=2, device="cpu", resume=True))        # already done: nothing to run
    assert again["step"] == 2 and again["seconds_per_step"] != again["seconds_per_step"]   # NaN: no step ran
    fresh = train(tiny(tmp_path, steps=1, device="cpu"))                      # resume=False: a new run
    assert fresh["step"] == 1 and load_checkpoint(tmp_path / "last.pt")["step"] == 1


def test_cli_overrides(tmp_path):
    res = main(["--config", "quick", "--set", "steps=2", "--set", "n_train=32", "--set", "n_val=8",
                "--set", "batch_size=4", "--set", "model.head.context=attention",
                "--set", f"out_dir={tmp_path}", "--set", "progress=False"])
    assert res["step"] == 2 and type(res["model"].head.context).__name__ == "SelfAttention2d"
    assert load_checkpoint(tmp_path / "last.pt")["config"]["out_dir"] == str(tmp_path)
    with pytest.raises(ValueError, match="unknown config key"):
        override(quick(), "model.head.colour", 1)
    with pytest.raises(ValueError, match="unknown config key"):
        override(quick(), "model.neck.width", 1)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        main(["--set", "steps"])
    assert get_config("quick", steps=7, seed=2).steps == 7
    with pytest.raises(ValueError, match="unknown config"):
        get_config("imagenet")
    assert set(CONFIGS) >= {"quick", "voc_stage1", "voc_stage2"}
    s2 = CONFIGS["voc_stage2"]()
    assert (s2.train_split, s2.steps, s2.lr, s2.eval_flip) == ("trainval", 20000, 9e-4, True)
    assert len(s2.eval_scales) == 6 and s2.init_from


def test_voc_end_to_end(tmp_path, make_voc):
    root = make_voc(tmp_path / "VOC2012")
    cfg = tiny(tmp_path / "run", dataset="voc", data_root=str(root), train_split="trainval", crop=32,
               batch_size=2, steps=2, eval_scales=(0.5, 1.0), eval_flip=True, eval_batch_size=1)
    cfg.model.num_classes = 21
    res = train(cfg)
    assert res["step"] == 2 and 0 <= res["miou"] <= 1
    stage2 = tiny(tmp_path / "run2", dataset="voc", data_root=str(root), train_split="train", crop=32,
                  batch_size=2, steps=1, init_from=str(tmp_path / "run" / "last.pt"), eval_batch_size=1)
    stage2.model.num_classes = 21
    model = train(stage2)["model"]
    from PIL import Image

    from hamlib.seg.data import VOCSegmentation
    from hamlib.seg.metrics import write_pngs
    paths = write_pngs(model, VOCSegmentation(root, "val"), tmp_path / "pngs", flip=True)
    assert [p.name for p in paths] == ["2007_000002.png"]
    assert Image.open(paths[0]).mode == "P" and Image.open(paths[0]).size == (48, 48)


def _ddp_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    res = train(tiny(out, steps=3, device="cpu"))
    torch.save({k: v.clone() for k, v in res["model"].state_dict().items()}, os.path.join(out, f"rank{rank}.pt"))


def test_ddp_two_gloo_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = train(tiny(tmp_path / "init", steps=0, device="cpu"))["model"].state_dict()
    w = "head.classifier.weight"
    assert torch.equal(r0[w], r1[w]) and not torch.equal(r0[w], init[w])   # gradients were averaged
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "log.csv").is_file()


def compile_spy(monkeypatch):
    """torch.compile with the aot_eager backend, recording what it wraps. Dynamo traces and AOTAutograd
    builds the joint graph as with inductor, but no C++ is generated: inductor's code generation takes
    minutes on a shared 2-core machine. What the trainers add (the wrapping, the checkpoint's keys,
    resuming) is the same for every backend."""
    compiled, compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: compiled.append(m) or compile(m, backend="aot_eager"))
    return compiled


def test_compiled_run_checkpoints_plain_weights_that_resume_uncompiled(tmp_path, monkeypatch, one_thread):
    """compile=True trains through torch.compile; last.pt holds the model's own keys (no "_orig_mod."),
    so an uncompiled run resumes from it."""
    compiled = compile_spy(monkeypatch)
    cfg = tiny(tmp_path, steps=3, stop_after=2, n_train=16, n_val=8, batch_size=4, eval_batch_size=8,
               device="cpu", compile=True)
    cfg.model.backbone_kw = dict(width=8)
    first = train(cfg)
    assert compiled == [first["model"]]
    keys = load_checkpoint(tmp_path / "last.pt")["model"].keys()
    assert first["step"] == 2 and keys == first["model"].state_dict().keys()
    assert not any("_orig_mod" in k for k in keys)
    resumed = train(dataclasses.replace(cfg, stop_after=None, compile=False, resume=True))
    assert len(compiled) == 1 and resumed["step"] == 3 and 0 <= resumed["miou"] <= 1
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [r["step"] for r in rows] == ["1", "2", "3"] and all(float(r["loss"]) < 10 for r in rows)
