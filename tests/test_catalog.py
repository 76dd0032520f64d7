"""Catalog identification end to end on the real engines: embedded qdrant-edge and qdrant-client.

Clips are degraded the way the product promises to handle (noise, MP3, telephone band, speed),
and clips of audio never added must come back unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from encore import augment
from encore.catalog import TrackMeta, segment_id
from encore.config import Settings
from encore.errors import NotFound
from encore.service import Encore
from tests.utils.audio import synth_family, synth_track

SR = 8000
SECONDS = 40.0
CATALOG_SEEDS = range(100, 108)
UNKNOWN_SEEDS = range(200, 206)


def _open(backend: str, tmp_path: Path) -> Encore:
    settings = Settings(data_dir=tmp_path / "data", qdrant_url=None)
    if backend == "edge":
        return Encore.open(settings)
    from qdrant_client import QdrantClient

    from encore.storage.remote import RemoteStore

    return Encore(RemoteStore(QdrantClient(":memory:"), owns_client=True), settings)


@pytest.fixture(scope="module", params=["edge", "qdrant-client"])
def catalog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Encore, dict]]:
    enc = _open(request.param, tmp_path_factory.mktemp(request.param))
    tracks = {}
    for seed in CATALOG_SEEDS:
        y = synth_track(seed, seconds=SECONDS, sr=SR)
        out = enc.add_catalog_audio(y, meta=TrackMeta(title=f"Track {seed}", artist="Synth", album="Tests"))
        assert out.status == "added"
        tracks[seed] = (out.track_id, y)
    yield enc, tracks
    enc.close()


DEGRADE = {
    "clean": lambda y, rng: y,
    "white_5": lambda y, rng: augment.white_noise(y, snr_db=5.0, rng=rng),
    "pink_5": lambda y, rng: augment.pink_noise(y, snr_db=5.0, rng=rng),
    "mp3_64": lambda y, rng: augment.mp3(y, sr=SR, kbps=64),
    "telephone": lambda y, rng: augment.telephone(y, sr=SR),
    "speed_+2": lambda y, rng: augment.speed(y, sr=SR, factor=1.02),
    "speed_-2": lambda y, rng: augment.speed(y, sr=SR, factor=0.98),
}


@pytest.mark.parametrize("degradation", list(DEGRADE))
def test_degraded_clips_identify_the_right_track_and_offset(catalog, degradation):
    enc, tracks = catalog
    rng = np.random.default_rng(7)
    found = 0
    for seed in CATALOG_SEEDS:
        track_id, y = tracks[seed]
        offset = float(rng.uniform(2.0, SECONDS - 12.0))
        clip = y[int(offset * SR) : int((offset + 8.0) * SR)]
        result = enc.identify_audio(DEGRADE[degradation](clip, rng).astype(np.float32))
        m = result.match
        if m is None:
            continue
        assert m.track_id == track_id, f"confident wrong answer for seed {seed}: {m}"
        assert m.title == f"Track {seed}" and m.artist == "Synth" and m.album == "Tests"
        assert abs(m.offset_s - offset) < 0.3
        assert 0.0 < m.confidence <= 1.0
        if degradation.startswith("speed"):
            assert abs(m.speed - (1.02 if "+" in degradation else 0.98)) < 0.006
        found += 1
    assert found >= len(CATALOG_SEEDS) - 1


def test_out_of_catalog_clips_are_unknown(catalog):
    enc, _ = catalog
    rng = np.random.default_rng(3)
    for seed in UNKNOWN_SEEDS:
        y = synth_track(seed, seconds=20.0, sr=SR)
        for name in ("clean", "white_5", "speed_+2"):
            clip = DEGRADE[name](y[4 * SR : 14 * SR], rng).astype(np.float32)
            assert enc.identify_audio(clip).match is None, f"false match for unknown seed {seed} ({name})"


def test_adding_the_same_audio_twice_is_one_track(catalog):
    enc, tracks = catalog
    before = enc.stats().catalog
    track_id, y = tracks[CATALOG_SEEDS[0]]
    again = enc.add_catalog_audio(y.copy(), meta=TrackMeta(title="Another title"))
    assert again.status == "exists" and again.track_id == track_id
    assert again.title == f"Track {CATALOG_SEEDS[0]}"
    assert enc.stats().catalog == before


def test_remove_then_identify_is_unknown(tmp_path):
    with _open("edge", tmp_path) as enc:
        y = synth_track(300, seconds=30.0, sr=SR)
        keep = synth_track(301, seconds=30.0, sr=SR)
        out = enc.add_catalog_audio(y, meta=TrackMeta(title="Gone"))
        kept = enc.add_catalog_audio(keep, meta=TrackMeta(title="Kept"))
        assert enc.identify_audio(y[SR * 5 : SR * 10]).match.track_id == out.track_id
        enc.remove_catalog_track(out.track_id)
        assert enc.identify_audio(y[SR * 5 : SR * 10]).match is None
        assert enc.identify_audio(keep[SR * 5 : SR * 10]).match.track_id == kept.track_id
        assert enc.stats().catalog.tracks == 1
        with pytest.raises(NotFound):
            enc.remove_catalog_track(out.track_id)
        with pytest.raises(NotFound):
            enc.remove_catalog_track("not-a-uuid")


def test_an_interrupted_add_is_invisible_and_completed_by_adding_again(tmp_path):
    with _open("edge", tmp_path) as enc:
        y = synth_track(400, seconds=30.0, sr=SR)
        out = enc.add_catalog_audio(y, meta=TrackMeta(title="Whole"))
        # Simulate a crash before the head segment was written.
        enc.store.delete(enc.catalog.collection, ids=[segment_id(out.track_id, 0)])
        assert enc.stats().catalog.tracks == 0
        assert enc.identify_audio(y[SR * 2 : SR * 8]).match is None
        again = enc.add_catalog_audio(y, meta=TrackMeta(title="Whole"))
        assert again.status == "added" and again.track_id == out.track_id
        assert enc.identify_audio(y[SR * 2 : SR * 8]).match.track_id == out.track_id
        assert enc.stats().catalog.points == enc.catalog.count_points()


def test_reopening_the_embedded_store_keeps_the_catalog(tmp_path):
    y = synth_track(500, seconds=25.0, sr=SR)
    with _open("edge", tmp_path) as enc:
        track_id = enc.add_catalog_audio(y, meta=TrackMeta(title="Persistent")).track_id
    with _open("edge", tmp_path) as enc:
        m = enc.identify_audio(y[SR * 10 : SR * 15]).match
        assert m is not None and m.track_id == track_id and m.title == "Persistent"


def test_a_later_speed_stage_fetches_the_segments_it_points_at(tmp_path):
    """Speed hypotheses are tried in stages, 1.0 first. A clip 2 % fast finds little at speed 1.0,
    and what it finds can be elsewhere in the track (a repeat); the next stage points at the right
    segments, and they must be fetched even though the track was loaded in the first stage. (They
    were not: on real music, 13 of 100 10 s clips at +2 % were missed, or matched at a repeat.)"""
    with _open("edge", tmp_path) as enc:
        y = synth_track(700, seconds=120.0, sr=SR)
        tid = enc.add_catalog_audio(y, meta=TrackMeta(title="Long")).track_id
        cat = enc.catalog
        regions, fetched = {}, defaultdict(dict)
        seg = cat.match.segment_frames
        cat._load_regions([tid], {tid: {3}}, regions, fetched)  # the first stage: segments 2-4 (and 0)
        assert regions[tid].start == 0 and regions[tid].known.size == 5 * seg
        cat._load_regions([tid], {tid: {9}}, regions, fetched)  # the second stage points at segment 9
        known = regions[tid].known
        assert known.size == 11 * seg and known[8 * seg :].all() and known[: seg].all() and known[2 * seg : 5 * seg].all()
        assert not known[6 * seg : 7 * seg].any()  # only what was asked for
        # End to end: a +2 % clip from late in the track is found at its offset.
        clip = DEGRADE["speed_+2"](y[int(95.0 * SR) : int(105.0 * SR)], None)
        m = enc.identify_audio(clip.astype(np.float32), similar=False).match
        assert m is not None and m.track_id == tid and abs(m.offset_s - 95.0) < 0.3 and abs(m.speed - 1.02) < 0.005


def _tones(hz: np.ndarray, starts: np.ndarray, durs: np.ndarray, *, seconds: float, harmonics: list[float],
           decay: float, seed: int) -> np.ndarray:
    """A melody: harmonic tones with a sharp attack and exponential decay, unit peak."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR))
    for f, start, dur in zip(hz, starts, durs, strict=True):
        t = np.arange(int(dur * SR)) / SR
        env = np.minimum(t / 0.01, 1.0) * np.exp(-t / decay)
        wave = sum(a * np.sin(2 * np.pi * (k + 1) * f * t + rng.uniform(0, 2 * np.pi)) for k, a in enumerate(harmonics))
        s0 = int(start * SR)
        out[s0 : s0 + t.size] += (wave * env)[: out.size - s0]
    return out / np.abs(out).max()


