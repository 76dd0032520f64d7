"""Moving data between stores (``python -m encore.transfer``): embedded to embedded, and into
qdrant-client (what a server or cluster runs), with identification and search unchanged after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encore.catalog import TrackMeta
from encore.config import Settings
from encore.service import Encore
from encore.transfer import copy_collections, main
from tests.utils.audio import synth_track

SR = 8000
N_WORLD = 150
ROOT = Path(__file__).resolve().parents[1]


def _settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, qdrant_url=None, api_key=None, **overrides)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An embedded store with two catalog tracks and a sample world."""
    from indexers.pipeline import ingest_batches
    from indexers.sample import sample_batches

    data_dir = tmp_path_factory.mktemp("source") / "data"
    audio = {seed: synth_track(seed, seconds=25, sr=SR) for seed in (11, 12)}
    with Encore.open(_settings(data_dir)) as enc:
        ids = {seed: enc.add_catalog_audio(y, meta=TrackMeta(title=f"Song {seed}", artist="Band"), sr=SR).track_id
               for seed, y in audio.items()}
        batches = sample_batches(N_WORLD, seed=5, head=enc.tag_head, space=enc.encoder.description.name)
        ingest_batches(enc, batches, total=N_WORLD, source="sample", progress=False)
        search = [t.track_id for t in enc.search("happy dance", limit=10).results]
        points = enc.store.count(enc.catalog.collection)
    return {"data_dir": data_dir, "audio": audio, "ids": ids, "search": search, "catalog_points": points}


def _check_same_answers(enc: Encore, source: dict) -> None:
    for seed, y in source["audio"].items():
        match = enc.identify_audio(np.ascontiguousarray(y[6 * SR : 14 * SR]), sr=SR, similar=False).match
        assert match is not None and match.track_id == source["ids"][seed] and match.title == f"Song {seed}"
        assert abs(match.offset_s - 6.0) < 0.3
    assert enc.store.count(enc.world.name) == N_WORLD
    assert enc.store.count(enc.catalog.collection) == source["catalog_points"]
    assert [t.track_id for t in enc.search("happy dance", limit=10).results] == source["search"]


def test_python_m_encore_transfer_copies_an_embedded_store(source, tmp_path: Path) -> None:
    target_dir = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env["ENCORE_DATA_DIR"] = str(target_dir)
    cmd = [sys.executable, "-m", "encore.transfer", "--from-data-dir", str(source["data_dir"]), "--batch", "64"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"encore_world: {N_WORLD} points in the source, {N_WORLD} in the target" in proc.stdout
    assert f"encore_catalog: {source['catalog_points']} points in the source" in proc.stdout
    with Encore.open(_settings(target_dir)) as enc:
        _check_same_answers(enc, source)


def test_a_copy_run_again_adds_nothing_twice(source, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ENCORE_DATA_DIR", str(tmp_path / "target"))
    monkeypatch.delenv("ENCORE_QDRANT_URL", raising=False)
    for _ in range(2):
        assert main(["--from-data-dir", str(source["data_dir"])]) == 0
    assert f"encore_world: {N_WORLD} points in the source, {N_WORLD} in the target" in capsys.readouterr().out


def test_copy_into_a_qdrant_client_store_with_cluster_settings(source, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    from encore.storage import open_store
    from encore.storage.remote import RemoteStore

    settings = _settings(tmp_path / "unused", catalog_shards=3, catalog_replicas=2, world_shards=6, world_replicas=2)
    target = Encore(RemoteStore(QdrantClient(":memory:"), owns_client=True), settings)
    src = open_store(_settings(source["data_dir"]))
    try:
        copied = copy_collections(src, target.store, [target.catalog.spec, target.world.spec], batch=50)
        assert [(c.collection, c.source_points, c.target_points) for c in copied] == [
            ("encore_catalog", source["catalog_points"], source["catalog_points"]),
            ("encore_world", N_WORLD, N_WORLD)]
        _check_same_answers(target, source)
    finally:
        src.close()
        target.close()


def test_a_missing_source_is_bad_input(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ENCORE_DATA_DIR", str(tmp_path / "target"))
    monkeypatch.delenv("ENCORE_QDRANT_URL", raising=False)
    assert main(["--from-data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no embedded storage there" in capsys.readouterr().err
    assert not (tmp_path / "target").exists(), "nothing is created when the source is wrong"


def test_the_same_store_as_source_and_target_is_refused(source, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ENCORE_DATA_DIR", str(source["data_dir"]))
    monkeypatch.delenv("ENCORE_QDRANT_URL", raising=False)
    assert main(["--from-data-dir", str(source["data_dir"])]) == 2
    assert "same store" in capsys.readouterr().err


def test_a_source_written_with_other_parameters_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    source_dir = tmp_path / "embedded-catalog"
    with Encore.open(_settings(source_dir, catalog_embeddings=True)):
        pass
    monkeypatch.setenv("ENCORE_DATA_DIR", str(tmp_path / "target"))
    monkeypatch.delenv("ENCORE_QDRANT_URL", raising=False)
    monkeypatch.delenv("ENCORE_CATALOG_EMBEDDINGS", raising=False)
    assert main(["--from-data-dir", str(source_dir)]) == 1
    err = capsys.readouterr().err
    assert "encore_catalog" in err and "error:" in err
