"""Storage benchmark: landmark-like sparse points and filtered dense queries.

Builds ``--points`` random sparse points (each ~``--point-indices`` distinct uint32 hashes drawn
from a ``--hash-space`` space, value 1.0, IDF modifier), like catalog segments, and as many
200-d dense points with a keyword and an integer payload field. Then it times:

* sparse queries of ``--query-indices`` hashes taken from one stored point (limit 10), and how
  often that point comes back first (top-1 recovery);
* dense queries filtered on a keyword and an integer range (limit 10).

Usage::

    python bench/storage.py --points 100000 --backend edge
    python bench/storage.py --points 10000 --backend local   # qdrant-client local mode: slow
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from encore.storage import Filter, MatchValue, Point, QuerySpec, Range, SparseVector, VectorStore
from schemas.collections import CollectionSpec, DenseVectorSpec, SparseVectorSpec

GENRES = [f"genre{i}" for i in range(10)]


def make_ids(n: int, rng: np.random.Generator) -> list[str]:
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).astype(np.uint64)
    return [str(uuid.UUID(int=(int(a) << 64) | int(b), version=4)) for a, b in raw]


def sparse_row(rng: np.random.Generator, k: int, space: int) -> np.ndarray:
    """About ``k`` distinct random indices below ``space`` (duplicates dropped), unsorted."""
    idx = np.unique(rng.integers(0, space, size=k, dtype=np.int64))
    rng.shuffle(idx)
    return idx


def percentiles(samples: list[float]) -> str:
    ms = np.asarray(samples) * 1000
    return f"p50 {np.percentile(ms, 50):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, mean {ms.mean():.2f} ms"


def open_store(backend: str, root: Path, live_idf: bool) -> VectorStore:
    if backend == "edge":
        from encore.storage.edge import EdgeStore

        return EdgeStore(root, live_idf=live_idf)
    from qdrant_client import QdrantClient

    from encore.storage.remote import RemoteStore

    return RemoteStore(QdrantClient(":memory:"), owns_client=True, upsert_batch=1000, live_idf=live_idf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--backend", choices=["edge", "local"], default="edge")
    ap.add_argument("--point-indices", type=int, default=1000, help="hashes per stored point")
    ap.add_argument("--query-indices", type=int, default=500, help="hashes per query, taken from one point")
    ap.add_argument("--hash-space", type=int, default=2**22)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--batch", type=int, default=1000, help="points per upsert call")
    ap.add_argument("--no-optimize", action="store_true", help="edge: skip optimize() after loading")
    ap.add_argument("--index-idf", action="store_true", help="IDF from the sparse index, not live points")
    ap.add_argument("--dir", type=Path, default=None, help="edge: store root (default: a temp dir, removed)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    root = args.dir or Path(tempfile.mkdtemp(prefix="encore-bench-"))
    store = open_store(args.backend, root, live_idf=not args.index_idf)
    sparse_spec = CollectionSpec(
        name="bench_landmarks",
        schema_version=1,
        sparse={"landmarks": SparseVectorSpec(idf=True)},
        payload_indexes={"track_id": "keyword", "segment": "integer"},
    )
    dense_spec = CollectionSpec(
        name="bench_dense",
        schema_version=1,
        dense={"embedding": DenseVectorSpec(dim=args.dim)},
        payload_indexes={"genre": "keyword", "year": "integer"},
    )
    live = getattr(store, "live_idf", None)
    print(f"backend {store.backend} ({args.backend}), {args.points} points, IDF corpus filter sent: {live}")
    try:
        store.ensure_collection(sparse_spec)
        store.ensure_collection(dense_spec)

        ids = make_ids(args.points, rng)
        kept: dict[int, np.ndarray] = {}  # indices of the points queries are drawn from
        probe = set(rng.choice(args.points, size=min(args.queries, args.points), replace=False).tolist())
        t0 = time.perf_counter()
        n_postings = 0
        for start in range(0, args.points, args.batch):
            batch = []
            for i in range(start, min(start + args.batch, args.points)):
                idx = sparse_row(rng, args.point_indices, args.hash_space)
                n_postings += idx.size
                if i in probe:
                    kept[i] = idx
                batch.append(
                    Point(
                        ids[i],
                        {"landmarks": SparseVector(idx, np.ones(idx.size))},
                        {"track_id": f"t{i // 8}", "segment": i % 8},
                    )
                )
            store.upsert(sparse_spec.name, batch)
        t_sparse = time.perf_counter() - t0
        print(
            f"sparse load: {t_sparse:.1f} s ({args.points / t_sparse:.0f} points/s, {n_postings / 1e6:.1f}M postings)"
        )

        t0 = time.perf_counter()
        dense = rng.standard_normal((args.points, args.dim), dtype=np.float32)
        for start in range(0, args.points, args.batch):
            stop = min(start + args.batch, args.points)
            store.upsert(
                dense_spec.name,
                [
                    Point(ids[i], {"embedding": dense[i]}, {"genre": GENRES[i % 10], "year": 1960 + i % 60})
                    for i in range(start, stop)
                ],
            )
        t_dense = time.perf_counter() - t0
        print(f"dense load: {t_dense:.1f} s ({args.points / t_dense:.0f} points/s)")

        if args.backend == "edge" and not args.no_optimize:
            t0 = time.perf_counter()
            store.optimize()  # type: ignore[attr-defined]
            print(f"optimize: {time.perf_counter() - t0:.1f} s")
        disk = store.disk_bytes()
        if disk is not None:
            print(f"disk: {disk / 2**20:.0f} MiB")

        # Warm up (first queries load pages, build caches).
        first = next(iter(kept))
        for _ in range(3):
            store.query(
                sparse_spec.name, QuerySpec(using="landmarks", vector=SparseVector(kept[first][:10], [1.0] * 10))
            )

        lat, hits_at_1 = [], 0
        for i, idx in kept.items():
            take = rng.choice(idx, size=min(args.query_indices, idx.size), replace=False)
            q = QuerySpec(
                using="landmarks", vector=SparseVector(take, np.ones(take.size)), limit=10, with_payload=["track_id"]
            )
            t0 = time.perf_counter()
            hits = store.query(sparse_spec.name, q)
            lat.append(time.perf_counter() - t0)
            hits_at_1 += bool(hits) and hits[0].id == ids[i]
        print(f"sparse query ({args.query_indices} indices, limit 10): {percentiles(lat)}")
        print(f"top-1 recovery: {hits_at_1}/{len(kept)} = {hits_at_1 / len(kept):.3f}")

        lat = []
        for k in range(len(kept)):
            flt = Filter(must=(MatchValue("genre", GENRES[k % 10]), Range("year", gte=1970, lte=1999)))
            q = QuerySpec(using="embedding", vector=rng.standard_normal(args.dim), limit=10, filter=flt)
            t0 = time.perf_counter()
            store.query(dense_spec.name, q)
            lat.append(time.perf_counter() - t0)
        print(f"filtered dense query ({args.dim}-d, genre + year range, limit 10): {percentiles(lat)}")

        lat = []
        for _ in range(len(kept)):
            q = QuerySpec(using="embedding", vector=rng.standard_normal(args.dim), limit=10)
            t0 = time.perf_counter()
            store.query(dense_spec.name, q)
            lat.append(time.perf_counter() - t0)
        print(f"unfiltered dense query: {percentiles(lat)}")
    finally:
        store.close()
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
