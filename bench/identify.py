"""Identification benchmark: top-1 accuracy, false matches, latency and ingest speed on real music.

Method
------
1. Tracks: the manifest of ``bench/music.py`` (about 160 tracks, 10 h of game soundtracks).
   A seeded permutation splits them 80/20: the first 80% go into the catalog ("indexed"),
   the rest are never added ("held out", out-of-catalog).
2. Ingest: an embedded store in a temporary folder (``Settings(data_dir=tmp)``); each indexed
   file goes through ``Encore.add_catalog_file`` (decode + fingerprint + upsert), timed as one
   process on the cores this process may use. Reported: audio seconds per wall second ("x real
   time"), index bytes per hour of audio, peak RSS.
3. Queries: for each clip length and query ``q``, a seeded draw picks an indexed track and a
   random offset (re-drawn over near-silent passages); the track is decoded once at the
   pipeline's rate (``load_audio(path, sr=enc.sr)``), the excerpt cut and each degradation of
   ``encore.augment.DEGRADATIONS`` applied to the *same* excerpt (paired comparison). Only
   ``enc.identify_audio(clip)`` is timed. A query is correct when ``match.track_id`` is the
   track's id, or (reported as "alias") the id of a track the manifest links to it as sharing
   audio (``shares_audio_with``: reused loops or passages of 15 s or more, see
   ``music.overlaps``). The same cells are run on held-out tracks, where any match is a false
   match, except one to an indexed track that shares audio with the held-out track (reported
   as a shared-audio match, not counted).
   Composers also reuse stingers and loops shorter than the manifest's 15 s. So every answer
   that would count as wrong or false is checked at the clip itself: the clean excerpt is
   compared with the matched track's audio at the reported offset and speed
   (``music.clip_audio_match``: waveform alignment, then correlation of spectrogram detail).
   At ``music.SAME_AUDIO_DETAIL`` (0.8) or more the matched audio *is* the clip's audio: the
   answer is reported as shared audio (alias / shared-audio match, ``verified_shared`` in the
   failures list), not as wrong. Below it (different recordings of one melody, pieces built on
   one loop library: 0.2-0.65) it stays wrong or false, with the check's figures recorded.
   Confidence calibration: every match is binned by its reported confidence, with how many
   were wrong (``calibration`` in the JSON).
4. ``--scale N`` grows the catalog to N tracks with distractors made from the real indexed
   tracks: each copy is played 4-8% faster or slower (pitch and tempo, like a turntable),
   cut into 2-6 s segments, each segment time-reversed and the segments shuffled. Reversed
   audio keeps music's spectral statistics (so the index grows realistically) while its
   landmarks (anchor->target pairs in time order) no longer match the original's, and the
   4-8% speed shift moves every peak well outside the +-2% the speed degradations probe, so
   the copies are distinct tracks, not aliases. ``--scale-seconds`` caps each copy's length to
   keep a 10k-track build affordable (the catalog's hours are reported).

Run ``taskset -c 0 python bench/identify.py ...`` for single-core figures (ingest speed and
latency targets are stated per core).

Usage::

    python bench/identify.py [--tracks 40] [--queries 100] [--seed 0] [--lengths 3 5 10]
                             [--degradations clean white_10 ...] [--scale 1000 --scale-seconds 60]
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
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import music  # noqa: E402  (bench/music.py, a sibling script)

from encore import augment  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "identify.json"
DEFAULT_LENGTHS = (3.0, 5.0, 10.0)
#: Clean excerpts quieter than this RMS (-54 dBFS) are re-drawn: nobody asks "what song is this?" of silence.
MIN_CLIP_RMS = 2e-3


@dataclass(frozen=True)
class Target:
    name: str
    metric: str  # "accuracy" | "false_matches" | "p50_ms" | "ingest_x"
    threshold: float
    degradation: str | None = None
    length: float | None = None

    def check(self, report: dict) -> tuple[float | None, bool | None]:
        """The measured value and whether it meets the target (None: not measured in this run)."""
        if self.metric == "accuracy":
            cell = report["cells"].get(_cell_key(self.degradation, self.length))
            if cell is None:
                return None, None
            return cell["accuracy"], cell["accuracy"] >= self.threshold
        if self.metric == "false_matches":
            value = report["totals"]["false_matches"]
            return value, value <= self.threshold
        if self.metric == "p50_ms":
            lat = report["latency_ms"].get(_len_key(self.length))
            if lat is None:
                return None, None
            return lat["p50"], lat["p50"] <= self.threshold
        if self.metric == "ingest_x":
            value = report["ingest"]["x_realtime"]
            return value, value >= self.threshold
        raise ValueError(self.metric)


TARGETS = [
    Target(">= 98% on 5 s white_10", "accuracy", 0.98, "white_10", 5.0),
    Target(">= 98% on 5 s mp3_64", "accuracy", 0.98, "mp3_64", 5.0),
    Target(">= 90% on 5 s white_5", "accuracy", 0.90, "white_5", 5.0),
    Target(">= 90% on 5 s telephone", "accuracy", 0.90, "telephone", 5.0),
    Target(">= 80% on 10 s white_0", "accuracy", 0.80, "white_0", 10.0),
    Target(">= 90% on 10 s speed_+2", "accuracy", 0.90, "speed_+2", 10.0),
    Target("0 false matches", "false_matches", 0),
    Target("p50 <= 30 ms per 5 s query", "p50_ms", 30.0, length=5.0),
    Target("ingest >= 200x real time", "ingest_x", 200.0),
]


def _len_key(length: float | None) -> str:
    return f"{length:g}s"


def _cell_key(degradation: str | None, length: float | None) -> str:
    return f"{degradation}@{_len_key(length)}"


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if platform.system() == "Linux" else kib / 2**20


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def split(tracks: list[dict], *, seed: int, limit: int | None = None,
          held_out_fraction: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Seeded (indexed, held_out) split of ``tracks``, optionally of a seeded subset of ``limit``."""
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(tracks))
    if limit is not None:
        order = order[:limit]
    chosen = [tracks[i] for i in order]
    n_held = int(round(held_out_fraction * len(chosen)))
    if len(chosen) >= 2:
        n_held = min(max(n_held, 1), len(chosen) - 1)
    return chosen[n_held:], chosen[:n_held]


