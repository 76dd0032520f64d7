"""``encore snapshot create|restore``: both tiers in one archive, restored here or into a server.

The embedded store is the real engine; the Qdrant server is played by qdrant-client's in-memory
mode (the remote backend's code path, with a client that needs no server).
"""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from encore import __version__
from encore.catalog import TrackMeta, segment_id
from encore.cli import cli
from encore.config import Settings
from encore.service import Encore
from encore.snapshot import create_snapshot, restore_snapshot
from encore.storage import Point, SparseVector, VectorStore
from encore.storage.remote import RemoteStore
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from schemas.collections import CATALOG_SCHEMA_VERSION, WORLD_SCHEMA_VERSION
from schemas.snapshot import SnapshotCreated, SnapshotRestored
from tests.utils.audio import synth_track

SR = 8000
N_WORLD = 300
SEEDS = (31, 32, 33)
runner = CliRunner()


def _settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, qdrant_url=None, api_key=None, **overrides)


def encore(*args: str | Path):
    return runner.invoke(cli, [str(a) for a in args])


def one_error_line(result, *words: str) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def dump(store: VectorStore) -> dict[str, dict[str, tuple]]:
    """Every point of both tiers: id -> (payload, vectors as comparable values)."""
    out: dict[str, dict[str, tuple]] = {}
    for name in ("encore_catalog", "encore_world"):
        points, offset = {}, None
        while True:
            page, offset = store.scroll(name, limit=500, offset=offset, with_payload=True, with_vectors=True)
            for r in page:
                vectors = {k: (tuple(v.indices), tuple(v.values)) if isinstance(v, SparseVector)
                           else tuple(np.float32(v)) for k, v in (r.vectors or {}).items()}
                points[r.id] = (r.payload, vectors)
            if offset is None:
                break
        out[name] = points
    return out


def assert_same_points(got: dict, want: dict, *, atol: float) -> None:
    """The same ids and payloads; vectors equal to ``atol`` (a server normalises cosine vectors
    again, in its own float arithmetic: the last bit may differ)."""
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].keys() == want[name].keys(), name
        for pid, (payload, vectors) in want[name].items():
            got_payload, got_vectors = got[name][pid]
            assert got_payload == payload and got_vectors.keys() == vectors.keys()
            for k, v in vectors.items():
                a, b = (v[1], got_vectors[k][1]) if isinstance(v[0], tuple) else (v, got_vectors[k])
                assert np.allclose(a, b, rtol=0, atol=atol), (name, pid, k)


