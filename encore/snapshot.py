"""Snapshots of both tiers in one portable archive, restored into either backend.

``encore snapshot create`` writes ``encore-snapshot-<UTC time>.tar``::

    manifest.json       format and version, Encore version, creation time, the backend it came
                        from, and per tier: the collection definition (schema version, vectors,
                        parameters: ``CollectionSpec.fingerprint()``), payload indexes, track and
                        point counts, and the size and SHA-256 of its points file
    catalog.jsonl.gz    every point of the catalog collection, one JSON object a line
    world.jsonl.gz      every point of the world collection

A line is ``{"id", "payload", "dense": {name: base64 float32}, "sparse": {name: [base64 uint32
indices, base64 float32 values]}}`` (little-endian): vectors round-trip bit for bit.

Why not the engines' own snapshots: qdrant-edge 0.9 applies a server's shard snapshot but cannot
make one; a copy of the shard folders is tied to the engine version and no server can load it;
qdrant-client's local mode has no snapshots. One portable format restores into any backend, so a
snapshot of the embedded store restored with ``ENCORE_QDRANT_URL`` set moves both tiers to a
Qdrant server (collections created with that deployment's shard and replica settings), and back.
The price is that a restore rebuilds the indexes.

Consistency: the embedded store is locked to the process taking the snapshot, so nothing writes
while it reads. On a shared server, writes made by others during the export may or may not be in
it. Either way only complete catalog tracks are exported (:mod:`encore.catalog`, crash safety).

A restore first reads the whole archive (checksums, every line decoded and its vectors checked
against the declared sizes, counts), compares the snapshot's collection definitions with this
build's, and checks that nothing is stored unless ``force``: a damaged or mismatched archive, or
one that would overwrite data, changes nothing. A restore interrupted part-way leaves part of the
snapshot stored; run it again with ``force``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from encore import __version__
from encore.catalog import PENDING_SEGMENT
from encore.errors import BadInput, SchemaMismatch, StorageError
from encore.storage import Filter, MatchValue, Point, Record, SparseVector, VectorStore, check_fingerprint
from schemas.collections import CollectionSpec
from schemas.snapshot import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_FORMAT_VERSION,
    SnapshotCreated,
    SnapshotManifest,
    SnapshotRestored,
    SnapshotTier,
    Tier,
    TierCounts,
)

if TYPE_CHECKING:
    from encore.config import Settings
    from encore.encoders.musicnn import MusicnnEncoder
    from encore.service import Encore

MANIFEST = "manifest.json"
#: Points read from or written to the store per request.
BATCH = 512
#: gzip level of the points files: vectors are near-random bytes, so higher levels buy little.
_GZIP_LEVEL = 4
_CHUNK = 1 << 20


# --- create -------------------------------------------------------------------------------------


def create_snapshot(enc: Encore, out_dir: str | os.PathLike[str], *, batch: int = BATCH,
                    now: datetime | None = None) -> SnapshotCreated:
    """Write both tiers of an opened facade to ``out_dir/encore-snapshot-<UTC time>.tar``.

    The archive appears under its name only once complete (written aside, synced, renamed).
    Catalog tracks found incomplete (on a shared server, an add or removal in progress; else
    damage) are left out and counted in ``skipped_tracks``.

    Raises
    ------
    BadInput
        ``out_dir`` is not a folder (or cannot be created).
    StorageError
        the store failed.
    """
    started = time.perf_counter()
    created = (now or datetime.now(UTC)).replace(microsecond=0)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{folder}: cannot write a snapshot there ({exc.strerror or exc})") from None
    target = _free_name(folder, f"encore-snapshot-{created.strftime('%Y%m%dT%H%M%SZ')}")

    with tempfile.TemporaryDirectory(prefix=".encore-snapshot-", dir=folder) as tmp:
        work = Path(tmp)
        heads = _catalog_heads(enc.store, enc.catalog.collection, batch)
        seen: dict[str, int] = dict.fromkeys(heads, 0)

        def complete_track(r: Record) -> bool:
            p = r.payload or {}
            tid = p.get("track_id")
            if tid not in seen or p.get("segment") == PENDING_SEGMENT:
                return False  # a pending marker, or a segment of an interrupted add or removal
            seen[tid] += 1
            return True

        catalog = _write_points(work / "catalog.jsonl.gz",
                                _lines(_records(enc.store, enc.catalog.collection, batch, keep=complete_track)))
        short = {tid for tid, n in seen.items() if n != heads[tid]}
        if short:  # a track lost segments while we read, or storage damage: leave it out whole
            catalog = _write_points(work / "catalog.jsonl.gz", _filtered_lines(work / "catalog.jsonl.gz", drop=short))
        world = _write_points(work / "world.jsonl.gz", _lines(_records(enc.store, enc.world.name, batch)))
        tiers: dict[Tier, SnapshotTier] = {"catalog": _tier(enc.catalog.spec, catalog, skipped=len(short)),
                                           "world": _tier(enc.world.spec, world)}
        manifest = SnapshotManifest(format=SNAPSHOT_FORMAT, format_version=SNAPSHOT_FORMAT_VERSION,
                                    encore_version=__version__, created=created, backend=enc.store.backend,
                                    tiers=tiers)
        (work / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        partial = work / "archive.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(work / MANIFEST, arcname=MANIFEST)  # first: a reader checks it before the rest
            for t in tiers.values():
                tar.add(work / t.file, arcname=t.file)
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    _fsync_dir(folder)
    return SnapshotCreated(path=str(target), bytes=target.stat().st_size,
                           took_s=round(time.perf_counter() - started, 3), manifest=manifest)


def _free_name(folder: Path, stem: str) -> Path:
    path, n = folder / f"{stem}.tar", 1
    while path.exists():
        path, n = folder / f"{stem}-{n}.tar", n + 1
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _records(store: VectorStore, collection: str, batch: int,
             keep: Callable[[Record], bool] | None = None) -> Iterator[Record]:
    offset = None
    while True:
        records, offset = store.scroll(collection, limit=batch, offset=offset, with_payload=True, with_vectors=True)
        yield from (r for r in records if keep is None or keep(r))
        if offset is None:
            return


def _catalog_heads(store: VectorStore, collection: str, batch: int) -> dict[str, int]:
    """Complete catalog tracks (their head is stored) and how many segments each has."""
    heads: dict[str, int] = {}
    offset = None
    while True:
        records, offset = store.scroll(collection, filter=Filter(must=(MatchValue("segment", 0),)), limit=batch,
                                       offset=offset, with_payload=["track_id", "segments"])
        heads.update({str(r.payload["track_id"]): int(r.payload.get("segments") or 0) for r in records if r.payload})
        if offset is None:
            return heads


@dataclass(frozen=True, slots=True)
class _Written:
    file: str
    points: int
    tracks: int
    sha256: str
    bytes: int


def _write_points(path: Path, lines: Iterator[tuple[bytes, str]]) -> _Written:
    """Write encoded points (line, track key) as gzip'd JSON lines, synced; hash the file."""
    tmp = path.with_name(path.name + ".tmp")
    sha = hashlib.sha256()
    points = 0
    tracks: set[str] = set()
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=_HashingWriter(raw, sha), mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
            for line, track in lines:
                gz.write(line)
                points += 1
                tracks.add(track)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    return _Written(path.name, points, len(tracks), sha.hexdigest(), path.stat().st_size)


