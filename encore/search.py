"""Natural-language search over the world tier: text in, an explained interpretation and tracks out.

1. :func:`encore.query.interpret` reads the query against the live collection's vocabulary (its
   artists and genres, from exact facets, and the mood table): years, genres, moods, tempo,
   instruments, artists to sound like, to keep or to leave out, and what is left as free text.
   Artists are read first, so "like Daft Punk" is an artist, not punk.
2. What the query describes becomes vectors in the spaces the audio lives in:
   * tag weights (from moods, instruments, genre words, and the free text through
     :class:`~encore.text_tags.TagMapper` and the text encoder) become a profile in the ``tags``
     space (musicnn's 50 tags, centred on a typical track);
   * each artist to sound like becomes its tracks' centroid in its best audio space.
3. One query per vector, each under the filters the interpretation implies (applied in the
   engine), fused by reciprocal rank when there are several; ``target_*`` preferences boost
   scores; at most a few tracks per artist.
4. The tag query's nearest tracks are re-ranked in the engine by how strongly they carry the
   wanted tags (a formula over their stored ``tag_probs``, :meth:`World.tag_boosts`): the
   ``tags`` vector alone ranks by the direction of a track's tag deviation, so a track leaning
   faintly towards "happy" could beat one that is clearly happy.
5. What words implied is soft where, as a filter, it would leave too few tracks: a genre no track
   of the collection has is searched as its sound (its tags), and energy, danceability and tempo
   ranges from mood words become preferences (tracks inside first, then the nearest). Numbers
   typed and filters given stay filters. The interpretation says what was relaxed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from encore.errors import NotFound
from encore.storage.base import Boost, Filter, FusedQuery, MatchAny, MatchValue, QuerySpec, SoftRange
from encore.world import PAYLOAD_FIELDS, World, artist_key, diverse, genre_key, to_filter, to_public
from schemas.api import Filters, TrackPublic
from schemas.search import Interpretation, SearchResult

if TYPE_CHECKING:
    from encore.query import QueryParams, QueryVocabulary
    from encore.text_tags import TagMapper
    from indexers.sample import Genre


@dataclass(frozen=True, slots=True)
class SearchParams:
    """How a search weighs what it understood."""

    free_text_weight: float = 0.6
    """Weight of the tags the free text maps to, against 1.0 for tags the parser understood."""
    genre_tag_weight: float = 0.8
    """Weight of a named genre's own tag profile (``genres.json``) when nothing else describes the sound."""
    per_artist: int = 2
    overfetch: int = 4
    vocabulary_artists: int = 1_000_000
    """Most artists read into the vocabulary (by track count)."""
    min_results: int = 10
    """Ranges implied by words that leave fewer tracks than this (or than asked for, when fewer)
    are relaxed into preferences."""
    soft_range_weight: float = 100.0
    """What being inside a relaxed range adds to a score; half that at one target scale outside
    (``WorldParams.target_scales``: energy 0.15, tempo 12 bpm). Large, so that the tracks inside
    rank first whatever their tags, as the interpretation says, and the nearest next."""