def answers(enc: Encore, audio: dict[int, np.ndarray]) -> dict:
    """What users see: identify matches, similar tracks, an artist radio, a text search."""
    seen: dict = {}
    for seed, y in audio.items():
        m = enc.identify_audio(np.ascontiguousarray(y[5 * SR : 13 * SR]), sr=SR, similar=False).match
        seen[f"identify {seed}"] = None if m is None else (m.track_id, m.title, m.offset_s, m.confidence)
    some = sorted(enc.store.scroll("encore_world", limit=3, with_payload=False)[0], key=lambda r: r.id)
    for r in some:
        seen[f"similar {r.id}"] = [(t.track_id, t.similarity) for t in enc.similar_tracks(r.id, limit=10)]
    seen["search"] = [t.track_id for t in enc.search("happy dance music", limit=10).results]
    return seen


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An embedded store with three catalog tracks and a sample world, its dump and answers."""
    data_dir = tmp_path_factory.mktemp("source") / "data"
    audio = {seed: synth_track(seed, seconds=28, sr=SR) for seed in SEEDS}
    with Encore.open(_settings(data_dir)) as enc:
        for seed, y in audio.items():
            enc.add_catalog_audio(y, meta=TrackMeta(title=f"Song {seed}", artist="Band", album="LP"), sr=SR)
        ingest_batches(enc, sample_batches(N_WORLD, seed=9, head=enc.tag_head, space="musicnn"),
                       total=N_WORLD, source="sample", progress=False)
        state = {"dump": dump(enc.store), "answers": answers(enc, audio),
                 "catalog_points": enc.catalog.count_points()}
    assert all(v is not None for k, v in state["answers"].items() if k.startswith("identify"))
    return {"data_dir": data_dir, "audio": audio, **state}


@pytest.fixture
def snapshot(source: dict, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``encore snapshot create`` of the source store, through the CLI."""
    out = tmp_path_factory.mktemp("snapshots")
    _use(monkeypatch, source["data_dir"])
    result = encore("snapshot", "create", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    created = SnapshotCreated.model_validate_json(result.stdout)
    assert Path(created.path).parent == out and Path(created.path).name.startswith("encore-snapshot-")
    return Path(created.path)


def _use(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **env: str) -> None:
    from encore.config import get_settings

    monkeypatch.setenv("ENCORE_DATA_DIR", str(data_dir))
    for name in ("ENCORE_QDRANT_URL", "ENCORE_API_KEY", "ENCORE_CATALOG_EMBEDDINGS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from encore.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_manifest_says_what_the_archive_holds(snapshot: Path, source: dict) -> None:
    with tarfile.open(snapshot) as tar:
        assert tar.getnames() == ["manifest.json", "catalog.jsonl.gz", "world.jsonl.gz"]
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["format"] == "encore-snapshot" and manifest["format_version"] == 1
    assert manifest["encore_version"] == __version__ and manifest["backend"] == "edge"
    assert manifest["created"].endswith("Z")
    catalog, world = manifest["tiers"]["catalog"], manifest["tiers"]["world"]
    assert catalog["collection"] == "encore_catalog" and catalog["schema_version"] == CATALOG_SCHEMA_VERSION
    assert catalog["tracks"] == len(SEEDS) and catalog["points"] == source["catalog_points"]
    assert catalog["fingerprint"]["sparse"] == {"landmarks": [True]}
    assert world["schema_version"] == WORLD_SCHEMA_VERSION and world["tracks"] == world["points"] == N_WORLD
    assert world["fingerprint"]["dense"]["musicnn"] == [200, "cosine"]


def test_create_wipe_restore_gives_back_the_same_store(source: dict, tmp_path, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(source["data_dir"], data_dir)
    _use(monkeypatch, data_dir)
    result = encore("snapshot", "create", "--out", tmp_path / "backups")
    assert result.exit_code == 0, result.output
    assert f"catalog {len(SEEDS)} tracks" in result.stdout and f"world {N_WORLD} tracks" in result.stdout
    snapshot = next((tmp_path / "backups").glob("encore-snapshot-*.tar"))
    shutil.rmtree(data_dir)  # the machine lost its data folder
    result = encore("snapshot", "restore", snapshot, "--json")
    assert result.exit_code == 0, result.output
    restored = SnapshotRestored.model_validate_json(result.stdout)
    assert restored.backend == "edge" and not restored.replaced
    assert restored.tiers["catalog"].tracks == len(SEEDS) and restored.tiers["world"].points == N_WORLD
    with Encore.open(_settings(data_dir)) as enc:
        assert dump(enc.store) == source["dump"], "ids, payloads and vectors all come back"
        assert answers(enc, source["audio"]) == source["answers"]


def test_restore_over_stored_data_needs_force(snapshot: Path, source: dict, tmp_path, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(source["data_dir"], data_dir)
    extra = synth_track(77, seconds=20, sr=SR)
    with Encore.open(_settings(data_dir)) as enc:
        extra_id = enc.add_catalog_audio(extra, meta=TrackMeta(title="Added later"), sr=SR).track_id
        before = dump(enc.store)
    _use(monkeypatch, data_dir)
    one_error_line(encore("snapshot", "restore", snapshot), "already holds", "--force")
    assert encore("snapshot", "restore", snapshot).exit_code == 2
    with Encore.open(_settings(data_dir)) as enc:
        assert dump(enc.store) == before, "refused: nothing changed"

    result = encore("snapshot", "restore", snapshot, "--force")
    assert result.exit_code == 0, result.output
    assert "replaced what was stored" in result.stdout
    with Encore.open(_settings(data_dir)) as enc:
        assert dump(enc.store) == source["dump"]
        assert enc.identify_audio(extra[2 * SR : 10 * SR], sr=SR, similar=False).match is None
        assert extra_id not in {r.id for r in enc.store.scroll("encore_catalog", limit=1000)[0]}


def _damaged(snapshot: Path, folder: Path) -> dict[str, Path]:
    """Copies of the archive, each broken another way."""
    data = snapshot.read_bytes()
    out = {}

    def write(name: str, blob: bytes) -> None:
        out[name] = folder / f"{name}.tar"
        out[name].write_bytes(blob)

    write("truncated", data[: len(data) // 2])
    write("cut in the manifest", data[:700])
    with tarfile.open(snapshot) as tar:
        world = tar.getmember("world.jsonl.gz")
    flipped = bytearray(data)
    flipped[world.offset_data + world.size // 2] ^= 0x40  # inside the world points
    write("a flipped bit", bytes(flipped))
    write("not a tar", b"just some text, not an archive\n" * 100)
    write("empty", b"")
    with tarfile.open(snapshot) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}

    def repack(name: str, files: dict[str, bytes]) -> None:
        import io

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for member, blob in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        write(name, buf.getvalue())

    repack("without the world points", {k: v for k, v in members.items() if k != "world.jsonl.gz"})
    manifest = json.loads(members["manifest.json"])
    manifest["format_version"] = 99
    repack("a future format", {**members, "manifest.json": json.dumps(manifest).encode()})
    manifest = json.loads(members["manifest.json"])
    manifest["tiers"]["world"]["points"] += 1
    repack("a wrong count", {**members, "manifest.json": json.dumps(manifest).encode()})
    return out


def test_a_damaged_archive_is_refused_and_changes_nothing(snapshot: Path, source: dict, tmp_path, monkeypatch) -> None:
    broken = _damaged(snapshot, tmp_path)
    fresh = tmp_path / "fresh"
    _use(monkeypatch, fresh)
    for name, path in broken.items():
        result = encore("snapshot", "restore", path, "--force")
        assert result.exit_code == 2, (name, result.output)
        line = one_error_line(result, str(path))
        assert any(w in line for w in ("damaged", "truncated", "not an Encore snapshot", "format version",
                                       "lacks")), (name, line)
        assert not fresh.exists(), f"{name}: the data folder was touched"

    data_dir = tmp_path / "data"
    shutil.copytree(source["data_dir"], data_dir)
    _use(monkeypatch, data_dir)
    for name in ("truncated", "a flipped bit", "a wrong count"):
        assert encore("snapshot", "restore", broken[name], "--force").exit_code == 2, name
    with Encore.open(_settings(data_dir)) as enc:
        assert dump(enc.store) == source["dump"], "a stored collection survives a damaged --force restore"


def test_a_snapshot_of_other_collection_definitions_is_refused(snapshot: Path, tmp_path, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    _use(monkeypatch, data_dir, ENCORE_CATALOG_EMBEDDINGS="true")
    result = encore("snapshot", "restore", snapshot)
    assert result.exit_code == 2
    one_error_line(result, "catalog tier", "other parameters", __version__)
    with Encore.open(_settings(data_dir, catalog_embeddings=True)) as enc:
        assert enc.catalog.count_points() == 0 and enc.world.count() == 0


def test_an_embedded_snapshot_moves_to_a_qdrant_server(snapshot: Path, source: dict, tmp_path, monkeypatch) -> None:
    """ENCORE_QDRANT_URL set: ``snapshot restore`` loads the archive into the server."""
    from qdrant_client import QdrantClient

    from encore import storage

    client = QdrantClient(":memory:")  # stands in for the server at ENCORE_QDRANT_URL
    opened: list[str] = []

    def open_store(settings: Settings) -> VectorStore:
        opened.append(str(settings.qdrant_url))
        return RemoteStore(client)

    monkeypatch.setattr(storage, "open_store", open_store)
    _use(monkeypatch, tmp_path / "unused", ENCORE_QDRANT_URL="http://qdrant.example:6333")
    result = encore("snapshot", "restore", snapshot, "--json")
    assert result.exit_code == 0, result.output
    assert opened == ["http://qdrant.example:6333"]
    assert SnapshotRestored.model_validate_json(result.stdout).backend == "remote"
    assert not (tmp_path / "unused").exists(), "nothing embedded was created"

    enc = Encore(RemoteStore(client), _settings(tmp_path / "unused"))
    assert_same_points(dump(enc.store), source["dump"], atol=1e-6)
    assert answers(enc, source["audio"]) == source["answers"]

    # And back: a snapshot of the server restores into embedded storage.
    remote_snapshot = create_snapshot(enc, tmp_path / "from-server")
    assert remote_snapshot.manifest.backend == "remote"
    back = tmp_path / "back"
    with Encore.open(_settings(back)) as local:
        restore_snapshot(local.store, _settings(back), remote_snapshot.path)
    with Encore.open(_settings(back)) as local:
        assert_same_points(dump(local.store), source["dump"], atol=1e-6)
        assert answers(local, source["audio"]) == source["answers"]


def test_incomplete_catalog_tracks_stay_out_of_a_snapshot(source: dict, tmp_path: Path) -> None:
    """On a server, another process may be mid-add; damage may have cost a track a segment."""
    from qdrant_client import QdrantClient

    enc = Encore(RemoteStore(QdrantClient(":memory:")), _settings(tmp_path / "unused"))
    ids = []
    for seed, y in source["audio"].items():
        ids.append(enc.add_catalog_audio(y, meta=TrackMeta(title=f"Song {seed}"), sr=SR).track_id)
    y = synth_track(88, seconds=25, sr=SR)
    partial = enc.add_catalog_audio(y, meta=TrackMeta(title="In progress"), sr=SR)
    enc.catalog._mark_pending(partial.track_id, "add")  # as if its add had only just begun
    enc.store.delete("encore_catalog", ids=[segment_id(ids[0], 1)])  # damage: one segment lost
    assert enc.catalog.count_tracks() == len(ids)

    created = create_snapshot(enc, tmp_path / "snaps")
    catalog = created.manifest.tiers["catalog"]
    assert catalog.tracks == len(ids) - 1 and catalog.skipped_tracks == 1
    back = tmp_path / "back"
    with Encore.open(_settings(back)) as local:
        restore_snapshot(local.store, _settings(back), created.path)
        kept = {r.payload["track_id"] for r in local.store.scroll("encore_catalog", limit=1000)[0]}
        assert kept == set(ids[1:]), "only whole tracks, and no marker, were restored"
        assert local.catalog.count_points() == sum(local.catalog.track(t)["segments"] for t in kept)


@pytest.mark.parametrize("backend", ["edge", "remote"])
def test_drop_collection_and_collection_exists_agree_on_both_backends(backend: str, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    from encore.storage.edge import EdgeStore
    from schemas.collections import CollectionSpec, DenseVectorSpec

    store = EdgeStore(tmp_path / "s") if backend == "edge" else RemoteStore(QdrantClient(":memory:"))
    spec = CollectionSpec(name="c", schema_version=1, dense={"v": DenseVectorSpec(dim=2)})
    try:
        assert not store.collection_exists("c")
        store.ensure_collection(spec)
        store.upsert("c", [Point(id=segment_id("8d1e4c3a-2b7f-4f0a-b9d6-5a3c1e7f9b20", 0), vectors={"v": [1, 0]})])
        assert store.collection_exists("c") and store.count("c") == 1
        store.drop_collection("c")
        store.drop_collection("c")  # dropping a missing collection is no error
        assert not store.collection_exists("c")
        store.ensure_collection(spec)
        assert store.count("c") == 0
    finally:
        store.close()
