"""The world-tier commands: sample (resumable), add, similar, radio, playlist, genre neighbours."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.api import GenreNeighboursPublic, IdentifyResult, StatsPublic, TracksPublic
from schemas.ingest import BatchReport, IngestReport
from tests.test_cli import assert_one_error_line, encore

if TYPE_CHECKING:
    from tests.conftest import AudioFiles


def _world_tracks() -> int:
    return StatsPublic.model_validate_json(encore("stats", "--json").stdout).world.tracks


def test_sample_then_discover_with_filters(cli_env: Path) -> None:
    first = encore("world", "sample", "--count", "400", "--seed", "9", "--json")
    again = encore("world", "sample", "--count", "450", "--seed", "9", "--json")

    assert first.exit_code == 0, first.output
    assert BatchReport.model_validate_json(first.stdout).added == 400
    resumed = BatchReport.model_validate_json(again.stdout)
    assert (resumed.added, resumed.exists) == (50, 400)  # a larger or interrupted run adds only what is missing
    assert _world_tracks() == 450

    rock = TracksPublic.model_validate_json(
        encore("playlist", "rock", "-f", "genre=rock", "-f", "year_min=1980", "-n", "5", "--json").stdout)
    assert rock.count == 5 and all(t.genre == "rock" and t.year >= 1980 for t in rock.results)

    seed = rock.results[0]
    similar = TracksPublic.model_validate_json(
        encore("similar", seed.track_id, "-f", "energy_min=0.4", "-f", "tags=rock", "--json").stdout)
    assert similar.count == 10 and seed.track_id not in {t.track_id for t in similar.results}
    assert all(t.energy >= 0.4 and t.tags["rock"] >= 0.25 for t in similar.results)

    plain = TracksPublic.model_validate_json(encore("similar", seed.track_id, "--json").stdout)
    energetic = TracksPublic.model_validate_json(
        encore("similar", seed.track_id, "-t", "energy=0.95", "-t", "tempo=160", "--json").stdout)
    assert sum(t.energy for t in energetic.results) > sum(t.energy for t in plain.results)
    assert sum(t.tempo for t in energetic.results) > sum(t.tempo for t in plain.results)
    radio = TracksPublic.model_validate_json(encore("radio", seed.artist.lower(), "-n", "8", "--json").stdout)
    assert radio.count == 8 and seed.artist not in {t.artist for t in radio.results}
    assert max(Counter(t.artist for t in radio.results).values()) <= 2

    neighbours = GenreNeighboursPublic.model_validate_json(encore("genre-neighbours", "rock", "--json").stdout)
    assert len(neighbours.neighbours) == 5

    text = encore("similar", seed.track_id, "-n", "3")
    assert text.exit_code == 0 and len(text.stdout.strip().splitlines()) == 3


def test_bad_discovery_arguments_exit_2_with_one_line(cli_env: Path) -> None:
    assert encore("world", "sample", "--count", "60", "--json").exit_code == 0

    cases = [
        (("similar", "6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11"), "no world track"),
        (("radio", "Nobody At All"), "Nobody At All"),
        (("playlist", "yodel"), "unknown tag"),
        (("playlist", "happy=lots"), "weight"),
        (("playlist", "happy", "-f", "year_min=soon"), "year_min"),
        (("playlist", "happy", "-f", "colour=red"), "colour"),
        (("playlist", "happy", "-f", "genre"), "KEY=VALUE"),
        (("playlist", "happy", "-t", "energy=2"), "energy"),
        (("playlist", "happy", "-t", "mood=1"), "mood"),
        (("genre-neighbours", "polka"), "polka"),
        (("world", "import-msd", "/nonexistent/msd"), "no such file"),
    ]
    for args, words in cases:
        result = encore(*args)
        assert result.exit_code == 2, (args, result.output)
        assert_one_error_line(result, words)
    assert _world_tracks() == 60


def test_world_add_then_identify_brings_similar_tracks(cli_env: Path, tmp_path: Path, audio: AudioFiles) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    shutil.copy(audio.track_a, folder / "a.wav")
    shutil.copy(audio.track_b, folder / "b.flac")
    shutil.copy(audio.not_audio, folder / "bad.mp3")
    meta = tmp_path / "meta.csv"
    meta.write_text("file,title,artist,year,genre\na.wav,Alpha,Synth,2001,electronic\nb.flac,Beta,Synth,1997,rock\n")

    added = encore("world", "add", folder, "--metadata", meta, "--json")
    assert encore("world", "sample", "--count", "100", "--json").exit_code == 0
    assert encore("catalog", "add", audio.track_a).exit_code == 0
    matched = IdentifyResult.model_validate_json(encore("identify", audio.clip_a, "--json").stdout)
    unknown = IdentifyResult.model_validate_json(encore("identify", audio.clip_unknown, "--json").stdout)

    report = IngestReport.model_validate_json(added.stdout)
    assert (report.added, report.rejected) == (2, 1)
    assert matched.match is not None and len(matched.similar) == 10
    assert unknown.match is None and len(unknown.similar) == 20
    assert _world_tracks() == 102


def test_import_msd_files_and_summary_then_find_them(cli_env: Path, tmp_path: Path) -> None:
    from tests.utils.msd import make_song, write_song_file, write_summary_file

    songs = [make_song(i) for i in range(12)]
    folder = tmp_path / "msd" / "A" / "B"
    folder.mkdir(parents=True)
    for song in songs[:8]:
        write_song_file(folder / f"{song.track_id}.h5", song)
    summary = write_summary_file(tmp_path / "msd_summary_file.h5", songs[6:])
    broken = tmp_path / "broken" / "TRBROKEN.h5"
    broken.parent.mkdir()
    broken.write_bytes(b"not hdf5 at all")

    files = BatchReport.model_validate_json(encore("world", "import-msd", tmp_path / "msd", "--json").stdout)
    again = BatchReport.model_validate_json(encore("world", "import-msd", summary, "--json").stdout)
    bad = encore("world", "import-msd", broken)

    assert (files.added, files.exists) == (8, 0)
    assert (again.added, again.exists) == (4, 2)  # songs 6 and 7 are in both: one track each
    assert _world_tracks() == 12
    assert bad.exit_code == 2
    assert_one_error_line(bad, "TRBROKEN.h5")
    by_artist = TracksPublic.model_validate_json(
        encore("similar", _first_id_of(songs[0].artist_name), "-n", "3", "--json").stdout)
    assert by_artist.count == 3  # timbre neighbours among the per-track imports (the summary has no timbre)


def _first_id_of(artist: str) -> str:
    from encore.world import world_id
    from tests.utils.msd import make_song

    song = next(make_song(i) for i in range(12) if make_song(i).artist_name == artist)
    return world_id("msd", song.track_id)


def test_search_prints_the_interpretation_and_tracks(cli_env: Path) -> None:
    from schemas.search import SearchResult

    assert encore("world", "sample", "--count", "500", "--seed", "3", "--json").exit_code == 0

    # (this sample world has two folk tracks from the seventies, and no jazz at all)
    as_json = encore("search", "folk from the seventies", "-n", "5", "--json")
    text = encore("search", "folk from the seventies", "-n", "5")
    empty = encore("search", "   ")

    answer = SearchResult.model_validate_json(as_json.stdout)
    assert answer.interpretation.genres == ["folk"] and answer.interpretation.year_min == 1970
    assert len(answer.results) == 2
    assert all(t.genre == "folk" and 1970 <= t.year <= 1979 for t in answer.results)
    assert "understood: folk" in text.stdout and "2. " in text.stdout
    assert empty.exit_code == 2
    assert_one_error_line(empty, "empty")


def test_track_shows_metadata_and_tags(cli_env: Path) -> None:
    from schemas.api import TrackPublic

    assert encore("world", "sample", "--count", "50", "--seed", "4", "--json").exit_code == 0
    first = TracksPublic.model_validate_json(encore("playlist", "rock", "-n", "1", "--json").stdout).results[0]

    as_json = TrackPublic.model_validate_json(encore("track", first.track_id, "--json").stdout)
    text = encore("track", first.track_id)
    missing = encore("track", "no-such-track")

    assert as_json.track_id == first.track_id and as_json.tags
    strongest = max(as_json.tags, key=as_json.tags.get)
    assert text.stdout.startswith(f"{first.title} - {first.artist}")
    assert f"  {strongest:<18} #" in text.stdout  # the bar chart starts with the strongest tag
    assert missing.exit_code == 2
    assert_one_error_line(missing, "no-such-track")


def test_voice_search_from_a_recording(cli_env: Path, tmp_path: Path) -> None:
    from schemas.search import VoiceSearchResult
    from tests.test_speech import speak
    from tests.utils.audio import write_audio

    assert encore("world", "sample", "--count", "500", "--seed", "3", "--json").exit_code == 0
    y, sr = speak("folk from the seventies")
    clip = write_audio(tmp_path / "request.wav", y, sr=sr)

    answer = VoiceSearchResult.model_validate_json(encore("search", "--voice", str(clip), "-n", "5", "--json").stdout)
    text = encore("search", "--voice", str(clip), "-n", "5")
    both = encore("search", "rock", "--voice", str(clip))
    neither = encore("search")

    assert answer.transcript == "folk from the seventies" and answer.interpretation.genres == ["folk"]
    assert len(answer.results) == 2 and all(t.genre == "folk" for t in answer.results)
    assert "heard: 'folk from the seventies'" in text.stdout
    assert both.exit_code == 2 and neither.exit_code == 2
    assert_one_error_line(neither, "TEXT or --voice")


def test_stats_names_component_versions(cli_env: Path) -> None:
    stats = StatsPublic.model_validate_json(encore("stats", "--json").stdout)
    text = encore("stats")

    assert {"python", "numpy"} <= set(stats.versions)
    assert stats.versions.get("qdrant-edge-py") or stats.versions.get("qdrant-client")
    assert f"numpy {stats.versions['numpy']}" in text.stdout
