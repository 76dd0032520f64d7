"""Files a user could plausibly hand Encore by mistake, and valid audio in unusual shapes.

Everything is synthesised with ffmpeg at test time: the bad-input matrices over HTTP
(``tests/app/test_bad_input.py``) and the CLI (``tests/test_cli_bad_input.py``) share these
factories, so both surfaces are held to the same cases and the same words.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import indexers.decode
from tests.utils.audio import synth_track, write_audio

__all__ = ["BAD_CASES", "UNUSUAL_FORMATS", "BadCase", "decoders_run", "encode", "make_bad_files", "write_unusual"]

SR = 22050
#: Longer than the default ``max_audio_seconds`` (3600 s).
TWO_HOURS_S = 7200


@dataclass(frozen=True)
class BadCase:
    """A file that must be refused: the HTTP status and the words a user reads in the message.

    ``voice`` is the answer of voice search when it differs: its limit is 15 s, so a long file is
    refused for its length there before anything else is looked at.
    """

    name: str
    file: str
    code: int
    words: str
    voice: tuple[int, str] | None = None


BAD_CASES: tuple[BadCase, ...] = (
    BadCase("not_audio", "shopping list.mp3", 415, "not an audio file"),
    BadCase("zero_bytes", "empty.mp3", 400, "empty (0 bytes)"),
    BadCase("truncated_mp3", "cut.mp3", 400, "truncated"),
    BadCase("truncated_ogg", "cut.ogg", 400, "truncated"),
    BadCase("truncated_flac", "cut.flac", 400, "truncated"),
    BadCase("truncated_wav", "cut.wav", 400, "truncated"),
    BadCase("too_short_0.2s", "blip.wav", 400, "too short"),
    BadCase("silence_10min", "silence.flac", 400, "silent", voice=(413, "longer than the limit of 15 s")),
    BadCase("two_hours", "two hours.flac", 413, "longer than the limit of 3600 s",
            voice=(413, "longer than the limit of 15 s")),
)


def encode(path: Path, y: np.ndarray, *, sr: int, args: list[str]) -> Path:
    """Encode mono float samples to ``path`` with extra ffmpeg output ``args`` (filters, rate, codec)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0",
           *args, str(path)]
    proc = subprocess.run(cmd, input=np.ascontiguousarray(y, dtype="<f4").tobytes(), capture_output=True,
                          check=False, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path.name}: {proc.stderr.decode('utf-8', 'replace')[-300:]}")
    return path


def _lavfi(path: Path, source: str, *, args: list[str]) -> Path:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, *args, str(path)]
    subprocess.run(cmd, capture_output=True, check=True, timeout=300)
    return path


def _cut(whole: Path, path: Path, *, keep: float = 0.4) -> Path:
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_bad_files(folder: Path) -> dict[str, Path]:
    """Write one file per :data:`BAD_CASES` entry into ``folder``; returns ``{case name: path}``.

    The truncated files are cut to 40 percent of a 12 s piece, so that they stay under voice
    search's 15 s limit and are refused for being cut, on every endpoint. The two-hour file is
    FLAC of a constant level (not silence), so it is small (1.3 MB) and refused only for its length.
    """
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {case.name: folder / case.file for case in BAD_CASES}
    by_name["not_audio"].write_text("This is a shopping list, not a song.\n" * 200)
    by_name["zero_bytes"].write_bytes(b"")
    piece = synth_track(404, seconds=12, sr=SR)
    for fmt in ("mp3", "ogg", "flac", "wav"):
        whole = write_audio(folder / f"whole.{fmt}", piece, sr=SR, fmt=fmt)
        _cut(whole, by_name[f"truncated_{fmt}"])
    write_audio(by_name["too_short_0.2s"], piece[: int(0.2 * SR)], sr=SR, fmt="wav")
    _lavfi(by_name["silence_10min"], "anullsrc=r=22050:cl=mono", args=["-t", "600", "-c:a", "flac"])
    _lavfi(by_name["two_hours"], f"aevalsrc=0.02:s=8000:d={TWO_HOURS_S}",
           args=["-sample_fmt", "s16", "-c:a", "flac"])
    return by_name


#: Valid audio in shapes a phone or a studio produces: accepted (downmixed, resampled), never refused.
UNUSUAL_FORMATS: dict[str, tuple[str, list[str]]] = {
    "8ch_192kHz": ("flac", ["-af", "pan=7.1|" + "|".join(f"c{i}=c0" for i in range(8)), "-ar", "192000",
                            "-c:a", "flac"]),
    "8kHz_ulaw": ("wav", ["-ar", "8000", "-c:a", "pcm_mulaw"]),
}


def write_unusual(path_stem: Path, kind: str, y: np.ndarray, *, sr: int) -> Path:
    """``y`` written as one of :data:`UNUSUAL_FORMATS` (``path_stem`` gets the format's suffix)."""
    suffix, args = UNUSUAL_FORMATS[kind]
    return encode(path_stem.with_name(f"{path_stem.name}.{suffix}"), y, sr=sr, args=args)


@contextmanager
def decoders_run() -> Iterator[list[str]]:
    """Record the decoder (``ffmpeg`` or ``pyav``) of every :func:`indexers.decode.load_audio` call
    made in this process meanwhile; yields the list the names are appended to."""
    ran: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for name, run in list(indexers.decode._DECODERS.items()):
            def spy(*args: object, _name: str = name, _run=run, **kwargs: object):  # noqa: ANN202
                ran.append(_name)
                return _run(*args, **kwargs)

            mp.setitem(indexers.decode._DECODERS, name, spy)
        yield ran