def _lines(records: Iterator[Record]) -> Iterator[tuple[bytes, str]]:
    """Encoded points with the track each belongs to (a catalog segment's track, a world point itself)."""
    for r in records:
        yield _encode(r), str((r.payload or {}).get("track_id") or r.id)


def _filtered_lines(path: Path, *, drop: set[str]) -> Iterator[tuple[bytes, str]]:
    with gzip.open(path, "rb") as gz:
        for line in gz:
            obj = json.loads(line)
            track = str(obj["payload"].get("track_id") or obj["id"])
            if track not in drop:
                yield line, track


def _tier(spec: CollectionSpec, w: _Written, *, skipped: int = 0) -> SnapshotTier:
    return SnapshotTier(collection=spec.name, schema_version=spec.schema_version,
                        fingerprint=json.loads(json.dumps(spec.fingerprint())),
                        payload_indexes=dict(spec.payload_indexes), points=w.points, tracks=w.tracks,
                        skipped_tracks=skipped, file=w.file, sha256=w.sha256, bytes=w.bytes)


class _HashingWriter:
    """A binary sink that hashes what goes through it."""

    def __init__(self, fh: IO[bytes], sha: Any) -> None:
        self.fh, self.sha = fh, sha

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode("ascii")


def _encode(r: Record) -> bytes:
    dense: dict[str, str] = {}
    sparse: dict[str, list[str]] = {}
    for name, v in (r.vectors or {}).items():
        if isinstance(v, SparseVector):
            sparse[name] = [_b64(np.asarray(v.indices, dtype="<u4")), _b64(np.asarray(v.values, dtype="<f4"))]
        else:
            dense[name] = _b64(np.asarray(v, dtype="<f4"))
    line = {"id": r.id, "payload": r.payload or {}, "dense": dense, "sparse": sparse}
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


