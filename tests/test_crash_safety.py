"""Crash safety: ``kill -9`` at random moments, many times; the store keeps whole tracks or none.

Real ``encore`` subprocesses (catalog add, world sample, world add, catalog remove) are SIGKILLed
at seeded random moments once they hold the embedded store. After each kill the store is read
through the storage layer, before anything repairs it, and then reopened the way every command
opens it (the facade finishes interrupted catalog writes). Then the ingest is run again to the
end and compared with a clean run. A second set of crashes is placed exactly at each store write
of a catalog add and removal, which random kills rarely hit, and a third checks that a write the
store acknowledged survives the kill that follows it.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from encore.catalog import TrackMeta
from encore.config import Settings
from encore.service import Encore
from encore.world import world_id
from indexers.pipeline import index_catalog, index_world, ingest_batches
from indexers.sample import sample_batches
from tests.utils.audio import synth_track, write_audio
from tests.utils.crash import (
    SAMPLE_BATCH,
    ack_id,
    crash_child,
    inspect_catalog,
    inspect_world,
    kill_after,
    open_raw,
    start,
    wait_for_store,
)

SEED = 61
SR = 8000
#: Catalog tracks of 3 to 6 segments (a segment is about 10 s).
DURATIONS = (22, 31, 45, 27, 38, 52)
CATALOG_KILLS = 10
SAMPLE_COUNT = 2500
SAMPLE_KILLS = 4
WORLD_ADD_KILLS = 2
REMOVE_KILLS = 3


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, qdrant_url=None, api_key=None)


def _reopen_and_check_catalog(data_dir: Path, expected: dict[str, int]) -> dict[str, int]:
    """Read the raw store (no repair), then reopen it like a command does; return the tracks there."""
    with open_raw(data_dir) as raw:
        state = inspect_catalog(raw)
    assert not state.broken, f"visible tracks with parts missing after kill -9: {state.broken}"
    assert state.orphans == 0, "points outside any complete or journalled track"
    assert set(state.complete) <= set(expected)
    assert all(state.complete[t] == expected[t] for t in state.complete)
    with Encore.open(_settings(data_dir)) as enc:  # the restart: interrupted writes are finished here
        assert enc.catalog.count_tracks() == len(state.complete)
    with open_raw(data_dir) as raw:
        after = inspect_catalog(raw)
    assert not after.pending and after.orphans == 0 and not after.broken
    assert after.complete == state.complete, "a restart keeps every complete track and nothing else"
    assert after.points == sum(after.complete.values())
    return after.complete


@pytest.fixture(scope="module")
def catalog_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], float]:
    """A folder of catalog tracks, and a clean in-process run's tracks (id -> segments) and time."""
    folder = tmp_path_factory.mktemp("catalog-tracks")
    for i, seconds in enumerate(DURATIONS):
        write_audio(folder / f"track{i}.wav", synth_track(700 + i, seconds=seconds, sr=SR), sr=SR, fmt="wav")
    with Encore.open(_settings(tmp_path_factory.mktemp("catalog-reference"))) as enc:
        started = time.perf_counter()
        report = index_catalog(enc, [folder], progress=False)
        took = time.perf_counter() - started
        expected = {f.track_id: int(enc.catalog.track(f.track_id)["segments"]) for f in report.files}
    assert report.added == len(DURATIONS) and all(n >= 3 for n in expected.values())
    return folder, expected, took


