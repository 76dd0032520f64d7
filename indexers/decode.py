"""Decode anything ffmpeg reads into mono float32 at the rate a pipeline needs, and validate it once.

After :func:`load_audio` returns, the samples are finite, mono, at least ``min_seconds`` long and
not silent: later stages trust them.

Two decoders with one contract. :func:`decode` runs the ffmpeg program in a subprocess: ingest
always uses it, because catalog track ids are the SHA-1 of its samples
(:func:`encore.catalog.content_id`) and must not move. :func:`decode_pyav` decodes in this
process through PyAV (the ``av`` wheel, FFmpeg's libraries inside it): no process start-up, about
an eighth of the CPU for a 5 s MP3 clip (``bench/decode.py``), so identify and voice clips use it
(``ENCORE_QUERY_DECODER``, :func:`pick_decoder`). The two agree to within float rounding (identical
for PCM, FLAC and MP3 in the tests), not necessarily bit for bit (different FFmpeg builds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from encore.errors import BadAudio, EncoreError, NotAudio, TooLarge

if TYPE_CHECKING:
    from collections.abc import Callable

    import av

#: Below this RMS (about -70 dBFS) a clip is treated as silence.
SILENCE_RMS = 3e-4

#: A decoder by name: ``ffmpeg`` (the subprocess, :func:`decode`) or ``pyav`` (:func:`decode_pyav`).
Decoder = Literal["ffmpeg", "pyav"]


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What ffprobe says about a file before decoding."""

    codec: str
    duration_s: float | None
    channels: int
    sample_rate: int
    tags: dict[str, str]


def _ffmpeg_input(path: Path) -> str:
    """``path`` as ffmpeg must be given it: absolute, so that a file named ``http:song.mp3`` or
    ``concat:a.mp3|b.mp3`` is read as that file, never as a URL or one of ffmpeg's protocols."""
    return str(path.absolute())


def _too_long(name: str, seconds: float, limit: float) -> TooLarge:
    return TooLarge(f"{name}: {seconds:.0f} s of audio is longer than the limit of {limit:.0f} s")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EncoreError(f"{name} is not installed; install ffmpeg (apt-get install ffmpeg)")
    return path


def _existing_file(path: str | Path) -> Path:
    """``path`` as a Path, or :class:`BadAudio` when there is no such file or it is empty."""
    path = Path(path)
    if not path.is_file():
        raise BadAudio(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise BadAudio(f"{path.name}: the file is empty (0 bytes)")
    return path


def probe(path: str | Path) -> AudioInfo:
    """Read the first audio stream's description, or raise :class:`NotAudio`."""
    path = _existing_file(path)
    cmd = [_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
           "-select_streams", "a:0", _ffmpeg_input(path)]
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


_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.M)
_AUDIO = re.compile(r"^\s*Stream #0:\d+.*?: Audio: ([^,\s]+)[^,]*, (\d+) Hz, ([^,]+)", re.M)
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def _parse_log(log: str) -> AudioInfo | None:
    """The input's description from ffmpeg's own log (saves running ffprobe as well)."""
    head = log.split("Stream mapping:")[0]
    audio = _AUDIO.search(head)
    if audio is None:
        return None
    dur = _DURATION.search(head)
    duration = None
    if dur is not None:
        h, m, sec = dur.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(sec)
    layout = audio.group(3).strip().split("(")[0].strip()
    channels = _CHANNELS.get(layout) or int((re.match(r"(\d+) channels", layout) or [0, 0])[1])
    tags = {}
    for line in head.splitlines():
        key, sep, value = line.strip().partition(" : ")
        if sep and key.strip() and " " not in key.strip():
            tags.setdefault(key.strip().lower(), value.strip())
    return AudioInfo(codec=audio.group(1), duration_s=duration, channels=channels,
                     sample_rate=int(audio.group(2)), tags=tags)


