"""The shipped HamGAN checkpoints: every file matches its sha256, loads, and re-evaluates on the CPU
to the FID / IS its manifest record holds; the recording pipeline on a tiny run."""

import dataclasses
import json

import pytest
import torch

from experiments import checkpoints as train_ck
from notebooks.course import gan_checkpoints as gc
from notebooks.course.checkpoints import default_root, read_manifest, sha256

ROOT = default_root()

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = ["hamgan/classifier.pt", "hamgan/ham_s0.pt", "hamgan/sa_s0.pt", "hamgan/ham-bptt_s0.pt"]


def gan_records():
    if not (ROOT / "manifest.json").is_file():
        return {}
    return {k: r for k, r in read_manifest()["files"].items() if k.startswith("hamgan/")}


def test_the_promised_files_are_shipped_and_recorded():
    records = gan_records()
    for rel in SHIPPED:
        assert rel in records, f"{rel} has no manifest record"
        assert (ROOT / rel).is_file(), f"{rel} is recorded but missing"
    total = sum((ROOT / rel).stat().st_size for rel in records)
    assert total < 5e6, f"the HamGAN files take {total / 1e6:.1f} MB"


@pytest.fixture(scope="module")
def ruler():
    clf = gc.load_classifier()              # verifies the classifier's sha256
    return clf, gc.real_stats(clf)


def test_classifier_hash_and_accuracy(ruler):
    record = gan_records()[gc.CLASSIFIER]
    clf, _ = ruler
    from hamlib.gan.metrics import accuracy

    assert accuracy(clf, gc.data(record["resolution"])) == pytest.approx(record["metric"]["train_accuracy"], abs=1e-6)


@pytest.mark.parametrize("rel", sorted(k for k, r in gan_records().items() if r["kind"] == "hamgan"))
def test_generator_hash_dtype_and_metric(rel, ruler):
    record = gan_records()[rel]
    assert sha256(ROOT / rel) == record["sha256"]
    assert record["classifier_sha256"] == sha256(ROOT / gc.CLASSIFIER), "scored with another classifier"
    blob = torch.load(ROOT / rel, map_location="cpu", weights_only=True)
    dtypes = {str(v.dtype).removeprefix("torch.") for v in blob["state_dict"].values() if v.is_floating_point()}
    assert dtypes == {record["dtype"]}
    clf, stats = ruler
    now, then = gc.recheck_generator(rel, classifier=clf, stats=stats)
    assert now["n"] == then["n"] == gc.EVAL_N and now["seed"] == then["seed"]
    assert now["fid"] == pytest.approx(then["fid"], rel=1e-3)
    assert now["is_"] == pytest.approx(then["is_"], rel=1e-3)
    assert record["steps"] == record["config"]["steps"]
    assert record["command"] == f"python -m experiments.checkpoints train-gan {record['model']} --seeds {record['seed']}"
    assert gc.generator_rel(record["model"], record["seed"]) == rel


def test_old_attention_configs_read_as_the_librarys_block():
    blob = torch.load(ROOT / "hamgan/sa_s0.pt", map_location="cpu", weights_only=True)
    assert blob["config"]["block"] == "sa"                # as stored
    cfg = gc.config_from_dict(blob["config"])
    assert cfg.block == gc.block_name("sa") == gc.block_name("attention") == "attention"
    G, rec = gc.load_generator("hamgan/sa_s0.pt")
    assert type(G.context).__name__ == "SelfAttention2d" and rec["model"] == "attention"


def test_changed_file_fails_the_hash(tmp_path):
    root = tmp_path / "ckpt"
    (root / "hamgan").mkdir(parents=True)
    rel = "hamgan/ham_s0.pt"
    (root / rel).write_bytes((ROOT / rel).read_bytes() + b"x")
    (root / "manifest.json").write_text(json.dumps({"files": {rel: gan_records()[rel]}}))
    with pytest.raises(ValueError, match="sha256"):
        gc.load_generator(rel, root)


def test_recording_pipeline_on_a_tiny_run(tmp_path, monkeypatch):
    """classifier -> train -> fp16 decision -> record -> load -> re-check, in seconds."""
    tiny = dict(resolution=8, z_dim=8, g_channels=(16, 16), d_channels=(16,), g_block_res=8, d_block_res=4,
                g_ham_rank=4, d_ham_rank=4, ham_steps=3, batch_size=8, steps=4, eval_every=2, eval_samples=40)
    base = gc.model_config
    monkeypatch.setattr(gc, "model_config", lambda m, s: dataclasses.replace(
        base(m, s), **tiny, out_dir=str(tmp_path / "runs" / f"{m}_s{s}")))
    monkeypatch.setattr(gc, "CLASSIFIER_KW", dict(gc.CLASSIFIER_KW, steps=5))
    monkeypatch.setattr(gc, "data", lambda resolution=None: gc.digits(8))
    monkeypatch.setattr(gc, "METRIC_N", 60)
    root = tmp_path / "ckpt"
    train_ck.train_digits_classifier(root)
    record = train_ck.train_generator("ham-bptt", 3, root)
    assert record["ham_grad"] == "bptt" and record["seed"] == 3 and record["steps"] == 4
    assert [h["step"] for h in record["history"]] == [0, 2, 4]
    m = record["metric"]
    assert record["dtype"] == m["stored"]
    assert (record["dtype"] == "float16") == (abs(m["float16"]["fid_mean"] - m["float32"]["fid_mean"])
                                              <= m["float32"]["fid_std"])
    assert list(gc.gan_files(root)) == ["hamgan/ham-bptt_s3.pt"]
    G, rec = gc.load_generator("hamgan/ham-bptt_s3.pt", root)
    assert G.context.ham.grad == "bptt" and rec["model"] == "ham-bptt"
    now, then = gc.recheck_generator("hamgan/ham-bptt_s3.pt", root)
    assert now == then


@pytest.mark.parametrize("model", list(gc.MODELS))
def test_model_configs_are_digits32_narrowed(model):
    from hamlib.gan.train import build_models, get_config

    cfg, full = gc.model_config(model, 0), get_config("digits32")
    assert (cfg.resolution, cfg.g_block_res, cfg.d_block_res) == (full.resolution, full.g_block_res, full.d_block_res)
    assert len(cfg.g_channels) == len(full.g_channels) and len(cfg.d_channels) == len(full.d_channels)
    G, D = build_models(cfg)
    x = G(torch.randn(2, cfg.z_dim), torch.tensor([0, 9]))
    assert x.shape == (2, 1, 32, 32) and D(x, torch.tensor([0, 9])).shape == (2,)
    assert type(G.context).__name__ == ("SelfAttention2d" if model == "attention" else "Hamburger")
    if model != "attention":
        assert G.context.ham.grad == gc.MODELS[model]["ham_grad"]
