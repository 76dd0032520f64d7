"""Decoding and validation on real ffmpeg, with files a user could plausibly hand us."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from encore.errors import BadAudio
from indexers.decode import load_audio, riff_shortfall
from tests.utils.audio import synth_track, write_audio

SR = 22050


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("decode") / "whole.wav"
    write_audio(path, synth_track(5, seconds=6, sr=SR), sr=SR, fmt="wav")
    return path


def test_a_whole_wav_loads_at_the_asked_rate(wav: Path) -> None:
    y, info = load_audio(wav, sr=8000)

    assert riff_shortfall(wav) is None
    assert info.sample_rate == SR
    assert y.dtype == np.float32
    assert abs(y.size / 8000 - 6.0) < 0.05


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_a_cut_wav_is_reported_truncated(wav: Path, tmp_path: Path, keep: float) -> None:
    data = wav.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: int(len(data) * keep)])

    declared, present = riff_shortfall(cut)  # type: ignore[misc]
    assert present < declared
    with pytest.raises(BadAudio, match="cut.wav: the file is truncated"):
        load_audio(cut, sr=8000)


def test_a_streamed_wav_with_unknown_length_is_not_called_truncated(wav: Path, tmp_path: Path) -> None:
    # Writers on a pipe cannot seek back, and leave the data size at 0xFFFFFFFF.
    data = bytearray(wav.read_bytes())
    pos = data.find(b"data")
    data[pos + 4 : pos + 8] = struct.pack("<I", 0xFFFFFFFF)
    streamed = tmp_path / "streamed.wav"
    streamed.write_bytes(bytes(data))

    assert riff_shortfall(streamed) is None
    y, _ = load_audio(streamed, sr=8000)
    assert abs(y.size / 8000 - 6.0) < 0.05


def test_files_that_are_not_wav_are_left_to_ffmpeg(tmp_path: Path) -> None:
    flac = tmp_path / "a.flac"
    write_audio(flac, synth_track(6, seconds=3, sr=SR), sr=SR, fmt="flac")
    tiny = tmp_path / "tiny.wav"
    tiny.write_bytes(b"RIFF")

    assert riff_shortfall(flac) is None
    assert riff_shortfall(tiny) is None
