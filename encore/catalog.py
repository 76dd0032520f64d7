"""The catalog tier: index owned tracks as landmark fingerprints, and identify clips strictly.

Storage layout (one Qdrant collection, ``schemas.collections.catalog_collection``): a track is cut
into segments of ``MatchParams.segment_frames`` frames; each segment is one point whose sparse
vector ``landmarks`` has one dimension per landmark hash, so Qdrant's inverted index finds
candidate segments. Its payload keeps the hashes with their frames (for offset verification,
:mod:`encore.matching`) and the track's metadata.

Point ids derive from the audio content (a UUID from the SHA-1 of the decoded samples), so adding
the same audio twice is one track.

Crash safety. A track is several points, and no store writes several points atomically across
requests, so a track's writes are journalled in the collection itself, at the id of its segment 0
(the head): an add first writes a *pending marker* there (no vectors, ``segment = -1``), then the
other segments, then the real head, which replaces the marker and marks the track complete. A
removal replaces the head with a marker, then deletes every point of the track. Whatever moment a
process dies at, a track is either complete (head with ``segment = 0``: identify, counts and
``track()`` see only these) or has a marker. :meth:`Catalog.repair`, run whenever the facade opens
the store, finds the markers through the indexed ``segment`` field (a count, no scan) and deletes
those tracks' points: no orphan segments survive a restart. Adding the file again then writes it whole.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from encore.errors import NotFound
from encore.matching import (
    EmbeddingMatchParams,
    Evidence,
    MatchParams,
    align_peaks,
    decide,
    envelope_match,
    passes_envelope,
    peak_match,
)
from encore.storage.base import Filter, MatchValue, Point, QuerySpec, SparseVector, VectorStore
from indexers.fingerprint import (
    HASH_SPACE,
    Analysis,
    FingerprintParams,
    Landmarks,
    analyze_catalog,
    analyze_query,
    landmark_peaks,
    landmarks,
    strongest,
    unique_sorted,
)
from schemas.collections import CollectionSpec, catalog_collection

_NAMESPACE = uuid.UUID("3f0b8a52-5c1e-4c44-9a0e-6b1f2d7c9e01")
_BATCH = 64
_META_KEYS = ("track_id", "title", "artist", "album", "duration_s", "segments")
#: ``segment`` of a pending marker: a track whose add or removal has not finished.
PENDING_SEGMENT = -1
#: On a shared Qdrant server another process may be adding a track right now: :meth:`Catalog.repair`
#: leaves markers younger than this alone there (an add writes its head within seconds).
SHARED_REPAIR_GRACE_S = 3600.0


@dataclass(frozen=True, slots=True)
class TrackMeta:
    """Descriptive metadata given with a catalog track."""

    title: str
    artist: str | None = None
    album: str | None = None


@dataclass(frozen=True, slots=True)
class AddOutcome:
    track_id: str
    added: bool
    """False when the same audio was already in the catalog (nothing written)."""
    title: str | None
    artist: str | None
    album: str | None
    duration_s: float
    segments: int


@dataclass(frozen=True, slots=True)
class Repaired:
    """What :meth:`Catalog.repair` cleaned up."""

    tracks: int
    """Interrupted adds and removals finished (their points deleted)."""
    points: int
    """Points deleted, markers included."""
    waiting: int = 0
    """Markers left alone: younger than the grace period (a writer may still be at work)."""


@dataclass(frozen=True, slots=True)
class CatalogMatch:
    track_id: str
    title: str | None
    artist: str | None
    album: str | None
    confidence: float
    offset_s: float
    speed: float
    aligned: int
    envelope_r: float
    envelope_detail: float
    """Envelope detail correlation on the clip's worse half (:class:`encore.matching.EnvelopeMatch`)."""
    decided_by: str = "landmarks"
    """Which signal matched: ``landmarks`` (offset-verified) or ``embedding`` (the strict second signal)."""
    evidence: Evidence | None = None
    """Everything the landmark decision saw for the accepted hypothesis, for diagnosis (benchmarks)."""


@dataclass(slots=True)
class _Region:
    """The fetched catalog segments of one candidate track."""

    landmarks: Landmarks
    envelope: np.ndarray
    """Frames of segments not fetched are NaN."""
    start: int
    meta: dict
    params: FingerprintParams
    _peak_keys: np.ndarray | None = None

    @property
    def known(self) -> np.ndarray:
        """Region frames whose segment was fetched."""
        return ~np.isnan(self.envelope[:, 0])

    def peak_keys(self) -> np.ndarray:
        """The peaks the region's landmarks were hashed from (:func:`~indexers.fingerprint.landmark_peaks`),
        rebuilt on first use: only regions with a hypothesis past the envelope test need them."""
        if self._peak_keys is None:
            self._peak_keys = landmark_peaks(self.landmarks, params=self.params)
        return self._peak_keys


