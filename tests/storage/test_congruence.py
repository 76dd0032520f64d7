"""Both storage backends give the same answers (after qdrant-client's tests/congruence_tests).

``store`` runs a scenario on each backend and checks it against an answer computed here in
Python; ``both`` runs it on qdrant-edge and qdrant-client's local mode side by side and compares.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

from encore.errors import SchemaMismatch, StorageError
from encore.storage import (
    Filter,
    HasId,
    MatchAny,
    MatchValue,
    Point,
    QuerySpec,
    Range,
    SparseVector,
    Target,
    VectorStore,
    open_store,
)
from encore.storage.edge import EdgeStore
from encore.storage.remote import RemoteStore
from schemas.collections import DenseVectorSpec, SparseVectorSpec

from .conftest import Dataset, make_spec, open_backend, random_dense, random_sparse

C = "congruence"
# qdrant-client local mode warns that it ignores payload indexes; the server does not.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect"),
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Failed to obtain server version"),
]


# --- reference answers computed in Python -------------------------------------------------------


def matches(cond, point: Point) -> bool:
    if isinstance(cond, HasId):
        return point.id in {str(uuid.UUID(i)) for i in cond.ids}
    value = point.payload
    for part in cond.key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    values = value if isinstance(value, list) else [value]
    if isinstance(cond, MatchValue):
        return any(v == cond.value and type(v) is type(cond.value) for v in values)
    if isinstance(cond, MatchAny):
        return any(v in cond.values and not isinstance(v, bool) for v in values)
    if isinstance(cond, Range):
        nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return any((cond.gte is None or v >= cond.gte) and (cond.lte is None or v <= cond.lte) for v in nums)
    raise TypeError(cond)


def passes(flt: Filter | None, point: Point) -> bool:
    if flt is None:
        return True
    return (all(matches(c, point) for c in flt.must) and not any(matches(c, point) for c in flt.must_not)
            and (not flt.should or any(matches(c, point) for c in flt.should)))


def cosine_top(points: list[Point], query: list[float], k: int, flt: Filter | None = None) -> list[tuple[str, float]]:
    q = np.asarray(query) / np.linalg.norm(query)
    scored = []
    for p in points:
        if passes(flt, p):
            v = np.asarray(p.vectors["d"])
            scored.append((p.id, float(v @ q / np.linalg.norm(v))))
    return sorted(scored, key=lambda t: -t[1])[:k]


def idf_top(points: list[Point], query: SparseVector, k: int) -> list[tuple[str, float]]:
    n = len(points)
    df: dict[int, int] = {}
    for p in points:
        for i in p.vectors["s"].indices:
            df[i] = df.get(i, 0) + 1
    qmap = dict(zip(query.indices, query.values, strict=True))
    scored = []
    for p in points:
        sv = p.vectors["s"]
        common = [(i, v) for i, v in zip(sv.indices, sv.values, strict=True) if i in qmap]
        if common:
            score = sum(qmap[i] * v * math.log((n - df[i] + 0.5) / (df[i] + 0.5) + 1) for i, v in common)
            scored.append((p.id, score))
    return sorted(scored, key=lambda t: -t[1])[:k]


def assert_same_hits(a, b, *, check_payload: bool = True) -> None:
    """Same ids in the same order, scores within 1e-4 (relative for large scores), same payloads."""
    assert [h.id for h in a] == [h.id for h in b]
    for x, y in zip(a, b, strict=True):
        assert x.score == pytest.approx(y.score, rel=1e-4, abs=1e-4)
        if check_payload:
            assert x.payload == y.payload


def assert_hits_match_reference(hits, reference) -> None:
    assert [h.id for h in hits] == [i for i, _ in reference]
    assert [h.score for h in hits] == pytest.approx([s for _, s in reference], rel=1e-4, abs=1e-4)


FILTERS = [
    Filter(must=(MatchValue("kw", "beta"),)),
    Filter(must=(MatchValue("n", 17),)),
    Filter(must=(MatchValue("flag", True),)),
    Filter(must=(MatchValue("flag", False),)),
    Filter(must=(MatchValue("tags", "jazz"),)),
    Filter(must=(MatchAny("kw", ("alpha", "gamma")),)),
    Filter(must=(MatchAny("n", (1, 2, 3, 250, 999)),)),
    Filter(must=(Range("x", gte=-2.5, lte=4.0),)),
    Filter(must=(Range("n", gte=100),)),
    Filter(must=(Range("x", lte=0.0),), must_not=(MatchValue("kw", "delta"),)),
    Filter(must_not=(MatchAny("tags", ("rock", "pop")),)),
    Filter(must=(MatchValue("kw", "alpha"), Range("n", lte=200)), must_not=(MatchValue("flag", True),)),
    Filter(must=(MatchValue("nested.artist.name", "artist 3"),)),
    Filter(should=(Range("n", gte=10, lte=40), Range("n", gte=300, lte=330), MatchValue("kw", "beta"))),
    Filter(must=(Range("x", lte=1.0),), should=(Range("n", gte=0, lte=120), Range("n", gte=700)),
           must_not=(MatchValue("flag", True),)),
]


# --- scenarios on each backend, checked against Python --------------------------------------------


def test_payload_round_trips(store: VectorStore, dataset: Dataset):
    ids = [p.id for p in dataset.points[:50]]
    records = store.retrieve(C, ids)
    assert [r.id for r in records] == ids
    for r in records:
        assert r.payload == dataset.by_id[r.id].payload


def test_odd_payload_values_round_trip(empty_store: VectorStore):
    store = empty_store
    odd = {
        "s": "ü ✓",
        "i": -(2**53),
        "f": 1.5,
        "t": True,
        "f0": False,
        "none": None,
        "l": [1, "a", None, [2.5]],
        "d": {"a": {"b": [True, {"c": 0}]}},
        "empty_list": [],
        "empty_dict": {},
    }
    pid = str(uuid.uuid4())
    store.upsert(C, [Point(pid, {"d": random_dense(random.Random(1))}, odd)])
    (rec,) = store.retrieve(C, [pid])
    assert rec.payload == odd
    assert type(rec.payload["f"]) is float and type(rec.payload["i"]) is int and rec.payload["t"] is True


def test_ids_are_canonical_uuid_strings(store: VectorStore, dataset: Dataset):
    p = dataset.points[0]
    hits = store.query(C, QuerySpec(using="d", vector=p.vectors["d"], limit=3))
    assert all(isinstance(h.id, str) and str(uuid.UUID(h.id)) == h.id for h in hits)
    assert hits[0].id == p.id
    # Any spelling uuid.UUID takes is accepted and answered canonically.
    assert [r.id for r in store.retrieve(C, [p.id.upper(), "{" + p.id + "}"])] == [p.id]
    with pytest.raises(StorageError, match="UUID"):
        store.retrieve(C, ["not-a-uuid"])


def test_dense_query_matches_reference(store: VectorStore, dataset: Dataset):
    rng = random.Random(11)
    for _ in range(5):
        q = random_dense(rng)
        hits = store.query(C, QuerySpec(using="d", vector=q, limit=10, with_payload=False))
        assert_hits_match_reference(hits, cosine_top(dataset.points, q, 10))


def test_sparse_idf_query_matches_reference(store: VectorStore, dataset: Dataset):
    rng = random.Random(12)
    for _ in range(5):
        q = random_sparse(rng, dataset.vocab, 30)
        hits = store.query(C, QuerySpec(using="s", vector=q, limit=10, with_payload=False))
        assert_hits_match_reference(hits, idf_top(dataset.points, q, 10))


def test_sparse_indices_unsorted_and_full_uint32_range(empty_store: VectorStore):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    empty_store.upsert(
        C,
        [
            Point(a, {"s": SparseVector([2**32 - 1, 5, 2**31], [1.0, 2.0, 3.0])}),
            Point(b, {"s": SparseVector([7, 0], [1.0, 1.0])}),
        ],
    )
    hits = empty_store.query(C, QuerySpec(using="s", vector=SparseVector([2**32 - 1], [1.0]), limit=5))
    assert [h.id for h in hits] == [a]
    hits = empty_store.query(C, QuerySpec(using="s", vector=SparseVector([0, 2**31], [1.0, 1.0]), limit=5))
    assert {h.id for h in hits} == {a, b}
    with pytest.raises(StorageError, match="unique"):
        empty_store.upsert(C, [Point(a, {"s": SparseVector([3, 1, 3], [1.0, 1.0, 1.0])})])
    with pytest.raises(StorageError, match=r"2\*\*32"):
        empty_store.upsert(C, [Point(a, {"s": SparseVector([2**32], [1.0])})])


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: repr(f)[:60])
def test_filters_match_reference(store: VectorStore, dataset: Dataset, flt: Filter):
    expected = {p.id for p in dataset.points if passes(flt, p)}
    assert 0 < len(expected) < len(dataset.points)  # the filter discriminates
    assert store.count(C, filter=flt) == len(expected)
    q = random_dense(random.Random(13))
    hits = store.query(C, QuerySpec(using="d", vector=q, limit=15, filter=flt, with_payload=False))
    assert_hits_match_reference(hits, cosine_top(dataset.points, q, 15, flt))


def test_has_id_filter(store: VectorStore, dataset: Dataset):
    ids = tuple(p.id for p in dataset.points[10:20])
    assert store.count(C, filter=Filter(must=(HasId(ids),))) == 10
    assert store.count(C, filter=Filter(must_not=(HasId(ids),))) == len(dataset.points) - 10
    q = dataset.points[10].vectors["d"]
    hits = store.query(C, QuerySpec(using="d", vector=q, limit=20, filter=Filter(must=(HasId(ids),))))
    assert {h.id for h in hits} == set(ids)
    assert hits[0].id == ids[0]


def test_with_payload_variants(store: VectorStore, dataset: Dataset):
    p = dataset.points[3]
    q = p.vectors["d"]
    full = store.query(C, QuerySpec(using="d", vector=q, limit=1))[0]
    assert full.payload == p.payload
    none = store.query(C, QuerySpec(using="d", vector=q, limit=1, with_payload=False))[0]
    assert none.payload is None
    some = store.query(C, QuerySpec(using="d", vector=q, limit=1, with_payload=["kw", "n", "missing"]))[0]
    assert some.payload == {"kw": p.payload["kw"], "n": p.payload["n"]}
    assert store.retrieve(C, [p.id], with_payload=False)[0].payload is None
    assert store.retrieve(C, [p.id], with_payload=["x"])[0].payload == {"x": p.payload["x"]}
    page, _ = store.scroll(C, limit=2, with_payload=["nested"])
    assert all(set(r.payload) == {"nested"} for r in page)


def test_score_threshold(store: VectorStore, dataset: Dataset):
    q = random_dense(random.Random(14))
    ref = cosine_top(dataset.points, q, 50)
    threshold = ref[7][1] - 1e-6  # the 8 best pass
    hits = store.query(C, QuerySpec(using="d", vector=q, limit=50, score_threshold=threshold))
    assert [h.id for h in hits] == [i for i, _ in ref[:8]]
    assert all(h.score >= threshold for h in hits)
    sq = random_sparse(random.Random(15), dataset.vocab, 30)
    sref = idf_top(dataset.points, sq, 50)
    hits = store.query(C, QuerySpec(using="s", vector=sq, limit=50, score_threshold=sref[4][1] - 1e-4))
    assert [h.id for h in hits] == [i for i, _ in sref[:5]]


def test_retrieve_keeps_given_order(store: VectorStore, dataset: Dataset):
    ids = [p.id for p in dataset.points]
    rng = random.Random(16)
    wanted = rng.sample(ids, 40)
    missing = [str(uuid.uuid4()) for _ in range(5)]
    mixed = wanted[:10] + missing[:2] + wanted[10:] + missing[2:] + [wanted[0]]
    records = store.retrieve(C, mixed, with_payload=["n"])
    assert [r.id for r in records] == wanted
    assert [r.payload["n"] for r in records] == [dataset.by_id[i].payload["n"] for i in wanted]
    assert store.retrieve(C, []) == []
    assert store.retrieve(C, missing) == []


def test_retrieve_and_scroll_return_the_vectors_asked_for(store: VectorStore, dataset: Dataset):
    wanted = [p.id for p in dataset.points[:12]]

    plain = store.retrieve(C, wanted)
    both = store.retrieve(C, wanted, with_payload=False, with_vectors=True)
    dense_only = store.retrieve(C, wanted, with_payload=False, with_vectors=["d"])
    page, _ = store.scroll(C, limit=12, with_payload=False, with_vectors=["s"])

    assert all(r.vectors is None for r in plain)
    for record in both:
        point = dataset.by_id[record.id]
        assert record.payload is None and set(record.vectors) == {"d", "s"}
        given = np.asarray(point.vectors["d"])
        assert np.allclose(record.vectors["d"], given / np.linalg.norm(given), atol=1e-6)  # cosine: unit length
        sparse = record.vectors["s"]
        assert isinstance(sparse, SparseVector)
        order = np.argsort(point.vectors["s"].indices)
        assert list(sparse.indices) == list(np.asarray(point.vectors["s"].indices)[order])
        assert np.allclose(sparse.values, np.asarray(point.vectors["s"].values)[order])
    assert all(set(r.vectors) == {"d"} for r in dense_only)
    assert all(set(r.vectors) == {"s"} and isinstance(r.vectors["s"], SparseVector) for r in page)


@pytest.mark.parametrize("flt", [None, Filter(must=(MatchValue("kw", "gamma"),))])
def test_scroll_covers_every_point_once_in_id_order(store: VectorStore, dataset: Dataset, flt):
    seen, offset, pages = [], None, 0
    while True:
        page, offset = store.scroll(C, filter=flt, limit=37, offset=offset, with_payload=["n"])
        seen.extend(page)
        pages += 1
        assert len(page) <= 37
        if offset is None:
            break
        assert isinstance(offset, str)
        assert pages < 100
    expected = sorted(p.id for p in dataset.points if passes(flt, p))
    assert [r.id for r in seen] == expected
    assert all(r.payload == {"n": dataset.by_id[r.id].payload["n"]} for r in seen)
    # The offset is included: starting from the 5th id gives the 5th id first.
    page, _ = store.scroll(C, filter=flt, limit=3, offset=expected[4], with_payload=False)
    assert [r.id for r in page] == expected[4:7] and page[0].payload is None


def test_count_exact(store: VectorStore, dataset: Dataset):
    assert store.count(C) == len(dataset.points)
    assert store.count(C, filter=Filter()) == len(dataset.points)
    assert store.count(C, filter=Filter(must=(MatchValue("kw", "nope"),))) == 0
    # The engine's estimate: exact without a filter (no writes under way), near the truth with one.
    assert store.count(C, exact=False) == len(dataset.points)
    flt = Filter(must=(Range("n", gte=100),))
    assert abs(store.count(C, filter=flt, exact=False) - store.count(C, filter=flt)) <= 0.2 * len(dataset.points)


def test_delete_by_ids_and_by_filter(fresh_store: VectorStore, dataset: Dataset):
    store = fresh_store
    ids = [p.id for p in dataset.points[:25]]
    store.delete(C, ids=ids)
    store.delete(C, ids=ids)  # again: nothing to delete, no error
    store.delete(C, ids=[str(uuid.uuid4())])
    store.delete(C, ids=[])
    assert store.retrieve(C, ids) == []
    left = dataset.points[25:]
    assert store.count(C) == len(left)

    flt = Filter(must=(MatchValue("kw", "alpha"),), must_not=(Range("n", lte=150),))
    store.delete(C, filter=flt)
    store.delete(C, filter=Filter(must=(MatchValue("kw", "nope"),)))
    left = [p for p in left if not passes(flt, p)]
    assert store.count(C) == len(left)
    assert store.count(C, filter=flt) == 0
    # Queries see the deletions, sparse IDF statistics included (over live points).
    q = random_sparse(random.Random(17), dataset.vocab, 30)
    hits = store.query(C, QuerySpec(using="s", vector=q, limit=10, with_payload=False))
    assert_hits_match_reference(hits, idf_top(left, q, 10))
    with pytest.raises(TypeError):
        store.delete(C)


def test_upsert_replaces_existing_point(fresh_store: VectorStore, dataset: Dataset):
    store = fresh_store
    old = dataset.points[5]
    rng = random.Random(18)
    new_dense = random_dense(rng)
    new = Point(old.id, {"d": new_dense}, {"kw": "replaced", "n": -1})
    store.upsert(C, [new])
    assert store.count(C) == len(dataset.points)
    assert store.retrieve(C, [old.id])[0].payload == {"kw": "replaced", "n": -1}
    assert store.query(C, QuerySpec(using="d", vector=new_dense, limit=1))[0].id == old.id
    hits = store.query(C, QuerySpec(using="d", vector=old.vectors["d"], limit=1))
    assert hits[0].id != old.id or hits[0].score < 0.99
    assert store.count(C, filter=Filter(must=(MatchValue("kw", old.payload["kw"]), HasId((old.id,))))) == 0
    # The sparse vector went with the replaced point.
    sq = old.vectors["s"]
    assert old.id not in {h.id for h in store.query(C, QuerySpec(using="s", vector=sq, limit=300))}


def test_engine_errors_become_storage_errors(empty_store: VectorStore):
    store = empty_store
    with pytest.raises(StorageError, match="(?i)dim"):
        store.upsert(C, [Point(str(uuid.uuid4()), {"d": [1.0, 2.0]})])
    with pytest.raises(StorageError):
        store.query(C, QuerySpec(using="d", vector=[1.0] * 3))
    with pytest.raises(StorageError):
        store.query(C, QuerySpec(using="nope", vector=[1.0] * 16))
    with pytest.raises(StorageError):
        store.count("no_such_collection")
    with pytest.raises(StorageError):
        store.upsert("no_such_collection", [Point(str(uuid.uuid4()), {"d": [1.0] * 16})])


def test_schema_mismatch_on_changed_spec(fresh_store: VectorStore):
    store = fresh_store
    store.ensure_collection(make_spec())  # same spec: fine, idempotent
    with pytest.raises(SchemaMismatch, match="schema_version 1 stored, 2 in this build"):
        store.ensure_collection(make_spec(schema_version=2))
    with pytest.raises(SchemaMismatch, match="dense vectors"):
        store.ensure_collection(make_spec(dense={"d": DenseVectorSpec(dim=32)}))
    with pytest.raises(SchemaMismatch, match="sparse vectors"):
        store.ensure_collection(make_spec(sparse={"s": SparseVectorSpec(idf=False)}))
    with pytest.raises(SchemaMismatch, match="params differ in fingerprint"):
        store.ensure_collection(make_spec(params={"hash_space": 2**32, "fingerprint": {"fan_out": 6}}))
    assert store.count(C) > 0  # nothing was overwritten
    # Payload indexes are not part of the fingerprint: adding one is allowed.
    store.ensure_collection(make_spec(payload_indexes={"kw": "keyword", "tags": "keyword"}))
    assert store.count(C, filter=Filter(must=(MatchValue("tags", "jazz"),))) > 0


def test_disk_bytes(store: VectorStore):
    size = store.disk_bytes()
    if store.backend == "edge":
        assert isinstance(size, int) and size > 0
    else:
        assert size is None


# --- the two backends side by side --------------------------------------------------------------


def test_backends_agree_on_queries(both, dataset: Dataset):
    edge, remote = both
    rng = random.Random(21)
    specs = []
    for i in range(12):
        flt = FILTERS[i % len(FILTERS)] if i % 3 else None
        specs.append(QuerySpec(using="d", vector=random_dense(rng), limit=10, filter=flt))
        specs.append(
            QuerySpec(
                using="s", vector=random_sparse(rng, dataset.vocab, 25), limit=10, filter=flt, with_payload=["kw", "n"]
            )
        )
    nonempty = 0
    for spec in specs:
        a, b = edge.query(C, spec), remote.query(C, spec)
        assert_same_hits(a, b)
        nonempty += bool(a)
    assert nonempty >= len(specs) - 4  # something was compared
    batch_a, batch_b = edge.query_batch(C, specs), remote.query_batch(C, specs)
    assert len(batch_a) == len(batch_b) == len(specs)
    for spec, a, b in zip(specs, batch_a, batch_b, strict=True):
        assert_same_hits(a, b)
        assert_same_hits(a, edge.query(C, spec))  # batch = one by one
    assert edge.query_batch(C, []) == remote.query_batch(C, []) == []


def test_backends_agree_after_writes(fresh_both, dataset: Dataset):
    both = fresh_both
    edge, remote = both
    rng = random.Random(22)
    replaced = [
        Point(p.id, {"d": random_dense(rng), "s": random_sparse(rng, dataset.vocab, 20)}, {"kw": "new", "n": i})
        for i, p in enumerate(dataset.points[::7])
    ]
    for s in both:
        s.upsert(C, replaced)
        s.delete(C, ids=[p.id for p in dataset.points[1:40:3]])
        s.delete(C, filter=Filter(must=(Range("x", gte=5.0),), must_not=(MatchValue("kw", "new"),)))
    assert edge.count(C) == remote.count(C) < len(dataset.points)
    for flt in FILTERS[:6]:
        assert edge.count(C, filter=flt) == remote.count(C, filter=flt)
    for _ in range(5):
        for spec in (
            QuerySpec(using="d", vector=random_dense(rng), limit=20),
            QuerySpec(using="s", vector=random_sparse(rng, dataset.vocab, 40), limit=20),
        ):
            assert_same_hits(edge.query(C, spec), remote.query(C, spec))
    pages = {}
    for s in both:
        out, offset = [], None
        while True:
            page, offset = s.scroll(C, limit=50, offset=offset)
            out.append(([r.id for r in page], offset))
            if offset is None:
                break
        pages[s.backend] = out
    assert pages["edge"] == pages["remote"]
    ids = [p.id for p in dataset.points[::-5]] + [str(uuid.uuid4())]
    assert edge.retrieve(C, ids) == remote.retrieve(C, ids)


# --- edge only: persistence, locking, threads ----------------------------------------------------


def test_edge_reopen_keeps_data(fast_tmp, dataset: Dataset):
    root = fast_tmp / "qdrant"
    store = EdgeStore(root)
    store.ensure_collection(make_spec())
    store.upsert(C, dataset.points)
    store.delete(C, ids=[dataset.points[0].id])
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.ensure_collection(make_spec())

    store = EdgeStore(root, max_search_threads=1)
    # Readable before ensure_collection (opened lazily) ...
    assert store.count(C) == len(dataset.points) - 1
    store.ensure_collection(make_spec())
    store.optimize()
    assert store.count(C) == len(dataset.points) - 1
    p = dataset.points[9]
    assert store.retrieve(C, [p.id])[0].payload == p.payload
    assert store.query(C, QuerySpec(using="d", vector=p.vectors["d"], limit=1))[0].id == p.id
    assert store.count(C, filter=Filter(must=(MatchValue("flag", True),))) == sum(
        1 for q in dataset.points[1:] if q.payload["flag"]
    )
    store.close()

    store = EdgeStore(root)
    with pytest.raises(SchemaMismatch, match="schema_version"):
        store.ensure_collection(make_spec(schema_version=2))
    store.close()
    assert (root / C / "encore_schema.json").exists()


def test_edge_refuses_a_shard_without_schema_record(fast_tmp):
    root = fast_tmp / "qdrant"
    store = EdgeStore(root)
    store.ensure_collection(make_spec())
    store.close()
    (root / C / "encore_schema.json").unlink()
    store = EdgeStore(root)
    with pytest.raises(SchemaMismatch, match="no Encore schema record"):
        store.ensure_collection(make_spec())
    store.close()


def test_edge_root_lock_same_process(fast_tmp):
    root = fast_tmp / "qdrant"
    first = EdgeStore(root)
    with pytest.raises(StorageError, match=rf"in use by another process \(pid {__import__('os').getpid()}\)"):
        EdgeStore(root)
    first.close()
    EdgeStore(root).close()  # released on close


def test_edge_root_lock_other_process(fast_tmp):
    root = fast_tmp / "qdrant"
    code = (
        "import sys\n"
        "from encore.errors import StorageError\n"
        "from encore.storage.edge import EdgeStore\n"
        "try:\n"
        f"    EdgeStore({str(root)!r})\n"
        "except StorageError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    with EdgeStore(root):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert "in use by another process" in result.stdout and "ENCORE_QDRANT_URL" in result.stdout
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_edge_concurrent_reads_and_writes(fast_tmp, dataset: Dataset):
    store = EdgeStore(fast_tmp / "qdrant")
    store.ensure_collection(make_spec())
    store.upsert(C, dataset.points[:100])
    errors: list[BaseException] = []
    done = threading.Event()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not done.is_set():
                store.query(C, QuerySpec(using="d", vector=random_dense(rng), limit=5))
                store.query(C, QuerySpec(using="s", vector=random_sparse(rng, dataset.vocab, 10), limit=5))
                store.count(C, filter=FILTERS[0])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer(chunk: list[Point]) -> None:
        try:
            for i in range(0, len(chunk), 25):
                store.upsert(C, chunk[i : i + 25])
                store.delete(C, ids=[chunk[i].id])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    writers = [threading.Thread(target=writer, args=(dataset.points[100 + 100 * k : 200 + 100 * k],)) for k in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    store.close()
    assert errors == []
    store = EdgeStore(fast_tmp / "qdrant")
    assert store.count(C) == 300 - 8
    store.close()


# --- factory ------------------------------------------------------------------------------------


def test_open_store_picks_backend(tmp_path):
    from encore.config import Settings

    store = open_store(Settings(data_dir=tmp_path))
    try:
        assert isinstance(store, EdgeStore) and store.backend == "edge"
        assert store.root == tmp_path / "qdrant"
    finally:
        store.close()
    store = open_store(Settings(data_dir=tmp_path, qdrant_url="http://localhost:6333", qdrant_api_key="k"))
    try:
        assert isinstance(store, RemoteStore) and store.backend == "remote"
        assert isinstance(store, VectorStore)
    finally:
        store.close()


def test_open_backend_helper_gives_fresh_stores(tmp_path):
    a = open_backend("remote", tmp_path)
    b = open_backend("remote", tmp_path)
    a.ensure_collection(make_spec())
    with pytest.raises(StorageError):
        b.count(C)
    a.close()
    b.close()


def test_remote_sends_a_valid_live_idf_corpus(dataset: Dataset):
    """Against a server RemoteStore asks for IDF over live points; local mode accepts the same request."""
    from qdrant_client import QdrantClient

    store = RemoteStore(QdrantClient(":memory:"), owns_client=True)
    assert store.live_idf is False  # local mode: live statistics anyway, no corpus filter sent
    store.live_idf = True  # what a server gets
    store.ensure_collection(make_spec())
    store.upsert(C, dataset.points)
    store.delete(C, ids=[p.id for p in dataset.points[:50]])
    q = random_sparse(random.Random(31), dataset.vocab, 30)
    hits = store.query(C, QuerySpec(using="s", vector=q, limit=10, with_payload=False))
    assert_hits_match_reference(hits, idf_top(dataset.points[50:], q, 10))
    assert_hits_match_reference(
        store.query_batch(C, [QuerySpec(using="s", vector=q, limit=10)])[0], idf_top(dataset.points[50:], q, 10)
    )
    store.close()


def _boosted_top(points, query, targets, *, candidates: int, k: int, flt=None) -> list[tuple[str, float]]:
    """The reference: cosine top-``candidates`` under the filter, re-scored with Gaussian boosts."""
    pool = cosine_top(points, query, candidates, flt)
    by_id = {p.id: p for p in points}
    scored = []
    for pid, score in pool:
        payload = by_id[pid].payload
        for t in targets:
            if t.key in payload:
                # Qdrant's gauss_decay: exp(ln(midpoint) * ((x - target) / scale) ** 2), midpoint 0.5
                score += t.weight * math.exp(math.log(0.5) * ((payload[t.key] - t.value) / t.scale) ** 2)
        scored.append((pid, score))
    return sorted(scored, key=lambda t: -t[1])[:k]


@pytest.mark.parametrize("flt", [None, Filter(must=(MatchValue("kw", "beta"),))])
def test_targets_boost_scores_by_payload_in_the_engine(store: VectorStore, dataset: Dataset, flt):
    rng = random.Random(41)
    targets = (Target("x", 5.0, 2.0, weight=0.6), Target("n", 150.0, 40.0, weight=0.3))
    for _ in range(5):
        query = random_dense(rng)
        spec = QuerySpec(using="d", vector=query, limit=8, filter=flt, with_payload=["x"], targets=targets,
                         candidates=60)
        hits = store.query(C, spec)
        expected = _boosted_top(dataset.points, query, targets, candidates=60, k=8, flt=flt)

        assert [h.id for h in hits] == [pid for pid, _ in expected]
        assert np.allclose([h.score for h in hits], [s for _, s in expected], atol=1e-4)
        plain = store.query(C, QuerySpec(using="d", vector=query, limit=8, filter=flt))
        assert [h.id for h in hits] != [h.id for h in plain]  # the boost changes the ranking


def test_exact_search_and_ef_give_the_true_neighbours(store: VectorStore, dataset: Dataset):
    rng = random.Random(43)
    for _ in range(5):
        query = random_dense(rng)
        for spec in (QuerySpec(using="d", vector=query, limit=10, exact=True),
                     QuerySpec(using="d", vector=query, limit=10, hnsw_ef=256)):
            assert [h.id for h in store.query(C, spec)] == [pid for pid, _ in cosine_top(dataset.points, query, 10)]


def test_acorn_filtered_search_gives_the_true_neighbours_under_the_filter(store: VectorStore, dataset: Dataset):
    rng = random.Random(47)
    flt = Filter(must=[MatchValue("kw", "beta")])
    beta = [p for p in dataset.points if p.payload["kw"] == "beta"]
    for _ in range(5):
        query = random_dense(rng)
        hits = store.query(C, QuerySpec(using="d", vector=query, limit=10, filter=flt, acorn=True, hnsw_ef=256))
        assert [h.id for h in hits] == [pid for pid, _ in cosine_top(beta, query, 10)]


@pytest.mark.parametrize("kind", ["edge", "remote"])
def test_index_settings_build_and_do_not_change_the_schema(kind: str, fast_tmp, dataset: Dataset):
    from schemas.collections import HnswSpec

    tuned = make_spec("tuned", dense={"d": DenseVectorSpec(dim=16, hnsw=HnswSpec(m=8, ef_construct=64, payload_m=8),
                                                          quantization="int8")})
    store = open_backend(kind, fast_tmp)
    try:
        store.ensure_collection(tuned)
        store.upsert("tuned", dataset.points[:100])
        query = dataset.points[0].vectors["d"]
        assert store.query("tuned", QuerySpec(using="d", vector=query, limit=1, exact=True))[0].id == dataset.points[0].id
        # Other index settings for the same vectors open the same collection: no schema mismatch.
        store.ensure_collection(make_spec("tuned"))
    finally:
        store.close()


def _rrf_reference(lists: list[list[str]], k: int, limit: int) -> list[str]:
    scores: dict[str, float] = {}
    for ids in lists:
        for rank, pid in enumerate(ids):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda t: (-t[1], t[0]))[:limit]


def test_fused_queries_rank_by_reciprocal_rank(store: VectorStore, dataset: Dataset):
    from encore.storage import FusedQuery

    rng = random.Random(47)
    for _ in range(4):
        dense = QuerySpec(using="d", vector=random_dense(rng), limit=30, filter=Filter(must=(MatchValue("kw", "beta"),)))
        sparse = QuerySpec(using="s", vector=random_sparse(rng, dataset.vocab, 25), limit=30)
        fused = store.query_fused(C, FusedQuery(queries=(dense, sparse), limit=10, with_payload=["kw"], k=60))
        lists = [[h.id for h in store.query(C, spec)] for spec in (dense, sparse)]

        ranked = _rrf_reference(lists, 60, 1000)
        expected = ranked[:10]
        assert len(fused) == len(expected) == 10
        assert np.allclose([h.score for h in fused], [s for _, s in expected], atol=1e-6)
        # Points with equal fused scores may come in either order; every other place is fixed.
        tied = {s for _, s in expected if sum(abs(s - t) < 1e-6 for _, t in ranked) > 1}
        for hit, (pid, score) in zip(fused, expected, strict=True):
            if not any(abs(score - t) < 1e-6 for t in tied):
                assert hit.id == pid


def test_facet_counts_keyword_values(store: VectorStore, dataset: Dataset):
    counts = {}
    for p in dataset.points:
        counts[p.payload["kw"]] = counts.get(p.payload["kw"], 0) + 1
    expected = sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))
    flt = Filter(must=(Range("n", lte=99),))
    in_range = {}
    for p in dataset.points:
        if p.payload["n"] <= 99:
            in_range[p.payload["kw"]] = in_range.get(p.payload["kw"], 0) + 1

    assert store.facet(C, "kw", limit=10) == expected
    assert store.facet(C, "kw", limit=2) == expected[:2]
    assert store.facet(C, "kw", filter=flt) == sorted(in_range.items(), key=lambda vc: (-vc[1], vc[0]))


def test_facet_counts_integer_values_from_the_index(store: VectorStore, dataset: Dataset):
    # Not exact: read from the payload index; with no deletes or updates the counts are the true ones.
    counts: dict[str, int] = {}
    for p in dataset.points:
        counts[str(p.payload["n"])] = counts.get(str(p.payload["n"]), 0) + 1
    expected = sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))
    assert store.facet(C, "n", limit=len(counts) + 5, exact=False) == expected
    assert store.facet(C, "n", limit=len(counts) + 5) == expected


@pytest.mark.parametrize("kind", ["edge", "remote"])
def test_oversampling_reaches_the_engine_and_int8_answers_match_exact(kind: str, fast_tmp, dataset: Dataset):
    """``QuerySpec.oversampling`` becomes the engine's rescoring request (a scan of 200k sample
    tracks without it found 0.93-0.95 of the true top 10), and a rescored int8 search agrees with
    an exact one."""
    from schemas.collections import HnswSpec

    spec = make_spec("q8", dense={"d": DenseVectorSpec(dim=16, hnsw=HnswSpec(full_scan_threshold_kb=1_000_000),
                                                       quantization="int8")})
    store = open_backend(kind, fast_tmp)
    try:
        store.ensure_collection(spec)
        store.upsert("q8", dataset.points)
        if kind == "edge":
            store.optimize()  # builds the int8 copies (a server's optimizer runs by itself)
        query = QuerySpec(using="d", vector=random_dense(random.Random(5)), limit=10, oversampling=3.0)
        if kind == "edge":
            from encore.storage.edge import _to_edge_query

            params = _to_edge_query(query, store._get("q8"), store.live_idf).params
        else:
            params = store._request("q8", query).params
        assert params.quantization.rescore is True and params.quantization.oversampling == 3.0
        exact = store.query("q8", QuerySpec(using="d", vector=query.vector, limit=10, exact=True))
        assert [h.id for h in store.query("q8", query)] == [h.id for h in exact]
    finally:
        store.close()
