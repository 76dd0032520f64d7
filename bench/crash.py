"""Crash safety at scale: kill -9 the ingest hundreds of times, count what was lost or left over.

Method
------
1. Data: ``--tracks`` synthetic catalog tracks (20 to 60 s at 8 kHz, 2 to 6 segments each) in a
   temporary folder, and a sample world of ``--world`` tracks. A clean in-process run of each gives
   the reference: catalog track ids and segment counts, world ids.
2. Kills: real ``encore`` subprocesses on one embedded store, SIGKILLed at seeded random moments:
   ``catalog add FOLDER`` (most kills), ``catalog remove ID`` and ``world sample``. Most kills wait
   until the process holds the store, then a random delay within the ingest's duration; one in
   five falls anywhere from process start (imports, collection creation). A run the kill missed
   (it finished) is checked against the reference and the store is wiped to be crashed again.
3. After each kill, the store is read through the storage layer before anything repairs it:
   visible catalog tracks missing a segment, vector or payload field (``broken``), points of no
   complete or journalled track (``orphans``), tracks journalled by a pending marker (the kill
   landed inside a multi-point write), world points missing a vector or field, world point
   counts that are not whole upsert batches. A track complete before a kill and not after it is
   ``lost``; two points for one (track, segment) a ``duplicate``.
4. Restart: the store is opened as every command opens it (the facade repairs journalled
   tracks), timed (``recovery``), and checked again: no marker, no orphan may remain.
5. End: each ingest re-run to completion must give exactly the reference set.

Usage::

    taskset -c 1 python bench/crash.py [--kills 200] [--tracks 30] [--world 3000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encore.config import Settings  # noqa: E402
from encore.service import Encore  # noqa: E402
from encore.world import world_id  # noqa: E402
from indexers.pipeline import index_catalog  # noqa: E402
from tests.utils.audio import synth_track, write_audio  # noqa: E402
from tests.utils.crash import (  # noqa: E402
    SAMPLE_BATCH,
    inspect_catalog,
    inspect_world,
    kill_after,
    open_raw,
    start,
    wait_for_store,
)

SR = 8000


@dataclass
class Figures:
    kills: Counter = field(default_factory=Counter)
    runs: int = 0
    missed: int = 0
    journalled: int = 0
    repaired_points: int = 0
    lost: int = 0
    duplicates: int = 0
    orphans_before_restart: int = 0
    orphans_after_restart: int = 0
    broken: int = 0
    broken_examples: list[str] = field(default_factory=list)
    world_broken: int = 0
    world_partial_batches: int = 0
    recovery_s: list[float] = field(default_factory=list)
    final_catalog_ok: bool = False
    final_world_ok: bool = False
    final_rerun_s: dict[str, float] = field(default_factory=dict)


def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, qdrant_url=None, api_key=None)


def duplicates(data_dir: Path) -> int:
    with open_raw(data_dir) as raw:
        if not raw.collection_exists("encore_catalog"):
            return 0
        seen: Counter = Counter()
        offset = None
        while True:
            page, offset = raw.scroll("encore_catalog", limit=1000, offset=offset,
                                      with_payload=["track_id", "segment"])
            seen.update((r.payload.get("track_id"), r.payload.get("segment")) for r in page if r.payload)
            if offset is None:
                return sum(n - 1 for n in seen.values() if n > 1)


def after_kill(fig: Figures, data_dir: Path, before: set[str]) -> set[str]:
    """Check the store a kill left, restart it, check again; return the complete tracks."""
    with open_raw(data_dir) as raw:
        state = inspect_catalog(raw)
    fig.journalled += bool(state.pending)
    fig.orphans_before_restart += state.orphans
    fig.broken += len(state.broken)
    fig.broken_examples = (fig.broken_examples + state.broken)[:5]
    fig.duplicates += duplicates(data_dir)
    started = time.perf_counter()
    with Encore.open(settings(data_dir)) as enc:
        fig.recovery_s.append(time.perf_counter() - started)
        fig.repaired_points += enc.repaired.points if enc.repaired else 0
    with open_raw(data_dir) as raw:
        after = inspect_catalog(raw)
    fig.orphans_after_restart += after.orphans + len(after.pending)
    fig.broken += len(after.broken)
    fig.lost += len(before - set(after.complete))
    return set(after.complete)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200, help="kills in all (70%% catalog add, 15%% remove, 15%% world)")
    ap.add_argument("--tracks", type=int, default=30, help="catalog tracks")
    ap.add_argument("--world", type=int, default=3000, help="sample world tracks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    fig = Figures()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="encore-crash-") as tmp:
        work = Path(tmp)
        folder = work / "tracks"
        folder.mkdir()
        for i in range(args.tracks):
            y = synth_track(9000 + i, seconds=rng.uniform(20, 60), sr=SR)
            write_audio(folder / f"track{i:04d}.wav", y, sr=SR, fmt="wav")
        with Encore.open(settings(work / "reference")) as enc:
            t0 = time.perf_counter()
            report = index_catalog(enc, [folder], progress=False)
            catalog_s = time.perf_counter() - t0
            reference = {f.track_id: int(enc.catalog.track(f.track_id)["segments"]) for f in report.files}
        print(f"reference: {len(reference)} tracks, {sum(reference.values())} segments, {catalog_s:.1f} s",
              file=sys.stderr)

        n_remove = args.kills * 15 // 100
        n_world = args.kills * 15 // 100
        n_catalog = args.kills - n_remove - n_world
        data = work / "data"
        complete: set[str] = set()

        # --- catalog add ----------------------------------------------------------------------
        # How long a whole ingest runs once it holds the store: the clean run's time, or longer
        # when a run the kill missed took longer (never shorter: a run that found most tracks
        # stored is quick, and learning from it would crash every later run in its first seconds).
        span = catalog_s
        while fig.kills["catalog add"] < n_catalog:
            fig.runs += 1
            proc = start(["catalog", "add", str(folder), "--no-progress"], data)
            if rng.random() < 0.2:
                delay = rng.uniform(0.0, 3.0)
            else:
                wait_for_store(proc, data)
                delay = rng.uniform(0.0, span)
            t_open = time.perf_counter()
            if not kill_after(proc, delay):
                span = max(span, time.perf_counter() - t_open)
                fig.missed += 1
                with open_raw(data) as raw:
                    done = inspect_catalog(raw)
                if proc.returncode != 0 or done.complete != reference:
                    raise SystemExit(f"a run that finished left {len(done.complete)} of {len(reference)} tracks")
                shutil.rmtree(data)
                complete = set()
                continue
            fig.kills["catalog add"] += 1
            complete = after_kill(fig, data, complete)
            if fig.kills["catalog add"] % 10 == 0:
                print(f"catalog add: {fig.kills['catalog add']} kills ({fig.missed} runs missed), {len(complete)} "
                      f"tracks complete, {fig.journalled} kills inside a multi-point write", file=sys.stderr)
        t0 = time.perf_counter()
        proc = start(["catalog", "add", str(folder), "--no-progress"], data)
        proc.communicate()
        fig.final_rerun_s["catalog add"] = round(time.perf_counter() - t0, 2)
        with open_raw(data) as raw:
            fig.final_catalog_ok = proc.returncode == 0 and inspect_catalog(raw).complete == reference

        # --- catalog remove -------------------------------------------------------------------
        victims = rng.sample(sorted(reference), min(n_remove, len(reference)))
        for track_id in victims:
            proc = start(["catalog", "remove", track_id], data)
            wait_for_store(proc, data)
            if kill_after(proc, rng.uniform(0.0, 0.3)):
                fig.kills["catalog remove"] += 1
            else:
                fig.missed += 1
            complete = after_kill(fig, data, complete - {track_id})
            start(["catalog", "remove", track_id], data).communicate()  # finish it, whatever happened
            complete.discard(track_id)
        with open_raw(data) as raw:
            left = inspect_catalog(raw)
        fig.final_catalog_ok &= left.complete == {t: n for t, n in reference.items() if t not in victims}

        # --- world sample ---------------------------------------------------------------------
        whole = set(range(0, args.world, SAMPLE_BATCH)) | {args.world}
        expected = {world_id("sample", f"{args.seed}:{i}") for i in range(args.world)}
        world_data = work / "world"
        sample = ["world", "sample", "--count", str(args.world), "--seed", str(args.seed), "--no-progress"]
        t0 = time.perf_counter()
        proc = start(sample, work / "world-reference")
        proc.communicate()
        world_s = time.perf_counter() - t0
        stored: set[str] = set()
        while fig.kills["world sample"] < n_world:
            fig.runs += 1
            proc = start(sample, world_data)
            wait_for_store(proc, world_data)
            t_open = time.perf_counter()
            if not kill_after(proc, rng.uniform(0.0, world_s)):
                world_s = max(world_s, time.perf_counter() - t_open)
                fig.missed += 1
                shutil.rmtree(world_data)
                stored = set()
                continue
            fig.kills["world sample"] += 1
            with open_raw(world_data) as raw:
                state = inspect_world(raw)
            fig.world_broken += len(state.broken) + len(state.ids - expected)
            fig.world_partial_batches += len(state.ids) not in whole
            fig.lost += len(stored - state.ids)
            stored = state.ids
        t0 = time.perf_counter()
        start(sample, world_data).communicate()
        fig.final_rerun_s["world sample"] = round(time.perf_counter() - t0, 2)
        with open_raw(world_data) as raw:
            state = inspect_world(raw)
            fig.final_world_ok = state.ids == expected and not state.broken and raw.count("encore_world") == args.world

    rec = sorted(fig.recovery_s)
    out = {
        "kills": sum(fig.kills.values()), "kills_by_command": dict(fig.kills), "runs_missed": fig.missed,
        "kills_inside_a_multi_point_write": fig.journalled, "points_repaired_on_restart": fig.repaired_points,
        "tracks_lost": fig.lost, "duplicates": fig.duplicates, "broken_visible_tracks": fig.broken,
        "broken_examples": fig.broken_examples,
        "orphans_before_restart": fig.orphans_before_restart, "orphans_after_restart": fig.orphans_after_restart,
        "world_broken_points": fig.world_broken, "world_partial_batches": fig.world_partial_batches,
        "recovery_s_p50": round(statistics.median(rec), 3) if rec else None,
        "recovery_s_max": round(rec[-1], 3) if rec else None,
        "final_rerun_s": fig.final_rerun_s, "final_catalog_complete": fig.final_catalog_ok,
        "final_world_complete": fig.final_world_ok,
        "tracks": args.tracks, "segments": sum(reference.values()), "world": args.world, "seed": args.seed,
        "took_s": round(time.perf_counter() - started, 1),
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    print(json.dumps(out, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    ok = (fig.lost == fig.duplicates == fig.broken == fig.orphans_after_restart == fig.world_broken
          == fig.world_partial_batches == 0 and fig.final_catalog_ok and fig.final_world_ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

