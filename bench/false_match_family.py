"""False matches between pieces of one *family*: same kit, key and tempo, different tunes.

Library and production music from one producer reuses presets, drum kits and tempos; loops and
genres with fixed kits do the same. Such pieces share the drum hits on one beat grid and often the
chords at the same moments, so a clip of a piece never added lines up, landmark for landmark, with
a catalog piece of its family, and its band envelope (drum-dominated) follows that piece's.
:func:`tests.utils.audio.synth_track` draws everything per seed and never exposes this;
:func:`tests.utils.audio.synth_family` does.

Method
------
For each family: the catalog holds ``--catalog`` family pieces (``--seconds`` long each, pieces
0..N-1). ``--unknown`` other pieces of the family (never added) give one clip per length at a
seeded random offset, each degraded by every ``--degradations`` entry (``encore.augment``); any
match for these is a false match. The same clips of ``--positives`` catalog pieces measure how
many true clips are still identified (a rule that answers "unknown" to everything has no false
matches either). Variants: ``shared`` (the family's timbres for every piece) and ``own`` (each
piece draws its own pad, lead and bass timbres; drums, key and tempo stay shared).

As in bench/identify.py, an answer for an unknown clip is first checked at the clip itself: when
the matched piece's audio, where the answer put the clip, is the clip's own audio
(``music.clip_audio_match`` detail >= ``music.SAME_AUDIO_DETAIL``: the backing of both pieces
with the tunes resting or coinciding), no rule could tell them apart and it is reported as a
same-audio match, not counted as false.

Prints the false-match rate per cell, the true-match rate, and the evidence of the worst false
matches (highest confidence): aligned landmarks, coverage, side lobe, envelope r and detail and
the rest of :class:`encore.matching.Evidence`. Run pinned: ``taskset -c 1 python
bench/false_match_family.py``.

Usage::

    python bench/false_match_family.py [--families 0 1] [--catalog 20] [--unknown 100] [--positives 20]
                                       [--lengths 3 5 10] [--degradations clean white_10 ...]
                                       [--timbres shared own] [--out bench/out/false_match_family.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import music  # noqa: E402  (bench/music.py, a sibling script)

from encore import augment  # noqa: E402
from tests.utils.audio import synth_family  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "false_match_family.json"
DEFAULT_DEGRADATIONS = ("clean", "white_10", "white_5", "mp3_64", "telephone", "speed_+2")
#: Unknown pieces are numbered from here (catalog pieces from 0).
UNKNOWN_BASE = 1000


def _flat(obj: object, prefix: str = "") -> dict:
    """A dataclass (nested) as one flat dict of rounded numbers."""
    out: dict = {}
    for key, value in (dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj).items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, float):
            out[f"{prefix}{key}"] = round(value, 4)
        else:
            out[f"{prefix}{key}"] = value
    return out


def _evidence(match: object) -> dict:
    ev = getattr(match, "evidence", None)
    fields = {"confidence": match.confidence, "aligned": match.aligned, "envelope_r": match.envelope_r,
              "envelope_detail": match.envelope_detail, "offset_s": match.offset_s, "speed": match.speed}
    if ev is not None:
        fields.update({k: v for k, v in _flat(ev).items() if k != "track"})
    return fields


def family_clips(piece: Callable[[int], np.ndarray], *, family: int, sr: int,
                 args: argparse.Namespace) -> Iterator[tuple[str, int, float, str, int, np.ndarray, np.ndarray]]:
    """The benchmark's queries: ``(kind, piece, length, degradation, start sample, clean excerpt,
    clip)`` for ``--unknown`` pieces never added, then ``--positives`` catalog pieces (seeded:
    bench/peak_calibration.py replays the same clips)."""
    jobs = [("unknown", UNKNOWN_BASE + u) for u in range(args.unknown)]
    jobs += [("indexed", k) for k in range(min(args.positives, args.catalog))]
    for kind, k in jobs:
        y = piece(k)
        for li, length in enumerate(args.lengths):
            rng = np.random.default_rng([args.seed, family, k, li])
            start = int(rng.uniform(0.0, args.seconds - length) * sr)
            base = y[start : start + int(length * sr)]
            for di, name in enumerate(args.degradations):
                clip = augment.DEGRADATIONS[name](base, sr=sr, rng=np.random.default_rng(
                    [args.seed, family, k, li, di]))
                yield kind, k, length, name, start, base, clip


def run_family(family: int, *, timbres: str, args: argparse.Namespace) -> dict:
    from encore.catalog import TrackMeta
    from encore.config import Settings
    from encore.service import Encore

    shared = timbres == "shared"
    with tempfile.TemporaryDirectory(prefix="encore-family-") as tmp:
        enc = Encore.open(Settings(data_dir=Path(tmp), qdrant_url=None, api_key=None))
        try:
            sr = enc.sr

            def piece(k: int) -> np.ndarray:
                return synth_family(k, family=family, seconds=args.seconds, sr=sr, shared_timbres=shared)

            ids = {}
            for k in range(args.catalog):
                ids[k] = enc.add_catalog_audio(piece(k), meta=TrackMeta(title=f"family {family} piece {k}")).track_id
            piece_of = {tid: k for k, tid in ids.items()}
            cells: dict[str, dict] = defaultdict(lambda: {"queries": 0, "false": 0, "same_audio": 0, "true_queries": 0,
                                                          "found": 0, "wrong": 0})
            false_matches: list[dict] = []
            wrong_answers: list[dict] = []
            true_matches: list[dict] = []
            same_audio: list[dict] = []
            for kind, k, length, name, start, base, clip in family_clips(piece, family=family, sr=sr, args=args):
                m = enc.catalog.identify(np.asarray(clip, dtype=np.float32))
                cell = cells[f"{name}@{length:g}s"]
                where = {"family": family, "timbres": timbres, "piece": k, "length": length,
                         "degradation": name, "clip_start_s": round(start / sr, 2)}
                if kind == "unknown":
                    cell["queries"] += 1
                    if m is not None:
                        # As bench/identify.py: is the matched audio, where the answer put
                        # the clip, the clip's own audio (backing with the tune resting)?
                        check = music.clip_audio_match(base, piece(piece_of[m.track_id]), sr=sr,
                                                       offset_s=m.offset_s, speed=m.speed)
                        same = check["detail"] >= music.SAME_AUDIO_DETAIL
                        cell["same_audio" if same else "false"] += 1
                        (same_audio if same else false_matches).append(
                            {**where, "matched": m.title, "audio_check": check, **_evidence(m)})
                else:
                    cell["true_queries"] += 1
                    if m is not None and m.track_id == ids[k]:
                        cell["found"] += 1
                        true_matches.append({**where, **_evidence(m)})
                    elif m is not None:
                        cell["wrong"] += 1
                        wrong_answers.append({**where, "matched": m.title, **_evidence(m)})
        finally:
            enc.close()
    return {"cells": dict(cells), "false_matches": false_matches, "wrong_answers": wrong_answers,
            "true_matches": true_matches, "same_audio": same_audio}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--catalog", type=int, default=20, help="family pieces in the catalog")
    ap.add_argument("--unknown", type=int, default=100, help="family pieces never added, one clip per length each")
    ap.add_argument("--positives", type=int, default=20, help="catalog pieces queried the same way")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each piece")
    ap.add_argument("--lengths", type=float, nargs="+", default=[3.0, 5.0, 10.0])
    ap.add_argument("--degradations", nargs="+", default=list(DEFAULT_DEGRADATIONS))
    ap.add_argument("--timbres", nargs="+", choices=["shared", "own"], default=["shared", "own"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worst", type=int, default=8, help="false matches shown, highest confidence first")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    unknown = set(args.degradations) - set(augment.DEGRADATIONS)
    if unknown:
        raise SystemExit(f"unknown degradations: {sorted(unknown)}; known: {sorted(augment.DEGRADATIONS)}")

    t0 = time.perf_counter()
    report: dict = {"config": {k: v for k, v in vars(args).items() if k != "out"}, "runs": []}
    for timbres in args.timbres:
        for family in args.families:
            print(f"family {family}, {timbres} timbres ...", file=sys.stderr)
            report["runs"].append({"family": family, "timbres": timbres,
                                   **run_family(family, timbres=timbres, args=args)})
    report["wall_s"] = round(time.perf_counter() - t0, 1)

    print(f"# Family false matches ({args.catalog} catalog pieces, {args.unknown} unknown and "
          f"{min(args.positives, args.catalog)} catalog pieces queried per family; families {args.families})\n")
    keys = [f"{d}@{length:g}s" for d in args.degradations for length in args.lengths]
    print("| timbres | cell | false matches | same audio (not counted) | true clips identified | wrong answers |")
    print("|---|---|---:|---:|---:|---:|")
    totals: dict[str, dict[str, int]] = {}
    for timbres in args.timbres:
        runs = [r for r in report["runs"] if r["timbres"] == timbres]
        tot = totals.setdefault(timbres, {"queries": 0, "false": 0, "same_audio": 0, "true_queries": 0, "found": 0,
                                          "wrong": 0})
        for key in keys:
            agg = {f: sum(r["cells"][key][f] for r in runs) for f in tot}
            for f in tot:
                tot[f] += agg[f]
            print(f"| {timbres} | {key} | {agg['false']}/{agg['queries']} | {agg['same_audio']} "
                  f"| {agg['found']}/{agg['true_queries']} "
                  f"| {agg['wrong']} |")
    print()
    for timbres, tot in totals.items():
        rate = tot["false"] / max(1, tot["queries"])
        print(f"{timbres} timbres: false matches {tot['false']}/{tot['queries']} ({100 * rate:.1f}%), "
              f"same-audio matches {tot['same_audio']}, "
              f"true clips identified {tot['found']}/{tot['true_queries']} "
              f"({100 * tot['found'] / max(1, tot['true_queries']):.1f}%), wrong answers {tot['wrong']}")
    report["totals"] = totals
    worst = sorted((fm for r in report["runs"] for fm in r["false_matches"]), key=lambda f: -f["confidence"])
    if worst:
        print(f"\nWorst false matches (of {len(worst)}):")
        for fm in worst[: args.worst]:
            print("  " + json.dumps(fm))
    wrong = [w for r in report["runs"] for w in r["wrong_answers"]]
    if wrong:
        print(f"\nWrong answers to catalog clips ({len(wrong)}):")
        for w in sorted(wrong, key=lambda f: -f["confidence"])[: args.worst]:
            print("  " + json.dumps(w))
    print(f"\n{report['wall_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