def riff_shortfall(path: str | Path) -> tuple[int, int] | None:
    """For a RIFF/WAVE file, the data chunk's declared size and the bytes actually present.

    ffmpeg sizes a WAV's duration from the file itself, so a cut WAV decodes without complaint;
    its header still declares the full length. Returns ``(declared, present)`` when fewer bytes
    are present than declared, else None (not a WAV, streaming header with unknown size, or whole).
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mark a length unknown when the header was written (pipes, RF64).
                if chunk_size in (0, 0xFFFFFFFF):
                    return None
                present = size - pos - 8
                return (chunk_size, present) if present < chunk_size else None
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def ogg_shortfall(path: str | Path) -> tuple[int, int] | None:
    """For an Ogg file (Vorbis, Opus, FLAC in Ogg), the last page's declared size and the bytes present.

    ffmpeg takes an Ogg file's duration from its last whole page, so a file cut short (an
    interrupted download or copy) decodes without complaint, as a shorter piece. Its pages still
    tell: walking them from the start, the last one runs past the end of the file. Returns
    ``(declared, present)`` for that page, else None (not Ogg, or whole).
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        pos = 0
        while pos < size:
            f.seek(pos)
            header = f.read(27)
            if not header.startswith(b"OggS"[: len(header)]) or (pos == 0 and len(header) < 27):
                return None  # not Ogg, or something other than a page after the last one: ffmpeg's call
            if len(header) < 27:
                return 27, len(header)  # cut inside a page header
            lacing = f.read(header[26])
            page = 27 + header[26] + sum(lacing)
            if len(lacing) < header[26] or pos + page > size:
                return page, size - pos
            pos += page
    return None


