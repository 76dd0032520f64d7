"""The ``encore`` command: in-process through typer's CliRunner, and as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from encore.cli import cli
from schemas.api import IdentifyResult, StatsPublic
from schemas.ingest import IngestReport

runner = CliRunner()

if TYPE_CHECKING:
    from tests.conftest import AudioFiles


def encore(*args: str | Path):
    return runner.invoke(cli, [str(a) for a in args])


def catalog_tracks() -> int:
    result = encore("stats", "--json")
    assert result.exit_code == 0, result.output
    return StatsPublic.model_validate_json(result.stdout).catalog.tracks


def assert_one_error_line(result, *words: str) -> None:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


@pytest.fixture
def music(tmp_path: Path, audio: AudioFiles) -> Path:
    """A folder of two tracks (one in a subfolder), a hidden file and a text file."""
    folder = tmp_path / "music"
    (folder / "live").mkdir(parents=True)
    shutil.copy(audio.track_a, folder / "track_a.wav")
    shutil.copy(audio.track_b, folder / "live" / "track_b.flac")
    shutil.copy(audio.track_unknown, folder / ".hidden.wav")
    (folder / "notes.txt").write_text("not music")
    return folder


def test_add_a_folder_with_metadata_then_identify(cli_env: Path, music: Path, tmp_path: Path, audio: AudioFiles) -> None:
    metadata = tmp_path / "tracks.csv"
    metadata.write_text("file,title,artist,album,year\ntrack_a.wav,Overture,The Synths,Sines,1999\n")

    added = encore("catalog", "add", music, "--metadata", metadata, "--json")

    assert added.exit_code == 0, added.output
    report = IngestReport.model_validate_json(added.stdout)
    assert (report.added, report.exists, report.rejected) == (2, 0, 0)
    titles = {Path(f.path).name: (f.title, f.artist) for f in report.files}
    assert titles == {"track_a.wav": ("Overture", "The Synths"), "track_b.flac": ("track_b", None)}

    found = encore("identify", audio.clip_a, "--json")
    assert found.exit_code == 0, found.output
    result = IdentifyResult.model_validate_json(found.stdout)
    assert result.match is not None
    assert (result.match.title, result.match.artist, result.match.album) == ("Overture", "The Synths", "Sines")
    assert abs(result.match.offset_s - audio.clip_offset_s) < 0.5

    human = encore("identify", audio.clip_a)
    assert human.exit_code == 0
    assert "Overture" in human.stdout and "The Synths" in human.stdout


def test_adding_again_reports_existing_tracks(cli_env: Path, music: Path) -> None:
    assert encore("catalog", "add", music).exit_code == 0

    again = encore("catalog", "add", music)

    assert again.exit_code == 0, again.output
    assert "0 added, 2 already there, 0 rejected" in again.stdout
    assert catalog_tracks() == 2


def test_unknown_clip_and_remove(cli_env: Path, audio: AudioFiles) -> None:
    added = encore("catalog", "add", audio.track_a, "--json")
    track_id = IngestReport.model_validate_json(added.stdout).files[0].track_id

    unknown = encore("identify", audio.clip_unknown)
    assert unknown.exit_code == 0
    assert unknown.stdout.startswith("unknown")

    removed = encore("catalog", "remove", track_id)
    assert removed.exit_code == 0, removed.output
    assert IdentifyResult.model_validate_json(encore("identify", audio.clip_a, "--json").stdout).match is None

    again = encore("catalog", "remove", track_id)
    assert again.exit_code == 2
    assert_one_error_line(again, track_id)


def test_missing_paths_exit_2(cli_env: Path, tmp_path: Path, audio: AudioFiles) -> None:
    for args in (("identify", tmp_path / "nope.mp3"), ("catalog", "add", audio.track_a, tmp_path / "nope")):
        result = encore(*args)
        assert result.exit_code == 2
        assert_one_error_line(result, "nope")
    assert catalog_tracks() == 0


def test_audio_past_the_length_limit_exits_2(cli_env: Path, audio: AudioFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCORE_MAX_AUDIO_SECONDS", "10")
    from encore.config import get_settings

    get_settings.cache_clear()

    result = encore("catalog", "add", audio.track_a)

    assert result.exit_code == 2
    assert_one_error_line(result, "longer than the limit")


def test_a_folder_with_some_bad_files_adds_the_rest(cli_env: Path, music: Path, audio: AudioFiles) -> None:
    shutil.copy(audio.silent, music / "silence.wav")

    result = encore("catalog", "add", music)

    assert result.exit_code == 0, result.output
    assert "2 added, 0 already there, 1 rejected" in result.stdout
    assert "silence.wav" in result.stdout and "silent" in result.stdout
    assert result.stderr == ""


def test_help_lists_commands_with_examples() -> None:
    result = encore("--help")

    assert result.exit_code == 0
    for command in ("catalog", "identify", "serve", "stats"):
        assert command in result.stdout
    assert "encore catalog add" in encore("catalog", "add", "--help").stdout


def _encore_executable() -> str:
    script = Path(sys.executable).parent / "encore"
    return str(script) if script.exists() else shutil.which("encore") or "encore"


def test_the_installed_command_in_a_subprocess(tmp_path: Path, audio: AudioFiles) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env["ENCORE_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_encore_executable(), *map(str, args)], capture_output=True, text=True, env=env,
                              timeout=120, check=False)

    added = run("catalog", "add", audio.track_a, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] == 1

    found = run("identify", audio.clip_a, "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["match"]["track_id"] == json.loads(added.stdout)["files"][0]["track_id"]

    bad = run("identify", audio.not_audio)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith(f"error: {audio.not_audio.name}: not an audio file")
