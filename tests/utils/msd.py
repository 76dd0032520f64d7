"""Million Song Dataset files for tests, written with h5py in the MSD's own layout.

The layout follows MSongsDB's ``hdf5_descriptors.py`` and ``hdf5_utils.py`` (the PyTables code
that wrote the dataset): groups ``/metadata``, ``/analysis`` and ``/musicbrainz``, each with a
compound table ``songs`` whose columns are in PyTables' order (sorted by name) with its types
(``StringCol(n)`` -> ``S<n>``, ``IntCol`` -> int32, ``Float64Col`` -> float64), and the
extendable arrays of ``create_all_arrays`` (chunked, zlib level 1) whose per-row parts start at
the ``idx_*`` columns. :func:`write_summary_file` writes the tables only, as
``msd_summary_file.h5`` has them.

:func:`make_song` draws a plausible song from a seed; :func:`write_song_file` writes one per-track
file, :func:`write_aggregate_file` several songs in one file, :func:`write_summary_file` a summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

__all__ = ["MsdSong", "make_song", "write_aggregate_file", "write_song_file", "write_summary_file"]

#: hdf5_descriptors.MAXSTRLEN: StringCol(MAXSTRLEN) holds names and titles.
STR = "S1024"

#: hdf5_descriptors.SongMetaData
METADATA_COLUMNS = {
    "analyzer_version": "S32", "artist_7digitalid": "i4", "artist_familiarity": "f8", "artist_hotttnesss": "f8",
    "artist_id": "S32", "artist_latitude": "f8", "artist_location": STR, "artist_longitude": "f8",
    "artist_mbid": "S40", "artist_name": STR, "artist_playmeid": "i4", "genre": STR,
    "idx_artist_terms": "i4", "idx_similar_artists": "i4", "release": STR, "release_7digitalid": "i4",
    "song_hotttnesss": "f8", "song_id": "S32", "title": STR, "track_7digitalid": "i4",
}
#: hdf5_descriptors.SongAnalysis
ANALYSIS_COLUMNS = {
    "analysis_sample_rate": "i4", "audio_md5": "S32", "danceability": "f8", "duration": "f8",
    "end_of_fade_in": "f8", "energy": "f8",
    **{f"idx_{a}": "i4" for a in ("bars_confidence", "bars_start", "beats_confidence", "beats_start",
                                 "sections_confidence", "sections_start", "segments_confidence",
                                 "segments_loudness_max", "segments_loudness_max_time", "segments_loudness_start",
                                 "segments_pitches", "segments_start", "segments_timbre", "tatums_confidence",
                                 "tatums_start")},
    "key": "i4", "key_confidence": "f8", "loudness": "f8", "mode": "i4", "mode_confidence": "f8",
    "start_of_fade_out": "f8", "tempo": "f8", "time_signature": "i4", "time_signature_confidence": "f8",
    "track_id": "S32",
}
#: hdf5_descriptors.SongMusicBrainz
MUSICBRAINZ_COLUMNS = {"idx_artist_mbtags": "i4", "year": "i4"}


@dataclass
class MsdSong:
    """Everything one MSD row and its array parts hold (the fields Encore reads, and the rest)."""

    track_id: str
    title: str = ""
    artist_name: str = ""
    release: str = ""
    song_id: str = ""
    artist_id: str = ""
    artist_mbid: str = ""
    genre: str = ""
    year: int = 0
    duration: float = 0.0
    tempo: float = 0.0
    loudness: float = 0.0
    key: int = 0
    key_confidence: float = 0.0
    mode: int = 0
    mode_confidence: float = 0.0
    energy: float = 0.0
    danceability: float = 0.0
    time_signature: int = 4
    artist_familiarity: float = 0.0
    artist_hotttnesss: float = 0.0
    song_hotttnesss: float = 0.0
    artist_location: str = ""
    artist_terms: list[str] = field(default_factory=list)
    artist_terms_freq: list[float] = field(default_factory=list)
    artist_terms_weight: list[float] = field(default_factory=list)
    similar_artists: list[str] = field(default_factory=list)
    artist_mbtags: list[str] = field(default_factory=list)
    artist_mbtags_count: list[int] = field(default_factory=list)
    #: ``(n_segments, 12)``
    segments_timbre: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))
    segments_pitches: np.ndarray = field(default_factory=lambda: np.zeros((0, 12)))

    @property
    def n_segments(self) -> int:
        return int(self.segments_timbre.shape[0])


def make_song(seed: int, **overrides: object) -> MsdSong:
    """A plausible MSD song drawn from ``seed``; ``overrides`` replace any field."""
    rng = np.random.default_rng(seed)
    n_segments = int(rng.integers(20, 60))
    n_terms = int(rng.integers(3, 8))
    vocabulary = ["rock", "pop", "hip hop", "british", "00s", "female vocalist", "jazz", "electronic", "indie",
                  "blues-rock", "soul", "chill-out", "alternative", "punk", "reggae"]
    terms = [str(t) for t in rng.choice(vocabulary, n_terms, replace=False)]
    n_tags = int(rng.integers(0, 3))
    song = MsdSong(
        track_id=f"TR{seed:06d}{''.join(rng.choice(list('ABCDEFGHIJ'), 10))}",
        title=f"Song {seed}",
        artist_name=f"Artist {seed % 7}",
        release=f"Album {seed % 3}",
        song_id=f"SO{seed:06d}ABCDEFGHIJ",
        artist_id=f"AR{seed % 7:06d}ABCDEFGHIJ",
        artist_mbid=f"{seed:08x}-1111-2222-3333-444455556666",
        year=int(rng.integers(1960, 2011)),
        duration=float(rng.uniform(120, 400)),
        tempo=float(rng.uniform(60, 180)),
        loudness=float(rng.uniform(-20, -4)),
        key=int(rng.integers(0, 12)),
        key_confidence=float(rng.uniform(0, 1)),
        mode=int(rng.integers(0, 2)),
        mode_confidence=float(rng.uniform(0, 1)),
        artist_familiarity=float(rng.uniform(0, 1)),
        artist_hotttnesss=float(rng.uniform(0, 1)),
        song_hotttnesss=float(rng.uniform(0, 1)),
        artist_location="Somewhere",
        artist_terms=terms,
        artist_terms_freq=[float(x) for x in rng.uniform(0.2, 1.0, n_terms)],
        artist_terms_weight=[float(x) for x in rng.uniform(0.2, 1.0, n_terms)],
        similar_artists=[f"AR{i:06d}ABCDEFGHIJ" for i in rng.integers(0, 999, 5)],
        artist_mbtags=["classic pop and rock", "british"][:n_tags],
        artist_mbtags_count=[3, 1][:n_tags],
        segments_timbre=rng.normal(0.0, 50.0, (n_segments, 12)),
        segments_pitches=rng.uniform(0.0, 1.0, (n_segments, 12)),
    )
    return replace(song, **overrides)  # type: ignore[arg-type]


def write_song_file(path: str | Path, song: MsdSong) -> Path:
    """One per-track file (``TR....h5``): one-row tables and the song's arrays."""
    return _write(path, [song], arrays=True)


