"""The trainer: a resumed run ends where an uninterrupted one does; DDP with two gloo processes."""

import os
import subprocess
import sys

import torch

from hamlib.gan.data import digits
from hamlib.gan.metrics import DigitsClassifier, extract, feature_stats
from hamlib.gan.train import get_config, main, train

TINY = dict(resolution=8, z_dim=8, g_channels=(16, 16), d_channels=(16,), g_block_res=8, d_block_res=4,
            g_ham_rank=4, d_ham_rank=4, ham_steps=3, batch_size=8, steps=6, ema_decay=0.5, ckpt_every=0)


def params(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values() if p.is_floating_point()])


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    ds = digits(8)
    straight = train(get_config("quick", out_dir=str(tmp_path / "a"), **TINY), dataset=ds, device=torch.device("cpu"))
    cfg = get_config("quick", out_dir=str(tmp_path / "b"), **TINY)
    first = train(cfg, dataset=ds, stop_at=3, device=torch.device("cpu"))
    assert first["step"] == 3 and not torch.equal(params(first["G"]), params(straight["G"]))
    torch.manual_seed(1234)                                  # other RNG state: the checkpoint must restore it
    resumed = train(cfg, dataset=ds, resume=True, device=torch.device("cpu"))
    assert resumed["step"] == 6
    for key in ("G", "D", "G_ema"):
        assert torch.equal(params(resumed[key]), params(straight[key])), key
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert rows[-1].startswith("6,")


def test_fid_and_is_are_logged_over_training():
    torch.manual_seed(0)
    ds = digits(8)
    clf = DigitsClassifier().eval()                          # untrained features are enough to test the plumbing
    stats = feature_stats(extract(clf, ds.tensors[0])[0].numpy())
    out = train(get_config("quick", eval_every=3, eval_samples=40, **TINY), dataset=ds, extractor=clf,
                real_stats=stats, device=torch.device("cpu"))
    assert [r["step"] for r in out["history"]] == [0, 3, 6]
    assert all(r["fid"] >= 0 and 1 <= r["is"] <= 10 for r in out["history"])


def test_cli_and_torchrun_ddp_on_cpu(tmp_path):
    args = ["--out", str(tmp_path), "--device", "cpu", "--no-eval"] + \
           [a for k, v in TINY.items() for a in (f"--{k}", str(v).replace(" ", ""))]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "hamlib.gan.train", *args, "--steps", "4"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    state = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert state["step"] == 4 and state["config"]["batch_size"] == 8
    # the single-process CLI resumes the 2-process run
    main(args + ["--steps", "5", "--resume"])
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["step"] == 5
