"""Snapshot archives: their manifest, and what ``encore snapshot create|restore --json`` print."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

#: Name and version of the archive format (``manifest.json``); a reader refuses other versions.
SNAPSHOT_FORMAT = "encore-snapshot"
SNAPSHOT_FORMAT_VERSION = 1

Tier = Literal["catalog", "world"]


class SnapshotTier(BaseModel):
    """One collection in a snapshot: its definition, its counts and its points file."""

    collection: str = Field(description="The collection's name where the snapshot was taken.")
    schema_version: int
    fingerprint: dict[str, Any] = Field(
        description="The collection definition the points were written with (CollectionSpec.fingerprint()): "
                    "schema version, vectors, parameters. A restore refuses a build whose definition differs.")
    payload_indexes: dict[str, str]
    points: int = Field(ge=0, description="Points in the points file.")
    tracks: int = Field(ge=0, description="Tracks: catalog tracks (several points each), or world points.")
    skipped_tracks: int = Field(
        default=0, ge=0, description="Catalog tracks left out because they were incomplete when read (on a shared "
                                     "server, an add or removal in progress; else storage damage).")
    file: str = Field(description="The points file in the archive: gzip'd JSON lines.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0, description="Size of the points file.")


class SnapshotManifest(BaseModel):
    """``manifest.json``: what an archive holds and how to check it."""

    format: Literal["encore-snapshot"]
    format_version: int
    encore_version: str
    created: datetime
    backend: str = Field(description="Where it was taken: edge (embedded) or remote (a Qdrant server).")
    tiers: dict[Tier, SnapshotTier]


class TierCounts(BaseModel):
    tracks: int
    points: int


class SnapshotCreated(BaseModel):
    """``encore snapshot create --json``."""

    path: str = Field(description="The archive written.")
    bytes: int
    took_s: float
    manifest: SnapshotManifest


class SnapshotRestored(BaseModel):
    """``encore snapshot restore --json``."""

    path: str
    backend: str = Field(description="Where it was restored: edge (embedded) or remote (a Qdrant server).")
    replaced: bool = Field(description="Whether stored data was replaced (--force).")
    tiers: dict[Tier, TierCounts]
    took_s: float
