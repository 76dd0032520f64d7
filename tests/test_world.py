"""The world tier on both storage backends: sample collection, filters and discovery queries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from encore.errors import BadInput, NotFound
from encore.storage import VectorStore
from encore.storage.base import Filter, FusedQuery, MatchValue, Point, QuerySpec, Range
from encore.world import TagSpace, World, WorldParams, artist_key, era_cells, era_energy, to_filter
from indexers.sample import SampleParams, genre_centres, load_genres, sample_batches
from schemas.api import Filters
from schemas.collections import WORLD_ORDER_FIELD
from tests.storage.conftest import open_backend
from tests.utils.world import random_tag_head

COUNT = 1200
HEAD = random_tag_head(3)


def _tracks(count: int = COUNT, *, seed: int = 11, batch: int = 250):
    return [t for b in sample_batches(count, seed=seed, head=HEAD, params=SampleParams(batch=batch)) for t in b]


def _world(store: VectorStore) -> World:
    return World(store, prefix="t_", vectors={"musicnn": 200, "tags": 50, "msd_timbre": 12},
                 tag_space=TagSpace(HEAD.names, HEAD.reference()), encoder="test-head",
                 params=WorldParams()).open()


@pytest.fixture(scope="module")
def sample() -> list:
    return _tracks()


@pytest.fixture(scope="module", params=["edge", "qdrant-client"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample) -> Iterator[World]:
    store = open_backend(request.param, tmp_path_factory.mktemp(request.param))
    w = _world(store)
    for i in range(0, len(sample), 300):
        w.upsert(sample[i : i + 300])
    yield w
    store.close()


# --- the sample generator ---------------------------------------------------------------------


def test_the_sample_is_deterministic_whatever_the_batch_size(sample) -> None:
    again = _tracks(batch=97)

    assert [t.track_id for t in again] == [t.track_id for t in sample]
    assert len({t.track_id for t in sample}) == COUNT
    for a, b in zip(sample[::50], again[::50], strict=True):
        assert (a.title, a.artist, a.year, a.genre, a.tempo) == (b.title, b.artist, b.year, b.genre, b.tempo)
        assert np.array_equal(a.vectors["musicnn"], b.vectors["musicnn"])
    assert _tracks(50, seed=12)[0].track_id != sample[0].track_id


def test_the_sample_looks_like_a_music_collection(sample) -> None:
    profiles = load_genres()
    genres = Counter(t.genre for t in sample)
    per_artist = Counter(t.artist for t in sample)
    years = np.array([t.year for t in sample])

    assert set(genres) <= set(profiles.names) and len(genres) >= 12
    assert genres.most_common(1)[0][0] in {"rock", "pop"}
    assert np.median(list(per_artist.values())) >= 4 and len(per_artist) >= COUNT / 20
    assert years.min() >= 1950 and years.max() <= 2025
    assert np.median(years) > 1985  # skewed to recent
    assert all(0 < t.energy < 1 and 0 < t.danceability < 1 and 50 < t.tempo < 220 for t in sample)
    by_genre = {g: [t for t in sample if t.genre == g] for g in genres}
    mean = {g: {k: float(np.mean([getattr(t, k) for t in ts])) for k in ("tempo", "energy", "danceability")}
            for g, ts in by_genre.items()}
    assert mean["metal"]["energy"] > mean["folk"]["energy"] + 0.3
    assert mean["hip-hop"]["danceability"] > mean["rock"]["danceability"] + 0.15
    assert mean["punk"]["tempo"] > mean["reggae"]["tempo"] + 40


def test_genre_tags_come_out_of_the_tag_head(sample) -> None:
    profiles = load_genres()
    centres = genre_centres(HEAD, profiles)
    probs = HEAD.probabilities(centres)
    names = [n.casefold() for n in HEAD.names]
    for gi, genre in enumerate(profiles.genres):
        top = max(genre.tags, key=genre.tags.get)
        assert names[int(np.argmax(probs[gi]))] == top.casefold(), genre.name
    rock = [t.tags["rock"] for t in sample if t.genre == "rock"]
    jazz = [t.tags["rock"] for t in sample if t.genre == "jazz"]
    assert np.mean(rock) > np.mean(jazz) + 0.3


# --- discovery ------------------------------------------------------------------------------------


def test_filters_are_applied_in_the_engine(world: World, sample) -> None:
    f = Filters(genre="Rock", year_min=1980, year_max=1989, energy_min=0.5)
    expected = {t.track_id for t in sample if t.genre == "rock" and 1980 <= t.year <= 1989 and t.energy >= 0.5}

    assert world.count(f) == len(expected) > 5
    seed = next(t for t in sample if t.track_id in expected)
    got = world.similar_to_track(seed.track_id, filters=f, limit=200)
    assert {t.track_id for t in got} == expected - {seed.track_id}
    assert all(t.genre == "rock" and 1980 <= t.year <= 1989 and t.energy >= 0.5 for t in got)

    tagged = world.search(sample[0].vectors["musicnn"], using="musicnn", filters=Filters(tags=["rock", "guitar"]),
                          limit=50)
    assert tagged and all(t.tags["rock"] >= 0.25 and t.tags["guitar"] >= 0.25 for t in tagged)


def test_each_track_stores_the_key_its_genre_is_ordered_by(world: World, sample) -> None:
    """``era_energy`` (year, then energy decile) is what the engine orders each genre's storage by
    (``WORLD_ORDER_FIELD``); a wrong key would slow era filters, never change their answers."""
    assert [era_energy(y, e) for y, e in [(1984, 0.0), (1984, 0.0999), (1984, 0.7), (1984, 1.0), (1984, 1.2),
                                          (1984, None), (None, 0.5)]] == [19840, 19840, 19847, 19849, 19849, 19840, None]
    records = world.store.retrieve(world.name, [t.track_id for t in sample[:200]], with_payload=True)
    stored = {r.id: r.payload for r in records}
    for t in sample[:200]:
        p = stored[t.track_id]
        assert p[WORLD_ORDER_FIELD] == p["year"] * 10 + min(9, int(p["energy"] * 10))
    keys = [p[WORLD_ORDER_FIELD] for p in stored.values()]
    assert len(set(keys)) > 50  # years and deciles both vary


def test_a_decile_bound_on_energy_is_a_bound_on_the_key() -> None:
    """The order key takes its decile with the same float arithmetic as a range check, so
    ``energy >= k/10`` and ``decile >= k`` pass the same stored energies (4 decimals, as stored)."""
    energies = [round(i / 10_000, 4) for i in range(10_001)]
    for k in range(1, 10):
        assert all((era_energy(1990, e) % 10 >= k) == (e >= k / 10) for e in energies), k


def test_era_cells_drop_only_the_ranges_the_key_answers() -> None:
    years, rock = Range("year", gte=1980, lte=1982), MatchValue("genre", "rock")
    flt, cells = era_cells(Filter(must=(rock, years, Range("energy", gte=0.7)), must_not=(MatchValue("artist", "x"),)))
    assert cells == ((19807, 19809), (19817, 19819), (19827, 19829))
    assert flt.must == (rock,) and flt.must_not == (MatchValue("artist", "x"),)
    assert flt.should == tuple(Range("era_energy", gte=a, lte=b) for a, b in cells)
    # A bound off a decile edge, an upper bound or a lower bound of 0 stays beside the key ranges.
    for energy, lo, hi in ((Range("energy", gte=0.75), 7, 9), (Range("energy", gte=0.7, lte=0.9), 7, 9),
                           (Range("energy", lte=0.35), 0, 3), (Range("energy", gte=0.0, lte=0.5), 0, 5)):
        flt, cells = era_cells(Filter(must=(years, energy)))
        assert flt.must == (energy,) and cells[0] == (19800 + lo, 19800 + hi)
    # Nothing to gain or nothing to turn: left alone.
    for must in ((years,), (years, Range("energy", gte=0.0)), (Range("year", gte=1980), Range("energy", gte=0.7)),
                 (years, Range("energy", gte=0.7), Range("energy", lte=0.9))):
        assert era_cells(Filter(must=must)) is None, must
    assert era_cells(Filter(must=(years, Range("energy", gte=0.7)), should=(rock,))) is None


ERA_FILTERS = [
    Filters(year_min=1980, year_max=1989, energy_min=0.7),
    Filters(year_min=1975, year_max=1994, energy_min=0.5, genre="rock"),
    Filters(year_min=1990, year_max=1999, energy_min=0.35, energy_max=0.8),
    Filters(year_min=2000, year_max=2006, energy_max=0.45),
    Filters(year_min=1960, year_max=2025, energy_min=0.9, danceability_min=0.3),
]


def _keyed(store: VectorStore, **params) -> World:
    """A world over ``store`` that uses the key ranges however few tracks they spare (the sample is small)."""
    w = _world(store)
    w.params = replace(w.params, **{"era_cell_cost": 0, "era_cell_check": 0.0, **params})
    return w


@pytest.mark.parametrize("f", ERA_FILTERS, ids=lambda f: str(f.model_dump(exclude_defaults=True)))
def test_era_filters_go_through_the_order_key_and_pass_the_same_tracks(world: World, sample, f: Filters) -> None:
    flt = to_filter(f)
    world = _keyed(world.store)
    planned = world.plan(flt)
    assert planned != flt and planned.should  # the key ranges are used (the sample is small)
    assert not any(isinstance(c, Range) and c.key == "year" for c in planned.must)

    def passes(t) -> bool:
        return (f.year_min <= t.year <= f.year_max and (f.genre is None or t.genre == f.genre)
                and (f.energy_min is None or t.energy >= f.energy_min)
                and (f.energy_max is None or t.energy <= f.energy_max)
                and (f.danceability_min is None or t.danceability >= f.danceability_min))

    expected = {t.track_id for t in sample if passes(t)}
    assert world.count(f) == len(expected) > 3
    plain = _world(world.store)
    plain.params = replace(plain.params, era_cells=False)
    assert plain.plan(flt) == flt
    for q in (sample[3], sample[700]):
        got = world.search(q.vectors["musicnn"], using="musicnn", filters=f, limit=len(expected))
        assert {t.track_id for t in got} == expected
        ref = plain.search(q.vectors["musicnn"], using="musicnn", filters=f, limit=10)
        assert [t.track_id for t in got[:10]] == [t.track_id for t in ref]


def test_the_order_key_is_used_only_when_its_ranges_hold_few_tracks_and_spare_many(world: World, sample) -> None:
    wide = to_filter(Filters(year_min=1950, year_max=2025, energy_min=0.1))
    narrow = to_filter(Filters(year_min=1984, year_max=1984, energy_min=0.8))
    assert _keyed(world.store).plan(wide).should
    capped = _keyed(world.store, era_cell_tracks=100)
    assert capped.plan(wide) == wide and capped.plan(narrow).should
    # With the default cost a range must spare the scan 200 tracks: a year of this sample has fewer.
    year = [t for t in sample if t.year == 2015]
    spared = sum(1 for t in year if t.energy < 0.8)
    assert 0 < spared < world.params.era_cell_cost
    one_year = to_filter(Filters(year_min=2015, year_max=2015, energy_min=0.8))
    assert world.plan(one_year) == one_year
    assert _keyed(world.store, era_cell_cost=spared).plan(one_year).should
    assert _keyed(world.store, era_cell_cost=spared + 1).plan(one_year) == one_year
    # An energy bound kept beside the ranges makes each track in them count era_cell_check times more.
    off_edge = to_filter(Filters(year_min=2015, year_max=2015, energy_min=0.75))
    inside = sum(1 for t in year if t.energy >= 0.7)  # deciles 7-9, the ranges' tracks
    outside = len(year) - inside
    assert _keyed(world.store, era_cell_check=(outside - 0.5) / inside).plan(off_edge).should
    assert _keyed(world.store, era_cell_check=(outside + 0.5) / inside).plan(off_edge) == off_edge


def test_a_store_with_tracks_lacking_the_key_is_filtered_by_the_plain_ranges(tmp_path: Path, sample) -> None:
    """Tracks written before the order key existed lack it; the key ranges would leave them out,
    so such a store is filtered by year and energy, and finds them. Writes refresh the check."""
    store = open_backend("edge", tmp_path)
    try:
        w = _keyed(store)
        tracks = sample[:300]
        w.upsert(tracks)
        f = Filters(year_min=1980, year_max=2010, energy_min=0.5)
        flt = to_filter(f)
        expected = {t.track_id for t in tracks if 1980 <= t.year <= 2010 and t.energy >= 0.5}
        assert w.plan(flt).should and w.count(f) == len(expected)
        old = [r for r in store.retrieve(w.name, sorted(expected)[:5], with_payload=True, with_vectors=True)]
        store.upsert(w.name, [Point(r.id, {k: v for k, v in r.vectors.items()},
                                    {k: v for k, v in r.payload.items() if k != "era_energy"}) for r in old])
        w._stats = None  # as after the cache's lifetime
        assert w.plan(flt) == flt
        assert w.count(f) == len(expected)
        got = w.search(tracks[0].vectors["musicnn"], using="musicnn", filters=f, limit=len(expected))
        assert {t.track_id for t in got} == expected
        w.upsert([t for t in tracks if t.track_id in {r.id for r in old}])  # rewritten: the key is back
        assert w.plan(flt).should and w.count(f) == len(expected)
    finally:
        store.close()


class _Recording:
    """The world's store, recording the queries it is asked."""

    def __init__(self, store: VectorStore) -> None:
        self._store, self.specs = store, []

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def query(self, collection: str, spec):
        self.specs.append(spec)
        return self._store.query(collection, spec)