@dataclass
class Query:
    kind: str  # "indexed" | "held_out"
    track: int  # index into the kind's track list
    length: float
    q: int


def plan(n_indexed: int, n_held: int, *, lengths: list[float], queries: int, seed: int) -> list[Query]:
    """Which track each query uses, for each clip length and kind (seeded, order-independent)."""
    out = []
    for kind, n in (("indexed", n_indexed), ("held_out", n_held)):
        if n == 0:
            continue
        for li, length in enumerate(lengths):
            rng = np.random.default_rng([seed, li, 0 if kind == "indexed" else 1])
            out += [Query(kind, int(t), length, q) for q, t in enumerate(rng.integers(0, n, queries))]
    return out


def pick_excerpt(y: np.ndarray, *, sr: int, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A random excerpt, re-drawn (up to 20 times) while it is near-silent."""
    clip, offset = augment.excerpt(y, sr=sr, seconds=seconds, rng=rng)
    for _ in range(20):
        if float(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))) >= MIN_CLIP_RMS:
            break
        clip, offset = augment.excerpt(y, sr=sr, seconds=seconds, rng=rng)
    return clip, offset


@dataclass
class QueryClip:
    """One query of the plan under one degradation (:func:`query_clips`)."""

    kind: str
    track_index: int
    track: dict
    query: Query
    degradation: str
    base: np.ndarray
    """The clean excerpt."""
    offset_s: float
    clip: np.ndarray
    """``base`` degraded."""


def query_clips(indexed: list[dict], held_out: list[dict], queries: list[Query], *, lengths: list[float],
                degradations: list[str], seed: int, sr: int, load_audio) -> Iterator[QueryClip]:
    """Every planned query (:func:`plan`) under every degradation, each track decoded once.

    The excerpt depends on (seed, length, query, kind) and the noise also on the degradation, so
    the same clips come back whatever else a run measures (bench/peak_calibration.py replays them).
    """
    groups: dict[tuple[str, int], list[Query]] = defaultdict(list)
    for qu in queries:
        groups[(qu.kind, qu.track)].append(qu)
    for (kind, ti), group in sorted(groups.items()):
        track = (indexed if kind == "indexed" else held_out)[ti]
        y, _ = load_audio(track["path"], sr=sr)
        for qu in group:
            li = lengths.index(qu.length)
            rng = np.random.default_rng([seed, li, qu.q, 0 if kind == "indexed" else 1, 7])
            base, offset = pick_excerpt(y, sr=sr, seconds=qu.length, rng=rng)
            for di, name in enumerate(degradations):
                clip = augment.DEGRADATIONS[name](base, sr=sr, rng=np.random.default_rng(
                    [seed, li, qu.q, 0 if kind == "indexed" else 1, di]))
                yield QueryClip(kind, ti, track, qu, name, base, offset, clip)


def scale_copy(y: np.ndarray, *, sr: int, rng: np.random.Generator, max_seconds: float | None = None) -> np.ndarray:
    """A distractor track made from ``y``: 4-8% speed change, 2-6 s segments reversed and shuffled."""
    factor = 1.0 + float(rng.choice([-1.0, 1.0]) * rng.uniform(0.04, 0.08))
    if max_seconds is not None and y.size > max_seconds * sr * factor:
        n = int(max_seconds * sr * factor)
        start = int(rng.integers(0, y.size - n + 1))
        y = y[start:start + n]
    z = augment.speed(y, sr=sr, factor=factor)
    cuts = [0]
    while cuts[-1] < z.size:
        cuts.append(cuts[-1] + int(rng.uniform(2.0, 6.0) * sr))
    segments = [z[a:b][::-1] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    rng.shuffle(segments)
    return np.ascontiguousarray(np.concatenate(segments)).astype(np.float32)


@dataclass
class Cell:
    n: int = 0
    correct: int = 0
    alias: int = 0  # matched a track that shares this audio (manifest ``shares_audio_with``): counted correct
    wrong: int = 0  # matched another track
    missed: int = 0  # no match
    errors: int = 0  # identify raised
    false_matches: int = 0  # held-out clips that matched a track they share no audio with
    shared_matches: int = 0  # held-out clips that matched an indexed track sharing audio with theirs
    held_out: int = 0
    #: Correct-track answers more than OFFSET_TOLERANCE_S from where the clip was cut: a repeat of
    #: the passage elsewhere in the track (counted correct, reported apart).
    offset_elsewhere: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    confidences_correct: list[float] = field(default_factory=list)
    confidences_false: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "queries": self.n, "correct": self.correct, "alias": self.alias, "wrong": self.wrong,
            "missed": self.missed, "errors": self.errors, "offset_elsewhere": self.offset_elsewhere,
            "accuracy": round((self.correct + self.alias) / self.n, 4) if self.n else None,
            "exact_accuracy": round(self.correct / self.n, 4) if self.n else None,
            "held_out_queries": self.held_out, "false_matches": self.false_matches,
            "shared_audio_matches": self.shared_matches,
            "p50_ms": _pct(self.latencies_ms, 50), "p95_ms": _pct(self.latencies_ms, 95),
            "min_confidence_correct": round(min(self.confidences_correct), 4) if self.confidences_correct else None,
            "max_confidence_false": round(max(self.confidences_false), 4) if self.confidences_false else None,
        }


#: An answer for the right track whose offset is further than this from the clip's is counted
#: apart (``offset_elsewhere``): the passage repeats in the track.
OFFSET_TOLERANCE_S = 1.0


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def run(args: argparse.Namespace) -> dict:
    from encore.catalog import TrackMeta
    from encore.config import Settings
    from encore.errors import EncoreError
    from encore.service import Encore
    from indexers.decode import load_audio

    tracks = music.manifest(args.cache)
    indexed, held_out = split(tracks, seed=args.seed, limit=args.tracks)
    lengths = [float(x) for x in args.lengths]
    degradations = list(args.degradations)
    unknown = set(degradations) - set(augment.DEGRADATIONS)
    if unknown:
        raise SystemExit(f"unknown degradations: {sorted(unknown)}; known: {sorted(augment.DEGRADATIONS)}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{len(indexed)} indexed + {len(held_out)} held-out tracks; {len(lengths)} lengths x "
          f"{len(degradations)} degradations x {args.queries} queries; {cpus} CPU(s) usable", file=sys.stderr)

    report: dict = {
        "config": {"seed": args.seed, "tracks": len(indexed) + len(held_out), "indexed": len(indexed),
                   "held_out": len(held_out), "queries": args.queries, "lengths": lengths,
                   "degradations": degradations, "scale": args.scale, "scale_seconds": args.scale_seconds,
                   "cpus": cpus, "python": platform.python_version(), "machine": platform.machine()},
    }
    with tempfile.TemporaryDirectory(prefix="encore-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), qdrant_url=None, api_key=None)
        enc = Encore.open(settings)
        try:
            sr = enc.sr
            report["config"]["sr"] = sr
            # ---- ingest
            ids: list[str] = []
            audio_s = 0.0
            t0 = time.perf_counter()
            for t in tqdm(indexed, desc="ingest", file=sys.stderr):
                created = enc.add_catalog_file(t["path"], meta=TrackMeta(title=t["title"], artist=t["artist"],
                                                                         album=None))
                ids.append(created.track_id)
                audio_s += created.duration_s or t["duration_s"]
            ingest_s = time.perf_counter() - t0
            if len(set(ids)) != len(ids):
                print("warning: two indexed files were stored as one track", file=sys.stderr)
            catalog_id = {t["id"]: cid for t, cid in zip(indexed, ids, strict=True)}
            by_id = {t["id"]: t for t in indexed + held_out}
            manifest_id = {cid: mid for mid, cid in catalog_id.items()}
            # catalog ids of the indexed tracks that share audio with each track (music.overlaps)
            shares = {t["id"]: {catalog_id[o] for o in t.get("shares_audio_with", []) if o in catalog_id}
                      for t in indexed + held_out}
            stats = enc.stats()
            store_bytes = int(stats.storage.get("bytes") or 0)
            report["ingest"] = {
                "tracks": len(indexed), "audio_hours": round(audio_s / 3600, 3), "wall_s": round(ingest_s, 2),
                "x_realtime": round(audio_s / ingest_s, 1), "store_bytes": store_bytes,
                "dir_bytes": _dir_bytes(Path(tmp)),
                "mb_per_hour": round(store_bytes / 1e6 / (audio_s / 3600), 2) if audio_s else None,
                "points": stats.catalog.points, "peak_rss_mb": round(_rss_mb(), 1),
            }
            # ---- scale distractors
            if args.scale and args.scale > len(indexed):
                report["scale"] = _add_scale_copies(enc, indexed, target=args.scale, sr=sr, seed=args.seed,
                                                    max_seconds=args.scale_seconds, load_audio=load_audio,
                                                    TrackMeta=TrackMeta)
                stats = enc.stats()
                report["scale"]["store_bytes"] = int(stats.storage.get("bytes") or 0)
                report["scale"]["catalog_tracks"] = stats.catalog.tracks
                report["scale"]["points"] = stats.catalog.points
            # ---- queries
            cells: dict[str, Cell] = defaultdict(Cell)
            by_length: dict[str, list[float]] = defaultdict(list)
            failures: list[dict] = []
            queries = plan(len(indexed), len(held_out), lengths=lengths, queries=args.queries, seed=args.seed)
            calibration: list[tuple[float, str]] = []
            peak_evidence: list[dict] = []  # the strongest-peaks test's figures of every match (matching.peaks_pass)
            audio_cache: dict[str, np.ndarray] = {}

            def track_audio(manifest_track_id: str) -> np.ndarray:
                """Decoded audio of a manifest track (the few matched by wrong answers; cached)."""
                if manifest_track_id not in audio_cache:
                    audio_cache[manifest_track_id] = load_audio(by_id[manifest_track_id]["path"], sr=sr)[0]
                return audio_cache[manifest_track_id]

            bar = tqdm(total=len(queries) * len(degradations), desc="identify", file=sys.stderr)
            for qc in query_clips(indexed, held_out, queries, lengths=lengths, degradations=degradations,
                                  seed=args.seed, sr=sr, load_audio=load_audio):
                kind, ti, track, qu, name = qc.kind, qc.track_index, qc.track, qc.query, qc.degradation
                base, offset, clip = qc.base, qc.offset_s, qc.clip
                cell = cells[_cell_key(name, qu.length)]
                start = time.perf_counter()
                try:
                    result = enc.identify_audio(clip)
                    match = result.match
                except EncoreError as err:
                    match, error = None, str(err)
                else:
                    error = None
                ms = (time.perf_counter() - start) * 1e3
                bar.update()
                verdict, check, got = None, None, {"got": None}
                if match is not None:
                    # What the decision saw (not timed): the public answer leaves the evidence out.
                    full = enc.catalog.identify(np.asarray(clip, dtype=np.float32))
                    ev = full.evidence if full is not None else None
                    found = ev.peaks.found if ev is not None and ev.peaks is not None else None
                    n_peaks = ev.peaks.peaks if ev is not None and ev.peaks is not None else None
                    got = {"got": manifest_id.get(match.track_id), "confidence": match.confidence,
                           "got_offset_s": match.offset_s, "got_speed": match.speed,
                           "aligned": match.aligned_hashes, "peaks_found": found}
                    if kind == "indexed" and match.track_id == ids[ti]:
                        verdict = "correct"
                    elif match.track_id in shares[track["id"]]:
                        verdict = "shared"
                    else:  # would count as wrong or false: is the matched audio the clip's own?
                        verdict = "other"
                        if match.track_id in manifest_id:  # not a --scale distractor
                            check = music.clip_audio_match(
                                base, track_audio(manifest_id[match.track_id]), sr=sr,
                                offset_s=match.offset_s, speed=match.speed)
                            got["audio_check"] = check
                            if check["detail"] >= music.SAME_AUDIO_DETAIL:
                                verdict = "verified_shared"
                    calibration.append((match.confidence, verdict))
                    peak_evidence.append({"kind": kind, "verdict": verdict, "degradation": name,
                                          "length": qu.length, "peaks_found": found, "peaks": n_peaks})
                if kind == "indexed":
                    cell.n += 1
                    cell.latencies_ms.append(ms)
                    by_length[_len_key(qu.length)].append(ms)
                    if error is not None:
                        cell.errors += 1
                    elif match is None:
                        cell.missed += 1
                    elif verdict == "correct":
                        cell.correct += 1
                        cell.confidences_correct.append(match.confidence)
                        cell.offset_elsewhere += abs(match.offset_s - offset) > OFFSET_TOLERANCE_S
                        continue
                    elif verdict in ("shared", "verified_shared"):
                        cell.alias += 1
                        if verdict == "shared":
                            continue
                    else:
                        cell.wrong += 1
                    failures.append({"kind": "miss" if match is None else
                                     ("verified_shared" if verdict == "verified_shared" else "wrong"),
                                     "degradation": name, "length": qu.length, "track": track["id"],
                                     "offset_s": round(offset, 3), **got, "error": error})
                else:
                    cell.held_out += 1
                    if match is None:
                        continue
                    if verdict in ("shared", "verified_shared"):
                        cell.shared_matches += 1
                        if verdict == "shared":
                            continue
                    else:
                        cell.false_matches += 1
                        cell.confidences_false.append(match.confidence)
                    failures.append({"kind": "verified_shared" if verdict == "verified_shared" else "false_match",
                                     "degradation": name, "length": qu.length, "track": track["id"],
                                     "offset_s": round(offset, 3), **got})
            bar.close()
        finally:
            enc.close()

    report["cells"] = {k: c.summary() for k, c in sorted(cells.items())}
    report["latency_ms"] = {k: {"p50": _pct(v, 50), "p95": _pct(v, 95), "n": len(v)} for k, v in sorted(by_length.items())}
    all_cells = list(cells.values())
    report["totals"] = {
        "queries": sum(c.n for c in all_cells), "correct": sum(c.correct + c.alias for c in all_cells),
        "accuracy": round(sum(c.correct + c.alias for c in all_cells) / max(1, sum(c.n for c in all_cells)), 4),
        "held_out_queries": sum(c.held_out for c in all_cells),
        "false_matches": sum(c.false_matches for c in all_cells),
        "shared_audio_matches": sum(c.shared_matches for c in all_cells),
        "alias": sum(c.alias for c in all_cells),
        "offset_elsewhere": sum(c.offset_elsewhere for c in all_cells),
        "errors": sum(c.errors for c in all_cells),
        "peak_rss_mb": round(_rss_mb(), 1),
    }
    report["failures"] = failures
    report["calibration"] = _calibration(calibration)
    report["peak_evidence"] = peak_evidence
    report["targets"] = []
    for target in TARGETS:
        value, ok = target.check(report)
        report["targets"].append({"target": target.name, "metric": target.metric, "value": value,
                                  "status": "n/a" if ok is None else ("PASS" if ok else "FAIL")})
    return report


#: Confidence bins of the calibration table (lower edges).
CALIBRATION_BINS = (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999)


def _calibration(matches: list[tuple[float, str]]) -> list[dict]:
    """Matches binned by reported confidence: how many, and how many were another track's
    (``wrong``: an indexed clip answered with another track, or a held-out clip matched)."""
    out = []
    for i, lo in enumerate(CALIBRATION_BINS):
        hi = CALIBRATION_BINS[i + 1] if i + 1 < len(CALIBRATION_BINS) else 1.0 + 1e-9
        sel = [v for c, v in matches if lo <= c < hi]
        if sel:
            out.append({"confidence": f"[{lo:g}, {min(hi, 1.0):g}{')' if hi <= 1.0 else ']'}", "matches": len(sel),
                        "wrong": sum(v == "other" for v in sel), "shared_audio": sum(v != "correct" and v != "other"
                                                                                    for v in sel)})
    return out


def _add_scale_copies(enc, indexed: list[dict], *, target: int, sr: int, seed: int, max_seconds: float | None,
                      load_audio, TrackMeta) -> dict:
    """Add distractor copies of the indexed tracks until the catalog holds ``target`` tracks."""
    need = target - len(indexed)
    per_track = [need // len(indexed) + (1 if i < need % len(indexed) else 0) for i in range(len(indexed))]
    audio_s, t0 = 0.0, time.perf_counter()
    bar = tqdm(total=need, desc="scale copies", file=sys.stderr)
    for i, (track, copies) in enumerate(zip(indexed, per_track, strict=True)):
        if copies == 0:
            continue
        y, _ = load_audio(track["path"], sr=sr)
        for k in range(copies):
            z = scale_copy(y, sr=sr, rng=np.random.default_rng([seed, 0xC0B7, i, k]), max_seconds=max_seconds)
            enc.add_catalog_audio(z, meta=TrackMeta(title=f"{track['title']} [copy {k}]", artist="scale-copy"))
            audio_s += z.size / sr
            bar.update()
    bar.close()
    wall = time.perf_counter() - t0
    return {"copies": need, "audio_hours": round(audio_s / 3600, 2), "wall_s": round(wall, 1),
            "x_realtime_in_memory": round(audio_s / wall, 1) if wall else None,
            "method": "speed x(1 +- U(4,8)%), 2-6 s segments time-reversed and shuffled"}


def markdown(report: dict) -> str:
    cfg = report["config"]
    lengths = [_len_key(x) for x in cfg["lengths"]]
    lines = [f"## Identification benchmark (seed {cfg['seed']}, {cfg['indexed']} indexed / {cfg['held_out']} held-out "
             f"tracks, {cfg['queries']} queries per cell, {cfg['cpus']} CPU(s), sr {cfg.get('sr')} Hz)", ""]
    ing = report["ingest"]
    lines += [f"Ingest: {ing['tracks']} tracks, {ing['audio_hours']:.2f} h of audio in {ing['wall_s']:.1f} s = "
              f"**{ing['x_realtime']:.0f}x real time**; index {ing['store_bytes'] / 1e6:.1f} MB "
              f"(**{ing['mb_per_hour']} MB per hour** of audio, {ing['points']} points); "
              f"peak RSS {ing['peak_rss_mb']:.0f} MB after ingest."]
    if "scale" in report:
        sc = report["scale"]
        lines += [f"Scale: +{sc['copies']} distractor copies ({sc['audio_hours']} h; {sc['method']}), catalog "
                  f"{sc.get('catalog_tracks')} tracks / {sc.get('points')} points, index {sc['store_bytes'] / 1e6:.0f} MB."]
    lines += ["", "Top-1 accuracy (false matches on held-out clips in brackets):", "",
              "| degradation | " + " | ".join(lengths) + " |", "|---|" + "---:|" * len(lengths)]
    for name in cfg["degradations"]:
        row = []
        for length in cfg["lengths"]:
            c = report["cells"].get(_cell_key(name, length))
            if c is None or c["accuracy"] is None:
                row.append("-")
            else:
                fm = f" [{c['false_matches']}]" if c["held_out_queries"] else ""
                row.append(f"{100 * c['accuracy']:.1f}%{fm}")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", "Latency of `identify_audio` in ms, p50 / p95 (in-process, after decoding):", "",
              "| latency | " + " | ".join(lengths) + " |", "|---|" + "---:|" * len(lengths)]
    for name in cfg["degradations"]:
        cells = [report["cells"].get(_cell_key(name, length)) for length in cfg["lengths"]]
        lines.append(f"| {name} | " + " | ".join(
            "-" if c is None or c["p50_ms"] is None else f"{c['p50_ms']:.0f} / {c['p95_ms']:.0f}" for c in cells) + " |")
    lines.append("| **all** | " + " | ".join(
        f"**{report['latency_ms'][k]['p50']:.1f} / {report['latency_ms'][k]['p95']:.1f}**"
        if k in report["latency_ms"] else "-" for k in lengths) + " |")
    tot = report["totals"]
    lines += ["", f"Totals: {tot['correct']}/{tot['queries']} correct ({100 * tot['accuracy']:.1f}%; "
              f"{tot['alias']} of them matched a track sharing the clip's audio, "
              f"{tot.get('offset_elsewhere', 0)} put it more than {OFFSET_TOLERANCE_S:g} s from where it was cut), "
              f"{tot['false_matches']} false matches in {tot['held_out_queries']} held-out queries "
              f"(plus {tot['shared_audio_matches']} matches to an indexed track sharing audio with the held-out one, "
              f"not counted), {tot['errors']} errors; peak RSS {tot['peak_rss_mb']:.0f} MB."]
    if report.get("calibration"):
        lines += ["", "Matches by reported confidence (wrong: another track's; shared: another track with the "
                  "clip's audio):", "", "| confidence | matches | wrong | shared |", "|---|---:|---:|---:|"]
        lines += [f"| {b['confidence']} | {b['matches']} | {b['wrong']} | {b['shared_audio']} |"
                  for b in report["calibration"]]
    lines += ["", "Targets:", ""]
    for t in report["targets"]:
        value = t["value"]
        shown = "-" if value is None else (f"{100 * value:.1f}%" if t["metric"] == "accuracy" else f"{value:g}")
        lines.append(f"- {t['status']}: {t['target']} (measured {shown})")
    if cfg["cpus"] and cfg["cpus"] > 1:
        lines += ["", f"_Ran with {cfg['cpus']} CPUs usable; for per-core figures run under `taskset -c 0`._"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=music.DEFAULT_CACHE, help="music cache (bench/music.py)")
    ap.add_argument("--tracks", type=int, default=None, help="use a seeded subset of N tracks (quick runs)")
    ap.add_argument("--queries", type=int, default=100, help="queries per (length, degradation) cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lengths", type=float, nargs="+", default=list(DEFAULT_LENGTHS), help="clip lengths, s")
    ap.add_argument("--degradations", nargs="+", default=list(augment.DEGRADATIONS), help="names in DEGRADATIONS")
    ap.add_argument("--scale", type=int, default=None, help="grow the catalog to N tracks with distractor copies")
    ap.add_argument("--scale-seconds", type=float, default=None, help="cap each distractor copy to this length")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report path")
    args = ap.parse_args(argv)
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))
    print(f"\nJSON: {args.out}")
    return 0 if all(t["status"] != "FAIL" for t in report["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
