"""Bad input on the command line, one matrix: every case exits 2 with one ``error:`` line saying why
(1 for a failure that is not the input's), and the stored data is unchanged afterwards.

Commands: ``encore catalog add``, ``encore world add``, ``encore identify``, ``encore search --voice``,
over one data folder holding a small sample world and track_a in the catalog and the world.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from encore.config import get_settings
from indexers.decode import load_audio
from schemas.api import IdentifyResult, StatsPublic, TrackPublic
from schemas.ingest import IngestReport
from schemas.search import VoiceSearchResult
from tests.test_cli import assert_one_error_line, encore
from tests.test_speech import speak
from tests.utils.audio import synth_track, write_audio
from tests.utils.bad_audio import BAD_CASES, UNUSUAL_FORMATS, BadCase, decoders_run, make_bad_files, write_unusual

if TYPE_CHECKING:
    from tests.conftest import AudioFiles

SR = 22050
COMMANDS = {
    "catalog_add": ("catalog", "add"),
    "world_add": ("world", "add"),
    "identify": ("identify",),
    "voice_search": ("search", "--voice"),
}
#: The commands that decode query clips, with the query decoder ENCORE_QUERY_DECODER chooses; adds
#: always decode through the ffmpeg program.
QUERY_COMMANDS = ("identify", "voice_search")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, audio: AudioFiles) -> Iterator[dict[str, str]]:
    """The CLI's data folder for the module; yields the ids of track_a in the catalog and the world."""
    data = tmp_path_factory.mktemp("cli-bad-input") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENCORE_DATA_DIR", str(data))
        for name in ("ENCORE_QDRANT_URL", "ENCORE_API_KEY", "ENCORE_MAX_AUDIO_SECONDS", "ENCORE_MAX_UPLOAD_BYTES",
                     "ENCORE_QUERY_DECODER"):
            mp.delenv(name, raising=False)
        get_settings.cache_clear()
        assert encore("world", "sample", "--count", "60", "--seed", "3", "--json").exit_code == 0
        named = tmp_path_factory.mktemp("named") / "Track A.wav"
        shutil.copy(audio.track_a, named)
        ids = {tier: IngestReport.model_validate_json(encore(tier, "add", named, "--json").stdout).files[0].track_id
               for tier in ("catalog", "world")}
        yield ids
        get_settings.cache_clear()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_files(tmp_path_factory.mktemp("bad-files"))


@contextmanager
def query_decoder(decoder: str | None) -> Iterator[None]:
    """Commands run meanwhile decode query clips with ``decoder`` (ENCORE_QUERY_DECODER; None: unset)."""
    with pytest.MonkeyPatch.context() as mp:
        if decoder is not None:
            mp.setenv("ENCORE_QUERY_DECODER", decoder)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


def encore_executable() -> str:
    script = Path(sys.executable).parent / "encore"
    return str(script) if script.exists() else shutil.which("encore") or "encore"


def json_of(*args: str | Path) -> str:
    result = encore(*args, "--json")
    assert result.exit_code == 0, result.output
    return result.stdout


def snapshot(ids: dict[str, str], audio: AudioFiles) -> tuple[object, ...]:
    """What a user sees of the stored data: counts, a known world track, what a clip identifies as."""
    stats = StatsPublic.model_validate_json(json_of("stats"))
    known = TrackPublic.model_validate_json(json_of("track", ids["world"]))
    match = IdentifyResult.model_validate_json(json_of("identify", audio.clip_a)).match
    assert match is not None and match.track_id == ids["catalog"]
    return stats.catalog, stats.world, known, (match.track_id, match.title, round(match.offset_s, 1))


def counts() -> tuple[int, int]:
    stats = StatsPublic.model_validate_json(json_of("stats"))
    return stats.catalog.tracks, stats.world.tracks if stats.world else 0


def expected(case: BadCase, command: str) -> str:
    return case.voice[1] if command == "voice_search" and case.voice is not None else case.words


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_bad_files_exit_2_with_one_line_and_change_nothing(
    data_dir: dict[str, str], audio: AudioFiles, bad_files: dict[str, Path], case: BadCase
) -> None:
    before = snapshot(data_dir, audio)

    for command, args in COMMANDS.items():
        for decoder in ("ffmpeg", "pyav") if command in QUERY_COMMANDS else (None,):
            with query_decoder(decoder), decoders_run() as ran:
                result = encore(*args, bad_files[case.name])
            assert result.exit_code == 2, (command, decoder, result.output)
            assert_one_error_line(result, case.file, expected(case, command))  # the file, and why
            assert "1 added" not in result.stdout
            assert ran == [decoder or "ffmpeg"], command  # adds decode through the ffmpeg program

    assert snapshot(data_dir, audio) == before


