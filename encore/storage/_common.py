"""Helpers shared by the two backends: id and vector checks, payload selection, schema records.

Private to :mod:`encore.storage`; the backends import from here so that the package's public face
(``encore.storage``) stays the protocol, its types and the factory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from encore.errors import SchemaMismatch, StorageError
from encore.storage.base import Filter, Payload, SparseVector
from schemas.collections import CollectionSpec

#: Whether IDF statistics of sparse queries are computed over the live points (an empty corpus
#: filter) rather than read from the sparse index. The index goes on counting deleted points
#: until its segment is vacuumed (qdrant-edge and a Qdrant server alike), qdrant-client's local
#: mode never does: with live statistics all backends give the same scores after deletes.
LIVE_IDF = True

FINGERPRINT_KEY = "encore_fingerprint"
_UINT32_END = 2**32


def _point_id(value: Any) -> str:
    """Canonical UUID string of ``value``, or StorageError."""
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError) as exc:
        raise StorageError(f"invalid point id {value!r}: point ids are UUID strings") from exc


def _unique_ids(ids: Sequence[str]) -> list[str]:
    """Canonical ids, repeats dropped, order kept."""
    return list(dict.fromkeys(_point_id(i) for i in ids))


def _dense(vector: Any) -> list[float]:
    import numpy as np

    arr = np.asarray(vector, dtype=np.float64)
    if arr.ndim != 1:
        raise StorageError(f"a dense vector must be one-dimensional, got shape {arr.shape}")
    return arr.tolist()


def _sparse(vector: SparseVector) -> tuple[list[int], list[float]]:
    """``(indices, values)`` sorted by index, checked: unique, in ``[0, 2**32)``, same lengths."""
    import numpy as np

    idx = np.asarray(vector.indices, dtype=np.int64)
    val = np.asarray(vector.values, dtype=np.float64)
    if idx.ndim != 1 or val.ndim != 1 or idx.shape != val.shape:
        raise StorageError(
            f"a sparse vector needs as many values as indices, got {idx.size} indices and {val.size} values"
        )
    if idx.size == 0:
        return [], []
    if idx.min() < 0 or idx.max() >= _UINT32_END:
        raise StorageError("sparse vector indices must lie in [0, 2**32)")
    if not bool(np.all(idx[1:] > idx[:-1])):
        order = np.argsort(idx, kind="stable")
        idx, val = idx[order], val[order]
        if bool(np.any(idx[1:] == idx[:-1])):
            raise StorageError("sparse vector indices must be unique")
    return idx.tolist(), val.tolist()


def _payload_selector(with_payload: bool | Sequence[str]) -> bool | list[str]:
    if isinstance(with_payload, bool):
        return with_payload
    if isinstance(with_payload, str):
        return [with_payload]
    return [str(k) for k in with_payload]


def _payload_out(payload: Payload | None, with_payload: bool | Sequence[str]) -> Payload | None:
    if with_payload is False:
        return None
    return dict(payload) if payload else {}


def _vectors_out(raw: Any, with_vectors: bool | Sequence[str]) -> dict[str, Any] | None:
    """Named vectors as the protocol returns them: dense as float lists, sparse as SparseVector."""
    if with_vectors is False:
        return None
    out: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if hasattr(value, "indices"):
            out[name] = SparseVector(indices=[int(i) for i in value.indices], values=[float(v) for v in value.values])
        else:
            out[name] = [float(v) for v in value]
    return out


#: Value given to a missing target field: so far from any target that its boost is 0.
TARGET_MISSING = -1e12
#: A target's Gaussian falls to this at ``value +- scale``.
TARGET_MIDPOINT = 0.5


#: A soft range's open end: beyond any descriptor value, and well above ``TARGET_MISSING`` (so a
#: point without the field stays far outside the range).
SOFT_OPEN = 1e9


def _formula_defaults(spec: Any) -> dict[str, float]:
    """The value a formula reads for each payload key a point lacks: far from any target or range
    (no boost), 0 for a linear boost (nothing added)."""
    defaults = {t.key: TARGET_MISSING for t in (*spec.targets, *spec.soft_ranges)}
    for b in spec.boosts:
        if b.key in defaults:
            raise StorageError(f"payload key {b.key!r} is both a linear boost and a target or range: "
                               "one formula cannot give a missing value two defaults")
        defaults[b.key] = 0.0
    return defaults


def _soft_bounds(r: Any) -> tuple[float, float]:
    """``(gte, lte)`` of a soft range, open ends replaced by :data:`SOFT_OPEN`."""
    return (-SOFT_OPEN if r.gte is None else float(r.gte)), (SOFT_OPEN if r.lte is None else float(r.lte))


def _candidates(spec: Any) -> int:
    """How many nearest points a boosted query re-scores."""
    return max(spec.limit, spec.candidates or 10 * spec.limit)


def _index_current(have: Any, want: Any, options: dict[str, Any] | None) -> bool:
    """Whether an existing payload index (the engine's info: ``data_type``, ``params``) is the one
    a spec asks for: its type and, for types that take parameters (``options`` not None, from
    :func:`_index_options`), the same HNSW links (``enable_hnsw`` unset means links), grouping
    (``is_tenant``) and ordering (``is_principal``)."""
    if have is None or have.data_type != want:
        return False
    if options is None:
        return True
    params = have.params
    built = params is None or getattr(params, "enable_hnsw", None) is not False
    grouped = getattr(params, "is_tenant", None) is True
    ordered = getattr(params, "is_principal", None) is True
    return (built == options.get("enable_hnsw", True) and grouped == options.get("is_tenant", False)
            and ordered == options.get("is_principal", False))


def _index_options(spec: CollectionSpec, field_name: str) -> dict[str, Any]:
    """The payload index parameters ``spec`` asks of ``field_name`` beyond its type (none: the
    engine's defaults): no HNSW links unless :attr:`CollectionSpec.payload_links` names it,
    ``is_tenant`` for :attr:`CollectionSpec.tenant_field` and ``is_principal`` for
    :attr:`CollectionSpec.principal_field`."""
    out: dict[str, Any] = {}
    if not spec.links_payload(field_name):
        out["enable_hnsw"] = False
    if spec.tenant_field == field_name:
        out["is_tenant"] = True
    if spec.principal_field == field_name:
        out["is_principal"] = True
    return out


def _is_empty(flt: Filter | None) -> bool:
    return flt is None or (not flt.must and not flt.must_not and not flt.should)


def _jsonable(value: Any) -> Any:
    """``value`` as it comes back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


_REBUILD = ("Rebuild the index (delete the stored collection) or run the Encore version that wrote it.")


def _check_fingerprint(where: str, stored: Any, expected: dict[str, Any], *, advice: str = _REBUILD) -> None:
    """Raise SchemaMismatch naming what differs between the stored and this build's fingerprint,
    followed by ``advice`` (what the user can do)."""
    expected = {k: v for k, v in _jsonable(expected).items() if k != "index"}
    if isinstance(stored, dict):
        stored = {k: v for k, v in stored.items() if k != "index"}
    if not isinstance(stored, dict):
        raise SchemaMismatch(
            f"{where} has no Encore schema record; it was not created by Encore or by an older build. "
            "Move it aside or delete it and rebuild the index."
        )
    if stored == expected:
        return
    parts = []
    if stored.get("schema_version") != expected["schema_version"]:
        parts.append(
            f"schema_version {stored.get('schema_version')} stored, {expected['schema_version']} in this build"
        )
    for key in ("dense", "sparse"):
        if stored.get(key) != expected[key]:
            parts.append(f"{key} vectors {stored.get(key)} stored, {expected[key]} in this build")
    if stored.get("params") != expected["params"]:
        keys = sorted(
            k
            for k in set(stored.get("params") or {}) | set(expected["params"])
            if (stored.get("params") or {}).get(k) != expected["params"].get(k)
        )
        parts.append(
            f"params differ in {', '.join(keys) or '?'} (digest {stored.get('digest')} stored, "
            f"{expected['digest']} in this build)"
        )
    if not parts:
        parts.append(f"digest {stored.get('digest')} stored, {expected['digest']} in this build")
    raise SchemaMismatch(f"{where} was written with other parameters than this build uses: {'; '.join(parts)}. {advice}")


@contextmanager
def _engine_errors(action: str) -> Iterator[None]:
    """Re-raise engine failures as StorageError (SchemaMismatch and StorageError pass through)."""
    try:
        yield
    except (SchemaMismatch, StorageError):
        raise
    except Exception as exc:
        raise StorageError(f"{action} failed: {exc}") from exc
