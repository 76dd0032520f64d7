"""Natural-language search: what a query was understood to mean, and the answers of
``POST /v1/search`` and ``POST /v1/search/voice``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.api import Filters, Preferences, TrackPublic

_RANGES = ("year", "tempo", "energy", "danceability")
_BOUNDS = tuple(f"{name}_{end}" for name in _RANGES for end in ("min", "max"))
#: ``Filters`` fields holding one value where an interpretation keeps a list.
_LISTED = {"genre": "genres", "artist": "artists_by", "exclude_artist": "artists_not"}


class Interpretation(BaseModel):
    """What :func:`encore.query.interpret` understood in a query, with one explanation per thing.

    ``tags`` are weights over the default encoder's tag names (negative: away from that tag), for a
    tag-profile search; ``targets`` are ``target_*`` preferences (keys ``energy``, ``tempo``,
    ``danceability``, ``year``). The lists keep everything understood; :meth:`filters` carries what
    the contract's ``Filters`` can hold (one genre, one artist, one excluded artist).
    """

    model_config = ConfigDict(json_schema_extra={"example": {
        "text": "80s rock but not Queen", "year_min": 1980, "year_max": 1989, "genres": ["rock"],
        "artists_not": ["Queen"], "explanations": ["80s → years 1980-1989", "rock → genre rock",
                                                   "not Queen → leaving out artist Queen"]}})

    text: str
    year_min: int | None = None
    year_max: int | None = None
    genres: list[str] = Field(default_factory=list)
    moods: list[str] = Field(default_factory=list, description="Entries of the mood table understood "
                                                               "(moods, activities, tempo words, instruments, vocals).")
    tags: dict[str, float] = Field(default_factory=dict, description="Tag weights; negative: away from the tag.")
    tempo_min: float | None = None
    tempo_max: float | None = None
    energy_min: float | None = None
    energy_max: float | None = None
    danceability_min: float | None = None
    danceability_max: float | None = None
    targets: dict[str, float] = Field(default_factory=dict)
    artists_like: list[str] = Field(default_factory=list, description="Sounds like these artists.")
    artists_by: list[str] = Field(default_factory=list, description="Only these artists.")
    artists_not: list[str] = Field(default_factory=list, description="Leave these artists out.")
    excluded_genres: list[str] = Field(default_factory=list)
    implied: list[str] = Field(default_factory=list, description=(
        "Range bounds (`energy_min`, `tempo_max`, ...) that words implied (moods, activities, tempo words) "
        "rather than numbers typed or filters given: a search relaxes these when they leave too few tracks."))
    relaxed: dict[str, float] = Field(default_factory=dict, description=(
        "Range bounds the search relaxed into preferences because, as filters, they left fewer tracks than "
        "asked for: tracks inside the ranges rank first, then the nearest."))
    free_text: str = ""
    explanations: list[str] = Field(default_factory=list)

    def filters(self, base: Filters | None = None) -> Filters:
        """The contract's ``Filters`` for this interpretation; fields set in ``base`` win.

        ``Filters`` holds one genre, one artist and one excluded artist: a list of several stays in
        the interpretation (a search can run once per item, or use ``artists_like`` centroids).
        """
        values: dict = {f"{name}_{end}": getattr(self, f"{name}_{end}") for name in _RANGES for end in ("min", "max")}
        for end in ("min", "max"):
            for name in ("energy", "danceability"):
                key = f"{name}_{end}"
                if values[key] is not None:
                    values[key] = min(1.0, max(0.0, values[key]))
            if values[f"tempo_{end}"] is not None:
                values[f"tempo_{end}"] = min(400.0, max(0.0, values[f"tempo_{end}"]))
        values["genre"] = self.genres[0] if len(self.genres) == 1 else None
        values["artist"] = self.artists_by[0] if len(self.artists_by) == 1 else None
        values["exclude_artist"] = self.artists_not[0] if len(self.artists_not) == 1 else None
        if base is not None:
            values.update(base.model_dump(exclude_defaults=True))
        return Filters(**values)

    def corrected(self, given: Filters) -> Interpretation:
        """This interpretation with explicit filters applied, so that it says what is searched.

        A field set in ``given`` replaces what the query implied for it, and a field set to None
        (``{"year_min": null}`` in JSON) drops it: that is how a client takes back an inferred
        filter. ``genre``, ``artist`` and ``exclude_artist`` stand for the whole ``genres``,
        ``artists_by`` and ``artists_not`` lists. Fields not set are left as understood.
        """
        changes: dict = {}
        said: list[str] = []
        for name in sorted(given.model_fields_set, key=list(Filters.model_fields).index):
            value = getattr(given, name)
            if name in _BOUNDS:
                changes[name] = value
            elif name in _LISTED:
                changes[_LISTED[name]] = [] if value is None else [value]
            else:
                continue  # ``tags`` is a filter only: nothing in the reading to correct
            said.append(f"{name} dropped" if value is None else f"{name} {value}")
        if not changes:
            return self
        # A bound given explicitly is the client's, never relaxed.
        changes["implied"] = [b for b in self.implied if b not in changes]
        return self.model_copy(update={**changes, "explanations": [*self.explanations,
                                                                   f"filters given: {', '.join(said)}"]})

    def preferences(self) -> Preferences:
        """``target_*`` preferences from :attr:`targets`, clamped to what ``Preferences`` accepts."""
        t = self.targets
        energy, dance, tempo, year = t.get("energy"), t.get("danceability"), t.get("tempo"), t.get("year")
        return Preferences(
            target_energy=None if energy is None else min(1.0, max(0.0, energy)),
            target_danceability=None if dance is None else min(1.0, max(0.0, dance)),
            target_tempo=None if tempo is None else min(300.0, max(20.0, tempo)),
            target_year=None if year is None else min(3000, max(1000, round(year))),
        )

    def is_empty(self) -> bool:
        """Nothing understood beyond free text."""
        skip = {"text", "free_text", "explanations", "implied"}
        return self.model_dump(exclude=skip) == Interpretation(text=self.text).model_dump(exclude=skip)


class SearchRequest(BaseModel):
    """The body of ``POST /v1/search``."""

    model_config = ConfigDict(json_schema_extra={"example": {"query": "sad piano music from the nineties",
                                                             "limit": 20}})

    query: str = Field(min_length=1, max_length=500)
    limit: int = Field(default=20, ge=1, le=200)
    filters: Filters | None = Field(
        default=None,
        description="Explicit filters; they win over the query's. A field given as null drops what the query "
                    "implied for it (`{\"year_min\": null, \"year_max\": null}`: any year; `{\"genre\": null}`: "
                    "any genre). The answer's `interpretation` shows the corrected reading.")


class SearchResult(BaseModel):
    """The answer of ``POST /v1/search``."""

    interpretation: Interpretation
    results: list[TrackPublic]


class VoiceSearchResult(BaseModel):
    """The answer of ``POST /v1/search/voice``: the transcript, then as a text search."""

    transcript: str
    interpretation: Interpretation
    results: list[TrackPublic]