@pytest.mark.parametrize("kind", sorted(UNUSUAL_FORMATS))
def test_unusual_but_valid_audio_is_accepted_and_works(
    data_dir: dict[str, str], audio: AudioFiles, tmp_path: Path, kind: str
) -> None:
    y, _ = load_audio(audio.track_a, sr=SR)
    clip = write_unusual(tmp_path / "clip", kind, y[int(7.5 * SR): int(15.5 * SR)], sr=SR)
    piece = synth_track(510 + sorted(UNUSUAL_FORMATS).index(kind), seconds=10, sr=SR)
    new = write_unusual(tmp_path / f"Unusual {kind}", kind, piece, sr=SR)
    speech, speech_sr = speak("play some happy songs for a workout")
    query = write_unusual(tmp_path / "query", kind, speech, sr=speech_sr)
    catalog, world = counts()

    with decoders_run() as ran:
        matched = IdentifyResult.model_validate_json(json_of("identify", clip)).match
    with query_decoder("ffmpeg"):
        through_ffmpeg = IdentifyResult.model_validate_json(json_of("identify", clip)).match
    added = IngestReport.model_validate_json(json_of("catalog", "add", new))
    in_world = IngestReport.model_validate_json(json_of("world", "add", new))
    heard = VoiceSearchResult.model_validate_json(json_of("search", "--voice", query))

    assert matched is not None and matched.track_id == data_dir["catalog"] and abs(matched.offset_s - 7.5) < 0.5
    assert ran == ["pyav"]  # the default (auto), PyAV being installed with Encore
    assert through_ffmpeg is not None and through_ffmpeg.track_id == matched.track_id
    assert abs(through_ffmpeg.offset_s - matched.offset_s) < 0.05
    assert (added.added, in_world.added) == (1, 1)
    assert added.files[0].title == f"Unusual {kind}"
    again = IdentifyResult.model_validate_json(json_of("identify", write_audio(
        tmp_path / "part.mp3", piece[3 * SR: 8 * SR], sr=SR, fmt="mp3"))).match
    assert again is not None and again.track_id == added.files[0].track_id
    assert TrackPublic.model_validate_json(json_of("track", in_world.files[0].track_id)).tempo is not None
    assert "happy songs" in heard.transcript
    assert counts() == (catalog + 1, world + 1)
    assert encore("catalog", "remove", added.files[0].track_id).exit_code == 0


#: Real files with names a shell script, a download or a hostile sender might produce.
HOSTILE_NAMES = {
    "unicode": ("ünïcødé ♫ señor.wav", "ünïcødé ♫ señor"),
    "spaces": ("  spaced   out .wav", "spaced   out"),
    "newline": ("new\nline.wav", "new line"),
    "tab_and_bell": ("tab\tbell\x07.wav", "tab bell"),
    "url_like": ("http:radio.wav", "http:radio"),
    "ffmpeg_protocol": ("concat:a.wav|b.wav", "concat:a.wav|b"),
    "dash": ("-i.wav", "-i"),
    "very_long": ("L" * 240 + ".wav", "L" * 240),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_NAMES))
def test_hostile_file_names_are_read_as_the_files_they_are(
    data_dir: dict[str, str], audio: AudioFiles, tmp_path: Path, name: str
) -> None:
    file_name, title = HOSTILE_NAMES[name]
    folder = tmp_path / "music"
    folder.mkdir()
    piece = synth_track(620 + sorted(HOSTILE_NAMES).index(name), seconds=6, sr=SR)
    path = write_audio(folder / file_name, piece, sr=SR, fmt="wav")
    catalog, _ = counts()

    text = encore("catalog", "add", "--", path)  # "--": a name starting with '-' is a file, not an option
    identified = encore("identify", "--json", "--", path)
    found = IdentifyResult.model_validate_json(identified.stdout).match

    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("catalog: 1 added")  # one line per file, whatever its name
    assert found is not None and found.title == title
    assert counts()[0] == catalog + 1
    assert encore("catalog", "remove", found.track_id).exit_code == 0


