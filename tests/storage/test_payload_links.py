"""Which payload indexes get their own HNSW links (``CollectionSpec.payload_links``), which
groups the stored points (``CollectionSpec.tenant_field``) and which orders them within a group
(``CollectionSpec.principal_field``), on the real engine.

Links for every indexed field made the world tier's index build the largest part of a 1M-track
ingest, and links for genre alone still took it to 57 min; the world spec links none, groups
its points by genre and orders each genre by year and energy. The choice must reach the engine,
also for a store created before it (its indexes are rebuilt on open), and the searches must stay
the same.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

from encore.storage import Filter, MatchValue, Point, QuerySpec, Range
from encore.storage.edge import EdgeStore
from schemas.collections import WORLD_ORDER_FIELD, WORLD_PAYLOAD_INDEXES, WORLD_PAYLOAD_LINKS, world_collection
from tests.storage.conftest import make_spec


def _links(store: EdgeStore, name: str) -> dict[str, bool]:
    """Field -> whether the engine builds HNSW links for it (enable_hnsw unset means yes)."""
    schema = store._collections[name].shard.info().payload_schema
    return {k: not (v.params is not None and getattr(v.params, "enable_hnsw", None) is False)
            for k, v in schema.items()}


def _points(rng: random.Random) -> list[Point]:
    """200 points of 16 dimensions, whose ``kw`` takes three values."""
    return [Point(id=str(uuid.UUID(int=i + 1)), vectors={"d": [rng.gauss(0, 1) for _ in range(16)]},
                  payload={"kw": f"k{i % 3}", "n": i, "x": i / 10, "flag": i % 2 == 0}) for i in range(200)]


def _flagged(store: EdgeStore, name: str, flag: str) -> set[str]:
    """The indexed fields whose parameters set ``flag`` (``is_tenant``, ``is_principal``)."""
    schema = store._collections[name].shard.info().payload_schema
    return {k for k, v in schema.items() if getattr(v.params, flag, None) is True}


def _tenants(store: EdgeStore, name: str) -> set[str]:
    return _flagged(store, name, "is_tenant")


def test_the_world_collection_links_no_field_groups_by_genre_and_orders_by_era_and_energy(tmp_path):
    spec = world_collection(prefix="t_", vectors={"musicnn": 8}, params={})
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(spec)
        links = _links(store, spec.name)
        tenants = _tenants(store, spec.name)
        principals = _flagged(store, spec.name, "is_principal")
    assert set(links) == set(WORLD_PAYLOAD_INDEXES)
    # bool indexes take no parameters, so the engine's default (links) stays on them
    assert {k for k, v in links.items() if v and WORLD_PAYLOAD_INDEXES[k] != "bool"} == set(WORLD_PAYLOAD_LINKS) == set()
    assert tenants == {"genre"} == {spec.tenant_field}
    assert principals == {"era_energy"} == {spec.principal_field, WORLD_ORDER_FIELD}


def test_a_store_grouped_otherwise_is_regrouped_on_open_and_answers_the_same(tmp_path):
    plain = make_spec(payload_links=())
    grouped = replace(plain, tenant_field="kw")
    points = _points(random.Random(5))
    query = QuerySpec(using="d", vector=[1.0] * 16, limit=5, filter=Filter(must=[MatchValue("kw", "k2")]), exact=True)
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(plain)
        store.upsert(plain.name, points)
        assert _tenants(store, plain.name) == set()
        before = [h.id for h in store.query(plain.name, query)]
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(grouped)
        assert _tenants(store, grouped.name) == {"kw"}
        assert not any(v for k, v in _links(store, grouped.name).items() if k != "flag")
        assert [h.id for h in store.query(grouped.name, query)] == before
        assert store.count(grouped.name, filter=Filter(must=[MatchValue("kw", "k2")])) == 66


def test_a_store_built_with_links_everywhere_is_brought_to_the_spec_and_answers_the_same(tmp_path):
    everywhere = make_spec(payload_links=None)
    only_kw = replace(everywhere, payload_links=("kw",))
    points = _points(random.Random(3))
    query = QuerySpec(using="d", vector=[1.0] * 16, limit=5, filter=Filter(must=[MatchValue("kw", "k1")]), exact=True)
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(everywhere)
        store.upsert(everywhere.name, points)
        assert all(_links(store, everywhere.name).values())
        before = [h.id for h in store.query(everywhere.name, query)]
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(only_kw)
        links = _links(store, only_kw.name)
        assert links == {"kw": True, "n": False, "x": False, "flag": True}  # bool indexes take no params
        assert [h.id for h in store.query(only_kw.name, query)] == before
        assert store.count(only_kw.name, filter=Filter(must=[MatchValue("kw", "k1")])) == 67


def test_a_store_ordered_otherwise_is_reordered_on_open_and_answers_the_same(tmp_path):
    """The principal index is added to a store created without it (the world tier before
    ``era_energy``), and range filters on it answer as before."""
    grouped = make_spec(payload_links=(), tenant_field="kw")
    ordered = replace(grouped, principal_field="n")
    points = _points(random.Random(9))
    flt = Filter(must=[MatchValue("kw", "k0"), Range("n", gte=30, lte=120)])
    query = QuerySpec(using="d", vector=[1.0] * 16, limit=5, filter=flt, exact=True)
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(grouped)
        store.upsert(grouped.name, points)
        assert _flagged(store, grouped.name, "is_principal") == set()
        before = [h.id for h in store.query(grouped.name, query)]
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(ordered)
        assert _flagged(store, ordered.name, "is_principal") == {"n"}
        assert _tenants(store, ordered.name) == {"kw"}
        store.optimize()
        assert [h.id for h in store.query(ordered.name, query)] == before
        assert store.count(ordered.name, filter=flt) == 31  # n in 30..120 with n % 3 == 0