def decode(
    path: str | Path, *, sr: int, max_seconds: float | None = None, longest: float | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """Decode the first audio stream of ``path`` to mono float32 at ``sr`` Hz, without validation.

    Parameters
    ----------
    path : file ffmpeg can read
    sr : target sample rate in Hz
    max_seconds : decode at most this many seconds (None: all)
    longest : refuse a file whose header declares more seconds than this, as soon as ffmpeg has
        read the header (a two-hour upload costs no decoding)

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    info : AudioInfo, read from ffmpeg's log

    Raises
    ------
    NotAudio
        when ffmpeg finds no audio stream it can decode.
    TooLarge
        when the declared duration is past ``longest``.
    """
    path = _existing_file(path)
    source = _ffmpeg_input(path)
    cmd = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", source,
           "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sr)]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.3f}"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    # The log goes to a file so stdout can be read in one large read (a pipe drained through
    # communicate() costs more than the decoding itself).
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            with proc.stdout:  # type: ignore[union-attr]
                # ffmpeg describes its input before it writes any sample: once the first bytes are
                # here, the log holds the declared duration. pread leaves the shared offset alone.
                first = proc.stdout.read1(1 << 16)  # type: ignore[union-attr]
                if longest is not None and first:
                    declared = _parse_log(os.pread(err.fileno(), 1 << 20, 0).decode("utf-8", "replace"))
                    if declared is not None and declared.duration_s and declared.duration_s > longest:
                        raise _too_long(path.name, declared.duration_s, longest)
                raw = first + proc.stdout.read()  # type: ignore[union-attr]
            returncode = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:  # refused early: ffmpeg is still decoding
                proc.kill()
                proc.wait()
        err.seek(0)
        log = err.read().decode("utf-8", "replace")
    y = np.frombuffer(raw, dtype="<f4")
    info = _parse_log(log)
    if info is None or (returncode != 0 and y.size == 0):
        # ffmpeg's lines name the full path: keep only the file name (no server paths in answers).
        last = [ln.replace(source, path.name).replace(str(path), path.name)
                for ln in log.strip().splitlines() if ln.strip()]
        reason = last[-1].strip() if last else "unknown error"
        raise NotAudio(f"{path.name}: not an audio file ffmpeg can decode ({reason})")
    return _normalise_downmix(y.astype(np.float32, copy=True), info), info


def _normalise_downmix(y: np.ndarray, info: AudioInfo) -> np.ndarray:
    """``y`` (owned, float32) scaled to peak 1 when it was downmixed from more than two channels."""
    if info.channels > 2:
        # ffmpeg's float downmix is not normalised: eight like channels sum to three times full
        # scale, which would clip wherever samples become 16-bit (speech, content ids) and skew
        # loudness. Mono and stereo are left as they always were, so their track ids stay put.
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if peak > 1.0:
            y /= peak
    return y


#: Decoder names FFmpeg's libraries give where the ffmpeg program's log names the codec.
_CODEC_NAMES = {"mp3float": "mp3", "mp2float": "mp2", "mp1float": "mp1", "aac_fixed": "aac", "ac3_fixed": "ac3"}


def _pyav_info(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> AudioInfo:
    """The :class:`AudioInfo` :func:`decode` reads from ffmpeg's log, from PyAV's objects."""
    duration = None
    if container.duration is not None and container.duration > 0:
        # As ffmpeg prints it ("Duration: 00:00:05.04"): microseconds rounded to hundredths.
        duration = ((int(container.duration) + 5000) // 10000) / 100
    tags: dict[str, str] = {}
    for key, value in (*container.metadata.items(), *stream.metadata.items()):
        tags.setdefault(str(key).lower(), str(value).strip())
    ctx = stream.codec_context
    return AudioInfo(codec=_CODEC_NAMES.get(ctx.name, ctx.name), duration_s=duration, channels=int(ctx.channels or 0),
                     sample_rate=int(ctx.sample_rate or 0), tags=tags)


def _av_reason(error: BaseException) -> str:
    """An FFmpeg error's own words, without the file name PyAV appends (no server paths in answers)."""
    return str(getattr(error, "strerror", None) or type(error).__name__)


def decode_pyav(
    path: str | Path, *, sr: int, max_seconds: float | None = None, longest: float | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """:func:`decode` in this process, through PyAV: the same contract without an ffmpeg run.

    The file is opened here and handed to FFmpeg's libraries as a Python file object, so its name
    is never read as a URL or one of FFmpeg's protocols (``http:x.mp3``, ``concat:a|b.mp3``). The
    first audio stream is decoded and downmixed and resampled by ``av.AudioResampler`` (FFmpeg's
    swresample, as the ffmpeg program uses). Like the ffmpeg program, a packet that fails to decode
    is skipped and a read error ends the input: what decoded before it is returned, for
    :func:`load_audio`'s truncation checks to judge.

    Parameters
    ----------
    path : file FFmpeg can read
    sr : target sample rate in Hz
    max_seconds : decode at most this many seconds (None: all)
    longest : refuse a file whose header declares more seconds than this, before decoding

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    info : AudioInfo, as :func:`decode` reads it from ffmpeg's log (duration in hundredths)

    Raises
    ------
    BadAudio
        when the file is missing or empty.
    NotAudio
        when FFmpeg finds no audio stream it can decode, or no sample of it decodes.
    TooLarge
        when the declared duration is past ``longest``.
    """
    import av  # here, not at import time: only processes that decode clips in-process load FFmpeg

    path = _existing_file(path)
    # Where ffmpeg's -t (given to the millisecond, as decode() does) cuts: the nearest sample.
    limit = None if max_seconds is None else int(round(float(f"{max_seconds:.3f}") * sr))
    chunks: list[np.ndarray] = []
    have = 0
    failure: BaseException | None = None

    def resampled(frames: list[av.AudioFrame]) -> None:
        nonlocal have
        for frame in frames:
            y = frame.to_ndarray().reshape(-1)
            chunks.append(y)
            have += y.size

    with path.open("rb") as f:
        try:
            container = av.open(f, mode="r")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
            raise NotAudio(f"{path.name}: not an audio file ffmpeg can decode ({_av_reason(e)})") from None
        with container:
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is None or stream.codec_context is None:
                raise NotAudio(f"{path.name}: not an audio file ffmpeg can decode (no audio stream)")
            info = _pyav_info(container, stream)
            if longest is not None and info.duration_s and info.duration_s > longest:
                raise _too_long(path.name, info.duration_s, longest)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)

            def feed(frames: list[av.AudioFrame]) -> None:
                nonlocal resampler
                for frame in frames:
                    try:
                        resampled(resampler.resample(frame))
                    except ValueError:  # the stream changed rate or layout: drain, start a new resampler
                        resampled(resampler.resample(None))
                        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
                        resampled(resampler.resample(frame))

            try:
                for packet in container.demux(stream):  # ends with an empty packet that drains the decoder
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as e:  # a bad packet: skipped, as the ffmpeg program does
                        failure = e
                        continue
                    feed(frames)
                    if limit is not None and have >= limit:
                        break
            except av.FFmpegError as e:  # unreadable from here on: the input ends, the decoder drains
                failure = e
                try:
                    feed(stream.codec_context.decode(None))
                except av.FFmpegError:
                    pass
            resampled(resampler.resample(None))
    if have == 0 and failure is not None:
        raise NotAudio(f"{path.name}: not an audio file ffmpeg can decode ({_av_reason(failure)})")
    y = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if limit is not None:
        y = y[:limit]
    return _normalise_downmix(y.astype(np.float32, copy=False), info), info


@lru_cache(maxsize=1)
def pyav_available() -> bool:
    """Whether PyAV imports here (the first call imports it)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def pick_decoder(choice: Literal["auto", "pyav", "ffmpeg"]) -> Decoder:
    """The decoder a setting names: ``auto`` is PyAV where it imports, else the ffmpeg subprocess.

    Raises
    ------
    EncoreError
        when ``pyav`` is asked for and PyAV is not installed.
    """
    if choice == "ffmpeg":
        return "ffmpeg"
    if pyav_available():
        return "pyav"
    if choice == "pyav":
        raise EncoreError("the pyav query decoder needs PyAV: pip install av (or set ENCORE_QUERY_DECODER=ffmpeg)")
    return "ffmpeg"


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """``y`` [shape=(n,)] resampled from ``orig_sr`` to ``target_sr`` (polyphase, anti-aliased), float32."""
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(orig_sr), int(target_sr))
    return resample_poly(np.asarray(y, dtype=np.float64), target_sr // g, orig_sr // g).astype(np.float32)


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
    decoder: Decoder = "ffmpeg",
) -> tuple[np.ndarray, AudioInfo]:
    """Decode and validate ``path`` (one ffmpeg run, or one in-process decode).

    Parameters
    ----------
    sr : target sample rate
    min_seconds : shorter audio is rejected (:class:`BadAudio`)
    max_seconds : longer audio is rejected (:class:`TooLarge`); no more than this is decoded, and a
        file whose header declares more is refused before decoding
    truncate_to : decode only the first ``truncate_to`` seconds (identify clips); a file declaring
        more than ``max_seconds`` is still refused
    decoder : ``ffmpeg``, the subprocess (:func:`decode`; ingest keeps it: track ids are hashes of
        its samples), or ``pyav``, in this process (:func:`decode_pyav`; query clips). Every check
        here applies to both.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    info : AudioInfo
    """
    name = Path(path).name
    limit = truncate_to if truncate_to is not None else (max_seconds + 1.0 if max_seconds else None)
    run = _DECODERS[decoder]
    y, info = run(path, sr=sr, max_seconds=limit, longest=max_seconds)
    if max_seconds is not None and truncate_to is None:
        # A header without a duration (a stream) is held to the limit by what decodes.
        seconds = max(info.duration_s or 0.0, y.size / sr)
        if seconds > max_seconds:
            raise _too_long(name, seconds, max_seconds)
    cut = riff_shortfall(path)
    if cut is not None:
        declared_bytes, present = cut
        raise BadAudio(f"{name}: the file is truncated (the WAV header declares {declared_bytes} bytes of "
                       f"audio, {present} are present)")
    cut = ogg_shortfall(path)
    if cut is not None:
        declared_bytes, present = cut
        raise BadAudio(f"{name}: the file is truncated (its last Ogg page declares {declared_bytes} bytes, "
                       f"{present} are present)")
    declared = info.duration_s
    wanted = min(declared, truncate_to) if (declared and truncate_to) else declared
    if wanted and wanted > 2.0 and y.size / sr < 0.9 * wanted - 0.5:
        raise BadAudio(
            f"{name}: the file is truncated or corrupt (decoded {y.size / sr:.1f} s of {wanted:.1f} s declared)"
        )
    return validate(y, sr=sr, min_seconds=min_seconds, name=name), info


_DECODERS: dict[str, Callable[..., tuple[np.ndarray, AudioInfo]]] = {"ffmpeg": decode, "pyav": decode_pyav}
