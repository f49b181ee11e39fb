"""The trainer: a resumed run ends where an uninterrupted one does; DDP with two gloo processes; compile."""

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.data import TensorDataset

from hamlib.gan.data import digits
from hamlib.gan.metrics import DigitsClassifier, extract, feature_stats
from hamlib.gan.train import GANConfig, get_config, main, train
from hamlib.runtime import load_checkpoint
from tests.seg.test_train import kill_at_random_moments
from tests.test_runtime import Payload

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
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["config"]["batch_size"] == 8
    # the single-process CLI resumes the 2-process run
    main(args + ["--set", "steps=5", "--resume"])
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 5


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


# ---------------------------------------------------------------------------
# Configs checked before any work; untrusted files; resume = the same run; kills lose nothing
# ---------------------------------------------------------------------------

BAD = dict(data="imagenet", data_root="", resolution=2, img_channels=0, num_classes=0, z_dim=0, g_channels=(),
           d_channels=(16, 0), block="transformer", g_block_res=0, d_block_res=-8, ham="svd", g_ham_d=0,
           g_ham_rank=0, d_ham_d=1.5, d_ham_rank=-1, ham_steps=-1, ham_grad="two-step", batch_size=0, steps=-5,
           lr_g=0, lr_d="abc", beta1=1.0, beta2=-0.1, ema_decay=2, ema_start=-1, amp="yes", seed=2 ** 40,
           out_dir=1, ckpt_every=-1, stop_after=-1, resume=1, log_every=0, eval_every=-1, eval_samples=0,
           device="gpu", workers=-1, compile="no", progress=None, allow_change=("lr",))


def test_every_field_has_a_bad_value_below():
    assert set(BAD) == {f.name for f in dataclasses.fields(GANConfig)}


@pytest.mark.parametrize("field", sorted(BAD))
def test_a_bad_field_is_a_value_error_naming_it(field):
    with pytest.raises(ValueError, match=rf"GANConfig\.{field}\b"):
        get_config("quick", **{field: BAD[field]})
    cfg = get_config("quick", out_dir=None)
    setattr(cfg, field, BAD[field])                             # set after construction: train() checks it first
    with pytest.raises(ValueError, match=rf"GANConfig\.{field}\b"):
        train(cfg)


SET_CASES = {"batch_size=0": "batch_size=0 is not allowed: batch_size must be an integer >= 1",
             "ema_decay=2": r"ema_decay=2 is not allowed: ema_decay must be a number in \[0, 1\]",
             "num_classes=0": "num_classes=0 is not allowed: num_classes must be an integer >= 1",
             "lr_d=abc": "lr_d='abc' is not allowed: lr_d must be a number > 0"}


@pytest.mark.parametrize("setting", sorted(SET_CASES))
def test_the_reported_command_lines_fail_before_any_work(setting, tmp_path):
    with pytest.raises(ValueError, match=SET_CASES[setting]):
        main(["--no-eval", "--set", setting, "--set", f"out_dir={tmp_path}"])
    assert not any(tmp_path.iterdir())


def test_labels_beyond_num_classes_stop_the_first_batch():
    x, y = digits(8).tensors
    with pytest.raises(ValueError, match=r"step 1: the training batch holds label [5-9], but num_classes=5"):
        train(get_config("quick", out_dir=None, **{**TINY, "num_classes": 5}), dataset=TensorDataset(x, y))


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path):
    torch.save({"G": Payload(tmp_path / "ran")}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match=r"last\.pt is refused: it asks to call posix\.mkdir"):
        train(get_config("quick", out_dir=str(tmp_path), resume=True, **TINY), dataset=digits(8))
    assert not (tmp_path / "ran").exists()


def test_resume_refuses_another_run(tmp_path):
    cfg = get_config("quick", out_dir=str(tmp_path), **{**TINY, "steps": 2})
    train(cfg, dataset=digits(8))
    with pytest.raises(ValueError, match=r"another run's checkpoint \(batch_size: 8 in the checkpoint, 4 now; "
                                         r"lr_g: 0\.0002 in the checkpoint, 0\.001 now\)"):
        train(dataclasses.replace(cfg, lr_g=1e-3, batch_size=4, resume=True), dataset=digits(8))
    with pytest.raises(ValueError, match=r"steps=1 is below the step of .*last\.pt \(2\)"):
        train(dataclasses.replace(cfg, steps=1, resume=True), dataset=digits(8))
    allowed = dataclasses.replace(cfg, lr_g=1e-3, resume=True, allow_change=("lr_g",))
    assert train(allowed, dataset=digits(8))["step"] == 2


def _killable(cfg):
    torch.set_num_threads(1)
    train(cfg, dataset=digits(8))


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_random_moments_loses_no_log_row(tmp_path, one_thread, seed):
    """A run killed (SIGKILL) at random moments, resumed each time, ends with the uninterrupted
    run's weights and a log holding every step's row once; no temporary is left."""
    cfg = get_config("quick", **{**TINY, "steps": 24, "ckpt_every": 3, "log_every": 1})
    straight = train(dataclasses.replace(cfg, out_dir=str(tmp_path / "a")), dataset=digits(8))
    kill_at_random_moments(_killable, dataclasses.replace(cfg, out_dir=str(tmp_path / "b"), resume=True), seed)
    resumed = train(dataclasses.replace(cfg, out_dir=str(tmp_path / "b"), resume=True), dataset=digits(8))
    for key in ("G", "D", "G_ema"):
        assert torch.equal(params(resumed[key]), params(straight[key])), key
    rows = lambda p: [r.split(",")[:3] for r in (p / "log.csv").read_text().splitlines()]  # noqa: E731
    assert rows(tmp_path / "b") == rows(tmp_path / "a") and [r[0] for r in rows(tmp_path / "a")[1:]] == \
        [str(s) for s in range(1, 25)]
    assert not list((tmp_path / "b").glob("*.tmp"))
