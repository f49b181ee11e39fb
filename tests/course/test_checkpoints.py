"""The shipped HamNet checkpoints (data/checkpoints): every file matches its manifest record, loads,
and re-evaluates on the CPU to the metric the manifest holds; and the trainer/loader on a tiny task."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from experiments import checkpoints as train_ck
from notebooks.course import checkpoints as ck
from notebooks.course import tasks
from hamlib.seg.train import get_config

ROOT = ck.default_root()
SHIPPED = ROOT / "manifest.json"
RECORD_KEYS = {"kind", "task", "head", "seed", "steps", "command", "config", "wall_s", "hardware", "dtype",
               "val", "eval", "sha256", "bytes"}


def shipped_hamnet():
    if not SHIPPED.is_file():
        return []
    return sorted(k for k, r in json.loads(SHIPPED.read_text())["files"].items() if r["kind"] == "hamnet")


def test_the_checkpoints_are_shipped_and_small():
    files = shipped_hamnet()
    assert files, f"no HamNet checkpoint recorded in {SHIPPED}"
    tasks = {ck.read_manifest()["files"][f]["task"] for f in files}
    assert {"legend1", "legend2", "texture"} <= tasks
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 30 * 2**20, f"data/checkpoints holds {total / 2**20:.1f} MB (limit 30 MB)"
    on_disk = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.pt")}
    assert on_disk == set(ck.read_manifest()["files"]) & on_disk and set(files) <= on_disk, \
        "every .pt file is in the manifest and every HamNet record has its file"


def test_the_comparison_has_three_seeds_per_head():
    rows = ck.manifest_rows("legend2")
    heads = {r["head"] for r in rows}
    for h in ("none", "pool", "attention", "attention-plain", "nmf bptt", "nmf one-step", "cd one-step-bases", "vq 2",
              "nmf bptt init=reference", "nmf one-step init=reference", "cd one-step-bases init=reference",
              "vq 2 init=reference"):
        assert sorted(r["seed"] for r in rows if r["head"] == h) == [0, 1, 2], h
    assert len(heads) >= 7


@pytest.mark.parametrize("rel", shipped_hamnet())
def test_checkpoint_matches_its_manifest(rel):
    record = ck.read_manifest()["files"][rel]
    assert RECORD_KEYS <= set(record), f"{rel}: record lacks {RECORD_KEYS - set(record)}"
    assert record["command"] == f'python -m experiments.checkpoints train {record["task"]} "{record["head"]}" --seeds {record["seed"]}'
    now, then = ck.recheck_hamnet(rel)            # verifies the sha256 first
    assert now["miou"] == pytest.approx(then["miou"], abs=5e-3), rel
    assert now["ctx_acc"] == pytest.approx(then["ctx_acc"], abs=5e-3), rel


def test_a_changed_file_is_refused(tmp_path):
    files = shipped_hamnet()
    if not files:
        pytest.fail("no shipped checkpoint to corrupt")
    rel = files[0]
    (tmp_path / rel).parent.mkdir(parents=True)
    shutil.copy(ROOT / rel, tmp_path / rel)
    shutil.copy(SHIPPED, tmp_path / "manifest.json")
    data = bytearray((tmp_path / rel).read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / rel).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 differs"):
        ck.load_hamnet(rel, tmp_path)
    with pytest.raises(KeyError, match="not in"):
        ck.load_hamnet("legend2/nothing_s0.pt", tmp_path)


def test_a_user_path_cannot_skip_the_hash(tmp_path):
    """A file outside the manifest is refused whatever path names it: absolute, leading out of the
    store, or a copy of a shipped file under another name; the hash check cannot be side-stepped."""
    rel = shipped_hamnet()[0]
    shutil.copy(ROOT / rel, tmp_path / "copy.pt")
    for name in (str(tmp_path / "copy.pt"), f"../{tmp_path.name}/copy.pt", "legend2/../legend2/" + Path(rel).name):
        with pytest.raises(ValueError, match="path inside"):
            ck.read_verified(name)
    with pytest.raises(KeyError, match="not in"):
        ck.read_verified("copy.pt", ROOT)


def test_train_store_record_load_on_a_tiny_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                   # runs/checkpoints/... (resumable training) goes here
    tiny = lambda: get_config("quick", steps=6, n_train=32, n_val=16)   # noqa: E731
    monkeypatch.setitem(tasks.TASKS, "tiny", tasks.Task("tiny", "a tiny legend task", tiny, None))
    rec = train_ck.train_hamnet("tiny", "nmf bptt rank=4", 1, root=tmp_path / "ckpt")
    rel = "tiny/nmf_bptt_rank-4_s1.pt"
    assert (tmp_path / "ckpt" / rel).is_file() and rec["steps"] == 6 and rec["seed"] == 1
    assert rec["dtype"] in ("float16", "float32") and rec["sha256"] == ck.sha256(tmp_path / "ckpt" / rel)
    model, record = ck.load_hamnet(rel, tmp_path / "ckpt")
    assert record == json.loads(json.dumps(rec)) and not model.training   # the manifest is JSON: tuples read back as lists
    assert model.head.context.ham.rank == 4       # the stored config rebuilt the block
    now, then = ck.recheck_hamnet(rel, tmp_path / "ckpt")
    assert now == pytest.approx({k: then[k] for k in now})
    rows = ck.manifest_rows("tiny", root=tmp_path / "ckpt")
    assert [(r["head"], r["seed"]) for r in rows] == [("nmf bptt rank=4", 1)] and rows[0]["params"] > 0
    assert set(ck.load_heads("tiny", ["nmf bptt rank=4", "pool"], seed=1, root=tmp_path / "ckpt")) == {"nmf bptt rank=4"}
    # stored weights in float16 unless that moved the validation mIoU
    blob = torch.load(tmp_path / "ckpt" / rel, weights_only=True)
    dtypes = {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()}
    assert dtypes == {getattr(torch, rec["dtype"])}


def test_default_root_follows_the_environment_and_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HAMLIB_CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert ck.default_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("HAMLIB_CHECKPOINTS")
    (tmp_path / "data" / "checkpoints").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")          # a notebook's kernel
    assert ck.default_root().resolve() == (tmp_path / "data" / "checkpoints").resolve()
    (tmp_path / "notebooks" / "student").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks" / "student")   # a student version's kernel
    assert ck.default_root().resolve() == (tmp_path / "data" / "checkpoints").resolve()
    monkeypatch.chdir(tmp_path)                        # the repository root
    assert ck.default_root() == ck.Path("data/checkpoints")
    with pytest.raises(FileNotFoundError, match="no checkpoint manifest"):
        ck.read_manifest(tmp_path / "notebooks")


def test_the_cli_tabulates_the_manifest(capsys):
    train_ck.main(["--root", str(ROOT), "table"])
    out = capsys.readouterr().out
    assert "legend2:" in out and "| nmf bptt init=reference |" in out and "| self-attention |" in out
    assert "texture:" in out and "| plain v1 |" in out


def test_full_scale_config_starts_on_cpu(tmp_path):
    """The notebooks' full mode (HAMLIB_FULL=1) trains legend_full: it must at least start here."""
    from hamlib.seg.train import train
    cfg = get_config("legend_full", n_train=64, n_val=16, stop_after=2, out_dir=str(tmp_path), progress=False,
                     device="cpu")
    res = train(cfg)
    assert res["step"] == 2 and (tmp_path / "last.pt").is_file()