# --- read and check -----------------------------------------------------------------------------


def verify_snapshot(path: str | os.PathLike[str]) -> SnapshotManifest:
    """Read a whole archive and check it: manifest, sizes, checksums, every point decoded, counts.

    Raises :class:`BadInput` (one line) naming what is wrong; reads nothing but the archive.
    """
    manifest, _ = _scan(Path(path), sink=None)
    return manifest


def _scan(path: Path, *, sink: Callable[[Tier, list[Point]], None] | None,
          batch: int = BATCH) -> tuple[SnapshotManifest, dict[Tier, int]]:
    """Read the archive, checking everything; hand the points to ``sink`` in batches when given."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    try:
        with tarfile.open(path, "r:") as tar:
            manifest = _manifest(tar, path)
            counts: dict[Tier, int] = {}
            for tier, t in manifest.tiers.items():
                counts[tier] = _scan_tier(tar, path, tier, t, sink, batch)
            return manifest, counts
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BadInput(f"{path}: not a readable Encore snapshot (damaged or truncated: {exc})") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the snapshot ({exc.strerror or exc})") from None


def _manifest(tar: tarfile.TarFile, path: Path) -> SnapshotManifest:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise BadInput(f"{path}: not an Encore snapshot (no {MANIFEST})") from None
    fh = tar.extractfile(member)
    if fh is None:
        raise BadInput(f"{path}: {MANIFEST} is not a file")
    try:
        data = json.loads(fh.read())
    except ValueError as exc:
        raise BadInput(f"{path}: {MANIFEST} is damaged ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise BadInput(f"{path}: not an Encore snapshot ({MANIFEST} names no format {SNAPSHOT_FORMAT!r})")
    if data.get("format_version") != SNAPSHOT_FORMAT_VERSION:
        raise BadInput(f"{path}: snapshot format version {data.get('format_version')}; this Encore "
                       f"({__version__}) reads version {SNAPSHOT_FORMAT_VERSION}")
    try:
        manifest = SnapshotManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadInput(f"{path}: {MANIFEST} is damaged ({where}: {first['msg']})") from None
    missing = {"catalog", "world"} - set(manifest.tiers)
    if missing:
        raise BadInput(f"{path}: the snapshot lacks the {' and '.join(sorted(missing))} tier")
    return manifest


class _HashingReader:
    """A binary source that hashes what is read through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _scan_tier(tar: tarfile.TarFile, path: Path, tier: Tier, t: SnapshotTier,
               sink: Callable[[Tier, list[Point]], None] | None, batch: int) -> int:
    try:
        member = tar.getmember(t.file)
    except KeyError:
        raise BadInput(f"{path}: the snapshot lacks {t.file}, the {tier} points") from None
    if member.size != t.bytes:
        raise BadInput(f"{path}: {t.file} has {member.size} bytes, the manifest says {t.bytes}: damaged")
    fh = tar.extractfile(member)
    if fh is None:
        raise BadInput(f"{path}: {t.file} is not a file")
    dims = {k: int(v[0]) for k, v in (t.fingerprint.get("dense") or {}).items()}
    sparse_names = set(t.fingerprint.get("sparse") or {})
    reader = _HashingReader(fh)
    n = 0
    pending: list[Point] = []
    with gzip.GzipFile(fileobj=reader, mode="rb") as gz:
        for n, line in enumerate(gz, 1):
            point = _decode(line, dims, sparse_names, where=f"{path}: {t.file} line {n}")
            if sink is not None:
                pending.append(point)
                if len(pending) == batch:
                    sink(tier, pending)
                    pending = []
    reader.drain()
    if sink is not None and pending:
        sink(tier, pending)
    if reader.sha.hexdigest() != t.sha256:
        raise BadInput(f"{path}: {t.file} does not match its checksum: the snapshot is damaged")
    if n != t.points:
        raise BadInput(f"{path}: {t.file} holds {n} points, the manifest says {t.points}: damaged")
    return n


