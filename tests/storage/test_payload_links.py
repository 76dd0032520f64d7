"""Which payload indexes get their own HNSW links (``CollectionSpec.payload_links``), on the real engine.

Links for every indexed field made the world tier's index build the largest part of a 1M-track
ingest; the world spec links genre only. The choice must reach the engine, also for a store
created before it (its indexes are rebuilt on open), and the searches must stay the same.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

from encore.storage import Filter, MatchValue, Point, QuerySpec
from encore.storage.edge import EdgeStore
from schemas.collections import WORLD_PAYLOAD_INDEXES, WORLD_PAYLOAD_LINKS, world_collection
from tests.storage.conftest import make_spec


def _links(store: EdgeStore, name: str) -> dict[str, bool]:
    """Field -> whether the engine builds HNSW links for it (enable_hnsw unset means yes)."""
    schema = store._collections[name].shard.info().payload_schema
    return {k: not (v.params is not None and getattr(v.params, "enable_hnsw", None) is False)
            for k, v in schema.items()}


def test_the_world_collection_links_only_the_fields_it_names(tmp_path):
    spec = world_collection(prefix="t_", vectors={"musicnn": 8}, params={})
    with EdgeStore(tmp_path) as store:
        store.ensure_collection(spec)
        links = _links(store, spec.name)
    assert set(links) == set(WORLD_PAYLOAD_INDEXES)
    assert {k for k, v in links.items() if v} == set(WORLD_PAYLOAD_LINKS) == {"genre"}


def test_a_store_built_with_links_everywhere_is_brought_to_the_spec_and_answers_the_same(tmp_path):
    everywhere = make_spec(payload_links=None)
    only_kw = replace(everywhere, payload_links=("kw",))
    rng = random.Random(3)
    points = [Point(id=str(uuid.UUID(int=i + 1)), vectors={"d": [rng.gauss(0, 1) for _ in range(16)]},
                    payload={"kw": f"k{i % 3}", "n": i, "x": i / 10, "flag": i % 2 == 0}) for i in range(200)]
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
