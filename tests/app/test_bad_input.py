"""Bad input over HTTP, one matrix: every case gets a clear 4xx, the service keeps serving, and the
stored data is unchanged afterwards.

One service for the module: a small sample world, track_a in the catalog and in the world. Before
and after each case the test takes a snapshot a user would see: the counts of ``/v1/stats``, a
known world track (``GET /v1/tracks/{id}``) and what a clip of track_a identifies as.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from encore.config import Settings
from encore.service import Encore
from indexers.decode import load_audio
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from schemas.api import IdentifyResult, TrackCreated, TrackPublic
from tests.test_speech import speak
from tests.utils.audio import synth_track, write_audio
from tests.utils.bad_audio import BAD_CASES, UNUSUAL_FORMATS, BadCase, decoders_run, make_bad_files, write_unusual
from tests.utils.server import serve_in_thread

if TYPE_CHECKING:
    from tests.conftest import AudioFiles

SR = 22050
ENDPOINTS = {
    "identify": "/v1/identify",
    "catalog_add": "/v1/catalog/tracks",
    "world_add": "/v1/world/tracks",
    "voice_search": "/v1/search/voice",
}
#: Each endpoint, with the query decoder (ENCORE_QUERY_DECODER) for those that decode query clips:
#: identify and voice search run the matrix with each. Adds always decode through the ffmpeg program.
ENDPOINT_DECODERS = [(e, d) for e in sorted(ENDPOINTS)
                     for d in (("ffmpeg", "pyav") if e in ("identify", "voice_search") else (None,))]


def endpoint_id(case: tuple[str, str | None]) -> str:
    return case[0] if case[1] is None else f"{case[0]}-{case[1]}"


@dataclass
class Service:
    client: TestClient
    encore: Encore
    settings: Settings
    catalog_a: str  # track_a's catalog id
    world_a: str  # track_a's world id


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> Iterator[Service]:
    settings = make_settings(tmp_path_factory.mktemp("bad-input") / "data")
    enc = Encore.open(settings)
    ingest_batches(enc, sample_batches(60, seed=3, head=enc.tag_head), total=60, source="sample", progress=False)
    with TestClient(create_app(settings, encore_service=enc)) as client:
        catalog_a = post(client, "/v1/catalog/tracks", audio.track_a, title="Track A", artist="Synth").json()
        world_a = post(client, "/v1/world/tracks", audio.track_a, title="Track A", artist="Synth").json()
        assert enc.query_decoder == "pyav"  # the default (auto), PyAV being installed with Encore
        yield Service(client, enc, settings, catalog_a["track_id"], world_a["track_id"])
    enc.close()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_files(tmp_path_factory.mktemp("bad-files"))


def post(client: TestClient | httpx.Client, url: str, path: Path, *, name: str | None = None, **form: str):
    return client.post(url, files={"file": (name if name is not None else path.name, path.read_bytes())}, data=form)


def snapshot(service: Service, audio: AudioFiles) -> tuple[object, ...]:
    """What a user sees of the stored data; also proves the service still answers a good identify."""
    client = service.client
    assert client.get("/v1/health").json() == {"status": "ok"}
    stats = client.get("/v1/stats").json()
    known = TrackPublic.model_validate(client.get(f"/v1/tracks/{service.world_a}").json())
    found = post(client, "/v1/identify", audio.clip_a)
    assert found.status_code == 200, found.text
    match = IdentifyResult.model_validate(found.json()).match
    assert match is not None and match.track_id == service.catalog_a
    return stats["catalog"], stats["world"], known, (match.track_id, match.title, round(match.offset_s, 1))


def assert_clear_error(response: httpx.Response, code: int, *words: str) -> str:
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"detail"}
    detail = body["detail"]
    assert "\n" not in detail and "encore-upload-" not in detail  # one line, no server paths
    for word in words:
        assert word in detail, detail
    return detail


def use_query_decoder(monkeypatch: pytest.MonkeyPatch, enc: Encore, decoder: str | None) -> None:
    """The facade decodes identify and voice clips with ``decoder`` for the test (None: its default)."""
    if decoder is not None:
        monkeypatch.setattr(enc, "query_decoder", decoder)
        monkeypatch.setattr(enc, "clip_recipe", dataclasses.replace(enc.clip_recipe, decoder=decoder))


def expected(case: BadCase, endpoint: str) -> tuple[int, str]:
    if endpoint == "voice_search" and case.voice is not None:
        return case.voice
    return case.code, case.words


@pytest.mark.parametrize(("endpoint", "decoder"), ENDPOINT_DECODERS, ids=map(endpoint_id, ENDPOINT_DECODERS))
@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_bad_files_get_a_clear_4xx_and_change_nothing(
    service: Service, audio: AudioFiles, bad_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    case: BadCase, endpoint: str, decoder: str | None,
) -> None:
    use_query_decoder(monkeypatch, service.encore, decoder)
    before = snapshot(service, audio)

    with decoders_run() as ran:
        response = post(service.client, ENDPOINTS[endpoint], bad_files[case.name])

    code, words = expected(case, endpoint)
    assert_clear_error(response, code, words, case.file)  # the user's own file name, and why
    assert ran == [decoder or "ffmpeg"]  # adds decode through the ffmpeg program whatever the setting
    assert snapshot(service, audio) == before


def test_a_two_hour_file_is_refused_without_decoding_it(service: Service, bad_files: dict[str, Path]) -> None:
    # 1.3 MB, far under the byte limit: the duration limit refuses it, from the header.
    path = bad_files["two_hours"]
    assert path.stat().st_size < service.settings.max_upload_bytes // 50

    response = post(service.client, "/v1/catalog/tracks", path)

    assert_clear_error(response, 413, "7200 s of audio is longer than the limit of 3600 s")
    assert response.elapsed.total_seconds() < 2.5  # decoding the first hour, as it used to, took 4.6 s here


@pytest.mark.parametrize(("endpoint", "decoder"), ENDPOINT_DECODERS, ids=map(endpoint_id, ENDPOINT_DECODERS))
@pytest.mark.parametrize("kind", sorted(UNUSUAL_FORMATS))
def test_unusual_but_valid_audio_is_accepted_and_works(
    service: Service, audio: AudioFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, endpoint: str,
    decoder: str | None,
) -> None:
    client = service.client
    use_query_decoder(monkeypatch, service.encore, decoder)
    if endpoint == "identify":  # a phone-quality or studio-format clip of a catalog track: 8 s from 7.5 s
        y, _ = load_audio(audio.track_a, sr=SR)
        path = write_unusual(tmp_path / "clip", kind, y[int(7.5 * SR): int(15.5 * SR)], sr=SR)
        result = IdentifyResult.model_validate(post(client, "/v1/identify", path).json())
        assert result.match is not None and result.match.track_id == service.catalog_a
        assert abs(result.match.offset_s - 7.5) < 0.5
    elif endpoint == "voice_search":
        y, sr = speak("play some happy songs for a workout")
        path = write_unusual(tmp_path / "query", kind, y, sr=sr)
        response = post(client, "/v1/search/voice", path)
        assert response.status_code == 200, response.text
        assert "happy songs" in response.json()["transcript"]
    else:
        piece = synth_track(500 + sorted(UNUSUAL_FORMATS).index(kind), seconds=10, sr=SR)
        path = write_unusual(tmp_path / "piece", kind, piece, sr=SR)
        response = post(client, ENDPOINTS[endpoint], path, title=f"Unusual {kind}")
        assert response.status_code == 201, response.text
        created = TrackCreated.model_validate(response.json())
        assert created.title == f"Unusual {kind}" and abs((created.duration_s or 0) - 10) < 0.1
        if endpoint == "catalog_add":  # an ordinary mp3 clip of it is identified as it
            clip = write_audio(tmp_path / "clip.mp3", piece[3 * SR: 8 * SR], sr=SR, fmt="mp3")
            match = IdentifyResult.model_validate(post(client, "/v1/identify", clip).json()).match
            assert match is not None and match.track_id == created.track_id
            assert client.delete(f"/v1/catalog/tracks/{created.track_id}").status_code == 204
        else:
            track = TrackPublic.model_validate(client.get(f"/v1/tracks/{created.track_id}").json())
            assert track.tempo is not None and track.tags
            assert 0.0 <= (track.energy or 0.0) <= 1.0


def post_raw(client: TestClient, url: str, path: Path, *, name: bytes) -> httpx.Response:
    """A multipart upload with the file name's bytes exactly as given: a hostile client does not
    percent-encode a newline the way browsers and httpx do."""
    boundary = b"encore-test-boundary-7f3a"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + path.read_bytes() + b"\r\n--" + boundary + b"--\r\n")
    return client.post(url, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"})


#: The file name as sent, and the title the track gets from it (None: anything on one line, no path).
HOSTILE_NAMES: dict[str, tuple[bytes, str | None]] = {
    "unicode": ("ünïcødé ♫ señor.wav".encode(), "ünïcødé ♫ señor"),
    "spaces": (b"  spaced   out .wav", "spaced   out"),
    "traversal": (b"../../escaped.wav", "escaped"),
    "windows_traversal": (b"..\\..\\windows.wav", "windows"),
    "absolute": (b"/etc/passwd", "passwd"),
    "newline": (b"new\nline.wav", "new line"),
    "nul_and_controls": (b"bell\x07tab\tnul\x00end.wav", "bell tab nul end"),
    "not_utf8": (b"\xff\xfe.wav", None),
    "header_injection": (b"a\r\nX-Evil: 1.wav", None),
    "very_long": (b"L" * 1000 + b".wav", "L" * 196),
    "dots": (b"..", "upload"),
    "empty": (b"", "upload"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_NAMES))
def test_hostile_upload_names_stay_inside_the_upload_folder(
    service: Service, audio: AudioFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    sent, title = HOSTILE_NAMES[name]
    scratch = tmp_path / "scratch"
    (scratch / "a" / "b").mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch / "a" / "b"))  # uploads land two levels down
    piece = write_audio(tmp_path / "piece.wav", synth_track(600 + sorted(HOSTILE_NAMES).index(name), seconds=6,
                                                            sr=SR), sr=SR)
    before = snapshot(service, audio)

    added = post_raw(service.client, "/v1/catalog/tracks", piece, name=sent)
    refused = post_raw(service.client, "/v1/identify", audio.not_audio, name=sent)

    assert added.status_code == 201, added.text
    got = TrackCreated.model_validate(added.json()).title or ""
    assert got == title if title is not None else (got and got.isprintable() and "/" not in got and "Evil" not in got)
    detail = assert_clear_error(refused, 415, "not an audio file")
    assert detail.isprintable() and "/etc" not in detail and "../" not in detail
    assert [p.relative_to(scratch) for p in sorted(scratch.rglob("*"))] == [Path("a"), Path("a/b")]
    assert service.client.delete(f"/v1/catalog/tracks/{added.json()['track_id']}").status_code == 204
    assert snapshot(service, audio) == before


@pytest.mark.parametrize(("method", "url"), [
    ("delete", "/v1/catalog/tracks/..%2F..%2Fetc%2Fpasswd"),
    ("delete", "/v1/catalog/tracks/..%5C..%5Cwindows"),
    ("get", "/v1/tracks/..%2F..%2Fetc%2Fpasswd"),
    ("get", "/v1/tracks/%2e%2e/similar"),
    ("get", "/v1/artists/..%2F..%2Fetc%2Fpasswd/radio"),
    ("get", "/v1/genres/..%2F..%2Fetc/neighbours"),
    ("get", "/static/..%2F..%2F..%2Fetc%2Fpasswd"),
    ("get", "/static/%2e%2e/main.py"),
])
def test_path_traversal_in_path_parameters_is_404(service: Service, audio: AudioFiles, method: str, url: str) -> None:
    before = snapshot(service, audio)

    response = getattr(service.client, method)(url)

    assert_clear_error(response, 404)
    assert "root:" not in response.text and "create_app" not in response.text
    assert snapshot(service, audio) == before


@pytest.mark.parametrize(("tier", "url"), [("catalog", "/v1/catalog/tracks"), ("world", "/v1/world/tracks")])
def test_concurrent_adds_of_the_same_file_store_one_track(
    service: Service, audio: AudioFiles, tmp_path: Path, tier: str, url: str
) -> None:
    piece = write_audio(tmp_path / "same.flac", synth_track(700 if tier == "catalog" else 701, seconds=8, sr=SR),
                        sr=SR, fmt="flac")
    before = service.client.get("/v1/stats").json()[tier]["tracks"]

    with serve_in_thread(create_app(service.settings, encore_service=service.encore), access_log=False) as base:
        with httpx.Client(base_url=base, timeout=120) as http, ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: post(http, url, piece, title="Same"), range(8)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["track_id"] for a in answers}) == 1
    assert sorted(a.json()["status"] for a in answers) == ["added"] + ["exists"] * 7
    assert service.client.get("/v1/stats").json()[tier]["tracks"] == before + 1
    if tier == "catalog":
        assert service.client.delete(f"{url}/{answers[0].json()['track_id']}").status_code == 204
