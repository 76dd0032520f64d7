"""Decoding an identify clip: the ffmpeg program in a subprocess against PyAV in this process.

Method
------
1. Clips, synthesised (``tests/utils/audio.py``): ``--seconds`` (5) of music-like audio with white
   noise at 10 dB SNR, as ``bench/load.py`` sends them, written as MP3 at 64 kbps (44.1 kHz
   stereo, as a phone would upload it) and as 16-bit WAV (44.1 kHz stereo).
2. Each clip is loaded ``--repeats`` (50) times per decoder, the decoders alternating, through
   :func:`indexers.decode.load_audio` exactly as identify calls it (at the rate identify decodes
   at, ``--sr`` 16000, with every check), after one untimed warm-up each (PyAV's import).
3. Reported per decode, median and p90: CPU time (this process's ``time.process_time`` plus the
   children's user + system time from ``getrusage(RUSAGE_CHILDREN)``, so the ffmpeg process is
   counted) and wall time; the ratio of the CPU medians; and how far apart the two decoders'
   samples are (max absolute difference, correlation).

CPU time is the figure to trust on a shared machine; run it under ``taskset -c 0`` for one core.

Usage::

    python bench/decode.py [--repeats 50] [--seconds 5] [--sr 16000] [--out bench/out/decode.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from indexers.decode import load_audio  # noqa: E402
from tests.utils.audio import synth_track  # noqa: E402

DECODERS = ("ffmpeg", "pyav")


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def write_clip(path: Path, y: np.ndarray, *, sr: int, args: list[str]) -> Path:
    """``y`` (mono) written as a 44.1 kHz stereo file with ffmpeg output ``args``."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0",
           "-ar", "44100", "-ac", "2", *args, str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(y, dtype="<f4").tobytes(), check=True, capture_output=True)
    return path


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)) * 1e3, 2), "p90": round(float(np.percentile(values, 90)) * 1e3, 2)}


def measure(path: Path, *, sr: int, repeats: int) -> dict:
    kwargs = {"sr": sr, "min_seconds": 1.0, "max_seconds": 3600.0, "truncate_to": 60.0}
    samples = {d: load_audio(path, decoder=d, **kwargs)[0] for d in DECODERS}  # warm-up, untimed
    cpu: dict[str, list[float]] = {d: [] for d in DECODERS}
    wall: dict[str, list[float]] = {d: [] for d in DECODERS}
    for _ in range(repeats):
        for d in DECODERS:
            c0, w0 = _cpu(), time.perf_counter()
            load_audio(path, decoder=d, **kwargs)
            wall[d].append(time.perf_counter() - w0)
            cpu[d].append(_cpu() - c0)
    a, b = samples["ffmpeg"], samples["pyav"]
    n = min(a.size, b.size)
    return {
        "file": path.name, "bytes": path.stat().st_size,
        "cpu_ms": {d: _stats(cpu[d]) for d in DECODERS},
        "wall_ms": {d: _stats(wall[d]) for d in DECODERS},
        "cpu_ratio": round(float(np.median(cpu["ffmpeg"]) / np.median(cpu["pyav"])), 1),
        "samples": [int(a.size), int(b.size)],
        "max_abs_diff": float(np.max(np.abs(a[:n] - b[:n]))),
        "correlation": round(float(np.corrcoef(a[:n], b[:n])[0, 1]), 7),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sr", type=int, default=16000, help="rate decoded at (identify with embedding: 16000)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    src_sr = 22050
    y = synth_track(77, seconds=args.seconds, sr=src_sr)
    rng = np.random.default_rng(77)
    power = float(np.mean(np.square(y, dtype=np.float64)))
    y = (y + rng.normal(0.0, np.sqrt(power / 10.0), y.size)).astype(np.float32)
    y /= max(1.0, float(np.max(np.abs(y))) / 0.99)
    rows = []
    with tempfile.TemporaryDirectory(prefix="encore-decode-bench-") as tmp:
        clips = [write_clip(Path(tmp) / "clip.mp3", y, sr=src_sr, args=["-c:a", "libmp3lame", "-b:a", "64k"]),
                 write_clip(Path(tmp) / "clip.wav", y, sr=src_sr, args=["-c:a", "pcm_s16le"])]
        for clip in clips:
            row = measure(clip, sr=args.sr, repeats=args.repeats)
            rows.append(row)
            f, p = row["cpu_ms"]["ffmpeg"], row["cpu_ms"]["pyav"]
            print(f"{row['file']:9s} CPU ms per decode, median (p90): ffmpeg {f['median']} ({f['p90']}), "
                  f"pyav {p['median']} ({p['p90']}): {row['cpu_ratio']}x; wall median ffmpeg "
                  f"{row['wall_ms']['ffmpeg']['median']}, pyav {row['wall_ms']['pyav']['median']}; "
                  f"max |diff| {row['max_abs_diff']:.2e}, corr {row['correlation']}")
    import av

    report = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "python": platform.python_version(),
              "av": av.__version__, "seconds": args.seconds, "sr": args.sr, "repeats": args.repeats, "clips": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
