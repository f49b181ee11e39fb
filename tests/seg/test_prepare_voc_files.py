"""data/prepare_voc.py's checksum and archive checks, on archives built here (no network)."""

import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "data" / "prepare_voc.py"


@pytest.fixture(scope="module")
def prep():
    spec = importlib.util.spec_from_file_location("prepare_voc", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(params=["with data_filter", "without data_filter"])
def python_kind(request, monkeypatch):
    """Every test runs as on this Python and as on one whose tarfile has no data filter (3.10 before .12)."""
    if request.param == "without data_filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


def _tar(path, members):
    """members: (TarInfo fields, bytes or None) -> a tar at `path`."""
    with tarfile.open(path, "w") as t:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for k, v in fields.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_good_archive_extracts(tmp_path, prep, python_kind):
    archive = _tar(tmp_path / "good.tar", [
        ({"name": "VOCdevkit", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
        ({"name": "VOCdevkit/VOC2012/a.txt", "mode": 0o6755}, b"hello"),      # setuid bits are dropped
        ({"name": "VOCdevkit/latest", "type": tarfile.SYMTYPE, "linkname": "VOC2012"}, None),
        ({"name": "VOCdevkit/VOC2012/b.txt", "type": tarfile.LNKTYPE, "linkname": "VOCdevkit/VOC2012/a.txt"}, None),
    ])
    target = tmp_path / "target"
    target.mkdir()
    prep.extract(archive, target)
    assert _files(target) == ["VOCdevkit", "VOCdevkit/VOC2012", "VOCdevkit/VOC2012/a.txt",
                              "VOCdevkit/VOC2012/b.txt", "VOCdevkit/latest"]
    assert (target / "VOCdevkit/latest/a.txt").read_bytes() == b"hello"
    assert (target / "VOCdevkit/VOC2012/b.txt").read_bytes() == b"hello"
    assert (target / "VOCdevkit/VOC2012/a.txt").stat().st_mode & 0o7000 == 0


SPECIAL = r"it is not a file, folder or link \(a device or fifo\)"


@pytest.mark.parametrize("bad, reason", [
    ({"name": "../escaped.txt"}, r"its path '\.\./escaped\.txt' contains '\.\.'"),
    ({"name": "VOCdevkit/../../escaped.txt"}, r"its path 'VOCdevkit/\.\./\.\./escaped\.txt' contains '\.\.'"),
    ({"name": "ABSOLUTE"}, r"its path '/.*/escaped\.txt' is absolute"),
    ({"name": "link", "type": tarfile.SYMTYPE, "linkname": "../outside"}, r"its link target '\.\./outside' contains"),
    ({"name": "link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"},
     r"its link target '/etc/passwd' is absolute"),
    ({"name": "hard", "type": tarfile.LNKTYPE, "linkname": "../escaped.txt"}, r"its link target .* contains '\.\.'"),
    ({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, SPECIAL),
    ({"name": "fifo", "type": tarfile.FIFOTYPE}, SPECIAL),
])
def test_unsafe_member_is_refused_and_nothing_is_written(tmp_path, prep, python_kind, bad, reason):
    outside = tmp_path / "outside"
    outside.mkdir()
    if bad["name"] == "ABSOLUTE":
        bad = {"name": str(outside / "escaped.txt")}
    data = b"payload" if bad.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else None
    (tmp_path / "archives").mkdir()
    archive = _tar(tmp_path / "archives" / "bad.tar", [
        ({"name": "VOCdevkit/ok.txt"}, b"fine"),                                 # a good member first
        (dict(bad), data),
    ])
    target = outside / "target"                                                  # "../escaped.txt" lands in outside/
    target.mkdir()
    with pytest.raises(ValueError, match=r"bad\.tar: refusing member .*: " + reason + r".*nothing was extracted"):
        prep.extract(archive, target)
    assert _files(outside) == ["target"] and _files(target) == []
    assert _files(tmp_path) == ["archives", "archives/bad.tar", "outside", "outside/target"]


def test_checksum(tmp_path, prep):
    f = tmp_path / "VOCtrainval_11-May-2012.tar"
    f.write_bytes(b"not the real archive")
    good = hashlib.md5(b"not the real archive").hexdigest()
    assert prep.verify(f, good) == f
    with pytest.raises(ValueError, match=rf"VOCtrainval_11-May-2012\.tar: MD5 {good} is not the published "
                                         rf"{prep.VOC_MD5}"):
        prep.verify(f, prep.VOC_MD5)


def test_published_checksums_and_https(prep):
    assert prep.VOC_MD5 == "6cd6e144f989b92b3379bac3b3de84fd" and prep.SBD_MD5 == "82b4d87ceb2ed10f6038a1cba92111cb"
    assert prep.VOC_URL.startswith("https://") and prep.SBD_URL.startswith("https://")
