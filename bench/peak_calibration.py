"""Calibrate the strongest-peaks test (``MatchParams.min_peaks_found``, ``peak_chance``, ``peak_z``,
``peak_z_alone``) by replaying recorded evidence, instead of re-running the benchmarks for every setting.

The test only removes answers: a clip's evidence (every hypothesis of every candidate track, with
its score, whether it passes the landmark and envelope tests, and the share of the clip's
strongest peaks found) does not depend on it. So ``record`` runs a benchmark's exact clips
(bench/identify.py's or bench/false_match_family.py's, same seeds) once, keeping each speed
stage's evidence, under a recording rule at least as strict as any rule replayed; ``sweep`` then
decides every clip again under each rule, as :func:`encore.matching.decide` and
:meth:`encore.catalog.Catalog.identify_analysis` do (stage by stage, the best passing
hypothesis). A stage the recording rule accepted ends the recording, so a rule that would refuse
it is flagged as not replayable (``inexact``) rather than guessed.

Any answer for a track other than the clip's own is checked at the clip, as both benchmarks do
(``music.clip_audio_match``): where it is the clip's own audio, it is not counted as wrong.

Usage::

    taskset -c 0 python bench/peak_calibration.py record identify --seed 0 --queries 100
    taskset -c 0 python bench/peak_calibration.py record family --unknown 40 --positives 20
    python bench/peak_calibration.py sweep bench/out/peaks_identify_s0.jsonl bench/out/peaks_family.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import false_match_family  # noqa: E402  (sibling scripts)
import identify  # noqa: E402
import music  # noqa: E402

from encore import augment  # noqa: E402
from encore.matching import MatchParams, PeakMatch, passes_envelope, peaks_pass, score  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
#: The recording rule: at least as strict as any rule swept by default, so that every sweep is replayable.
RECORD_RULE = {"min_peaks_found": 0.65, "peak_chance": 0.5, "peak_z": 2.0, "peak_z_alone": 2.0}
GRID = {"min_peaks_found": (0.5, 0.55, 0.6, 0.65), "peak_chance": (0.35, 0.4, 0.45, 0.5),
        "peak_z": (1.5, 1.75, 2.0), "peak_z_alone": (1.5, 1.75, 2.0)}
#: identify cells whose targets the rule decides (bench/identify.py TARGETS).
TARGET_CELLS = tuple(identify._cell_key(t.degradation, t.length) for t in identify.TARGETS if t.metric == "accuracy")


class Recorder:
    """Patches :func:`encore.catalog.decide` to keep every stage's evidence of the clip being identified."""

    def __init__(self, params: MatchParams, frame_seconds: float):
        self.params, self.frame_seconds, self.stages = params, frame_seconds, []

    def __enter__(self) -> Recorder:
        import encore.catalog as catalog

        self._catalog, self._decide = catalog, catalog.decide

        def spy(evidence, *, params, contenders=()):
            self.stages.append([self._row(e, params) for e in evidence])
            return self._decide(evidence, params=self.params, contenders=contenders)

        catalog.decide = spy
        return self

    def __exit__(self, *exc) -> None:
        self._catalog.decide = self._decide

    def _row(self, e, params: MatchParams) -> dict:
        al = e.alignment
        return {"track": e.track, "score": round(score(e, params=params), 5), "envelope": passes_envelope(e, params=params),
                "found": None if e.peaks is None else e.peaks.found, "peaks": None if e.peaks is None else e.peaks.peaks,
                "offset_s": round(max(0.0, al.offset_frames) * self.frame_seconds, 3), "speed": al.speed}

    def take(self) -> list[list[dict]]:
        stages, self.stages = self.stages, []
        return stages


def _check_others(stages: list[list[dict]], own: set[str], base: np.ndarray, audio: Callable[[str], np.ndarray | None],
                  sr: int) -> None:
    """Mark every possible answer for another track with whether it is the clip's own audio."""
    for row in (r for st in stages for r in st):
        if row["envelope"] and row["track"] not in own:
            y = audio(row["track"])
            detail = 0.0 if y is None else music.clip_audio_match(base, y, sr=sr, offset_s=row["offset_s"],
                                                                  speed=row["speed"])["detail"]
            row["same_audio"] = detail >= music.SAME_AUDIO_DETAIL


