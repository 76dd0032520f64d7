"""Storage over qdrant-client: a Qdrant server or cluster, or qdrant-client's local mode in tests.

Build it from a ``QdrantClient``: ``QdrantClient(url=..., api_key=...)`` for a server (what
:func:`encore.storage.open_store` does when ``ENCORE_QDRANT_URL`` is set) or
``QdrantClient(":memory:")`` in tests. Behaviour is the one documented in :mod:`encore.storage`
and shared with :class:`~encore.storage.edge.EdgeStore`. Backend-specific notes:

* The spec fingerprint is kept in the collection's metadata (``metadata=`` of
  ``create_collection``, key ``encore_fingerprint``); a collection without it is refused.
* ``spec.shard_number`` / ``spec.replication_factor`` are passed on when set. Payload indexes are
  created on servers; qdrant-client's local mode has none (it filters by scanning).
* Upserts are sent in batches of ``upsert_batch`` points, each with ``wait=True``; writes are
  acknowledged once applied. The client is thread-safe; no lock is taken here.
* ``disk_bytes()`` is None: the server owns its disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from encore.storage._common import (
    FINGERPRINT_KEY,
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


class RemoteStore:
    """:class:`~encore.storage.base.VectorStore` over a ``qdrant_client.QdrantClient``."""

    backend = "remote"

    def __init__(
        self, client: Any, *, owns_client: bool = False, upsert_batch: int = 64, live_idf: bool = LIVE_IDF
    ) -> None:
        """``owns_client``: close the client on :meth:`close`. ``live_idf``: see :data:`encore.storage._common.LIVE_IDF`."""
        self.client = client
        # qdrant-client's local mode already computes IDF over live points only, and its corpus
        # filter path loops over every point in Python: send the corpus filter to servers only.
        self.live_idf = live_idf and not _is_local_mode(client)
        self._owns_client = owns_client
        self._upsert_batch = max(1, upsert_batch)
        self._idf_vectors: dict[str, set[str]] = {}

    # --- lifecycle --------------------------------------------------------------------------

    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection (fingerprint in its metadata) and payload indexes, or check it."""
        from qdrant_client import models as m

        fingerprint = spec.fingerprint()
        where = f"collection {spec.name!r} on the Qdrant server"
        with _engine_errors(f"opening collection {spec.name!r}"):
            if not self.client.collection_exists(spec.name):
                distances = {"cosine": m.Distance.COSINE, "dot": m.Distance.DOT, "euclid": m.Distance.EUCLID}
                try:
                    self.client.create_collection(
                        spec.name,
                        vectors_config={
                            k: m.VectorParams(size=v.dim, distance=distances[v.distance], **_index_params(v))
                            for k, v in spec.dense.items()
                        },
                        sparse_vectors_config={
                            k: m.SparseVectorParams(modifier=m.Modifier.IDF if v.idf else None)
                            for k, v in spec.sparse.items()
                        }
                        or None,
                        shard_number=spec.shard_number,
                        replication_factor=spec.replication_factor,
                        metadata={FINGERPRINT_KEY: fingerprint},
                    )
                except Exception:
                    if not self.client.collection_exists(spec.name):  # else: created meanwhile, check it below
                        raise
            info = self.client.get_collection(spec.name)
            stored = (info.config.metadata or {}).get(FINGERPRINT_KEY)
            _check_fingerprint(where, stored, fingerprint)
            self._ensure_payload_indexes(spec, info.payload_schema or {})
            self._idf_vectors[spec.name] = {k for k, v in spec.sparse.items() if v.idf}

    def _ensure_payload_indexes(self, spec: CollectionSpec, existing: dict[str, Any]) -> None:
        from qdrant_client import models as m

        if _is_local_mode(self.client):
            return  # local mode ignores payload indexes (and warns about each one)

        kinds = {
            "keyword": (m.PayloadSchemaType.KEYWORD, m.KeywordIndexParams),
            "integer": (m.PayloadSchemaType.INTEGER, m.IntegerIndexParams),
            "float": (m.PayloadSchemaType.FLOAT, m.FloatIndexParams),
            "bool": (m.PayloadSchemaType.BOOL, None),
        }
        for field_name, kind in spec.payload_indexes.items():
            want, params = kinds[kind]
            options = _index_options(spec, field_name) if params is not None else None
            have = existing.get(field_name)
            if _index_current(have, want, options):
                continue
            if have is not None:
                self.client.delete_payload_index(spec.name, field_name, wait=True)
            schema = params(type=kind, **options) if options else want
            self.client.create_payload_index(spec.name, field_name, field_schema=schema, wait=True)

    def collection_exists(self, name: str) -> bool:
        with _engine_errors(f"looking up collection {name!r}"):
            return bool(self.client.collection_exists(name))

    def drop_collection(self, name: str) -> None:
        with _engine_errors(f"dropping collection {name!r}"):
            if self.client.collection_exists(name):
                self.client.delete_collection(name)
        self._idf_vectors.pop(name, None)

    def close(self) -> None:
        """Close the client when this store created it (``owns_client``)."""
        if self._owns_client:
            with _engine_errors("closing the Qdrant client"):
                self.client.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Insert or replace ``points``, ``upsert_batch`` at a time, waiting for each batch."""
        if not points:
            return
        converted = [_to_point_struct(p) for p in points]
        with _engine_errors(f"upsert into {collection!r}"):
            for start in range(0, len(converted), self._upsert_batch):
                self.client.upsert(collection, converted[start : start + self._upsert_batch], wait=True)

    def delete(self, collection: str, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> None:
        """Delete the points with ``ids``, or those matching ``filter`` (exactly one of the two)."""
        from qdrant_client import models as m

        if (ids is None) == (filter is None):
            raise TypeError("delete() takes ids or filter, exactly one")
        if ids is not None:
            point_ids = _unique_ids(ids)
            if not point_ids:
                return
            selector: Any = m.PointIdsList(points=point_ids)
        else:
            selector = m.FilterSelector(filter=_to_filter(filter) or m.Filter())
        with _engine_errors(f"delete from {collection!r}"):
            self.client.delete(collection, points_selector=selector, wait=True)

    # --- reads ------------------------------------------------------------------------------

    def query(self, collection: str, spec: QuerySpec) -> list[Hit]:
        with _engine_errors(f"query on {collection!r}"):
            req = self._request(collection, spec)
            response = self.client.query_points(
                collection,
                query=req.query,
                using=req.using,
                prefetch=req.prefetch,
                query_filter=req.filter,
                search_params=req.params,
                limit=req.limit,
                with_payload=req.with_payload,
                with_vectors=False,
                score_threshold=req.score_threshold,
            )
            return [_hit(p, spec.with_payload) for p in response.points]

    def query_batch(self, collection: str, specs: Sequence[QuerySpec]) -> list[list[Hit]]:
        if not specs:
            return []
        with _engine_errors(f"batch query on {collection!r}"):
            requests = [self._request(collection, s) for s in specs]
            responses = self.client.query_batch_points(collection, requests=requests)
            return [[_hit(p, s.with_payload) for p in r.points] for r, s in zip(responses, specs, strict=True)]

    def query_fused(self, collection: str, fused: FusedQuery) -> list[Hit]:
        from qdrant_client import models as m

        with _engine_errors(f"fused query on {collection!r}"):
            prefetch = []
            for spec in fused.queries:
                req = self._request(collection, spec)
                prefetch.append(m.Prefetch(query=req.query, using=req.using, filter=req.filter, params=req.params,
                                           limit=spec.limit, prefetch=req.prefetch))
            response = self.client.query_points(
                collection, prefetch=prefetch, query=m.RrfQuery(rrf=m.Rrf(k=fused.k)), limit=fused.limit,
                with_payload=_payload_selector(fused.with_payload), with_vectors=False)
            return [_hit(p, fused.with_payload) for p in response.points]

    def facet(self, collection: str, key: str, *, limit: int = 100, filter: Filter | None = None,
              exact: bool = True) -> list[tuple[str, int]]:
        with _engine_errors(f"facet on {collection!r}"):
            response = self.client.facet(collection, key, facet_filter=_to_filter(filter), limit=limit, exact=exact)
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
            records = self.client.retrieve(
                collection,
                ids=point_ids,
                with_payload=_payload_selector(with_payload),
                with_vectors=_payload_selector(with_vectors),
            )
        found = {_point_id(r.id): r for r in records}
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
        with _engine_errors(f"scroll over {collection!r}"):
            records, next_offset = self.client.scroll(
                collection,
                scroll_filter=_to_filter(filter),
                limit=limit,
                offset=_point_id(offset) if offset is not None else None,
                with_payload=_payload_selector(with_payload),
                with_vectors=_payload_selector(with_vectors),
            )
        return (
            [_record(r, with_payload, with_vectors) for r in records],
            _point_id(next_offset) if next_offset is not None else None,
        )

    def count(self, collection: str, *, filter: Filter | None = None, exact: bool = True) -> int:
        with _engine_errors(f"count in {collection!r}"):
            return int(self.client.count(collection, count_filter=_to_filter(filter), exact=exact).count)

    def disk_bytes(self) -> int | None:
        return None

    # --- internals --------------------------------------------------------------------------

    def _request(self, collection: str, spec: QuerySpec) -> Any:
        from qdrant_client import models as m

        params = None
        if self.live_idf and isinstance(spec.vector, SparseVector) and spec.using in self._idf_vectors_of(collection):
            params = m.SearchParams(idf=m.IdfCorpusParams(corpus=m.Filter()))
        elif spec.exact or spec.hnsw_ef is not None or spec.acorn or spec.oversampling is not None:
            quantization = (None if spec.oversampling is None else
                            m.QuantizationSearchParams(rescore=True, oversampling=float(spec.oversampling)))
            params = m.SearchParams(hnsw_ef=spec.hnsw_ef, exact=spec.exact, quantization=quantization,
                                    acorn=m.AcornSearchParams(enable=True) if spec.acorn else None)
        if spec.rescored:
            return m.QueryRequest(
                prefetch=m.Prefetch(query=_vector(spec.vector), using=spec.using, filter=_to_filter(spec.filter),
                                    params=params, limit=_candidates(spec)),
                query=_formula(spec),
                limit=spec.limit,
                with_payload=_payload_selector(spec.with_payload),
                with_vector=False,
                score_threshold=spec.score_threshold,
            )
        return m.QueryRequest(
            query=_vector(spec.vector),
            using=spec.using,
            filter=_to_filter(spec.filter),
            params=params,
            limit=spec.limit,
            with_payload=_payload_selector(spec.with_payload),
            with_vector=False,
            score_threshold=spec.score_threshold,
        )

    def _idf_vectors_of(self, collection: str) -> set[str]:
        """Sparse vectors of ``collection`` with the IDF modifier (asked of the server once)."""
        known = self._idf_vectors.get(collection)
        if known is None:
            from qdrant_client import models as m

            sparse = self.client.get_collection(collection).config.params.sparse_vectors or {}
            known = {k for k, v in sparse.items() if v.modifier == m.Modifier.IDF}
            self._idf_vectors[collection] = known
        return known


def _is_local_mode(client: Any) -> bool:
    try:
        from qdrant_client.local.qdrant_local import QdrantLocal
    except ImportError:  # pragma: no cover - layout of another qdrant-client version
        return False
    return isinstance(getattr(client, "_client", None), QdrantLocal)


# --- conversions --------------------------------------------------------------------------------


def _vector(value: Any) -> Any:
    from qdrant_client import models as m

    if isinstance(value, SparseVector):
        indices, values = _sparse(value)
        return m.SparseVector(indices=indices, values=values)
    return _dense(value)


def _to_point_struct(point: Point) -> Any:
    from qdrant_client import models as m

    return m.PointStruct(
        id=_point_id(point.id),
        vector={name: _vector(v) for name, v in point.vectors.items()},
        payload=dict(point.payload) if point.payload else {},
    )


def _condition(cond: Any) -> Any:
    from qdrant_client import models as m

    if isinstance(cond, MatchValue):
        return m.FieldCondition(key=cond.key, match=m.MatchValue(value=cond.value))
    if isinstance(cond, MatchAny):
        return m.FieldCondition(key=cond.key, match=m.MatchAny(any=list(cond.values)))
    if isinstance(cond, Range):
        return m.FieldCondition(key=cond.key, range=m.Range(gte=cond.gte, lte=cond.lte))
    if isinstance(cond, HasId):
        return m.HasIdCondition(has_id=[_point_id(i) for i in cond.ids])
    raise TypeError(f"unsupported filter condition {cond!r}")


def _to_filter(flt: Filter | None) -> Any:
    from qdrant_client import models as m

    if flt is None:
        return None
    if _is_empty(flt):
        return m.Filter()
    return m.Filter(
        must=[_condition(c) for c in flt.must] or None,
        must_not=[_condition(c) for c in flt.must_not] or None,
        should=[_condition(c) for c in flt.should] or None,
    )


def _index_params(spec: Any) -> dict[str, Any]:
    """VectorParams keywords for a dense vector's index settings (``DenseVectorSpec``)."""
    from qdrant_client import models as m

    out: dict[str, Any] = {}
    if spec.hnsw is not None:
        out["hnsw_config"] = m.HnswConfigDiff(m=spec.hnsw.m, ef_construct=spec.hnsw.ef_construct,
                                              payload_m=spec.hnsw.payload_m,
                                              full_scan_threshold=spec.hnsw.full_scan_threshold_kb)
    if spec.quantization == "int8":
        out["quantization_config"] = m.ScalarQuantization(
            scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=0.99, always_ram=True))
    if spec.on_disk:
        out["on_disk"] = True
    return out


