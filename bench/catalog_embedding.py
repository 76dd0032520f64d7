"""Calibrate the catalog's second signal: a strict cosine threshold on segment embeddings.

The catalog stores one musicnn embedding per 10.24 s segment (the 3 s patch at its middle). A
clip the landmarks leave unknown is embedded too, and matched to its nearest segment if the
cosine clears a threshold chosen here so that no held-out clip (from a track not in the
catalog) clears it, with a margin over the best segment of any other track.

Method: the seeded 80/20 split of ``bench/identify.py``; every indexed track's segments embedded
as the catalog does it; clips of ``--seconds`` at random offsets from indexed and held-out
tracks, each under each degradation of ``encore.augment.DEGRADATIONS``, embedded as identify
does it (all 3 s patches of the clip, averaged). For each clip: the best cosine, and whether its
segment is the right track. Reported per degradation: the share of indexed clips whose best
segment is right and clears the threshold (what the signal can add), and the highest held-out
cosine (what fixes the threshold). Shared-audio pairs of the manifest are skipped as queries.

Usage::

    python bench/catalog_embedding.py [--tracks 160] [--clips 40] [--seconds 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))
import music  # noqa: E402  (bench/music.py)

from encore import augment  # noqa: E402
from encore.encoders.musicnn import MusicnnEncoder, MusicnnParams  # noqa: E402
from indexers.decode import load_audio  # noqa: E402

SR = 16000
SEGMENT_S = 320 * 256 / 8000  # the catalog's segment: 320 fingerprint frames of 256 samples at 8 kHz


def segment_patches(y: np.ndarray) -> list[np.ndarray]:
    """The 3 s patch at the middle of each catalog segment (the last, partial one included)."""
    seg, patch = int(SEGMENT_S * SR), 3 * SR
    out = []
    for start in range(0, max(1, y.size), seg):
        mid = start + min(seg, y.size - start) // 2
        lo = max(0, min(mid - patch // 2, y.size - patch))
        out.append(y[lo : lo + patch])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=None)
    ap.add_argument("--clips", type=int, default=40, help="clips per side (indexed, held out)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--degradations", nargs="*", default=["clean", "white_10", "white_0", "mp3_64", "telephone",
                                                          "speed_+2"])
    ap.add_argument("--out", type=Path, default=_HERE / "out" / "catalog_embedding.json")
    args = ap.parse_args()

    import identify  # noqa: PLC0415  (bench/identify.py: the same split)

    tracks = music.manifest(music.DEFAULT_CACHE)
    indexed, held = identify.split(tracks, seed=args.seed, limit=args.tracks)
    enc = MusicnnEncoder(params=MusicnnParams(max_patches=None))
    audio: dict[str, np.ndarray] = {}
    seg_vecs, seg_track = [], []
    for t in tqdm(indexed, desc="catalog segments", file=sys.stderr):
        y, _ = load_audio(t["path"], sr=SR)
        audio[t["id"]] = y
        for e in enc.embed_batch(segment_patches(y), sr=SR):
            seg_vecs.append(e.vector / np.linalg.norm(e.vector))
            seg_track.append(t["id"])
    catalog = np.asarray(seg_vecs)
    seg_track_arr = np.asarray(seg_track)
    shared = {t["id"]: set(t.get("shares_audio_with") or []) for t in tracks}

    rng = np.random.default_rng(args.seed)
    rows = []
    for side, pool in (("indexed", indexed), ("held_out", held)):
        picks = [pool[i] for i in rng.choice(len(pool), size=args.clips, replace=True)]
        for t in tqdm(picks, desc=side, file=sys.stderr):
            if shared.get(t["id"]):
                continue
            y = audio.get(t["id"])
            if y is None:
                y, _ = load_audio(t["path"], sr=SR)
            clip, offset = augment.excerpt(y, sr=SR, seconds=args.seconds, rng=rng)
            for name in args.degradations:
                q = augment.DEGRADATIONS[name](clip, sr=SR, rng=rng)
                v = enc.embed(q, sr=SR).vector
                sims = catalog @ (v / np.linalg.norm(v))
                best = int(np.argmax(sims))
                other = sims[seg_track_arr != seg_track_arr[best]]
                rows.append({"side": side, "degradation": name, "track": t["id"], "best": float(sims[best]),
                             "margin": float(sims[best] - (other.max() if other.size else 0.0)),
                             "right": bool(seg_track_arr[best] == t["id"])})

    held_best = max(r["best"] for r in rows if r["side"] == "held_out")
    wrong_best = max((r["best"] for r in rows if r["side"] == "indexed" and not r["right"]), default=0.0)
    threshold = max(held_best, wrong_best)
    table = {}
    for name in args.degradations:
        mine = [r for r in rows if r["side"] == "indexed" and r["degradation"] == name]
        table[name] = {
            "right_top1": round(float(np.mean([r["right"] for r in mine])), 3),
            "right_above_threshold": round(float(np.mean([r["right"] and r["best"] > threshold for r in mine])), 3),
            "median_best": round(float(np.median([r["best"] for r in mine])), 4),
            "held_out_max": round(max(r["best"] for r in rows if r["side"] == "held_out" and r["degradation"] == name), 4),
        }
    result = {"command": " ".join(["python", *sys.argv]), "segments": int(catalog.shape[0]),
              "threshold_needed": round(threshold, 4), "held_out_max": round(held_best, 4),
              "indexed_wrong_max": round(wrong_best, 4), "per_degradation": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**result, "rows": rows}, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
