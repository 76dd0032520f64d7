"""Linear payload boosts and soft ranges: re-scoring in the engine, the same on both backends.

A boost reads a number from the payload (a list element too: ``probs[1]``); a soft range prefers
points inside a range and then the nearest. Both re-score the nearest candidates of a dense query,
and a point lacking the field gets nothing. The reference is computed here in Python.
"""

from __future__ import annotations

import math
import random
import uuid

import numpy as np
import pytest

from encore.errors import StorageError
from encore.storage import Boost, Filter, MatchValue, Point, QuerySpec, SoftRange, Target, VectorStore

from .conftest import random_dense

C = "congruence"
N = 120


def _points(seed: int = 5) -> list[Point]:
    rng = random.Random(seed)
    points = []
    for i in range(N):
        payload: dict = {"kw": rng.choice(["alpha", "beta"]), "x": round(rng.uniform(-10, 10), 4)}
        if i % 7:  # every 7th point has no probabilities, every 5th no energy
            payload["probs"] = [round(rng.uniform(0, 0.9), 3) for _ in range(3)]
        if i % 5:
            payload["energy"] = round(rng.random(), 3)
        points.append(Point(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            vectors={"d": random_dense(rng)}, payload=payload))
    return points


def _reference(points: list[Point], spec: QuerySpec) -> list[tuple[str, float]]:
    """Cosine top-``candidates`` under the filter, re-scored as the formula says."""
    q = np.asarray(spec.vector) / np.linalg.norm(spec.vector)
    pool = []
    for p in points:
        if spec.filter and not all(p.payload.get(c.key) == c.value for c in spec.filter.must):
            continue
        v = np.asarray(p.vectors["d"])
        pool.append((p, float(v @ q / np.linalg.norm(v))))
    pool = sorted(pool, key=lambda t: -t[1])[: spec.candidates]
    gauss = lambda d, scale: math.exp(math.log(0.5) * (d / scale) ** 2)  # noqa: E731
    scored = []
    for p, score in pool:
        for t in spec.targets:
            if t.key in p.payload:
                score += t.weight * gauss(p.payload[t.key] - t.value, t.scale)
        for b in spec.boosts:
            name, index = b.key.rstrip("]").split("[")
            if name in p.payload:
                score += b.weight * p.payload[name][int(index)]
        for r in spec.soft_ranges:
            if r.key in p.payload:
                value = p.payload[r.key]
                outside = max(0.0, (r.gte if r.gte is not None else value) - value) + \
                    max(0.0, value - (r.lte if r.lte is not None else value))
                score += r.weight * gauss(outside, r.scale)
        scored.append((p.id, score))
    return sorted(scored, key=lambda t: -t[1])[: spec.limit]


@pytest.fixture
def loaded(empty_store: VectorStore) -> tuple[VectorStore, list[Point]]:
    points = _points()
    empty_store.upsert(C, points)
    return empty_store, points


@pytest.mark.parametrize("flt", [None, Filter(must=(MatchValue("kw", "beta"),))])
def test_boosts_and_soft_ranges_rescore_the_nearest_candidates(loaded, flt) -> None:
    store, points = loaded
    rng = random.Random(17)
    for _ in range(4):
        spec = QuerySpec(using="d", vector=random_dense(rng), limit=10, filter=flt, with_payload=True,
                         candidates=80,
                         boosts=(Boost("probs[1]", 2.0), Boost("probs[2]", -0.5)),
                         soft_ranges=(SoftRange("energy", 0.6, None, 0.1, weight=0.8),
                                      SoftRange("x", -2.0, 3.0, 1.5, weight=0.4)),
                         targets=(Target("x", 5.0, 2.0, weight=0.3),))
        hits = store.query(C, spec)
        expected = _reference(points, spec)

        assert [h.id for h in hits] == [pid for pid, _ in expected]
        assert np.allclose([h.score for h in hits], [s for _, s in expected], atol=1e-4)


def test_the_strongest_carrier_of_a_boosted_value_comes_first(loaded) -> None:
    store, points = loaded
    query = random_dense(random.Random(9))
    # The point least like the query, carrying the most of probs[0] (the others carry at most 0.9).
    strongest = Point(id=str(uuid.UUID(int=1)), vectors={"d": [-v for v in query]}, payload={"probs": [1.0, 0, 0]})
    store.upsert(C, [strongest])
    spec = QuerySpec(using="d", vector=query, limit=5, candidates=N + 1, boosts=(Boost("probs[0]", 100.0),))

    assert store.query(C, QuerySpec(using="d", vector=query, limit=N + 1))[-1].id == strongest.id
    assert store.query(C, spec)[0].id == strongest.id


def test_a_soft_range_puts_points_inside_first_then_the_nearest(loaded) -> None:
    store, points = loaded
    spec = QuerySpec(using="d", vector=random_dense(random.Random(3)), limit=N, candidates=N,
                     soft_ranges=(SoftRange("energy", 0.9, None, 0.3, weight=1000.0),), with_payload=["energy"])
    energies = [h.payload.get("energy") for h in store.query(C, spec)]
    known = [e for e in energies if e is not None]
    outside = [0.9 - e for e in known if e < 0.9]
    inside = len(known) - len(outside)

    assert inside and all(e >= 0.9 for e in known[:inside] if 0.9 - e >= 0.1)  # inside before the far ones
    assert all(b >= a - 0.05 for a, b in zip(outside, outside[1:], strict=False))  # then the nearest first
    assert energies[len(known):] == [None] * (len(energies) - len(known))  # no field, no boost: last


def test_one_key_cannot_be_a_boost_and_a_target(loaded) -> None:
    store, _ = loaded
    spec = QuerySpec(using="d", vector=random_dense(random.Random(1)), boosts=(Boost("x", 1.0),),
                     targets=(Target("x", 0.0, 1.0),))
    with pytest.raises(StorageError, match="both a linear boost and a target"):
        store.query(C, spec)