class _NoFacets(_Recording):
    """The world's store on an engine that cannot count values from its payload index."""

    def facet(self, collection: str, key: str, **kwargs):
        from encore.errors import StorageError

        raise StorageError("facet: not supported here")


def test_at_least_counts_up_to_what_is_asked_and_size_follows_writes(world: World, sample) -> None:
    f = to_filter(Filters(year_min=1980, year_max=1989, energy_min=0.7))
    passing = world.count_where(f)
    assert passing > 5
    assert world.at_least(f, 5) == 5
    assert world.at_least(f, passing + 10) == passing
    assert world.at_least(to_filter(Filters(year_min=1000, year_max=1001)), 10) == 0
    assert world.size() == len(sample)


def test_a_store_that_cannot_count_gets_the_filters_as_asked(world: World, sample) -> None:
    f = Filters(year_min=1980, year_max=1989, energy_min=0.7)
    blind = _keyed(_NoFacets(world.store), probe_from=0)
    assert blind.plan(to_filter(f)) == to_filter(f)
    expected = {t.track_id for t in sample if 1980 <= t.year <= 1989 and t.energy >= 0.7}
    got = blind.search(sample[0].vectors["musicnn"], using="musicnn", filters=f, limit=len(expected))
    assert {t.track_id for t in got} == expected
    assert len(blind.search(sample[0].vectors["musicnn"], using="musicnn", limit=20)) == 20
    assert len(blind.store.specs) == 2  # no probe


