"""Read TensorFlow (V2 format) checkpoints into numpy arrays, without TensorFlow or protobuf.

A checkpoint with prefix ``P`` is two files:

``P.index``
    A LevelDB-format table (SSTable): sorted ``key -> value`` records in data blocks, an index
    block pointing at them and a 48-byte footer. The key ``""`` holds a ``BundleHeaderProto``
    (number of shards, endianness); every other key is a variable name whose value is a
    ``BundleEntryProto`` (dtype, shape, shard, offset, size). TensorFlow writes these tables
    uncompressed, so plain byte parsing is enough.
``P.data-00000-of-0000N``
    The tensors' raw bytes, back to back, in the byte order the header names.

Only the handful of protobuf fields needed are decoded (varints and length-delimited fields);
everything else is skipped by wire type, so a newer writer's extra fields do no harm.
Checksums are not verified (CRC32C is not in the standard library and would cost seconds in
pure Python); sizes and offsets are, so a truncated or mismatched file fails loudly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from encore.errors import EncoreError

__all__ = ["CheckpointError", "TensorEntry", "checkpoint_files", "read_checkpoint", "read_index"]

#: LevelDB's table magic number, the last 8 bytes of every ``.index`` file.
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
#: Each block is followed by a 1-byte compression type and a 4-byte CRC.
_BLOCK_TRAILER = 5

#: tensorflow/core/framework/types.proto -> numpy dtype (the numeric types a model may hold).
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("float32"),
    2: np.dtype("float64"),
    3: np.dtype("int32"),
    4: np.dtype("uint8"),
    5: np.dtype("int16"),
    6: np.dtype("int8"),
    9: np.dtype("int64"),
    10: np.dtype("bool"),
    17: np.dtype("uint16"),
    19: np.dtype("float16"),
    22: np.dtype("uint32"),
    23: np.dtype("uint64"),
}
_DT_STRING = 7


class CheckpointError(EncoreError):
    """A checkpoint file is missing, truncated or not in the format this reader understands."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """Where one variable lies in the data files (a decoded ``BundleEntryProto``)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint in checkpoint index")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("malformed varint in checkpoint index")


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into ``(field number, value)`` pairs, in order.

    Varints come back as ints, length-delimited fields as bytes; fixed-width fields are skipped
    because none of those this reader needs is fixed-width (the entry's crc32c is ignored).
    """
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((field, value))
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise CheckpointError("truncated field in checkpoint index")
            out.append((field, buf[pos:pos + n]))
            pos += n
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} in checkpoint index")
    if pos != len(buf):
        raise CheckpointError("truncated protobuf message in checkpoint index")
    return out


def _read_block(data: bytes, handle: bytes, pos: int = 0) -> tuple[list[tuple[bytes, bytes]], int]:
    """Parse the block a BlockHandle (two varints at ``handle[pos:]``) points to.

    Returns the block's ``(key, value)`` records and the position after the handle.
    """
    offset, pos = _varint(handle, pos)
    size, pos = _varint(handle, pos)
    if offset + size + _BLOCK_TRAILER > len(data):
        raise CheckpointError("checkpoint index is truncated (a block runs past the end of the file)")
    compression = data[offset + size]
    if compression != 0:
        raise CheckpointError(f"checkpoint index block is compressed (type {compression}); only uncompressed tables are read")
    block = data[offset:offset + size]
    if len(block) < 4:
        raise CheckpointError("checkpoint index block is too small")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise CheckpointError("checkpoint index block has a corrupt restart array")
    records: list[tuple[bytes, bytes]] = []
    key = b""
    p = 0
    while p < end:
        # Keys are prefix-compressed against the previous key (LevelDB block format).
        shared, p = _varint(block, p)
        non_shared, p = _varint(block, p)
        value_len, p = _varint(block, p)
        if shared > len(key) or p + non_shared + value_len > end:
            raise CheckpointError("checkpoint index block has a corrupt record")
        key = key[:shared] + block[p:p + non_shared]
        p += non_shared
        records.append((key, block[p:p + value_len]))
        p += value_len
    return records, pos


def checkpoint_files(prefix: str | Path) -> tuple[Path, str]:
    """The ``.index`` file of a checkpoint, and the string its data files' names start with.

    ``prefix`` may be the prefix TensorFlow's ``Saver`` wrote (``.../model.ckpt``), or a
    directory saved with an empty stem (``.../MSD_musicnn/`` holds ``.index`` and
    ``.data-00000-of-00001``, as the musicnn wheel ships them).
    """
    prefix = Path(prefix)
    if prefix.is_dir():
        # A string, not a Path: Path drops the trailing separator the empty stem needs.
        return prefix / ".index", f"{prefix}/"
    return Path(f"{prefix}.index"), str(prefix)


def read_index(prefix: str | Path) -> tuple[dict[str, TensorEntry], int, Literal["<", ">"]]:
    """Parse a checkpoint's ``.index`` table.

    Returns
    -------
    entries : dict mapping variable name to :class:`TensorEntry`, in the table's (sorted) order
    num_shards : number of ``.data-*`` files
    byteorder : ``"<"`` or ``">"``
    """
    index, _ = checkpoint_files(prefix)
    try:
        data = index.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint index {index}: {err.strerror or err}") from err
    if len(data) < _FOOTER_SIZE:
        raise CheckpointError(f"{index} is too short to be a checkpoint index ({len(data)} bytes)")
    (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
    if magic != _TABLE_MAGIC:
        raise CheckpointError(f"{index} is not a TensorFlow checkpoint index (bad table magic)")

    footer = data[len(data) - _FOOTER_SIZE:]
    # The footer holds the metaindex handle, then the index handle (both varint pairs).
    _, after_meta = _varint(footer, _varint(footer, 0)[1])
    index_block, _ = _read_block(data, footer, after_meta)

    num_shards = 1
    byteorder: Literal["<", ">"] = "<"
    entries: dict[str, TensorEntry] = {}
    for _, handle in index_block:
        records, _ = _read_block(data, handle)
        for key, value in records:
            fields = _proto_fields(value)
            if key == b"":
                # BundleHeaderProto: 1 num_shards, 2 endianness (0 little, 1 big), 3 version.
                for num, v in fields:
                    if num == 1:
                        num_shards = int(v)
                    elif num == 2:
                        byteorder = ">" if v == 1 else "<"
                continue
            entries[key.decode("utf-8")] = _entry(key.decode("utf-8"), fields)
    if not entries:
        raise CheckpointError(f"{index} holds no tensors")
    return entries, num_shards, byteorder


def _entry(name: str, fields: list[tuple[int, int | bytes]]) -> TensorEntry:
    # BundleEntryProto: 1 dtype, 2 shape, 3 shard_id, 4 offset, 5 size, 6 crc32c, 7 slices.
    dtype = shard_id = offset = size = 0
    shape: tuple[int, ...] = ()
    for num, v in fields:
        if num == 1:
            dtype = int(v)
        elif num == 2 and isinstance(v, bytes):
            # TensorShapeProto: repeated 2 dim { 1 size }, 3 unknown_rank.
            dims = []
            for dnum, dim in _proto_fields(v):
                if dnum == 2 and isinstance(dim, bytes):
                    dims.append(next((int(s) for n, s in _proto_fields(dim) if n == 1), 0))
            shape = tuple(dims)
        elif num == 3:
            shard_id = int(v)
        elif num == 4:
            offset = int(v)
        elif num == 5:
            size = int(v)
        elif num == 7:
            raise CheckpointError(f"variable {name!r} is saved as slices (partitioned), which this reader does not support")
    return TensorEntry(name=name, dtype=dtype, shape=shape, shard_id=shard_id, offset=offset, size=size)


def read_checkpoint(prefix: str | Path, *, skip_strings: bool = True) -> dict[str, np.ndarray]:
    """Load every numeric variable of a TensorFlow V2 checkpoint.

    Parameters
    ----------
    prefix : str or Path
        The checkpoint prefix (``.../model.ckpt``, for ``model.ckpt.index``), or a directory
        whose files have an empty stem (``.../MSD_musicnn/.index``).
    skip_strings : bool
        String tensors are variable-length and never model weights: leave them out (default),
        or raise :class:`CheckpointError` when ``False``.

    Returns
    -------
    dict[str, np.ndarray]
        Variable name -> array in native byte order, e.g. ``"dense/kernel"`` ->
        ``np.ndarray [shape=(in, out), dtype=float32]``. Optimizer slots (``.../Adam``) are
        included as they are stored; filter them out by name if only the model is wanted.

    Raises
    ------
    CheckpointError
        when a file is missing or unreadable, is not a checkpoint, or a tensor does not fit.
    """
    entries, num_shards, byteorder = read_index(prefix)
    _, stem = checkpoint_files(prefix)
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        if e.dtype == _DT_STRING:
            if skip_strings:
                continue
            raise CheckpointError(f"variable {name!r} is a string tensor")
        if e.dtype not in _DTYPES:
            raise CheckpointError(f"variable {name!r} has TensorFlow dtype {e.dtype}, which this reader does not support")
        if e.shard_id not in shards:
            path = Path(f"{stem}.data-{e.shard_id:05d}-of-{num_shards:05d}")
            try:
                shards[e.shard_id] = path.read_bytes()
            except OSError as err:
                raise CheckpointError(f"cannot read checkpoint data {path}: {err.strerror or err}") from err
        blob = shards[e.shard_id]
        dtype = _DTYPES[e.dtype].newbyteorder(byteorder)
        count = int(np.prod(e.shape, dtype=np.int64))
        if e.size != count * dtype.itemsize:
            raise CheckpointError(f"variable {name!r}: {e.size} bytes stored for shape {e.shape} of {dtype.name}")
        if e.offset + e.size > len(blob):
            raise CheckpointError(f"checkpoint data is truncated: variable {name!r} runs past the end of shard {e.shard_id}")
        arr = np.frombuffer(blob, dtype=dtype, count=count, offset=e.offset).reshape(e.shape)
        out[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return out
