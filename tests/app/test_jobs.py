"""Background ingest jobs over HTTP: real uploads, real ffmpeg, the real embedded engine, real worker threads.

The last test is the point of jobs: while a long one runs, health, stats, identify, search and a
catalog upload still answer, each within seconds, and the job is still running once they have.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from app.main import create_app
from encore.config import Settings
from encore.errors import BadInput
from encore.service import Encore
from schemas.api import IdentifyResult, TrackPublic
from schemas.jobs import JobAccepted, JobPublic, JobsPublic
from tests.app.test_http import add, identify, stats, upload

if TYPE_CHECKING:
    from tests.conftest import AudioFiles

KEY = {"X-API-Key": "s3cret"}


def submit(
    client: TestClient,
    url: str,
    files: list[tuple[str, Path]],
    *,
    metadata: tuple[str, bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """POST several files (each under the name given) and an optional metadata file, as ``curl -F`` does."""
    parts = [("files", (name, path.read_bytes())) for name, path in files]
    if metadata is not None:
        parts.append(("metadata", metadata))
    return client.post(url, files=parts, headers=headers)


def accepted(response: Response) -> JobAccepted:
    assert response.status_code == 202, response.text
    job = JobAccepted.model_validate(response.json())
    assert response.headers["location"] == job.status_url == f"/v1/jobs/{job.job_id}"
    return job


def job_status(client: TestClient, job_id: str) -> JobPublic:
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return JobPublic.model_validate(response.json())


def wait_until(
    client: TestClient, job_id: str, done: Callable[[JobPublic], bool] = lambda j: j.ended, timeout: float = 180.0
) -> JobPublic:
    """Poll the job's status URL, as a client would, until ``done`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        job = job_status(client, job_id)
        if done(job):
            return job
        assert time.monotonic() < deadline, f"job still {job.status} after {timeout:.0f} s: {job}"
        time.sleep(0.1)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder uploads go to, empty, so a test can see that jobs leave nothing there."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_catalog_job_reports_each_file_and_its_tracks_are_identified(
    client: TestClient, audio: AudioFiles, scratch: Path
) -> None:
    metadata = (b"file,title,artist,album\n"
                b"track_a.wav,Battle Theme,Wesnoth,Tests\n"
                b"album/track_b.flac,Second,Synth,\n"
                b"never_uploaded.wav,Ghost,Nobody,\n")
    files = [("track_a.wav", audio.track_a), ("album/track_b.flac", audio.track_b),
             ("notes.mp3", audio.not_audio), ("copy of a.wav", audio.track_a)]

    response = submit(client, "/v1/catalog/jobs", files, metadata=("tracks.csv", metadata))

    first = accepted(response)
    assert first.status in ("queued", "running")
    job = wait_until(client, first.job_id)
    assert job.status == "succeeded" and job.error is None, job
    assert (job.kind, job.tier) == ("catalog_files", "catalog")
    assert (job.progress.done, job.progress.total) == (4, 4)
    assert (job.report.added, job.report.exists, job.report.rejected) == (2, 1, 1)
    assert [i.path for i in job.items] == [name for name, _ in files]
    assert [i.status for i in job.items] == ["added", "added", "rejected", "exists"]
    a, b, notes, copy = job.items
    assert (a.title, a.artist, a.album) == ("Battle Theme", "Wesnoth", "Tests")
    assert (b.title, b.artist) == ("Second", "Synth")  # a metadata row keyed by the uploaded folder/name
    assert copy.track_id == a.track_id  # the same audio under another name is the same track
    assert "notes.mp3" in notes.reason and "not an audio file" in notes.reason
    assert "encore-job-" not in notes.reason  # no server paths in answers
    assert job.created_at <= job.started_at <= job.finished_at and job.report.took_s > 0

    assert stats(client).catalog.tracks == 2
    match = identify(client, audio.clip_a).match
    assert match is not None and (match.track_id, match.title, match.artist) == (a.track_id, "Battle Theme", "Wesnoth")
    listed = JobsPublic.model_validate(client.get("/v1/jobs").json())
    assert listed.count == 1 and listed.results[0].job_id == job.job_id and listed.results[0].status == "succeeded"
    assert "items" not in client.get("/v1/jobs").json()["results"][0]
    assert list(scratch.iterdir()) == []  # the job's uploaded files went with it


def test_a_world_job_takes_year_and_genre_from_jsonl_metadata(client: TestClient, audio: AudioFiles) -> None:
    rows = [{"file": "b.flac", "title": "Bee", "artist": "Synth", "year": 1999, "genre": "Electronic"},
            {"file": "short.wav", "title": "Short"}]
    metadata = "\n".join(json.dumps(r) for r in rows).encode()

    job = wait_until(client, accepted(submit(client, "/v1/world/jobs", [
        ("b.flac", audio.track_b), ("short.wav", audio.too_short)], metadata=("meta.jsonl", metadata))).job_id)

    assert job.status == "succeeded" and job.kind == "world_files"
    assert [i.status for i in job.items] == ["added", "rejected"]
    assert "too short" in job.items[1].reason and job.items[1].path == "short.wav"
    track = TrackPublic.model_validate(client.get(f"/v1/tracks/{job.items[0].track_id}").json())
    assert (track.title, track.artist, track.year, track.genre) == ("Bee", "Synth", 1999, "electronic")
    assert track.tempo is not None and track.tags
    assert stats(client).world.tracks == 1