class _FallingApartGraph(_Recording):
    """The world's store, except that a filtered graph search loses most of its answer, as the
    engine's graph does at scale under a filter on fields without graph links."""

    def query(self, collection: str, spec):
        hits = super().query(collection, spec)
        return hits if spec.exact or spec.filter is None else hits[:2]

    def query_fused(self, collection: str, fused):
        self.specs.extend(fused.queries)
        hits = self._store.query_fused(collection, fused)
        return hits if all(q.exact or q.filter is None for q in fused.queries) else hits[:2]


def test_a_filtered_search_the_graph_left_short_is_run_again_exactly(world: World, sample) -> None:
    store = _FallingApartGraph(world.store)
    shaky = _world(store)
    f = Filters(year_min=1980, year_max=1999)
    expected = sorted((t for t in sample if 1980 <= t.year <= 1999),
                      key=lambda t: -float(np.dot(t.vectors["musicnn"], sample[0].vectors["musicnn"])
                                           / np.linalg.norm(t.vectors["musicnn"])))
    got = shaky.search(sample[0].vectors["musicnn"], using="musicnn", filters=f, limit=20)
    assert [t.track_id for t in got] == [t.track_id for t in expected[:20]]
    assert [s.exact for s in store.specs] == [False, True]
    # Unfiltered searches are never redone, and a fused answer that came back short is redone exactly.
    store.specs.clear()
    assert len(shaky.search(sample[0].vectors["musicnn"], using="musicnn", limit=20)) == 20
    assert [s.exact for s in store.specs] == [False]
    spec = QuerySpec(using="musicnn", vector=sample[0].vectors["musicnn"].tolist(), limit=20, filter=to_filter(f))
    fused = shaky.query_fused(FusedQuery(queries=(spec, replace(spec, using="tags",
                                                                 vector=sample[0].vectors["tags"].tolist())), limit=20))
    assert len(fused) == 20 and store.specs[-1].exact and store.specs[-2].exact