CORRUPT_METADATA = {
    "binary_garbage": (bytes(range(256)) * 8, "binary data, not a CSV or JSONL metadata file"),
    "latin1": (b"file,title\nsong.wav,Caf\xe9\n", "line 2: not UTF-8"),
    "wrong_header": (b"name,title\nsong.wav,Song\n", "no 'file' column"),
    "ragged_rows": (b"file,title,artist\nsong.wav,Song\n", "line 2: 2 fields, but the header has 3"),
    "bad_year": (b"file,title,year\nsong.wav,Song,next year\n", "line 2: year must be an integer"),
    "unterminated_quote": (b'file,title\nsong.wav,"Song\n', "line 2: malformed CSV"),
    "bad_jsonl": (b'{"file": "song.wav", "title": "Song"\n', "malformed JSON"),
    "empty": (b"", "empty"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_METADATA))
def test_a_corrupt_metadata_file_exits_2_and_stores_nothing(
    data_dir: dict[str, str], audio: AudioFiles, tmp_path: Path, case: str
) -> None:
    content, words = CORRUPT_METADATA[case]
    metadata = tmp_path / ("tracks.jsonl" if case == "bad_jsonl" else "tracks.csv")
    metadata.write_bytes(content)
    song = tmp_path / "song.wav"
    write_audio(song, synth_track(640, seconds=6, sr=SR), sr=SR)
    before = counts()

    for tier in ("catalog", "world"):
        result = encore(tier, "add", song, "--metadata", metadata)
        assert result.exit_code == 2, result.output
        assert_one_error_line(result, metadata.name, words)
        assert result.stderr.rstrip("\n").isprintable()  # no raw bytes of the file on the terminal

    assert counts() == before


def test_metadata_paths_never_reach_outside_what_was_given(
    data_dir: dict[str, str], audio: AudioFiles, tmp_path: Path
) -> None:
    music, outside = tmp_path / "music", tmp_path / "outside"
    music.mkdir()
    outside.mkdir()
    write_audio(music / "song.wav", synth_track(650, seconds=6, sr=SR), sr=SR)
    write_audio(outside / "song.wav", synth_track(651, seconds=6, sr=SR), sr=SR)
    (music / "escape.wav").symlink_to(outside / "song.wav")
    metadata = music / "tracks.csv"
    metadata.write_text("file,title\n../outside/song.wav,Not Given\n/etc/passwd,Passwords\n")
    before = counts()

    report = IngestReport.model_validate_json(json_of("catalog", "add", music, "--metadata", metadata))
    passwd = encore("catalog", "add", music, "--metadata", "/etc/passwd")

    by_name = {Path(f.path).name: f for f in report.files}
    assert (report.added, report.rejected) == (1, 1)
    assert by_name["song.wav"].title == "song"  # the row for a file outside was not applied to it
    assert by_name["escape.wav"].status == "rejected" and "outside" in (by_name["escape.wav"].reason or "")
    assert counts()[0] == before[0] + 1  # the file outside, named in a row and linked to, was not added
    assert passwd.exit_code == 2
    assert_one_error_line(passwd, "passwd line 1: the header has no 'file' column")
    assert len(passwd.stderr) < 200  # a line of text, not a dump of the file
    assert encore("catalog", "remove", by_name["song.wav"].track_id or "").exit_code == 0


def test_concurrent_adds_of_the_same_file_store_one_track(tmp_path: Path, audio: AudioFiles) -> None:
    # Real processes over one embedded store: it admits one at a time; the others say so and exit 1.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env["ENCORE_DATA_DIR"] = str(tmp_path / "data")
    command = [encore_executable(), "catalog", "add", str(audio.track_a), "--no-progress"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]

    stats = subprocess.run([encore_executable(), "stats", "--json"], env=env, capture_output=True, text=True,
                           timeout=120, check=True)
    assert StatsPublic.model_validate_json(stats.stdout).catalog.tracks == 1
    assert sum("1 added" in out for _, out, _ in outcomes) == 1
    for code, out, err in outcomes:
        assert code in (0, 1), err
        if code == 1:
            assert len(err.splitlines()) == 1 and "in use by another process" in err
        else:
            assert ("1 added" in out or "1 already there" in out) and err == ""
