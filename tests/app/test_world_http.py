"""The world tier over HTTP: audio uploads, the two-case identify answer, discovery routes with filters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from encore.config import Settings
from encore.service import Encore
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from schemas.api import GenreNeighboursPublic, IdentifyResult, TrackCreated, TrackPublic, TracksPublic
from tests.app.test_http import upload

if TYPE_CHECKING:
    from tests.conftest import AudioFiles

SAMPLE = 600


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, audio: AudioFiles, make_settings: Callable[..., Settings]
) -> Iterator[tuple[TestClient, dict[str, TrackCreated]]]:
    """A service with track_a in the catalog, and a 600-track sample plus track_a and track_b in the world."""
    settings = make_settings(tmp_path_factory.mktemp("world-http") / "data")
    enc = Encore.open(settings)
    ingest_batches(enc, sample_batches(SAMPLE, seed=4, head=enc.tag_head), total=SAMPLE, source="sample",
                   progress=False)
    with TestClient(create_app(settings, encore_service=enc)) as client:
        assert upload(client, "/v1/catalog/tracks", audio.track_a, title="Track A", artist="Synth").status_code == 201
        added = {}
        for name, path in (("a", audio.track_a), ("b", audio.track_b)):
            response = upload(client, "/v1/world/tracks", path, title=f"Track {name.upper()}", artist="Synth",
                              year="1999", genre="Electronic")
            assert response.status_code == 201, response.text
            added[name] = TrackCreated.model_validate(response.json())
        yield client, added
    enc.close()


def test_an_uploaded_world_track_is_embedded_tagged_and_described(world) -> None:
    client, added = world
    track = TrackPublic.model_validate(client.get(f"/v1/tracks/{added['a'].track_id}").json())

    assert (track.title, track.artist, track.year, track.genre) == ("Track A", "Synth", 1999, "electronic")
    assert track.tempo is not None and 50 <= track.tempo <= 220
    assert 0 <= track.energy <= 1 and 0 <= track.danceability <= 1
    assert track.tags and len(track.tags) == 10 and all(0 <= p <= 1 for p in track.tags.values())


def test_uploading_the_same_audio_again_is_one_track_and_bad_audio_none(world, audio: AudioFiles) -> None:
    client, added = world
    before = client.get("/v1/stats").json()["world"]["tracks"]

    response = upload(client, "/v1/world/tracks", audio.track_a, title="Again")
    refused = [upload(client, "/v1/world/tracks", p).status_code for p in (audio.not_audio, audio.silent)]

    assert refused == [415, 400]
    assert response.status_code == 200
    assert response.json()["track_id"] == added["a"].track_id and response.json()["status"] == "exists"
    assert client.get("/v1/stats").json()["world"]["tracks"] == before == SAMPLE + 2


def test_a_matched_clip_brings_ten_similar_tracks_an_unknown_one_twenty(world, audio: AudioFiles) -> None:
    client, added = world

    matched = IdentifyResult.model_validate(upload(client, "/v1/identify", audio.clip_a).json())
    unknown = IdentifyResult.model_validate(upload(client, "/v1/identify", audio.clip_unknown).json())

    assert matched.match is not None and matched.match.title == "Track A"
    assert len(matched.similar) == 10
    assert added["a"].track_id not in {t.track_id for t in matched.similar}  # not its own neighbour
    # Track A is in the world tier too: the answer is its own neighbours, as GET .../similar gives them.
    own = client.get(f"/v1/tracks/{added['a'].track_id}/similar").json()["results"]
    assert [t.track_id for t in matched.similar] == [t["track_id"] for t in own]
    assert unknown.match is None and len(unknown.similar) == 20
    sims = [t.similarity for t in unknown.similar]
    assert sims == sorted(sims, reverse=True)


def test_similar_tracks_respect_filters_given_as_query_parameters(world) -> None:
    client, added = world
    response = client.get(f"/v1/tracks/{added['b'].track_id}/similar",
                          params={"year_min": 1990, "year_max": 2009, "energy_min": 0.3, "limit": 15})

    assert response.status_code == 200, response.text
    got = TracksPublic.model_validate(response.json())
    assert got.count == len(got.results) == 15
    assert all(1990 <= t.year <= 2009 and t.energy >= 0.3 for t in got.results)
    assert added["b"].track_id not in {t.track_id for t in got.results}
    boosted = TracksPublic.model_validate(client.get(f"/v1/tracks/{added['b'].track_id}/similar", params={
        "year_min": 1990, "year_max": 2009, "energy_min": 0.3, "limit": 15, "target_energy": 0.95}).json())
    assert min(t.energy for t in boosted.results) >= 0.3
    assert sum(t.energy for t in boosted.results) > sum(t.energy for t in got.results)
    typo = client.get(f"/v1/tracks/{added['b'].track_id}/similar", params={"yeer_min": 1990})
    assert typo.status_code == 422 and "yeer_min" in typo.text


def test_artist_radio_mood_playlist_and_genre_neighbours(world) -> None:
    client, _ = world
    sample_artist = client.get("/v1/artists/Synth/radio", params={"limit": 12}).json()["results"][0]["artist"]

    radio = TracksPublic.model_validate(client.get(f"/v1/artists/{sample_artist}/radio").json())
    mood = client.post("/v1/playlists/mood", json={"tags": {"happy": 1, "sad": -1}, "limit": 10,
                                                   "filters": {"danceability_min": 0.5, "tags": ["happy"]}})
    genres = client.get("/v1/genres/metal/neighbours", params={"limit": 3})

    assert radio.count == 20 and sample_artist not in {t.artist for t in radio.results}
    assert mood.status_code == 200, mood.text
    assert all(t.danceability >= 0.5 and t.tags.get("happy", 0) >= 0.25 for t in TracksPublic.model_validate(
        mood.json()).results)
    assert len(GenreNeighboursPublic.model_validate(genres.json()).neighbours) == 3


@pytest.mark.parametrize(("method", "url", "kwargs", "code"), [
    ("get", "/v1/tracks/6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11/similar", {}, 404),
    ("get", "/v1/tracks/nonsense", {}, 404),
    ("get", "/v1/artists/Nobody%20Here/radio", {}, 404),
    ("get", "/v1/genres/polka/neighbours", {}, 404),
    ("get", "/v1/artists/Synth/radio", {"params": {"year_min": 2000, "year_max": 1990}}, 400),
    ("get", "/v1/artists/Synth/radio", {"params": {"energy_min": 3}}, 422),
    ("post", "/v1/playlists/mood", {"json": {"tags": {"yodel": 1}}}, 400),
    ("post", "/v1/playlists/mood", {"json": {"tags": {"happy": 1}, "filters": {"colour": "red"}}}, 422),
])
def test_bad_discovery_requests_are_4xx_with_a_message(world, method, url, kwargs, code) -> None:
    client, _ = world
    response = getattr(client, method)(url, **kwargs)

    assert response.status_code == code, response.text
    assert response.json()["detail"]
    assert client.get("/v1/health").status_code == 200
