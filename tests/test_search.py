"""Natural-language and voice search over a sample world, through the facade, the CLI and HTTP."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from encore.config import Settings
from encore.errors import BadInput
from encore.service import Encore
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from schemas.search import SearchResult, VoiceSearchResult
from tests.utils.audio import write_audio

SAMPLE = 3000


@pytest.fixture(scope="module")
def enc(tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]) -> Iterator[Encore]:
    e = Encore.open(make_settings(tmp_path_factory.mktemp("search") / "data"))
    ingest_batches(e, sample_batches(SAMPLE, seed=21, head=e.tag_head), total=SAMPLE, source="sample",
                   progress=False)
    yield e
    e.close()


def _artists(enc: Encore, n: int) -> list[str]:
    return [a for a, _ in enc.store.facet(enc.world.name, "artist", limit=n)]


def test_a_mood_query_finds_tracks_leaning_to_its_tags_within_its_ranges(enc: Encore) -> None:
    result = enc.search("happy songs for a workout", limit=15)
    everything = enc.world.by_tags({"rock": 0.01}, limit=200)

    assert {"happy", "workout"} <= set(result.interpretation.moods)
    assert len(result.results) == 15
    assert all(t.energy >= 0.65 for t in result.results)
    happy = np.mean([t.tags.get("happy", 0) + t.tags.get("dance", 0) for t in result.results])
    assert happy > np.mean([t.tags.get("happy", 0) + t.tags.get("dance", 0) for t in everything])
    assert result.interpretation.explanations


def test_era_genre_and_artist_exclusion_are_filters_in_the_engine(enc: Encore) -> None:
    rockers = Counter(t.artist for t in enc.world.by_tags({"rock": 1.0}, limit=200) if t.genre == "rock")
    star = rockers.most_common(1)[0][0]

    result = enc.search(f"80s rock but not {star}", limit=20)

    assert result.interpretation.year_min == 1980 and result.interpretation.year_max == 1989
    assert result.interpretation.artists_not == [star]
    assert result.results and all(t.genre == "rock" and 1980 <= t.year <= 1989 for t in result.results)
    assert star not in {t.artist for t in result.results}


def test_like_an_artist_sounds_like_them_without_them(enc: Encore) -> None:
    artist = _artists(enc, 1)[0]

    result = enc.search(f"something like {artist.lower()}", limit=10)

    assert result.interpretation.artists_like == [artist]
    assert result.interpretation.genres == []  # an artist's name is not read as genre words
    assert len(result.results) == 10 and artist not in {t.artist for t in result.results}
    radio = {t.track_id for t in enc.artist_radio(artist, limit=40)}
    assert len({t.track_id for t in result.results} & radio) >= 7


def test_tempo_and_explicit_filters(enc: Encore) -> None:
    from schemas.api import Filters

    fast = enc.search("electronic over 125 bpm", limit=10)
    capped = enc.search("electronic over 125 bpm", limit=10, filters=Filters(year_min=2015))

    assert fast.results and all(t.tempo >= 125 and t.genre == "electronic" for t in fast.results)
    assert all(t.year >= 2015 for t in capped.results)


def test_numbers_said_in_words_search_like_digits(enc: Encore) -> None:
    # What a voice transcript holds: the same tracks as the typed query.
    said = enc.search("songs over one hundred twenty bpm from the nineteen eighties", limit=15)
    typed = enc.search("songs over 120 bpm from the 1980s", limit=15)

    assert (said.interpretation.tempo_min, said.interpretation.year_min, said.interpretation.year_max) == (120, 1980, 1989)
    assert said.results and all(t.tempo >= 120 and 1980 <= t.year <= 1989 for t in said.results)
    assert [t.track_id for t in said.results] == [t.track_id for t in typed.results]


def test_filters_given_as_null_drop_what_the_query_implied() -> None:
    from schemas.api import Filters
    from schemas.search import Interpretation

    understood = Interpretation(text="happy rock or pop from the 80s", year_min=1980, year_max=1989,
                                genres=["rock", "pop"], energy_min=0.5, moods=["happy"])

    dropped = understood.corrected(Filters.model_validate({"year_min": None, "year_max": None, "genre": None}))
    edited = understood.corrected(Filters(year_min=1985, energy_min=0.7))

    assert (dropped.year_min, dropped.year_max, dropped.genres) == (None, None, [])
    assert dropped.energy_min == 0.5 and dropped.moods == ["happy"]  # not given: left as understood
    assert "year_min dropped" in dropped.explanations[-1] and "genre dropped" in dropped.explanations[-1]
    assert (edited.year_min, edited.year_max, edited.energy_min, edited.genres) == (1985, 1989, 0.7, ["rock", "pop"])
    assert understood.corrected(Filters()) == understood  # nothing given, nothing changed
    assert understood.year_min == 1980 and understood.genres == ["rock", "pop"]  # the original is untouched


def test_dropping_an_inferred_filter_over_http_widens_the_results(enc: Encore) -> None:
    with TestClient(create_app(enc.settings, encore_service=enc)) as client:
        def search(filters: dict | None) -> SearchResult:
            response = client.post("/v1/search", json={"query": "happy rock from the 80s", "limit": 30,
                                                       "filters": filters})
            assert response.status_code == 200, response.text
            return SearchResult.model_validate(response.json())

        understood, any_year, any_genre = search(None), search({"year_min": None, "year_max": None}), \
            search({"genre": None})

    assert all(1980 <= t.year <= 1989 and t.genre == "rock" for t in understood.results)
    assert (any_year.interpretation.year_min, any_year.interpretation.year_max) == (None, None)
    assert any_year.interpretation.genres == ["rock"] and all(t.genre == "rock" for t in any_year.results)
    assert any(not 1980 <= t.year <= 1989 for t in any_year.results)
    assert any_genre.interpretation.genres == [] and any_genre.interpretation.year_min == 1980
    assert any(t.genre != "rock" for t in any_genre.results)
    assert all(1980 <= t.year <= 1989 for t in any_genre.results)


def test_empty_and_unknown_queries(enc: Encore) -> None:
    with pytest.raises(BadInput):
        enc.search("   ")
    odd = enc.search("zxqv blorp", limit=5)
    assert odd.interpretation.free_text and odd.interpretation.is_empty()


def test_search_over_http_and_the_cli(enc: Encore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(enc.settings, encore_service=enc)) as client:
        ok = client.post("/v1/search", json={"query": "chill jazz from the sixties", "limit": 5})
        empty = client.post("/v1/search", json={"query": "  ", "limit": 5})
        bad = client.post("/v1/search", json={"query": "jazz", "limit": 0})

    assert ok.status_code == 200, ok.text
    answer = SearchResult.model_validate(ok.json())
    assert answer.interpretation.genres == ["jazz"] and answer.interpretation.year_min == 1960
    assert all(t.genre == "jazz" and 1960 <= t.year <= 1969 for t in answer.results)
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    assert bad.status_code == 422


ESPEAK = shutil.which("espeak-ng")


def _speak(text: str, path: Path) -> Path:
    wav = path.with_suffix(".raw.wav")
    subprocess.run([ESPEAK, "-v", "en-us+f3", "-s", "140", "-w", str(wav), text], check=True, capture_output=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-ar", "16000", "-ac", "1", str(path)], check=True)
    return path


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_voice_search_over_http(enc: Encore, tmp_path: Path) -> None:
    query = _speak("sad piano music from the nineties", tmp_path / "query.wav")
    silence = tmp_path / "silence.wav"
    write_audio(silence, np.zeros(16000 * 2, dtype=np.float32), sr=16000, fmt="wav")
    long = tmp_path / "long.wav"
    write_audio(long, np.random.default_rng(0).normal(0, 0.1, 16000 * 30).astype(np.float32), sr=16000, fmt="wav")

    with TestClient(create_app(enc.settings, encore_service=enc)) as client:
        def post(path: Path):
            with path.open("rb") as f:
                return client.post("/v1/search/voice", files={"file": (path.name, f)})

        heard = post(query)
        quiet, too_long = post(silence), post(long)

    assert heard.status_code == 200, heard.text
    answer = VoiceSearchResult.model_validate(heard.json())
    assert "sad" in answer.transcript and "nineties" in answer.transcript
    assert "sad" in answer.interpretation.moods and answer.interpretation.year_min == 1990
    assert answer.results and all(1990 <= t.year <= 1999 for t in answer.results)
    assert quiet.status_code == 400 and "silent" in quiet.json()["detail"]
    assert too_long.status_code == 413
