"""The Encore facade: the one object the HTTP app, the CLI, benchmarks and notebooks talk to.

It owns the store and the tiers, and turns files into answers (``schemas.api`` models). Build it
with :meth:`Encore.open`; nothing here runs at import time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from encore import __version__
from encore.catalog import Catalog, TrackMeta
from encore.config import Settings
from encore.storage import VectorStore, open_store
from indexers.decode import load_audio, validate
from schemas.api import IdentifyResult, MatchPublic, StatsPublic, TierStats, TrackCreated

#: Identify clips shorter than this are refused: there is too little to tell tracks apart.
MIN_CLIP_SECONDS = 1.0


class Encore:
    """Catalog (and, later, world) tiers over one vector store."""

    def __init__(self, store: VectorStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.catalog = Catalog(store, prefix=settings.collection_prefix).open()

    @classmethod
    def open(cls, settings: Settings) -> Encore:
        store = open_store(settings)
        try:
            return cls(store, settings)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Encore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sr(self) -> int:
        """Sample rate the catalog fingerprints at: give ``*_audio`` methods audio at this rate."""
        return self.catalog.sr

    # --- catalog ----------------------------------------------------------------------

    def add_catalog_audio(self, y: np.ndarray, *, meta: TrackMeta) -> TrackCreated:
        y = validate(y, sr=self.sr, min_seconds=MIN_CLIP_SECONDS, name=meta.title)
        out = self.catalog.add(y, meta=meta)
        return TrackCreated(track_id=out.track_id, status="added" if out.added else "exists",
                            title=out.title, artist=out.artist, album=out.album, duration_s=out.duration_s)

    def add_catalog_file(self, path: str | Path, *, meta: TrackMeta) -> TrackCreated:
        y, _ = load_audio(path, sr=self.sr, min_seconds=MIN_CLIP_SECONDS,
                          max_seconds=self.settings.max_audio_seconds)
        return self.add_catalog_audio(y, meta=meta)

    def remove_catalog_track(self, track_id: str) -> None:
        self.catalog.remove(track_id)

    # --- identify ---------------------------------------------------------------------

    def identify_audio(self, y: np.ndarray) -> IdentifyResult:
        start = time.perf_counter()
        y = validate(y, sr=self.sr, min_seconds=MIN_CLIP_SECONDS, name="clip")
        y = y[: int(self.settings.max_query_seconds * self.sr)]
        m = self.catalog.identify(y)
        match = None if m is None else MatchPublic(
            track_id=m.track_id, title=m.title, artist=m.artist, album=m.album, confidence=m.confidence,
            offset_s=m.offset_s, speed=m.speed, aligned_hashes=m.aligned, decided_by="landmarks",
        )
        return IdentifyResult(match=match, similar=[], took_ms=round((time.perf_counter() - start) * 1e3, 2))

    def identify_file(self, path: str | Path) -> IdentifyResult:
        start = time.perf_counter()
        y, _ = load_audio(path, sr=self.sr, min_seconds=MIN_CLIP_SECONDS,
                          max_seconds=self.settings.max_audio_seconds,
                          truncate_to=self.settings.max_query_seconds)
        result = self.identify_audio(y)
        return result.model_copy(update={"took_ms": round((time.perf_counter() - start) * 1e3, 2)})

    # --- stats ------------------------------------------------------------------------

    def stats(self) -> StatsPublic:
        return StatsPublic(
            catalog=TierStats(tracks=self.catalog.count_tracks(), points=self.catalog.count_points()),
            world=None,
            storage={"backend": self.store.backend, "url": self.settings.qdrant_url,
                     "path": None if self.settings.qdrant_url else str(self.settings.storage_dir),
                     "bytes": self.store.disk_bytes()},
            encoders={"fingerprint": "landmarks-v1 (log-frequency peak pairs, 8 kHz, 100-3400 Hz) + band-envelope verification"},
            version=__version__,
        )
