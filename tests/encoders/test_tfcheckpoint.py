"""The TF checkpoint reader, on musicnn's real checkpoint and on small ones written here byte by byte."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from encore.encoders.musicnn import default_checkpoint
from encore.encoders.tfcheckpoint import CheckpointError, read_checkpoint, read_index
from encore.errors import EncoreError

OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")


def model_variables(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in variables.items() if not k.endswith(OPTIMIZER_SUFFIXES) and not k.endswith("_power")}


def test_musicnn_msd_checkpoint_has_64_variables_and_792k_parameters() -> None:
    variables = read_checkpoint(default_checkpoint())
    model = model_variables(variables)
    assert len(model) == 64
    assert sum(v.size for v in model.values()) == 792_079
    assert model["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert model["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert model["dense_1/kernel"].shape == (200, 50)
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in model.values())
    # Trained weights, not zeros or an initialiser's constants.
    assert model["batch_normalization_10/moving_variance"].min() > 0
    assert np.std(model["dense/kernel"]) > 1e-3


# --------------------------------------------------------------------------------------------
# A minimal writer of the same format, so the reader is tested on files whose content is known.


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _field_bytes(num: int, value: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _block(records: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block with prefix-compressed keys and one restart point."""
    out, prev = bytearray(), b""
    for key, value in records:
        shared = 0
        while shared < min(len(key), len(prev)) and key[shared] == prev[shared]:
            shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    return bytes(out) + struct.pack("<II", 0, 1)


def write_checkpoint(prefix: str, tensors: dict[str, np.ndarray], *, dtype_codes: dict[str, int]) -> None:
    data, records = bytearray(), [(b"", _field_varint(1, 1))]  # header: one shard, little-endian
    for name in sorted(tensors):
        arr = np.array(tensors[name], order="C")  # ascontiguousarray would make a scalar 1-d
        shape = b"".join(_field_bytes(2, _field_varint(1, d)) for d in arr.shape)
        entry = (_field_varint(1, dtype_codes[str(arr.dtype)]) + _field_bytes(2, shape)
                 + _field_varint(4, len(data)) + _field_varint(5, arr.nbytes))
        entry += struct.pack("<BI", 6 << 3 | 5, 0)  # a crc32c field (fixed32), which the reader skips
        records.append((name.encode(), entry))
        data += arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    table = bytearray()
    data_block = _block(records)
    data_handle = _varint(0) + _varint(len(data_block))
    table += data_block + b"\0\0\0\0\0"
    meta_block = _block([])
    meta_handle = _varint(len(table)) + _varint(len(meta_block))
    table += meta_block + b"\0\0\0\0\0"
    index_block = _block([(records[-1][0], data_handle)])
    index_handle = _varint(len(table)) + _varint(len(index_block))
    table += index_block + b"\0\0\0\0\0"
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(prefix + ".index").write_bytes(bytes(table) + footer)
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))


CODES = {"float32": 1, "float64": 2, "int32": 3, "int64": 9, "float16": 19}


@pytest.fixture
def small(tmp_path: Path) -> tuple[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    tensors = {
        "layer/kernel": rng.standard_normal((3, 4, 5)).astype(np.float32),
        "layer/bias": rng.standard_normal(5).astype(np.float64),
        "layer_1/kernel": rng.standard_normal((300,)).astype(np.float16),
        "global_step": np.array(123456789012, dtype=np.int64),
        "counts": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
    }
    prefix = str(tmp_path / "model.ckpt")
    write_checkpoint(prefix, tensors, dtype_codes=CODES)
    return prefix, tensors


def test_reads_back_what_was_written(small) -> None:
    prefix, tensors = small
    got = read_checkpoint(prefix)
    assert sorted(got) == sorted(tensors)
    for name, arr in tensors.items():
        assert got[name].dtype == arr.dtype, name
        assert got[name].shape == arr.shape, name
        np.testing.assert_array_equal(got[name], arr)
    entries, shards, byteorder = read_index(prefix)
    assert (shards, byteorder) == (1, "<")
    assert list(entries) == sorted(tensors)


def test_directory_with_empty_stem(tmp_path: Path) -> None:
    # musicnn ships its checkpoints as "MSD_musicnn/.index": the prefix is the directory.
    folder = tmp_path / "ckpt"
    folder.mkdir()
    write_checkpoint(str(folder) + "/", {"w": np.ones((2, 2), np.float32)}, dtype_codes=CODES)
    assert read_checkpoint(folder)["w"].sum() == 4


def test_missing_files_are_clear_errors(small, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read checkpoint index .*nowhere"):
        read_checkpoint(tmp_path / "nowhere")
    prefix, _ = small
    Path(prefix + ".data-00000-of-00001").unlink()
    with pytest.raises(CheckpointError, match="cannot read checkpoint data"):
        read_checkpoint(prefix)


def test_truncated_data_is_refused(small) -> None:
    prefix, _ = small
    data = Path(prefix + ".data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(prefix)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "x.index").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        read_checkpoint(tmp_path / "x")
    (tmp_path / "y.index").write_bytes(b"short")
    with pytest.raises(CheckpointError, match="too short"):
        read_checkpoint(tmp_path / "y")


def test_truncated_index_is_refused(small) -> None:
    prefix, _ = small
    index = Path(prefix + ".index")
    raw = index.read_bytes()
    # Keep the footer but drop bytes in front of it: the block handles now point past the end.
    index.write_bytes(raw[:20] + raw[-48:])
    with pytest.raises(CheckpointError):
        read_checkpoint(prefix)


def test_checkpoint_errors_are_encore_errors() -> None:
    assert issubclass(CheckpointError, EncoreError)