def record_identify(args: argparse.Namespace) -> Iterator[dict]:
    from encore.catalog import TrackMeta
    from encore.config import Settings
    from encore.service import Encore
    from indexers.decode import load_audio

    tracks = music.manifest(args.cache)
    indexed, held_out = identify.split(tracks, seed=args.seed)
    lengths = list(identify.DEFAULT_LENGTHS)
    degradations = list(augment.DEGRADATIONS)
    with tempfile.TemporaryDirectory(prefix="encore-peaks-") as tmp:
        enc = Encore.open(Settings(data_dir=Path(tmp), qdrant_url=None, api_key=None))
        try:
            sr = enc.sr
            ids = [enc.add_catalog_file(t["path"], meta=TrackMeta(title=t["title"], artist=t["artist"])).track_id
                   for t in tqdm(indexed, desc="ingest", file=sys.stderr)]
            catalog_id = {t["id"]: cid for t, cid in zip(indexed, ids, strict=True)}
            path_of = {cid: t["path"] for t, cid in zip(indexed, ids, strict=True)}
            cache: dict[str, np.ndarray] = {}

            def audio(cid: str) -> np.ndarray | None:
                if cid not in cache and cid in path_of:
                    cache[cid] = load_audio(path_of[cid], sr=sr)[0]
                return cache.get(cid)

            queries = identify.plan(len(indexed), len(held_out), lengths=lengths, queries=args.queries, seed=args.seed)
            clips = identify.query_clips(indexed, held_out, queries, lengths=lengths, degradations=degradations,
                                         seed=args.seed, sr=sr, load_audio=load_audio)
            with Recorder(dataclasses.replace(enc.catalog.match, **RECORD_RULE), enc.catalog.params.frame_seconds) as rec:
                for qc in tqdm(clips, total=len(queries) * len(degradations), desc="record", file=sys.stderr):
                    enc.catalog.identify(np.asarray(qc.clip, dtype=np.float32))
                    stages = rec.take()
                    truth = ids[qc.track_index] if qc.kind == "indexed" else None
                    own = {catalog_id[o] for o in qc.track.get("shares_audio_with", []) if o in catalog_id}
                    own |= {truth} if truth else set()
                    _check_others(stages, own, qc.base, audio, sr)
                    yield {"bench": f"identify seed {args.seed}", "kind": qc.kind,
                           "cell": identify._cell_key(qc.degradation, qc.query.length),
                           "truth": truth, "own": sorted(own), "stages": stages}
        finally:
            enc.close()


def record_family(args: argparse.Namespace) -> Iterator[dict]:
    fam = argparse.Namespace(catalog=20, unknown=args.unknown, positives=args.positives, seconds=60.0,
                             lengths=[3.0, 5.0, 10.0], degradations=list(false_match_family.DEFAULT_DEGRADATIONS),
                             seed=args.seed)
    for timbres, family in itertools.product(("shared", "own"), (0, 1)):
        yield from _record_family(family, timbres=timbres, fam=fam)


def _record_family(family: int, *, timbres: str, fam: argparse.Namespace) -> Iterator[dict]:
    from encore.catalog import TrackMeta
    from encore.config import Settings
    from encore.service import Encore
    from tests.utils.audio import synth_family

    with tempfile.TemporaryDirectory(prefix="encore-peaks-") as tmp:
        enc = Encore.open(Settings(data_dir=Path(tmp), qdrant_url=None, api_key=None))
        try:
            sr = enc.sr
            pieces: dict[int, np.ndarray] = {}

            def piece(k: int) -> np.ndarray:
                if k not in pieces:
                    pieces[k] = synth_family(k, family=family, seconds=fam.seconds, sr=sr,
                                             shared_timbres=timbres == "shared")
                return pieces[k]

            ids = {k: enc.add_catalog_audio(piece(k), meta=TrackMeta(title=f"piece {k}")).track_id
                   for k in range(fam.catalog)}
            piece_of = {tid: k for k, tid in ids.items()}

            def audio(tid: str) -> np.ndarray | None:
                return piece(piece_of[tid]) if tid in piece_of else None

            clips = false_match_family.family_clips(piece, family=family, sr=sr, args=fam)
            with Recorder(dataclasses.replace(enc.catalog.match, **RECORD_RULE), enc.catalog.params.frame_seconds) as rec:
                for kind, k, length, name, _start, base, clip in tqdm(clips, desc=f"family {family} {timbres}",
                                                                      file=sys.stderr):
                    enc.catalog.identify(np.asarray(clip, dtype=np.float32))
                    stages = rec.take()
                    truth = ids[k] if kind == "indexed" else None
                    _check_others(stages, {truth} if truth else set(), base, audio, sr)
                    yield {"bench": f"family {timbres}", "kind": kind, "cell": f"{name}@{length:g}s",
                           "truth": truth, "own": [truth] if truth else [], "stages": stages}
        finally:
            enc.close()