class _LostGraph(_Recording):
    """The world's store, except that an unfiltered graph search finds only its nearest point, as
    the engine's graph, built in storage order, can at scale."""

    def query(self, collection: str, spec):
        hits = super().query(collection, spec)
        return hits if spec.exact or spec.filter is not None else hits[:1]


def test_the_genre_probe_makes_a_lost_graph_search_exact_within_the_nearest_genre(world: World, sample) -> None:
    store = _LostGraph(world.store)
    lost = _world(store)
    q = sample[40].vectors["musicnn"]

    def cosine(t) -> float:
        return float(np.dot(t.vectors["musicnn"], q) / np.linalg.norm(t.vectors["musicnn"]) / np.linalg.norm(q))

    nearest = max(sample, key=cosine)
    # Below probe_from (the full-scan threshold) the engine scans the world whole: no probe.
    assert len(lost.search(q, using="musicnn", limit=20)) == 1 and len(store.specs) == 1
    lost.params = replace(lost.params, probe_from=100)
    store.specs.clear()
    got = lost.search(q, using="musicnn", limit=20)
    genre = sorted((t for t in sample if t.genre == nearest.genre), key=cosine, reverse=True)
    assert [t.track_id for t in got] == [t.track_id for t in genre[:20]]
    assert [(s.filter is None, s.exact) for s in store.specs] == [(True, False), (False, False)]
    # Exclusions stay; a filter that keeps part of the world, or the probe off, means no probe.
    seed = genre[0]
    similar = lost.similar_to_track(seed.track_id, limit=10)
    assert [t.track_id for t in similar] == [t.track_id for t in sorted(genre[1:], key=lambda t: -float(
        np.dot(t.vectors["musicnn"], seed.vectors["musicnn"]) / np.linalg.norm(t.vectors["musicnn"])))[:10]]
    store.specs.clear()
    lost.search(q, using="musicnn", filters=Filters(year_min=1950), limit=20)
    assert len(store.specs) == 1
    # A genre the engine would not scan (more than probe_tracks), or the probe off: no probe.
    lost.params = replace(lost.params, probe_tracks=len(genre) - 1)
    assert len(lost.search(q, using="musicnn", limit=20)) == 1
    lost.params = replace(lost.params, probe_tracks=len(genre), genre_probe=False)
    assert len(lost.search(q, using="musicnn", limit=20)) == 1


