"""Crash-safety helpers, shared by tests/test_crash_safety.py and bench/crash.py.

* :func:`start` runs an ``encore`` command in a subprocess, :func:`wait_for_store` waits until it
  holds the embedded store (its pid is in the store's lock file), :func:`kill_after` SIGKILLs it.
* :func:`inspect_catalog` and :func:`inspect_world` read a store through the storage layer only
  (no facade, so no repair runs) and report what a crash left: complete tracks, tracks with a
  pending marker, orphan points (neither), and broken visible tracks (missing a segment, a vector
  or a payload field).
* ``python -m tests.utils.crash DATA_DIR add|remove|acks ARG N`` runs one catalog add or removal
  (or a loop of acknowledged upserts) and SIGKILLs itself right after its N-th store write: a
  crash at an exact write boundary, which random kills rarely hit.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from encore.catalog import PENDING_SEGMENT, segment_id
from encore.storage import SparseVector, VectorStore
from encore.storage.edge import LOCK_FILE, EdgeStore
from encore.world import PAYLOAD_FIELDS

ROOT = Path(__file__).resolve().parents[2]
CATALOG = "encore_catalog"
WORLD = "encore_world"
#: What every stored catalog segment carries.
SEGMENT_KEYS = ("track_id", "title", "segments", "duration_s", "segment", "start_frame", "lm", "env")
#: The vectors every world track (sample or audio) carries, and their sizes.
WORLD_VECTORS = {"musicnn": 200, "tags": 50}
#: Points per world upsert of ``encore world sample`` (indexers.sample.SampleParams.batch).
SAMPLE_BATCH = 1000


def env_for(data_dir: Path) -> dict[str, str]:
    """The environment of a child ``encore``: the test's data folder, nothing else of ENCORE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env["ENCORE_DATA_DIR"] = str(data_dir)
    return env