def test_a_melody_shared_with_a_catalog_track_in_another_recording_is_unknown(tmp_path):
    """Composers reuse motifs: the same notes at the same times, another timbre and articulation,
    over other accompaniment, and here both passages fade in from silence. Landmarks align (over
    a hundred of them) and the raw band envelopes correlate through the shared fade (about 0.7,
    which the earlier rule, envelope r >= 0.6, accepted at confidence 0.999); the note-by-note
    envelope detail does not follow, so the clip must come back unknown."""
    rng = np.random.default_rng(5)
    seconds = 8.0
    starts = np.sort(rng.choice(np.arange(0.0, seconds - 0.5, 0.25), 18, replace=False))
    durs = np.r_[np.diff(starts), 0.5]
    hz = 220.0 * 2.0 ** (rng.choice([0, 2, 4, 7, 9, 12, 14, 16], starts.size) / 12.0)
    fade_in = np.geomspace(1e-4, 1.0, int(seconds * SR))
    in_catalog = _tones(hz, starts, durs, seconds=seconds, harmonics=[1.0, 0.5, 0.3], decay=0.4, seed=1)
    elsewhere = _tones(hz, starts, durs, seconds=seconds, harmonics=[1.0, 0.2, 0.6, 0.1], decay=0.15, seed=2)
    track = synth_track(11, seconds=40.0, sr=SR).astype(np.float64)
    at, n = 15 * SR, fade_in.size
    track[at : at + n] = (0.5 * track[at : at + n] + 0.8 * in_catalog) * fade_in
    clip = (0.5 * synth_track(12, seconds=seconds, sr=SR) + 0.8 * elsewhere) * fade_in
    with _open("edge", tmp_path) as enc:
        out = enc.add_catalog_audio(track.astype(np.float32), meta=TrackMeta(title="Motif"))
        for seed in (13, 14):
            enc.add_catalog_audio(synth_track(seed, seconds=40.0, sr=SR), meta=TrackMeta(title=f"Track {seed}"))
        assert enc.identify_audio(clip.astype(np.float32)).match is None
        # The catalog's own passage, fade and all, is found.
        m = enc.identify_audio(track[at : at + n].astype(np.float32)).match
        assert m is not None and m.track_id == out.track_id and abs(m.offset_s - 15.0) < 0.1
        assert m.confidence > 0.99


