"""Decoding and validation on real ffmpeg, with files a user could plausibly hand us; the in-process
decoder (PyAV) held to the ffmpeg program's answers on the same files."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import indexers.decode as decode_module
from encore.errors import BadAudio, EncoreError, NotAudio, TooLarge
from indexers.decode import Decoder, decode, decode_pyav, load_audio, pick_decoder, riff_shortfall
from tests.utils.audio import synth_track, write_audio
from tests.utils.bad_audio import BAD_CASES, UNUSUAL_FORMATS, make_bad_files, write_unusual

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


# --- the in-process decoder (PyAV) against the ffmpeg program ---------------------------------

#: load_audio as identify calls it: a file declaring more than an hour is refused, 60 s are analysed.
IDENTIFY = {"min_seconds": 1.0, "max_seconds": 3600.0, "truncate_to": 60.0}
GOOD_FORMATS = ("wav", "flac", "mp3", "ogg", "opus", "m4a", *sorted(UNUSUAL_FORMATS))


@pytest.fixture(scope="module")
def good_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("good")
    y = synth_track(31, seconds=8, sr=SR)
    files = {fmt: write_audio(folder / f"piece.{fmt}", y, sr=SR, fmt=fmt) for fmt in GOOD_FORMATS[:6]}
    files.update({kind: write_unusual(folder / kind, kind, y, sr=SR) for kind in UNUSUAL_FORMATS})
    return files


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, good_files: dict[str, Path]) -> dict[str, Path]:
    files = make_bad_files(tmp_path_factory.mktemp("bad"))
    # Names ffmpeg would read as a URL or a protocol if it were given them as they are.
    for name in ("http:x.mp3", "concat:piece.mp3|piece.flac.mp3"):
        files[name] = good_files["mp3"].with_name(name)
        files[name].write_bytes(good_files["mp3"].read_bytes())
    return files


def outcome(path: Path, decoder: Decoder, **kwargs: float) -> tuple[type[BaseException] | None, str]:
    try:
        y, _ = load_audio(path, sr=8000, decoder=decoder, **kwargs)  # type: ignore[arg-type]
    except EncoreError as e:
        return type(e), str(e)
    return None, f"{y.size} samples"


@pytest.mark.parametrize("case", [*(c.name for c in BAD_CASES), "http:x.mp3", "concat:piece.mp3|piece.flac.mp3"])
def test_both_decoders_refuse_bad_input_alike(bad_files: dict[str, Path], case: str) -> None:
    ffmpeg, pyav = outcome(bad_files[case], "ffmpeg", **IDENTIFY), outcome(bad_files[case], "pyav", **IDENTIFY)

    assert pyav[0] is ffmpeg[0], (ffmpeg, pyav)
    if case == "not_audio":  # the reason in brackets is each decoder's own
        assert pyav[1].startswith("shopping list.mp3: not an audio file ffmpeg can decode (")
        assert "/" not in pyav[1]  # no server paths
    else:
        assert pyav[1] == ffmpeg[1]


def test_a_declared_length_past_the_limit_is_refused_before_decoding(bad_files: dict[str, Path]) -> None:
    start = time.process_time()
    with pytest.raises(TooLarge, match="two hours.flac: 7200 s of audio is longer than the limit of 3600 s"):
        load_audio(bad_files["two_hours"], sr=8000, max_seconds=3600, decoder="pyav")
    assert time.process_time() - start < 0.5  # decoding the two hours takes seconds


@pytest.mark.parametrize("fmt", GOOD_FORMATS)
def test_both_decoders_give_the_same_samples(good_files: dict[str, Path], fmt: str) -> None:
    for sr in (8000, 16000):
        a, info_a = load_audio(good_files[fmt], sr=sr, **IDENTIFY)  # type: ignore[arg-type]
        b, info_b = load_audio(good_files[fmt], sr=sr, decoder="pyav", **IDENTIFY)  # type: ignore[arg-type]

        assert b.dtype == np.float32 and b.size == a.size
        assert np.corrcoef(a, b)[0, 1] > 0.999
        assert float(np.max(np.abs(a - b))) < 1e-3  # measured: at most 2e-7, none for PCM, FLAC and MP3
        assert (info_b.codec, info_b.duration_s, info_b.channels, info_b.sample_rate) == \
               (info_a.codec, info_a.duration_s, info_a.channels, info_a.sample_rate)
        assert info_b.tags.items() >= info_a.tags.items()  # ffmpeg's log loses keys longer than 16 characters


def test_the_cut_is_where_ffmpeg_makes_it(good_files: dict[str, Path]) -> None:
    for seconds in (2.0, 2.3337, 2.341, 0.5123):
        a, _ = decode(good_files["mp3"], sr=22050, max_seconds=seconds)
        b, _ = decode_pyav(good_files["mp3"], sr=22050, max_seconds=seconds)
        assert b.size == a.size and np.array_equal(a, b)


def test_a_corrupt_stretch_inside_an_mp3_is_decoded_around_as_ffmpeg_does(good_files: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    data = good_files["mp3"].read_bytes()
    third = len(data) // 3
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(data[:third] + np.random.default_rng(0).bytes(4000) + data[third + 4000:])

    a, _ = load_audio(damaged, sr=8000, **IDENTIFY)  # type: ignore[arg-type]
    b, _ = load_audio(damaged, sr=8000, decoder="pyav", **IDENTIFY)  # type: ignore[arg-type]
    assert b.size == a.size and np.corrcoef(a, b)[0, 1] > 0.999


def test_more_than_two_channels_are_normalised_as_ffmpeg_does(good_files: dict[str, Path]) -> None:
    y, info = decode_pyav(good_files["8ch_192kHz"], sr=8000)
    assert info.channels == 8 and info.sample_rate == 192000
    assert abs(float(np.max(np.abs(y))) - 1.0) < 1e-6  # eight like channels sum past full scale


def test_a_file_with_no_audio_stream_is_not_audio(tmp_path: Path) -> None:
    video = tmp_path / "picture.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=d=1:s=64x64:r=5",
                    "-c:v", "mpeg4", str(video)], check=True, capture_output=True, timeout=60)
    for decoder in ("ffmpeg", "pyav"):
        with pytest.raises(NotAudio, match="picture.mp4: not an audio file"):
            load_audio(video, sr=8000, decoder=decoder)  # type: ignore[arg-type]


def test_the_query_decoder_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pick_decoder("ffmpeg") == "ffmpeg"
    assert pick_decoder("pyav") == pick_decoder("auto") == "pyav"  # PyAV is a dependency
    monkeypatch.setattr(decode_module, "pyav_available", lambda: False)
    assert pick_decoder("auto") == "ffmpeg"
    with pytest.raises(EncoreError, match="needs PyAV"):
        pick_decoder("pyav")


def test_pyav_is_not_loaded_by_importing_the_service() -> None:
    code = "import sys, encore.service, encore.analysis, app.main; assert 'av' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
