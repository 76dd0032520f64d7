"""The world tier: a large collection to discover music in, one point per track.

Each track has one named dense vector per encoder space (``musicnn``: the CNN's 200-d
penultimate embedding; ``tags``: its 50 tag probabilities, centred on a typical track;
``msd_timbre`` for Million Song Dataset imports; ``clap`` when configured) and a payload with
its metadata and descriptors (``schemas.collections.world_collection``). Discovery is nearest
neighbours in one space under payload filters, applied inside the engine:

* :meth:`World.similar_to_track` and :meth:`World.search`: sounds-like, with filters (era, genre,
  tempo, energy, danceability, tags, artist in or out);
* :meth:`World.artist_radio`: neighbours of an artist's centroid, that artist excluded, at most a
  few tracks per other artist so the radio stays diverse;
* :meth:`World.by_tags`: mood playlists, a weighted tag profile searched in the ``tags`` space
  plus descriptor ranges, its nearest tracks re-ranked by how strongly they carry the wanted tags
  (:meth:`World.tag_boosts`);
* :meth:`World.genre_neighbours`: the genres whose centroids lie nearest a genre's.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from encore.errors import BadInput, NotFound, StorageError
from encore.storage.base import (
    Boost,
    Filter,
    FusedQuery,
    HasId,
    Hit,
    MatchValue,
    Point,
    QuerySpec,
    Range,
    Target,
    VectorStore,
)
from schemas.api import Filters, GenreNeighbour, Preferences, TrackPublic
from schemas.collections import WORLD_ORDER_FIELD, CollectionSpec, HnswSpec, world_collection

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("8d1e4c3a-2b7f-4f0a-b9d6-5a3c1e7f9b20")

#: Spaces a track's neighbours are searched in, best first: the first one the track has is used.
SPACE_PREFERENCE = ("clap", "musicnn", "msd_timbre")

#: The world tier's graph. No payload field gets graph links of its own
#: (``schemas.collections.WORLD_PAYLOAD_LINKS``); the points are grouped by genre instead.
WORLD_HNSW = HnswSpec(m=16, ef_construct=128)

#: A filter the planner estimates below this many tracks per segment is answered by a full scan
#: (of the int8 copies, rescored, with the default quantization) rather than the graph. At 1M
#: sample tracks (int8, grouped by genre) a genre filter keeping 16% was answered in 3.6 ms p50 /
#: 3.8 ms p95 at recall@10 1.0, where the graph gave 0.41-0.64; without links, a graph search
#: under a decade and an energy range (4.7%) found 0.14-0.18 of the true top 10 (BENCHMARKS.md).
WORLD_FULL_SCAN_TRACKS = 192_000


def world_hnsw(dim: int) -> HnswSpec:
    """The graph settings of a world vector space of ``dim`` dimensions: the full-scan threshold,
    which the engine counts in float32 kilobytes, set to :data:`WORLD_FULL_SCAN_TRACKS`."""
    return replace(WORLD_HNSW, full_scan_threshold_kb=WORLD_FULL_SCAN_TRACKS * dim * 4 // 1024)


PAYLOAD_FIELDS = ("track_id", "title", "artist", "album", "year", "genre", "tempo", "energy", "danceability",
                   "tags")


@dataclass(frozen=True, slots=True)
class WorldParams:
    """How the world tier stores tags and shapes discovery answers."""

    tag_threshold: float = 0.25
    """A tag joins a track's ``tag_list`` (what the ``tags`` filter matches) from this probability."""
    max_tag_list: int = 8
    payload_tags: int = 10
    """The most probable tags kept (with their probabilities) in a track's payload for display."""
    radio_per_artist: int = 2
    """An artist radio plays at most this many tracks of any one artist."""
    overfetch: int = 6
    """Radio and de-duplication fetch ``limit * overfetch`` neighbours to choose from."""
    centroid_tracks: int = 256
    """Tracks averaged into an artist's or genre's centroid."""
    hnsw_ef: int | None = 512
    """Graph search width of approximate searches (None: the engine's default, 100 or limit). At
    1M sample tracks (int8, grouped by genre) unfiltered recall@10 was 0.84 at 128 (0.54 ms p50) and
    0.90 at 512 (1.25 ms p50, 1.83 ms p95); with each genre ordered by year and energy as well, 0.85 at
    512 (1.67 / 3.41 ms) and 0.86 at 2048 (4.3 / 5.4 ms). Worlds under
    :data:`WORLD_FULL_SCAN_TRACKS` per segment are scanned."""
    filtered_hnsw_ef: int | None = 512
    """Graph search width under a filter that keeps more than :data:`WORLD_FULL_SCAN_TRACKS` per
    segment (narrower filters are scanned)."""
    acorn: bool = False
    """Let filtered searches step over filtered-out points (ACORN, :class:`~encore.storage.QuerySpec`).
    Off: at 250k sample tracks it left recall under a genre filter unchanged (0.62 at ef 128, 0.76
    at 256) and doubled filtered latency at ef 256 (BENCHMARKS.md, "World tier")."""
    oversampling: float | None = 2.0
    """With int8 vectors (``ENCORE_WORLD_QUANTIZATION``, the default): the points ranked by their
    int8 copies for each answer, as a multiple of its length, then rescored with the original
    vectors. With the engine's default instead, a scan of 200k sample tracks found 0.93-0.95 of the
    true top 10; at 2, 1.000."""
    target_weight: float = 0.3
    """Most a ``target_*`` preference adds to a similarity (cosine, at most 1)."""
    target_scales: tuple[tuple[str, float], ...] = (("energy", 0.15), ("danceability", 0.15), ("tempo", 12.0),
                                                    ("year", 6.0))
    """Distance from a target at which its boost is half."""
    tag_strength_weight: float = 0.3
    """What carrying the wanted tags adds to a tag search's score, per multiple of a typical track's
    probability (the weighted mean over the wanted tags of ``probability / reference``). The
    ``tags`` vector ranks by the direction of a track's tag deviation, not by how strongly it
    carries a tag. On 160 real tracks (bench/search_quality.py) the text search's median tag lift
    went from 1.61x to 1.81x on the queries it answered before (a perfect ranking: 1.78x-1.8x)."""
    tag_candidates: int = 1000
    """Nearest tracks (under the filters) a tag search re-ranks by tag strength."""
    era_cells: bool = True
    """Answer a filter on a year range and an energy bound through ranges of the storage-order key
    (:func:`era_cells`) when the tracks in those ranges are few enough to be scanned
    (:attr:`era_cell_tracks`). At 1M sample tracks "1980s and energy >= 0.7" went from 3.75 to
    1.68 ms p50 (6.70 to 2.89 ms p95) and, with a genre as well, from 4.09 to 2.97 ms (BENCHMARKS.md,
    "Era filters planned onto the storage order")."""
    era_cell_tracks: int = WORLD_FULL_SCAN_TRACKS
    """Most tracks the key ranges may hold for :attr:`era_cells` to be used: above it the engine
    searches the graph, where checking a dozen key ranges at every step costs more than two
    plain ranges (1950-2025 and energy >= 0.7, 362k tracks: 2.1 -> 5.4 ms)."""
    era_cell_cost: int = 200
    """A key range costs the engine about as much as checking this many tracks: the ranges are used
    only when they spare the scan more than that per range (the tracks of the years that fall
    outside the energy bound). On 5 000 sample tracks, not yet in storage order, 30 ranges took
    0.1 ms longer than the plain ranges."""
    era_cell_check: float = 3.0
    """When an energy bound stays beside the key ranges (one off a decile edge, or an upper
    bound), the engine checks it and the ranges on every track in them: each such track then
    counts as this many more tracks the ranges must spare. At 100k sample tracks, 1960-1989 with
    energy >= 0.75 took 0.89 ms through the ranges against 0.76 ms without; at 1M, 4.6 against
    6.1 ms (BENCHMARKS.md)."""
    genre_probe: bool = True
    """Make a graph search without a filter (or with exclusions only) exact within its nearest
    track's genre: the same search is run again under that genre, which the engine scans (each
    genre is stored together), and the two answers are merged by score. The graph is built in
    storage order and at 1M sample tracks found 0.85 of the true top 10, some queries none of them
    at any width; there every true neighbour shares the query's genre, and the probe finds them
    all (BENCHMARKS.md, "The genre probe"). Neighbours in other genres still come from the graph.
    Only on worlds of more than :attr:`probe_from` tracks: smaller ones are scanned whole."""
    probe_from: int = WORLD_FULL_SCAN_TRACKS
    """Tracks from which the engine searches the world's graph rather than scanning it (the
    full-scan threshold), and :attr:`genre_probe` is used."""
    probe_tracks: int = WORLD_FULL_SCAN_TRACKS
    """Most tracks the nearest genre may hold for :attr:`genre_probe`: a larger one the engine
    would search by graph too, not scan (a world of many millions, before it is sharded)."""
    stats_seconds: float = 30.0
    """How long the track counts that :attr:`era_cell_tracks` and :attr:`probe_from` are checked
    against are reused (writes through this :class:`World` refresh them at once)."""

    def search_ef(self, filtered: bool) -> int | None:
        """The graph search width of a search with or without a filter."""
        return self.filtered_hnsw_ef if filtered else self.hnsw_ef

    def search_params(self, filtered: bool) -> dict[str, Any]:
        """The :class:`~encore.storage.QuerySpec` search parameters of a world search."""
        return {"hnsw_ef": self.search_ef(filtered), "acorn": self.acorn, "oversampling": self.oversampling}


