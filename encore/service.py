"""The Encore facade: the one object the HTTP app, the CLI, benchmarks and notebooks talk to.

It owns the store and the tiers, and turns files into answers (``schemas.api`` models). Build it
with :meth:`Encore.open`; nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from encore import __version__
from encore.analysis import AnalysisPool, ClipRecipe, embed_clip, fingerprint_clip, prepare_clip
from encore.catalog import SHARED_REPAIR_GRACE_S, Catalog, Repaired, TrackMeta, content_id
from encore.config import Settings
from encore.errors import BadAudio, EncoreError
from encore.jobs import JobManager
from encore.storage import VectorStore, open_store
from encore.world import TagSpace, World, WorldTrack, artist_key, world_id
from indexers.decode import Decoder, load_audio, pick_decoder, resample, validate
from indexers.fingerprint import Analysis
from schemas.api import (
    Filters,
    GenreNeighboursPublic,
    IdentifyResult,
    MatchPublic,
    Preferences,
    StatsPublic,
    TierStats,
    TrackCreated,
    TrackPublic,
)

if TYPE_CHECKING:
    from encore.encoders.clap import ClapEncoder
    from encore.encoders.musicnn import MusicnnEncoder
    from encore.search import Searcher
    from encore.speech import SpeechDomain, SpeechRecognizer
    from indexers.metadata import TrackInfo
    from schemas.search import SearchResult, VoiceSearchResult

log = logging.getLogger(__name__)

#: Identify clips shorter than this are refused: there is too little to tell tracks apart.
MIN_CLIP_SECONDS = 1.0
#: How many world neighbours an identify answer carries: of the matched track, or of an unknown clip.
SIMILAR_WHEN_MATCHED = 10
SIMILAR_WHEN_UNKNOWN = 20
#: Vector space of Million Song Dataset imports (mean Echo Nest timbre).
MSD_TIMBRE_DIM = 12


def build_encoder(settings: Settings) -> MusicnnEncoder:
    """The default audio encoder, as the settings configure it (weights load on first use)."""
    from encore.encoders.musicnn import MusicnnEncoder, MusicnnParams

    return MusicnnEncoder(checkpoint=settings.musicnn_checkpoint,
                          params=MusicnnParams(max_patches=settings.musicnn_max_patches))


def build_clap(settings: Settings) -> ClapEncoder | None:
    """The CLAP encoder when ``clap_weights`` is configured (an optional extra: torch, transformers)."""
    if settings.clap_weights is None:
        return None
    from encore.encoders.clap import ClapEncoder

    return ClapEncoder(settings.clap_weights, dim=settings.clap_dim)


class KeyedLocks:
    """One lock per key, kept only while in use.

    Adds are idempotent by content (check, then write): two requests adding the same audio at
    once would both find it missing and both answer "added". Holding the track id's lock across
    the check and the write makes the second one find the first one's track; different audio
    still goes in parallel.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._held.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if users[0] == 0:
                    del self._held[key]


