"""World tier on real audio: embedding ingest speed and neighbour quality.

Method
------
1. Tracks: the manifest of ``bench/music.py`` (160 tracks, 10 h of game soundtracks from 10 Debian
   packages; each package is one game's soundtrack, mostly one composer or a small team).
2. Ingest: each file goes through ``Encore.add_world_file`` (one ffmpeg decode at 16 kHz, musicnn
   on up to ``ENCORE_MUSICNN_MAX_PATCHES`` evenly spread 3 s patches, descriptors, upsert) into an
   embedded store in a temporary folder. Reported: audio seconds per wall second ("x real time")
   over the whole ingest, and the split between decode, embedding and descriptors measured on the
   same tracks stage by stage.
3. Quality: for every track, its 10 nearest world neighbours (``similar_to_track``); the share of
   them from the same package (same soundtrack), against the share a random draw of 10 other
   tracks would give (the baseline), and the same for the ``tags`` space.

Usage::

    python bench/world_audio.py [--tracks 160] [--cache bench/.cache/music]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import music  # noqa: E402  (bench/music.py, a sibling script)

from encore.config import Settings  # noqa: E402
from encore.service import Encore  # noqa: E402
from indexers.decode import load_audio  # noqa: E402
from indexers.describe import describe  # noqa: E402
from indexers.metadata import TrackInfo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=None, help="use the first N tracks of the manifest")
    ap.add_argument("--stage-tracks", type=int, default=20, help="tracks timed stage by stage")
    ap.add_argument("--cache", type=Path, default=music.DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "world_audio.json")
    args = ap.parse_args()

    tracks = music.manifest(args.cache)[: args.tracks]
    audio_s = sum(t["duration_s"] for t in tracks)
    with tempfile.TemporaryDirectory(prefix="encore-world-bench-") as tmp:
        enc = Encore.open(Settings(data_dir=Path(tmp) / "data", qdrant_url=None))
        enc.warm_up()
        ids: dict[str, str] = {}
        started = time.perf_counter()
        for t in tqdm(tracks, desc="world add", unit="track", file=sys.stderr):
            info = TrackInfo(title=t["title"], artist=t["artist"], album=t["package"])
            ids[enc.add_world_file(t["path"], info=info).track_id] = t["package"]
        ingest_s = time.perf_counter() - started
        stages = _stages(enc, tracks[: args.stage_tracks])
        quality = {space: _quality(enc, ids, space) for space in ("musicnn", "tags")}
        enc.close()

    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0)), "shared": True},
        "tracks": len(tracks), "audio_hours": round(audio_s / 3600, 2),
        "ingest_s": round(ingest_s, 1), "ingest_x_realtime": round(audio_s / ingest_s, 1),
        "stages_s_per_audio_minute": stages,
        "quality": quality,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def _stages(enc: Encore, tracks: list[dict]) -> dict[str, float]:
    """Seconds of wall time per minute of audio for decode, embedding and descriptors (medians)."""
    sr = enc.encoder.description.sample_rate
    per: dict[str, list[float]] = {"decode": [], "embed": [], "describe": []}
    for t in tracks:
        minutes = t["duration_s"] / 60
        t0 = time.perf_counter()
        y, _ = load_audio(t["path"], sr=sr)
        t1 = time.perf_counter()
        enc.encoder.embed(y, sr=sr)
        t2 = time.perf_counter()
        describe(y, sr=sr)
        t3 = time.perf_counter()
        per["decode"].append((t1 - t0) / minutes)
        per["embed"].append((t2 - t1) / minutes)
        per["describe"].append((t3 - t2) / minutes)
    return {k: round(float(np.median(v)), 4) for k, v in per.items()}


def _quality(enc: Encore, ids: dict[str, str], space: str) -> dict[str, float]:
    """Share of the 10 nearest neighbours from the same package, and the random baseline."""
    sizes = Counter(ids.values())
    n = len(ids)
    hits, baseline = [], []
    for track_id, package in ids.items():
        record = enc.store.retrieve(enc.world.name, [track_id], with_payload=False, with_vectors=[space])[0]
        near = enc.world.search(np.asarray(record.vectors[space]), using=space, limit=10, exclude_ids=[track_id])
        hits.append(np.mean([ids.get(t.track_id) == package for t in near]))
        baseline.append((sizes[package] - 1) / (n - 1))
    return {"same_package_at_10": round(float(np.mean(hits)), 3),
            "random_baseline": round(float(np.mean(baseline)), 3),
            "lift": round(float(np.mean(hits) / np.mean(baseline)), 2)}


if __name__ == "__main__":
    main()