def test_malformed_metadata_refuses_the_job_and_unknown_jobs_are_404(
    client: TestClient, audio: AudioFiles, scratch: Path
) -> None:
    bad = b"file,title,year\ntrack_a.wav,A,nineteen ninety\n"

    response = submit(client, "/v1/catalog/jobs", [("track_a.wav", audio.track_a)], metadata=("tracks.csv", bad))

    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "tracks.csv line 2: year must be an integer, got 'nineteen ninety'"}
    assert client.get("/v1/jobs").json() == {"results": [], "count": 0}
    assert stats(client).catalog.tracks == 0
    assert list(scratch.iterdir()) == []
    for method in ("get", "delete"):
        unknown = getattr(client, method)("/v1/jobs/0f8e5c1a9b2d4e6f8a1c3e5b7d9f0a2c")
        assert unknown.status_code == 404 and "no job" in unknown.json()["detail"]
    assert client.post("/v1/catalog/jobs", data={"title": "no files"}).status_code == 422


def test_job_routes_need_the_api_key_when_one_is_set(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(tmp_path / "data", api_key="s3cret")
    with TestClient(create_app(settings)) as client:
        refused = [
            submit(client, "/v1/catalog/jobs", [("a.wav", audio.track_a)]),
            submit(client, "/v1/world/jobs", [("a.wav", audio.track_a)], headers={"X-API-Key": "guess"}),
            client.post("/v1/world/sample", json={"count": 50}),
        ]
        job = accepted(client.post("/v1/world/sample", json={"count": 50, "seed": 3}, headers=KEY))
        cancel_without = client.delete(f"/v1/jobs/{job.job_id}")
        done = wait_until(client, job.job_id)  # reading is open to everyone

        assert [r.status_code for r in refused] == [401, 401, 401]
        assert refused[0].json() == {"detail": "missing or wrong X-API-Key header"}
        assert client.get("/v1/jobs").json()["count"] == 1  # the refused ones were never jobs
        assert cancel_without.status_code == 401
        assert (done.status, done.kind, done.report.source, done.report.added) == ("succeeded", "world_sample",
                                                                                   "sample", 50)
        assert stats(client).world.tracks == 50


@pytest.mark.parametrize(
    ("case", "max_upload", "copies", "words"),
    [
        ("refused-from-content-length", 10_000_000, 4, "the upload is larger than the limit of 2000000 bytes"),
        ("refused-while-copying", 10_000_000, 2, "the job's upload is larger than the limit of 2000000 bytes"),
        ("one-file-past-its-own-limit", 1_000_000, 1, "0.wav: the upload is larger than the limit of 1000000 bytes"),
    ],
)
def test_a_job_upload_past_its_limit_is_413_and_stores_nothing(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings], scratch: Path,
    case: str, max_upload: int, copies: int, words: str,
) -> None:
    # track_a.wav is 1.06 MB: 4 copies are past the limit plus the multipart allowance (1 MiB), so
    # the declared Content-Length is enough; 2 copies pass that and are refused while copying.
    settings = make_settings(tmp_path / "data", max_job_upload_bytes=2_000_000, max_upload_bytes=max_upload)
    assert 1_000_000 < audio.track_a.stat().st_size < 1_100_000
    with TestClient(create_app(settings)) as client:
        response = submit(client, "/v1/catalog/jobs", [(f"{i}.wav", audio.track_a) for i in range(copies)])

        assert response.status_code == 413, response.text
        assert words in response.json()["detail"]
        assert client.get("/v1/jobs").json()["count"] == 0
        assert stats(client).catalog.tracks == 0
    assert list(scratch.iterdir()) == []


def test_past_the_queue_limit_jobs_are_refused_with_429_and_cancelled_ones_stop_between_items(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings], scratch: Path
) -> None:
    settings = make_settings(tmp_path / "data", max_jobs=1, max_queued_jobs=1)
    with TestClient(create_app(settings)) as client:
        big = accepted(client.post("/v1/world/sample", json={"count": 200_000}))
        assert wait_until(client, big.job_id, lambda j: j.status != "queued").status == "running"
        queued = accepted(submit(client, "/v1/catalog/jobs", [("a.wav", audio.track_a)]))

        refused = client.post("/v1/world/sample", json={"count": 10})

        assert refused.status_code == 429, refused.text
        assert "1 job(s) running and 1 waiting" in refused.json()["detail"]
        assert job_status(client, queued.job_id).status == "queued"
        assert [j["job_id"] for j in client.get("/v1/jobs").json()["results"]] == [queued.job_id, big.job_id]

        # A queued job cancelled is gone at once, with its upload; that makes room in the queue.
        cancelled = JobPublic.model_validate(client.delete(f"/v1/jobs/{queued.job_id}").json())
        assert (cancelled.status, cancelled.started_at, cancelled.progress.done) == ("cancelled", None, 0)
        assert list(scratch.iterdir()) == []
        again = accepted(submit(client, "/v1/catalog/jobs", [("a.wav", audio.track_a)]))

        # A running job stops between two batches: what it stored is whole batches, all counted.
        assert wait_until(client, big.job_id, lambda j: j.ended or j.progress.done >= 1000).status == "running"
        assert client.delete(f"/v1/jobs/{big.job_id}").status_code == 202
        stopped = wait_until(client, big.job_id)
        assert stopped.status == "cancelled" and stopped.error is None
        assert 1000 <= stopped.progress.done < 200_000 and stopped.progress.done % 1000 == 0
        assert stopped.report.added == stopped.progress.done == stats(client).world.tracks

        # The waiting job then runs.
        assert wait_until(client, again.job_id).status == "succeeded"
        assert stats(client).catalog.tracks == 1
    assert list(scratch.iterdir()) == []