def content_id(y: np.ndarray) -> str:
    """The track id of some audio: a UUID from the SHA-1 of its samples as 16-bit PCM."""
    pcm = np.clip(np.rint(y * 32767.0), -32768, 32767).astype("<i2")
    return str(uuid.uuid5(_NAMESPACE, hashlib.sha1(pcm.tobytes()).hexdigest()))


def segment_id(track_id: str, segment: int) -> str:
    return str(uuid.uuid5(uuid.UUID(track_id), f"segment:{segment}"))


def _pack(lm: Landmarks, start: int) -> str:
    rel = (lm.frames - start).astype("<u2")
    return base64.b64encode(lm.hashes.astype("<u4").tobytes() + rel.tobytes()).decode("ascii")


# Envelope rows are stored as uint8: log band power in quarter-neper steps from -40.
_ENV_FLOOR, _ENV_STEP = -40.0, 0.25


def _pack_env(env: np.ndarray) -> str:
    q = np.clip(np.rint((env - _ENV_FLOOR) / _ENV_STEP), 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _unpack_env(blob: str, bands: int) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(blob), dtype=np.uint8).reshape(-1, bands)
    return q.astype(np.float32) * _ENV_STEP + _ENV_FLOOR


def _unpack(blob: str, start: int) -> Landmarks:
    raw = base64.b64decode(blob)
    n = len(raw) // 6
    hashes = np.frombuffer(raw[: 4 * n], dtype="<u4").astype(np.uint32)
    frames = np.frombuffer(raw[4 * n :], dtype="<u2").astype(np.int32) + start
    return Landmarks(hashes=hashes, frames=frames)


def _sparse(hashes: np.ndarray) -> SparseVector:
    uniq = unique_sorted(hashes)
    return SparseVector(indices=uniq.tolist(), values=[1.0] * uniq.size)


