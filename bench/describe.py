"""Audio descriptors on real music: how fast :func:`indexers.describe.describe` runs, and how its
tempo, energy, danceability, loudness and key spread over real tracks.

Tracks are those of ``bench/music.py``'s manifest (game soundtracks from Debian packages); run
``python bench/music.py`` first to download them. Each track is decoded whole at ``--sr`` (not
timed), then ``describe`` runs on it (timed; it analyses at most the middle 60 s). Speed is
reported per 30 s of analysed audio, as wall time and as CPU time of this process: the CPU figure
is the one to trust on a busy machine. BLAS is held to one thread, so run it under
``taskset -c 0`` for single-core figures.

There is no ground truth for these tracks: this is a sanity check (orchestral scores should come
out less danceable than chiptune, tempi should spread around 80-170 BPM, few keys should be
identified with low confidence), not an accuracy measurement; the unit tests measure accuracy on
synthesised audio.

Usage::

    python bench/describe.py [--cache bench/.cache/music] [--sr 22050] [--tracks N] [--out bench/out/describe.json]
"""

from __future__ import annotations

import os

# One BLAS thread: the speed target is per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from encore.errors import EncoreError  # noqa: E402
from indexers.decode import decode  # noqa: E402
from indexers.describe import DescribeParams, describe  # noqa: E402

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "music"
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "describe.json"
FIELDS = ("tempo", "energy", "danceability", "loudness", "key_confidence")


def _quantiles(values: list[float]) -> dict[str, float]:
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return dict(zip(("p5", "p25", "median", "p75", "p95"), (round(float(x), 3) for x in q), strict=True))


def run(args: argparse.Namespace) -> dict:
    manifest = Path(args.cache) / "manifest.json"
    tracks = json.loads(manifest.read_text())["tracks"]
    if args.tracks:
        tracks = tracks[: args.tracks]
    params = DescribeParams()
    rows, failures = [], []
    for i, track in enumerate(tracks, 1):
        path = Path(args.cache) / track["path"]
        try:
            y, _ = decode(path, sr=args.sr)
            wall, cpu = time.perf_counter(), time.process_time()
            d = describe(y, sr=args.sr, params=params)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        except EncoreError as err:
            failures.append({"id": track["id"], "error": str(err)})
            continue
        rows.append({"id": track["id"], "package": track["package"], "style": track.get("style"),
                     "duration_s": track["duration_s"], "wall_s": wall, "cpu_s": cpu, **asdict(d)})
        if i % 20 == 0:
            print(f"{i}/{len(tracks)}", file=sys.stderr)
    if not rows:
        raise SystemExit("no track could be described")

    per30_wall = [r["wall_s"] * 30.0 / r["seconds"] for r in rows]
    per30_cpu = [r["cpu_s"] * 30.0 / r["seconds"] for r in rows]
    by_package: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_package[r["package"]].append(r)
    return {
        "config": {"sr": args.sr, "tracks": len(rows), "failed": failures, "params": params.to_dict()},
        "speed": {
            "median_wall_s_per_30s": round(float(np.median(per30_wall)), 4),
            "median_cpu_s_per_30s": round(float(np.median(per30_cpu)), 4),
            "p95_cpu_s_per_30s": round(float(np.percentile(per30_cpu, 95)), 4),
            "x_real_time_cpu": round(float(np.sum([r["seconds"] for r in rows]) / np.sum([r["cpu_s"] for r in rows])), 1),
        },
        "distribution": {f: _quantiles([r[f] for r in rows]) for f in FIELDS},
        "modes": dict(Counter(r["mode"] for r in rows)),
        "keys": dict(Counter(f"{r['key']} {r['mode']}" for r in rows).most_common()),
        "by_package": {
            pkg: {"tracks": len(rs), "style": rs[0]["style"],
                  **{f: round(float(np.median([r[f] for r in rs])), 3) for f in FIELDS}}
            for pkg, rs in sorted(by_package.items())
        },
        "tracks": rows,
    }


def summary(report: dict) -> str:
    speed = report["speed"]
    lines = [
        f"{report['config']['tracks']} tracks at {report['config']['sr']} Hz "
        f"({len(report['config']['failed'])} failed)",
        f"speed: median {speed['median_cpu_s_per_30s']:.3f} s CPU ({speed['median_wall_s_per_30s']:.3f} s wall) "
        f"per 30 s of audio, p95 {speed['p95_cpu_s_per_30s']:.3f} s; {speed['x_real_time_cpu']:.0f}x real time (CPU)",
        "",
        "| descriptor | p5 | p25 | median | p75 | p95 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f, q in report["distribution"].items():
        lines.append(f"| {f} | {q['p5']:.2f} | {q['p25']:.2f} | {q['median']:.2f} | {q['p75']:.2f} | {q['p95']:.2f} |")
    lines += ["", f"modes: {report['modes']}",
              "keys: " + ", ".join(f"{k} ({n})" for k, n in list(report["keys"].items())[:8]) + ", ...", "",
              "| package | tracks | tempo | energy | danceability | loudness | key conf. | style |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for pkg, s in report["by_package"].items():
        lines.append(f"| {pkg} | {s['tracks']} | {s['tempo']:.0f} | {s['energy']:.2f} | {s['danceability']:.2f} | "
                     f"{s['loudness']:.1f} | {s['key_confidence']:.2f} | {s['style']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--sr", type=int, default=22050)
    parser.add_argument("--tracks", type=int, default=0, help="only the first N tracks (0: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.cache / "manifest.json").is_file():
        print(f"no music under {args.cache}: run `python bench/music.py` first", file=sys.stderr)
        return 1
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(summary(report))
    print(f"\nper-track results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
