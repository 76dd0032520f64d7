"""Security over real HTTP: the API key stays out of logs and answers, uploads leave no temporary
files whatever happens to the request, one client's flood is refused with 429, and heavy requests
are bounded (they wait their turn, then 429).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.limits import HeavyLimiter, TokenBuckets
from app.main import create_app
from encore.config import Settings
from encore.errors import Busy
from encore.service import Encore
from encore.storage import open_store
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from tests.utils.server import serve_in_thread

if TYPE_CHECKING:
    from tests.conftest import AudioFiles


def post(client: httpx.Client | TestClient, url: str, path: Path, headers: dict[str, str] | None = None):
    return client.post(url, files={"file": (path.name, path.read_bytes())}, headers=headers)


@pytest.fixture(scope="module")
def small_world(
    tmp_path_factory: pytest.TempPathFactory, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> Iterator[tuple[Settings, Encore]]:
    """A store with a 60-track sample world and track_a in the catalog (so identify embeds the clip)."""
    settings = make_settings(tmp_path_factory.mktemp("security") / "data")
    enc = Encore.open(settings)
    ingest_batches(enc, sample_batches(60, seed=6, head=enc.tag_head), total=60, source="sample", progress=False)
    with TestClient(create_app(settings, encore_service=enc)) as client:
        assert post(client, "/v1/catalog/tracks", audio.track_a).status_code == 201
    yield settings, enc
    enc.close()


def test_the_api_key_never_reaches_logs_or_answers(
    small_world: tuple[Settings, Encore], audio: AudioFiles, caplog: pytest.LogCaptureFixture
) -> None:
    base_settings, enc = small_world
    key = "encore-" + secrets.token_hex(16)
    near_miss = key[:-1] + ("0" if key[-1] != "0" else "1")  # a wrong key that is nearly the key
    settings = Settings.model_validate({**base_settings.model_dump(), "api_key": key})
    caplog.set_level(logging.DEBUG)
    answers: list[httpx.Response] = []

    with serve_in_thread(create_app(settings, encore_service=enc)) as base, httpx.Client(base_url=base,
                                                                                         timeout=120) as http:
        answers.append(post(http, "/v1/catalog/tracks", audio.track_b))
        answers.append(post(http, "/v1/catalog/tracks", audio.track_b, headers={"X-API-Key": near_miss}))
        created = post(http, "/v1/catalog/tracks", audio.track_b, headers={"X-API-Key": key})
        answers.append(created)
        answers.append(post(http, "/v1/identify", audio.not_audio, headers={"X-API-Key": key}))
        answers.append(post(http, "/v1/identify", audio.clip_a, headers={"X-API-Key": near_miss}))
        answers.append(http.delete(f"/v1/catalog/tracks/{created.json()['track_id']}", headers={"X-API-Key": key}))
        answers.append(http.get("/v1/stats", headers={"X-API-Key": key}))
        answers.append(http.get("/openapi.json"))

    assert [a.status_code for a in answers[:6]] == [401, 401, 201, 415, 200, 204]
    assert '"POST /v1/catalog/tracks HTTP/1.1" 401' in caplog.text  # the access log was captured
    for secret in (key, near_miss):
        assert secret not in caplog.text
        for answer in answers:
            assert secret not in answer.text and secret not in str(answer.headers)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        assert key not in shown


def test_stats_never_show_credentials_in_the_qdrant_url(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    embedded = make_settings(tmp_path / "data")
    remote = embedded.model_copy(update={"qdrant_url": "https://admin:pa55word@qdrant.example:6333"})
    enc = Encore(open_store(embedded), remote)  # the answer of a server set up with that URL
    try:
        storage = enc.stats().storage
    finally:
        enc.close()

    assert storage["url"] == "https://***@qdrant.example:6333"


def _upload_dirs(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir() if p.name.startswith("encore-upload-"))


def _hang_up(base: str, data: bytes, *, mid_body: bool) -> None:
    """An identify upload from a client that hangs up: in the middle of the body, or once it is sent
    but before the answer."""
    url = urlsplit(base)
    boundary = "encore-hangup"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.mp3\"\r\n"
            "Content-Type: audio/mpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /v1/identify HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head + (body[: len(body) // 2] if mid_body else body))


def test_uploads_leave_no_temporary_folders_whatever_happens(
    small_world: tuple[Settings, Encore], audio: AudioFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_settings, enc = small_world
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    limit = 200_000
    settings = base_settings.model_copy(update={"max_upload_bytes": limit})
    just_over = tmp_path / "just_over.wav"  # past the limit, within the multipart allowance: refused while copied
    just_over.write_bytes(audio.track_a.read_bytes()[: limit + 10_000])
    clip = audio.clip_a.read_bytes()

    with serve_in_thread(create_app(settings, encore_service=enc), access_log=False) as base, \
            httpx.Client(base_url=base, timeout=120) as http:
        codes = [post(http, "/v1/identify", path).status_code for path in (audio.clip_a, audio.not_audio, just_over)]
        _hang_up(base, clip, mid_body=True)
        _hang_up(base, clip, mid_body=False)
        deadline = time.monotonic() + 30
        while _upload_dirs(scratch) and time.monotonic() < deadline:  # the hung-up requests finish by themselves
            time.sleep(0.1)
        still_serving = http.get("/v1/health").status_code

    assert codes == [200, 415, 413]
    assert still_serving == 200
    assert _upload_dirs(scratch) == []


def test_one_client_past_the_rate_limit_gets_429_with_retry_after(
    small_world: tuple[Settings, Encore], audio: AudioFiles
) -> None:
    base_settings, enc = small_world
    settings = base_settings.model_copy(update={"rate_limit_per_minute": 5})
    app = create_app(settings, encore_service=enc)

    with TestClient(app, client=("203.0.113.7", 40000)) as flooder:
        allowed = [flooder.get("/v1/stats").status_code for _ in range(5)]
        refused = flooder.get("/v1/stats")
        upload = post(flooder, "/v1/identify", audio.clip_a)
        health = [flooder.get("/v1/health").status_code for _ in range(20)]
    with TestClient(app, client=("198.51.100.9", 40000)) as neighbour:
        other = post(neighbour, "/v1/identify", audio.clip_a)

    assert allowed == [200] * 5
    assert refused.status_code == 429 and upload.status_code == 429
    assert refused.json() == {"detail": refused.json()["detail"]}
    assert "too many requests" in refused.json()["detail"] and "5 a minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 12  # one token comes back every 12 s
    assert health == [200] * 20  # health checks are never limited
    assert other.status_code == 200 and other.json()["match"] is not None  # another client is not affected


def test_token_buckets_refill_and_say_when() -> None:
    now = [1000.0]
    buckets = TokenBuckets(60, clock=lambda: now[0])  # one a second, bursts of 60

    burst = [buckets.take("a") for _ in range(60)]
    wait = buckets.take("a")
    now[0] += 1.0
    after_a_second = buckets.take("a")

    assert burst == [0.0] * 60
    assert wait == pytest.approx(1.0)
    assert after_a_second == 0.0 and buckets.take("a") > 0
    assert buckets.take("b") == 0.0  # buckets are per client


def test_heavy_requests_wait_their_turn_then_get_429(small_world: tuple[Settings, Encore], audio: AudioFiles) -> None:
    base_settings, enc = small_world
    patient = base_settings.model_copy(update={"max_heavy_requests": 1, "heavy_wait_seconds": 120.0})
    hasty = base_settings.model_copy(update={"max_heavy_requests": 1, "heavy_wait_seconds": 0.05})

    def burst(settings: Settings) -> tuple[list[httpx.Response], float]:
        with serve_in_thread(create_app(settings, encore_service=enc), access_log=False) as base, \
                httpx.Client(base_url=base, timeout=300) as http, ThreadPoolExecutor(6) as pool:
            heavy = [pool.submit(post, http, "/v1/identify", audio.clip_a) for _ in range(6)]
            time.sleep(0.05)
            started = time.perf_counter()
            assert http.get("/v1/stats").status_code == 200  # light requests do not queue behind heavy ones
            light_s = time.perf_counter() - started
            return [f.result() for f in heavy], light_s

    queued, _ = burst(patient)
    refused, light_s = burst(hasty)

    assert [r.status_code for r in queued] == [200] * 6  # a burst is answered a little later, not refused
    assert all(r.json()["match"]["title"] == "track_a" for r in queued)
    codes = sorted(r.status_code for r in refused)
    assert codes.count(200) >= 1 and codes.count(429) >= 1 and set(codes) == {200, 429}
    busy = next(r for r in refused if r.status_code == 429)
    assert "busy" in busy.json()["detail"] and busy.headers["Retry-After"] == "1"
    assert light_s < 5


def test_a_waiter_that_gives_up_or_is_cancelled_leaks_no_slot() -> None:
    async def scenario() -> tuple[bool, int]:
        limiter = HeavyLimiter(1, wait_s=0.05)
        await limiter.acquire()
        with pytest.raises(Busy):
            await limiter.acquire()  # times out
        waiter = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()  # the client went away while waiting
        with pytest.raises(asyncio.CancelledError):
            await waiter
        limiter.release()
        limiter.wait_s = 1.0
        await limiter.acquire()  # the one slot is free again
        return not limiter._waiters, limiter.active

    assert asyncio.run(scenario()) == (True, 1)
