"""Embedded storage over qdrant-edge (``qdrant-edge-py``): the Qdrant engine in this process.

Layout under the store root::

    <root>/.encore.lock                 exclusive advisory lock (fcntl.flock) + owner pid
    <root>/<collection>/encore_schema.json   the CollectionSpec fingerprint the data was written with
    <root>/<collection>/...             one EdgeShard (segments, WAL, edge_config.json)

Behaviour is the one documented in :mod:`encore.storage` and shared with
:class:`~encore.storage.remote.RemoteStore`. Engine-specific notes:

* qdrant-edge returns ids as ``uuid.UUID``; they are turned into canonical strings here.
* The Python binding turns ``MatchValue(True)`` into ``MatchValue(1)`` (bool is an int subclass and
  the binding tries int first), which matches no bool payload. A ``numpy.bool_`` is passed instead,
  which the binding does read as a bool.
* Writes (upsert, delete, index creation, open/close) hold one lock per store and end with
  ``flush()``, so acknowledged writes are on disk. Reads take no lock: the engine serves
  concurrent reads, also while a write is applied (tests/storage).
* Durability, checked with strace and kill -9 (tests/test_crash_safety.py): one upsert or delete
  is one engine update, appended to the shard's write-ahead log (a memory-mapped file) before it is
  applied; ``flush()`` then msyncs the WAL and fsyncs the segment files. So a write that returned
  survives kill -9 and, as far as the disk honours fsync, power loss; a write cut short by a crash
  is replayed whole from the WAL at the next load or not at all (a torn record is discarded).
* Only one process may own a root: :class:`EdgeStore` takes a non-blocking ``flock`` on
  ``<root>/.encore.lock`` and raises StorageError naming the owner's pid when it is held. (The
  engine also locks each shard's WAL, so a second open of a shard fails even without ours.)
* Segments are not optimized in the background: :meth:`EdgeStore.optimize` runs the optimizers
  (vacuum, merging, HNSW indexing of dense vectors); call it after a bulk load.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from encore.errors import StorageError
from encore.storage._common import (
    LIVE_IDF,
    TARGET_MIDPOINT,
    _candidates,
    _check_fingerprint,
    _dense,
    _engine_errors,
    _formula_defaults,
    _index_current,
    _index_options,
    _is_empty,
    _payload_out,
    _payload_selector,
    _point_id,
    _soft_bounds,
    _sparse,
    _unique_ids,
    _vectors_out,
)
from encore.storage.base import (
    Filter,
    FusedQuery,
    HasId,
    Hit,
    MatchAny,
    MatchValue,
    Point,
    QuerySpec,
    Range,
    Record,
    SparseVector,
)
from schemas.collections import CollectionSpec

SCHEMA_FILE = "encore_schema.json"
#: What qdrant-edge writes when it creates a shard: a collection exists once this does.
SHARD_CONFIG = "edge_config.json"
LOCK_FILE = ".encore.lock"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class _Collection:
    __slots__ = ("shard", "idf_vectors", "path")

    def __init__(self, shard: Any, idf_vectors: set[str], path: Path) -> None:
        self.shard = shard
        self.idf_vectors = idf_vectors
        self.path = path


class EdgeStore:
    """:class:`~encore.storage.base.VectorStore` over qdrant-edge, one shard per collection."""

    backend = "edge"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_search_threads: int | None = None,
        live_idf: bool = LIVE_IDF,
    ) -> None:
        """Open (creating it if needed) the store under ``root`` and take its process lock.

        ``max_search_threads`` sizes each shard's search pool (None: derived from the CPU count);
        ``live_idf`` see :data:`encore.storage._common.LIVE_IDF`.
        """
        self.root = Path(root)
        self.live_idf = live_idf
        self._max_search_threads = max_search_threads
        self._lock = threading.RLock()
        self._collections: dict[str, _Collection] = {}
        self._closed = False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage directory {self.root}: {exc}") from exc
        self._lock_fd = _acquire_root_lock(self.root)

    # --- lifecycle --------------------------------------------------------------------------

    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the shard (schema record first, then shard, then payload indexes) or open and check it.

        Raises SchemaMismatch when ``encore_schema.json`` differs from ``spec.fingerprint()`` or
        when the directory holds a shard without such a record.
        """
        path = self._path(spec.name)
        schema_path = path / SCHEMA_FILE
        fingerprint = spec.fingerprint()
        with self._lock, _engine_errors(f"opening collection {spec.name!r} in {self.root}"):
            self._check_open()
            if schema_path.exists():
                try:
                    stored = json.loads(schema_path.read_text())
                except (OSError, ValueError) as exc:
                    raise StorageError(f"cannot read {schema_path}: {exc}") from exc
                _check_fingerprint(f"collection {spec.name!r} in {path}", stored, fingerprint)
            elif path.exists() and any(not p.name.endswith(".tmp") for p in path.iterdir()):
                _check_fingerprint(f"collection {spec.name!r} in {path}", None, fingerprint)
            else:
                path.mkdir(parents=True, exist_ok=True)
                _write_atomic(schema_path, json.dumps(fingerprint, indent=2, sort_keys=True))

            coll = self._collections.get(spec.name)
            if coll is None:
                coll = self._open_shard(spec.name, spec)
                self._collections[spec.name] = coll
            self._ensure_payload_indexes(coll.shard, spec)

    def _open_shard(self, name: str, spec: CollectionSpec | None) -> _Collection:
        import qdrant_edge as qe

        path = self._path(name)
        # The vectors as recorded: this build's spec, or the schema record when opened lazily.
        fingerprint = spec.fingerprint() if spec is not None else json.loads((path / SCHEMA_FILE).read_text())
        if (path / SHARD_CONFIG).exists():
            # A config on load is checked against the segments and persisted; only pass one to
            # change the search pool size. (EdgeConfig refuses to be built without vectors.)
            config = self._config(fingerprint) if self._max_search_threads is not None else None
            shard = qe.EdgeShard.load(str(path), config)
        elif spec is not None:
            shard = qe.EdgeShard.create(str(path), self._config(fingerprint))
        else:
            raise StorageError(f"collection {name!r} does not exist in {self.root}")
        idf = {k for k, v in (fingerprint.get("sparse") or {}).items() if v and v[0]}
        return _Collection(shard, idf, path)

    def _config(self, fingerprint: dict[str, Any]) -> Any:
        """The EdgeConfig of the vectors a fingerprint records (``dense: {name: [dim, distance]}``,
        ``sparse: {name: [idf]}``)."""
        import qdrant_edge as qe

        distances = {"cosine": qe.Distance.Cosine, "dot": qe.Distance.Dot, "euclid": qe.Distance.Euclid}
        index = fingerprint.get("index") or {}
        dense = {
            k: qe.EdgeVectorParams(size=int(dim), distance=distances[distance], **_index_params(index.get(k) or {}))
            for k, (dim, distance) in (fingerprint.get("dense") or {}).items()
        }
        sparse = {
            k: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if idf else None)
            for k, (idf,) in (fingerprint.get("sparse") or {}).items()
        }
        return qe.EdgeConfig(
            vectors=dense or None,
            sparse_vectors=sparse or None,
            max_search_threads=self._max_search_threads,
        )

    def _ensure_payload_indexes(self, shard: Any, spec: CollectionSpec) -> None:
        import qdrant_edge as qe

        kinds = {
            "keyword": (qe.PayloadSchemaType.Keyword, qe.KeywordIndexParams),
            "integer": (qe.PayloadSchemaType.Integer, lambda **kw: qe.IntegerIndexParams(lookup=True, range=True, **kw)),
            "float": (qe.PayloadSchemaType.Float, qe.FloatIndexParams),
            "bool": (qe.PayloadSchemaType.Bool, None),
        }
        existing = shard.info().payload_schema
        changed = False
        for field_name, kind in spec.payload_indexes.items():
            want, params = kinds[kind]
            options = _index_options(spec, field_name) if params is not None else None
            have = existing.get(field_name)
            if _index_current(have, want, options):
                continue
            if have is not None:
                shard.update(qe.UpdateOperation.delete_field_index(field_name))
            schema = params(**options) if options else want
            shard.update(qe.UpdateOperation.create_field_index(field_name, schema))
            changed = True
        if changed:
            shard.flush()

    def collection_exists(self, name: str) -> bool:
        # Both files: a process killed while creating a collection leaves the schema record
        # (written first) without a shard, which the next ensure_collection creates.
        path = self._path(name)
        return name in self._collections or ((path / SCHEMA_FILE).exists() and (path / SHARD_CONFIG).exists())

    def drop_collection(self, name: str) -> None:
        """Close the shard and delete its folder: renamed out of the way first (a name no
        collection can have), so a crash while deleting leaves no half collection behind."""
        path = self._path(name)
        trash = self.root / f".dropping-{name}"
        with self._lock, _engine_errors(f"dropping collection {name!r}"):
            self._check_open()
            coll = self._collections.pop(name, None)
            if coll is not None:
                coll.shard.close()
            if trash.exists():  # left by a drop that crashed
                shutil.rmtree(trash)
            if path.exists():
                os.replace(path, trash)
                shutil.rmtree(trash)

    def optimize(self) -> None:
        """Run the engine's optimizers on every open collection (blocking). Worth it after bulk loads."""
        with self._lock, _engine_errors("optimizing"):
            self._check_open()
            for coll in self._collections.values():
                coll.shard.optimize()
                coll.shard.flush()

    def close(self) -> None:
        """Flush and close every shard and release the directory lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            errors = []
            for name, coll in self._collections.items():
                try:
                    coll.shard.flush()
                    coll.shard.close()
                except Exception as exc:  # keep closing the others
                    errors.append(f"{name}: {exc}")
            self._collections.clear()
            _release_root_lock(self._lock_fd)
            if errors:
                raise StorageError(f"closing {self.root} failed: {'; '.join(errors)}")

    def __enter__(self) -> EdgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Insert or replace ``points`` (all in one engine update), then flush."""
        if not points:
            return
        import qdrant_edge as qe

        converted = [_to_edge_point(p) for p in points]
        with self._lock, _engine_errors(f"upsert into {collection!r}"):
            shard = self._get(collection).shard
            shard.update(qe.UpdateOperation.upsert_points(converted))
            shard.flush()

    def delete(self, collection: str, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> None:
        """Delete the points with ``ids``, or those matching ``filter`` (exactly one of the two)."""
        import qdrant_edge as qe

        if (ids is None) == (filter is None):
            raise TypeError("delete() takes ids or filter, exactly one")
        if ids is not None:
            point_ids = _unique_ids(ids)
            if not point_ids:
                return
            op = qe.UpdateOperation.delete_points(point_ids)
        else:
            op = qe.UpdateOperation.delete_points_by_filter(_to_edge_filter(filter) or qe.Filter())
        with self._lock, _engine_errors(f"delete from {collection!r}"):
            shard = self._get(collection).shard
            shard.update(op)
            shard.flush()

    # --- reads ------------------------------------------------------------------------------

    def query(self, collection: str, spec: QuerySpec) -> list[Hit]:
        with _engine_errors(f"query on {collection!r}"):
            coll = self._get(collection)
            points = coll.shard.query(_to_edge_query(spec, coll, self.live_idf))
            return [_hit(p, spec.with_payload) for p in points]

    def query_batch(self, collection: str, specs: Sequence[QuerySpec]) -> list[list[Hit]]:
        if not specs:
            return []
        import qdrant_edge as qe

        with _engine_errors(f"batch query on {collection!r}"):
            coll = self._get(collection)
            request = qe.QueryBatchRequest([_to_edge_query(s, coll, self.live_idf) for s in specs])
            results = coll.shard.query_batch(request)
            return [[_hit(p, s.with_payload) for p in points] for points, s in zip(results, specs, strict=True)]

    def query_fused(self, collection: str, fused: FusedQuery) -> list[Hit]:
        import qdrant_edge as qe

        with _engine_errors(f"fused query on {collection!r}"):
            coll = self._get(collection)
            prefetches = []
            for spec in fused.queries:
                req = _to_edge_query(spec, coll, self.live_idf)
                prefetches.append(qe.Prefetch(limit=spec.limit, query=req.query, filter=req.filter,
                                              params=req.params, prefetches=req.prefetches))
            request = qe.QueryRequest(limit=fused.limit, query=qe.Fusion.Rrf(fused.k), prefetches=prefetches,
                                      with_payload=_payload_selector(fused.with_payload), with_vector=False)
            return [_hit(p, fused.with_payload) for p in coll.shard.query(request)]

    def facet(self, collection: str, key: str, *, limit: int = 100, filter: Filter | None = None,
              exact: bool = True) -> list[tuple[str, int]]:
        import qdrant_edge as qe

        with _engine_errors(f"facet on {collection!r}"):
            response = self._get(collection).shard.facet(
                qe.FacetRequest(key=key, limit=limit, exact=exact, filter=_to_edge_filter(filter)))
        return sorted(((str(h.value), int(h.count)) for h in response.hits), key=lambda vc: (-vc[1], vc[0]))

    def retrieve(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> list[Record]:
        """Points by id, in the order given; ids not stored are left out, repeats returned once."""
        point_ids = _unique_ids(ids)
        if not point_ids:
            return []
        with _engine_errors(f"retrieve from {collection!r}"):
            shard = self._get(collection).shard
            found = {
                str(r.id): r
                for r in shard.retrieve(point_ids, _payload_selector(with_payload), _payload_selector(with_vectors))
            }
        return [_record(found[i], with_payload, with_vectors) for i in point_ids if i in found]

    def scroll(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        limit: int = 100,
        offset: str | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> tuple[list[Record], str | None]:
        """A page of points ordered by id, from ``offset`` (included), and the next page's offset."""
        import qdrant_edge as qe

        request = qe.ScrollRequest(
            offset=_point_id(offset) if offset is not None else None,
            limit=limit,
            filter=_to_edge_filter(filter),
            with_payload=_payload_selector(with_payload),
            with_vector=_payload_selector(with_vectors),
        )
        with _engine_errors(f"scroll over {collection!r}"):
            records, next_offset = self._get(collection).shard.scroll(request)
        return (
            [_record(r, with_payload, with_vectors) for r in records],
            str(next_offset) if next_offset is not None else None,
        )

    def count(self, collection: str, *, filter: Filter | None = None, exact: bool = True) -> int:
        import qdrant_edge as qe

        with _engine_errors(f"count in {collection!r}"):
            return int(self._get(collection).shard.count(qe.CountRequest(exact=exact, filter=_to_edge_filter(filter))))

    def disk_bytes(self) -> int | None:
        """Bytes allocated on disk under the root (like ``du``; apparent size where blocks are unknown)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue  # removed while walking (segment merges)
                blocks = getattr(st, "st_blocks", None)
                total += blocks * 512 if blocks is not None else st.st_size
        return total

    # --- internals --------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if not _NAME_RE.match(name):
            raise StorageError(f"invalid collection name {name!r}")
        return self.root / name

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the store at {self.root} is closed")

    def _get(self, name: str) -> _Collection:
        coll = self._collections.get(name)
        if coll is not None:
            return coll
        with self._lock:
            self._check_open()
            coll = self._collections.get(name)
            if coll is None:
                if not (self._path(name) / SCHEMA_FILE).exists():
                    raise StorageError(f"collection {name!r} does not exist in {self.root}")
                coll = self._open_shard(name, None)
                self._collections[name] = coll
            return coll


# --- conversions --------------------------------------------------------------------------------


def _vector(value: Any) -> Any:
    import qdrant_edge as qe

    if isinstance(value, SparseVector):
        indices, values = _sparse(value)
        return qe.SparseVector(indices, values)
    return _dense(value)


def _to_edge_point(point: Point) -> Any:
    import qdrant_edge as qe

    return qe.Point(
        _point_id(point.id),
        {name: _vector(v) for name, v in point.vectors.items()},
        dict(point.payload) if point.payload else {},
    )


def _match_value(value: Any) -> Any:
    import numpy as np
    import qdrant_edge as qe

    if isinstance(value, bool):  # the binding reads a Python bool as int; numpy.bool_ stays a bool
        return qe.MatchValue(np.bool_(value))
    return qe.MatchValue(value)


def _condition(cond: Any) -> Any:
    import qdrant_edge as qe

    if isinstance(cond, MatchValue):
        return qe.FieldCondition(cond.key, match=_match_value(cond.value))
    if isinstance(cond, MatchAny):
        return qe.FieldCondition(cond.key, match=qe.MatchAny(list(cond.values)))
    if isinstance(cond, Range):
        return qe.FieldCondition(cond.key, range=qe.RangeFloat(gte=cond.gte, lte=cond.lte))
    if isinstance(cond, HasId):
        return qe.HasIdCondition({_point_id(i) for i in cond.ids})
    raise TypeError(f"unsupported filter condition {cond!r}")


def _to_edge_filter(flt: Filter | None) -> Any:
    import qdrant_edge as qe

    if flt is None:
        return None
    if _is_empty(flt):
        return qe.Filter()
    return qe.Filter(
        must=[_condition(c) for c in flt.must] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
        should=[_condition(c) for c in flt.should] or None,
    )


def _index_params(index: dict[str, Any]) -> dict[str, Any]:
    """EdgeVectorParams keywords for a recorded index config (``CollectionSpec.index_config``)."""
    import qdrant_edge as qe

    out: dict[str, Any] = {}
    hnsw = index.get("hnsw") or {}
    if hnsw:
        out["hnsw_config"] = qe.HnswIndexConfig(
            m=hnsw.get("m", 16), ef_construct=hnsw.get("ef_construct", 100),
            full_scan_threshold=hnsw.get("full_scan_threshold_kb", 10_000), payload_m=hnsw.get("payload_m"))
    if index.get("quantization") == "int8":
        out["quantization_config"] = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
    if index.get("on_disk"):
        out["on_disk"] = True
    return out


def _to_edge_query(spec: QuerySpec, coll: _Collection, live_idf: bool) -> Any:
    import qdrant_edge as qe

    params = None
    if live_idf and isinstance(spec.vector, SparseVector) and spec.using in coll.idf_vectors:
        params = qe.SearchParams(idf=qe.IdfParams(corpus=qe.Filter()))
    elif spec.exact or spec.hnsw_ef is not None or spec.acorn or spec.oversampling is not None:
        quantization = (None if spec.oversampling is None else
                        qe.QuantizationSearchParams(rescore=True, oversampling=float(spec.oversampling)))
        params = qe.SearchParams(hnsw_ef=spec.hnsw_ef, exact=spec.exact, quantization=quantization,
                                 acorn=qe.AcornSearchParams(enable=True) if spec.acorn else None)
    nearest = qe.Query.Nearest(_vector(spec.vector), using=spec.using)
    if spec.rescored:
        prefetch = qe.Prefetch(limit=_candidates(spec), query=nearest, filter=_to_edge_filter(spec.filter),
                               params=params)
        return qe.QueryRequest(
            limit=spec.limit,
            query=_edge_formula(spec),
            prefetches=[prefetch],
            with_payload=_payload_selector(spec.with_payload),
            with_vector=False,
            score_threshold=spec.score_threshold,
        )
    return qe.QueryRequest(
        limit=spec.limit,
        query=nearest,
        filter=_to_edge_filter(spec.filter),
        with_payload=_payload_selector(spec.with_payload),
        with_vector=False,
        score_threshold=spec.score_threshold,
        params=params,
    )


def _edge_formula(spec: QuerySpec) -> Any:
    """``$score + sum(weight * gauss_decay(key; value, scale)) + sum(weight * key)
    + sum(weight * gauss_decay(distance outside gte..lte))``; see ``_formula`` in
    :mod:`encore.storage.remote`, which builds the same expression."""
    import qdrant_edge as qe

    e = qe.Expression
    terms = [e.Variable("$score")]
    for t in spec.targets:
        decay = e.Decay(qe.DecayKind.Gauss, e.Variable(t.key), e.Constant(float(t.value)), TARGET_MIDPOINT,
                        float(t.scale))
        terms.append(e.Mult([e.Constant(float(t.weight)), decay]))
    terms.extend(e.Mult([e.Constant(float(b.weight)), e.Variable(b.key)]) for b in spec.boosts)
    for r in spec.soft_ranges:
        gte, lte = _soft_bounds(r)
        below = e.Sum([e.Constant(gte), e.Neg(e.Variable(r.key))])
        above = e.Sum([e.Variable(r.key), e.Constant(-lte)])
        # relu(y) = (y + |y|) / 2: how far below gte plus how far above lte, 0 inside.
        outside = e.Mult([e.Constant(0.5), e.Sum([below, e.Abs(below), above, e.Abs(above)])])
        decay = e.Decay(qe.DecayKind.Gauss, outside, e.Constant(0.0), TARGET_MIDPOINT, float(r.scale))
        terms.append(e.Mult([e.Constant(float(r.weight)), decay]))
    return qe.Formula(e.Sum(terms), _formula_defaults(spec))


def _record(point: Any, with_payload: bool | Sequence[str], with_vectors: bool | Sequence[str]) -> Record:
    return Record(id=str(point.id), payload=_payload_out(point.payload, with_payload),
                  vectors=_vectors_out(point.vector, with_vectors))


def _hit(point: Any, with_payload: bool | Sequence[str]) -> Hit:
    return Hit(id=str(point.id), score=float(point.score), payload=_payload_out(point.payload, with_payload))


# --- files and locks ----------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _acquire_root_lock(root: Path) -> int:
    """Take the exclusive, non-blocking flock on ``<root>/.encore.lock`` and write our pid into it.

    flock locks belong to the open file description, so a second EdgeStore on the same root
    fails in the same process too. The lock goes away with the process, also when it crashes.
    """
    path = root / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot open lock file {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        except OSError:
            holder = "unknown"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StorageError(
                f"storage directory {root} is in use by another process (pid {holder}); stop it or use "
                "ENCORE_QDRANT_URL to share a Qdrant server between processes"
            ) from exc
        raise StorageError(f"cannot lock {path}: {exc}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_root_lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["EdgeStore"]
