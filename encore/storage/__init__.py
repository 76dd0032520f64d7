"""Vector storage: the backend-neutral protocol, the two backends and the factory.

``open_store(settings)`` picks the backend: :class:`~encore.storage.remote.RemoteStore` (a Qdrant
server or cluster) when ``ENCORE_QDRANT_URL`` is set, else :class:`~encore.storage.edge.EdgeStore`
(qdrant-edge, the Qdrant engine in-process, under ``settings.storage_dir``). Neither backend module
imports Qdrant at import time; importing this package is cheap.

Contract shared by both backends (pinned by ``tests/storage/test_congruence.py``):

* Point ids are UUID strings in and out, in canonical form (``str(uuid.UUID(id))``, lowercase).
  Any spelling ``uuid.UUID`` accepts is accepted; anything else raises ``StorageError``.
* ``query`` / ``query_batch`` return hits best-first; ``with_payload`` is True (whole payload),
  False (``Hit.payload is None``) or a list of keys (only those keys, ``{}`` when none are set).
  ``score_threshold`` keeps hits scoring at least the threshold (for ``euclid``: at most).
* Filters: ``MatchValue`` (keyword, integer or bool; on a list payload: the list contains it),
  ``MatchAny``, ``Range`` (inclusive bounds), ``HasId``; ``must`` all hold, at least one of
  ``should`` holds (when it has any) and no ``must_not`` holds. An empty ``Filter()`` matches
  every point (also in ``delete``!).
* ``retrieve`` returns records in the order of the given ids, missing ids left out, repeated ids
  returned once (at their first position).
* ``scroll`` pages are ordered by id (the canonical string order); the next offset is an id
  string, None after the last page. ``count`` is exact.
* ``delete`` takes ``ids`` or ``filter`` (exactly one); deleting nothing is not an error.
* Upserting an existing id replaces the point (vectors and payload).
* Payload values round-trip: str, int, float, bool, None, lists and nested dicts (JSON types).
* ``QuerySpec.targets`` boosts scores by Gaussian preferences on payload fields, ``boosts`` by
  payload values times weights (list elements as ``key[i]``), ``soft_ranges`` by nearness to a
  range; over the ``candidates`` nearest points under the filter (a formula query over a
  prefetch, in the engine; missing fields add nothing);
  ``exact`` and ``hnsw_ef`` are search parameters and change no answer's meaning.
* Sparse vectors: indices are unique integers in ``[0, 2**32)``, in any order; the store sorts
  them (with their values) before handing them to the engine. Duplicates raise ``StorageError``.
  Sparse vectors declared with ``idf=True`` use Qdrant's IDF modifier, with statistics over the
  live points of the collection (see :data:`encore.storage._common.LIVE_IDF`).
* Every engine failure is raised as :class:`encore.errors.StorageError` carrying the engine's
  message; :class:`encore.errors.SchemaMismatch` is raised when stored data was written with
  another ``CollectionSpec.fingerprint()``.
* A collection must exist before it is used (``ensure_collection``); using one that doesn't
  raises ``StorageError``. ``drop_collection`` deletes one with its data (a missing one is no error).
* Crash safety: an ``upsert`` or ``delete`` that returned is durable; one cut short by a crash
  leaves every point whole (all its vectors and payload) or as it was. The embedded backend
  applies a whole call atomically (one WAL record); the remote one sends ``upsert_batch`` points
  per request. Multi-point writes that must appear together journal themselves
  (:mod:`encore.catalog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from encore.errors import StorageError
from encore.storage._common import _check_fingerprint as check_fingerprint
from encore.storage.base import (
    Boost,
    Condition,
    DenseVector,
    Filter,
    FusedQuery,
    HasId,
    Hit,
    MatchAny,
    MatchValue,
    Payload,
    Point,
    QuerySpec,
    Range,
    Record,
    SoftRange,
    SparseVector,
    Target,
    VectorInput,
    VectorStore,
)

if TYPE_CHECKING:
    from encore.config import Settings

__all__ = [
    "Boost",
    "Condition",
    "DenseVector",
    "Filter",
    "FusedQuery",
    "HasId",
    "Hit",
    "MatchAny",
    "MatchValue",
    "Payload",
    "Point",
    "QuerySpec",
    "Range",
    "Record",
    "SoftRange",
    "SparseVector",
    "Target",
    "VectorInput",
    "VectorStore",
    "check_fingerprint",
    "open_store",
]


def open_store(settings: Settings) -> VectorStore:
    """The store the settings ask for: a Qdrant server when ``qdrant_url`` is set, else embedded."""
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from encore.storage.remote import RemoteStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        try:
            client = QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=60)
        except Exception as exc:  # bad URL and the like
            raise StorageError(f"cannot connect to Qdrant at {settings.qdrant_url}: {exc}") from exc
        return RemoteStore(client, owns_client=True)

    from encore.storage.edge import EdgeStore

    return EdgeStore(settings.storage_dir)