def test_catalog_add_killed_at_random_keeps_whole_tracks_and_completes(catalog_files, tmp_path: Path) -> None:
    folder, expected, took = catalog_files
    rng = random.Random(SEED)
    data = tmp_path / "data"
    kills = attempts = journalled = 0
    while kills < CATALOG_KILLS:
        attempts += 1
        assert attempts <= 3 * CATALOG_KILLS, "the kills keep missing: the ingest is faster than expected"
        proc = start(["catalog", "add", str(folder), "--json", "--no-progress"], data)
        if rng.random() < 0.2:  # now and then during start-up: imports, creating the collections
            delay = rng.uniform(0.0, 2.0)
        else:
            wait_for_store(proc, data)
            delay = rng.uniform(0.0, took)
        opened = time.perf_counter()
        if not kill_after(proc, delay):
            assert proc.returncode == 0, proc.stderr
            took = max(took, time.perf_counter() - opened)  # a whole run can be slower here than in-process
            shutil.rmtree(data)  # it finished: start over on an empty store, to crash it again
            continue
        kills += 1
        with open_raw(data) as raw:
            journalled += bool(inspect_catalog(raw).pending)
        _reopen_and_check_catalog(data, expected)

    proc = start(["catalog", "add", str(folder), "--json", "--no-progress"], data)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["rejected"] == 0 and report["added"] + report["exists"] == len(DURATIONS)
    assert _reopen_and_check_catalog(data, expected) == expected, "the re-run completes the set, each track once"
    with Encore.open(_settings(data)) as enc:
        track_id = next(iter(expected))
        y = synth_track(700, seconds=DURATIONS[0], sr=SR)
        match = enc.identify_audio(np.ascontiguousarray(y[4 * SR : 12 * SR]), sr=SR, similar=False).match
        assert match is not None and match.track_id == track_id and match.title == "track0"
        assert enc.stats().catalog.points == sum(expected.values())
    print(f"catalog add: {kills} kills in {attempts} runs, {journalled} left a journalled track")


def test_a_crash_at_each_write_of_an_add_or_removal_is_finished_by_the_next_open(catalog_files, tmp_path) -> None:
    folder, expected, _ = catalog_files
    path = folder / "track1.wav"
    track_id = list(expected)[1]  # the clean run added the files in name order
    segments = expected[track_id]
    # An add writes the marker, the other segments (one batch here), then the head: die after each.
    for n, visible in ((1, False), (2, False), (3, True)):
        data = tmp_path / f"add-{n}"
        child = crash_child(data, "add", str(path), n)
        child.communicate(timeout=300)
        assert child.returncode == -9
        with open_raw(data) as raw:
            state = inspect_catalog(raw)
        assert not state.broken and state.orphans == 0
        assert (track_id in state.complete) == visible and (track_id in state.pending) == (not visible)
        if not visible:
            assert state.points == (1 if n == 1 else segments), "the marker, then the marker and the segments"
        assert _reopen_and_check_catalog(data, expected) == ({track_id: segments} if visible else {})
        with Encore.open(_settings(data)) as enc:  # adding the file again writes it whole
            assert enc.add_catalog_file(path, meta=TrackMeta(title="x")).status == (
                "exists" if visible else "added")
        assert _reopen_and_check_catalog(data, expected) == {track_id: segments}

    # A removal replaces the head with a marker, then deletes the track: die between the two.
    data = tmp_path / "add-3"
    child = crash_child(data, "remove", track_id, 1)
    child.communicate(timeout=300)
    assert child.returncode == -9
    with open_raw(data) as raw:
        state = inspect_catalog(raw)
    assert state.complete == {} and state.pending == {track_id} and state.points == segments
    assert _reopen_and_check_catalog(data, expected) == {}


def test_catalog_remove_killed_at_random_leaves_the_track_whole_or_gone(catalog_files, tmp_path) -> None:
    folder, expected, _ = catalog_files
    rng = random.Random(SEED + 1)
    data = tmp_path / "data"
    with Encore.open(_settings(data)) as enc:
        index_catalog(enc, [folder], progress=False)
    victims = list(expected)[:REMOVE_KILLS]
    for track_id in victims:
        proc = start(["catalog", "remove", track_id], data)
        wait_for_store(proc, data)
        kill_after(proc, rng.uniform(0.0, 0.3))
        left = _reopen_and_check_catalog(data, expected)
        assert track_id not in left or left[track_id] == expected[track_id]
        proc = start(["catalog", "remove", track_id], data)  # run again: the track ends up gone
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == (0 if track_id in left else 2), err
        assert track_id not in _reopen_and_check_catalog(data, expected)
    left = _reopen_and_check_catalog(data, expected)
    assert left == {t: n for t, n in expected.items() if t not in victims}


