"""Cluster settings: shards and replicas of both tiers reach Qdrant's create_collection.

qdrant-client's local mode accepts ``shard_number`` and ``replication_factor`` and ignores them (it
has one process, no shards), so these tests spy on the arguments the remote backend sends, and then
check that collections created that way still identify and recommend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from encore.catalog import TrackMeta
from encore.config import Settings
from encore.service import Encore
from tests.utils.audio import synth_track

SR = 8000


class CreateCollectionSpy:
    """Records the keyword arguments of every ``create_collection`` call, then makes the call."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self._create = client.create_collection

    def __call__(self, collection_name: str, **kwargs: Any) -> Any:
        self.calls[collection_name] = kwargs
        return self._create(collection_name, **kwargs)


def _remote(settings: Settings) -> tuple[Encore, CreateCollectionSpy]:
    from qdrant_client import QdrantClient

    from encore.storage.remote import RemoteStore

    client = QdrantClient(":memory:")
    spy = CreateCollectionSpy(client)
    client.create_collection = spy  # type: ignore[method-assign]
    return Encore(RemoteStore(client, owns_client=True), settings), spy


@pytest.fixture
def clustered(tmp_path: Path) -> Iterator[tuple[Encore, CreateCollectionSpy]]:
    settings = Settings(data_dir=tmp_path / "data", qdrant_url=None, catalog_shards=3, catalog_replicas=2,
                        world_shards=6, world_replicas=2)
    enc, spy = _remote(settings)
    try:
        yield enc, spy
    finally:
        enc.close()


def test_shards_and_replicas_of_both_tiers_reach_create_collection(clustered) -> None:
    _, spy = clustered
    assert set(spy.calls) == {"encore_catalog", "encore_world"}
    catalog, world = spy.calls["encore_catalog"], spy.calls["encore_world"]
    assert (catalog["shard_number"], catalog["replication_factor"]) == (3, 2)
    assert (world["shard_number"], world["replication_factor"]) == (6, 2)


def test_collections_created_for_a_cluster_still_identify_and_recommend(clustered) -> None:
    from indexers.pipeline import ingest_batches
    from indexers.sample import sample_batches

    enc, _ = clustered
    y = synth_track(41, seconds=30, sr=SR)
    added = enc.add_catalog_audio(y, meta=TrackMeta(title="Sharded", artist="Cluster", album=None), sr=SR)
    clip = y[10 * SR : 18 * SR]
    result = enc.identify_audio(clip, sr=SR, similar=False)
    assert result.match is not None and result.match.track_id == added.track_id
    assert abs(result.match.offset_s - 10.0) < 0.3

    batches = sample_batches(120, seed=3, head=enc.tag_head, space=enc.encoder.description.name)
    assert ingest_batches(enc, batches, total=120, source="sample", progress=False).added == 120
    some = enc.search("chill", limit=5).results
    assert some, "a world created with shards and replicas answers queries"
    similar = enc.similar_tracks(some[0].track_id, limit=5)
    assert len(similar) == 5 and some[0].track_id not in {t.track_id for t in similar}


def test_unset_cluster_settings_leave_the_server_defaults(tmp_path: Path) -> None:
    enc, spy = _remote(Settings(data_dir=tmp_path / "data", qdrant_url=None))
    enc.close()
    for name in ("encore_catalog", "encore_world"):
        assert spy.calls[name]["shard_number"] is None
        assert spy.calls[name]["replication_factor"] is None


def test_cluster_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"CATALOG_SHARDS": "3", "CATALOG_REPLICAS": "2", "WORLD_SHARDS": "6",
                        "WORLD_REPLICAS": "2"}.items():
        monkeypatch.setenv(f"ENCORE_{name}", value)
    s = Settings()
    assert (s.catalog_shards, s.catalog_replicas, s.world_shards, s.world_replicas) == (3, 2, 6, 2)
    monkeypatch.setenv("ENCORE_CATALOG_REPLICAS", "0")
    with pytest.raises(ValidationError, match="catalog_replicas"):
        Settings()


def test_the_embedded_store_accepts_cluster_settings(tmp_path: Path) -> None:
    # One process has no shards: the same environment must still open an embedded store.
    settings = Settings(data_dir=tmp_path / "data", qdrant_url=None, catalog_shards=3, catalog_replicas=2,
                        world_shards=6, world_replicas=2)
    with Encore.open(settings) as enc:
        y = synth_track(42, seconds=20, sr=SR)
        added = enc.add_catalog_audio(y, meta=TrackMeta(title="Embedded", artist=None, album=None), sr=SR)
        match = enc.identify_audio(np.ascontiguousarray(y[4 * SR : 12 * SR]), sr=SR, similar=False).match
        assert match is not None and match.track_id == added.track_id