def start(args: Sequence[str], data_dir: Path) -> subprocess.Popen[bytes]:
    """``encore ARGS`` (as ``python -m encore.cli``) with ENCORE_DATA_DIR=data_dir, on this CPU set."""
    return subprocess.Popen([sys.executable, "-m", "encore.cli", *args], cwd=ROOT, env=env_for(data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_store(proc: subprocess.Popen[bytes], data_dir: Path, *, timeout: float = 120.0) -> bool:
    """Wait until ``proc`` holds the embedded store under ``data_dir`` (its pid in the lock file).

    Returns False when the process ended first.
    """
    lock = data_dir / "qdrant" / LOCK_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if lock.read_text().strip() == str(proc.pid):
                return True
        except OSError:
            pass
        time.sleep(0.003)
    raise TimeoutError(f"pid {proc.pid} did not open the store in {timeout} s")


def kill_after(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds from now; True when it was still running (the kill landed)."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
    landed = proc.poll() is None
    if landed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return landed and proc.returncode == -signal.SIGKILL


# --- what a crash left --------------------------------------------------------------------------


@dataclass
class CatalogState:
    complete: dict[str, int] = field(default_factory=dict)
    """Visible tracks (head stored, ``segment == 0``) and their point count."""
    pending: set[str] = field(default_factory=set)
    """Tracks with a pending marker (an add or removal that a restart finishes)."""
    orphans: int = 0
    """Points of tracks that are neither complete nor pending: what must never exist."""
    broken: list[str] = field(default_factory=list)
    """Visible tracks missing a segment, a vector or a payload field: what must never exist."""
    points: int = 0


def _scroll(store: VectorStore, collection: str, **kwargs: object) -> list:
    out, offset = [], None
    while True:
        page, offset = store.scroll(collection, limit=500, offset=offset, **kwargs)  # type: ignore[arg-type]
        out += page
        if offset is None:
            return out


def inspect_catalog(store: VectorStore, collection: str = CATALOG) -> CatalogState:
    """Check every catalog point, by track."""
    state = CatalogState()
    if not store.collection_exists(collection):
        return state
    records = _scroll(store, collection, with_payload=True, with_vectors=True)
    state.points = len(records)
    by_track: dict[str, list] = defaultdict(list)
    for r in records:
        by_track[str((r.payload or {}).get("track_id"))].append(r)
    for tid, recs in by_track.items():
        head = next((r for r in recs if r.id == segment_id(tid, 0)), None) if tid != "None" else None
        segment_of_head = (head.payload or {}).get("segment") if head is not None else None
        if segment_of_head == PENDING_SEGMENT:
            state.pending.add(tid)
            continue
        if segment_of_head != 0:
            state.orphans += len(recs)
            continue
        problems = _segment_problems(tid, recs, int((head.payload or {}).get("segments") or 0))
        if problems:
            state.broken.append(f"{tid}: {problems}")
        state.complete[tid] = len(recs)
    return state


def _segment_problems(tid: str, recs: list, segments: int) -> str:
    found = sorted(int((r.payload or {}).get("segment", -99)) for r in recs)
    if found != list(range(segments)):
        return f"segments {found}, expected 0..{segments - 1}"
    for r in recs:
        p = r.payload or {}
        missing = [k for k in SEGMENT_KEYS if k not in p]
        if missing:
            return f"segment {p.get('segment')} lacks payload {missing}"
        if r.id != segment_id(tid, int(p["segment"])):
            return f"segment {p['segment']} stored under a foreign id {r.id}"
        vec = (r.vectors or {}).get("landmarks")
        # A segment without landmarks (a short or quiet tail) has an empty vector and an empty lm.
        if not isinstance(vec, SparseVector) or bool(len(vec.indices)) != bool(p["lm"]):
            return f"segment {p['segment']} has no landmarks vector, or one that disagrees with its payload"
    return ""


@dataclass
class WorldState:
    ids: set[str] = field(default_factory=set)
    broken: list[str] = field(default_factory=list)


def inspect_world(store: VectorStore, collection: str = WORLD) -> WorldState:
    """Check every world point: all its vectors (finite, right size) and payload fields."""
    state = WorldState()
    if not store.collection_exists(collection):
        return state
    for r in _scroll(store, collection, with_payload=True, with_vectors=True):
        state.ids.add(r.id)
        p, v = r.payload or {}, r.vectors or {}
        missing = [k for k in PAYLOAD_FIELDS if k not in p]
        if missing or p.get("track_id") != r.id:
            state.broken.append(f"{r.id}: payload lacks {missing} or names another id")
        for name, dim in WORLD_VECTORS.items():
            vec = v.get(name)
            if vec is None or len(vec) != dim or not all(math.isfinite(x) for x in vec):
                state.broken.append(f"{r.id}: vector {name} missing or malformed")
    return state


def open_raw(data_dir: Path) -> EdgeStore:
    """The embedded store under ``data_dir``, opened through the storage layer only (no repair)."""
    return EdgeStore(data_dir / "qdrant")


# --- crashing at an exact write -----------------------------------------------------------------


def _die_after(store: VectorStore, n: int) -> None:
    """Make ``store`` SIGKILL this process right after its ``n``-th upsert or delete returns."""
    done = [0]

    def counted(write):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            write(*args, **kwargs)
            done[0] += 1
            if done[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)

        return wrapper

    store.upsert = counted(store.upsert)  # type: ignore[method-assign]
    store.delete = counted(store.delete)  # type: ignore[method-assign]


def _main(argv: Sequence[str]) -> int:
    from encore.catalog import TrackMeta
    from encore.config import Settings
    from encore.service import Encore
    from encore.storage import Point
    from schemas.collections import CollectionSpec, DenseVectorSpec

    data_dir, action, arg, n = Path(argv[0]), argv[1], argv[2], int(argv[3])
    if action == "acks":  # acknowledged upserts, one point each, until killed from outside
        store = open_raw(data_dir)
        store.ensure_collection(CollectionSpec(name="acks", schema_version=1,
                                               dense={"v": DenseVectorSpec(dim=8)}, payload_indexes={"i": "integer"}))
        for i in range(n):
            store.upsert("acks", [Point(id=ack_id(i), vectors={"v": [1.0 + i] + [0.5] * 7}, payload={"i": i})])
            sys.stdout.write(f"ack {i}\n")
            sys.stdout.flush()
        return 0
    enc = Encore.open(Settings(data_dir=data_dir, qdrant_url=None, api_key=None))
    _die_after(enc.store, n)
    if action == "add":
        enc.add_catalog_file(Path(arg), meta=TrackMeta(title=Path(arg).stem))
    elif action == "remove":
        enc.remove_catalog_track(arg)
    else:
        raise SystemExit(f"unknown action {action!r}")
    enc.close()
    return 0


def ack_id(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"ack:{i}"))


def crash_child(data_dir: Path, action: str, arg: str, n: int) -> subprocess.Popen[bytes]:
    """``python -m tests.utils.crash DATA_DIR ACTION ARG N`` in a subprocess."""
    return subprocess.Popen([sys.executable, "-m", "tests.utils.crash", str(data_dir), action, arg, str(n)],
                            cwd=ROOT, env=env_for(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