def test_an_int8_world_scans_filtered_searches_and_rescores_them(tmp_path: Path, sample) -> None:
    """With int8 vectors, a filter keeping up to WORLD_FULL_SCAN_TRACKS per segment is answered
    by a scan of the int8 copies (the threshold follows each space's dimension), rescored with the
    originals at the world's oversampling: the exact answer."""
    from encore.world import WORLD_FULL_SCAN_TRACKS

    store = open_backend("edge", tmp_path)
    try:
        w = World(store, prefix="t_", vectors={"musicnn": 200, "tags": 50, "msd_timbre": 12},
                  tag_space=TagSpace(HEAD.names, HEAD.reference()), encoder="test-head",
                  quantization="int8").open()
        assert {k: v.hnsw.full_scan_threshold_kb for k, v in w.spec.dense.items()} == {
            k: WORLD_FULL_SCAN_TRACKS * d * 4 // 1024 for k, d in (("musicnn", 200), ("tags", 50), ("msd_timbre", 12))}
        assert {k: v.quantization for k, v in w.spec.dense.items()} == dict.fromkeys(w.spec.dense, "int8")
        w.upsert(sample)
        store.optimize()
        spy = _Recording(store)
        w.store = spy
        genre = sample[0].genre
        q = sample[5].vectors["musicnn"]
        got = w.search(q, using="musicnn", filters=Filters(genre=genre), limit=10)
        members = [t for t in sample if t.genre == genre]
        expected = sorted(members, key=lambda t: -float(np.dot(t.vectors["musicnn"], q) / np.linalg.norm(t.vectors["musicnn"])))
        assert [t.track_id for t in got] == [t.track_id for t in expected[:10]]
        # one search, not an exact re-run, carrying the world's oversampling
        assert [(s.exact, s.oversampling) for s in spy.specs] == [(False, w.params.oversampling)]
    finally:
        store.close()


def test_similar_tracks_share_the_artist_and_genre(world: World, sample) -> None:
    same_artist = same_genre = 0
    probes = sample[::60]
    for seed in probes:
        got = world.similar_to_track(seed.track_id, limit=5)
        assert len(got) == 5 and seed.track_id not in {t.track_id for t in got}
        assert got == sorted(got, key=lambda t: -t.similarity)
        same_artist += sum(t.artist == seed.artist for t in got[:3])
        same_genre += sum(t.genre == seed.genre for t in got)
    assert same_artist / (3 * len(probes)) > 0.5
    assert same_genre / (5 * len(probes)) > 0.8


def test_artist_radio_plays_other_artists_of_the_same_kind_diversely(world: World, sample) -> None:
    artist = Counter(t.artist for t in sample if t.genre == "metal").most_common(1)[0][0]
    genre_of = {t.artist: t.genre for t in sample}

    radio = world.artist_radio(artist.upper(), limit=15)

    assert len(radio) == 15
    assert artist_key(artist) not in {artist_key(t.artist) for t in radio}
    assert max(Counter(t.artist for t in radio).values()) <= 2
    assert sum(genre_of[t.artist] in {"metal", "rock", "punk"} for t in radio) >= 10
    eighties = world.artist_radio(artist, filters=Filters(year_min=1980, year_max=1989), limit=10)
    assert all(1980 <= t.year <= 1989 for t in eighties)
    with pytest.raises(NotFound):
        world.artist_radio("Nobody At All", limit=5)


def test_mood_playlists_lean_to_the_tags_within_the_ranges(world: World, sample) -> None:
    got = world.by_tags({"party": 1.0, "dance": 0.5}, filters=Filters(energy_min=0.6, tempo_min=100), limit=20)
    overall = np.mean([t.tags["party"] for t in sample])

    assert len(got) == 20
    assert all(t.energy >= 0.6 and t.tempo >= 100 for t in got)
    assert np.mean([t.tags.get("party", 0.0) for t in got]) > 2 * overall
    with pytest.raises(BadInput, match="unknown tag"):
        world.by_tags({"yodel": 1.0})


def test_genre_neighbours_are_the_nearest_centroids(world: World) -> None:
    neighbours = world.genre_neighbours("metal", genres=load_genres().names, limit=3)

    assert len(neighbours) == 3 and neighbours[0].similarity >= neighbours[-1].similarity
    assert {"rock", "punk"} & {n.genre for n in neighbours}
    with pytest.raises(NotFound):
        world.genre_neighbours("polka", genres=["polka"])


def test_an_interrupted_sample_resumes_without_duplicates(tmp_path: Path) -> None:
    store = open_backend("edge", tmp_path)
    w = _world(store)
    tracks = _tracks(400, seed=5)
    w.upsert(tracks[:130])

    todo = w.missing([t.track_id for t in tracks])
    assert todo == [t.track_id for t in tracks[130:]]
    w.upsert([t for t in tracks if t.track_id in set(todo)])
    w.upsert(tracks[:50])  # re-running from the start writes the same points again
    assert w.count() == 400
    store.close()


def test_bad_filters_and_ids_are_clear_errors(world: World) -> None:
    with pytest.raises(BadInput, match="year_min"):
        world.count(Filters(year_min=2000, year_max=1990))
    with pytest.raises(NotFound):
        world.similar_to_track("not-a-uuid")
    with pytest.raises(NotFound):
        world.get("6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11")


def test_target_preferences_pull_results_towards_the_targets(world: World, sample) -> None:
    from schemas.api import Preferences

    seed = sample[7]
    plain = world.similar_to_track(seed.track_id, limit=15)
    slow = world.similar_to_track(seed.track_id, limit=15, prefer=Preferences(target_tempo=70, target_energy=0.2))
    fast = world.similar_to_track(seed.track_id, limit=15, prefer=Preferences(target_tempo=170, target_energy=0.9))

    def mean(tracks, key):
        return float(np.mean([getattr(t, key) for t in tracks]))

    assert mean(slow, "tempo") < mean(plain, "tempo") < mean(fast, "tempo")
    assert mean(slow, "energy") < mean(plain, "energy") < mean(fast, "energy")
    assert fast[0].similarity > plain[0].similarity  # similarity plus the boost
    seventies = world.by_tags({"rock": 1.0}, prefer=Preferences(target_year=1975), limit=10)
    assert abs(mean(seventies, "year") - 1975) < abs(mean(world.by_tags({"rock": 1.0}, limit=10), "year") - 1975)
