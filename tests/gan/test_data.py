"""Data: digits, CIFAR-10 pickles, image folders, and the resumable batch order."""

import io
import pickle
import pickletools
import struct

import numpy as np
import pytest
import torch

from hamlib.gan.data import CIFAR10, ImageFolder, dataset_from_config, digits, read_cifar_batch
from hamlib.runtime import StepBatches


def test_digits():
    ds = digits(16)
    x, y = ds.tensors
    assert x.shape == (1797, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert y.unique().tolist() == list(range(10)) and y.dtype == torch.long
    with pytest.raises(ValueError, match="resolution"):
        digits(4)


def test_cifar10_reads_the_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 9, 4]}, f)
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    assert len(train) == 15 and len(test) == 3
    x, y = train[1]
    assert x.shape == (3, 32, 32) and y.item() == 9 and -1 <= x.min() and x.max() <= 1
    raw = pickle.load(open(tmp_path / "data_batch_1", "rb"))[b"data"][0]
    assert torch.allclose(train[0][0][0, 0, :3], torch.tensor(raw[:3], dtype=torch.float32) / 127.5 - 1)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        CIFAR10(tmp_path)


def test_image_folder(tmp_path):
    from PIL import Image

    for k, cls in enumerate(["n02", "n01"]):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((20, 30, 3), 40 * k + i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = ImageFolder(tmp_path, resolution=8)
    assert ds.classes == ["n01", "n02"] and len(ds) == 4 and [ds[i][1] for i in range(4)] == [0, 0, 1, 1]
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and y == 0
    assert torch.allclose(x, torch.full_like(x, 40 / 127.5 - 1), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(ValueError, match="data_root"):
        dataset_from_config("folder", None)


def test_batches_are_a_function_of_the_step():
    full = list(StepBatches(10, 4, seed=3, stop=6))
    assert list(StepBatches(10, 4, seed=3, start=4, stop=6)) == full[4:]
    assert len(full) == 6 and all(len(b) == 4 for b in full)
    assert len(set(sum(full[:2], []))) == 8                 # no repeats within an epoch
    assert full[:2] != full[2:4]                             # a new permutation per epoch


def test_ranks_split_each_global_batch():
    whole = StepBatches(12, 6, seed=0).batch(3)
    parts = [StepBatches(12, 6, seed=0, rank=r, world=2).batch(3) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(whole) and not set(parts[0]) & set(parts[1])
    with pytest.raises(ValueError, match="divisible"):
        StepBatches(12, 5, world=2)
    with pytest.raises(ValueError, match="larger"):
        StepBatches(3, 4)


# ---- files are data: CIFAR-10 pickles --------------------------------------------------------------------------

def _write_cifar(folder, labels=(0, 9, 4), protocol=2):
    """The python-version layout, pickled as CIFAR's own batches are (protocol 2, a dict of bytes keys)."""
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": b"fixture", b"labels": list(labels), b"filenames": [b"x.png"] * len(labels),
                 b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)


class _Payload:
    """Unpickling this runs exec(...), which creates the file `marker`: any code could run instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_well_formed_batches_load_with_every_protocol(tmp_path, protocol):
    _write_cifar(tmp_path, protocol=protocol)
    ds = CIFAR10(tmp_path)
    assert len(ds) == 15 and ds.y.tolist() == [0, 9, 4] * 5 and ds.x.dtype == torch.uint8


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2's str (BINSTRING opcodes), as the cPickle that wrote CIFAR-10 did."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(raw)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + raw)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2_str


def test_cifar10_batch_as_python2_wrote_it_loads(tmp_path):
    # CIFAR's files: protocol 2, Python 2 strings, and numpy 1's module name for the array rebuilder
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump({b"batch_label": b"training batch 1 of 5", b"labels": [3, 7],
                                       b"data": data, b"filenames": [b"a.png", b"b.png"]})
    raw = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    globals_named = [arg for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"]
    assert globals_named == ["numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"]
    (tmp_path / "batch").write_bytes(raw)
    x, y = read_cifar_batch(tmp_path / "batch")
    assert x.dtype == np.uint8 and np.array_equal(x, data) and y.tolist() == [3, 7]


def test_cifar10_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    _write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    batch = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Payload(marker)]}
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control")))          # the payload does run under pickle.load
    assert (tmp_path / "control").exists()
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_1: refusing global (__builtin__|builtins)\.exec"):
        CIFAR10(tmp_path)
    assert not marker.exists()


def test_cifar10_truncated_or_foreign_file_names_it(tmp_path):
    _write_cifar(tmp_path)
    whole = (tmp_path / "data_batch_4").read_bytes()
    (tmp_path / "data_batch_4").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_4: pickle data was truncated"):
        CIFAR10(tmp_path)
    (tmp_path / "data_batch_4").write_bytes(b"")
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_4: the pickle ends early"):
        CIFAR10(tmp_path)
    (tmp_path / "data_batch_4").write_bytes(b"<html>Not found</html>")
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_4: invalid load key"):
        CIFAR10(tmp_path)


def test_cifar10_os_system_global_is_refused(tmp_path):
    _write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    (tmp_path / "test_batch").write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())   # protocol 0: os.system
    with pytest.raises(pickle.UnpicklingError, match=r"test_batch: refusing global os.system"):
        CIFAR10(tmp_path, train=False)
    assert not marker.exists()


@pytest.mark.parametrize("bad, message", [
    ({b"labels": [1]}, r"expected a dict with b'data' and b'labels'"),
    ({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}, r"b'data' is float32 \(1, 3072\), expected uint8"),
    ({b"data": np.zeros((1, 100), np.uint8), b"labels": [1]}, r"b'data' is uint8 \(1, 100\)"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, r"2 images but 1 labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}, r"label 10 at index 1 is outside 0\.\.9"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [-1]}, r"label -1 at index 0 is outside 0\.\.9"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": ["cat"]}, r"b'labels' must be a list of ints"),
])
def test_cifar10_malformed_batches_name_the_file(tmp_path, bad, message):
    _write_cifar(tmp_path)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump(bad, f, protocol=2)
    with pytest.raises(ValueError, match=r"data_batch_2: " + message):
        CIFAR10(tmp_path)


# ---- files are data: image folders -----------------------------------------------------------------------------

def _png16(path, v):
    """A 16-bit greyscale PNG holding the uint16 array v (H, W)."""
    from PIL import Image
    Image.fromarray(v.astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"


def test_image_folder_skips_hidden_entries_and_matches_suffixes_in_any_case(tmp_path):
    from PIL import Image

    img = Image.fromarray(np.full((10, 10, 3), 200, np.uint8))
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
    img.save(tmp_path / "cat" / "a.PNG")
    img.save(tmp_path / "cat" / "b.Jpg", format="JPEG")
    img.save(tmp_path / "dog" / "c.jpeg")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / "._c.jpeg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")   # macOS resource fork
    (tmp_path / "dog" / "sub.png").mkdir()                                         # a folder, not a file
    for hidden in (".ipynb_checkpoints", ".DS_Store", ".cache"):
        (tmp_path / hidden).mkdir()
    img.save(tmp_path / ".ipynb_checkpoints" / "a-checkpoint.png")
    ds = ImageFolder(tmp_path, resolution=8)
    assert ds.classes == ["cat", "dog"]
    assert [(p.name, k) for p, k in ds.samples] == [("a.PNG", 0), ("b.Jpg", 0), ("c.jpeg", 1)]
    assert all(ds[i][0].shape == (3, 8, 8) for i in range(3))


def test_image_folder_refuses_an_empty_class_folder(tmp_path):
    from PIL import Image

    (tmp_path / "bird").mkdir()
    (tmp_path / "cat").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "cat" / "a.png")
    with pytest.raises(ValueError, match=r"class folder .*bird holds no images"):
        ImageFolder(tmp_path, resolution=4)


def test_image_folder_scales_16_bit_greyscale_instead_of_clipping(tmp_path):
    (tmp_path / "c").mkdir()
    levels = np.array([0, 257, 32896, 65535])                     # 0, 1, 128, 255 in 8 bits
    _png16(tmp_path / "c" / "g.png", np.tile(np.repeat(levels, 4), (16, 1)))   # (16, 16), 4 columns each
    x, _ = ImageFolder(tmp_path, resolution=16)[0]
    u8 = (x + 1) * 127.5                                          # back to 0..255
    assert torch.allclose(u8[:, :, [1, 5, 9, 14]], torch.tensor([0.0, 1, 128, 255]).expand(3, 16, 4), atol=1e-3)


def test_image_folder_truncated_image_names_its_path(tmp_path):
    from PIL import Image

    (tmp_path / "c").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "c" / "t.png")
    data = (tmp_path / "c" / "t.png").read_bytes()
    (tmp_path / "c" / "t.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(OSError, match=r"cannot read image .*c/t\.png: image file is truncated"):
        ImageFolder(tmp_path, resolution=8)[0]
