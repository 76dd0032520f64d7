"""Fixtures for the storage tests: the same data in both backends (qdrant-edge and qdrant-client)."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from encore.storage import Point, SparseVector, VectorStore
from schemas.collections import CollectionSpec, DenseVectorSpec, SparseVectorSpec

DIM = 16
N_POINTS = 300
BACKENDS = ("edge", "remote")


def make_spec(name: str = "congruence", **changes) -> CollectionSpec:
    fields = dict(
        name=name,
        schema_version=1,
        dense={"d": DenseVectorSpec(dim=DIM, distance="cosine")},
        sparse={"s": SparseVectorSpec(idf=True)},
        payload_indexes={"kw": "keyword", "n": "integer", "x": "float", "flag": "bool"},
        params={"hash_space": 2**32, "fingerprint": {"fan_out": 5}},
    )
    fields.update(changes)
    return CollectionSpec(**fields)


@dataclass
class Dataset:
    points: list[Point]
    vocab: list[int]

    @property
    def by_id(self) -> dict[str, Point]:
        return {p.id: p for p in self.points}


def random_sparse(rng: random.Random, vocab: list[int], k: int) -> SparseVector:
    """``k`` distinct indices from ``vocab`` in random (unsorted) order, positive values."""
    indices = rng.sample(vocab, k)
    return SparseVector(indices=indices, values=[rng.uniform(0.1, 2.0) for _ in indices])


def random_dense(rng: random.Random) -> list[float]:
    return [rng.gauss(0.0, 1.0) for _ in range(DIM)]


def make_dataset(seed: int = 7, n: int = N_POINTS) -> Dataset:
    rng = random.Random(seed)
    # A vocabulary spread over the whole uint32 range, ends included.
    vocab = sorted({0, 2**32 - 1, 2**31, *(rng.randrange(2**32) for _ in range(400))})
    points = []
    for i in range(n):
        pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        payload = {
            "kw": rng.choice(["alpha", "beta", "gamma", "delta"]),
            "n": i,
            "x": round(rng.uniform(-10, 10), 6),
            "flag": rng.random() < 0.3,
            "tags": rng.sample(["rock", "jazz", "pop", "folk", "soul"], rng.randint(0, 3)),
            "nested": {"artist": {"name": f"artist {i % 17}", "ids": [i, i + 1]}, "score": i / 7},
            "nothing": None,
        }
        points.append(
            Point(
                id=pid,
                vectors={"d": random_dense(rng), "s": random_sparse(rng, vocab, rng.randint(5, 40))},
                payload=payload,
            )
        )
    return Dataset(points=points, vocab=vocab)


@contextmanager
def scratch_dir(fallback: Path) -> Iterator[Path]:
    """A fresh directory on tmpfs (/dev/shm) when there is one, else ``fallback``.

    qdrant-edge fsyncs on every flush and payload-index creation, ~0.1 s each on a slow disk;
    on tmpfs the suite runs several times faster. ENCORE_TEST_REAL_DISK=1 keeps ``fallback``.
    """
    shm = Path("/dev/shm")
    if os.environ.get("ENCORE_TEST_REAL_DISK") or not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield fallback
        return
    path = Path(tempfile.mkdtemp(prefix="encore-storage-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fast_tmp(tmp_path) -> Iterator[Path]:
    with scratch_dir(tmp_path) as path:
        yield path


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return make_dataset()


def open_backend(kind: str, root) -> VectorStore:
    if kind == "edge":
        from encore.storage.edge import EdgeStore

        return EdgeStore(root)
    from qdrant_client import QdrantClient

    from encore.storage.remote import RemoteStore

    return RemoteStore(QdrantClient(":memory:"), owns_client=True)


@pytest.fixture(params=BACKENDS)
def empty_store(request, fast_tmp) -> Iterator[VectorStore]:
    """An empty store of each backend with the ``congruence`` collection created."""
    store = open_backend(request.param, fast_tmp / "qdrant")
    store.ensure_collection(make_spec())
    yield store
    store.close()


def _loaded(kind: str, root, dataset: Dataset) -> VectorStore:
    s = open_backend(kind, root)
    s.ensure_collection(make_spec())
    s.upsert("congruence", dataset.points)
    return s


@pytest.fixture(scope="module", params=BACKENDS)
def store(request, tmp_path_factory, dataset) -> Iterator[VectorStore]:
    """A store of each backend holding ``dataset``, shared by a module's tests: read only!"""
    with scratch_dir(tmp_path_factory.mktemp("qdrant")) as root:
        s = _loaded(request.param, root / "qdrant", dataset)
        yield s
        s.close()


@pytest.fixture(params=BACKENDS)
def fresh_store(request, fast_tmp, dataset) -> Iterator[VectorStore]:
    """A store of each backend holding ``dataset``, for one test (which may write)."""
    s = _loaded(request.param, fast_tmp / "qdrant", dataset)
    yield s
    s.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory, dataset) -> Iterator[tuple[VectorStore, VectorStore]]:
    """Both backends holding ``dataset``, ``(edge, remote)``, shared by a module's tests: read only!"""
    with scratch_dir(tmp_path_factory.mktemp("qdrant")) as root:
        stores = [_loaded(kind, root / "qdrant", dataset) for kind in BACKENDS]
        yield stores[0], stores[1]
        for s in stores:
            s.close()


@pytest.fixture
def fresh_both(fast_tmp, dataset) -> Iterator[tuple[VectorStore, VectorStore]]:
    """Both backends holding ``dataset``, ``(edge, remote)``, for one test (which may write)."""
    stores = [_loaded(kind, fast_tmp / "qdrant", dataset) for kind in BACKENDS]
    yield stores[0], stores[1]
    for s in stores:
        s.close()
