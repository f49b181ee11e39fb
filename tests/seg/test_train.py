"""Trainer: parameter groups, poly schedule, resume == uninterrupted, CLI, VOC path, DDP on gloo, compile."""

import csv
import dataclasses
import os
import random
import signal
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from hamlib.seg.synthetic import LegendDataset
from hamlib.seg.train import (CONFIGS, SeededStepBatches, TrainConfig, build_datasets, get_config, main,
                              param_groups, poly_lr, quick, recipe_configs, train)
from hamlib.config import config_parser, override
from hamlib.runtime import load_checkpoint
from tests.test_runtime import Payload


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
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
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


# ---------------------------------------------------------------------------
# Configs checked before any work
# ---------------------------------------------------------------------------

BAD = dict(model="resnet", dataset="coco", data_root=3, train_split="", val_split=None, legend={"size": 64},
           texture={"size": 64},
           n_train=0, n_val=-1, data_seed=1.5, crop=0, scales=0.5, flip="yes", batch_size=0, steps=-5, lr="abc",
           momentum=5, weight_decay=-1, power=-1, eval_every=-1, eval_batch_size=0, eval_scales=(), eval_flip=1,
           log_every=0, ckpt_every=-1, stop_after=-1, out_dir=7, resume="no", init_from=0, seed=-1, device="tpu9",
           workers=-1, amp=None, channels_last="no", compile=1, progress="off", allow_change=("lrr",))


def test_every_field_has_a_bad_value_below():
    assert set(BAD) == {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("field", sorted(BAD))
def test_a_bad_field_is_a_value_error_naming_it(field):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field}\b"):
        dataclasses.replace(quick(), **{field: BAD[field]})
    cfg = quick()
    setattr(cfg, field, BAD[field])                             # set after construction: train() checks it first
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field}\b"):
        train(cfg)


# what a new user tried with --set on the quick config, and the error each now gets
SET_CASES = {"lr=abc": "lr='abc' is not allowed: lr must be a number > 0",
             "steps=-5": "steps=-5 is not allowed: steps must be an integer >= 0",
             "stop_after=-1": "stop_after=-1 is not allowed: stop_after must be an integer >= 0 or None",
             "steps=2.5": "steps=2.5 is not allowed: steps must be an integer >= 0",
             "batch_size=0": "batch_size=0 is not allowed: batch_size must be an integer >= 1",
             "batch_size=-2": "batch_size=-2 is not allowed: batch_size must be an integer >= 1",
             "log_every=0": "log_every=0 is not allowed: log_every must be an integer >= 1",
             "momentum=5": r"momentum=5 is not allowed: momentum must be a number in \[0, 1\)",
             "weight_decay=-1": "weight_decay=-1 is not allowed: weight_decay must be a number >= 0",
             "power=-1": "power=-1 is not allowed: power must be a number >= 0",
             "scales=0.5": "scales=0.5 is not allowed: scales must be a tuple of 1 or more items",
             "model.num_classes=2": r"model.num_classes=2, but the legend task has 5 classes \(labels 0..4",
             "device=cuda": r"device='cuda', but this machine has 0 CUDA device\(s\)"}


@pytest.mark.parametrize("setting", sorted(SET_CASES))
def test_the_reported_command_lines_fail_before_any_work(setting, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=SET_CASES[setting]):
        main(["--config", "quick", "--set", setting, "--set", f"out_dir={tmp_path}"])
    assert not any(tmp_path.iterdir())                             # nothing was written


def test_labels_beyond_num_classes_stop_the_first_batch(tmp_path):
    cfg = tiny(tmp_path, device="cpu")
    train_set, val_set = build_datasets(cfg)
    train_set.labels[train_set.labels == 4] = 7                   # a data set breaking its own label range
    with pytest.raises(ValueError, match=r"step 1: the training batch holds label 7, but model.num_classes=5"):
        train(cfg, (train_set, val_set))


def test_pretrained_weights_that_match_nothing_are_an_error(tmp_path):
    foreign = tmp_path / "foreign.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, foreign)
    cfg = tiny(tmp_path / "run", device="cpu")
    cfg.model.pretrained = str(foreign)
    with pytest.raises(ValueError, match=r"model.pretrained=.*foreign.pth.*no tensor of the file matches the "
                                         r"resnet_tiny backbone \(loaded 0 tensors"):
        train(cfg)


# ---------------------------------------------------------------------------
# Untrusted files, resume = the same run, runs that end right
# ---------------------------------------------------------------------------

def test_resume_and_init_from_refuse_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": Payload(marker), "step": 1}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"last\.pt is refused: it asks to call posix\.mkdir"):
        train(tiny(tmp_path, device="cpu", resume=True))
    with pytest.raises(ValueError, match=r"last\.pt is refused"):
        train(tiny(tmp_path / "stage2", device="cpu", init_from=str(tmp_path / "last.pt")))
    assert not marker.exists()


def test_resume_refuses_another_run_and_reports_a_finished_one(tmp_path):
    done = train(tiny(tmp_path, steps=2, device="cpu"))
    with pytest.raises(ValueError, match=r"another run's checkpoint \(lr: 0\.1 in the checkpoint, 0\.05 now; "
                                         r"seed: 0 in the checkpoint, 1 now\)"):
        train(tiny(tmp_path, steps=2, lr=0.05, seed=1, device="cpu", resume=True))
    with pytest.raises(ValueError, match=r"steps=1 is below the step of .*last\.pt \(2\)"):
        train(tiny(tmp_path, steps=1, device="cpu", resume=True))
    again = train(tiny(tmp_path, steps=2, device="cpu", resume=True, stop_after=5, log_every=3))
    assert again["step"] == 2 and again["miou"] == done["miou"] == again["history"][-1]["miou"]
    more = train(tiny(tmp_path, steps=3, device="cpu", resume=True, allow_change=("steps",)))
    assert more["step"] == 3


