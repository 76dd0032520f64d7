"""Shared fixtures: settings over a temporary data folder, an opened facade, an HTTP client, audio files.

Everything runs for real: ffmpeg decodes, the embedded Qdrant engine stores, FastAPI answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from encore.config import Settings, get_settings
from encore.service import Encore
from tests.utils.audio import synth_track, write_audio

SR = 22050
#: Where the degraded clip of track A starts in it, in seconds.
CLIP_OFFSET_S = 7.5


def _settings(data_dir: Path, **overrides: object) -> Settings:
    # analysis_workers 0: apps analyse clips in-process, as the CLI does, unless a test asks for the
    # pool (tests/app/test_analysis_pool.py); a pool per app would spawn processes for every test.
    values: dict[str, object] = {"data_dir": data_dir, "qdrant_url": None, "api_key": None, "cors_origins": [],
                                 "analysis_workers": 0}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    """``make_settings(data_dir, **overrides)``: Settings deaf to the ENCORE_ environment of the test run."""
    return _settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path / "data")


@pytest.fixture
def encore(settings: Settings) -> Iterator[Encore]:
    enc = Encore.open(settings)
    try:
        yield enc
    finally:
        enc.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the CLI's environment settings at a fresh data folder; yields that folder."""
    data_dir = tmp_path / "cli-data"
    monkeypatch.setenv("ENCORE_DATA_DIR", str(data_dir))
    for name in ("ENCORE_QDRANT_URL", "ENCORE_API_KEY", "ENCORE_MAX_AUDIO_SECONDS", "ENCORE_MAX_UPLOAD_BYTES"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def white_noise(y: np.ndarray, *, snr_db: float, seed: int) -> np.ndarray:
    """``y`` plus white noise ``snr_db`` below its power."""
    power = float(np.mean(np.square(y, dtype=np.float64)))
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), y.size)
    return (y + noise).astype(np.float32)


@dataclass(frozen=True)
class AudioFiles:
    """Audio files for tests, written once per session (read-only: copy before changing one)."""

    track_a: Path  # 24 s, the track clips are cut from
    track_b: Path  # 20 s, another catalog track
    track_unknown: Path  # 20 s, never added
    clip_a: Path  # 8 s of track_a from CLIP_OFFSET_S, white noise at 10 dB SNR, as mp3
    clip_unknown: Path  # 8 s of track_unknown, as mp3
    not_audio: Path  # text renamed .mp3
    empty: Path  # 0 bytes, .mp3
    too_short: Path  # 0.2 s
    silent: Path  # 3 s of digital silence
    truncated: Path  # track_b's FLAC cut to its first 40 percent
    truncated_wav: Path  # track_a's WAV cut to 40 percent: ffmpeg decodes it silently, the RIFF header tells
    clip_offset_s: float = CLIP_OFFSET_S


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> AudioFiles:
    folder = tmp_path_factory.mktemp("audio")
    a = synth_track(101, seconds=24, sr=SR)
    b = synth_track(202, seconds=20, sr=SR)
    unknown = synth_track(303, seconds=20, sr=SR)

    def write(name: str, y: np.ndarray, fmt: str) -> Path:
        path = folder / name
        write_audio(path, y, sr=SR, fmt=fmt)
        return path

    start = int(CLIP_OFFSET_S * SR)
    files = AudioFiles(
        track_a=write("track_a.wav", a, "wav"),
        track_b=write("track_b.flac", b, "flac"),
        track_unknown=write("track_unknown.wav", unknown, "wav"),
        clip_a=write("clip_a.mp3", white_noise(a[start : start + 8 * SR], snr_db=10, seed=7), "mp3"),
        clip_unknown=write("clip_unknown.mp3", unknown[3 * SR : 11 * SR], "mp3"),
        not_audio=folder / "not_audio.mp3",
        empty=folder / "empty.mp3",
        too_short=write("too_short.wav", a[: int(0.2 * SR)], "wav"),
        silent=write("silent.wav", np.zeros(3 * SR, dtype=np.float32), "wav"),
        truncated=folder / "truncated.flac",
        truncated_wav=folder / "truncated.wav",
    )
    files.not_audio.write_text("This is a shopping list, not a song.\n" * 200)
    files.empty.write_bytes(b"")
    data = files.track_b.read_bytes()
    files.truncated.write_bytes(data[: int(len(data) * 0.4)])
    data = files.track_a.read_bytes()
    files.truncated_wav.write_bytes(data[: int(len(data) * 0.4)])
    return files