def write_aggregate_file(path: str | Path, songs: Sequence[MsdSong]) -> Path:
    """Several songs in one file, their arrays back to back and cut by the ``idx_*`` columns."""
    return _write(path, songs, arrays=True)


def write_summary_file(path: str | Path, songs: Sequence[MsdSong]) -> Path:
    """A summary file like ``msd_summary_file.h5``: the three tables, no arrays, every ``idx_*`` 0."""
    return _write(path, songs, arrays=False)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8")


def _table(group: h5py.Group, columns: dict[str, str], rows: list[dict[str, object]]) -> None:
    dtype = np.dtype([(name, columns[name]) for name in sorted(columns)])
    data = np.zeros(len(rows), dtype=dtype)
    for i, row in enumerate(rows):
        for name, value in row.items():
            data[name][i] = _bytes(value) if isinstance(value, str) else value
    group.create_dataset("songs", data=data, maxshape=(None,), chunks=True, compression="gzip",
                         compression_opts=1)


def _earray(group: h5py.Group, name: str, parts: list[np.ndarray], dtype: str, width: int | None = None) -> None:
    shape = (0,) if width is None else (0, width)
    data = np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)
    data = np.asarray(data, dtype=dtype).reshape((-1,) + shape[1:])
    group.create_dataset(name, data=data, maxshape=(None,) + shape[1:], chunks=True, compression="gzip",
                         compression_opts=1)