def _decode(line: bytes, dims: dict[str, int], sparse_names: set[str], *, where: str) -> Point:
    try:
        obj = json.loads(line)
        point_id = str(uuid.UUID(obj["id"]))
        payload = obj["payload"]
        if not isinstance(payload, dict):
            raise ValueError("payload is not an object")
        vectors: dict[str, Any] = {}
        for name, blob in obj["dense"].items():
            if name not in dims:
                raise ValueError(f"unknown dense vector {name!r}")
            v = np.frombuffer(base64.b64decode(blob, validate=True), dtype="<f4")
            if v.size != dims[name] or not np.all(np.isfinite(v)):
                raise ValueError(f"vector {name!r} has {v.size} values, not {dims[name]} finite ones")
            vectors[name] = v.astype(np.float64).tolist()
        for name, (idx_blob, val_blob) in obj["sparse"].items():
            if name not in sparse_names:
                raise ValueError(f"unknown sparse vector {name!r}")
            idx = np.frombuffer(base64.b64decode(idx_blob, validate=True), dtype="<u4")
            val = np.frombuffer(base64.b64decode(val_blob, validate=True), dtype="<f4")
            if idx.size != val.size:
                raise ValueError(f"sparse vector {name!r} has {idx.size} indices and {val.size} values")
            vectors[name] = SparseVector(indices=idx.tolist(), values=val.astype(np.float64).tolist())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInput(f"{where} is damaged ({exc})") from None
    return Point(id=point_id, vectors=vectors, payload=payload)


# --- restore ------------------------------------------------------------------------------------


def restore_snapshot(store: VectorStore, settings: Settings, path: str | os.PathLike[str], *, force: bool = False,
                     verified: SnapshotManifest | None = None, encoder: MusicnnEncoder | None = None,
                     batch: int = BATCH) -> SnapshotRestored:
    """Restore an archive into ``store`` (embedded, or a Qdrant server: moving tiers between them).

    Parameters
    ----------
    store : an open store (the caller closes it)
    settings : the deployment's settings: they define the collections (names, shards, replicas)
    path : the archive
    force : replace the tiers already stored; without it, a store holding points is refused
    verified : the manifest :func:`verify_snapshot` returned for ``path``, if the caller checked
        the archive already (the CLI does, before it opens the store); else it is checked here

    Raises
    ------
    BadInput
        the archive is damaged or truncated, its collection definitions differ from this build's,
        or the store holds data and ``force`` is not given. Nothing is changed.
    StorageError
        the store failed, or holds other counts than the snapshot after the restore.
    """
    from encore.service import Encore

    started = time.perf_counter()
    path = Path(path)
    manifest = verified if verified is not None else verify_snapshot(path)
    enc = Encore(store, settings, encoder=encoder, open_collections=False)
    specs: dict[Tier, CollectionSpec] = {"catalog": enc.catalog.spec, "world": enc.world.spec}
    for tier, spec in specs.items():
        try:
            check_fingerprint(f"{path}: the {tier} tier", manifest.tiers[tier].fingerprint, spec.fingerprint(),
                              advice=f"Restore it with the settings and the Encore version it was taken with "
                                     f"({manifest.encore_version}).")
        except SchemaMismatch as err:
            raise BadInput(str(err)) from None

    held: list[str] = []
    for spec in specs.values():
        if not store.collection_exists(spec.name):
            continue
        try:
            store.ensure_collection(spec)
        except SchemaMismatch:
            held.append(f"{spec.name} (written with other parameters)")
            continue
        points = store.count(spec.name)
        if points:
            held.append(f"{spec.name} ({points} points)")
    if held and not force:
        raise BadInput(f"the store already holds {' and '.join(held)}; restore --force replaces them")
    if force:
        for spec in specs.values():
            store.drop_collection(spec.name)

    enc.open_collections()
    names = {tier: spec.name for tier, spec in specs.items()}
    _scan(path, sink=lambda tier, points: store.upsert(names[tier], points), batch=batch)

    counts = {"catalog": TierCounts(tracks=enc.catalog.count_tracks(), points=enc.catalog.count_points()),
              "world": TierCounts(tracks=enc.world.count(), points=enc.world.count())}
    for tier, got in counts.items():
        want = manifest.tiers[tier]
        if (got.tracks, got.points) != (want.tracks, want.points):
            raise StorageError(f"after the restore the {tier} tier holds {got.tracks} tracks and {got.points} points; "
                               f"the snapshot has {want.tracks} and {want.points}")
    return SnapshotRestored(path=str(path), backend=store.backend, replaced=bool(held), tiers=counts,
                            took_s=round(time.perf_counter() - started, 3))


__all__ = ["create_snapshot", "restore_snapshot", "verify_snapshot"]
