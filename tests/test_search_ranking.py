"""How text search ranks and relaxes, on small worlds built here, through the real engine (both backends).

* A mood query puts the tracks that carry its tags most strongly first, not the ones whose tag
  profile merely points the same way (the ``tags`` vector is a direction).
* Ranges that mood words imply become preferences when, as filters, they would leave too few
  tracks; typed numbers and filters given stay filters. A genre no track has is searched as its sound.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from encore.search import Searcher
from encore.storage import VectorStore
from encore.world import TagSpace, World, WorldTrack, world_id
from schemas.api import Filters
from tests.storage.conftest import open_backend
from tests.utils.world import random_tag_head

HEAD = random_tag_head(3)
SPACE = TagSpace(HEAD.names, HEAD.reference())
REF = HEAD.reference()


def _probs(**tags: float) -> np.ndarray:
    """A typical track's tag probabilities with ``tags`` set (spaces as underscores)."""
    p = REF.copy()
    for name, value in tags.items():
        p[SPACE.index(name.replace("_", " "))] = value
    return p


def _track(key: str, probs: np.ndarray, *, energy: float, tempo: float = 120.0, danceability: float = 0.5,
           genre: str | None = None) -> WorldTrack:
    return WorldTrack(
        track_id=world_id("test", key), source="test", title=key, artist=f"artist {key}", genre=genre,
        tempo=tempo, energy=energy, danceability=danceability,
        tags=dict(zip(SPACE.names, (float(x) for x in probs), strict=True)),
        vectors={"tags": SPACE.vector(probs)},
    )


def _world(store: VectorStore, tracks: list[WorldTrack]) -> World:
    world = World(store, prefix="rank_", vectors={"musicnn": 200, "tags": len(SPACE.names)}, tag_space=SPACE,
                  encoder="test-head").open()
    world.upsert(tracks)
    return world


@pytest.fixture(params=["edge", "remote"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[VectorStore]:
    s = open_backend(request.param, tmp_path / "qdrant")
    yield s
    s.close()


def _mood_world() -> list[WorldTrack]:
    """Faintly happy tracks, pointing exactly towards happy, and clearly happy ones that also carry
    other tags (so their direction is off); plus others."""
    h, c = SPACE.index("happy"), SPACE.index("catchy")
    faint = [_track(f"faint {i}", _probs(happy=REF[h] * (1.3 + 0.05 * i), catchy=REF[c] * (1.3 + 0.05 * i)),
                    energy=0.7) for i in range(12)]
    strong = [_track(f"strong {i}", _probs(happy=0.4 + 0.02 * i, catchy=0.2, rock=0.9, pop=0.8, electronic=0.7,
                                           indie=0.7, alternative=0.7), energy=0.7) for i in range(6)]
    rng = np.random.default_rng(4)
    others = [_track(f"other {i}", np.clip(REF + rng.normal(0, 0.05, REF.size), 0, 1), energy=0.7)
              for i in range(20)]
    return faint + strong + others


def test_a_mood_query_ranks_the_tracks_carrying_its_tags_most_strongly_first(store: VectorStore) -> None:
    world = _world(store, _mood_world())
    searcher = Searcher(world, mapper=None)

    result = searcher.search("happy songs", limit=6)
    # The tag vector alone: the faint tracks point exactly the way the query does.
    by_direction = world.search(SPACE.profile(result.interpretation.tags), using="tags", limit=6)

    assert result.interpretation.tags["happy"] > 0 and not result.interpretation.relaxed
    assert [t.title for t in result.results] == [f"strong {i}" for i in range(5, -1, -1)]
    assert all(t.title.startswith("faint") for t in by_direction)
    # A mood playlist ranks the same way.
    assert {t.title for t in world.by_tags({"happy": 1.0, "catchy": 0.4}, limit=6)} == {f"strong {i}" for i in range(6)}


def _quiet_world(*, genre: str | None = None) -> list[WorldTrack]:
    """Tracks alike in their tags, every one too calm and slow for "upbeat" (energy >= 0.6, tempo >= 115)."""
    same = _probs(happy=0.3, catchy=0.3, electronic=0.6, dance=0.4)
    return [_track(f"quiet {i}", same, energy=0.05 + 0.025 * i, tempo=80 + 1.5 * i, genre=genre) for i in range(20)]


def test_ranges_that_would_empty_the_answer_become_preferences(store: VectorStore) -> None:
    searcher = Searcher(_world(store, _quiet_world()), mapper=None)

    result = searcher.search("upbeat dance music", limit=5)
    interp = result.interpretation

    assert interp.relaxed == {"energy_min": 0.6, "tempo_min": 115.0}
    assert interp.energy_min is None and interp.tempo_min is None and interp.implied == []
    assert any("as preferences instead" in line for line in interp.explanations)
    # The nearest to the ranges first: the five most energetic, fastest tracks.
    assert [t.title for t in result.results] == [f"quiet {i}" for i in range(19, 14, -1)]
    # "dance music" reads as genre electronic, which no track here is labelled: searched as its sound.
    assert interp.genres == [] and interp.tags.get("electronic", 0) > 0
    assert any("no track of this collection is labelled electronic" in line for line in interp.explanations)


def test_typed_numbers_and_given_filters_stay_filters(store: VectorStore) -> None:
    searcher = Searcher(_world(store, _quiet_world()), mapper=None)

    typed = searcher.search("happy songs over 150 bpm", limit=5)
    given = searcher.search("happy songs", limit=5, filters=Filters(energy_min=0.9))

    assert typed.results == [] and typed.interpretation.tempo_min == 150
    assert "tempo_min" not in typed.interpretation.relaxed
    assert given.results == [] and given.interpretation.energy_min == 0.9 and not given.interpretation.relaxed


def test_ranges_that_leave_enough_tracks_stay_filters(store: VectorStore) -> None:
    tracks = _quiet_world() + [_track(f"loud {i}", _probs(happy=0.3, catchy=0.3), energy=0.8, tempo=130)
                               for i in range(12)]
    searcher = Searcher(_world(store, tracks), mapper=None)

    result = searcher.search("upbeat songs", limit=10)

    assert result.interpretation.relaxed == {} and result.interpretation.energy_min == 0.6
    assert len(result.results) == 10 and all(t.energy >= 0.6 and t.tempo >= 115 for t in result.results)


def test_a_genre_the_collection_has_stays_a_filter(store: VectorStore) -> None:
    tracks = _quiet_world(genre="electronic") + [
        _track(f"rock {i}", _probs(happy=0.3, catchy=0.3), energy=0.8, tempo=130, genre="rock") for i in range(12)]
    searcher = Searcher(_world(store, tracks), mapper=None)

    result = searcher.search("upbeat dance music", limit=5)

    assert result.interpretation.genres == ["electronic"]
    assert result.results and all(t.genre == "electronic" for t in result.results)