def _write(path: str | Path, songs: Sequence[MsdSong], *, arrays: bool) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta_rows, ana_rows, mb_rows = [], [], []
    idx = {"terms": 0, "similar": 0, "segments": 0, "mbtags": 0, "beats": 0}
    for s in songs:
        n_beats = int(s.duration * s.tempo / 60.0) if arrays else 0
        meta_rows.append({
            "analyzer_version": "", "artist_7digitalid": -1, "artist_familiarity": s.artist_familiarity,
            "artist_hotttnesss": s.artist_hotttnesss, "artist_id": s.artist_id, "artist_latitude": np.nan,
            "artist_location": s.artist_location, "artist_longitude": np.nan, "artist_mbid": s.artist_mbid,
            "artist_name": s.artist_name, "artist_playmeid": -1, "genre": s.genre,
            "idx_artist_terms": idx["terms"] if arrays else 0,
            "idx_similar_artists": idx["similar"] if arrays else 0,
            "release": s.release, "release_7digitalid": -1, "song_hotttnesss": s.song_hotttnesss,
            "song_id": s.song_id, "title": s.title, "track_7digitalid": -1,
        })
        seg = idx["segments"] if arrays else 0
        beat = idx["beats"] if arrays else 0
        ana_rows.append({
            "analysis_sample_rate": 22050, "audio_md5": "0123456789abcdef0123456789abcdef",
            "danceability": s.danceability, "duration": s.duration, "end_of_fade_in": 0.2, "energy": s.energy,
            **{f"idx_segments_{a}": seg for a in ("confidence", "loudness_max", "loudness_max_time",
                                                   "loudness_start", "pitches", "start", "timbre")},
            **{f"idx_{a}": beat for a in ("bars_confidence", "bars_start", "beats_confidence", "beats_start",
                                          "sections_confidence", "sections_start", "tatums_confidence",
                                          "tatums_start")},
            "key": s.key, "key_confidence": s.key_confidence, "loudness": s.loudness, "mode": s.mode,
            "mode_confidence": s.mode_confidence, "start_of_fade_out": max(0.0, s.duration - 3.0), "tempo": s.tempo,
            "time_signature": s.time_signature, "time_signature_confidence": 0.5, "track_id": s.track_id,
        })
        mb_rows.append({"idx_artist_mbtags": idx["mbtags"] if arrays else 0, "year": s.year})
        idx["terms"] += len(s.artist_terms)
        idx["similar"] += len(s.similar_artists)
        idx["segments"] += s.n_segments
        idx["mbtags"] += len(s.artist_mbtags)
        idx["beats"] += n_beats

    with h5py.File(path, "w") as h5:
        h5.attrs["TITLE"] = "H5 Summary File" if not arrays else "H5 Song File"
        metadata = h5.create_group("metadata")
        analysis = h5.create_group("analysis")
        musicbrainz = h5.create_group("musicbrainz")
        _table(metadata, METADATA_COLUMNS, meta_rows)
        _table(analysis, ANALYSIS_COLUMNS, ana_rows)
        _table(musicbrainz, MUSICBRAINZ_COLUMNS, mb_rows)
        if not arrays:
            return path
        _earray(metadata, "similar_artists", [np.array([_bytes(a) for a in s.similar_artists], "S20")
                                              for s in songs], "S20")
        _earray(metadata, "artist_terms", [np.array([_bytes(t) for t in s.artist_terms], "S256") for s in songs],
                "S256")
        _earray(metadata, "artist_terms_freq", [np.array(s.artist_terms_freq) for s in songs], "f8")
        _earray(metadata, "artist_terms_weight", [np.array(s.artist_terms_weight) for s in songs], "f8")
        starts = [np.cumsum(np.full(s.n_segments, 0.25)) - 0.25 for s in songs]
        _earray(analysis, "segments_start", starts, "f8")
        _earray(analysis, "segments_confidence", [np.full(s.n_segments, 0.5) for s in songs], "f8")
        _earray(analysis, "segments_pitches", [s.segments_pitches for s in songs], "f8", 12)
        _earray(analysis, "segments_timbre", [s.segments_timbre for s in songs], "f8", 12)
        for name in ("segments_loudness_max", "segments_loudness_max_time", "segments_loudness_start"):
            _earray(analysis, name, [np.full(s.n_segments, -10.0) for s in songs], "f8")
        beats = [np.arange(int(s.duration * s.tempo / 60.0)) * 60.0 / s.tempo if s.tempo else np.zeros(0)
                 for s in songs]
        for name in ("beats", "bars", "sections", "tatums"):
            _earray(analysis, f"{name}_start", beats, "f8")
            _earray(analysis, f"{name}_confidence", [np.full(b.size, 0.5) for b in beats], "f8")
        _earray(musicbrainz, "artist_mbtags", [np.array([_bytes(t) for t in s.artist_mbtags], "S256")
                                               for s in songs], "S256")
        _earray(musicbrainz, "artist_mbtags_count", [np.array(s.artist_mbtags_count, "i4") for s in songs], "i4")
    return path
