"""Million Song Dataset reader: per-track, aggregate and summary files, folders, genres, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")

from encore.errors import BadInput, BadMetadata  # noqa: E402
from indexers.msd import GENRES, MsdTrack, genre_from_terms, read_msd  # noqa: E402
from tests.utils.msd import (  # noqa: E402
    make_song,
    write_aggregate_file,
    write_song_file,
    write_summary_file,
)


def _one(path: Path) -> MsdTrack:
    tracks = list(read_msd(path))
    assert len(tracks) == 1
    return tracks[0]


def test_a_per_track_file_round_trips_every_field(tmp_path):
    song = make_song(
        1, title="Jóga", artist_name="Björk", release="Homogenic", year=1997, tempo=123.5, loudness=-9.25,
        key=9, mode=0, duration=305.5, energy=0.0, danceability=0.0, genre="",
        artist_terms=["icelandic", "trip hop", "electronic", "female vocalist"],
        artist_terms_weight=[0.9, 0.95, 0.8, 0.99], artist_terms_freq=[0.5, 0.9, 0.7, 0.8],
    )
    track = _one(write_song_file(tmp_path / "TRAAABD128F429CF47.h5", song))

    assert track.track_id == song.track_id
    assert (track.title, track.artist, track.album) == ("Jóga", "Björk", "Homogenic")
    assert track.song_id == song.song_id and track.artist_mbid == song.artist_mbid
    assert track.year == 1997
    assert track.tempo == pytest.approx(123.5) and track.loudness == pytest.approx(-9.25)
    assert track.duration == pytest.approx(305.5)
    assert (track.key, track.mode) == ("A", "minor")
    assert track.energy is None and track.danceability is None
    # Terms by weight: "female vocalist" (0.99) names no genre, "trip hop" (0.95) does.
    assert track.terms == ("female vocalist", "trip hop", "icelandic", "electronic")
    assert track.genre == "electronic"
    assert track.timbre is not None and track.timbre.dtype == np.float32 and track.timbre.shape == (12,)
    np.testing.assert_allclose(track.timbre, song.segments_timbre.mean(axis=0), rtol=1e-5)


def test_known_energy_danceability_and_major_mode_are_kept(tmp_path):
    song = make_song(2, energy=0.73, danceability=0.41, mode=1, key=1)
    track = _one(write_song_file(tmp_path / "a.h5", song))
    assert track.energy == pytest.approx(0.73) and track.danceability == pytest.approx(0.41)
    assert (track.key, track.mode) == ("C#", "major")


def test_unknown_values_read_as_none(tmp_path):
    song = make_song(3, year=0, tempo=0.0, duration=0.0, title="", release="", artist_terms=[],
                     artist_terms_freq=[], artist_terms_weight=[], artist_mbtags=[], artist_mbtags_count=[],
                     segments_timbre=np.zeros((0, 12)), segments_pitches=np.zeros((0, 12)))
    track = _one(write_song_file(tmp_path / "a.h5", song))
    assert track.year is None and track.tempo is None and track.duration is None
    assert track.title is None and track.album is None
    assert track.terms == () and track.genre is None and track.timbre is None


def test_genre_falls_back_to_the_file_genre_then_musicbrainz_tags(tmp_path):
    no_terms = {"artist_terms": [], "artist_terms_freq": [], "artist_terms_weight": []}
    own = make_song(4, genre="Reggae", **no_terms)
    tags = make_song(5, genre="", artist_mbtags=["british", "hard rock"], artist_mbtags_count=[5, 2], **no_terms)
    assert _one(write_song_file(tmp_path / "own.h5", own)).genre == "reggae"
    assert _one(write_song_file(tmp_path / "tags.h5", tags)).genre == "rock"


def test_a_folder_is_read_recursively_in_path_order(tmp_path):
    songs = {f"A/B/{i}.h5": make_song(i) for i in (10, 11)} | {"A/C/D/TRZ.h5": make_song(12), "top.h5": make_song(13)}
    for rel, song in songs.items():
        write_song_file(tmp_path / rel, song)
    (tmp_path / "A" / "README.txt").write_text("not a track")
    write_song_file(tmp_path / ".hidden" / "x.h5", make_song(99))

    tracks = list(read_msd(tmp_path))
    assert [t.track_id for t in tracks] == [songs[rel].track_id for rel in sorted(songs)]


def test_an_aggregate_file_cuts_each_rows_arrays_at_its_indices(tmp_path):
    songs = [make_song(20 + i) for i in range(4)]
    tracks = list(read_msd(write_aggregate_file(tmp_path / "agg.h5", songs), batch_rows=3))
    assert [t.track_id for t in tracks] == [s.track_id for s in songs]
    for track, song in zip(tracks, songs, strict=True):
        np.testing.assert_allclose(track.timbre, song.segments_timbre.mean(axis=0), rtol=1e-5)
        assert set(track.terms) == set(song.artist_terms)


def test_the_summary_file_has_one_track_per_row_without_arrays(tmp_path):
    songs = [make_song(30 + i, year=(0 if i == 2 else 1990 + i)) for i in range(7)]
    tracks = list(read_msd(write_summary_file(tmp_path / "msd_summary_file.h5", songs), batch_rows=3))
    assert [t.track_id for t in tracks] == [s.track_id for s in songs]
    assert [t.title for t in tracks] == [s.title for s in songs]
    assert [t.year for t in tracks] == [1990, 1991, None, 1993, 1994, 1995, 1996]
    assert all(t.timbre is None and t.terms == () for t in tracks)
    assert [t.tempo for t in tracks] == pytest.approx([s.tempo for s in songs])


def test_terms_map_onto_the_genre_vocabulary():
    assert genre_from_terms(["british", "00s", "hip hop", "rock"]) == "hip-hop"
    assert genre_from_terms(["pop punk"]) == "punk"
    assert genre_from_terms(["blues-rock"]) == "blues"
    assert genre_from_terms(["rhythm and blues"]) == "r&b"
    assert genre_from_terms(["reggaeton"]) == "latin"
    assert genre_from_terms(["Death Metal"]) == "metal"
    assert genre_from_terms(["classic rock"]) == "rock"
    assert genre_from_terms(["chill-out"]) == "electronic"
    assert genre_from_terms(["neo soul"]) == "soul"
    assert genre_from_terms(["bebop"]) == "jazz"
    assert genre_from_terms(["baroque"]) == "classical"
    assert genre_from_terms(["bluegrass"]) == "country"
    assert genre_from_terms(["singer-songwriter"]) == "folk"
    assert genre_from_terms(["dance pop"]) == "pop"
    assert genre_from_terms(["british", "female vocalist"]) is None
    assert genre_from_terms([]) is None
    # Every genre is reachable by its own name.
    assert all(genre_from_terms([g]) == g for g in GENRES)


def test_a_missing_path_or_empty_folder_is_refused_at_once(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        read_msd(tmp_path / "nope.h5")
    with pytest.raises(BadInput, match="no .h5 files"):
        read_msd(tmp_path)


def test_a_file_that_is_not_hdf5_raises_one_clear_line(tmp_path):
    bad = tmp_path / "TRBROKEN.h5"
    bad.write_bytes(b"this is not an HDF5 file\n" * 40)
    with pytest.raises(BadMetadata) as err:
        list(read_msd(bad))
    message = str(err.value)
    assert message.startswith("TRBROKEN.h5: not a readable HDF5 file") and "\n" not in message
    assert str(tmp_path) not in message


def test_a_truncated_file_raises_a_clear_error(tmp_path):
    path = write_aggregate_file(tmp_path / "agg.h5", [make_song(40 + i) for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadMetadata, match=r"^agg\.h5: ") as err:
        list(read_msd(path))
    assert "\n" not in str(err.value)


def test_an_hdf5_file_without_msd_tables_is_refused(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("x", data=np.arange(3))
    with pytest.raises(BadMetadata, match=r"other\.h5: not a Million Song Dataset file \(no /metadata/songs"):
        list(read_msd(path))


def test_a_bad_file_in_a_folder_is_named(tmp_path):
    write_song_file(tmp_path / "a" / "good.h5", make_song(50))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bad.h5").write_bytes(b"\x00" * 100)
    tracks = read_msd(tmp_path)
    assert next(tracks).track_id == make_song(50).track_id
    with pytest.raises(BadMetadata, match=r"^bad\.h5: "):
        next(tracks)
