import gzip
import hashlib
import struct

import numpy as np
import pytest

from digitlab.datasets import mnist as data
from digitlab.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def test_parse_idx_roundtrip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = data.parse_idx(idx_bytes(arr))
    assert out.shape == (2, 3, 4) and (out == arr).all()


@pytest.mark.parametrize("raw, msg", [
    (b"\x01\x02\x08\x03" + b"\0" * 12, "magic"),
    (b"\x00\x00\x42\x01" + b"\0" * 4, "magic"),
    (b"\x00\x00", "not an IDX"),
])
def test_parse_idx_bad_magic(raw, msg):
    with pytest.raises(DataError, match=msg):
        data.parse_idx(raw, "f")


def test_parse_idx_truncated():
    raw = idx_bytes(np.zeros((5, 28, 28)))
    with pytest.raises(DataError, match="truncated"):
        data.parse_idx(raw[:-10], "images")
    with pytest.raises(DataError, match="truncated IDX header"):
        data.parse_idx(raw[:9], "images")


def _fake_dataset(tmp_path, monkeypatch, n=3):
    """A tiny IDX set whose checksums we register in place of MNIST's."""
    imgs = np.random.default_rng(0).integers(0, 255, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8)
    files = {"train-images-idx3-ubyte": idx_bytes(imgs), "train-labels-idx1-ubyte": idx_bytes(labels)}
    sums = dict(data.SHA256)
    for name, raw in files.items():
        sums[name] = hashlib.sha256(raw).hexdigest()
    monkeypatch.setattr(data, "SHA256", sums)
    return files, imgs, labels


def test_local_dir_gz_and_plain(tmp_path, monkeypatch):
    files, imgs, labels = _fake_dataset(tmp_path, monkeypatch)
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(files["train-images-idx3-ubyte"]))
    (d / "train-labels-idx1-ubyte").write_bytes(files["train-labels-idx1-ubyte"])
    monkeypatch.setattr(data, "load_mnist", data.load_mnist)
    X = data._load_array("train-images-idx3-ubyte", tmp_path / "data")
    y = data._load_array("train-labels-idx1-ubyte", tmp_path / "data")
    assert (X == imgs).all() and (y == labels).all()
    # The second load comes from the memory-mapped .npy cache.
    again = data._load_array("train-images-idx3-ubyte", tmp_path / "data")
    assert isinstance(again, np.memmap) and (again == imgs).all()


def test_checksum_mismatch_names_file(tmp_path, monkeypatch):
    files, _, _ = _fake_dataset(tmp_path, monkeypatch)
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    bad = bytearray(files["train-images-idx3-ubyte"])
    bad[-1] ^= 0xFF
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes(bad))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: SHA-256 mismatch"):
        data._load_array("train-images-idx3-ubyte", tmp_path)


def test_corrupt_cached_file_is_deleted(tmp_path, monkeypatch):
    files, _, _ = _fake_dataset(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    monkeypatch.setenv("DIGITLAB_CACHE", str(cache))
    monkeypatch.delenv("DIGITLAB_DATA", raising=False)
    (cache / "mnist").mkdir(parents=True)
    bad = cache / "mnist" / "train-labels-idx1-ubyte"
    bad.write_bytes(files["train-labels-idx1-ubyte"][:-1] + b"\x07")
    with pytest.raises(DataError, match="deleted"):
        data._load_array("train-labels-idx1-ubyte")
    assert not bad.exists()


def test_download_from_mirror_verified_and_atomic(tmp_path, monkeypatch):
    files, imgs, _ = _fake_dataset(tmp_path, monkeypatch)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(files["train-images-idx3-ubyte"]))
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"garbage"))
    monkeypatch.setattr(data, "MIRRORS", (mirror.as_uri() + "/",))
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIGITLAB_DATA", raising=False)
    X = data._load_array("train-images-idx3-ubyte")
    assert (X == imgs).all()
    assert (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte").is_file()
    with pytest.raises(DataError, match="--data-dir"):
        data._load_array("train-labels-idx1-ubyte")
    # A failed download leaves nothing that could pass for the file.
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == ["train-images-idx3-ubyte"]


def test_offline_and_missing_gives_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MIRRORS", ((tmp_path / "nowhere").as_uri() + "/",))
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIGITLAB_DATA", raising=False)
    with pytest.raises(DataError) as info:
        data.load_mnist("test")
    assert "DIGITLAB_DATA" in str(info.value) and "--data-dir" in str(info.value)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load_mnist("test", data_dir=tmp_path / "nope")


def test_real_mnist_shapes(mnist_test):
    assert mnist_test.images.shape == (10000, 28, 28) and mnist_test.images.dtype == np.uint8
    assert mnist_test.labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_validation_split_disjoint(small_train):
    tr, val = data.train_val_split(small_train, 200, seed=3)
    assert len(tr) + len(val) == len(small_train) and len(val) == 200
