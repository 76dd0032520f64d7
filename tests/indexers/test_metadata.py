"""Metadata files (CSV, JSONL), tags, and the fallback order: metadata row, tags, file name."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from encore.errors import BadMetadata
from indexers.metadata import TrackInfo, read_metadata, read_tags, resolve_info

if TYPE_CHECKING:
    from tests.conftest import AudioFiles


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_are_found_by_name_and_by_path(tmp_path: Path) -> None:
    table = read_metadata(write(tmp_path / "meta.csv", (
        "File,Title,Artist,Album,Year,Genre,Comment\n"
        "song.mp3, Song ,Band,,1984,rock,ignored\n"
        "live/song.mp3,Song (live),Band,Live,,,\n"
        "\n"
        '"with, comma.flac","Title, with comma",,,,,\n'
    )))

    assert len(table) == 3
    assert table.lookup(tmp_path / "studio" / "song.mp3").info == TrackInfo(
        title="Song", artist="Band", album=None, year=1984, genre="rock"
    )
    assert table.lookup(tmp_path / "live" / "song.mp3").info.title == "Song (live)"
    assert table.lookup(Path("elsewhere/with, comma.flac")).info.title == "Title, with comma"
    assert table.lookup(tmp_path / "other.mp3") is None


def test_jsonl_rows_and_paths_relative_to_the_metadata_file(tmp_path: Path) -> None:
    (tmp_path / "meta").mkdir()
    table = read_metadata(write(tmp_path / "meta" / "tracks.jsonl", (
        '{"file": "../music/a.wav", "title": "A", "year": 2001}\n'
        "\n"
        f'{{"file": "{tmp_path / "b.wav"}", "title": "B", "year": "2002", "genre": null}}\n'
    )))

    assert table.lookup(tmp_path / "music" / "a.wav").info == TrackInfo(title="A", year=2001)
    assert table.lookup(tmp_path / "b.wav").info == TrackInfo(title="B", year=2002)
    # A ``..`` key matches only the file it leads to, never another file of that name.
    assert table.lookup(tmp_path / "other" / "a.wav") is None


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("no_file.csv", "title,artist\nA,B\n", "line 1"),
        ("fields.csv", "file,title\na.wav,A\nb.wav,B,extra\n", "line 3"),
        ("quote.csv", 'file,title\na.wav,"A\nb.wav,B\n', "line"),
        ("year.csv", "file,year\na.wav,1999\nb.wav,1999.5\n", "line 3"),
        ("negative.csv", "file,year\na.wav,-5\n", "line 2"),
        ("empty_file.csv", "file,title\n,A\n", "line 2"),
        ("twice.csv", "file,title\na.wav,A\nb.wav,B\na.wav,C\n", "line 4"),
        ("empty.csv", "", "empty"),
        ("json.jsonl", '{"file": "a.wav"}\n{"file": "b.wav", "title": }\n', "line 2"),
        ("list.jsonl", '{"file": "a.wav"}\n\n["b.wav"]\n', "line 3"),
        ("year.jsonl", '{"file": "a.wav", "year": "soon"}\n', "line 1"),
        ("bool.jsonl", '{"file": "a.wav", "title": true}\n', "line 1"),
    ],
)
def test_malformed_files_name_the_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    with pytest.raises(BadMetadata, match=where) as caught:
        read_metadata(write(tmp_path / name, text))

    assert name in str(caught.value)


def test_text_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("file,title\na.wav,A\nb.wav,Caf\xe9\n".encode("latin-1"))

    with pytest.raises(BadMetadata, match="line 3: not UTF-8"):
        read_metadata(path)


def test_a_missing_metadata_file_is_bad_metadata(tmp_path: Path) -> None:
    with pytest.raises(BadMetadata, match="no such metadata file"):
        read_metadata(tmp_path / "nope.csv")


def test_format_is_sniffed_when_the_extension_says_nothing(tmp_path: Path) -> None:
    assert read_metadata(write(tmp_path / "meta.txt", '{"file": "a.wav", "title": "A"}\n')).lookup(
        Path("a.wav")).info.title == "A"
    assert read_metadata(write(tmp_path / "meta", "file,title\na.wav,A\n")).lookup(Path("a.wav")).info.title == "A"


@pytest.fixture
def tagged(tmp_path: Path, audio: AudioFiles) -> Path:
    """track_b as an mp3 with ID3 title, artist and date, but no album."""
    path = tmp_path / "tagged.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(audio.track_b),
         "-metadata", "title=Tagged Title", "-metadata", "artist=Tagged Artist", "-metadata", "date=2011",
         str(path)],
        check=True,
    )
    return path


def test_tags_are_read(tagged: Path) -> None:
    assert read_tags(tagged) == TrackInfo(title="Tagged Title", artist="Tagged Artist", year=2011)


def test_untagged_and_unreadable_files_have_no_tags(audio: AudioFiles) -> None:
    assert read_tags(audio.silent) == TrackInfo()
    assert read_tags(audio.not_audio) == TrackInfo()


def test_fallback_order_is_metadata_then_tags_then_file_name(tmp_path: Path, tagged: Path, audio: AudioFiles) -> None:
    table = read_metadata(write(tmp_path / "meta.csv", "file,title,album\ntagged.mp3,From Metadata,Meta Album\n"))

    # The row wins; what it lacks (artist, year) comes from the tags.
    assert resolve_info(tagged, table=table) == TrackInfo(
        title="From Metadata", artist="Tagged Artist", album="Meta Album", year=2011
    )
    # No row: the tags.
    assert resolve_info(tagged, table=None).title == "Tagged Title"
    # Neither: the file name.
    assert resolve_info(audio.silent, table=table) == TrackInfo(title="silent")
