"""Decode anything ffmpeg reads into mono float32 at the rate a pipeline needs, and validate it once.

After :func:`load_audio` returns, the samples are finite, mono, at least ``min_seconds`` long and
not silent: later stages trust them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encore.errors import BadAudio, EncoreError, NotAudio, TooLarge

#: Below this RMS (about -70 dBFS) a clip is treated as silence.
SILENCE_RMS = 3e-4


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What ffprobe says about a file before decoding."""

    codec: str
    duration_s: float | None
    channels: int
    sample_rate: int
    tags: dict[str, str]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EncoreError(f"{name} is not installed; install ffmpeg (apt-get install ffmpeg)")
    return path


def probe(path: str | Path) -> AudioInfo:
    """Read the first audio stream's description, or raise :class:`NotAudio`."""
    path = Path(path)
    if not path.is_file():
        raise BadAudio(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise BadAudio(f"{path.name}: the file is empty (0 bytes)")
    cmd = [_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
           "-select_streams", "a:0", str(path)]
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    try:
        info = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError:
        info = {}
    streams = info.get("streams") or []
    if proc.returncode != 0 or not streams:
        raise NotAudio(f"{path.name}: not an audio file ffmpeg can decode")
    stream, fmt = streams[0], info.get("format", {})
    duration = stream.get("duration") or fmt.get("duration")
    tags = {str(k).lower(): str(v) for k, v in {**fmt.get("tags", {}), **stream.get("tags", {})}.items()}
    return AudioInfo(
        codec=str(stream.get("codec_name", "?")),
        duration_s=float(duration) if duration not in (None, "N/A") else None,
        channels=int(stream.get("channels") or 0),
        sample_rate=int(stream.get("sample_rate") or 0),
        tags=tags,
    )


def decode(path: str | Path, *, sr: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 at ``sr`` Hz, without validation.

    Parameters
    ----------
    path : file ffmpeg can read
    sr : target sample rate in Hz
    max_seconds : decode at most this many seconds (None: all)

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    """
    cmd = [_tool("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn",
           "-ac", "1", "-ar", str(sr)]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.3f}"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    y = np.frombuffer(proc.stdout, dtype="<f4")
    if proc.returncode != 0 and y.size == 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NotAudio(f"{Path(path).name}: ffmpeg could not decode it ({msg[-1] if msg else 'unknown error'})")
    return y.astype(np.float32, copy=True)


def validate(y: np.ndarray, *, sr: int, min_seconds: float = 1.0, name: str = "audio") -> np.ndarray:
    """Check decoded samples once: finite, mono, long enough, not silent. Returns ``y`` (float32).

    Raises
    ------
    BadAudio
        with a message naming what is wrong.
    """
    if y.ndim != 1:
        raise BadAudio(f"{name}: expected mono samples, got shape {y.shape}")
    if y.size == 0:
        raise BadAudio(f"{name}: no audio samples could be decoded")
    if not np.all(np.isfinite(y)):
        raise BadAudio(f"{name}: the audio holds non-finite samples")
    seconds = y.size / sr
    if seconds < min_seconds:
        raise BadAudio(f"{name}: {seconds:.2f} s of audio is too short (at least {min_seconds:g} s needed)")
    if float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) < SILENCE_RMS:
        raise BadAudio(f"{name}: the audio is silent")
    return y.astype(np.float32, copy=False)


def load_audio(
    path: str | Path,
    *,
    sr: int,
    min_seconds: float = 1.0,
    max_seconds: float | None = None,
    truncate_to: float | None = None,
) -> tuple[np.ndarray, AudioInfo]:
    """Probe, decode and validate ``path``.

    Parameters
    ----------
    sr : target sample rate
    min_seconds : shorter audio is rejected (:class:`BadAudio`)
    max_seconds : longer audio is rejected (:class:`TooLarge`), judged from the container first
    truncate_to : decode only the first ``truncate_to`` seconds (identify clips)

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    info : AudioInfo
    """
    name = Path(path).name
    info = probe(path)
    if max_seconds is not None and info.duration_s is not None and info.duration_s > max_seconds:
        raise TooLarge(f"{name}: {info.duration_s:.0f} s of audio is longer than the limit of {max_seconds:.0f} s")
    limit = truncate_to if truncate_to is not None else (max_seconds + 1.0 if max_seconds else None)
    y = decode(path, sr=sr, max_seconds=limit)
    if max_seconds is not None and truncate_to is None and y.size / sr > max_seconds:
        raise TooLarge(f"{name}: the audio is longer than the limit of {max_seconds:.0f} s")
    declared = info.duration_s
    wanted = min(declared, truncate_to) if (declared and truncate_to) else declared
    if wanted and wanted > 2.0 and y.size / sr < 0.9 * wanted - 0.5:
        raise BadAudio(
            f"{name}: the file is truncated or corrupt (decoded {y.size / sr:.1f} s of {wanted:.1f} s declared)"
        )
    return validate(y, sr=sr, min_seconds=min_seconds, name=name), info