class Encore:
    """The catalog and world tiers over one vector store, and the audio encoder they share."""

    def __init__(
        self, store: VectorStore, settings: Settings, *, encoder: MusicnnEncoder | None = None,
        open_collections: bool = True, analysis_workers: int | None = None,
    ) -> None:
        """``open_collections=False`` defines the tiers without creating or checking their
        collections (a restore compares a snapshot with this build's definitions first); call
        :meth:`open_collections` before using them.

        ``analysis_workers`` (default: ``settings.analysis_workers``, unset meaning 0) processes
        decode and analyse the clips of :meth:`identify_file` (:mod:`encore.analysis`); 0 keeps
        that in the calling thread. A facade given its own ``encoder`` always does: a worker
        rebuilds the encoder from the settings, and answers must not depend on where they ran."""
        self.store = store
        self.settings = settings
        workers = (settings.analysis_workers or 0) if analysis_workers is None else analysis_workers
        if workers and encoder is not None:
            log.warning("analysis_workers=%d ignored: a facade given its own encoder analyses clips in-process",
                        workers)
            workers = 0
        self.encoder = encoder or build_encoder(settings)
        desc = self.encoder.description
        self.catalog = Catalog(store, prefix=settings.collection_prefix,
                               embedding=(desc.name, desc.dim) if settings.catalog_embeddings else None,
                               shard_number=settings.catalog_shards,
                               replication_factor=settings.catalog_replicas)
        self.tag_head = self.encoder.tag_head()
        self.clap = build_clap(settings)
        desc = self.encoder.description
        vectors = {desc.name: desc.dim, "tags": len(self.tag_head.names), "msd_timbre": MSD_TIMBRE_DIM}
        if self.clap is not None:
            vectors["clap"] = self.clap.description.dim
        self.world = World(
            store,
            prefix=settings.collection_prefix,
            vectors=vectors,
            tag_space=TagSpace(self.tag_head.names, self.tag_head.reference()),
            encoder=desc.name,
            quantization=None if settings.world_quantization == "none" else settings.world_quantization,
            shard_number=settings.world_shards,
            replication_factor=settings.world_replicas,
        )
        self.repaired: Repaired | None = None
        if open_collections:
            self.open_collections()
        self._adding = KeyedLocks()
        # Background ingest (HTTP job routes, or Python): no thread starts before the first job.
        self.jobs = JobManager(self, workers=settings.max_jobs, max_queued=settings.max_queued_jobs,
                               keep=settings.jobs_kept)
        # No process starts here: the pool spawns its workers on warm_up() or the first clip.
        self.analysis = AnalysisPool(self.clip_recipe, workers=workers) if workers else None

    def open_collections(self) -> None:
        """Create or check both tiers' collections, then finish what a crash interrupted
        (:meth:`Catalog.repair`: no orphan catalog segments survive a restart)."""
        self.catalog.open()
        self.world.open()
        # The embedded store is locked to this process, so any marker is a dead writer's; on a
        # shared server a marker may be another process's add in progress, so only old ones go.
        grace = 0.0 if self.store.backend == "edge" else SHARED_REPAIR_GRACE_S
        self.repaired = self.catalog.repair(older_than_s=grace)
        if self.repaired.tracks:
            log.warning("finished %d catalog writes a crash interrupted (%d points of incomplete tracks removed); "
                        "an interrupted add needs its file added again", self.repaired.tracks, self.repaired.points)

    @classmethod
    def open(cls, settings: Settings, *, encoder: MusicnnEncoder | None = None,
             analysis_workers: int | None = None) -> Encore:
        store = open_store(settings)
        try:
            return cls(store, settings, encoder=encoder, analysis_workers=analysis_workers)
        except BaseException:
            store.close()
            raise

    def warm_up(self) -> None:
        """Load the models now (the server does this at start-up, not on the first request)."""
        self.encoder.load()
        self.searcher.mapper.encoder.load()  # type: ignore[union-attr]
        if self.clap is not None:
            self.clap.load()
        if self.analysis is not None:
            self.analysis.warm_up()

    @cached_property
    def searcher(self) -> Searcher:
        """Natural-language search over the world tier (the text encoder loads on first use)."""
        from encore.encoders.text import get_text_encoder
        from encore.search import Searcher
        from encore.text_tags import TagMapper

        options = {"path": self.settings.text_encoder_path} if self.settings.text_encoder != "wordllama" else {}
        text = get_text_encoder(self.settings.text_encoder, **options)
        return Searcher(self.world, mapper=TagMapper(text, self.tag_head.names),
                        text_tower=self.clap.embed_text if self.clap is not None else None)

    def search(self, text: str, *, limit: int = 20, filters: Filters | None = None) -> SearchResult:
        """Tracks for a natural-language query, with how it was understood."""
        return self.searcher.search(text, limit=limit, filters=filters)

    @cached_property
    def recognizer(self) -> SpeechRecognizer:
        """The voice-query recognizer (its model builds on first use)."""
        from encore.speech import SpeechParams, get_speech_recognizer

        params = SpeechParams(max_seconds=self.settings.voice_max_seconds)
        if self.settings.speech_recognizer == "whisper":
            if self.settings.whisper_checkpoint is None:
                raise EncoreError("ENCORE_SPEECH_RECOGNIZER=whisper needs ENCORE_WHISPER_CHECKPOINT (a local .pt file)")
            return get_speech_recognizer("whisper", checkpoint=self.settings.whisper_checkpoint, params=params)
        return get_speech_recognizer("pocketsphinx", params=params)

    def _speech_domain(self) -> SpeechDomain:
        """What voice queries can say: everything the query parser reads (its word lists and
        phrasings, the collection's genres) and the collection's best-represented artists."""
        from encore.speech import SpeechDomain

        vocab = self.searcher.vocabulary()
        return SpeechDomain.from_vocabulary(vocab, artists=vocab.artists[: self.settings.voice_domain_artists])

    def search_voice_audio(self, y: np.ndarray, *, sr: int, limit: int = 20) -> VoiceSearchResult:
        """Transcribe a spoken query and search with the transcript."""
        from schemas.search import VoiceSearchResult

        recognizer = self.recognizer
        rebuild = getattr(recognizer, "rebuild", None)
        if rebuild is not None:  # a domain language model: kept in step with the collection
            rebuild(self._speech_domain())
        heard = recognizer.transcribe(y, sr=sr)
        if not heard.heard:
            raise BadAudio("voice query: no speech recognised; speak a short query close to the microphone")
        result = self.search(heard.text, limit=limit)
        return VoiceSearchResult(transcript=heard.text, interpretation=result.interpretation, results=result.results)

    def search_voice_file(self, path: str | Path, *, limit: int = 20) -> VoiceSearchResult:
        y, _ = load_audio(path, sr=16000, min_seconds=0.3, max_seconds=self.settings.voice_max_seconds,
                          decoder=self.query_decoder)
        return self.search_voice_audio(y, sr=16000, limit=limit)

    def close(self) -> None:
        """Stop the jobs (between items, waiting for the current one) and the analysis workers
        (waiting for the clips they run), then close the store."""
        try:
            self.jobs.shutdown()
        finally:
            try:
                if self.analysis is not None:
                    self.analysis.close()
            finally:
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

    def add_catalog_audio(self, y: np.ndarray, *, meta: TrackMeta, sr: int | None = None) -> TrackCreated:
        """Fingerprint (and embed, per segment) audio sampled at ``sr`` (default :attr:`sr`)."""
        sr = sr or self.sr
        y = validate(y, sr=sr, min_seconds=MIN_CLIP_SECONDS, name=meta.title)
        enc_sr = self.encoder.description.sample_rate

        def embed_segments(bounds: list[tuple[float, float]]) -> np.ndarray:
            # One 3 s patch at the middle of each segment: the embedding a clip of it comes nearest.
            y16 = resample(y, orig_sr=sr, target_sr=enc_sr)
            patch = 3 * enc_sr
            patches = []
            for start, end in bounds:
                mid = int((start + end) / 2 * enc_sr)
                lo = max(0, min(mid - patch // 2, y16.size - patch))
                patches.append(y16[lo : lo + patch])
            return np.stack([e.vector for e in self.encoder.embed_batch(patches, sr=enc_sr)])

        y_fp = resample(y, orig_sr=sr, target_sr=self.sr)
        with self._adding.hold(content_id(y_fp)):
            out = self.catalog.add(y_fp, meta=meta, embed_segments=embed_segments)
        return TrackCreated(track_id=out.track_id, status="added" if out.added else "exists",
                            title=out.title, artist=out.artist, album=out.album, duration_s=out.duration_s)

    def add_catalog_file(self, path: str | Path, *, meta: TrackMeta) -> TrackCreated:
        # Decoded once, at the rate the embeddings need when the catalog stores them.
        sr = max(self.sr, self.encoder.description.sample_rate) if self.catalog.has_embeddings else self.sr
        y, _ = load_audio(path, sr=sr, min_seconds=MIN_CLIP_SECONDS, max_seconds=self.settings.max_audio_seconds)
        return self.add_catalog_audio(y, meta=meta, sr=sr)

    def remove_catalog_track(self, track_id: str) -> None:
        self.catalog.remove(track_id)

    # --- identify ---------------------------------------------------------------------

    @cached_property
    def query_decoder(self) -> Decoder:
        """How identify and voice clips are decoded (``settings.query_decoder``): ``pyav`` in this
        process or ``ffmpeg`` in a subprocess. Catalog and world adds always decode through the
        subprocess: catalog track ids are hashes of its samples."""
        return pick_decoder(self.settings.query_decoder)

    @cached_property
    def clip_recipe(self) -> ClipRecipe:
        """How :meth:`identify_file` decodes and analyses a clip, wherever it runs."""
        return ClipRecipe(
            fingerprint=self.catalog.params, encoder_sr=self.encoder.description.sample_rate,
            musicnn_checkpoint=self.settings.musicnn_checkpoint, musicnn_max_patches=self.settings.musicnn_max_patches,
            min_seconds=MIN_CLIP_SECONDS, max_audio_seconds=self.settings.max_audio_seconds,
            max_query_seconds=self.settings.max_query_seconds, decoder=self.query_decoder,
        )

    def identify_audio(self, y: np.ndarray, *, sr: int | None = None, similar: bool = True) -> IdentifyResult:
        """Identify a clip sampled at ``sr`` (default :attr:`sr`) against the catalog.

        With ``similar``, the answer also carries the world tracks nearest the clip: 10 when it
        matched (the matched track itself left out), 20 when it is unknown.
        """
        start = time.perf_counter()
        result = self._identify_clip(y, sr=sr or self.sr, similar=similar and self.world.count() > 0)
        return result.model_copy(update={"took_ms": round((time.perf_counter() - start) * 1e3, 2)})

    def _identify_clip(self, y: np.ndarray, *, sr: int, similar: bool) -> IdentifyResult:
        recipe = self.clip_recipe
        y = prepare_clip(y, sr=sr, min_seconds=recipe.min_seconds, max_query_seconds=recipe.max_query_seconds)
        # Embedded only when needed (no landmark match with catalog embeddings on, or world
        # neighbours not found through the matched track's twin), and then once.
        embedding = cache(lambda: embed_clip(y, sr=sr, encoder=self.encoder))
        return self._identify(fingerprint_clip(y, sr=sr, params=recipe.fingerprint), embedding, similar=similar)

    def _identify(self, query: Analysis, embedding: Callable[[], np.ndarray], *, similar: bool) -> IdentifyResult:
        """The answer for an analysed clip: the catalog's match, then (``similar``) world neighbours."""
        m = self.catalog.identify_analysis(query)
        if m is None and self.catalog.has_embeddings:  # the second, stricter signal
            m = self.catalog.identify_embedding(embedding())
        match = None if m is None else MatchPublic(
            track_id=m.track_id, title=m.title, artist=m.artist, album=m.album, confidence=m.confidence,
            offset_s=m.offset_s, speed=m.speed, aligned_hashes=m.aligned,
            decided_by="embedding" if m.decided_by == "embedding" else "landmarks",
        )
        near = self._similar_to_clip(match=match, embedding=embedding) if similar else []
        return IdentifyResult(match=match, similar=near, took_ms=0.0)

    def _similar_to_clip(self, *, match: MatchPublic | None, embedding: Callable[[], np.ndarray]) -> list[TrackPublic]:
        limit = SIMILAR_WHEN_MATCHED if match is not None else SIMILAR_WHEN_UNKNOWN
        twin = self.world.find(title=match.title, artist=match.artist) if match is not None else None
        if twin is not None:  # the matched track is in the world tier too: its own neighbours, whole-track
            return self.world.similar_to_track(twin, limit=limit)
        hits = self.world.search(embedding(), using=self.encoder.description.name, limit=limit + 1)
        if match is not None:  # the matched recording may be in the world tier too: not its own neighbour
            same = (match.title or "").casefold(), artist_key(match.artist or "")
            hits = [h for h in hits if ((h.title or "").casefold(), artist_key(h.artist or "")) != same]
        return hits[:limit]

    def identify_file(self, path: str | Path, *, similar: bool = True) -> IdentifyResult:
        """:meth:`identify_audio` for an audio file: decoded and analysed in a worker process when
        the facade has an analysis pool, in this thread otherwise (the same answer either way)."""
        start = time.perf_counter()
        similar = similar and self.world.count() > 0
        # Only a clip that will be embedded (for world neighbours or the catalog's second signal)
        # needs the encoder's rate; a catalog-only service decodes straight at the catalog's.
        embed = similar or self.catalog.has_embeddings
        if self.analysis is not None:
            # A worker can't ask whether the embedding will be needed: it computes it whenever it may be.
            clip = self.analysis.analyze_file(path, embed=embed)
            result = self._identify(clip.analysis, _computed(clip.embedding), similar=similar)
        else:
            recipe = self.clip_recipe
            # Decoded once, at the rate of whichever stage needs more; the catalog gets a resampled copy.
            sr = recipe.decode_sr(embed=embed)
            y, _ = load_audio(path, sr=sr, min_seconds=recipe.min_seconds, max_seconds=recipe.max_audio_seconds,
                              truncate_to=recipe.max_query_seconds, decoder=recipe.decoder)
            result = self._identify_clip(y, sr=sr, similar=similar)
        return result.model_copy(update={"took_ms": round((time.perf_counter() - start) * 1e3, 2)})

    # --- world ------------------------------------------------------------------------

    def add_world_audio(self, y: np.ndarray, *, sr: int, info: TrackInfo) -> TrackCreated:
        """Embed, tag and describe a track and add it to the world tier (idempotent by audio content)."""
        from indexers.describe import describe

        enc = self.encoder.description
        y = validate(resample(y, orig_sr=sr, target_sr=enc.sample_rate), sr=enc.sample_rate,
                     min_seconds=MIN_CLIP_SECONDS, name=info.title or "audio")
        pcm = np.clip(np.rint(y * 32767.0), -32768, 32767).astype("<i2")
        track_id = world_id("audio", hashlib.sha1(pcm.tobytes()).hexdigest())
        created = TrackCreated(track_id=track_id, title=info.title, artist=info.artist, album=info.album,
                               duration_s=round(y.size / enc.sample_rate, 3))
        with self._adding.hold(track_id):
            if not self.world.missing([track_id]):
                return created.model_copy(update={"status": "exists"})
            emb = self.encoder.embed(y, sr=enc.sample_rate)
            d = describe(y, sr=enc.sample_rate)
            tags = dict(zip(self.tag_head.names, (float(p) for p in emb.tags), strict=True)) if emb.tags is not None else None
            vectors = {enc.name: emb.vector}
            if emb.tags is not None:
                vectors["tags"] = self.world.tag_space.vector(emb.tags)
            if self.clap is not None:
                vectors["clap"] = self.clap.embed(y, sr=enc.sample_rate).vector
            self.world.upsert([WorldTrack(
                track_id=track_id, source="audio", title=info.title, artist=info.artist, album=info.album,
                year=info.year, genre=info.genre, tempo=d.tempo, energy=d.energy, danceability=d.danceability,
                loudness=d.loudness, key=d.key, mode=d.mode, duration_s=created.duration_s, tags=tags, vectors=vectors,
            )])
        return created

    def add_world_file(self, path: str | Path, *, info: TrackInfo) -> TrackCreated:
        sr = self.encoder.description.sample_rate
        y, _ = load_audio(path, sr=sr, min_seconds=MIN_CLIP_SECONDS, max_seconds=self.settings.max_audio_seconds)
        return self.add_world_audio(y, sr=sr, info=info)

    def add_world_tracks(self, tracks: Sequence[WorldTrack], *, skip_existing: bool = True) -> int:
        """Store ready-made tracks (sample, MSD import); returns how many were new."""
        todo = list(tracks)
        if skip_existing:
            missing = set(self.world.missing([t.track_id for t in todo]))
            todo = [t for t in todo if t.track_id in missing]
        self.world.upsert(todo)
        return len(todo)

    def world_track(self, track_id: str) -> TrackPublic:
        return self.world.get(track_id)

    def similar_tracks(
        self, track_id: str, *, filters: Filters | None = None, limit: int = 10, prefer: Preferences | None = None
    ) -> list[TrackPublic]:
        return self.world.similar_to_track(track_id, filters=filters, limit=limit, prefer=prefer)

    def artist_radio(
        self, artist: str, *, filters: Filters | None = None, limit: int = 20, prefer: Preferences | None = None
    ) -> list[TrackPublic]:
        return self.world.artist_radio(artist, filters=filters, limit=limit, prefer=prefer)

    def mood_playlist(
        self,
        tags: dict[str, float],
        *,
        filters: Filters | None = None,
        limit: int = 20,
        prefer: Preferences | None = None,
    ) -> list[TrackPublic]:
        return self.world.by_tags(tags, filters=filters, limit=limit, prefer=prefer)

    def genre_neighbours(self, genre: str, *, limit: int = 5) -> GenreNeighboursPublic:
        from indexers.sample import load_genres

        vocabulary: Iterable[str] = load_genres().names
        return GenreNeighboursPublic(genre=genre, neighbours=self.world.genre_neighbours(
            genre, genres=vocabulary, limit=limit))

    # --- stats ------------------------------------------------------------------------

    def stats(self) -> StatsPublic:
        return StatsPublic(
            catalog=TierStats(tracks=self.catalog.count_tracks(), points=self.catalog.count_points()),
            world=TierStats(tracks=self.world.count(), points=self.world.count()),
            storage={"backend": self.store.backend, "url": _without_credentials(self.settings.qdrant_url),
                     "path": None if self.settings.qdrant_url else str(self.settings.storage_dir),
                     "bytes": self.store.disk_bytes()},
            encoders={
                "fingerprint": "landmarks-v1 (log-frequency peak pairs, 8 kHz, 100-3400 Hz) + band-envelope verification",
                "audio": f"{self.encoder.description.name} ({self.encoder.description.dim}-d, "
                         f"{len(self.tag_head.names)} tags; {'loaded' if self.encoder.loaded else 'not loaded yet'})",
            },
            version=__version__,
            versions=_component_versions(self.store.backend),
        )


def _computed(vector: np.ndarray | None) -> Callable[[], np.ndarray]:
    """A clip embedding a worker computed, in the shape :meth:`Encore._identify` asks for it."""

    def get() -> np.ndarray:
        if vector is None:  # identify_file asks for the embedding whenever the answer can need it
            raise RuntimeError("the clip was analysed without its embedding")
        return vector

    return get


def _without_credentials(url: str | None) -> str | None:
    """``url`` with any ``user:password@`` taken out: stats are public, and land in bug reports."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _component_versions(backend: str) -> dict[str, str]:
    """Installed versions of the parts an answer depends on (for bug reports and ``encore stats``)."""
    import platform
    from importlib import metadata

    packages = ["qdrant-edge-py" if backend == "edge" else "qdrant-client", "numpy", "fastapi"]
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
