"""Download PASCAL VOC 2012 and SBD, and arrange them as hamlib.seg.data reads them.

    python data/prepare_voc.py                 # into data/VOCdevkit/VOC2012
    python data/prepare_voc.py --root /big/disk --keep-archives

Result (root/VOCdevkit/VOC2012):
    JPEGImages/                  17,125 JPEGs (VOC 2012 trainval)
    SegmentationClass/           VOC labels (palette PNG, 255 = boundary/ignore)
    SegmentationClassAug/        trainaug labels: SBD's (converted from .mat) + VOC's own
    ImageSets/Segmentation/      train.txt (1,464), val.txt (1,449), trainval.txt (2,913),
                                 trainaug.txt (10,582 = VOC train + SBD train + SBD val - VOC val)

Needs internet, ~2 GB of disk for the archives, numpy, scipy (to read SBD's .mat files) and
pillow. Both archives come over https and are checked against their published MD5 (the one
torchvision's VOCSegmentation and SBDataset check) before anything is extracted; a member that
could land outside the target folder (absolute path, "..", a link pointing out) or is not a
file, folder or link (a device, a fifo) stops the extraction before it writes anything, on
every supported Python (tarfile's "data" filter, where it exists, is applied as well). The VOC
test images (for the evaluation server) need an account at http://host.robots.ox.ac.uk:8080/
and are not downloaded here.
"""

import argparse
import hashlib
import shutil
import tarfile
import urllib.request
from pathlib import Path, PureWindowsPath

from hamlib.seg.metrics import voc_palette

VOC_URL = "https://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
VOC_MD5 = "6cd6e144f989b92b3379bac3b3de84fd"
SBD_URL = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz"
SBD_MD5 = "82b4d87ceb2ed10f6038a1cba92111cb"


def verify(path: Path, md5: str) -> Path:
    """Raise ValueError unless the file's MD5 is `md5`."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != md5:
        raise ValueError(f"{path}: MD5 {h.hexdigest()} is not the published {md5} (an incomplete or altered "
                         "download): delete it and run again")
    return path


def download(url, dest: Path, md5: str) -> Path:
    """`dest`, downloaded from `url` unless it is already there; verified either way."""
    if dest.is_file():
        print(f"have {dest}")
        return verify(dest, md5)
    print(f"downloading {url} -> {dest}")
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f, length=1 << 20)
    try:
        verify(tmp, md5)
    except ValueError:
        tmp.unlink()
        raise
    tmp.rename(dest)
    return dest


def unsafe_reason(m: tarfile.TarInfo):
    """Why extracting member `m` could write outside the target folder or make a special file; None if safe.

    A relative path or link target with no ".." stays below the folder it starts from, so these
    two rules keep every member, and every link, inside the target."""
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
        return "it is not a file, folder or link (a device or fifo)"
    named = [("path", m.name)] + ([("link target", m.linkname)] if m.issym() or m.islnk() else [])
    for what, name in named:
        if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
            return f"its {what} {name!r} is absolute"
        if ".." in name.replace("\\", "/").split("/"):
            return f"its {what} {name!r} contains '..'"
    return None


def extract(archive: Path, into: Path):
    """Extract `archive` into `into` after checking every member; an unsafe one is a ValueError, nothing written."""
    print(f"extracting {archive.name}")
    with tarfile.open(archive) as t:
        members = t.getmembers()
        for m in members:
            reason = unsafe_reason(m)
            if reason:
                raise ValueError(f"{archive}: refusing member {m.name!r}: {reason}; nothing was extracted")
            m.mode &= 0o755                      # no setuid/setgid/sticky, no group/other write
        if hasattr(tarfile, "data_filter"):      # Python >= 3.11.4 (and 3.10.12): its checks on top of ours
            t.extractall(into, members, filter="data")
        else:
            t.extractall(into, members)


def sbd_to_png(mat_path: Path, png_path: Path):
    """SBD stores GTcls.Segmentation (uint8, 0..20, no boundary class) in a MATLAB struct."""
    import numpy as np
    from PIL import Image
    from scipy.io import loadmat
    seg = loadmat(mat_path, squeeze_me=True, struct_as_record=False)["GTcls"].Segmentation
    im = Image.fromarray(np.asarray(seg, dtype=np.uint8), mode="P")
    im.putpalette(voc_palette())
    im.save(png_path)


def read_ids(path: Path):
    return [s.strip() for s in path.read_text().splitlines() if s.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(Path(__file__).resolve().parent), help="where VOCdevkit/ goes")
    p.add_argument("--keep-archives", action="store_true")
    args = p.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)

    voc_tar = download(VOC_URL, root / "VOCtrainval_11-May-2012.tar", VOC_MD5)
    sbd_tgz = download(SBD_URL, root / "benchmark.tgz", SBD_MD5)
    voc = root / "VOCdevkit" / "VOC2012"
    if not voc.is_dir():
        extract(voc_tar, root)
    sbd = root / "benchmark_RELEASE" / "dataset"
    if not sbd.is_dir():
        extract(sbd_tgz, root)

    sets = voc / "ImageSets" / "Segmentation"
    voc_train, voc_val = read_ids(sets / "train.txt"), read_ids(sets / "val.txt")
    sbd_ids = read_ids(sbd / "train.txt") + read_ids(sbd / "val.txt")
    val = set(voc_val)
    trainaug = sorted(set(voc_train) | (set(sbd_ids) - val))

    aug = voc / "SegmentationClassAug"
    aug.mkdir(exist_ok=True)
    for i, name in enumerate(trainaug):
        dst = aug / f"{name}.png"
        if dst.is_file():
            continue
        src = voc / "SegmentationClass" / f"{name}.png"
        if src.is_file():               # VOC's own label (with its 255 boundaries) wins
            shutil.copyfile(src, dst)
        else:
            sbd_to_png(sbd / "cls" / f"{name}.mat", dst)
        if i % 1000 == 0:
            print(f"labels {i}/{len(trainaug)}")
    missing = [n for n in trainaug if not (voc / "JPEGImages" / f"{n}.jpg").is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} trainaug images missing from JPEGImages (e.g. {missing[:3]})")
    (sets / "trainaug.txt").write_text("\n".join(trainaug) + "\n")
    print(f"trainaug: {len(trainaug)} images (expected 10582); val: {len(voc_val)}")

    if not args.keep_archives:
        voc_tar.unlink(missing_ok=True)
        sbd_tgz.unlink(missing_ok=True)
        shutil.rmtree(root / "benchmark_RELEASE", ignore_errors=True)
    print(f"done: data_root = {voc}")


if __name__ == "__main__":
    main()
