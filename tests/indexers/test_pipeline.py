"""The catalog ingest pipeline: finding files, per-file outcomes, metadata, and what a failure leaves."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from encore.errors import BadInput, BadMetadata
from encore.service import Encore
from indexers.pipeline import find_audio_files, index_catalog

if TYPE_CHECKING:
    from tests.conftest import AudioFiles


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_are_walked_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = tmp_path / "music"
    for name in ("b.mp3", "A.FLAC", "sub/c.ogg", "sub/deeper/d.opus", "cover.jpg", "notes.txt",
                 ".hidden.mp3", ".cache/e.mp3", "x/y.m4a"):
        touch(root / name)
    explicit = touch(tmp_path / "clip.unknown-extension")

    found = find_audio_files([root, explicit, root / "b.mp3"])

    assert [(p.relative_to(tmp_path).as_posix(), why) for p, why in found] == [
        ("music/A.FLAC", None),
        ("music/b.mp3", None),
        ("music/sub/c.ogg", None),
        ("music/sub/deeper/d.opus", None),
        ("music/x/y.m4a", None),
        ("clip.unknown-extension", None),
    ]


def test_links_leading_out_of_a_folder_are_refused(tmp_path: Path) -> None:
    secret = touch(tmp_path / "private" / "secret.wav")
    root = tmp_path / "music"
    touch(root / "ok.wav")
    (root / "escape.wav").symlink_to(secret)
    (root / "same.wav").symlink_to(root / "ok.wav")

    found = dict(find_audio_files([root]))

    assert found[root / "ok.wav"] is None
    assert "outside" in found[root / "escape.wav"]
    assert root / "same.wav" not in found  # the same file as ok.wav (sorted first), kept once


def test_missing_paths_and_empty_folders_are_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    touch(tmp_path / "docs" / "readme.txt")

    with pytest.raises(BadInput, match="nope: no such file or folder"):
        find_audio_files([tmp_path / "empty", tmp_path / "nope"])
    with pytest.raises(BadInput, match="no audio files"):
        find_audio_files([tmp_path / "empty", tmp_path / "docs"])


@pytest.fixture
def library(tmp_path: Path, audio: AudioFiles) -> Path:
    root = tmp_path / "library"
    (root / "disc2").mkdir(parents=True)
    shutil.copy(audio.track_a, root / "a.wav")
    shutil.copy(audio.track_b, root / "disc2" / "b.flac")
    shutil.copy(audio.not_audio, root / "fake.mp3")
    shutil.copy(audio.silent, root / "disc2" / "quiet.wav")
    return root


def test_index_reports_each_file_and_goes_on_past_bad_ones(encore: Encore, library: Path, tmp_path: Path) -> None:
    metadata = tmp_path / "meta.jsonl"
    metadata.write_text('{"file": "b.flac", "title": "Bee", "artist": "Synths", "album": "Two"}\n'
                        '{"file": "not-given.wav", "title": "Ignored"}\n')

    report = index_catalog(encore, [library], metadata=metadata, progress=False)

    assert (report.added, report.exists, report.rejected) == (2, 0, 2)
    outcomes = {Path(f.path).name: f for f in report.files}
    assert [Path(f.path).name for f in report.files] == ["a.wav", "fake.mp3", "b.flac", "quiet.wav"]
    assert outcomes["a.wav"].status == "added" and outcomes["a.wav"].title == "a"
    assert (outcomes["b.flac"].title, outcomes["b.flac"].artist, outcomes["b.flac"].album) == ("Bee", "Synths", "Two")
    assert "not an audio file" in outcomes["fake.mp3"].reason
    assert "silent" in outcomes["quiet.wav"].reason
    assert encore.stats().catalog.tracks == 2

    again = index_catalog(encore, [library], progress=False)

    assert (again.added, again.exists, again.rejected) == (0, 2, 2)
    assert {f.track_id for f in again.files if f.status == "exists"} == {
        f.track_id for f in report.files if f.status == "added"
    }
    assert encore.stats().catalog.tracks == 2


def test_the_same_audio_under_two_names_is_one_track(encore: Encore, tmp_path: Path, audio: AudioFiles) -> None:
    shutil.copy(audio.track_a, tmp_path / "first.wav")
    shutil.copy(audio.track_a, tmp_path / "copy.wav")

    report = index_catalog(encore, [tmp_path / "first.wav", tmp_path / "copy.wav"], progress=False)

    assert [f.status for f in report.files] == ["added", "exists"]
    assert report.files[0].track_id == report.files[1].track_id
    assert encore.stats().catalog.tracks == 1


def test_bad_metadata_or_a_missing_path_stores_nothing(encore: Encore, library: Path, tmp_path: Path) -> None:
    metadata = tmp_path / "meta.csv"
    metadata.write_text("file,title\na.wav,A\nb.flac\n")

    with pytest.raises(BadMetadata, match="meta.csv line 3"):
        index_catalog(encore, [library], metadata=metadata, progress=False)
    with pytest.raises(BadInput, match="no such file or folder"):
        index_catalog(encore, [library, tmp_path / "typo"], progress=False)

    assert encore.stats().catalog.tracks == 0