def test_a_piece_of_the_same_family_as_catalog_pieces_is_unknown(tmp_path):
    """Library music from one producer: one drum kit on one beat grid, one key, tempo and set of
    timbres, often the same chords at the same moments; only the tunes differ. Landmarks align by
    the hundred and the band envelopes follow (before the strongest-peaks test, about 85% of such
    clips matched another piece of the family at confidence 0.99+). The clip's loudest peaks, its
    tune, are not in the catalog piece: unknown. The catalog's own pieces, noisy, are still found."""
    seconds, n = 40.0, 8
    piece = lambda k: synth_family(k, family=0, seconds=seconds, sr=SR)  # noqa: E731
    with _open("edge", tmp_path) as enc:
        ids = [enc.add_catalog_audio(piece(k), meta=TrackMeta(title=f"Family piece {k}")).track_id for k in range(n)]
        rng = np.random.default_rng(11)
        false = []
        for k in range(1000, 1006):
            y = piece(k)
            for start in (6.0, 22.0):
                base = y[int(start * SR) : int((start + 8.0) * SR)]
                for name in ("clean", "mp3_64"):
                    m = enc.identify_audio(DEGRADE[name](base, rng).astype(np.float32), similar=False).match
                    if m is not None:
                        false.append((k, start, name, m.title, m.confidence))
        assert not false, f"pieces never added matched family pieces: {false}"
        found = 0
        for k in range(n):
            base = piece(k)[int(12.0 * SR) : int(20.0 * SR)]
            m = enc.identify_audio(augment.white_noise(base, snr_db=10.0, rng=rng).astype(np.float32),
                                   similar=False).match
            assert m is None or m.track_id == ids[k], f"piece {k} answered as {m.title}"
            found += m is not None
        assert found >= n - 1