def test_world_sample_killed_at_random_stores_whole_batches_and_completes(tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    data = tmp_path / "data"
    with Encore.open(_settings(tmp_path / "reference")) as ref:
        started = time.perf_counter()
        ingest_batches(ref, sample_batches(SAMPLE_COUNT, seed=3, head=ref.tag_head, space="musicnn"),
                       total=SAMPLE_COUNT, source="sample", progress=False)
        took = time.perf_counter() - started
        reference = inspect_world(ref.store).ids
        some = sorted(reference)[:50]
        payloads = [r.payload for r in ref.store.retrieve("encore_world", some)]
    assert reference == {world_id("sample", f"3:{i}") for i in range(SAMPLE_COUNT)}
    whole = {0, SAMPLE_BATCH, 2 * SAMPLE_BATCH, SAMPLE_COUNT}
    kills = attempts = 0
    seen: set[int] = set()
    while kills < SAMPLE_KILLS:
        attempts += 1
        assert attempts <= 3 * SAMPLE_KILLS
        proc = start(["world", "sample", "--count", str(SAMPLE_COUNT), "--seed", "3", "--no-progress"], data)
        wait_for_store(proc, data)
        opened = time.perf_counter()
        if not kill_after(proc, rng.uniform(0.0, took)):
            assert proc.returncode == 0
            took = max(took, time.perf_counter() - opened)
            shutil.rmtree(data)
            continue
        kills += 1
        with open_raw(data) as raw:
            state = inspect_world(raw)
        assert not state.broken, state.broken[:3]
        assert len(state.ids) in whole, "an upsert of a batch is stored whole or not at all"
        assert state.ids <= reference
        seen.add(len(state.ids))
    proc = start(["world", "sample", "--count", str(SAMPLE_COUNT), "--seed", "3", "--json", "--no-progress"], data)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads(out)["added"] + json.loads(out)["exists"] == SAMPLE_COUNT
    with open_raw(data) as raw:
        state = inspect_world(raw)
        assert state.ids == reference and not state.broken and raw.count("encore_world") == SAMPLE_COUNT
        assert [r.payload for r in raw.retrieve("encore_world", some)] == payloads
    with Encore.open(_settings(data)) as enc:
        print(f"world sample: {kills} kills in {attempts} runs, tracks stored at the kills: {sorted(seen)}")
        first = world_id("sample", "3:0")
        assert first not in {t.track_id for t in enc.similar_tracks(first, limit=10)}
        assert len(enc.similar_tracks(first, limit=10)) == 10


def test_world_add_killed_at_random_keeps_whole_tracks_and_completes(tmp_path: Path) -> None:
    rng = random.Random(SEED + 3)
    folder = tmp_path / "world-tracks"
    folder.mkdir()
    for i in range(3):
        write_audio(folder / f"w{i}.wav", synth_track(800 + i, seconds=12, sr=16000), sr=16000, fmt="wav")
    with Encore.open(_settings(tmp_path / "reference")) as ref:
        started = time.perf_counter()
        report = index_world(ref, [folder], progress=False)
        took = time.perf_counter() - started
        reference = {f.track_id for f in report.files}
    assert len(reference) == 3
    data = tmp_path / "data"
    kills = attempts = 0
    while kills < WORLD_ADD_KILLS:
        attempts += 1
        assert attempts <= 4 * WORLD_ADD_KILLS
        proc = start(["world", "add", str(folder), "--no-progress"], data)
        wait_for_store(proc, data)
        opened = time.perf_counter()
        if not kill_after(proc, rng.uniform(0.0, took + 1.0)):  # + loading the encoder
            took = max(took, time.perf_counter() - opened - 1.0)
            shutil.rmtree(data)
            continue
        kills += 1
        with open_raw(data) as raw:
            state = inspect_world(raw)
        assert not state.broken and state.ids <= reference
    proc = start(["world", "add", str(folder), "--json", "--no-progress"], data)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    with open_raw(data) as raw:
        state = inspect_world(raw)
        assert state.ids == reference and not state.broken and raw.count("encore_world") == 3


def test_an_acknowledged_upsert_survives_the_kill_that_follows(tmp_path: Path) -> None:
    """The child prints ``ack i`` once upsert i returned; we kill it as soon as we read a few."""
    rng = random.Random(SEED + 4)
    for round_ in range(2):
        data = tmp_path / f"acks-{round_}"
        child = crash_child(data, "acks", "-", 10_000)
        want = rng.randint(3, 30)
        acked = -1
        assert child.stdout is not None
        for line in child.stdout:
            acked = int(line.split()[1])
            if acked + 1 >= want:
                child.kill()
                break
        child.communicate(timeout=60)
        assert child.returncode == -9 and acked + 1 == want
        with open_raw(data) as raw:
            stored = {r.id: r for r in raw.retrieve("acks", [ack_id(i) for i in range(acked + 2)], with_vectors=True)}
        for i in range(acked + 1):
            r = stored.get(ack_id(i))
            assert r is not None, f"acknowledged upsert {i} of {acked} lost"
            assert r.payload == {"i": i} and len(r.vectors["v"]) == 8


def test_on_a_shared_server_a_fresh_marker_is_left_to_its_writer(tmp_path: Path) -> None:
    """Another process may be adding that track right now: only markers older than the grace go."""
    from qdrant_client import QdrantClient

    from encore.storage.remote import RemoteStore

    store = RemoteStore(QdrantClient(":memory:"))
    enc = Encore(store, _settings(tmp_path / "unused"))
    kept = enc.add_catalog_audio(synth_track(901, seconds=25, sr=SR), meta=TrackMeta(title="Kept"), sr=SR)
    busy = enc.add_catalog_audio(synth_track(902, seconds=35, sr=SR), meta=TrackMeta(title="Busy"), sr=SR)
    busy_segments = enc.catalog.track(busy.track_id)["segments"]
    enc.catalog._mark_pending(busy.track_id, "add")  # as another process does before its segments
    points = enc.catalog.count_points()

    reopened = Encore(store, _settings(tmp_path / "unused"))  # what a second process's start-up does
    assert reopened.repaired is not None and reopened.repaired.waiting == 1 and reopened.repaired.tracks == 0
    assert enc.catalog.count_points() == points, "a writer's work in progress is not deleted"
    assert enc.catalog.count_tracks() == 1

    done = enc.catalog.repair(older_than_s=0.0)  # as if the grace had passed: its writer died
    assert (done.tracks, done.points) == (1, busy_segments)
    assert enc.catalog.count_points() == enc.catalog.track(kept.track_id)["segments"]


def test_a_kill_between_the_schema_record_and_the_shard_leaves_no_collection(tmp_path: Path) -> None:
    """Creating a collection writes the schema record, then the engine's shard. A kill between the
    two left a record that said "exists" for a shard the engine could not open (bench/crash.py
    met it): the collection must count as absent, and the next open must create it."""
    from encore.storage.edge import SCHEMA_FILE, SHARD_CONFIG, EdgeStore

    data = tmp_path / "data"
    with Encore.open(Settings(data_dir=data, qdrant_url=None)):
        pass
    root = data / "qdrant"
    shard = next(p for p in root.iterdir() if (p / SCHEMA_FILE).exists() and "catalog" in p.name)
    # The state the kill leaves: the record only.
    record = (shard / SCHEMA_FILE).read_text()
    for p in list(shard.iterdir()):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    (shard / SCHEMA_FILE).write_text(record)
    with EdgeStore(root) as raw:
        assert not raw.collection_exists(shard.name)
    with Encore.open(Settings(data_dir=data, qdrant_url=None)) as enc:
        assert (shard / SHARD_CONFIG).exists()
        assert enc.stats().catalog.tracks == 0