def test_the_service_keeps_answering_while_a_job_runs_and_shutdown_stops_it_cleanly(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(tmp_path / "data")
    client = TestClient(create_app(settings)).__enter__()  # left below, to time the shutdown
    add(client, audio.track_a, title="Track A", artist="Synth")
    count = 40_000  # about 40 s of work alone: far longer than the requests below take

    job = accepted(client.post("/v1/world/sample", json={"count": count}))
    # If the job ran on the request path, the 202 would come only once it had ended.
    assert job.status in ("queued", "running")
    assert wait_until(client, job.job_id, lambda j: j.ended or j.progress.done >= 1000).status == "running"

    def timed(request: Callable[[], Response]) -> tuple[Response, float]:
        start = time.monotonic()
        response = request()
        return response, time.monotonic() - start

    probes = {
        "health": lambda: client.get("/v1/health"),
        "stats": lambda: client.get("/v1/stats"),
        "identify": lambda: upload(client, "/v1/identify", audio.clip_a),
        "search": lambda: client.post("/v1/search", json={"query": "happy rock from the eighties", "limit": 5}),
        # A write: it would wait for the whole job if the job held the store's write lock throughout.
        "catalog add": lambda: upload(client, "/v1/catalog/tracks", audio.track_b, title="Track B"),
    }
    with ThreadPoolExecutor(len(probes)) as pool:
        answers = dict(zip(probes, pool.map(timed, probes.values()), strict=True))
    during = job_status(client, job.job_id)

    for name, (response, seconds) in answers.items():
        assert response.status_code in (200, 201), f"{name}: {response.status_code} {response.text}"
        assert seconds < 10.0, f"{name} took {seconds:.1f} s while the job ran"
    assert IdentifyResult.model_validate(answers["identify"][0].json()).match.title == "Track A"
    assert answers["search"][0].json()["results"]
    # Every answer came while the job was still running, not after it.
    assert during.status == "running" and during.progress.done < count, during

    app = client.app
    started = time.monotonic()
    client.__exit__(None, None, None)  # server shutdown: the lifespan closes the facade, which stops jobs
    shutdown_s = time.monotonic() - started

    final = app.state.encore.jobs.get(job.job_id)  # the facade's job manager, from Python
    assert final.status == "cancelled" and final.finished_at is not None
    assert shutdown_s < 15.0, f"shutdown took {shutdown_s:.1f} s"
    assert during.progress.done <= final.progress.done < count and final.progress.done % 1000 == 0
    with Encore.open(settings) as enc:  # what was stored is whole batches, all counted
        assert enc.world.count() == final.report.added == final.progress.done
        assert enc.catalog.count_tracks() == 2


def test_the_facade_runs_jobs_from_python_over_folders(encore: Encore, audio: AudioFiles, tmp_path: Path) -> None:
    folder = tmp_path / "music"
    (folder / "album").mkdir(parents=True)
    (folder / "album" / "a.wav").write_bytes(audio.track_a.read_bytes())
    (folder / "b.flac").write_bytes(audio.track_b.read_bytes())
    (folder / "notes.txt").write_text("not music, and not an audio extension: skipped, as the CLI skips it")
    metadata = tmp_path / "tracks.jsonl"
    metadata.write_text(json.dumps({"file": "album/a.wav", "title": "Battle Theme", "artist": "Wesnoth"}) + "\n")

    job = encore.jobs.wait(encore.jobs.submit_files("catalog", [folder], metadata=metadata).job_id, timeout=120)

    assert job.status == "succeeded", job
    # The order the CLI walks a folder in: its files, then its subfolders.
    assert [(i.path, i.status) for i in job.items] == [(str(folder / "b.flac"), "added"),
                                                       (str(folder / "album" / "a.wav"), "added")]
    assert job.items[1].title == "Battle Theme"
    assert encore.identify_file(audio.clip_a).match.title == "Battle Theme"
    assert [j.job_id for j in encore.jobs.recent()] == [job.job_id]
    with pytest.raises(BadInput, match="no such file"):
        encore.jobs.submit_files("catalog", [tmp_path / "missing"])