def test_an_evaluation_error_keeps_the_trained_model_and_a_resume_finishes_the_step(tmp_path, monkeypatch):
    import hamlib.seg.train as seg_train
    straight = train(tiny(tmp_path / "a", steps=4, device="cpu"))
    evaluate = seg_train.evaluate
    monkeypatch.setattr(seg_train, "evaluate", lambda *a, **k: (_ for _ in ()).throw(ValueError("bad mask")))
    with pytest.raises(ValueError, match="bad mask"):
        train(tiny(tmp_path / "b", steps=4, device="cpu"))
    state = load_checkpoint(tmp_path / "b" / "last.pt")
    assert state["step"] == 4 and state["pending"]["step"] == 4      # trained, its evaluation still to do
    monkeypatch.setattr(seg_train, "evaluate", evaluate)
    res = train(tiny(tmp_path / "b", steps=4, device="cpu", resume=True))
    assert res["miou"] == straight["miou"] and [h["step"] for h in res["history"]] == [4]
    rows = lambda p: [(r["step"], r["loss"], r["miou"]) for r in csv.DictReader(open(p / "log.csv"))]  # noqa: E731
    assert rows(tmp_path / "b") == rows(tmp_path / "a")
    assert load_checkpoint(tmp_path / "b" / "last.pt")["pending"] is None


def _killable(cfg):
    torch.set_num_threads(1)
    train(cfg)


def kill_at_random_moments(target, cfg, seed, kills=4):
    """Fork `target(cfg)` (a resuming run) over and over and SIGKILL it after a random delay (up to
    a third of an uninterrupted child's time) until `kills` runs were really killed; then let it finish.
    The child's time is the faster of two uninterrupted runs: on a loaded machine one slow timing
    run made the delays so long that the resumed runs finished before `kills` kills (seen in CI).
    Returns the number of runs it took."""
    ctx, rng = mp.get_context("fork"), random.Random(seed)
    times = []
    for i in range(2):
        tic = time.perf_counter()
        p = ctx.Process(target=target, args=(dataclasses.replace(cfg, out_dir=cfg.out_dir + f"_timing{i}"),))
        p.start(), p.join()
        times.append(time.perf_counter() - tic)
    seconds, killed, runs = min(times), 0, 0
    while killed < kills and runs < 4 * kills:
        p = ctx.Process(target=target, args=(cfg,))
        p.start()
        time.sleep(rng.uniform(0, seconds / 3))
        os.kill(p.pid, signal.SIGKILL)                          # a no-op on a run that has ended
        p.join()
        killed, runs = killed + (p.exitcode == -signal.SIGKILL), runs + 1
    assert killed == kills, f"only {killed} of {runs} runs were still going when killed"
    return runs


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_random_moments_loses_no_log_row(tmp_path, one_thread, seed):
    """A run killed (SIGKILL) at random moments, resumed each time, ends with the uninterrupted
    run's weights and a log holding every step's row once; no temporary is left."""
    cfg = lambda out, **kw: tiny(out, steps=16, eval_every=4, ckpt_every=2, device="cpu", **kw)  # noqa: E731
    straight = train(cfg(tmp_path / "a"))
    kill_at_random_moments(_killable, cfg(tmp_path / "b", resume=True), seed)
    resumed = train(cfg(tmp_path / "b", resume=True))
    sa, sb = straight["model"].state_dict(), resumed["model"].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    rows = lambda p: [(r["step"], r["loss"], r["miou"]) for r in csv.DictReader(open(p / "log.csv"))]  # noqa: E731
    assert rows(tmp_path / "b") == rows(tmp_path / "a")
    assert [r[0] for r in rows(tmp_path / "a")] == [str(s) for s in range(1, 17)]
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_the_voc_recipe_keeps_its_stages_apart_under_one_out_dir(tmp_path, make_voc):
    root = make_voc(tmp_path / "VOC2012")
    out = tmp_path / "runs"
    small = ["model.backbone=resnet_tiny", "model.backbone_kw={'width':8}", "model.pretrained=None",
             "model.head.channels=16", "model.head.align_channels=8", "model.head.kernel=1",
             "model.head.ham={'ham':'nmf','rank':4,'steps':2}", "steps=2", "crop=32", "batch_size=2", "workers=0",
             "eval_every=0", "eval_scales=(1.0,)", "eval_flip=False", "progress=False", f"data_root={root}",
             f"out_dir={out}"]
    argv = ["--config", "voc"] + [a for s in small for a in ("--set", s)]
    s1, s2 = recipe_configs("voc", config_parser("p", "d", ["voc"]).parse_args(argv))
    assert (s1.out_dir, s2.out_dir, s2.init_from) == (str(out / "voc_stage1"), str(out / "voc_stage2"),
                                                      str(out / "voc_stage1" / "last.pt"))
    res = main(argv)
    assert res["step"] == 2 and 0 <= res["miou"] <= 1
    assert load_checkpoint(out / "voc_stage2" / "last.pt")["config"]["init_from"] == str(out / "voc_stage1" / "last.pt")
    again = main(argv + ["--resume"])                                # both stages finished: their stored results
    assert again["miou"] == res["miou"]
