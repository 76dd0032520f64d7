"""Search quality on a real-audio world: tag lift of mood queries, filter precision, voice latency.

Method
------
1. World: the 160 tracks of ``bench/music.py`` added with ``Encore.add_world_file`` (musicnn tags
   and descriptors from the audio) into an embedded store kept under ``--data`` (built once).
2. Lift: for each mood/activity query, the mean probability of the query's target tags (the
   positive tag weights of its interpretation) over the top 10 results, divided by the same mean
   over the whole collection. Target >= 2x. The ceiling: the same for the 10 tracks, among those
   passing the query's filters, with the highest weighted sum of the wanted tags (what a perfect
   ranking could reach in this collection); the ceiling without filters ignores the ranges (what
   they cost in this collection). Interpretations are the ones the search returns: a genre no
   track has searched as its tags, ranges relaxed into preferences.
3. Filter precision: every result of every query checked against every filter its
   interpretation implies (years, genre, tempo, energy, danceability, tags, artists); target 100%.
4. Voice: each query spoken by espeak-ng (two voices), clean and with white noise at 10 dB SNR,
   through ``Encore.search_voice_audio``; word error rate and end-to-end latency (recognition
   plus search) per query. Target WER <= 10%, latency < 1.5 s on 2 cores.

Usage::

    python bench/search_quality.py [--data bench/.cache/world_real] [--no-voice]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))
import music  # noqa: E402  (bench/music.py)

from encore import augment  # noqa: E402
from encore.config import Settings  # noqa: E402
from encore.errors import BadInput  # noqa: E402
from encore.service import Encore  # noqa: E402
from encore.speech import word_error_rate  # noqa: E402
from indexers.decode import load_audio  # noqa: E402
from indexers.metadata import TrackInfo  # noqa: E402
from schemas.api import TrackPublic  # noqa: E402

QUERIES = [
    "happy songs", "sad songs", "music for a party", "chill music", "songs for a workout", "music to study to",
    "relaxing music for sleep", "angry music", "romantic songs for dinner", "energetic music for running",
    "calm instrumental music", "upbeat dance music", "mellow acoustic songs", "dark ambient music",
    "fast electronic music", "slow sad piano music",
]
VOICES = (("en-us+f3", 140), ("en-us+f4", 160))


def build(data: Path) -> Encore:
    enc = Encore.open(Settings(data_dir=data, qdrant_url=None))
    if enc.world.count() == 0:
        for t in music.manifest(music.DEFAULT_CACHE):
            enc.add_world_file(t["path"], info=TrackInfo(title=t["title"], artist=t["artist"], album=t["package"]))
    return enc


def honours(track, interp) -> bool:
    f = interp.filters()
    checks = []
    for name in ("year", "tempo", "energy", "danceability"):
        value = getattr(track, name)
        lo, hi = getattr(f, f"{name}_min"), getattr(f, f"{name}_max")
        if lo is not None or hi is not None:
            checks.append(value is not None and (lo is None or value >= lo) and (hi is None or value <= hi))
    if f.genre:
        checks.append(track.genre == f.genre.casefold())
    for artist in interp.artists_not + interp.artists_like:
        checks.append((track.artist or "").casefold() != artist.casefold())
    return all(checks)


def _public(record) -> TrackPublic:
    p = record.payload or {}
    return TrackPublic(**{k: p.get(k) for k in ("track_id", "title", "artist", "album", "year", "genre", "tempo",
                                                "energy", "danceability")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=_HERE / ".cache" / "world_real")
    ap.add_argument("--no-voice", action="store_true")
    ap.add_argument("--out", type=Path, default=_HERE / "out" / "search_quality.json")
    args = ap.parse_args()

    enc = build(args.data)
    everything, _ = enc.store.scroll(enc.world.name, limit=100_000, with_payload=True)
    names = enc.tag_head.names
    probs = {r.id: dict(zip(names, r.payload["tag_probs"], strict=True)) for r in everything}
    means = {n: float(np.mean([p[n] for p in probs.values()])) for n in names}
    rows, violations, checked = [], 0, 0
    for q in QUERIES:
        result = enc.search(q, limit=10)
        interp = result.interpretation
        wanted = [t for t, w in interp.tags.items() if w > 0]
        top = np.mean([np.mean([probs[r.track_id][t] for t in wanted]) for r in result.results]) \
            if wanted and result.results else float("nan")
        base = np.mean([means[t] for t in wanted]) if wanted else float("nan")
        for r in result.results:
            checked += 1
            violations += not honours(r, interp)
        # The ceiling: the 10 tracks passing the same filters with the most of the wanted tags.
        pool = [r.id for r in everything if honours(_public(r), interp)]
        best = sorted(pool, key=lambda i: -sum(w * probs[i][t] for t, w in interp.tags.items() if t in probs[i]))[:10]
        oracle = np.mean([np.mean([probs[i][t] for t in wanted]) for i in best]) if wanted and best else float("nan")
        # The same without any filter: what the ranges (and genre) cost in this collection.
        free = sorted(probs, key=lambda i: -sum(w * probs[i][t] for t, w in interp.tags.items() if t in probs[i]))[:10]
        unfiltered = np.mean([np.mean([probs[i][t] for t in wanted]) for i in free]) if wanted else float("nan")
        rows.append({"query": q, "tags": wanted, "results": len(result.results), "passing_filters": len(pool),
                     "relaxed": interp.relaxed, "genres": interp.genres,
                     "top10": round(float(top), 4), "mean": round(float(base), 4),
                     "lift": round(float(top / base), 2) if base else None,
                     "ceiling_lift": round(float(oracle / base), 2) if base else None,
                     "unfiltered_ceiling_lift": round(float(unfiltered / base), 2) if base else None})
    lifts = [r["lift"] for r in rows if r["lift"] is not None and r["lift"] == r["lift"]]
    ceilings = [r["ceiling_lift"] for r in rows if r["lift"] is not None and r["lift"] == r["lift"]]
    report = {"command": " ".join(["python", *sys.argv]), "tracks": len(everything), "queries": rows,
              "median_lift": round(float(np.median(lifts)), 2), "min_lift": round(float(np.min(lifts)), 2),
              "median_ceiling_lift": round(float(np.median(ceilings)), 2),
              "filter_precision": round(1 - violations / max(1, checked), 4), "results_checked": checked}
    if not args.no_voice and shutil.which("espeak-ng"):
        report["voice"] = voice(enc)
    enc.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "queries"}, indent=1))
    print("| query | target tags | relaxed into preferences | tracks passing filters | results | lift | ceiling "
          "| ceiling without filters |\n|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        relaxed = ", ".join(f"{k} {v:g}" for k, v in r["relaxed"].items()) or "-"
        print(f"| {r['query']} | {', '.join(r['tags'])} | {relaxed} | {r['passing_filters']} | {r['results']} "
              f"| {r['lift']} | {r['ceiling_lift']} | {r['unfiltered_ceiling_lift']} |")


def voice(enc: Encore) -> dict:
    rng = np.random.default_rng(0)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for voice_name, rate in VOICES:
            for noisy in (False, True):
                wers, lat, failed = [], [], 0
                for q in QUERIES:
                    raw = Path(tmp) / "q.wav"
                    subprocess.run(["espeak-ng", "-v", voice_name, "-s", str(rate), "-w", str(raw), q],
                                   check=True, capture_output=True)
                    y, _ = load_audio(raw, sr=16000, min_seconds=0.3)
                    if noisy:
                        y = augment.white_noise(y, snr_db=10.0, rng=rng)
                    start = time.perf_counter()
                    try:
                        answer = enc.search_voice_audio(y, sr=16000, limit=10)
                        heard = answer.transcript
                    except BadInput:
                        heard, failed = "", failed + 1
                    lat.append(time.perf_counter() - start)
                    wers.append(word_error_rate(q, heard))
                key = f"{voice_name}@{rate}{' +noise 10 dB' if noisy else ''}"
                out[key] = {"wer": round(float(np.mean(wers)), 3), "p50_s": round(float(np.median(lat)), 3),
                            "p95_s": round(float(np.percentile(lat, 95)), 3), "not_heard": failed}
    return out


if __name__ == "__main__":
    main()