class Catalog:
    """Add, remove and identify catalog tracks in a :class:`~encore.storage.VectorStore`."""

    def __init__(
        self,
        store: VectorStore,
        *,
        prefix: str,
        params: FingerprintParams | None = None,
        match: MatchParams | None = None,
        embedding: tuple[str, int] | None = None,
        embedding_match: EmbeddingMatchParams | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ) -> None:
        self.store = store
        self.params = params or FingerprintParams()
        self.match = match or MatchParams()
        self.embedding_match = embedding_match or EmbeddingMatchParams()
        self.spec: CollectionSpec = catalog_collection(
            prefix=prefix,
            fingerprint_params={**self.params.to_dict(), "segment_frames": self.match.segment_frames},
            hash_space=HASH_SPACE,
            embedding=embedding,
            shard_number=shard_number,
            replication_factor=replication_factor,
        )
        self.collection = self.spec.name

    @property
    def sr(self) -> int:
        return self.params.sr

    def open(self) -> Catalog:
        self.store.ensure_collection(self.spec)
        return self

    # --- writing ------------------------------------------------------------------------

    @property
    def has_embeddings(self) -> bool:
        return "embedding" in self.spec.dense

    @property
    def segment_seconds(self) -> float:
        return self.match.segment_frames * self.params.frame_seconds

    def add(
        self,
        y: np.ndarray,
        *,
        meta: TrackMeta,
        embed_segments: Callable[[list[tuple[float, float]]], np.ndarray] | None = None,
    ) -> AddOutcome:
        """Fingerprint validated mono audio at ``self.sr`` and store it (idempotent by content).

        ``embed_segments`` (needed when the catalog stores embeddings) gets the segments' (start,
        end) times in seconds and returns one embedding per segment [shape=(n_segments, dim)].
        """
        track_id = content_id(y)
        duration = round(y.size / self.sr, 3)
        existing = self.store.retrieve(self.collection, [segment_id(track_id, 0)],
                                       with_payload=[*_META_KEYS, "segment"])
        if existing and (existing[0].payload or {}).get("segment") == 0:  # else none, or a pending marker
            p = existing[0].payload or {}
            return AddOutcome(track_id, False, p.get("title"), p.get("artist"), p.get("album"),
                              float(p.get("duration_s") or duration), int(p.get("segments") or 0))

        lm, env = analyze_catalog(y, params=self.params)
        seg_len = self.match.segment_frames
        n_frames = env.shape[0]
        n_segments = max(1, -(-n_frames // seg_len))
        seg_of = lm.frames // seg_len
        meta_payload = {
            "track_id": track_id, "title": meta.title, "artist": meta.artist, "album": meta.album,
            "duration_s": duration, "segments": n_segments,
        }
        vectors: np.ndarray | None = None
        if self.has_embeddings:
            if embed_segments is None:
                raise ValueError("this catalog stores segment embeddings: pass embed_segments")
            bounds = [(k * self.segment_seconds, min(duration, (k + 1) * self.segment_seconds))
                      for k in range(n_segments)]
            vectors = np.asarray(embed_segments(bounds), dtype=np.float32)
        points = []
        for k in range(n_segments):
            sel = seg_of == k
            part = Landmarks(lm.hashes[sel], lm.frames[sel])
            named: dict = {"landmarks": _sparse(part.hashes)}
            if vectors is not None:
                named["embedding"] = vectors[k].tolist()
            points.append(Point(
                id=segment_id(track_id, k),
                vectors=named,
                payload={**meta_payload, "segment": k, "start_frame": k * seg_len, "lm": _pack(part, k * seg_len),
                         "env": _pack_env(env[k * seg_len : (k + 1) * seg_len])},
            ))
        # The marker first (a crash from here on is repaired at the next open), segment 0 last:
        # replacing the marker, it marks the track complete.
        self._mark_pending(track_id, "add")
        rest, head = points[1:], points[0]
        for i in range(0, len(rest), _BATCH):
            self.store.upsert(self.collection, rest[i : i + _BATCH])
        self.store.upsert(self.collection, [head])
        return AddOutcome(track_id, True, meta.title, meta.artist, meta.album, duration, n_segments)

    def _mark_pending(self, track_id: str, action: str) -> None:
        """Put a pending marker at the track's head id (replacing the head, if any)."""
        self.store.upsert(self.collection, [Point(
            id=segment_id(track_id, 0), vectors={},
            payload={"track_id": track_id, "segment": PENDING_SEGMENT, "pending": action, "since": time.time()},
        )])

    def remove(self, track_id: str) -> None:
        """Delete every segment of a track. Raises :class:`NotFound` for an unknown id."""
        try:
            uuid.UUID(track_id)
        except ValueError:
            raise NotFound(f"no catalog track {track_id!r}") from None
        head = self.store.retrieve(self.collection, [segment_id(track_id, 0)], with_payload=["segment"])
        if not head or (head[0].payload or {}).get("segment") != 0:
            raise NotFound(f"no catalog track {track_id!r}")
        # Two writes: the marker hides the track and journals the removal, so a crash before the
        # second leaves a marker that the next open's repair finishes.
        self._mark_pending(track_id, "remove")
        self.store.delete(self.collection, filter=Filter(must=(MatchValue("track_id", track_id),)))

    def repair(self, *, older_than_s: float = 0.0) -> Repaired:
        """Finish the adds and removals a crash interrupted: delete every point of each track with
        a pending marker at least ``older_than_s`` old (the marker included).

        Cheap when there is nothing to do (one count on the indexed ``segment`` field). Call it
        where no other process can be writing the catalog (the embedded store is locked to one
        process), or with a grace period longer than an add takes (a shared Qdrant server).
        """
        marked = Filter(must=(MatchValue("segment", PENDING_SEGMENT),))
        if not self.store.count(self.collection, filter=marked):
            return Repaired(0, 0)
        stale: list[str] = []
        waiting = 0
        now, offset = time.time(), None
        while True:
            records, offset = self.store.scroll(self.collection, filter=marked, limit=256, offset=offset,
                                                with_payload=["track_id", "since"])
            for r in records:
                p = r.payload or {}
                if now - float(p.get("since") or 0.0) >= older_than_s and p.get("track_id"):
                    stale.append(str(p["track_id"]))
                else:
                    waiting += 1
            if offset is None:
                break
        points = 0
        for track_id in stale:
            by_track = Filter(must=(MatchValue("track_id", track_id),))
            points += self.store.count(self.collection, filter=by_track)
            self.store.delete(self.collection, filter=by_track)
        return Repaired(len(stale), points, waiting)

    # --- reading ------------------------------------------------------------------------

    def count_tracks(self) -> int:
        return self.store.count(self.collection, filter=Filter(must=(MatchValue("segment", 0),)))

    def count_points(self) -> int:
        return self.store.count(self.collection)

    def track(self, track_id: str) -> dict[str, object]:
        recs = self.store.retrieve(self.collection, [segment_id(track_id, 0)], with_payload=[*_META_KEYS, "segment"])
        if not recs or (recs[0].payload or {}).get("segment") != 0:
            raise NotFound(f"no catalog track {track_id!r}")
        return {k: v for k, v in (recs[0].payload or {}).items() if k != "segment"}

    def identify(self, y: np.ndarray) -> CatalogMatch | None:
        """The catalog track a validated clip at ``self.sr`` comes from, or None when unsure.

        Hypotheses are tried in stages (:meth:`encore.matching.MatchParams.stages`): speed 1.0
        first; then the other speeds, only when no match; last, speed 1.0 with landmarks hashed
        tolerantly (a frame of slack in each interval) for a clip noise has shaken.
        Qdrant proposes candidate segments; each candidate track is aligned under each speed,
        its best offsets become hypotheses, and a hypothesis must pass the joint landmark and
        envelope test of :func:`encore.matching.decide`.
        """
        return self.identify_analysis(analyze_query(y, params=self.params))

    def identify_analysis(self, query: Analysis) -> CatalogMatch | None:
        """:meth:`identify` for a clip already analysed (:func:`~indexers.fingerprint.analyze_query`)."""
        mp = self.match
        regions: dict[str, _Region] = {}
        fetched: dict[str, dict[int, dict | None]] = defaultdict(dict)  # track -> segment -> payload, over the stages
        contenders: set[str] = set()  # tracks that passed the landmark and envelope tests in earlier stages
        strong = strongest(query.peaks, mp.candidate_peak_rank)  # Qdrant is asked with these peaks' landmarks
        for stage in mp.stages():
            queries = {s: landmarks(query.peaks, params=self.params, fan_out=self.params.query_fan_out, speed=s,
                                    dt_tolerance=stage.dt_tolerance)
                       for s in stage.speeds}
            probes = [landmarks(strong, params=self.params, fan_out=self.params.query_fan_out, speed=s,
                                dt_tolerance=stage.dt_tolerance).hashes for s in stage.speeds]
            specs = [QuerySpec(using="landmarks", vector=_sparse(h), limit=mp.candidates,
                               with_payload=["track_id", "segment"]) for h in probes if h.size]
            hits = self.store.query_batch(self.collection, specs) if specs else []
            segs: dict[str, set[int]] = defaultdict(set)
            score: dict[str, float] = defaultdict(float)
            for hit in (h for batch in hits for h in batch):
                p = hit.payload or {}
                tid, k = p.get("track_id"), p.get("segment")
                if tid is None or k is None:
                    continue
                segs[tid].add(int(k))
                score[tid] = max(score[tid], hit.score)
            tracks = sorted(score, key=score.__getitem__, reverse=True)[: mp.max_tracks]
            self._load_regions(tracks, segs, regions, fetched)
            evidence: list[Evidence] = []
            for tid in tracks:
                region = regions.get(tid)
                if region is None:
                    continue
                hyps = [al for s, q in queries.items()
                        for al in align_peaks(region.landmarks, q, window=mp.window, speed=s, peaks=mp.offset_peaks)
                        if al.aligned >= mp.min_aligned and al.coverage >= mp.min_coverage]
                hyps.sort(key=lambda a: a.aligned, reverse=True)
                for al in hyps[: mp.hypotheses]:
                    env = envelope_match(query.envelope, region.envelope, ref_start=region.start,
                                         offset_frames=al.offset_frames, speed=al.speed)
                    ev = Evidence(tid, al, env)
                    if passes_envelope(ev, params=mp):  # the peak test costs more: only for contenders
                        ev = Evidence(tid, al, env, peak_match(
                            region.peak_keys(), query.peaks,
                            known=region.known, ref_start=region.start,
                            offset_frames=al.offset_frames, speed=al.speed, top=mp.peak_top,
                            frame_tol=mp.peak_frame_tol, step_tol=mp.peak_step_tol,
                            steps_per_octave=self.params.steps_per_octave))
                    evidence.append(ev)
            picked = decide(evidence, params=mp, contenders=contenders)
            if picked is not None:
                return self._match(picked[0], regions[picked[0].track].meta, picked[1])
            contenders.update(e.track for e in evidence if passes_envelope(e, params=mp))
        return None

    def identify_embedding(self, vector: np.ndarray) -> CatalogMatch | None:
        """The second signal: the segment nearest a clip's embedding, when it is unmistakable.

        A match needs cosine >= ``threshold`` and a lead of ``margin`` over every other track's
        best segment (:class:`encore.matching.EmbeddingMatchParams`); ``offset_s`` is then only the
        segment's start (to within a segment length), and ``confidence`` the cosine.
        """
        if not self.has_embeddings:
            return None
        ep = self.embedding_match
        v = np.asarray(vector, dtype=np.float64)
        hits = self.store.query(self.collection, QuerySpec(
            using="embedding", vector=(v / (np.linalg.norm(v) or 1.0)).tolist(), limit=ep.candidates,
            with_payload=list(_META_KEYS) + ["segment", "start_frame"]))
        if not hits or hits[0].score < ep.threshold:
            return None
        best = hits[0].payload or {}
        rival = max((h.score for h in hits if (h.payload or {}).get("track_id") != best.get("track_id")), default=0.0)
        if hits[0].score - rival < ep.margin:
            return None
        return CatalogMatch(
            track_id=str(best["track_id"]), title=best.get("title"), artist=best.get("artist"),
            album=best.get("album"), confidence=round(float(hits[0].score), 6),
            offset_s=round(float(best.get("start_frame", 0)) * self.params.frame_seconds, 3), speed=1.0,
            aligned=0, envelope_r=0.0, envelope_detail=0.0, decided_by="embedding",
        )

    def _load_regions(self, tracks: Sequence[str], segs: dict[str, set[int]], regions: dict[str, _Region],
                      fetched: dict[str, dict[int, dict | None]]) -> None:
        """Fetch the candidate segments (and their neighbours, for clips straddling a boundary).

        A later speed stage can point at other segments of a track than the first did (a clip
        2 % fast finds little at speed 1.0, and what it finds may be a repeat elsewhere in the
        track): those are fetched too, and the track's region is rebuilt with them.
        """
        wanted: dict[str, tuple[str, int]] = {}  # point id -> (track, segment)
        for tid in tracks:
            ks = {0} | {j for k in segs[tid] for j in (k - 1, k, k + 1) if j >= 0}
            wanted.update({segment_id(tid, k): (tid, k) for k in sorted(ks) if k not in fetched[tid]})
        if not wanted:
            return
        got = {str(r.id): r.payload for r in self.store.retrieve(self.collection, list(wanted), with_payload=True)}
        for pid, (tid, k) in wanted.items():
            fetched[tid][k] = got.get(pid)  # None: past the track's end (not asked again)
        for tid in {tid for tid, _ in wanted.values()}:
            payloads = [p for p in fetched[tid].values() if p]
            head = next((p for p in payloads if p.get("segment") == 0), None)
            if head is None:  # incomplete track (interrupted add): not identifiable
                continue
            parts = [_unpack(p["lm"], int(p["start_frame"])) for p in payloads]
            hashes, frames = np.concatenate([p.hashes for p in parts]), np.concatenate([p.frames for p in parts])
            order = np.argsort(hashes, kind="stable")  # sorted once here, not per speed hypothesis in align()
            ref = Landmarks(hashes[order], frames[order])
            # Envelope of the region; frames of segments not fetched stay NaN.
            seg_len, bands = self.match.segment_frames, self.params.env_bands
            ks = sorted(int(p["segment"]) for p in payloads)
            start = ks[0] * seg_len
            env = np.full(((ks[-1] + 1) * seg_len - start, bands), np.nan, dtype=np.float32)
            for p in payloads:
                rows = _unpack_env(p["env"], bands)
                at = int(p["start_frame"]) - start
                env[at : at + rows.shape[0]] = rows
            regions[tid] = _Region(ref, env, start, {k: head.get(k) for k in _META_KEYS}, self.params)

    def _match(self, ev: Evidence, meta: dict, conf: float) -> CatalogMatch:
        al = ev.alignment
        return CatalogMatch(
            track_id=str(meta["track_id"]),
            title=meta.get("title"),
            artist=meta.get("artist"),
            album=meta.get("album"),
            confidence=round(conf, 6),
            offset_s=round(max(0.0, al.offset_frames) * self.params.frame_seconds, 3),
            speed=round(al.speed, 4),
            aligned=al.aligned,
            envelope_r=round(ev.envelope.r, 4),
            envelope_detail=round(ev.envelope.halves, 4),
            evidence=ev,
        )


__all__ = ["PENDING_SEGMENT", "AddOutcome", "Catalog", "CatalogMatch", "Repaired", "TrackMeta", "content_id", "segment_id"]
