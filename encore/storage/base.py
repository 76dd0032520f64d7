"""What Encore needs from a vector store, independent of the backend.

Two implementations satisfy :class:`VectorStore`: :mod:`encore.storage.edge` (qdrant-edge, the
Qdrant engine in-process, the default) and :mod:`encore.storage.remote` (qdrant-client against a
server or cluster, or its in-memory mode in tests). Nothing outside this package imports Qdrant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from schemas.collections import CollectionSpec

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector: ``indices`` (unique, non-negative, < 2**32) and their ``values``."""

    indices: Sequence[int]
    values: Sequence[float]


DenseVector = Sequence[float]
VectorInput = DenseVector | SparseVector


@dataclass(frozen=True, slots=True)
class Point:
    """One point to upsert. ``id`` is a UUID string; ``vectors`` maps vector names to values."""

    id: str
    vectors: dict[str, VectorInput]
    payload: Payload = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """A scored point returned by a query."""

    id: str
    score: float
    payload: Payload | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A stored point returned by retrieve or scroll."""

    id: str
    payload: Payload | None = None
    vectors: dict[str, VectorInput] | None = None
    """The named vectors asked for (``with_vectors``); dense ones as stored (cosine: unit length)."""


# --- Filters: a small, backend-neutral subset of Qdrant's filter language ---------------------


@dataclass(frozen=True, slots=True)
class MatchValue:
    """``key`` equals ``value`` (keyword, integer or bool). For list payloads: contains it."""

    key: str
    value: str | int | bool


@dataclass(frozen=True, slots=True)
class MatchAny:
    """``key`` equals any of ``values``."""

    key: str
    values: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """``gte <= key <= lte`` on a numeric payload field; either bound may be None."""

    key: str
    gte: float | None = None
    lte: float | None = None


@dataclass(frozen=True, slots=True)
class HasId:
    """The point's id is one of ``ids``."""

    ids: tuple[str, ...]


Condition = MatchValue | MatchAny | Range | HasId


@dataclass(frozen=True, slots=True)
class Filter:
    """All of ``must``, at least one of ``should`` (when it holds any), none of ``must_not``."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """A preference for payload ``key`` near ``value``: adds ``weight * gauss`` to a hit's score,
    where the Gaussian is 1 at ``value`` and 0.5 at ``value +- scale``. Points without the key get
    nothing."""

    key: str
    value: float
    scale: float
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Boost:
    """Adds ``weight * value`` of the numeric payload ``key`` to a hit's score. ``key`` may name a
    list element (``tag_probs[3]``). Points without the key get nothing."""

    key: str
    weight: float


@dataclass(frozen=True, slots=True)
class SoftRange:
    """A preference for payload ``key`` inside ``gte..lte`` (either bound may be None): adds
    ``weight`` inside, and outside ``weight * gauss`` of the distance to the nearest bound (0.5 at
    ``scale``). Points without the key get nothing. A range filter that left too few points,
    relaxed: those inside still rank first, the nearest follow."""

    key: str
    gte: float | None
    lte: float | None
    scale: float
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One nearest-neighbour query against the named vector ``using``.

    With ``targets``, ``boosts`` or ``soft_ranges``, the ``candidates`` nearest points (default
    ``10 * limit``) under the filter are re-scored as similarity plus those terms, in the engine
    (a formula query), and the best ``limit`` of them returned. ``exact`` searches without the
    HNSW index (every point passing the filter is compared); ``hnsw_ef`` widens the graph search;
    ``acorn`` lets a filtered graph search step over the points its filter removes (ACORN: it
    also visits neighbours' neighbours), for filters that keep too much for an exact scan but
    too little for the plain graph to stay connected. ``oversampling``, for a vector stored with
    scalar quantization: the engine ranks ``oversampling * limit`` points by their int8 copies and
    rescores those with the original vectors (None: the engine's default; a scan of 200k sample
    tracks with it found 0.93-0.95 of the true top 10).
    """

    using: str
    vector: VectorInput
    limit: int = 10
    filter: Filter | None = None
    with_payload: bool | Sequence[str] = True
    score_threshold: float | None = None
    exact: bool = False
    hnsw_ef: int | None = None
    acorn: bool = False
    oversampling: float | None = None
    targets: tuple[Target, ...] = ()
    boosts: tuple[Boost, ...] = ()
    soft_ranges: tuple[SoftRange, ...] = ()
    candidates: int | None = None

    @property
    def rescored(self) -> bool:
        """Whether the engine re-scores the nearest candidates with a formula."""
        return bool(self.targets or self.boosts or self.soft_ranges)


@dataclass(frozen=True, slots=True)
class FusedQuery:
    """Several nearest-neighbour queries fused by reciprocal rank: a point ranked ``r`` (from 0) in
    a query's list earns ``1 / (k + r)``; the sums rank the answer. Each query keeps its own
    filter and ``limit`` (how deep it looks)."""

    queries: tuple[QuerySpec, ...]
    limit: int = 10
    with_payload: bool | Sequence[str] = True
    k: int = 60


@runtime_checkable
class VectorStore(Protocol):
    """The storage operations Encore uses. Both backends return the same answers (tests/storage)."""

    backend: str

    def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection and its payload indexes, or check that the stored one matches.

        Raises :class:`encore.errors.SchemaMismatch` when the stored collection was written with
        another schema version or other parameters (``spec.fingerprint()``).
        """

    def collection_exists(self, name: str) -> bool: ...

    def drop_collection(self, name: str) -> None:
        """Delete the collection with every point and its schema record; a missing one is no error."""

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Insert or replace ``points``. On return they are durable (embedded: flushed to disk).
        A call interrupted by a crash leaves each point whole or absent, never half-written."""

    def delete(self, collection: str, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> None: ...

    def query(self, collection: str, spec: QuerySpec) -> list[Hit]: ...

    def query_batch(self, collection: str, specs: Sequence[QuerySpec]) -> list[list[Hit]]: ...

    def query_fused(self, collection: str, fused: FusedQuery) -> list[Hit]:
        """Reciprocal-rank fusion of ``fused.queries``, in the engine (prefetches of one query)."""

    def facet(self, collection: str, key: str, *, limit: int = 100, filter: Filter | None = None,
              exact: bool = True) -> list[tuple[str, int]]:
        """The most frequent values of the indexed keyword or integer field ``key`` and their
        counts, most frequent first (ties: by value). ``exact=False`` reads the counts from the
        payload index instead of checking every point (about 0.2 ms instead of 130 ms for 760
        values over 1M points): they may count deleted or updated points for a while."""

    def retrieve(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> list[Record]:
        """Points by id, in the order given; ids not stored are left out."""

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
        """A page of points ordered by id, and the offset of the next page (None at the end)."""

    def count(self, collection: str, *, filter: Filter | None = None, exact: bool = True) -> int:
        """Points passing ``filter``; ``exact=False``: the engine's estimate from its indexes
        (microseconds; exact without a filter, up to concurrent writes), where an exact count
        checks every candidate (84 ms for 1M points without a filter)."""

    def disk_bytes(self) -> int | None:
        """Bytes on disk used by the store, when the backend can tell (embedded), else None."""

    def close(self) -> None: ...
