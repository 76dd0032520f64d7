"""HTTP and CLI answer models (the CLI's ``--json`` prints these same models)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackPublic(BaseModel):
    """A track as the contract's ``Track``; fields the track lacks are null."""

    track_id: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    year: int | None = None
    genre: str | None = None
    tempo: float | None = None
    energy: float | None = None
    danceability: float | None = None
    tags: dict[str, float] | None = None
    similarity: float | None = None


class MatchPublic(BaseModel):
    """A confident catalog match."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "track_id": "6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11", "title": "Battle Theme", "artist": "Wesnoth",
        "album": None, "confidence": 0.998, "offset_s": 42.3, "speed": 1.0, "aligned_hashes": 57,
        "decided_by": "landmarks"}})

    track_id: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    confidence: float = Field(ge=0.0, le=1.0, description="Probability-like confidence that the match is right.")
    offset_s: float = Field(description="Where in the track the clip starts, in seconds.")
    speed: float = Field(default=1.0, description="Playback speed of the clip relative to the catalog track.")
    aligned_hashes: int = Field(default=0, description="Landmark hashes agreeing on one time offset.")
    decided_by: Literal["landmarks", "embedding"] = "landmarks"


class IdentifyResult(BaseModel):
    match: MatchPublic | None
    similar: list[TrackPublic] = Field(default_factory=list)
    took_ms: float


class TrackCreated(BaseModel):
    track_id: str
    status: Literal["added", "exists"] = "added"
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    duration_s: float | None = None


class TierStats(BaseModel):
    tracks: int
    points: int


class StatsPublic(BaseModel):
    catalog: TierStats
    world: TierStats | None = None
    storage: dict[str, str | int | None]
    encoders: dict[str, str]
    version: str
    #: Versions of what answers: Python, the storage engine and the numeric libraries.
    versions: dict[str, str] = {}


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Filters(BaseModel):
    """What discovery results must satisfy (the contract's ``Filters``); every field is optional."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "genre": "rock", "year_min": 1980, "year_max": 1989, "energy_min": 0.6, "tags": ["guitar"]}})

    genre: str | None = None
    artist: str | None = Field(default=None, description="Only this artist (case-insensitive).")
    exclude_artist: str | None = Field(default=None, description="Leave this artist out (case-insensitive).")
    year_min: int | None = Field(default=None, ge=1000, le=3000)
    year_max: int | None = Field(default=None, ge=1000, le=3000)
    tempo_min: float | None = Field(default=None, ge=0, le=400)
    tempo_max: float | None = Field(default=None, ge=0, le=400)
    energy_min: float | None = Field(default=None, ge=0, le=1)
    energy_max: float | None = Field(default=None, ge=0, le=1)
    danceability_min: float | None = Field(default=None, ge=0, le=1)
    danceability_max: float | None = Field(default=None, ge=0, le=1)
    tags: list[str] = Field(default_factory=list, description="Tags every result must have.")

    def is_empty(self) -> bool:
        return self == Filters()


class Preferences(BaseModel):
    """Spotify-style ``target_*`` preferences: not filters, but a boost for tracks near the targets.

    A track's score is its similarity plus, for each target, up to ``weight`` (full at the target,
    half at one ``scale`` away; see ``WorldParams``). Combine with the ``_min``/``_max`` filters
    for hard bounds.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"target_energy": 0.8,
                                                                             "target_tempo": 128}})

    target_energy: float | None = Field(default=None, ge=0, le=1)
    target_danceability: float | None = Field(default=None, ge=0, le=1)
    target_tempo: float | None = Field(default=None, ge=20, le=300)
    target_year: int | None = Field(default=None, ge=1000, le=3000)

    def targets(self) -> dict[str, float]:
        return {k.removeprefix("target_"): v for k, v in self.model_dump().items() if v is not None}


class TracksPublic(BaseModel):
    """A list of tracks, best first."""

    results: list[TrackPublic]
    count: int


class GenreNeighbour(BaseModel):
    genre: str
    similarity: float
    tracks: int


class GenreNeighboursPublic(BaseModel):
    genre: str
    neighbours: list[GenreNeighbour]
