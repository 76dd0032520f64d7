"""The HTTP API end to end: real uploads, real ffmpeg decoding, the real embedded engine."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from encore.config import Settings
from schemas.api import IdentifyResult, StatsPublic, TrackCreated

if TYPE_CHECKING:
    from tests.conftest import AudioFiles


def upload(client: TestClient, url: str, path: Path, **form: str):
    with path.open("rb") as f:
        return client.post(url, files={"file": (path.name, f)}, data=form)


def add(client: TestClient, path: Path, **form: str) -> TrackCreated:
    response = upload(client, "/v1/catalog/tracks", path, **form)
    assert response.status_code in (200, 201), response.text
    return TrackCreated.model_validate(response.json())


def identify(client: TestClient, path: Path) -> IdentifyResult:
    response = upload(client, "/v1/identify", path)
    assert response.status_code == 200, response.text
    return IdentifyResult.model_validate(response.json())


def stats(client: TestClient) -> StatsPublic:
    response = client.get("/v1/stats")
    assert response.status_code == 200, response.text
    return StatsPublic.model_validate(response.json())


def test_identify_a_noisy_mp3_clip_of_an_added_track(client: TestClient, audio: AudioFiles) -> None:
    created = add(client, audio.track_a, title="Track A", artist="Synth", album="Tests")
    add(client, audio.track_b)
    assert created.status == "added"

    result = identify(client, audio.clip_a)

    assert result.match is not None
    assert result.match.track_id == created.track_id
    assert (result.match.title, result.match.artist, result.match.album) == ("Track A", "Synth", "Tests")
    assert abs(result.match.offset_s - audio.clip_offset_s) < 0.5
    assert 0.5 < result.match.confidence <= 1.0
    assert result.similar == []


def test_a_clip_of_a_track_never_added_is_unknown(client: TestClient, audio: AudioFiles) -> None:
    add(client, audio.track_a)
    add(client, audio.track_b)

    response = upload(client, "/v1/identify", audio.clip_unknown)

    assert response.status_code == 200
    assert response.json()["match"] is None


def test_adding_the_same_audio_twice_keeps_one_track(client: TestClient, audio: AudioFiles) -> None:
    first = upload(client, "/v1/catalog/tracks", audio.track_a, title="Once")
    second = upload(client, "/v1/catalog/tracks", audio.track_a, title="Twice")

    assert first.status_code == 201 and first.json()["status"] == "added"
    assert second.status_code == 200 and second.json()["status"] == "exists"
    assert second.json()["track_id"] == first.json()["track_id"]
    assert stats(client).catalog.tracks == 1


def test_title_defaults_to_the_uploaded_file_name(client: TestClient, audio: AudioFiles) -> None:
    created = add(client, audio.track_b)

    assert created.title == "track_b"
    assert identify(client, audio.track_b).match.title == "track_b"


def test_a_deleted_track_is_no_longer_identified(client: TestClient, audio: AudioFiles) -> None:
    created = add(client, audio.track_a)
    assert identify(client, audio.clip_a).match is not None

    response = client.delete(f"/v1/catalog/tracks/{created.track_id}")

    assert response.status_code == 204 and response.content == b""
    assert identify(client, audio.clip_a).match is None
    assert stats(client).catalog.tracks == 0
    assert client.delete(f"/v1/catalog/tracks/{created.track_id}").status_code == 404


def test_deleting_an_unknown_track_is_404(client: TestClient) -> None:
    response = client.delete("/v1/catalog/tracks/6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11")

    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("limit", "size"),
    [(20_000, 1_000_000), (90_000, 120_000)],
    ids=["refused-from-content-length", "refused-while-copying"],
)
def test_uploads_past_the_limit_are_413(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings], limit: int, size: int
) -> None:
    # Far past the limit, the declared Content-Length is enough to refuse before reading the body;
    # just past it (within the multipart allowance), the upload is refused while it is copied.
    settings = make_settings(tmp_path / "data", max_upload_bytes=limit)
    big = tmp_path / "big.wav"
    big.write_bytes(audio.track_a.read_bytes()[:size])
    assert big.stat().st_size == size
    with TestClient(create_app(settings)) as client:
        before = stats(client).catalog
        for endpoint in ("/v1/identify", "/v1/catalog/tracks"):
            response = upload(client, endpoint, big)
            assert response.status_code == 413, response.text
            assert f"limit of {limit} bytes" in response.json()["detail"]
        assert stats(client).catalog == before
        assert client.get("/v1/health").json() == {"status": "ok"}


def test_uploads_leave_no_temporary_files(
    client: TestClient, audio: AudioFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    add(client, audio.track_b)
    identify(client, audio.clip_a)
    assert upload(client, "/v1/identify", audio.not_audio).status_code == 415

    assert list(scratch.iterdir()) == []


def test_write_endpoints_need_the_api_key_when_one_is_set(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(tmp_path / "data", api_key="s3cret")
    with TestClient(create_app(settings)) as client:
        with audio.track_a.open("rb") as f:
            files = {"file": ("track_a.wav", f.read())}
        missing = client.post("/v1/catalog/tracks", files=files)
        wrong = client.post("/v1/catalog/tracks", files=files, headers={"X-API-Key": "guess"})
        right = client.post("/v1/catalog/tracks", files=files, headers={"X-API-Key": "s3cret"})
        track_id = right.json()["track_id"]
        delete_without = client.delete(f"/v1/catalog/tracks/{track_id}")

        assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
        assert missing.json() == {"detail": "missing or wrong X-API-Key header"}
        assert delete_without.status_code == 401
        # Reading is open to everyone: identify needs no key.
        assert identify(client, audio.clip_a).match.track_id == track_id
        deleted = client.delete(f"/v1/catalog/tracks/{track_id}", headers={"X-API-Key": "s3cret"})
        assert deleted.status_code == 204


def test_a_request_without_a_file_is_422(client: TestClient) -> None:
    response = client.post("/v1/identify", data={"title": "no file"})

    assert response.status_code == 422


def test_the_catalog_outlives_the_app(
    tmp_path: Path, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        created = add(client, audio.track_a)
    # The first app closed its store at shutdown; a second one opens the same data.
    with TestClient(create_app(settings)) as client:
        assert stats(client).catalog.tracks == 1
        assert identify(client, audio.clip_a).match.track_id == created.track_id


def test_page_docs_and_cors(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(tmp_path / "data", cors_origins=["https://music.example"])
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
        docs = client.get("/docs")
        schema = client.get("/openapi.json").json()
        preflight = client.options(
            "/v1/identify",
            headers={"Origin": "https://music.example", "Access-Control-Request-Method": "POST"},
        )

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/identify" in page.text
    assert docs.status_code == 200
    assert {"/v1/identify", "/v1/catalog/tracks", "/v1/catalog/tracks/{track_id}", "/v1/health", "/v1/stats"} <= set(
        schema["paths"]
    )
    assert preflight.headers["access-control-allow-origin"] == "https://music.example"