class Searcher:
    """Search a :class:`~encore.world.World` in natural language."""

    def __init__(
        self,
        world: World,
        *,
        mapper: TagMapper | None,
        params: SearchParams | None = None,
        query_params: QueryParams | None = None,
        text_tower: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        self.world = world
        self.mapper = mapper
        self.text_tower = text_tower
        """Embeds text into the ``clap`` space (CLAP's text tower), when CLAP is configured."""
        self.params = params or SearchParams()
        self.query_params = query_params
        self._vocabulary: QueryVocabulary | None = None
        self._vocabulary_key: object = None
        self._genres_here: frozenset[str] = frozenset()
        """Genres some track of the collection has (the vocabulary also knows genres.json's)."""

    @cached_property
    def _genre_profiles(self) -> dict[str, Genre]:
        """``encore/data/genres.json``, read once: a named genre's tag profile ranks when nothing else does."""
        from indexers.sample import load_genres

        return {g.name: g for g in load_genres().genres}

    def vocabulary(self) -> QueryVocabulary:
        """The query vocabulary of the collection as it is now: rebuilt when the world's size
        changes (:meth:`~encore.world.World.size`: at once for writes through this world, within
        ``WorldParams.stats_seconds`` for others)."""
        from encore.query import load_vocabulary

        key = self.world.size()
        if self._vocabulary is None or key != self._vocabulary_key:
            store, name = self.world.store, self.world.name
            artists = [a for a, _ in store.facet(name, "artist", limit=self.params.vocabulary_artists)]
            genres = [g for g, _ in store.facet(name, "genre", limit=1000)]
            self._vocabulary = load_vocabulary(artists=artists, genres=genres, tag_names=self.world.tag_space.names)
            self._genres_here = frozenset(genre_key(g) for g in genres)
            self._vocabulary_key = key
        return self._vocabulary

    def interpret(self, text: str) -> Interpretation:
        from encore.query import interpret

        return interpret(text, vocabulary=self.vocabulary(), params=self.query_params)

    def search(self, text: str, *, limit: int = 20, filters: Filters | None = None) -> SearchResult:
        """Read ``text`` and run it; ``filters`` correct the reading (a field given as None drops an
        inferred one, see :meth:`Interpretation.corrected`) and the answer shows the corrected one."""
        interp = self.interpret(text)
        if filters is not None:
            interp = interp.corrected(filters)
        return SearchResult(interpretation=interp, results=self.run(interp, limit=limit, filters=filters))

    def run(self, interp: Interpretation, *, limit: int, filters: Filters | None = None) -> list[TrackPublic]:
        """The tracks an interpretation asks for (``filters`` given explicitly win over the query's).

        ``interp`` is updated in place with what the search did: what the free text mapped to, a
        genre searched as its sound, ranges relaxed into preferences.
        """
        self._absent_genres_as_sound(interp, filters)
        weights = self._tag_weights(interp)
        described = self._described_text(interp)
        clap = bool(self.text_tower is not None and described and "clap" in self.world.spaces)
        self._relax_ranges(interp, filters, limit=limit, can_rank=bool(weights or interp.artists_like or clap))
        flt = self._filter(interp, filters)
        targets = self.world.targets_for(interp.preferences())
        soft = self._soft_ranges(interp)
        depth = limit * self.params.overfetch
        queries: list[QuerySpec] = []
        for artist in interp.artists_like:
            try:
                space, centre, _ = self.world.centroid(Filter(must=(MatchValue("artist_key", artist_key(artist)),)))
            except NotFound:
                interp.explanations.append(f"like {artist}: no tracks by {artist} with an audio embedding, ignored")
                continue
            queries.append(self._spec(space, centre, depth, flt, targets, soft))
        if clap and self.text_tower is not None:
            queries.append(self._spec("clap", self.text_tower([described])[0], depth, flt, targets, soft))
            interp.explanations.append(f'"{described}" → CLAP text embedding, searched in the clap space')
        if weights:
            queries.append(self._spec("tags", self.world.tag_space.profile(weights), depth, flt, targets, soft,
                                      boosts=self.world.tag_boosts(weights)))
        if not queries:
            interp.explanations.append("no sound described: tracks matching the filters, in no particular order")
            records, _ = self.world.store.scroll(self.world.name, filter=flt, limit=limit,
                                                 with_payload=list(PAYLOAD_FIELDS))
            return [to_public(r.payload or {}) for r in records]
        if len(queries) == 1:
            hits = self.world.query(queries[0])
        else:
            hits = self.world.query_fused(FusedQuery(queries=tuple(queries), limit=depth,
                                                     with_payload=list(PAYLOAD_FIELDS)))
        pool = [to_public(h.payload or {}, score=h.score) for h in hits]
        return diverse(pool, per_artist=self.params.per_artist, limit=limit, top_up=True)

    def _absent_genres_as_sound(self, interp: Interpretation, given: Filters | None) -> None:
        """A genre read from the query that no track of the collection is labelled with can only
        empty the answer (a collection without genre labels has none): search its sound instead,
        the tags of its ``genres.json`` profile, or the tag of that name."""
        if not interp.genres or (given is not None and "genre" in given.model_fields_set):
            return
        self.vocabulary()  # the collection's genres as they are now
        absent = [g for g in interp.genres if genre_key(g) not in self._genres_here]
        if not absent:
            return
        known = {n.casefold(): n for n in self.world.tag_space.names}
        for genre in absent:
            profile = self._genre_profiles.get(genre_key(genre))
            if profile is not None:
                added = {t: self.params.genre_tag_weight * p for t, p in profile.tags.items() if t.casefold() in known}
            else:
                added = {known[genre.casefold()]: 1.0} if genre.casefold() in known else {}
            for tag, w in added.items():
                interp.tags[tag] = round(interp.tags.get(tag, 0.0) + w, 3)
            shown = ", ".join(f"{t} {w:+.2g}" for t, w in sorted(added.items(), key=lambda kv: -kv[1])[:5])
            interp.explanations.append(
                f"genre {genre}: no track of this collection is labelled {genre}; "
                + (f"searched by its sound instead (tags {shown})" if added else "ignored"))
        interp.genres = [g for g in interp.genres if g not in absent]

    def _relax_ranges(self, interp: Interpretation, given: Filters | None, *, limit: int, can_rank: bool) -> None:
        """Turn the ranges words implied into preferences when, as filters, they leave too few tracks."""
        given_set = given.model_fields_set if given is not None else set()
        soft = [b for b in interp.implied if getattr(interp, b) is not None and b not in given_set]
        if not soft:
            return
        need = min(limit, self.params.min_results)
        passing = self.world.at_least(self._filter(interp, given), need)
        if passing >= need:
            return
        bounds = {b: float(getattr(interp, b)) for b in soft}
        said = ", ".join(_bound_text(b, v) for b, v in bounds.items())
        leave = f"{said} leave{'s' if len(bounds) == 1 else ''} {passing} of {self.world.size()} tracks"
        if not can_rank:
            interp.explanations.append(f"{leave}; nothing describes the sound to rank the others by, so they stay "
                                       "filters")
            return
        for b in bounds:
            setattr(interp, b, None)
        interp.implied = [b for b in interp.implied if b not in bounds]
        interp.relaxed = {**interp.relaxed, **bounds}
        interp.explanations.append(f"{leave}, fewer than {need}: searched as preferences instead (tracks inside "
                                   "first, then the nearest)")

    def _soft_ranges(self, interp: Interpretation) -> tuple[SoftRange, ...]:
        scales = dict(self.world.params.target_scales)
        out = []
        for name in ("energy", "danceability", "tempo"):
            lo, hi = interp.relaxed.get(f"{name}_min"), interp.relaxed.get(f"{name}_max")
            if lo is not None or hi is not None:
                out.append(SoftRange(name, lo, hi, scales[name], self.params.soft_range_weight))
        return tuple(out)

    @staticmethod
    def _described_text(interp: Interpretation) -> str:
        """The words that describe the sound (artist names out: CLAP reads "punk" in "Daft Punk" too)."""
        text = interp.text
        for name in (*interp.artists_like, *interp.artists_by, *interp.artists_not):
            text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
        text = re.sub(r"\b(like|by|not|but|without|except|no)\b(\s+\b(like|by|not|but|without|except|no)\b)*\s*$",
                      " ", " ".join(text.split()), flags=re.IGNORECASE)
        return " ".join(text.split())

    def _spec(self, using: str, vector: np.ndarray, limit: int, flt: Filter | None, targets,
              soft: tuple[SoftRange, ...], *, boosts: tuple[Boost, ...] = ()) -> QuerySpec:
        v = np.asarray(vector, dtype=np.float64)
        v = v / (np.linalg.norm(v) or 1.0)
        # Re-ranking by tag strength looks deeper than the answer: the strongest carriers of a tag
        # need not be the nearest in direction.
        candidates = max(10 * limit, self.world.params.tag_candidates) if boosts or soft else None
        return QuerySpec(using=using, vector=v.tolist(), limit=limit, filter=flt, with_payload=list(PAYLOAD_FIELDS),
                         targets=targets, boosts=boosts, soft_ranges=soft, candidates=candidates,
                         **self.world.params.search_params(flt is not None))

    def _tag_weights(self, interp: Interpretation) -> dict[str, float]:
        weights = dict(interp.tags)
        if interp.free_text and self.mapper is not None:
            mapped = self.mapper.map(interp.free_text)
            for tag, w in mapped.items():
                weights[tag] = weights.get(tag, 0.0) + self.params.free_text_weight * w
            if mapped:
                top = ", ".join(list(mapped)[:4])
                interp.explanations.append(f'"{interp.free_text}" → sounds tagged {top}')
        if not any(w > 0 for w in weights.values()) and interp.genres:
            for genre in interp.genres:
                profile = self._genre_profiles.get(genre_key(genre))
                if profile is None:
                    continue
                for tag, p in profile.tags.items():
                    weights[tag] = weights.get(tag, 0.0) + self.params.genre_tag_weight * p
        known = {n.casefold(): n for n in self.world.tag_space.names}
        return {known[t.casefold()]: w for t, w in weights.items() if t.casefold() in known and w != 0}

    def _filter(self, interp: Interpretation, given: Filters | None) -> Filter | None:
        base = to_filter(interp.filters(base=given))
        must = list(base.must) if base else []
        must_not = list(base.must_not) if base else []
        if len(interp.genres) > 1 and not (given and given.genre):
            must.append(MatchAny("genre", tuple(genre_key(g) for g in interp.genres)))
        if len(interp.artists_by) > 1 and not (given and given.artist):
            must.append(MatchAny("artist_key", tuple(artist_key(a) for a in interp.artists_by)))
        # "like X" asks for others that sound like X; Filters holds one exclusion, the rest go here.
        excluded = [*interp.artists_like, *(interp.artists_not if len(interp.artists_not) > 1 else [])]
        if excluded:
            must_not.append(MatchAny("artist_key", tuple(artist_key(a) for a in excluded)))
        if interp.excluded_genres:
            must_not.append(MatchAny("genre", tuple(genre_key(g) for g in interp.excluded_genres)))
        if not must and not must_not:
            return None
        return Filter(must=tuple(must), must_not=tuple(must_not))



def _bound_text(bound: str, value: float) -> str:
    """``energy_min`` 0.6 as "energy ≥ 0.6"."""
    name, end = bound.rsplit("_", 1)
    unit = " bpm" if name == "tempo" else ""
    return f"{name} {'≥' if end == 'min' else '≤'} {value:g}{unit}"