def test_checkpoint_or_train_loads_when_complete_and_trains_otherwise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = lambda: get_config("quick", steps=4, n_train=32, n_val=8)   # noqa: E731
    monkeypatch.setitem(tasks.TASKS, "tiny", tasks.Task("tiny", "a tiny legend task", tiny, None))
    root = tmp_path / "ckpt"
    train_ck.train_hamnet("tiny", "none", 0, root=root)
    got = ck.checkpoint_or_train("tiny", ["none"], [0], tiny(), root=root)
    assert got["source"].startswith("loaded 1 shipped") and list(got["models"]) == ["none"]
    assert len(got["val_set"]) == 8 and got["rows"][0]["head"] == "none"
    got = ck.checkpoint_or_train("tiny", ["none", "pool"], [0], tiny(), root=root)   # pool missing: train both
    assert got["source"].startswith("trained now: 2 runs") and set(got["models"]) == {"none", "pool"}
    with pytest.raises(FileNotFoundError, match="no complete set"):
        ck.checkpoint_or_train("tiny", ["pool"], [0], None, root=root)


def test_rename_moves_records_only_to_a_name_that_builds_the_same_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = lambda: get_config("quick", steps=2, n_train=16, n_val=8)   # noqa: E731
    monkeypatch.setitem(tasks.TASKS, "tiny", tasks.Task("tiny", "a tiny legend task", tiny, None))
    root = tmp_path / "ckpt"
    rec = train_ck.train_hamnet("tiny", "nmf bptt init=reference", 0, root=root)
    with pytest.raises(ValueError, match="pick a name that says how it was trained"):
        train_ck.rename_hamnet("tiny", "nmf bptt init=reference", "nmf bptt init=pytorch", root)
    with pytest.raises(KeyError, match="no tiny record has head 'vq 2'"):
        train_ck.rename_hamnet("tiny", "vq 2", "vq 2 init=reference", root)
    assert train_ck.rename_hamnet("tiny", "nmf bptt init=reference", "nmf default init=reference", root) == [
        "tiny/nmf_default_init-reference_s0.pt"]
    files = ck.hamnet_files("tiny", root)
    assert list(files) == ["tiny/nmf_default_init-reference_s0.pt"] and not (root / "tiny/nmf_bptt_init-reference_s0.pt").exists()
    new = files["tiny/nmf_default_init-reference_s0.pt"]
    assert new["head"] == "nmf default init=reference" and new["sha256"] == rec["sha256"]
    assert new["command"] == 'python -m experiments.checkpoints train tiny "nmf default init=reference" --seeds 0'
    ck.load_hamnet("tiny/nmf_default_init-reference_s0.pt", root)   # the hash still holds