def replay(rec: dict, params: MatchParams) -> tuple[str, bool]:
    """The verdict a rule gives one recorded clip, and whether the recording could tell it."""
    rule = dataclasses.replace(params, **RECORD_RULE)
    contenders: set[str] = set()
    for stage in rec["stages"]:
        passing = [r for r in stage if r["envelope"]]
        contenders |= {r["track"] for r in passing}  # as encore.matching.decide counts them
        contested = len(contenders) > 1
        ok = [r for r in passing if peaks_pass(_pm(r), params=params, contested=contested)]
        recorded_stop = any(peaks_pass(_pm(r), params=rule, contested=contested) for r in passing)
        if ok:
            best = max(ok, key=lambda r: r["score"])
            if best["track"] in rec["own"]:
                verdict = "correct" if rec["kind"] == "indexed" else "shared"
            else:
                verdict = "same_audio" if best.get("same_audio") else ("wrong" if rec["kind"] == "indexed" else "false")
            return verdict, True
        if recorded_stop:  # the recording ended here; a stricter rule would have gone on
            return "missed", False
    return "missed", True


def _pm(row: dict) -> PeakMatch | None:
    return None if row["found"] is None else PeakMatch(row["found"], row["peaks"])


def sweep(args: argparse.Namespace) -> None:
    records = [json.loads(line) for path in args.files for line in path.read_text().splitlines() if line]
    benches = sorted({r["bench"] for r in records})
    rules = [rule for values in itertools.product(*GRID.values())
             if (rule := dict(zip(GRID, values, strict=True)))["peak_z_alone"] <= rule["peak_z"]]
    current = MatchParams()
    rules.insert(0, {k: getattr(current, k) for k in GRID})
    header = ["rule"]
    for bench in benches:
        header += [f"{bench}: false", f"{bench}: wrong", f"{bench}: found"]
        if bench.startswith("identify"):
            header += [f"{bench}: {c}" for c in TARGET_CELLS]
    print("| " + " | ".join(header) + " | inexact |")
    print("|" + "---|" * (len(header) + 1))
    for rule in rules:
        params = dataclasses.replace(current, **rule)
        tally: dict[tuple[str, str], defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        inexact = 0
        for r in records:
            verdict, exact = replay(r, params)
            inexact += not exact
            for key in ((r["bench"], "all"), (r["bench"], r["cell"])):
                tally[key][f"{r['kind']} {verdict}"] += 1
                tally[key][r["kind"]] += 1
        row = [" ".join(f"{v:g}" for v in rule.values())]
        for bench in benches:
            t = tally[(bench, "all")]
            unknown = "held_out" if bench.startswith("identify") else "unknown"
            row += [f"{t[unknown + ' false']}/{t[unknown]}", str(t["indexed wrong"]),
                    f"{t['indexed correct'] + t['indexed same_audio']}/{t['indexed']}"]
            if bench.startswith("identify"):
                for c in TARGET_CELLS:
                    tc = tally[(bench, c)]
                    row.append(str(tc["indexed correct"] + tc["indexed same_audio"]))
        print("| " + " | ".join(row) + f" | {inexact} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run a benchmark's clips once, keeping every hypothesis")
    rec.add_argument("bench", choices=["identify", "family"])
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--queries", type=int, default=100, help="identify: queries per cell")
    rec.add_argument("--unknown", type=int, default=40, help="family: unknown pieces per family")
    rec.add_argument("--positives", type=int, default=20, help="family: catalog pieces queried")
    rec.add_argument("--cache", type=Path, default=music.DEFAULT_CACHE)
    rec.add_argument("--out", type=Path, default=None)
    sw = sub.add_parser("sweep", help="replay recorded clips under each rule of the grid")
    sw.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args(argv)
    if args.command == "sweep":
        sweep(args)
        return 0
    out = args.out or OUT / (f"peaks_identify_s{args.seed}.jsonl" if args.bench == "identify" else
                             f"peaks_family_s{args.seed}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for record in (record_identify if args.bench == "identify" else record_family)(args):
            f.write(json.dumps(record) + "\n")
    print(f"recorded: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
