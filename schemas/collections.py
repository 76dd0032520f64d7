"""Collection definitions, declared once. Vector sizes come from encoder and fingerprint metadata.

A spec carries a schema version and the parameters that shaped its vectors; the store records
them at creation and refuses to open a collection written with others (``fingerprint()``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

PayloadKind = Literal["keyword", "integer", "float", "bool"]


@dataclass(frozen=True)
class HnswSpec:
    """How a dense vector's HNSW graph is built. None fields keep the engine's defaults.

    ``payload_m`` adds graph links within each value of the indexed payload fields, so that a
    filtered search stays connected when the filter keeps a small part of the collection (the
    plain graph falls apart under selective filters at scale: measure it, see bench/discovery.py).
    """

    m: int | None = None
    ef_construct: int | None = None
    payload_m: int | None = None
    full_scan_threshold_kb: int | None = None


@dataclass(frozen=True)
class DenseVectorSpec:
    dim: int
    distance: Literal["cosine", "dot", "euclid"] = "cosine"
    hnsw: HnswSpec | None = None
    quantization: Literal["int8"] | None = None
    """Scalar quantization: vectors kept as int8 in RAM for search (4x smaller), rescored."""
    on_disk: bool = False
    """Keep the original vectors on disk (memory-mapped) rather than in RAM."""


@dataclass(frozen=True)
class SparseVectorSpec:
    idf: bool = False


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    schema_version: int
    dense: dict[str, DenseVectorSpec] = field(default_factory=dict)
    sparse: dict[str, SparseVectorSpec] = field(default_factory=dict)
    payload_indexes: dict[str, PayloadKind] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """Parameters the stored vectors depend on (fingerprint settings, encoder names)."""
    shard_number: int | None = None
    """Shards on a Qdrant cluster (None: the server's default). Applied at creation; not part of
    the fingerprint, since the same points answer the same questions however they are spread."""
    replication_factor: int | None = None
    """Copies of each shard on a cluster (None: the server's default)."""
    payload_links: tuple[str, ...] | None = None
    """Indexed payload fields whose values get their own HNSW links (``HnswSpec.payload_m``);
    the other indexes are built without (``enable_hnsw: false``). None: every indexed field, the
    engine's default. Each linked field costs about one more graph build per vector space once its
    values hold more points than ``full_scan_threshold_kb`` covers: at 1M tracks, links on all ten
    world fields (numeric ranges and multi-valued tags included) made the index build the largest
    part of an ingest (BENCHMARKS.md). Not part of the fingerprint: links change speed, not answers."""

    tenant_field: str | None = None
    """A keyword field by which the engine groups the stored points (Qdrant's ``is_tenant``), so
    that a search filtered to one of its values reads contiguous storage. At 1M sample tracks, an
    exact search under a genre filter (16% of the tracks) took 8.4 ms grouped by genre against 18 ms
    not. Not part of the fingerprint: grouping changes speed, not answers."""

    principal_field: str | None = None
    """A numeric field by which the engine orders the stored points within each group of
    :attr:`tenant_field` (Qdrant's ``is_principal``), so that a search filtered to a range of it
    reads a few contiguous runs per group rather than points spread over the whole store. Not part
    of the fingerprint: ordering changes speed, not answers."""

    def links_payload(self, field_name: str) -> bool:
        """Whether the payload index of ``field_name`` gets HNSW links (:attr:`payload_links`)."""
        return self.payload_links is None or field_name in self.payload_links

    def fingerprint(self) -> dict[str, Any]:
        """What must match between this build and stored data, as a JSON-able dict."""
        body = {
            "schema_version": self.schema_version,
            "dense": {k: [v.dim, v.distance] for k, v in sorted(self.dense.items())},
            "sparse": {k: [v.idf] for k, v in sorted(self.sparse.items())},
            "params": self.params,
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        return {**body, "digest": digest, "index": self.index_config()}

    def index_config(self) -> dict[str, Any]:
        """How the vectors are indexed and held. Recorded with the schema but not part of it:
        an index built with other settings still answers the same questions."""
        return {
            name: {
                "hnsw": {k: v for k, v in vars(spec.hnsw).items() if v is not None} if spec.hnsw else {},
                "quantization": spec.quantization,
                "on_disk": spec.on_disk,
            }
            for name, spec in sorted(self.dense.items())
        }


CATALOG_SCHEMA_VERSION = 2


def catalog_collection(
    *,
    prefix: str,
    fingerprint_params: dict[str, Any],
    hash_space: int,
    embedding: tuple[str, int] | None = None,
    shard_number: int | None = None,
    replication_factor: int | None = None,
) -> CollectionSpec:
    """The catalog tier: one point per fixed-length segment of a catalog track.

    Vector ``landmarks`` is sparse, one dimension per landmark hash (< ``hash_space``), so
    Qdrant's inverted index finds candidate segments. The payload keeps the segment's hashes
    and their frame times (for offset verification) and the track's metadata.

    ``shard_number`` and ``replication_factor`` spread the collection over a Qdrant cluster
    (``ENCORE_CATALOG_SHARDS``, ``ENCORE_CATALOG_REPLICAS``); None keeps the server's defaults.
    """
    return CollectionSpec(
        name=f"{prefix}catalog",
        schema_version=CATALOG_SCHEMA_VERSION,
        sparse={"landmarks": SparseVectorSpec(idf=True)},
        # The second signal: one audio embedding per segment, (encoder name, dimension).
        dense={"embedding": DenseVectorSpec(dim=embedding[1], distance="cosine")} if embedding else {},
        payload_indexes={
            "track_id": "keyword",
            "segment": "integer",
            "artist": "keyword",
            "title": "keyword",
        },
        params={"fingerprint": fingerprint_params, "hash_space": hash_space,
                "embedding": embedding[0] if embedding else None},
        shard_number=shard_number,
        replication_factor=replication_factor,
    )


WORLD_SCHEMA_VERSION = 1

#: World payload fields whose values get their own graph links: none. Links for genre alone made
#: the 1M-track index build 57 min on one core (15 min without, int8) and still left a genre filter
#: at recall@10 0.41-0.78; grouping the points by genre (``tenant_field``) and scanning a genre's
#: int8 vectors answers it exactly (BENCHMARKS.md, "World tier"). Years and descriptor ranges cut
#: across any block the engine would link, and tags are multi-valued.
WORLD_PAYLOAD_LINKS: tuple[str, ...] = ()

#: The world's storage order within a genre (``CollectionSpec.principal_field``): the year, then
#: the energy decile (``encore.world.era_energy``). At 1M sample tracks a search under a decade
#: and an energy range read ~150k tracks spread over the store, 22.5 ms p50; ordered so, it reads
#: one run per genre and year, 6.6 ms (a genre and a decade: 29 -> 4.8 ms); asked as ranges of
#: this key (``encore.world.World.plan``), 1.7 ms. The graph is built in storage order: unfiltered
#: recall@10 0.90 -> 0.85 (BENCHMARKS.md, "The third 1M build").
WORLD_ORDER_FIELD = "era_energy"

#: Payload fields of the world tier with a Qdrant index: what discovery filters on, and the order key.
WORLD_PAYLOAD_INDEXES: dict[str, PayloadKind] = {
    "track_id": "keyword",
    "artist_key": "keyword",
    "artist": "keyword",
    "genre": "keyword",
    "year": "integer",
    "tempo": "float",
    "energy": "float",
    "danceability": "float",
    "tag_list": "keyword",
    "source": "keyword",
    WORLD_ORDER_FIELD: "integer",
}


def world_collection(
    *,
    prefix: str,
    vectors: dict[str, int],
    params: dict[str, Any],
    hnsw: HnswSpec | Callable[[int], HnswSpec] | None = None,
    quantization: Literal["int8"] | None = None,
    shard_number: int | None = None,
    replication_factor: int | None = None,
) -> CollectionSpec:
    """The world tier: one point per track, with one named dense vector per encoder space.

    ``vectors`` maps space names to dimensions, taken from the encoder descriptions (``musicnn``
    200, ``tags`` 50, ``msd_timbre`` 12, ``clap`` when configured). A track need not have every
    vector: an MSD import has ``msd_timbre`` and no audio embedding. Payload: title, artist,
    album, year, genre, tempo, energy, danceability, loudness, key, mode, ``tags`` (tag ->
    probability), ``tag_list`` (the tags the track clearly has, for filtering) and ``era_energy``
    (:data:`WORLD_ORDER_FIELD`, the storage order within a genre). ``hnsw`` is one graph setting
    for every space, or a function of the space's dimension.
    """
    return CollectionSpec(
        name=f"{prefix}world",
        schema_version=WORLD_SCHEMA_VERSION,
        dense={name: DenseVectorSpec(dim=dim, distance="cosine", hnsw=hnsw(dim) if callable(hnsw) else hnsw,
                                     quantization=quantization)
               for name, dim in sorted(vectors.items())},
        payload_indexes=dict(WORLD_PAYLOAD_INDEXES),
        payload_links=WORLD_PAYLOAD_LINKS,
        tenant_field="genre",
        principal_field=WORLD_ORDER_FIELD,
        params=params,
        shard_number=shard_number,
        replication_factor=replication_factor,
    )