# --- the second signal: segment embeddings ----------------------------------------------------


def _embedding_catalog(tmp_path: Path):
    from encore.catalog import Catalog
    from encore.matching import EmbeddingMatchParams
    from encore.storage.edge import EdgeStore

    store = EdgeStore(tmp_path / "store")
    catalog = Catalog(store, prefix="t_", embedding=("test", 8),
                      embedding_match=EmbeddingMatchParams(threshold=0.98, margin=0.02)).open()
    return store, catalog


def test_segment_embeddings_are_stored_and_match_strictly(tmp_path: Path) -> None:


    store, catalog = _embedding_catalog(tmp_path)
    rng = np.random.default_rng(5)
    table: dict[str, np.ndarray] = {}

    def embed_for(name: str):
        def embed(bounds):
            vecs = rng.normal(size=(len(bounds), 8))
            table[name] = vecs
            return vecs
        return embed

    a = catalog.add(synth_track(401, seconds=35, sr=SR), meta=TrackMeta(title="A"), embed_segments=embed_for("A"))
    b = catalog.add(synth_track(402, seconds=25, sr=SR), meta=TrackMeta(title="B"), embed_segments=embed_for("B"))

    assert a.segments == len(table["A"]) == 4 and b.segments == len(table["B"])
    near = table["A"][2] + rng.normal(scale=0.02, size=8)  # a clip of A's third segment, slightly off
    m = catalog.identify_embedding(near)
    assert m is not None and (m.track_id, m.decided_by) == (a.track_id, "embedding")
    assert m.offset_s == pytest.approx(2 * catalog.segment_seconds, abs=0.01)
    assert catalog.identify_embedding(rng.normal(size=8)) is None  # nothing close enough: unknown
    between = table["A"][0] / np.linalg.norm(table["A"][0]) + table["B"][0] / np.linalg.norm(table["B"][0])
    assert catalog.identify_embedding(between) is None  # close to two tracks at once: no margin, unknown
    with pytest.raises(ValueError, match="embed_segments"):
        catalog.add(synth_track(403, seconds=12, sr=SR), meta=TrackMeta(title="C"))
    store.close()


def test_the_service_reports_which_signal_decided(tmp_path: Path) -> None:


    settings = Settings(data_dir=tmp_path / "data", qdrant_url=None, catalog_embeddings=True)
    with Encore.open(settings) as enc:
        y = synth_track(404, seconds=30, sr=16000)
        created = enc.add_catalog_audio(y, meta=TrackMeta(title="Sixteen"), sr=16000)
        clip = y[5 * 16000 : 13 * 16000]
        result = enc.identify_audio(clip, sr=16000)
        stored = enc.store.retrieve(enc.catalog.collection, [segment_id(created.track_id, 0)], with_vectors=True)[0]

    assert set(stored.vectors) == {"landmarks", "embedding"}
    assert result.match is not None and result.match.track_id == created.track_id
    assert result.match.decided_by == "landmarks"