def _formula(spec: QuerySpec) -> Any:
    """``$score + sum(weight * gauss_decay(key; value, scale)) + sum(weight * key)
    + sum(weight * gauss_decay(distance outside gte..lte))``, missing keys far from any target
    or range and 0 in a linear boost."""
    from qdrant_client import models as m

    terms: list[Any] = ["$score"]
    for t in spec.targets:
        decay = m.GaussDecayExpression(gauss_decay=m.DecayParamsExpression(
            x=t.key, target=float(t.value), scale=float(t.scale), midpoint=TARGET_MIDPOINT))
        terms.append(m.MultExpression(mult=[float(t.weight), decay]))
    terms.extend(m.MultExpression(mult=[float(b.weight), b.key]) for b in spec.boosts)
    for r in spec.soft_ranges:
        gte, lte = _soft_bounds(r)
        below = m.SumExpression(sum=[gte, m.NegExpression(neg=r.key)])
        above = m.SumExpression(sum=[r.key, -lte])
        # relu(y) = (y + |y|) / 2: how far below gte plus how far above lte, 0 inside.
        outside = m.MultExpression(mult=[0.5, m.SumExpression(sum=[below, m.AbsExpression(abs=below), above,
                                                                   m.AbsExpression(abs=above)])])
        decay = m.GaussDecayExpression(gauss_decay=m.DecayParamsExpression(
            x=outside, target=0.0, scale=float(r.scale), midpoint=TARGET_MIDPOINT))
        terms.append(m.MultExpression(mult=[float(r.weight), decay]))
    return m.FormulaQuery(formula=m.SumExpression(sum=terms), defaults=_formula_defaults(spec))


def _record(point: Any, with_payload: bool | Sequence[str], with_vectors: bool | Sequence[str]) -> Record:
    vectors = point.vector if isinstance(point.vector, dict) else None
    return Record(id=_point_id(point.id), payload=_payload_out(point.payload, with_payload),
                  vectors=_vectors_out(vectors, with_vectors))


def _hit(point: Any, with_payload: bool | Sequence[str]) -> Hit:
    return Hit(id=_point_id(point.id), score=float(point.score), payload=_payload_out(point.payload, with_payload))


__all__ = ["RemoteStore"]