@dataclass(frozen=True, slots=True)
class TagSpace:
    """The tag vocabulary of the default encoder and a typical track's tag probabilities.

    The ``tags`` vector stores ``probabilities - reference``: probabilities are all positive and
    dominated by common tags (rock, pop), so their cosine tells tracks apart poorly; centred on a
    typical track, a vector points towards the tags that make the track what it is, and a query
    profile (positive weights for wanted tags) finds the tracks leaning most towards them.
    """

    names: tuple[str, ...]
    reference: np.ndarray

    def index(self, name: str) -> int:
        lookup = {n.casefold(): i for i, n in enumerate(self.names)}
        try:
            return lookup[name.casefold()]
        except KeyError:
            raise BadInput(f"unknown tag {name!r}; known tags: {', '.join(self.names)}") from None

    def vector(self, probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(probabilities, dtype=np.float32) - self.reference.astype(np.float32)

    def profile(self, weights: dict[str, float]) -> np.ndarray:
        """A query vector in the ``tags`` space from tag weights (negative: away from that tag)."""
        q = np.zeros(len(self.names), dtype=np.float32)
        for name, weight in weights.items():
            q[self.index(name)] += float(weight)
        if not np.any(q):
            raise BadInput("a tag profile needs at least one tag with a non-zero weight")
        return q


@dataclass(frozen=True, slots=True)
class WorldTrack:
    """One track to store in the world tier, from audio, the sample generator or an MSD import."""

    track_id: str
    source: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    year: int | None = None
    genre: str | None = None
    tempo: float | None = None
    energy: float | None = None
    danceability: float | None = None
    loudness: float | None = None
    key: str | None = None
    mode: str | None = None
    duration_s: float | None = None
    tags: dict[str, float] | None = None
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def world_id(source: str, key: str) -> str:
    """A deterministic track id: re-adding the same source item is an upsert, never a duplicate."""
    return str(uuid.uuid5(_NAMESPACE, f"{source}:{key}"))


def artist_key(name: str) -> str:
    """How artist names are compared: case, accents, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or name
    return re.sub(r"[^0-9a-z]+", " ", text.casefold()).strip() or name.casefold().strip()


def genre_key(name: str) -> str:
    return " ".join(name.casefold().split())


def _decile(energy: float) -> int:
    """The energy decile of the storage-order key, 0-9; :func:`era_cells` relies on this being the
    one arithmetic both the key and its ranges use."""
    return min(9, max(0, math.floor(float(energy) * 10)))


def era_energy(year: int | None, energy: float | None) -> int | None:
    """The key the world's storage is ordered by within a genre (``WORLD_ORDER_FIELD``): the year,
    then the energy decile, ``year * 10 + min(9, floor(energy * 10))``. A track without an energy
    takes decile 0; one without a year has no key (the engine puts it first in its genre).

    >>> era_energy(1984, 0.72), era_energy(1984, 1.0), era_energy(1984, None), era_energy(None, 0.5)
    (19847, 19849, 19840, None)
    """
    if year is None:
        return None
    return int(year) * 10 + (0 if energy is None else _decile(energy))


def era_cells(flt: Filter | None) -> tuple[Filter, tuple[tuple[int, int], ...]] | None:
    """``flt`` with its year range and energy bounds turned into ranges of the storage-order key
    (:func:`era_energy`, one range per year), and those ranges; None when ``flt`` has nothing
    to turn (no closed year range under a thousand years, no energy bound that leaves out a
    decile, or a ``should`` already).

    Same points, cheaper for the engine: within a genre the store is ordered by this key, so
    each range is one run of points, while a year range and an energy range make it read every
    track of those years and check its energy. The year range is dropped (stored years are whole
    numbers, and a track without a year has no key). The energy range is dropped only when the
    key says the same: a lower bound on a decile (``energy_min`` 0.7: decile 7 and up; the key
    takes its decile with the same float arithmetic) and no upper bound. Any other energy bound
    is kept beside the ranges, which then only narrow the search. Use it only on a store whose
    every track with a year carries the key (:meth:`World.plan` checks).

    >>> flt, cells = era_cells(Filter(must=(Range("year", 1984, 1985), Range("energy", gte=0.7))))
    >>> flt.must, flt.should
    ((), (Range(key='era_energy', gte=19847, lte=19849), Range(key='era_energy', gte=19857, lte=19859)))
    >>> era_cells(Filter(must=(Range("year", 1980, 1989),))) is None  # no energy bound: nothing gained
    True
    """
    if flt is None or flt.should:
        return None
    years = [c for c in flt.must if isinstance(c, Range) and c.key == "year"]
    energies = [c for c in flt.must if isinstance(c, Range) and c.key == "energy"]
    if len(years) != 1 or len(energies) != 1 or years[0].gte is None or years[0].lte is None:
        return None
    first, last = math.ceil(years[0].gte), math.floor(years[0].lte)
    e_lo, e_hi = energies[0].gte, energies[0].lte
    lo = 0 if e_lo is None else _decile(e_lo)
    hi = 9 if e_hi is None else _decile(e_hi)
    if last < first or hi < lo or (lo == 0 and hi == 9) or last - first >= 1000:
        return None
    exact = e_hi is None and e_lo is not None and lo >= 1 and e_lo == lo / 10
    cells = tuple((year * 10 + lo, year * 10 + hi) for year in range(first, last + 1))
    must = tuple(c for c in flt.must if c is not years[0] and not (exact and c is energies[0]))
    should = tuple(Range(WORLD_ORDER_FIELD, gte=a, lte=b) for a, b in cells)
    return Filter(must=must, must_not=flt.must_not, should=should), cells


def to_filter(filters: Filters | None, *, exclude_ids: Sequence[str] = ()) -> Filter | None:
    """The engine filter for the contract's ``Filters`` (ranges inclusive, tags all required)."""
    must: list = []
    must_not: list = []
    if filters is not None:
        if filters.genre:
            must.append(MatchValue("genre", genre_key(filters.genre)))
        if filters.artist:
            must.append(MatchValue("artist_key", artist_key(filters.artist)))
        if filters.exclude_artist:
            must_not.append(MatchValue("artist_key", artist_key(filters.exclude_artist)))
        for name in ("year", "tempo", "energy", "danceability"):
            lo, hi = getattr(filters, f"{name}_min"), getattr(filters, f"{name}_max")
            if lo is not None and hi is not None and lo > hi:
                raise BadInput(f"{name}_min ({lo}) is above {name}_max ({hi})")
            if lo is not None or hi is not None:
                must.append(Range(name, gte=lo, lte=hi))
        must.extend(MatchValue("tag_list", tag.casefold()) for tag in filters.tags)
    if exclude_ids:
        must_not.append(HasId(tuple(exclude_ids)))
    if not must and not must_not:
        return None
    return Filter(must=tuple(must), must_not=tuple(must_not))


@dataclass(frozen=True, slots=True)
class _Stats:
    """What :meth:`World.plan` and the genre probe decide by, as of ``when`` (``time.monotonic``):
    the payload index's counts (``facet(exact=False)``, about 0.2 ms at 1M)."""

    when: float
    tracks: int
    keys: Mapping[int, int] | None
    """Tracks per storage-order key; None when some tracks with a year lack the key."""
    genres: Mapping[str, int]


def _exactly(spec: QuerySpec) -> QuerySpec:
    """``spec`` as an exact search: every point passing its filter compared, no graph."""
    return replace(spec, exact=True, hnsw_ef=None, acorn=False)


def to_public(payload: dict, *, score: float | None = None) -> TrackPublic:
    tags = payload.get("tags")
    return TrackPublic(
        track_id=payload["track_id"],
        title=payload.get("title"),
        artist=payload.get("artist"),
        album=payload.get("album"),
        year=payload.get("year"),
        genre=payload.get("genre"),
        tempo=payload.get("tempo"),
        energy=payload.get("energy"),
        danceability=payload.get("danceability"),
        tags={k: round(float(v), 4) for k, v in tags.items()} if tags else None,
        similarity=None if score is None else round(float(score), 4),
    )


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm == 0.0 or not np.isfinite(norm):
        raise BadInput("cannot search with an all-zero vector")
    return v / norm


class World:
    """Store and discover tracks in a :class:`~encore.storage.VectorStore`."""

    def __init__(
        self,
        store: VectorStore,
        *,
        prefix: str,
        vectors: dict[str, int],
        tag_space: TagSpace,
        encoder: str,
        params: WorldParams | None = None,
        hnsw: HnswSpec | None = None,
        quantization: Literal["int8"] | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ) -> None:
        self.store = store
        self.params = params or WorldParams()
        self.tag_space = tag_space
        self.spec: CollectionSpec = world_collection(
            prefix=prefix,
            vectors=vectors,
            params={"encoder": encoder, "tags": list(tag_space.names)},
            hnsw=hnsw if hnsw is not None else world_hnsw,
            quantization=quantization,
            shard_number=shard_number,
            replication_factor=replication_factor,
        )
        self.name = self.spec.name
        self._stats: _Stats | None = None
        self._stats_lock = threading.Lock()

    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(self.spec.dense)

    def open(self) -> World:
        self.store.ensure_collection(self.spec)
        return self

    # --- writing ----------------------------------------------------------------------

    def payload(self, track: WorldTrack) -> dict:
        """The stored payload of a track (what filters match and answers show)."""
        tags = track.tags or {}
        ranked = sorted(tags.items(), key=lambda item: -item[1])
        listed = [t for t, p in ranked if p >= self.params.tag_threshold]
        energy = None if track.energy is None else round(float(track.energy), 4)
        return {
            "track_id": track.track_id,
            "source": track.source,
            "title": track.title,
            "artist": track.artist,
            "artist_key": artist_key(track.artist) if track.artist else None,
            "album": track.album,
            "year": track.year,
            "genre": genre_key(track.genre) if track.genre else None,
            "tempo": None if track.tempo is None else round(float(track.tempo), 2),
            "energy": energy,
            WORLD_ORDER_FIELD: era_energy(track.year, energy),
            "danceability": None if track.danceability is None else round(float(track.danceability), 4),
            "loudness": None if track.loudness is None else round(float(track.loudness), 2),
            "key": track.key,
            "mode": track.mode,
            "duration_s": None if track.duration_s is None else round(float(track.duration_s), 3),
            "tags": {t: round(float(p), 4) for t, p in ranked[: self.params.payload_tags]} or None,
            # Every tag's probability, in tag-space order, compact (3 decimals): for analysis and
            # evaluation (the ``tags`` vector is stored unit-length, so it cannot give them back).
            "tag_probs": [round(float(tags.get(n, 0.0)), 3) for n in self.tag_space.names] if tags else None,
            "tag_list": [t.casefold() for t in listed[: self.params.max_tag_list]],
        }

    def upsert(self, tracks: Sequence[WorldTrack]) -> None:
        """Store ``tracks`` in one store upsert. A track is one point carrying all its vectors and
        payload, so a crash leaves each track whole or absent (embedded storage: the whole call,
        one WAL record); ids are deterministic, so re-running an interrupted ingest fills the gaps."""
        points = []
        for track in tracks:
            unknown = set(track.vectors) - set(self.spaces)
            if unknown:
                raise BadInput(f"track {track.track_id}: no vector space {sorted(unknown)} in the world collection "
                               f"(spaces: {', '.join(self.spaces)})")
            points.append(Point(id=track.track_id, payload=self.payload(track),
                                vectors={k: np.asarray(v, dtype=np.float32).tolist() for k, v in track.vectors.items()}))
        if points:
            self.store.upsert(self.name, points)
            self._stats = None

    def missing(self, ids: Sequence[str]) -> list[str]:
        """Those of ``ids`` not stored yet, in the order given (resuming an ingest)."""
        present = {r.id for r in self.store.retrieve(self.name, ids, with_payload=False)}
        return [i for i in ids if i not in present]

    def remove(self, track_id: str) -> None:
        self.get(track_id)
        self.store.delete(self.name, ids=[track_id])
        self._stats = None

    # --- reading ----------------------------------------------------------------------

    def count(self, filters: Filters | None = None) -> int:
        return self.count_where(to_filter(filters))

    def count_where(self, flt: Filter | None) -> int:
        """Tracks passing the engine filter ``flt`` (exact)."""
        return self.store.count(self.name, filter=self.plan(flt))

    def at_least(self, flt: Filter | None, n: int) -> int:
        """How many tracks pass ``flt``, counted up to ``n``: one page of ``n`` ids, which the
        engine fills by walking the store until it has them (at 1M, 0.1 ms where an exact count of
        the workout ranges took 83 ms)."""
        records, _ = self.store.scroll(self.name, filter=self.plan(flt), limit=max(1, n), with_payload=False)
        return min(len(records), n)

    def size(self) -> int:
        """Tracks in the world, from the engine's index (as of :attr:`WorldParams.stats_seconds`
        ago at most; writes through this :class:`World` show at once)."""
        return self._counts().tracks

    def plan(self, flt: Filter | None) -> Filter | None:
        """``flt`` as the engine answers it fastest, with the same tracks passing: its year range
        and energy bound as ranges of the storage-order key (:func:`era_cells`) when those hold
        few enough tracks to be scanned (:attr:`WorldParams.era_cell_tracks`) and spare the scan
        enough others (:attr:`WorldParams.era_cell_cost`, :attr:`WorldParams.era_cell_check`),
        else unchanged. Also unchanged on a store where some tracks with a year lack the key
        (written before it existed), so no track is ever left out."""
        if flt is None or not self.params.era_cells:
            return flt
        planned = era_cells(flt)
        if planned is None:
            return flt
        counts = self._counts().keys
        if counts is None:
            return flt
        new, cells = planned
        tracks = sum(counts.get(key, 0) for lo, hi in cells for key in range(lo, hi + 1))
        spared = sum(counts.get(lo - lo % 10 + d, 0) for lo, _ in cells for d in range(10)) - tracks
        cost = self.params.era_cell_cost * len(cells)
        if any(isinstance(c, Range) and c.key == "energy" for c in new.must):
            cost += self.params.era_cell_check * tracks
        return new if tracks <= self.params.era_cell_tracks and spared >= cost else flt

    def _counts(self) -> _Stats:
        """Tracks in the world, per storage-order key and per genre, from the payload index
        (cached for :attr:`WorldParams.stats_seconds`)."""
        stats = self._stats
        if stats is not None and time.monotonic() - stats.when < self.params.stats_seconds:
            return stats
        with self._stats_lock:
            stats = self._stats  # another thread may have counted while this one waited
            if stats is not None and time.monotonic() - stats.when < self.params.stats_seconds:
                return stats
            try:
                keys = self.store.facet(self.name, WORLD_ORDER_FIELD, limit=100_000, exact=False)
                years = self.store.facet(self.name, "year", limit=100_000, exact=False)
                counts = {int(value): n for value, n in keys}
                complete = sum(counts.values()) >= sum(n for _, n in years)
                genres = dict(self.store.facet(self.name, "genre", limit=100_000, exact=False))
                self._stats = _Stats(time.monotonic(), self.store.count(self.name, exact=False), counts if complete else None,
                                     genres)
            except StorageError as exc:  # an engine that cannot count so: plan nothing, probe nothing
                log.warning("world: no payload-index counts (%s); searches go to the engine as asked", exc)
                self._stats = _Stats(time.monotonic(), 0, None, {})
        return self._stats

    def get(self, track_id: str) -> TrackPublic:
        return to_public(self._record(track_id, with_vectors=False).payload or {})

    def _record(self, track_id: str, *, with_vectors: bool):
        try:
            uuid.UUID(track_id)
        except ValueError:
            raise NotFound(f"no world track {track_id!r}") from None
        found = self.store.retrieve(self.name, [track_id], with_vectors=with_vectors)
        if not found:
            raise NotFound(f"no world track {track_id}")
        return found[0]

    def find(self, *, title: str | None, artist: str | None) -> str | None:
        """The id of a world track with this title by this artist (case-insensitive), if any."""
        if not title or not artist:
            return None
        records, _ = self.store.scroll(self.name, filter=Filter(must=(MatchValue("artist_key", artist_key(artist)),)),
                                       limit=1000, with_payload=["title"])
        wanted = title.casefold().strip()
        return next((r.id for r in records if (r.payload or {}).get("title", "").casefold().strip() == wanted), None)

    def search(
        self,
        vector: np.ndarray,
        *,
        using: str,
        filters: Filters | None = None,
        limit: int = 20,
        exclude_ids: Sequence[str] = (),
        prefer: Preferences | None = None,
        boosts: tuple[Boost, ...] = (),
    ) -> list[TrackPublic]:
        """The ``limit`` tracks nearest ``vector`` in space ``using``, under ``filters``, boosted
        towards the ``prefer`` targets and by ``boosts`` (:meth:`tag_boosts`)."""
        if using not in self.spaces:
            raise BadInput(f"no vector space {using!r} in the world collection (spaces: {', '.join(self.spaces)})")
        flt = to_filter(filters, exclude_ids=exclude_ids)
        hits = self.query(QuerySpec(
            using=using, vector=_unit(vector).tolist(), limit=limit, filter=flt, with_payload=list(PAYLOAD_FIELDS),
            targets=self.targets_for(prefer), boosts=boosts, **self.params.search_params(flt is not None),
            candidates=max(10 * limit, self.params.tag_candidates) if boosts else None))
        return [to_public(h.payload or {}, score=h.score) for h in hits]

    def query(self, spec: QuerySpec) -> list[Hit]:
        """``spec`` against the world collection, never silently short.

        A filtered graph search can come back with fewer than ``spec.limit`` hits although the
        filter keeps plenty: the graph falls apart under a filter on fields without graph links
        (at 1M sample tracks, "1980s and energy >= 0.7", 4.7% of them, returned nothing at widths
        128 and 512; BENCHMARKS.md). Such a search is run again exactly, which is correct by
        construction and, for a filter that keeps few tracks, also fast. Filters under
        :data:`WORLD_FULL_SCAN_TRACKS` per segment never reach the graph; this is the net for the
        rest, and for stores built with other settings. It cannot catch a graph answer that is
        full but wrong; for an unfiltered one, the genre probe (:attr:`WorldParams.genre_probe`)
        makes it exact within the nearest track's genre. The filter goes to the engine as
        :meth:`plan` rewrites it.
        """
        spec = replace(spec, filter=self.plan(spec.filter)) if spec.filter is not None else spec
        hits = self.store.query(self.name, spec)
        if spec.filter is not None and not spec.exact and len(hits) < spec.limit:
            hits = self.store.query(self.name, _exactly(spec))
        elif hits and self._probes(spec):
            hits = self._probe_genre(spec, hits)
        return hits

    def _probes(self, spec: QuerySpec) -> bool:
        """Whether ``spec`` is a graph search :attr:`WorldParams.genre_probe` applies to: nearest
        neighbours by similarity alone, no filter but exclusions, on a world the graph serves."""
        flt = spec.filter
        return (self.params.genre_probe and not spec.exact and not spec.rescored and spec.candidates is None
                and (flt is None or not (flt.must or flt.should))
                and self._counts().tracks > self.params.probe_from)

    def _probe_genre(self, spec: QuerySpec, hits: list[Hit]) -> list[Hit]:
        """``hits`` merged with the same search under the genre of the nearest of them."""
        payload = hits[0].payload
        if payload is None or "genre" not in payload:
            found = self.store.retrieve(self.name, [hits[0].id], with_payload=["genre"])
            payload = found[0].payload if found else None
        genre = (payload or {}).get("genre")
        if not genre or self._counts().genres.get(genre, 0) > self.params.probe_tracks:
            return hits
        must_not = spec.filter.must_not if spec.filter is not None else ()
        probe = replace(spec, filter=Filter(must=(MatchValue("genre", genre),), must_not=must_not))
        merged = {h.id: h for h in hits}
        for h in self.store.query(self.name, probe):
            merged.setdefault(h.id, h)
        return sorted(merged.values(), key=lambda h: -h.score)[: spec.limit]

    def query_fused(self, fused: FusedQuery) -> list[Hit]:
        """:meth:`query` for several queries fused by rank: when the answer is short, every
        filtered graph search in it is run again exactly."""
        fused = replace(fused, queries=tuple(replace(q, filter=self.plan(q.filter)) if q.filter is not None else q
                                             for q in fused.queries))
        hits = self.store.query_fused(self.name, fused)
        if len(hits) < fused.limit and any(q.filter is not None and not q.exact for q in fused.queries):
            exact = tuple(_exactly(q) if q.filter is not None else q for q in fused.queries)
            hits = self.store.query_fused(self.name, replace(fused, queries=exact))
        return hits

    def tag_boosts(self, weights: dict[str, float]) -> tuple[Boost, ...]:
        """Score terms for how strongly a track carries the weighted tags, read from its stored
        ``tag_probs`` in the engine: ``tag_strength_weight * sum(w * p / reference) / sum(w > 0)``.

        Dividing by the typical track's probability puts rare tags (happy: 0.3% typical) and
        common ones (rock: 13%) on one scale: a track at twice the typical level of every wanted
        tag scores 2 units. Negative weights pull away from a tag the same way.
        """
        positive = sum(w for w in weights.values() if w > 0) or sum(abs(w) for w in weights.values())
        if not positive:
            return ()
        scale = self.params.tag_strength_weight / positive
        return tuple(
            Boost(f"tag_probs[{i}]", scale * float(w) / max(float(self.tag_space.reference[i]), 1e-4))
            for i, w in ((self.tag_space.index(name), w) for name, w in weights.items()) if w)

    def targets_for(self, prefer: Preferences | None) -> tuple[Target, ...]:
        if prefer is None:
            return ()
        scales = dict(self.params.target_scales)
        return tuple(Target(key, float(value), scales[key], self.params.target_weight)
                     for key, value in prefer.targets().items())

    def similar_to_track(
        self, track_id: str, *, filters: Filters | None = None, limit: int = 10, prefer: Preferences | None = None
    ) -> list[TrackPublic]:
        """Tracks that sound like a stored track (itself left out), in its best space."""
        record = self._record(track_id, with_vectors=True)
        vectors = record.vectors or {}
        using = next((s for s in SPACE_PREFERENCE if s in vectors), None)
        if using is None:
            raise BadInput(f"world track {track_id} has no audio embedding to compare with")
        return self.search(np.asarray(vectors[using]), using=using, filters=filters, limit=limit,
                           exclude_ids=[record.id], prefer=prefer)

    def centroid(self, flt: Filter) -> tuple[str, np.ndarray, int]:
        """The mean unit vector of (up to ``centroid_tracks``) tracks matching ``flt``, in their best space."""
        records, _ = self.store.scroll(self.name, filter=flt, limit=self.params.centroid_tracks,
                                       with_payload=False, with_vectors=list(self.spaces))
        for space in SPACE_PREFERENCE:
            rows = [r.vectors[space] for r in records if r.vectors and space in r.vectors]
            if rows:
                return space, np.mean(np.asarray(rows, dtype=np.float64), axis=0), len(rows)
        raise NotFound("no tracks with an audio embedding match")

    def artist_radio(
        self, artist: str, *, filters: Filters | None = None, limit: int = 20, prefer: Preferences | None = None
    ) -> list[TrackPublic]:
        """Tracks by other artists near ``artist``'s centroid, at most ``radio_per_artist`` per artist."""
        key = artist_key(artist)
        try:
            space, centre, _ = self.centroid(Filter(must=(MatchValue("artist_key", key),)))
        except NotFound:
            raise NotFound(f"no world tracks by {artist!r}") from None
        flt = (filters or Filters()).model_copy(update={"exclude_artist": artist})
        if flt.artist and artist_key(flt.artist) == key:
            raise BadInput("an artist radio leaves the artist out: filtering on that same artist leaves nothing")
        pool = self.search(centre, using=space, filters=flt, limit=limit * self.params.overfetch, prefer=prefer)
        return diverse(pool, per_artist=self.params.radio_per_artist, limit=limit, top_up=False)

    def by_tags(
        self,
        weights: dict[str, float],
        *,
        filters: Filters | None = None,
        limit: int = 20,
        prefer: Preferences | None = None,
    ) -> list[TrackPublic]:
        """A mood playlist: tracks carrying the weighted tags most strongly (among those leaning
        towards them), under descriptor ranges."""
        if "tags" not in self.spaces:
            raise BadInput("the world collection has no tags space")
        pool = self.search(self.tag_space.profile(weights), using="tags", filters=filters,
                           limit=limit * self.params.overfetch, prefer=prefer, boosts=self.tag_boosts(weights))
        return diverse(pool, per_artist=self.params.radio_per_artist, limit=limit, top_up=True)

    def genre_counts(self, genres: Iterable[str]) -> dict[str, int]:
        return {g: self.store.count(self.name, filter=Filter(must=(MatchValue("genre", genre_key(g)),)))
                for g in genres}

    def genre_neighbours(self, genre: str, *, genres: Iterable[str], limit: int = 5) -> list[GenreNeighbour]:
        """The other genres (of ``genres``, the vocabulary) whose centroids are nearest ``genre``'s."""
        key = genre_key(genre)
        counts = {g: n for g, n in self.genre_counts({genre_key(g) for g in genres} | {key}).items() if n}
        if key not in counts:
            raise NotFound(f"no world tracks of genre {genre!r}")
        space, centre, _ = self.centroid(Filter(must=(MatchValue("genre", key),)))
        out = []
        for other in counts:
            if other == key:
                continue
            try:
                other_space, other_centre, _ = self.centroid(Filter(must=(MatchValue("genre", other),)))
            except NotFound:
                continue
            if other_space == space:
                sim = float(_unit(centre) @ _unit(other_centre))
                out.append(GenreNeighbour(genre=other, similarity=round(sim, 4), tracks=counts[other]))
        return sorted(out, key=lambda g: -g.similarity)[:limit]


def diverse(pool: list[TrackPublic], *, per_artist: int, limit: int, top_up: bool) -> list[TrackPublic]:
    """Best-first, at most ``per_artist`` tracks of one artist; with ``top_up``, filled from the rest if short."""
    taken: list[TrackPublic] = []
    seen: dict[str, int] = {}
    rest: list[TrackPublic] = []
    for track in pool:
        key = artist_key(track.artist) if track.artist else track.track_id
        if seen.get(key, 0) < per_artist:
            seen[key] = seen.get(key, 0) + 1
            taken.append(track)
        else:
            rest.append(track)
        if len(taken) == limit:
            return taken
    return taken + rest[: limit - len(taken)] if top_up else taken
