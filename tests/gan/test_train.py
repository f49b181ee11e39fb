"""The trainer: a resumed run ends where an uninterrupted one does; DDP with two gloo processes; compile."""

import dataclasses
import os
import subprocess
import sys

import torch
from torch.utils.data import TensorDataset

from hamlib.gan.data import digits
from hamlib.gan.metrics import DigitsClassifier, extract, feature_stats
from hamlib.gan.train import get_config, main, train
from hamlib.runtime import load_checkpoint

TINY = dict(resolution=8, z_dim=8, g_channels=(16, 16), d_channels=(16,), g_block_res=8, d_block_res=4,
            g_ham_rank=4, d_ham_rank=4, ham_steps=3, batch_size=8, steps=6, ema_decay=0.5, ckpt_every=0,
            device="cpu", progress=False)


def params(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values() if p.is_floating_point()])


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    ds = digits(8)
    straight = train(get_config("quick", out_dir=str(tmp_path / "a"), **TINY), dataset=ds)
    cfg = get_config("quick", out_dir=str(tmp_path / "b"), **TINY)
    first = train(dataclasses.replace(cfg, stop_after=3), dataset=ds)
    assert first["step"] == 3 and not torch.equal(params(first["G"]), params(straight["G"]))
    torch.manual_seed(1234)                                  # other RNG state: the checkpoint must restore it
    resumed = train(dataclasses.replace(cfg, resume=True), dataset=ds)
    assert resumed["step"] == 6
    for key in ("G", "D", "G_ema"):
        assert torch.equal(params(resumed[key]), params(straight[key])), key
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert rows[-1].startswith("6,")


def test_stop_after_fetches_only_the_batches_it_trains_on(tmp_path):
    x, y = digits(8).tensors
    fetched = []

    class Counting(TensorDataset):
        def __getitem__(self, i):
            fetched.append(i)
            return super().__getitem__(i)

    out = train(get_config("quick", out_dir=None, stop_after=3, **TINY), dataset=Counting(x, y))
    assert out["step"] == 3 and len(fetched) == 3 * TINY["batch_size"] and out["seconds_per_step"] > 0


def test_fid_and_is_are_logged_over_training():
    torch.manual_seed(0)
    ds = digits(8)
    clf = DigitsClassifier().eval()                          # untrained features are enough to test the plumbing
    stats = feature_stats(extract(clf, ds.tensors[0])[0].numpy())
    out = train(get_config("quick", eval_every=3, eval_samples=40, out_dir=None, **TINY), dataset=ds,
                extractor=clf, real_stats=stats)
    assert [r["step"] for r in out["history"]] == [0, 3, 6]
    assert all(r["fid"] >= 0 and 1 <= r["is"] <= 10 for r in out["history"])
    assert [r["seconds"] for r in out["history"]] == sorted(r["seconds"] for r in out["history"])


def test_cli_and_torchrun_ddp_on_cpu(tmp_path):
    args = ["--no-eval", "--set", f"out_dir={tmp_path}"] + \
           [a for k, v in TINY.items() for a in ("--set", f"{k}={v!r}".replace(" ", ""))]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "hamlib.gan.train", *args, "--set", "steps=4"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["step"] == 4 and state["config"]["batch_size"] == 8
    # the single-process CLI resumes the 2-process run
    main(args + ["--set", "steps=5", "--resume"])
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 5


def test_compiled_run_checkpoints_plain_weights_that_resume_uncompiled(tmp_path, monkeypatch, one_thread):
    """compile=True trains G and D through torch.compile (the aot_eager backend: see
    tests/seg/test_train.py's compile_spy); last.pt holds their own keys, so an uncompiled run resumes."""
    compiled, compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: compiled.append(m) or compile(m, backend="aot_eager"))
    cfg = get_config("quick", out_dir=str(tmp_path), **{**TINY, "steps": 3})
    first = train(dataclasses.replace(cfg, stop_after=2, compile=True), dataset=digits(8))
    assert compiled == [first["G"], first["D"]] and first["step"] == 2
    state = load_checkpoint(tmp_path / "last.pt")
    for key in ("G", "D", "G_ema"):
        assert state[key].keys() == first[key].state_dict().keys(), key
        assert not any("_orig_mod" in k for k in state[key])
    resumed = train(dataclasses.replace(cfg, resume=True), dataset=digits(8))
    assert len(compiled) == 2 and resumed["step"] == 3
    rows = (tmp_path / "log.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["2", "3"]
    assert all(torch.isfinite(torch.tensor([float(v) for v in r.split(",")[1:3]])).all() for r in rows)
